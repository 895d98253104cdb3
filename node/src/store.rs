//! Durable storage. The only module that knows the engine underneath is sled.
//!
//! Trees:
//! - `events`: event id → wire bytes, append-only except for erasure by redaction;
//! - `by_time`: `timestamp (8 bytes BE) || id` → empty, the order set reconciliation
//!   walks;
//! - `erased`: id → kind code (2 bytes BE) of events whose content a redaction removed;
//!   they are never fetched or stored again;
//! - `meta`: identity seed, community, settings, and the pending-compaction flag;
//! - `peers`: the peer book (peer id → postcard [`PeerRecord`]);
//! - `arrived`: id → ms (8 bytes BE) when this node stored an event stamped before the
//!   build floor (an older node's clock in 1970): local, shown instead of the stamp.
//!
//! Writes are not durable until [`Store::flush`] returns; the engine flushes before it
//! acknowledges a write to a user.
//!
//! Compaction: sled keeps the bytes of removed values in old log segments, so after an
//! erasure the database is copied into a fresh directory and swapped in
//! ([`Store::compact`]). Every erasure sets a flag in `meta` (durable with the erasure
//! itself) that only a finished compaction clears, so a compaction that failed or was
//! cut short by a crash is finished at the next start. The copy runs while reads and
//! writes go on; writes made meanwhile are replayed into the copy under a short
//! exclusive lock. A failed compaction leaves the old database open and serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use aidmesh_protocol::{Event, EventId, Timestamp};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

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
    /// Too little free disk to take new events (see [`crate::disk`]).
    #[error(transparent)]
    DiskFull(#[from] crate::disk::DiskFull),
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
pub(crate) struct Trees {
    db: sled::Db,
    events: sled::Tree,
    by_time: sled::Tree,
    erased: sled::Tree,
    meta: sled::Tree,
    peers: sled::Tree,
    arrived: sled::Tree,
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
            arrived: db.open_tree("arrived")?,
            db,
        })
    }
}

/// The node's database.
pub struct Store {
    path: PathBuf,
    /// Replaced wholesale by [`Store::compact`]; `None` only if both the compacted and
    /// the old database failed to reopen, in which case every access tries again.
    trees: std::sync::RwLock<Option<Trees>>,
    count: AtomicUsize,
    /// While a compaction copies: the (tree, key) of every write made meanwhile, to
    /// replay into the copy.
    dirty: Mutex<Option<Vec<(&'static str, sled::IVec)>>>,
    /// Number of erasures so far: a compaction clears the pending flag only if none
    /// happened while it ran.
    erasures: AtomicU64,
    /// Number of finished compactions (for tests and benchmarks).
    compactions: AtomicU64,
    /// One compaction at a time.
    pub(crate) compacting: Mutex<()>,
    /// Test hook: make the next compaction fail at a step.
    #[cfg(test)]
    pub(crate) fail_next: Mutex<Option<FailAt>>,
}

/// Where a test makes a compaction fail.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailAt {
    /// While copying into the fresh directory.
    Copy,
    /// Opening the compacted database after the swap (as a full disk or a lock would).
    OpenNew,
}

