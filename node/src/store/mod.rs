//! Durable storage. The only module that knows the engine underneath is sled.
//!
//! This file holds the store's handle, its opening and its event trees. The rest, by
//! job: [`index`] (the in-memory time index), [`meta`] (settings and the peer book),
//! [`compact`] (rewriting the database so erased bytes are gone), [`layout`] (the
//! directory's generations, crash recovery, migration) and [`disk`] (the guard that
//! refuses writes before the disk is full).
//!
//! Trees:
//! - `log`: `timestamp (8 bytes BE) || id` → wire bytes, in the order set
//!   reconciliation walks; append-only except for erasure by redaction. Keyed by
//!   stamp so that an ingest (sync and gossip bring mostly recent events) appends near
//!   the end instead of writing a random page of a tree that outgrows sled's cache;
//! - `ids`: event id → timestamp (8 bytes BE): the small index that finds an event by
//!   id (duplicate checks, fetches), and the ids in order for the digest;
//! - `erased`: id → kind code (2 bytes BE) of events whose content a redaction removed;
//!   they are never fetched or stored again;
//! - `meta`: identity seed, community, settings, the pending-compaction flag, and
//!   for a few days the address each write from another machine came from (for a
//!   coordinator taking back a flood, see `Store::note_posted_from`);
//! - `peers`: the peer book (peer id → postcard [`PeerRecord`]);
//! - `arrived`: id → ms (8 bytes BE) when this node stored an event stamped before the
//!   build floor (an older node's clock in 1970): local, shown instead of the stamp.
//!
//! In memory, the store keeps the `(timestamp, id)` of every held event (the time
//! index: one sorted vector, 40 bytes an event, with the last few thousand changes
//! beside it; [`aidmesh_protocol::sync::SyncIndex`]), read from `ids` once at open and
//! kept up to date by every write. The duplicate check, the digest, the delivery
//! summaries and every sync session read it instead of `ids`: sled keeps every page
//! it has read whatever `cache_capacity` says, and walking `ids` left 17 MB of them
//! resident at 100,000 events (issue 14). A sync session's set is a snapshot of the
//! index sharing its vector, not a copy (copy-on-write: a change while a session
//! reads it writes a new vector); the digest reads the ids through their order, kept
//! as 4-byte positions once a digest is asked for (issue 28: before, a `BTreeSet`
//! of 43–80 bytes an event, a 40-byte copy for each sync set and a 32-byte sorted
//! copy of the ids for the digest). Beside it, a Bloom filter of every id in `ids`
//! and `erased` ([`id_filter`]) lets a question about an id never seen skip sled.
//!
//! Writes are not durable until [`Store::flush`] returns; the engine flushes before it
//! acknowledges a write to a user.
//!
//! Start file: a clean stop writes the time index, with the engine's view and counts,
//! to `start-file` beside `CURRENT` and its token to `meta`; the node's start
//! ([`Store::open_with_start_file`]) takes the token out (flushed) before anything is
//! written, deletes the file, and uses it only if it is the one this generation was
//! stopped with (`start_file.rs`). Otherwise the time index is read from `ids` as
//! above. Any other opener leaves both, and removes the token before its first write
//! of an event or a compaction.
//!
//! A database written before `log` and `ids` (trees `events`: id → bytes and
//! `by_time`: time key → empty) is migrated when it is opened (`migrate`).
//!
//! Compaction: sled keeps the bytes of removed values in old log segments, so after an
//! erasure the database is copied into a new generation and put in service
//! ([`Store::compact`]). Every erasure sets a flag in `meta` (durable with the erasure
//! itself) that only a finished compaction clears, so a compaction that failed or was
//! cut short by a crash is finished at the next start. The copy runs while reads and
//! writes go on; writes made meanwhile are replayed into the copy under a short
//! exclusive lock. A failed compaction leaves the old database open and serving.
//!
//! Layout of the store's directory: generation 0 is a sled database in the directory
//! itself (as every database was before generations); generation `n` is one in
//! `gen-<n>/`. The file `CURRENT` (`gen-<n>`, absent for 0) names the one in service;
//! it is replaced atomically (written to `CURRENT.tmp`, synced, renamed, directory
//! synced) once the copy is complete and durable, so a crash at any step leaves it
//! naming a complete generation. [`Store::open`] removes every other generation.

