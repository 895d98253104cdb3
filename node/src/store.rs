//! Durable storage. The only module that knows the engine underneath is sled.
//!
//! Trees:
//! - `events`: event id → wire bytes, append-only except for erasure by redaction;
//! - `by_time`: `timestamp (8 bytes BE) || id` → empty, the order set reconciliation
//!   walks;
//! - `erased`: id → kind code (2 bytes BE) of events whose content a redaction removed;
//!   they are never fetched or stored again;
//! - `meta`: identity seed, community, settings;
//! - `peers`: the peer book (peer id → postcard [`PeerRecord`]).
//!
//! Writes are not durable until [`Store::flush`] returns; the engine flushes before it
//! acknowledges a write to a user.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use aidmesh_protocol::{Event, EventId, Timestamp};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use thiserror::Error;

/// sled's page cache. Small on purpose: a Raspberry Pi may have 512 MB, and sled's
/// memory use otherwise grows towards the database size.
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A storage failure, naming the database.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the database at {path}: {source}. If it is damaged, move that directory aside and restart; the node will catch up from its peers")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// A read or write failed.
    #[error("database at {path}: {source}")]
    Io {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// A stored record could not be read back.
    #[error("database at {path}: corrupt record in {tree}: {detail}")]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// Which tree.
        tree: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// What the peer book remembers about a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Addresses it was reached at (multiaddr strings), newest first.
    pub addrs: Vec<String>,
    /// Wall-clock ms of the last completed sync with it.
    pub last_sync_ms: Option<u64>,
}

/// The open sled database and its trees.
struct Trees {
    db: sled::Db,
    events: sled::Tree,
    by_time: sled::Tree,
    erased: sled::Tree,
    meta: sled::Tree,
    peers: sled::Tree,
}

/// Whether sled failed only because another handle still holds the database's file
/// lock.
fn lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().contains("could not acquire lock"))
}