/// `meta` key set by every erasure and cleared by a finished compaction.
const COMPACTION_PENDING: &str = "compaction_pending";

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
        let store = Store {
            path: path.to_path_buf(),
            trees: std::sync::RwLock::new(Some(trees)),
            count: AtomicUsize::new(count),
            dirty: Mutex::new(None),
            erasures: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            compacting: Mutex::new(()),
            #[cfg(test)]
            fail_next: Mutex::new(None),
        };
        if store.compaction_pending()? {
            // An erasure whose compaction failed or was interrupted: finish it now,
            // so the erased bytes do not outlive a restart.
            match store.compact() {
                Ok(()) => info!(db = %path.display(), "finished a pending compaction"),
                Err(e) => {
                    warn!(error = %e, "a pending compaction failed again; the node retries it later")
                }
            }
        }
        Ok(store)
    }

    /// Runs `f` on the open trees. If they were lost by a failed compaction (both
    /// databases failed to reopen), tries to reopen them first.
    fn with<R>(&self, f: impl FnOnce(&Trees) -> Result<R, sled::Error>) -> Result<R, StoreError> {
        {
            let guard = self.trees.read().unwrap_or_else(|p| p.into_inner());
            if let Some(trees) = guard.as_ref() {
                return f(trees).map_err(|e| self.io(e));
            }
        }
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            recover_compaction(&self.path).map_err(|e| self.io(sled::Error::Io(e)))?;
            *guard = Some(Trees::open(&self.path).map_err(|e| self.io(e))?);
        }
        let trees = guard
            .as_ref()
            .ok_or_else(|| self.corrupt("database", "not open"))?;
        f(trees).map_err(|e| self.io(e))
    }

    /// Runs a write `f` on the open trees and, while a compaction copies, remembers
    /// the keys it touched (`touched` lists them) so the copy gets them too.
    fn write<R>(
        &self,
        touched: &[(&'static str, &[u8])],
        f: impl FnOnce(&Trees) -> Result<R, sled::Error>,
    ) -> Result<R, StoreError> {
        self.with(|t| {
            let r = f(t)?;
            // Recorded while the read lock is held: the compaction's exclusive phase
            // sees every write that reached the old database.
            if let Some(d) = self
                .dirty
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                d.extend(
                    touched
                        .iter()
                        .map(|(tree, k)| (*tree, sled::IVec::from(*k))),
                );
            }
            Ok(r)
        })
    }

    /// Whether an erasure still waits for its compaction.
    pub fn compaction_pending(&self) -> Result<bool, StoreError> {
        self.with(|t| t.meta.contains_key(COMPACTION_PENDING))
    }

    /// How many compactions finished since the store was opened.
    pub fn compactions(&self) -> u64 {
        self.compactions.load(Ordering::Relaxed)
    }

    /// Rewrites the database into a fresh directory and swaps it in, so that bytes of
    /// erased events, which sled keeps in old log segments until it happens to reclaim
    /// them, are really gone (about a second per 100,000 events). Reads and writes go
    /// on during the copy; only the replay of writes made meanwhile and the swap hold
    /// the store exclusively. On any failure the old database stays (or is put back)
    /// in service and the pending flag stays set. A crash at any point leaves either
    /// the old or the new database, never neither ([`Store::open`] finishes the swap
    /// and then the compaction).
    pub fn compact(&self) -> Result<(), StoreError> {
        let _one = self.compacting.lock().unwrap_or_else(|p| p.into_inner());
        let started = self.erasures.load(Ordering::SeqCst);
        let fresh = sibling(&self.path, COMPACT_SUFFIX);
        let old_db = self.with(|t| Ok(t.db.clone()))?;
        *self.dirty.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let copied = self.copy_into(&old_db, &fresh);
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        let exclusive = std::time::Instant::now();
        let mut replayed = 0u128;
        let dirty = self
            .dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        let finished = copied.and_then(|new| {
            // Nothing writes now: bring the copy up to date, then close it.
            for (tree, key) in dirty {
                let (from, to) = (old_db.open_tree(tree)?, new.open_tree(tree)?);
                match from.get(&key)? {
                    Some(v) => to.insert(key, v)?,
                    None => to.remove(key)?,
                };
            }
            if self.erasures.load(Ordering::SeqCst) == started {
                new.open_tree("meta")?.remove(COMPACTION_PENDING)?;
            }
            old_db.flush()?;
            new.flush()?;
            replayed = exclusive.elapsed().as_millis();
            Ok(())
        });
        drop(old_db);
        if let Err(e) = finished {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(self.io(e));
        }
        // Swap directories. The old handle goes first (sled keeps a lock file in the
        // directory); until the new database opens, the old one can be put back.
        let old_trees = guard.take();
        drop(old_trees);
        let closed = exclusive.elapsed().as_millis();
        let old_dir = sibling(&self.path, OLD_SUFFIX);
        let swapped = std::fs::rename(&self.path, &old_dir)
            .and_then(|()| std::fs::rename(&fresh, &self.path))
            .map_err(sled::Error::Io)
            .and_then(|()| self.open_compacted());
        match swapped {
            Ok(trees) => {
                *guard = Some(trees);
                drop(guard);
                // Where the exclusive phase goes (issue 14): replaying the writes made
                // during the copy and flushing, closing the old database, renaming
                // and reopening.
                info!(
                    exclusive_ms = exclusive.elapsed().as_millis() as u64,
                    replay_ms = replayed as u64,
                    close_ms = (closed - replayed) as u64,
                    "compaction swapped the new database in"
                );
                let _ = std::fs::remove_dir_all(&old_dir);
                self.compactions.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Put the old database back and keep serving from it.
                if old_dir.exists() {
                    if self.path.exists() {
                        let _ = std::fs::remove_dir_all(&self.path);
                    }
                    let _ = std::fs::rename(&old_dir, &self.path);
                }
                let _ = std::fs::remove_dir_all(&fresh);
                *guard = Trees::open(&self.path).ok();
                Err(self.io(e))
            }
        }
    }

    /// Copies every tree of `old` into a new database at `fresh` (left open).
    fn copy_into(&self, old: &sled::Db, fresh: &Path) -> Result<sled::Db, sled::Error> {
        #[cfg(test)]
        if self.take_failure(FailAt::Copy) {
            return Err(sled::Error::Io(std::io::Error::other("test: copy fails")));
        }
        old.flush()?;
        if fresh.exists() {
            std::fs::remove_dir_all(fresh)?;
        }
        // sled's own export/import panics on I/O errors; copy tree by tree instead.
        let new = open_db(sled::Config::new().path(fresh))?;
        for name in old.tree_names() {
            let from = old.open_tree(&name)?;
            let to = new.open_tree(&name)?;
            for kv in from.iter() {
                let (k, v) = kv?;
                to.insert(k, v)?;
            }
        }
        // Written out now, while reads and writes go on: the exclusive phase that
        // follows then only flushes the few writes it replays (issue 14).
        new.flush()?;
        Ok(new)
    }

    /// Opens the database just swapped into place.
    fn open_compacted(&self) -> Result<Trees, sled::Error> {
        #[cfg(test)]
        if self.take_failure(FailAt::OpenNew) {
            return Err(sled::Error::Io(std::io::Error::other("test: open fails")));
        }
        Trees::open(&self.path)
    }

    /// Test hook: blocks every access to the store until the guard is dropped, as a
    /// slow disk or the swap of a compaction would.
    #[cfg(test)]
    pub(crate) fn stall(&self) -> std::sync::RwLockWriteGuard<'_, Option<Trees>> {
        self.trees.write().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn take_failure(&self, at: FailAt) -> bool {
        let mut f = self.fail_next.lock().unwrap_or_else(|p| p.into_inner());
        if *f == Some(at) {
            *f = None;
            return true;
        }
        false
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
        if self.contains_at(event.timestamp(), &event.id())? {
            return Ok(false);
        }
        self.insert_new(event)?;
        Ok(true)
    }

    /// Stores an event the caller has just checked is not held (the engine does, under
    /// its lock, before filing it): one plain write per tree, no transaction and no
    /// second look-up. `events` is written last, so an event present there is always
    /// in `by_time` too; a crash between the two writes leaves only a `by_time` key
    /// without its event, which [`Store::repair_time_index`] removes at the next
    /// start. Not durable until [`Store::flush`].
    pub fn insert_new(&self, event: &Event) -> Result<(), StoreError> {
        let id = event.id();
        let tk = time_key(event.timestamp(), &id);
        // Inside the lock, so a compaction cannot swap the database under the write.
        self.write(&[("events", &id.0), ("by_time", &tk)], |t| {
            t.by_time.insert(&tk[..], &[][..])?;
            t.events.insert(&id.0[..], event.bytes())?;
            Ok(())
        })?;
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes `by_time` hold exactly the events of `events`, after an unclean stop
    /// (see [`Store::insert_new`]); `held` is the number of events in `events`, which
    /// the caller has just counted. Cheap when nothing is wrong: it compares counts.
    /// Returns how many stray keys it removed.
    pub fn repair_time_index(&self, held: usize) -> Result<usize, StoreError> {
        if held == self.len() {
            return Ok(0);
        }
        let mut stray = Vec::new();
        let (events, by_time) = self.with(|t| Ok((t.events.clone(), t.by_time.clone())))?;
        for k in by_time.iter().keys() {
            let k = k.map_err(|e| self.io(e))?;
            let held = k.len() == 40 && events.contains_key(&k[8..]).map_err(|e| self.io(e))?;
            if !held {
                stray.push(k);
            }
        }
        for k in &stray {
            self.write(&[("by_time", k)], |t| t.by_time.remove(k).map(|_| ()))?;
        }
        // Should the log ever keep an event but lose its earlier `by_time` write, put
        // the key back.
        let mut count = self.with(|t| Ok(t.by_time.len()))?;
        if count != held {
            for kv in events.iter() {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                let Ok(e) = Event::decode(&v) else { continue };
                let tk = time_key(e.timestamp(), &e.id());
                if !by_time.contains_key(tk).map_err(|e| self.io(e))? {
                    self.write(&[("by_time", &tk)], |t| {
                        t.by_time.insert(&tk[..], &[][..]).map(|_| ())
                    })?;
                    warn!(id = %hex::encode(&k), "restored a missing time-index entry");
                }
            }
            count = self.with(|t| Ok(t.by_time.len()))?;
        }
        self.count.store(count, Ordering::Relaxed);
        if !stray.is_empty() {
            warn!(
                removed = stray.len(),
                "removed time-index entries of events not stored (an unclean stop)"
            );
        }
        Ok(stray.len())
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

    /// Whether the event `id` stamped `ts` is held: a look-up in `by_time`, whose
    /// value-less keys stay in sled's cache where `events` (every event's bytes) does
    /// not, so the duplicate check of an ingest does not read a page from disk.
    /// Same answer as [`Store::contains`]: an id fixes its stamp, and `by_time` and
    /// `events` hold the same events (see [`Store::insert_new`]).
    pub fn contains_at(&self, ts: Timestamp, id: &EventId) -> Result<bool, StoreError> {
        self.with(|t| t.by_time.contains_key(time_key(ts, id)))
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

    /// [`aidmesh_protocol::sync::digest`] of every held id (BLAKE3 over the ids in
    /// ascending order). The ids are taken from `by_time`, whose keys carry no value,
    /// and sorted here: walking `events` instead would pull every event's bytes
    /// through sled's cache (about 20 MB more resident at 100,000 events) for 32
    /// bytes of each.
    pub fn digest(&self) -> Result<[u8; 32], StoreError> {
        let mut ids = Vec::with_capacity(self.len());
        let by_time = self.with(|t| Ok(t.by_time.clone()))?;
        for k in by_time.iter().keys() {
            let k = k.map_err(|e| self.io(e))?;
            let id: [u8; 32] = k
                .get(8..)
                .and_then(|id| id.try_into().ok())
                .ok_or_else(|| self.corrupt("by_time", format!("key of {} bytes", k.len())))?;
            ids.push(EventId(id));
        }
        ids.sort_unstable();
        Ok(aidmesh_protocol::sync::digest(&ids))
    }

    /// Every held id, ascending.
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

    /// Removes an event's bytes and remembers that it was erased, with its kind; if it
    /// was held, sets the pending-compaction flag (the bytes stay in sled's log until
    /// [`Store::compact`]). Returns whether it was held. Not durable until
    /// [`Store::flush`].
    pub fn erase(&self, id: &EventId, kind: u16) -> Result<bool, StoreError> {
        let tk = self
            .get(id)?
            .and_then(|b| Event::decode(&b).ok())
            .map(|e| time_key(e.timestamp(), id));
        let mut touched: Vec<(&'static str, &[u8])> = vec![
            ("erased", &id.0),
            ("events", &id.0),
            ("arrived", &id.0),
            ("meta", COMPACTION_PENDING.as_bytes()),
        ];
        if let Some(tk) = &tk {
            touched.push(("by_time", tk));
        }
        let removed = self.write(&touched, |t| {
            t.erased.insert(id.0, &kind.to_be_bytes())?;
            t.arrived.remove(id.0)?;
            let Some(_) = t.events.remove(id.0)? else {
                // Never stored: nothing to compact away.
                return Ok(false);
            };
            t.meta.insert(COMPACTION_PENDING, &[1])?;
            if let Some(tk) = &tk {
                t.by_time.remove(tk)?;
            }
            Ok(true)
        })?;
        if removed {
            self.erasures.fetch_add(1, Ordering::SeqCst);
        }
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Records when this node stored event `id` (see the `arrived` tree). Not durable
    /// until [`Store::flush`].
    pub fn set_arrival(&self, id: &EventId, at_ms: u64) -> Result<(), StoreError> {
        self.write(&[("arrived", &id.0)], |t| {
            t.arrived.insert(id.0, &at_ms.to_be_bytes()).map(|_| ())
        })
    }

    /// When this node stored event `id`, if recorded.
    pub fn arrival(&self, id: &EventId) -> Result<Option<u64>, StoreError> {
        let v = self.with(|t| t.arrived.get(id.0))?;
        Ok(v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes)))
    }

    /// Every recorded arrival; a malformed record is skipped.
    pub fn arrivals(&self) -> Result<Vec<(EventId, u64)>, StoreError> {
        self.with(|t| {
            let mut out = Vec::new();
            for kv in t.arrived.iter() {
                let (k, v) = kv?;
                if let (Ok(id), Ok(ms)) = (
                    <[u8; 32]>::try_from(k.as_ref()),
                    <[u8; 8]>::try_from(v.as_ref()),
                ) {
                    out.push((EventId(id), u64::from_be_bytes(ms)));
                }
            }
            Ok(out)
        })
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
        self.write(&[("meta", key.as_bytes())], |t| t.meta.insert(key, value))?;
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
        self.write(&[("peers", peer.as_bytes())], |t| {
            t.peers.insert(peer, v).map(|_| ())
        })
    }

    /// Flushes, closes and reopens the database (added by the view work, issue 14).
    /// sled keeps every page read since it was opened whatever `cache_capacity` says
    /// (about 28 MB once a start has read all 100,000 events; 8 MB after a reopen), and
    /// only closing hands that back. For the engine right after its start read every
    /// event; about 0.2 s at 100,000 events. Waits for a running compaction.
    pub fn release_cache(&self) -> Result<(), StoreError> {
        let _one = self.compacting.lock().unwrap_or_else(|p| p.into_inner());
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        if let Some(trees) = guard.take() {
            // On an error the old handle is put back: nothing is lost, only not freed.
            if let Err(e) = trees.db.flush() {
                *guard = Some(trees);
                return Err(self.io(e));
            }
        }
        // The old handle is dropped above; `open_db` waits for its file lock. On an
        // error the trees stay closed and the next `with` reopens them.
        *guard = Some(Trees::open(&self.path).map_err(|e| self.io(e))?);
        Ok(())
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
        assert!(s.contains_at(a.timestamp(), &a.id()).unwrap());
        assert!(!s.contains_at(a.timestamp(), &b.id()).unwrap());
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
    fn an_arrival_survives_reopen_and_goes_with_an_erasure() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (ev(5), ev(6));
        {
            let s = Store::open(dir.path()).unwrap();
            for (e, at) in [(&a, 1_000), (&b, 2_000)] {
                s.insert(e).unwrap();
                s.set_arrival(&e.id(), at).unwrap();
            }
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.arrival(&a.id()).unwrap(), Some(1_000));
        // The streamed digest is the protocol's digest of the sorted ids.
        let ids = s.ids().unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(s.digest().unwrap(), aidmesh_protocol::sync::digest(&ids));
        s.erase(&a.id(), 4).unwrap();
        assert_eq!(s.arrival(&a.id()).unwrap(), None);
        assert_eq!(s.arrivals().unwrap(), vec![(b.id(), 2_000)]);
    }

    #[test]
    fn the_time_index_is_repaired_after_an_unclean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, lost) = (ev(1), ev(2), ev(3));
        {
            let s = Store::open(dir.path()).unwrap();
            s.insert_new(&a).unwrap();
            s.insert_new(&b).unwrap();
            // A crash between the two writes of `insert_new`: the time key of `lost`
            // was written, its event was not.
            let tk = time_key(lost.timestamp(), &lost.id());
            s.with(|t| t.by_time.insert(&tk[..], &[][..])).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.len(), 3, "the test must start with a stray key");
        assert_eq!(s.repair_time_index(2).unwrap(), 1);
        let both = vec![(a.timestamp(), a.id()), (b.timestamp(), b.id())];
        assert_eq!((s.len(), s.sync_items().unwrap()), (2, both.clone()));
        // Nothing to do the second time.
        assert_eq!(s.repair_time_index(2).unwrap(), 0);
        // Should the log ever keep a later write but lose an earlier one, the
        // missing time key is put back.
        let tk = time_key(b.timestamp(), &b.id());
        s.with(|t| t.by_time.remove(&tk[..])).unwrap();
        let s = {
            s.flush().unwrap();
            drop(s);
            Store::open(dir.path()).unwrap()
        };
        assert_eq!(s.len(), 1);
        assert_eq!(s.repair_time_index(2).unwrap(), 0);
        assert_eq!((s.len(), s.sync_items().unwrap()), (2, both));
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