mod compact;
pub mod disk;
mod id_filter;
mod index;
mod layout;
mod meta;
mod scan;
mod start_file;
#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aidmesh_protocol::retention::is_welfare_kind;
use aidmesh_protocol::sync::SyncIndex;
use aidmesh_protocol::{Event, EventId, Timestamp};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use id_filter::IdFilter;
use index::{read_time_index, stamp, time_key};
use layout::{migrate, recover, Gen, Layout};
pub use scan::LogPart;
pub use start_file::Saved;

/// sled's page cache. Small on purpose: a Raspberry Pi may have 512 MB, and sled's
/// memory use otherwise grows towards the database size.
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A storage failure, naming the database.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the database at {path}: {source}. Keep this directory: it holds this hub's identity (the key that registered people and alone may forget them) and the community key; the data directory's community.card holds the community's name and six words. If the disk is full, free space and restart; if the database is damaged, see \"Data\" in docs/hub.md")]
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
    /// The node is stopping: its start file is written, so no event is taken any more
    /// ([`Store::close_writes`]). Whoever sent it keeps it and sends it again.
    #[error("database at {path}: the node is stopping; this write was not stored, try again once it runs")]
    Stopped {
        /// The database directory.
        path: PathBuf,
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
pub(crate) struct Trees {
    db: sled::Db,
    log: sled::Tree,
    ids: sled::Tree,
    erased: sled::Tree,
    meta: sled::Tree,
    peers: sled::Tree,
    arrived: sled::Tree,
    /// Which generation this is (see [`Layout`]).
    gen: Gen,
}

/// Whether sled failed only because another handle still holds the database's file
/// lock.
fn lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().contains("could not acquire lock"))
}

/// Opens a sled database, waiting (up to about 2 s) while a handle that was just
/// dropped still holds its lock: sled's background flusher outlives the handle briefly,
/// which matters when this process reopens a database it closed (restarts in tests).
/// Also the SMS gateway's records (`crate::sms::db`).
pub(crate) fn open_db(config: sled::Config) -> Result<sled::Db, sled::Error> {
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
    fn open(dir: &Path, gen: Gen) -> Result<Trees, sled::Error> {
        let db = open_db(sled::Config::new().path(dir).cache_capacity(CACHE_BYTES))?;
        migrate(&db)?;
        Trees::of(db, gen)
    }

    /// The trees of a database already open (a compacted copy put in service).
    fn of(db: sled::Db, gen: Gen) -> Result<Trees, sled::Error> {
        Ok(Trees {
            log: db.open_tree("log")?,
            ids: db.open_tree("ids")?,
            erased: db.open_tree("erased")?,
            meta: db.open_tree("meta")?,
            peers: db.open_tree("peers")?,
            arrived: db.open_tree("arrived")?,
            db,
            gen,
        })
    }
}

