//! Durable storage. The only module that knows the engine underneath is sled.
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
//! index, about 45 bytes an event), read from `ids` once at open and kept up to date
//! by every write. The reconciliation set, the digest, the delivery summaries and the
//! duplicate check read it instead of `ids`: sled keeps every page it has read
//! whatever `cache_capacity` says, and walking `ids` left 17 MB of them resident at
//! 100,000 events (issue 14).
//!
//! Writes are not durable until [`Store::flush`] returns; the engine flushes before it
//! acknowledges a write to a user.
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

use std::collections::BTreeSet;
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

/// A generation of the database: `0` is a sled database in the store's directory
/// itself (every database before generations, and a new one), `n > 0` one in its
/// subdirectory `gen-<n>`. The pointer file [`POINTER`] names the generation in
/// service; without it, generation 0 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gen(u64);

/// Prefix of the `meta` keys noting where a write from another machine came from:
/// `posted-from/` || ms (8 bytes BE) || event id → the address, as text.
const POSTED_FROM: &[u8] = b"posted-from/";

/// The file naming the generation in service (`gen-<n>`), replaced atomically.
const POINTER: &str = "CURRENT";
/// Where the next pointer is written before it is renamed over [`POINTER`].
const POINTER_TMP: &str = "CURRENT.tmp";
/// Prefix of a generation's subdirectory.
const GEN_PREFIX: &str = "gen-";
/// What sled keeps in a database directory: how generation 0 is told apart from the
/// rest of the store's directory, to remove it once a later generation serves.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// The store's directory: generations and the pointer.
struct Layout<'a>(&'a Path);

impl Layout<'_> {
    fn dir(&self, gen: Gen) -> PathBuf {
        match gen.0 {
            0 => self.0.to_path_buf(),
            n => self.0.join(format!("{GEN_PREFIX}{n}")),
        }
    }

    /// The generation the pointer names (0 without a pointer).
    fn current(&self) -> std::io::Result<Gen> {
        let text = match std::fs::read_to_string(self.0.join(POINTER)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Gen(0)),
            Err(e) => return Err(e),
        };
        text.trim()
            .strip_prefix(GEN_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|&n| n > 0)
            .map(Gen)
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "{} names no generation ({text:?}; expected gen-<number>)",
                    self.0.join(POINTER).display()
                ))
            })
    }

    /// Puts `gen` in service: the pointer is written to a temporary file, synced,
    /// renamed over the old one and the directory synced, so that after a crash the
    /// pointer names either the old generation or `gen`, whole.
    fn point_to(&self, gen: Gen) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = self.0.join(POINTER_TMP);
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{GEN_PREFIX}{}", gen.0)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.0.join(POINTER))?;
        sync_dir(self.0)
    }

    /// Removes what a generation other than `keep` left: a copy that a crash or a
    /// failure interrupted, an old generation not yet removed, a pointer never
    /// renamed into place.
    fn remove_all_but(&self, keep: Gen) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self.0)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = if name == POINTER_TMP {
                true
            } else if let Some(n) = name.strip_prefix(GEN_PREFIX) {
                n.parse::<u64>().is_ok_and(|n| n != keep.0)
            } else {
                keep.0 != 0 && is_sled_file(&name)
            };
            if stale {
                let p = entry.path();
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
        Ok(())
    }

    /// Removes generation `gen` (not in service any more).
    fn remove(&self, gen: Gen) -> std::io::Result<()> {
        if gen.0 == 0 {
            for entry in std::fs::read_dir(self.0)? {
                let entry = entry?;
                if is_sled_file(&entry.file_name().to_string_lossy()) {
                    let p = entry.path();
                    if entry.file_type()?.is_dir() {
                        std::fs::remove_dir_all(&p)?;
                    } else {
                        std::fs::remove_file(&p)?;
                    }
                }
            }
            Ok(())
        } else {
            std::fs::remove_dir_all(self.dir(gen))
        }
    }
}

