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

/// The node's database.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    by_time: sled::Tree,
    erased: sled::Tree,
    meta: sled::Tree,
    peers: sled::Tree,
    count: AtomicUsize,
}

fn time_key(ts: Timestamp, id: &EventId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&ts.0.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

impl Store {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(open_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(open_err);
        let store = Store {
            path: path.to_path_buf(),
            events: tree("events")?,
            by_time: tree("by_time")?,
            erased: tree("erased")?,
            meta: tree("meta")?,
            peers: tree("peers")?,
            db,
            count: AtomicUsize::new(0),
        };
        store.count.store(store.by_time.len(), Ordering::Relaxed);
        Ok(store)
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
        let res: Result<bool, TransactionError<()>> =
            (&self.events, &self.by_time).transaction(|(events, by_time)| {
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
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }

    /// Wire bytes of an event, if held.
    pub fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .events
            .get(id.0)
            .map_err(|e| self.io(e))?
            .map(|v| v.to_vec()))
    }

    /// Whether an event is held.
    pub fn contains(&self, id: &EventId) -> Result<bool, StoreError> {
        self.events.contains_key(id.0).map_err(|e| self.io(e))
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
        self.events
            .iter()
            .values()
            .map(|r| r.map(|v| v.to_vec()).map_err(|e| self.io(e)))
    }

    /// Every held event's `(timestamp, id)`, in time order: the reconciliation set.
    pub fn sync_items(&self) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
        let mut out = Vec::with_capacity(self.len());
        for k in self.by_time.iter().keys() {
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
        for k in self.events.iter().keys() {
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
        self.erased
            .insert(id.0, &kind.to_be_bytes())
            .map_err(|e| self.io(e))?;
        if let Some(bytes) = self.events.remove(id.0).map_err(|e| self.io(e))? {
            if let Ok(e) = Event::decode(&bytes) {
                self.by_time
                    .remove(time_key(e.timestamp(), id))
                    .map_err(|e| self.io(e))?;
            }
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The kind of an erased event, if `id` was erased.
    pub fn erased_kind(&self, id: &EventId) -> Result<Option<u16>, StoreError> {
        let Some(v) = self.erased.get(id.0).map_err(|e| self.io(e))? else {
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
        Ok(self
            .meta
            .get(key)
            .map_err(|e| self.io(e))?
            .map(|v| v.to_vec()))
    }

    /// Sets a setting and flushes.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value).map_err(|e| self.io(e))?;
        self.flush()
    }

    /// A peer's record.
    pub fn peer(&self, peer: &str) -> Result<Option<PeerRecord>, StoreError> {
        match self.peers.get(peer).map_err(|e| self.io(e))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|e| self.corrupt("peers", e.to_string())),
        }
    }

    /// Every peer in the book.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        let mut out = Vec::new();
        for r in self.peers.iter() {
            let (k, v) = r.map_err(|e| self.io(e))?;
            let rec = postcard::from_bytes(&v).map_err(|e| self.corrupt("peers", e.to_string()))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), rec));
        }
        Ok(out)
    }

    /// Updates a peer's record (not flushed: the peer book is a cache).
    pub fn set_peer(&self, peer: &str, rec: &PeerRecord) -> Result<(), StoreError> {
        let v = postcard::to_stdvec(rec).map_err(|e| self.corrupt("peers", e.to_string()))?;
        self.peers
            .insert(peer, v)
            .map(|_| ())
            .map_err(|e| self.io(e))
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