/// The node's database.
pub struct Store {
    path: PathBuf,
    /// Replaced wholesale by [`Store::compact`].
    trees: std::sync::RwLock<Trees>,
    count: AtomicUsize,
    /// Held events of the welfare kinds ([`is_welfare_kind`]): what a stranger's
    /// count leaves out. Set at start by whoever reads every event
    /// ([`Store::set_welfare_len`]), kept by inserts and erasures.
    welfare: AtomicUsize,
    /// `(timestamp, id)` of every event in `log` (see the module doc). Changed only
    /// inside a write to `ids`, so it always holds exactly what `ids` holds.
    held: Arc<Mutex<SyncIndex>>,
    /// Every id in `ids` or `erased`, and maybe a few more (see `id_filter.rs`):
    /// what lets a question about an unknown id skip sled.
    seen: Mutex<IdFilter>,
    /// While a compaction copies: the (tree, key) of every write made meanwhile, to
    /// replay into the copy.
    dirty: Mutex<Option<Vec<(&'static str, sled::IVec)>>>,
    /// Number of erasures so far: a compaction clears the pending flag only if none
    /// happened while it ran.
    erasures: AtomicU64,
    /// Number of finished compactions (for tests and benchmarks).
    compactions: AtomicU64,
    /// How long the last compaction held the store exclusively (for benchmarks).
    last_exclusive_us: AtomicU64,
    /// One compaction at a time.
    pub(crate) compacting: Mutex<()>,
    /// Set at a clean stop ([`Store::close_writes`]): events are refused from then on.
    closed: std::sync::atomic::AtomicBool,
    /// Whether `meta` may still hold a start file's token (opened by [`Store::open`]):
    /// the first write of an event or a compaction removes it first.
    token_left: std::sync::atomic::AtomicBool,
    /// What the start file gave at open (see `start_file.rs`), until the engine takes
    /// it, or why it gave nothing.
    start: Mutex<Option<Result<Saved, String>>>,
    /// Test hook: make the next compaction fail at a step.
    #[cfg(test)]
    pub(crate) fail_next: Mutex<Option<FailAt>>,
}

/// Where a test makes a compaction fail, or stop as if the process died there.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailAt {
    /// While copying into the new generation.
    Copy,
    /// Writing the pointer (as a full disk would): the old generation stays.
    Pointer,
    /// Crash: the copy is complete and flushed, the pointer not yet written.
    CrashAfterCopy,
    /// Crash: the new pointer is written to its temporary file, not yet renamed.
    CrashAfterPointerTmp,
    /// Crash: the pointer names the new generation; the old one is still on disk.
    CrashAfterPointer,
}

/// The error a simulated crash returns (test hooks only).
#[cfg(test)]
const CRASH: &str = "test: the process stops here";

#[cfg(test)]
fn crash() -> sled::Error {
    sled::Error::Io(std::io::Error::other(CRASH))
}

/// `meta` key set by every erasure and cleared by a finished compaction.
const COMPACTION_PENDING: &str = "compaction_pending";