/// Copies the current value (or absence) of each `(tree, key)` from `old` to `new`.
fn replay(
    old: &sled::Db,
    new: &sled::Db,
    mut keys: Vec<(&'static str, sled::IVec)>,
) -> Result<(), sled::Error> {
    keys.sort_unstable();
    keys.dedup();
    for (tree, key) in keys {
        let (from, to) = (old.open_tree(tree)?, new.open_tree(tree)?);
        match from.get(&key)? {
            Some(v) => to.insert(key, v)?,
            None => to.remove(key)?,
        };
    }
    Ok(())
}

/// Makes a directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Trees of the layout before `log` and `ids`.
const OLD_EVENTS: &str = "events";
const OLD_BY_TIME: &str = "by_time";

/// Moves a database of the layout before `log` and `ids` to it: every event of
/// `events` (id → bytes) is written to `log` and `ids`, then the old trees are dropped
/// (`by_time` is not read: `ids` is built from the events themselves). A crash before the drops leaves
/// the old trees whole and the migration runs again at the next open (its writes are
/// idempotent). An undecodable stored event is skipped with a warning, as the engine's
/// start would skip it.
fn migrate(db: &sled::Db) -> Result<(), sled::Error> {
    let names = db.tree_names();
    let has = |n: &str| names.iter().any(|t| t.as_ref() == n.as_bytes());
    if !has(OLD_EVENTS) && !has(OLD_BY_TIME) {
        return Ok(());
    }
    if has(OLD_EVENTS) {
        let (old, log, ids) = (
            db.open_tree(OLD_EVENTS)?,
            db.open_tree("log")?,
            db.open_tree("ids")?,
        );
        let mut moved = 0usize;
        for kv in old.iter() {
            let (k, v) = kv?;
            let Ok(e) = Event::decode(&v) else {
                warn!(id = %hex::encode(&k), "skipping an undecodable stored event while migrating");
                continue;
            };
            let (ts, id) = (e.timestamp(), e.id());
            ids.insert(id.0, &ts.0.to_be_bytes())?;
            log.insert(time_key(ts, &id), v)?;
            moved += 1;
        }
        db.flush()?;
        db.drop_tree(OLD_EVENTS)?;
        info!(
            events = moved,
            "migrated the database to trees keyed by time"
        );
    }
    if has(OLD_BY_TIME) {
        db.drop_tree(OLD_BY_TIME)?;
    }
    db.flush()?;
    Ok(())
}

/// Whether events of `kind` are welfare records (a person registered, a check-in, a
/// sharing choice): how many of them a node holds is not told to strangers (issue 24
/// item 9: a count that rises with each visit tells when someone is checked on).
pub fn is_welfare_kind(kind: u16) -> bool {
    use aidmesh_protocol::BodyKind;
    [BodyKind::Person, BodyKind::CheckIn, BodyKind::Sharing]
        .iter()
        .any(|k| k.code() == kind)
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
    held: Mutex<BTreeSet<(Timestamp, EventId)>>,
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

/// Suffixes of the sibling directories of the swap before generations (by renaming
/// the whole database directory): an older node may have left one.
const LEGACY_SUFFIXES: [&str; 2] = ["compacting", "old"];

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Finishes or undoes a swap by directory renames (the scheme before generations)
/// that a crash interrupted: with the database missing, the fresh copy (complete,
/// since it was only renamed into place after a flush) or the old directory takes its
/// place; leftovers are removed.
fn recover_legacy_swap(path: &Path) -> std::io::Result<()> {
    let [fresh, old] = LEGACY_SUFFIXES.map(|s| sibling(path, s));
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

/// Finds the generation in service and removes every other one (a compaction that a
/// crash interrupted, at any step).
fn recover(path: &Path) -> std::io::Result<Gen> {
    recover_legacy_swap(path)?;
    std::fs::create_dir_all(path)?;
    let layout = Layout(path);
    let gen = layout.current()?;
    if !layout.dir(gen).join("conf").exists() && gen.0 != 0 {
        return Err(std::io::Error::other(format!(
            "{} names {}, which is missing or incomplete",
            path.join(POINTER).display(),
            layout.dir(gen).display()
        )));
    }
    layout.remove_all_but(gen)?;
    Ok(gen)
}

/// A stamp stored in `ids` (8 bytes BE).
fn stamp(v: &[u8]) -> Option<Timestamp> {
    <[u8; 8]>::try_from(v)
        .ok()
        .map(|b| Timestamp(u64::from_be_bytes(b)))
}

fn time_key(ts: Timestamp, id: &EventId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&ts.0.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

/// The time index of a database (see the module doc): every `ids` entry as
/// `(timestamp, id)`.
fn read_time_index(
    path: &Path,
    ids: &sled::Tree,
) -> Result<BTreeSet<(Timestamp, EventId)>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        tree: "ids",
        detail,
    };
    let mut out = Vec::new();
    for kv in ids.iter() {
        let (k, v) = kv.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let id = <[u8; 32]>::try_from(k.as_ref())
            .map_err(|_| corrupt(format!("key of {} bytes", k.len())))?;
        let ts = stamp(&v).ok_or_else(|| corrupt(format!("stamp of {} bytes", v.len())))?;
        out.push((ts, EventId(id)));
    }
    // Sorted first, so the set is built in one pass with full nodes.
    out.sort_unstable();
    Ok(out.into_iter().collect())
}

impl Store {
    /// The time index, locked.
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeSet<(Timestamp, EventId)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens (or creates) the database in directory `path`, finishing or undoing a
    /// compaction that a crash interrupted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let gen = recover(path).map_err(|e| open_err(sled::Error::Io(e)))?;
        let trees = Trees::open(&Layout(path).dir(gen), gen).map_err(open_err)?;
        let held = read_time_index(path, &trees.ids)?;
        let store = Store {
            path: path.to_path_buf(),
            trees: std::sync::RwLock::new(trees),
            count: AtomicUsize::new(held.len()),
            welfare: AtomicUsize::new(0),
            held: Mutex::new(held),
            dirty: Mutex::new(None),
            erasures: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            last_exclusive_us: AtomicU64::new(0),
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

    /// Whether an erasure still waits for its compaction.
    pub fn compaction_pending(&self) -> Result<bool, StoreError> {
        self.with(|t| t.meta.contains_key(COMPACTION_PENDING))
    }

    /// How many compactions finished since the store was opened.
    pub fn compactions(&self) -> u64 {
        self.compactions.load(Ordering::Relaxed)
    }

    /// How long the last finished compaction held the store exclusively, in µs.
    pub fn last_exclusive_us(&self) -> u64 {
        self.last_exclusive_us.load(Ordering::Relaxed)
    }

    /// Rewrites the database into a new generation and puts it in service, so that
    /// bytes of erased events, which sled keeps in old log segments until it happens
    /// to reclaim them, are really gone (about a second per 100,000 events).
    ///
    /// Reads and writes go on during the copy. Only the replay of writes made
    /// meanwhile, a flush of those, the pointer's write and the exchange of handles
    /// hold the store exclusively: the copy is already open, so nothing is closed or
    /// reopened under the lock. The old generation is closed and removed after. On any
    /// failure the old generation stays in service and the pending flag stays set. A
    /// crash at any step leaves the pointer naming a complete generation holding
    /// every acknowledged write ([`Store::open`] removes the other).
    pub fn compact(&self) -> Result<(), StoreError> {
        let _one = self.compacting.lock().unwrap_or_else(|p| p.into_inner());
        let started = self.erasures.load(Ordering::SeqCst);
        let layout = Layout(&self.path);
        let (old_db, old_gen) = self.with(|t| Ok((t.db.clone(), t.gen)))?;
        let gen = Gen(old_gen.0 + 1);
        let fresh = layout.dir(gen);
        *self.dirty.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let take_dirty = |last: bool| {
            let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            let keys = if last {
                d.take()
            } else {
                d.replace(Vec::new())
            };
            keys.unwrap_or_default()
        };
        let copied = self.copy_into(&old_db, &fresh).and_then(|new| {
            // Catch up with the writes made during the copy while writes go on (each is
            // recorded again if written again), so that the exclusive phase replays and
            // flushes only the last few.
            for _ in 0..4 {
                let keys = take_dirty(false);
                let n = keys.len();
                replay(&old_db, &new, keys)?;
                new.flush()?;
                if n < 16 {
                    break;
                }
            }
            Ok(new)
        });
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        let exclusive = std::time::Instant::now();
        let dirty = take_dirty(true);
        let mut steps = [0u64; 3];
        let replayed = copied.and_then(|new| {
            // Nothing writes now: bring the copy up to date and make it durable.
            replay(&old_db, &new, dirty)?;
            if self.erasures.load(Ordering::SeqCst) == started {
                new.open_tree("meta")?.remove(COMPACTION_PENDING)?;
            }
            steps[0] = exclusive.elapsed().as_micros() as u64;
            new.flush()?;
            steps[1] = exclusive.elapsed().as_micros() as u64;
            #[cfg(test)]
            if self.take_failure(FailAt::CrashAfterCopy) {
                return Err(crash());
            }
            Trees::of(new, gen)
        });
        let new_trees = match replayed {
            Ok(t) => t,
            Err(e) => {
                drop(guard);
                drop(old_db);
                #[cfg(test)]
                if matches!(&e, sled::Error::Io(io) if io.to_string() == CRASH) {
                    return Err(self.io(e));
                }
                let _ = std::fs::remove_dir_all(&fresh);
                return Err(self.io(e));
            }
        };
        // The switch: once the pointer names the copy, a restart opens it.
        if let Err(e) = self.point_to(&layout, gen) {
            drop(guard);
            #[cfg(test)]
            if e.to_string() == CRASH {
                return Err(self.io(sled::Error::Io(e)));
            }
            // The rename may or may not have happened: name the old generation again
            // (it is complete: nothing wrote to the copy only), then drop the copy.
            let back = if old_gen.0 == 0 {
                std::fs::remove_file(self.path.join(POINTER)).or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
            } else {
                layout.point_to(old_gen)
            };
            match back {
                Ok(()) => {
                    drop(new_trees);
                    let _ = std::fs::remove_dir_all(&fresh);
                }
                Err(b) => {
                    warn!(error = %b, "could not restore the database pointer after a failed compaction; the next start picks a complete generation")
                }
            }
            let _ = std::fs::remove_file(self.path.join(POINTER_TMP));
            return Err(self.io(sled::Error::Io(e)));
        }
        steps[2] = exclusive.elapsed().as_micros() as u64;
        let old_trees = std::mem::replace(&mut *guard, new_trees);
        drop(guard);
        let held_us = exclusive.elapsed().as_micros() as u64;
        self.last_exclusive_us.store(held_us, Ordering::Relaxed);
        #[cfg(test)]
        if self.take_failure(FailAt::CrashAfterPointer) {
            return Err(self.io(crash()));
        }
        // Off the lock: closing the old generation (sled joins its flusher) and
        // removing its files take most of the time the swap used to hold the store.
        let closing = std::time::Instant::now();
        drop(old_trees);
        drop(old_db);
        if let Err(e) = layout.remove(old_gen) {
            warn!(error = %e, "could not remove the old database generation; the next start does");
        }
        info!(
            exclusive_us = held_us,
            replay_us = steps[0],
            flush_us = steps[1] - steps[0],
            pointer_us = steps[2] - steps[1],
            close_and_remove_ms = closing.elapsed().as_millis() as u64,
            "compaction put the new database generation in service"
        );
        self.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the pointer (with the test hooks of its steps).
    fn point_to(&self, layout: &Layout<'_>, gen: Gen) -> std::io::Result<()> {
        #[cfg(test)]
        {
            if self.take_failure(FailAt::Pointer) {
                return Err(std::io::Error::other("test: the pointer cannot be written"));
            }
            if self.take_failure(FailAt::CrashAfterPointerTmp) {
                std::fs::write(
                    self.path.join(POINTER_TMP),
                    format!("{GEN_PREFIX}{}\n", gen.0),
                )?;
                return Err(std::io::Error::other(CRASH));
            }
        }
        layout.point_to(gen)
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
        let new = open_db(sled::Config::new().path(fresh).cache_capacity(CACHE_BYTES))?;
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
        // The new generation's entries in the store's directory, before a pointer can
        // name it.
        sync_dir(fresh)?;
        if let Some(parent) = fresh.parent() {
            sync_dir(parent)?;
        }
        Ok(new)
    }

    /// Test hook: blocks every access to the store until the guard is dropped, as a
    /// slow disk or the swap of a compaction would.
    #[cfg(test)]
    pub(crate) fn stall(&self) -> std::sync::RwLockWriteGuard<'_, Trees> {
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
    /// second look-up. `log` is written last, so an event present there is always in
    /// `ids` too; a crash between the two writes leaves only an `ids` entry without
    /// its event, which [`Store::repair_time_index`] removes at the next start. Not
    /// durable until [`Store::flush`].
    pub fn insert_new(&self, event: &Event) -> Result<(), StoreError> {
        let id = event.id();
        let ts = event.timestamp();
        let tk = time_key(ts, &id);
        // Inside the lock, so a compaction cannot swap the database under the write.
        self.write(&[("ids", &id.0), ("log", &tk)], |t| {
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

    /// Makes `ids` hold exactly the events of `log`, after an unclean stop (see
    /// [`Store::insert_new`]); `held` is the number of events in `log`, which the
    /// caller has just counted. Cheap when nothing is wrong: it compares counts.
    /// Returns how many stray entries it removed.
    pub fn repair_time_index(&self, held: usize) -> Result<usize, StoreError> {
        if held == self.len() {
            return Ok(0);
        }
        let mut stray = Vec::new();
        let (log, ids) = self.with(|t| Ok((t.log.clone(), t.ids.clone())))?;
        for kv in ids.iter() {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let held = match (<[u8; 32]>::try_from(k.as_ref()), stamp(&v)) {
                (Ok(id), Some(ts)) => log
                    .contains_key(time_key(ts, &EventId(id)))
                    .map_err(|e| self.io(e))?,
                _ => false,
            };
            if !held {
                stray.push(k);
            }
        }
        for k in &stray {
            self.write(&[("ids", k)], |t| t.ids.remove(k).map(|_| ()))?;
        }
        // Should the log ever keep an event but lose its earlier `ids` write, put the
        // entry back.
        let mut count = self.with(|t| Ok(t.ids.len()))?;
        if count != held {
            for kv in log.iter() {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                let Ok(e) = Event::decode(&v) else { continue };
                let id = e.id();
                if !ids.contains_key(id.0).map_err(|e| self.io(e))? {
                    let ts = e.timestamp().0.to_be_bytes();
                    self.write(&[("ids", &id.0)], |t| t.ids.insert(id.0, &ts).map(|_| ()))?;
                    warn!(key = %hex::encode(&k), "restored a missing id-index entry");
                }
            }
            count = self.with(|t| Ok(t.ids.len()))?;
        }
        *self.held() = read_time_index(&self.path, &ids)?;
        self.count.store(count, Ordering::Relaxed);
        if !stray.is_empty() {
            warn!(
                removed = stray.len(),
                "removed id-index entries of events not stored (an unclean stop)"
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
        self.with(|t| {
            let Some(ts) = t.ids.get(id.0)?.as_deref().and_then(stamp) else {
                return Ok(None);
            };
            Ok(t.log.get(time_key(ts, id))?.map(|v| v.to_vec()))
        })
    }

    /// Whether an event is held.
    pub fn contains(&self, id: &EventId) -> Result<bool, StoreError> {
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

    /// Every held event's `(timestamp, id)`, in time order: the reconciliation set.
    /// A copy of the time index in memory (see the module doc).
    pub fn sync_items(&self) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
        let held = self.held();
        let mut out = Vec::with_capacity(held.len());
        out.extend(held.iter().copied());
        Ok(out)
    }

    /// [`aidmesh_protocol::sync::digest`] of every held id (BLAKE3 over the ids in
    /// ascending order).
    pub fn digest(&self) -> Result<[u8; 32], StoreError> {
        Ok(aidmesh_protocol::sync::digest(&self.ids()?))
    }

    /// Every held id, ascending: from the time index, sorted here (the digest's
    /// peak memory at 100,000 events is this 3.2 MB).
    pub fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        let mut out: Vec<EventId> = {
            let held = self.held();
            let mut v = Vec::with_capacity(held.len());
            v.extend(held.iter().map(|(_, id)| *id));
            v
        };
        out.sort_unstable();
        Ok(out)
    }

    /// Removes an event's bytes and remembers that it was erased, with its kind; if it
    /// was held, sets the pending-compaction flag (the bytes stay in sled's log until
    /// [`Store::compact`]). Returns whether it was held. Not durable until
    /// [`Store::flush`].
    pub fn erase(&self, id: &EventId, kind: u16) -> Result<bool, StoreError> {
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
        let removed = self.write(&touched, |t| {
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

    /// Notes that this node's event `id`, written at `at_ms`, was posted from another
    /// machine at `from` (kept in `meta` under [`POSTED_FROM`]), and lets go of notes
    /// older than `keep_ms`. Local: never sent anywhere. Not flushed: a crash may lose
    /// the note, never the event.
    pub fn note_posted_from(
        &self,
        id: &EventId,
        from: &str,
        at_ms: u64,
        keep_ms: u64,
    ) -> Result<(), StoreError> {
        let mut key = POSTED_FROM.to_vec();
        key.extend_from_slice(&at_ms.to_be_bytes());
        key.extend_from_slice(&id.0);
        let mut end = POSTED_FROM.to_vec();
        end.extend_from_slice(&at_ms.saturating_sub(keep_ms).to_be_bytes());
        let old: Vec<sled::IVec> = self.with(|t| {
            t.meta
                .range(POSTED_FROM..end.as_slice())
                .keys()
                .collect::<Result<_, _>>()
        })?;
        let mut touched: Vec<(&'static str, &[u8])> = vec![("meta", &key)];
        touched.extend(old.iter().map(|k| ("meta", k.as_ref())));
        self.write(&touched, |t| {
            for k in &old {
                t.meta.remove(k)?;
            }
            t.meta.insert(key.as_slice(), from.as_bytes()).map(|_| ())
        })
    }

    /// Every note of [`Store::note_posted_from`]: when, which event, from where.
    pub fn posted_from(&self) -> Result<Vec<(u64, EventId, String)>, StoreError> {
        self.with(|t| {
            let mut out = Vec::new();
            for kv in t.meta.scan_prefix(POSTED_FROM) {
                let (k, v) = kv?;
                let rest = &k[POSTED_FROM.len()..];
                if let (Ok(ms), Ok(id)) = (
                    <[u8; 8]>::try_from(rest.get(..8).unwrap_or_default()),
                    <[u8; 32]>::try_from(rest.get(8..).unwrap_or_default()),
                ) {
                    out.push((
                        u64::from_be_bytes(ms),
                        EventId(id),
                        String::from_utf8_lossy(&v).into_owned(),
                    ));
                }
            }
            Ok(out)
        })
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

    /// The time index in memory (issue 14) answers exactly as the database: after
    /// inserts (in and out of time order), duplicates, erasures, a compaction and a
    /// reopen that reads it back from `ids`.
    #[test]
    fn the_time_index_in_memory_answers_as_the_database_does() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        // Out of time order, as a catch-up brings old events after new ones.
        let events: Vec<Event> = [9u64, 3, 7, 1, 5, 8, 2].into_iter().map(ev).collect();
        for e in &events {
            assert!(s.insert(e).unwrap());
            assert!(!s.insert(e).unwrap(), "a duplicate is refused");
        }
        s.erase(&events[1].id(), 999).unwrap();
        s.erase(&events[4].id(), 999).unwrap();
        // Never held: nothing to remove from the index.
        s.erase(&ev(42).id(), 999).unwrap();
        let kept: Vec<&Event> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1 && *i != 4)
            .map(|(_, e)| e)
            .collect();
        let mut want: Vec<(Timestamp, EventId)> =
            kept.iter().map(|e| (e.timestamp(), e.id())).collect();
        want.sort_unstable();
        let mut want_ids: Vec<EventId> = kept.iter().map(|e| e.id()).collect();
        want_ids.sort_unstable();
        let check = |s: &Store, when: &str| {
            assert_eq!(s.sync_items().unwrap(), want, "{when}: sync items");
            assert_eq!(s.ids().unwrap(), want_ids, "{when}: ids");
            assert_eq!(s.len(), want.len(), "{when}: count");
            for e in &events {
                let held = kept.iter().any(|k| k.id() == e.id());
                assert_eq!(
                    s.contains_at(e.timestamp(), &e.id()).unwrap(),
                    held,
                    "{when}"
                );
                assert_eq!(s.contains(&e.id()).unwrap(), held, "{when}");
            }
            assert!(
                !s.contains_at(Timestamp(1), &events[0].id()).unwrap(),
                "{when}: wrong stamp"
            );
        };
        check(&s, "after writes");
        s.compact().unwrap();
        check(&s, "after a compaction");
        s.release_cache().unwrap();
        check(&s, "after a reopen of sled");
        s.flush().unwrap();
        drop(s);
        check(&Store::open(dir.path()).unwrap(), "read back at open");
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
            // A crash between the two writes of `insert_new`: the id entry of `lost`
            // was written, its event was not.
            let ts = lost.timestamp().0.to_be_bytes();
            s.with(|t| t.ids.insert(lost.id().0, &ts)).unwrap();
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
        // missing id entry is put back.
        s.with(|t| t.ids.remove(b.id().0)).unwrap();
        let s = {
            s.flush().unwrap();
            drop(s);
            Store::open(dir.path()).unwrap()
        };
        assert_eq!(s.len(), 1);
        assert_eq!(s.repair_time_index(2).unwrap(), 0);
        assert_eq!((s.len(), s.sync_items().unwrap()), (2, both));
    }

    fn secret(n: u64) -> Event {
        let mut body = b"Secret Zyxwvut ".to_vec();
        body.extend_from_slice(&n.to_le_bytes());
        Event::create_raw(&Identity::from_seed([2; 32]), 1, Timestamp(n), 999, &body)
    }

    /// Every file under `dir`, recursively.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    fn holds(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
        files(dir)
            .into_iter()
            .find(|f| std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
    }

    /// The names in the store's directory, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_compaction_cut_short_at_any_step_loses_nothing_acknowledged() {
        for from_gen in [0, 1] {
            for at in [
                FailAt::CrashAfterCopy,
                FailAt::CrashAfterPointerTmp,
                FailAt::CrashAfterPointer,
            ] {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("db");
                let gone = secret(7);
                let kept: Vec<Event> = (1..=50).map(ev).collect();
                {
                    let s = Store::open(&path).unwrap();
                    for e in &kept[..25] {
                        s.insert(e).unwrap();
                    }
                    if from_gen == 1 {
                        s.compact().unwrap();
                        assert_eq!(Layout(&path).current().unwrap(), Gen(1));
                    }
                    s.insert(&gone).unwrap();
                    s.flush().unwrap();
                    s.erase(&gone.id(), 4).unwrap();
                    // Acknowledged (flushed) after the erasure, before the compaction.
                    for e in &kept[25..] {
                        s.insert(e).unwrap();
                    }
                    s.flush().unwrap();
                    *s.fail_next.lock().unwrap() = Some(at);
                    let err = s.compact().expect_err("the test hook stops the compaction");
                    assert!(err.to_string().contains(CRASH), "{at:?}: {err}");
                    // The process dies here: nothing after this step runs.
                }
                let s = Store::open(&path).unwrap();
                let case = format!("from generation {from_gen}, {at:?}");
                assert!(!s.compaction_pending().unwrap(), "{case}");
                assert_eq!(s.len(), kept.len(), "{case}");
                for e in &kept {
                    assert_eq!(
                        s.get(&e.id()).unwrap().as_deref(),
                        Some(e.bytes()),
                        "{case}"
                    );
                }
                assert_eq!(s.erased_kind(&gone.id()).unwrap(), Some(4), "{case}");
                assert_eq!(s.sync_items().unwrap().len(), kept.len(), "{case}");
                drop(s);
                if let Some(f) = holds(&path, b"Secret Zyxwvut") {
                    panic!("{case}: the erased event is still in {}", f.display());
                }
                // One generation left, named by the pointer.
                let gen = Layout(&path).current().unwrap();
                assert_eq!(
                    entries(&path),
                    vec![POINTER.to_string(), format!("{GEN_PREFIX}{}", gen.0)],
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn a_failed_pointer_write_keeps_the_old_generation_in_service() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let s = Store::open(&path).unwrap();
        let gone = secret(3);
        s.insert(&ev(1)).unwrap();
        s.insert(&gone).unwrap();
        s.erase(&gone.id(), 4).unwrap();
        *s.fail_next.lock().unwrap() = Some(FailAt::Pointer);
        assert!(s.compact().is_err());
        assert!(s.compaction_pending().unwrap());
        assert_eq!(Layout(&path).current().unwrap(), Gen(0));
        assert!(!entries(&path).iter().any(|e| e.starts_with(GEN_PREFIX)));
        // Still serving, reads and writes.
        s.insert(&ev(2)).unwrap();
        s.flush().unwrap();
        assert_eq!(s.len(), 2);
        s.compact().unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.len(), 2);
        assert!(holds(&path, b"Secret Zyxwvut").is_none());
    }

    #[test]
    fn a_database_from_before_generations_opens_and_moves_to_one_on_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let events: Vec<Event> = (1..=20).map(ev).collect();
        {
            // A database as every node wrote it before generations: sled's files in
            // the directory itself, no pointer.
            let db = sled::Config::new().path(&path).open().unwrap();
            let (t, e) = (
                db.open_tree("by_time").unwrap(),
                db.open_tree("events").unwrap(),
            );
            for ev in &events {
                t.insert(time_key(ev.timestamp(), &ev.id()), &[][..])
                    .unwrap();
                e.insert(ev.id().0, ev.bytes()).unwrap();
            }
            db.flush().unwrap();
        }
        assert!(path.join("conf").exists());
        let s = Store::open(&path).unwrap();
        assert_eq!(s.len(), 20);
        assert!(path.join("conf").exists(), "opening alone changes nothing");
        s.erase(&events[0].id(), 4).unwrap();
        s.compact().unwrap();
        assert_eq!(Layout(&path).current().unwrap(), Gen(1));
        assert_eq!(entries(&path), vec!["CURRENT", "gen-1"]);
        s.insert(&ev(99)).unwrap();
        s.flush().unwrap();
        s.compact().unwrap();
        assert_eq!(entries(&path), vec!["CURRENT", "gen-2"]);
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.len(), 20);
        assert!(s.get(&ev(99).id()).unwrap().is_some());
        assert!(s.get(&events[0].id()).unwrap().is_none());
    }

    /// Writes `events` as every node stored them before `log` and `ids`.
    fn old_layout(path: &Path, events: &[Event]) {
        let db = sled::Config::new().path(path).open().unwrap();
        let (t, e) = (
            db.open_tree(OLD_BY_TIME).unwrap(),
            db.open_tree(OLD_EVENTS).unwrap(),
        );
        for ev in events {
            t.insert(time_key(ev.timestamp(), &ev.id()), &[][..])
                .unwrap();
            e.insert(ev.id().0, ev.bytes()).unwrap();
        }
        db.open_tree("erased")
            .unwrap()
            .insert([9u8; 32], &4u16.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn a_database_of_the_old_layout_is_migrated_at_open_and_answers_the_same() {
        for cut_short in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            // Stamps out of id order, so time order and id order differ.
            let events: Vec<Event> = (1..=300).map(|n| ev((n * 7919) % 1000 + 1)).collect();
            old_layout(&path, &events);
            if cut_short {
                // A migration a crash cut short: some events already in the new trees.
                let db = sled::Config::new().path(&path).open().unwrap();
                let (log, ids) = (db.open_tree("log").unwrap(), db.open_tree("ids").unwrap());
                for e in &events[..100] {
                    ids.insert(e.id().0, &e.timestamp().0.to_be_bytes())
                        .unwrap();
                    log.insert(time_key(e.timestamp(), &e.id()), e.bytes())
                        .unwrap();
                }
                db.flush().unwrap();
            }
            let mut want: Vec<(Timestamp, EventId)> =
                events.iter().map(|e| (e.timestamp(), e.id())).collect();
            want.sort();
            let mut ids: Vec<EventId> = events.iter().map(Event::id).collect();
            ids.sort();
            for reopen in 0..2 {
                let s = Store::open(&path).unwrap();
                let case = format!("cut short {cut_short}, open {reopen}");
                assert_eq!(s.len(), 300, "{case}");
                assert_eq!(s.sync_items().unwrap(), want, "{case}");
                assert_eq!(s.ids().unwrap(), ids, "{case}");
                assert_eq!(
                    s.digest().unwrap(),
                    aidmesh_protocol::sync::digest(&ids),
                    "{case}"
                );
                for e in &events {
                    assert_eq!(
                        s.get(&e.id()).unwrap().as_deref(),
                        Some(e.bytes()),
                        "{case}"
                    );
                    assert!(s.contains_at(e.timestamp(), &e.id()).unwrap(), "{case}");
                }
                // In time order now.
                let stamps: Vec<Timestamp> = s
                    .events()
                    .map(|b| Event::decode(&b.unwrap()).unwrap().timestamp())
                    .collect();
                assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{case}");
                assert_eq!(s.erased_kind(&EventId([9; 32])).unwrap(), Some(4), "{case}");
                let names = s.with(|t| Ok(t.db.tree_names())).unwrap();
                assert!(
                    !names
                        .iter()
                        .any(|n| n.as_ref() == b"events" || n.as_ref() == b"by_time"),
                    "{case}: the old trees are still there"
                );
            }
        }
    }

    #[test]
    fn a_pointer_naming_no_generation_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::create_dir_all(&path).unwrap();
        for bad in ["gen-7\n", "nonsense"] {
            std::fs::write(path.join(POINTER), bad).unwrap();
            let err = Store::open(&path).err().expect("must not open");
            assert!(err.to_string().contains("CURRENT"), "{err}");
        }
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