/// Opens a sled database, waiting (up to about 2 s) while a handle that was just
/// dropped still holds its lock: sled's background flusher outlives the handle briefly,
/// which matters when this process reopens a database it closed (compaction, restarts
/// in tests).
fn open_db(config: sled::Config) -> Result<sled::Db, sled::Error> {
    let mut tries = 0;
    loop {
        match config.open() {
            Err(e) if lock_busy(&e) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Trees {
    fn open(path: &Path) -> Result<Trees, sled::Error> {
        let db = open_db(sled::Config::new().path(path).cache_capacity(CACHE_BYTES))?;
        Ok(Trees {
            events: db.open_tree("events")?,
            by_time: db.open_tree("by_time")?,
            erased: db.open_tree("erased")?,
            meta: db.open_tree("meta")?,
            peers: db.open_tree("peers")?,
            db,
        })
    }
}

/// The node's database.
pub struct Store {
    path: PathBuf,
    /// Replaced wholesale by [`Store::compact`]; `None` only if a compaction failed
    /// to reopen the database.
    trees: std::sync::RwLock<Option<Trees>>,
    count: AtomicUsize,
}

/// Suffix of the directory a compaction writes into before it replaces the database.
const COMPACT_SUFFIX: &str = "compacting";
/// Suffix of the old database directory while a compaction swaps directories.
const OLD_SUFFIX: &str = "old";

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Finishes or undoes a compaction interrupted by a crash: with the database missing,
/// the fresh copy (complete, since it is only renamed into place after a flush) or the
/// old directory takes its place; leftovers are removed.
fn recover_compaction(path: &Path) -> std::io::Result<()> {
    let fresh = sibling(path, COMPACT_SUFFIX);
    let old = sibling(path, OLD_SUFFIX);
    if !path.exists() {
        if fresh.exists() {
            std::fs::rename(&fresh, path)?;
        } else if old.exists() {
            std::fs::rename(&old, path)?;
        }
    }
    for leftover in [fresh, old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover)?;
        }
    }
    Ok(())
}

fn time_key(ts: Timestamp, id: &EventId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&ts.0.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

impl Store {
    /// Opens (or creates) the database in directory `path`, finishing or undoing a
    /// compaction that a crash interrupted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        recover_compaction(path).map_err(|e| open_err(sled::Error::Io(e)))?;
        let trees = Trees::open(path).map_err(open_err)?;
        let count = trees.by_time.len();
        Ok(Store {
            path: path.to_path_buf(),
            trees: std::sync::RwLock::new(Some(trees)),
            count: AtomicUsize::new(count),
        })
    }

    /// Runs `f` on the open trees.
    fn with<R>(&self, f: impl FnOnce(&Trees) -> Result<R, sled::Error>) -> Result<R, StoreError> {
        let guard = self.trees.read().unwrap_or_else(|p| p.into_inner());
        let trees = guard.as_ref().ok_or_else(|| {
            self.corrupt(
                "database",
                "closed after a failed compaction; restart the node",
            )
        })?;
        f(trees).map_err(|e| self.io(e))
    }

    /// Rewrites the database into a fresh directory and swaps it in, so that bytes of
    /// erased events, which sled keeps in old log segments until it happens to reclaim
    /// them, are really gone. Blocks other store access while it runs (about a second
    /// per 100,000 events). A crash at any point leaves either the old or the new
    /// database, never neither ([`Store::open`] finishes the swap).
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        let old = guard
            .take()
            .ok_or_else(|| self.corrupt("database", "already closed"))?;
        let fresh = sibling(&self.path, COMPACT_SUFFIX);
        let copied = (|| -> Result<(), sled::Error> {
            old.db.flush()?;
            if fresh.exists() {
                std::fs::remove_dir_all(&fresh)?;
            }
            // sled's own export/import panics on I/O errors; copy tree by tree instead.
            let new = open_db(sled::Config::new().path(&fresh))?;
            for name in old.db.tree_names() {
                let from = old.db.open_tree(&name)?;
                let to = new.open_tree(&name)?;
                for kv in from.iter() {
                    let (k, v) = kv?;
                    to.insert(k, v)?;
                }
            }
            new.flush()?;
            Ok(())
        })();
        drop(old);
        if let Err(e) = copied {
            let _ = std::fs::remove_dir_all(&fresh);
            *guard = Some(Trees::open(&self.path).map_err(|e| self.io(e))?);
            return Err(self.io(e));
        }
        let swap = (|| -> std::io::Result<()> {
            let old_dir = sibling(&self.path, OLD_SUFFIX);
            std::fs::rename(&self.path, &old_dir)?;
            std::fs::rename(&fresh, &self.path)?;
            std::fs::remove_dir_all(&old_dir)
        })();
        if let Err(e) = swap {
            recover_compaction(&self.path).map_err(|e| self.io(sled::Error::Io(e)))?;
            *guard = Some(Trees::open(&self.path).map_err(|e| self.io(e))?);
            return Err(self.io(sled::Error::Io(e)));
        }
        *guard = Some(Trees::open(&self.path).map_err(|e| self.io(e))?);
        Ok(())
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, tree: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            tree,
            detail: detail.into(),
        }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores an event (already validated). Returns `false` if it was already there.
    /// Not durable until [`Store::flush`].
    pub fn insert(&self, event: &Event) -> Result<bool, StoreError> {
        let id = event.id();
        let tk = time_key(event.timestamp(), &id);
        let (events_tree, by_time_tree) =
            self.with(|t| Ok((t.events.clone(), t.by_time.clone())))?;
        let res: Result<bool, TransactionError<()>> =
            (&events_tree, &by_time_tree).transaction(|(events, by_time)| {
                if events.get(id.0)?.is_some() {
                    return Ok(false);
                }
                events.insert(&id.0[..], event.bytes())?;
                by_time.insert(&tk[..], &[][..])?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            });
        match res {
            Ok(new) => {
                if new {
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(new)
            }
            Err(TransactionError::Storage(e)) => Err(self.io(e)),
            Err(TransactionError::Abort(())) => Ok(false),
        }
    }

    /// Makes every write so far durable (fsync).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.with(|t| t.db.flush().map(|_| ()))
    }

    /// Wire bytes of an event, if held.
    pub fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|t| Ok(t.events.get(id.0)?.map(|v| v.to_vec())))
    }

    /// Whether an event is held.
    pub fn contains(&self, id: &EventId) -> Result<bool, StoreError> {
        self.with(|t| t.events.contains_key(id.0))
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every held event's wire bytes, in id order.
    pub fn events(&self) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        // A clone of the tree handle: the iterator does not hold the lock.
        let tree = self.with(|t| Ok(t.events.clone()));
        let (iter, err) = match tree {
            Ok(t) => (Some(t.iter().values()), None),
            Err(e) => (None, Some(e)),
        };
        err.map(Err).into_iter().chain(
            iter.into_iter()
                .flatten()
                .map(|r| r.map(|v| v.to_vec()).map_err(|e| self.io(e))),
        )
    }

    /// Every held event's `(timestamp, id)`, in time order: the reconciliation set.
    pub fn sync_items(&self) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
        let mut out = Vec::with_capacity(self.len());
        let by_time = self.with(|t| Ok(t.by_time.clone()))?;
        for k in by_time.iter().keys() {
            let k = k.map_err(|e| self.io(e))?;
            if k.len() != 40 {
                return Err(self.corrupt("by_time", format!("key of {} bytes", k.len())));
            }
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&k[..8]);
            let mut id = [0u8; 32];
            id.copy_from_slice(&k[8..]);
            out.push((Timestamp(u64::from_be_bytes(ts)), EventId(id)));
        }
        Ok(out)
    }

    /// Every held id, ascending (for the digest).
    pub fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        let mut out = Vec::with_capacity(self.len());
        let events = self.with(|t| Ok(t.events.clone()))?;
        for k in events.iter().keys() {
            let k = k.map_err(|e| self.io(e))?;
            let id: [u8; 32] = k
                .as_ref()
                .try_into()
                .map_err(|_| self.corrupt("events", format!("key of {} bytes", k.len())))?;
            out.push(EventId(id));
        }
        Ok(out)
    }

    /// Removes an event's bytes for good and remembers that it was erased, with its
    /// kind. Not durable until [`Store::flush`].
    pub fn erase(&self, id: &EventId, kind: u16) -> Result<(), StoreError> {
        let removed = self.with(|t| {
            t.erased.insert(id.0, &kind.to_be_bytes())?;
            let Some(bytes) = t.events.remove(id.0)? else {
                return Ok(false);
            };
            if let Ok(e) = Event::decode(&bytes) {
                t.by_time.remove(time_key(e.timestamp(), id))?;
            }
            Ok(true)
        })?;
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The kind of an erased event, if `id` was erased.
    pub fn erased_kind(&self, id: &EventId) -> Result<Option<u16>, StoreError> {
        let Some(v) = self.with(|t| t.erased.get(id.0))? else {
            return Ok(None);
        };
        let b: [u8; 2] = v
            .as_ref()
            .try_into()
            .map_err(|_| self.corrupt("erased", "kind of wrong length"))?;
        Ok(Some(u16::from_be_bytes(b)))
    }

    /// A setting.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|t| Ok(t.meta.get(key)?.map(|v| v.to_vec())))
    }

    /// Sets a setting and flushes.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.with(|t| t.meta.insert(key, value))?;
        self.flush()
    }

    /// A peer's record.
    pub fn peer(&self, peer: &str) -> Result<Option<PeerRecord>, StoreError> {
        match self.with(|t| t.peers.get(peer))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|e| self.corrupt("peers", e.to_string())),
        }
    }

    /// Every peer in the book.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        let mut out = Vec::new();
        let peers = self.with(|t| Ok(t.peers.clone()))?;
        for r in peers.iter() {
            let (k, v) = r.map_err(|e| self.io(e))?;
            let rec = postcard::from_bytes(&v).map_err(|e| self.corrupt("peers", e.to_string()))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), rec));
        }
        Ok(out)
    }

    /// Updates a peer's record (not flushed: the peer book is a cache).
    pub fn set_peer(&self, peer: &str, rec: &PeerRecord) -> Result<(), StoreError> {
        let v = postcard::to_stdvec(rec).map_err(|e| self.corrupt("peers", e.to_string()))?;
        self.with(|t| t.peers.insert(peer, v).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidmesh_protocol::Identity;

    fn ev(n: u64) -> Event {
        Event::create_raw(
            &Identity::from_seed([1; 32]),
            1,
            Timestamp(n),
            999,
            &n.to_le_bytes(),
        )
    }

    #[test]
    fn insert_is_idempotent_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (ev(2), ev(1));
        {
            let s = Store::open(dir.path()).unwrap();
            assert!(s.insert(&a).unwrap());
            assert!(!s.insert(&a).unwrap());
            assert!(s.insert(&b).unwrap());
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&a.id()).unwrap().unwrap(), a.bytes());
        let items = s.sync_items().unwrap();
        assert_eq!(
            items,
            vec![(b.timestamp(), b.id()), (a.timestamp(), a.id())]
        );
    }

    #[test]
    fn erase_removes_the_bytes_and_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = ev(5);
        s.insert(&a).unwrap();
        s.erase(&a.id(), 4).unwrap();
        assert_eq!(s.len(), 0);
        assert!(s.get(&a.id()).unwrap().is_none());
        assert!(s.sync_items().unwrap().is_empty());
        assert_eq!(s.erased_kind(&a.id()).unwrap(), Some(4));
    }

    #[test]
    fn a_damaged_database_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.insert(&ev(1)).unwrap();
            s.flush().unwrap();
        }
        // Overwrite the config file sled checks at start.
        std::fs::write(
            dir.path().join("conf"),
            b"garbage that is not a sled config",
        )
        .unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("damaged database must not open");
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }
}