impl Store {
    /// Opens (or creates) the database in directory `path`, finishing or undoing a
    /// compaction that a crash interrupted. Leaves a start file alone (the token of one
    /// is removed before the first write of an event, which makes the file unusable):
    /// for every opener but the node's start ([`Store::open_with_start_file`]).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_as(path, false)
    }

    /// [`Store::open`] for the node's start: also takes the start file written at the
    /// last clean stop (see `start_file.rs`). Its token is removed from `meta` (flushed)
    /// and the file deleted before anything is written, whatever is found; if it is the
    /// one this database was stopped with, the time index comes from it and the view
    /// and counts wait for the engine ([`Store::take_start`]), else the time index is
    /// read from `ids` and `take_start` says why.
    pub fn open_with_start_file(path: &Path) -> Result<Store, StoreError> {
        Store::open_as(path, true)
    }

    /// Opens the database for its settings (`meta`) only: no time index is read (at a
    /// million events that is seconds), no pending compaction is run, the start file
    /// is left alone, and every write of an event is refused. For `aidmesh up`'s look
    /// at the profile before the node's start ([`crate::node::prepare`]); its
    /// [`Store::len`] is 0 whatever is held.
    pub fn open_settings(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let gen = recover(path).map_err(|e| open_err(sled::Error::Io(e)))?;
        let trees = Trees::open(&Layout(path).dir(gen), gen).map_err(open_err)?;
        Ok(Store::new(
            path,
            trees,
            SyncIndex::default(),
            IdFilter::off(),
            Err("opened for its settings only".into()),
            true,
            false,
        ))
    }

    fn new(
        path: &Path,
        trees: Trees,
        held: SyncIndex,
        seen: IdFilter,
        start: Result<Saved, String>,
        closed: bool,
        token_left: bool,
    ) -> Store {
        Store {
            path: path.to_path_buf(),
            trees: std::sync::RwLock::new(trees),
            count: AtomicUsize::new(held.len()),
            welfare: AtomicUsize::new(0),
            held: Arc::new(Mutex::new(held)),
            seen: Mutex::new(seen),
            dirty: Mutex::new(None),
            erasures: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            last_exclusive_us: AtomicU64::new(0),
            compacting: Mutex::new(()),
            closed: std::sync::atomic::AtomicBool::new(closed),
            token_left: std::sync::atomic::AtomicBool::new(token_left),
            start: Mutex::new(Some(start)),
            #[cfg(test)]
            fail_next: Mutex::new(None),
        }
    }

    fn open_as(path: &Path, with_start_file: bool) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let gen = recover(path).map_err(|e| open_err(sled::Error::Io(e)))?;
        let trees = Trees::open(&Layout(path).dir(gen), gen).map_err(open_err)?;
        // Before anything is written: the token is removed (and the file deleted) so
        // that no later write can leave the file looking current.
        let found = if with_start_file {
            start_file::take(path, &trees).map_err(open_err)?
        } else {
            Err("the store was opened without its start file".into())
        };
        let token_left = trees
            .meta
            .contains_key(start_file::TOKEN_KEY)
            .map_err(open_err)?;
        let (mut held, start) = match found {
            Ok((items, saved)) => (SyncIndex::new(items), Ok(saved)),
            Err(why) => (read_time_index(path, &trees.ids)?, Err(why)),
        };
        let seen = IdFilter::of(path, &trees, &mut held)?;
        let store = Store::new(path, trees, held, seen, start, false, token_left);
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

    /// Runs `f` on the open trees.
    fn with<R>(&self, f: impl FnOnce(&Trees) -> Result<R, sled::Error>) -> Result<R, StoreError> {
        let guard = self.trees.read().unwrap_or_else(|p| p.into_inner());
        f(&guard).map_err(|e| self.io(e))
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

    /// [`Store::write`] of an event's trees (`log`, `ids`, `erased`, `arrived`):
    /// refused once [`Store::close_writes`] ran, checked under the same lock that
    /// `close_writes` takes exclusively, so none slips in after the start file.
    fn write_event<R>(
        &self,
        touched: &[(&'static str, &[u8])],
        f: impl FnOnce(&Trees) -> Result<R, sled::Error>,
    ) -> Result<R, StoreError> {
        let mut stopped = false;
        let r = self.write(touched, |t| {
            if self.closed.load(Ordering::SeqCst) {
                stopped = true;
                return Err(sled::Error::Unsupported("stopped".into()));
            }
            self.drop_start_token(t)?;
            f(t)
        });
        if stopped {
            return Err(StoreError::Stopped {
                path: self.path.clone(),
            });
        }
        r
    }

    /// Removes a start file's token left in `meta` (durably) before the first change
    /// of what the file describes, so the file is never trusted after it.
    pub(super) fn drop_start_token(&self, t: &Trees) -> Result<(), sled::Error> {
        if self.token_left.load(Ordering::SeqCst) {
            t.meta.remove(start_file::TOKEN_KEY)?;
            t.db.flush()?;
            self.token_left.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The clean stop's first step: every later write of an event fails
    /// ([`StoreError::Stopped`]); a write under way finishes first.
    pub fn close_writes(&self) {
        let _all = self.trees.write().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::SeqCst);
    }

    /// What the start file gave at open: the view and counts (once; the engine's
    /// start takes them), or why there are none and every event must be read.
    pub fn take_start(&self) -> Result<Saved, String> {
        self.start
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| Err("the start file's state was taken already".into()))
    }

    /// Writes the start file of `bytes` under `token` (temporary file, fsync, rename,
    /// fsync of the directory), then stores the token in `meta` and flushes. For the
    /// clean stop, after [`Store::close_writes`] and a flush. Holds off a compaction
    /// meanwhile, so the token lands in the generation the file names.
    pub fn write_start_file(
        &self,
        bytes: &[u8],
        token: &aidmesh_protocol::start_file::Token,
    ) -> Result<(), String> {
        let guard = self.trees.read().unwrap_or_else(|p| p.into_inner());
        start_file::write(&self.path, &guard, bytes, token)
    }

    /// The database generation in service (what a start file is written for).
    pub fn generation(&self) -> u64 {
        self.trees.read().unwrap_or_else(|p| p.into_inner()).gen.0
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
    /// second look-up. `log` is written last, so an event present there is always in
    /// `ids` too; a crash between the two writes leaves only an `ids` entry without
    /// its event, which [`Store::repair_time_index`] removes at the next start. Not
    /// durable until [`Store::flush`].
    pub fn insert_new(&self, event: &Event) -> Result<(), StoreError> {
        let id = event.id();
        let ts = event.timestamp();
        let tk = time_key(ts, &id);
        self.seen().insert(&id);
        // Inside the lock, so a compaction cannot swap the database under the write.
        self.write_event(&[("ids", &id.0), ("log", &tk)], |t| {
            t.ids.insert(&id.0[..], &ts.0.to_be_bytes())?;
            t.log.insert(&tk[..], event.bytes())?;
            self.held().insert((ts, id));
            Ok(())
        })?;
        self.count.fetch_add(1, Ordering::Relaxed);
        if is_welfare_kind(event.kind()) {
            self.welfare.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes every write so far durable (fsync).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.with(|t| t.db.flush().map(|_| ()))
    }

    /// Wire bytes of an event, if held.
    pub fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.seen().may_hold(id) {
            return Ok(None);
        }
        self.with(|t| {
            let Some(ts) = t.ids.get(id.0)?.as_deref().and_then(stamp) else {
                return Ok(None);
            };
            Ok(t.log.get(time_key(ts, id))?.map(|v| v.to_vec()))
        })
    }

    /// The stored bytes of the event `id` stamped `ts`: one look-up in `log`, where
    /// [`Store::get`] first finds the stamp in `ids` (for readers that know it, such
    /// as a word search through the view's heads).
    pub fn get_at(&self, ts: Timestamp, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|t| Ok(t.log.get(time_key(ts, id))?.map(|v| v.to_vec())))
    }

    /// Whether an event is held.
    pub fn contains(&self, id: &EventId) -> Result<bool, StoreError> {
        if !self.seen().may_hold(id) {
            return Ok(false);
        }
        self.with(|t| t.ids.contains_key(id.0))
    }

    /// Whether the event `id` stamped `ts` is held: a look-up in the time index in
    /// memory, so the duplicate check of an ingest reads no page of sled's. Same
    /// answer as [`Store::contains`] (an id fixes its stamp).
    pub fn contains_at(&self, ts: Timestamp, id: &EventId) -> Result<bool, StoreError> {
        Ok(self.held().contains(&(ts, *id)))
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Number of held events of the welfare kinds (see [`is_welfare_kind`]).
    pub fn welfare_len(&self) -> usize {
        self.welfare.load(Ordering::Relaxed).min(self.len())
    }

    /// Sets the number of held welfare events, counted by a reader of every event
    /// at start (before anything is written).
    pub fn set_welfare_len(&self, n: usize) {
        self.welfare.store(n, Ordering::Relaxed);
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every held event's wire bytes, in time order.
    pub fn events(&self) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        // A clone of the tree handle: the iterator does not hold the lock.
        let tree = self.with(|t| Ok(t.log.clone()));
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

    /// Removes an event's bytes and remembers that it was erased, with its kind; if it
    /// was held, sets the pending-compaction flag (the bytes stay in sled's log until
    /// [`Store::compact`]). Returns whether it was held. Not durable until
    /// [`Store::flush`].
    pub fn erase(&self, id: &EventId, kind: u16) -> Result<bool, StoreError> {
        self.seen().insert(id);
        let tk = self
            .with(|t| t.ids.get(id.0))?
            .as_deref()
            .and_then(stamp)
            .map(|ts| time_key(ts, id));
        let mut touched: Vec<(&'static str, &[u8])> = vec![
            ("erased", &id.0),
            ("ids", &id.0),
            ("arrived", &id.0),
            ("meta", COMPACTION_PENDING.as_bytes()),
        ];
        if let Some(tk) = &tk {
            touched.push(("log", tk));
        }
        let removed = self.write_event(&touched, |t| {
            t.erased.insert(id.0, &kind.to_be_bytes())?;
            t.arrived.remove(id.0)?;
            let Some(tk) = &tk else {
                // Never stored: nothing to compact away.
                return Ok(false);
            };
            // `log` first: an event in `log` is always in `ids` (see `insert_new`).
            t.log.remove(&tk[..])?;
            t.ids.remove(id.0)?;
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&tk[..8]);
            self.held()
                .remove(&(Timestamp(u64::from_be_bytes(ts)), *id));
            t.meta.insert(COMPACTION_PENDING, &[1])?;
            Ok(true)
        })?;
        if removed {
            self.erasures.fetch_add(1, Ordering::SeqCst);
            self.count.fetch_sub(1, Ordering::Relaxed);
            if is_welfare_kind(kind) {
                let _ = self
                    .welfare
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
            }
        }
        Ok(removed)
    }

    /// Records when this node stored event `id` (see the `arrived` tree). Not durable
    /// until [`Store::flush`].
    pub fn set_arrival(&self, id: &EventId, at_ms: u64) -> Result<(), StoreError> {
        self.write_event(&[("arrived", &id.0)], |t| {
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
        if !self.seen().may_hold(id) {
            return Ok(None);
        }
        let Some(v) = self.with(|t| t.erased.get(id.0))? else {
            return Ok(None);
        };
        let b: [u8; 2] = v
            .as_ref()
            .try_into()
            .map_err(|_| self.corrupt("erased", "kind of wrong length"))?;
        Ok(Some(u16::from_be_bytes(b)))
    }

    /// Every erasure the store remembers: the id and the kind (for backups); a
    /// malformed record is skipped.
    pub fn erasures(&self) -> Result<Vec<(EventId, u16)>, StoreError> {
        self.with(|t| {
            let mut out = Vec::new();
            for kv in t.erased.iter() {
                let (k, v) = kv?;
                if let (Ok(id), Ok(kind)) = (
                    <[u8; 32]>::try_from(k.as_ref()),
                    <[u8; 2]>::try_from(v.as_ref()),
                ) {
                    out.push((EventId(id), u16::from_be_bytes(kind)));
                }
            }
            Ok(out)
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
        if let Err(e) = guard.db.flush() {
            // Nothing is closed yet: the store works on, only its cache is not freed.
            tracing::warn!(error = %e, "could not flush the database to reopen it; it keeps its cache");
            return Ok(());
        }
        let gen = guard.gen;
        // sled allows one handle per directory, so the old one must be dropped before
        // the reopen: a throwaway in-memory database stands in for that moment (the
        // write lock keeps everyone out of it).
        let stand_in = sled::Config::new()
            .temporary(true)
            .open()
            .and_then(|db| Trees::of(db, gen))
            .map_err(|e| self.io(e))?;
        drop(std::mem::replace(&mut *guard, stand_in));
        // An error here leaves the store unusable: the caller (the engine's start)
        // fails rather than serve from the stand-in.
        *guard = Trees::open(&Layout(&self.path).dir(gen), gen).map_err(|e| self.io(e))?;
        Ok(())
    }
}
