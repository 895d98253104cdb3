//! The one path every event takes, whatever door it came through:
//! validate (protocol) → store (durably, once) → view → fan out (gossip, live pages).
//!
//! Local writes and imports are flushed to disk before they are acknowledged. Events
//! from peers are flushed in batches: if a crash loses one, anti-entropy fetches it
//! again from the peer that sent it.
//!
//! A redaction takes effect on the board as soon as it is filed, and the content it
//! covers is removed from the store's trees in the same call. The slow parts run on a
//! background thread, after [`COMPACT_COALESCE`] so several forgets share them, and at
//! most once per [`COMPACT_MIN_GAP`]: rebuilding the view from the store (so no erased
//! text stays in memory), without holding the engine lock for it, and rewriting the
//! database files so the bytes are gone for good ([`Store::compact`]). The flag that a
//! compaction is owed is durable with the erasure, so a crash or failure only delays
//! it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_protocol::body::{BodyKind, CheckIn, Outcome, Post};
use aidmesh_protocol::quota::{self, admit_unknown, Admit, DAILY_EVENTS_PER_AUTHOR};
use aidmesh_protocol::sync::SyncSet;
use aidmesh_protocol::validate::{validate, Rules, Verified};
use aidmesh_protocol::view::PostSource;
use aidmesh_protocol::{
    AuthorId, Body, Clock, ClockReading, ClockStatus, Event, EventId, Identity, MeshClock,
    TimeSource, Timestamp, ValidationError, View,
};
use thiserror::Error;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::store::{Store, StoreError};

/// Where an event came from (for logs and for deciding what to gossip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written on this node (CLI, HTTP).
    Local,
    /// Pushed by a peer over gossip.
    Gossip,
    /// Pulled from a peer by anti-entropy sync.
    Sync,
    /// Read from a bundle file.
    Import,
}

/// A newly stored event, as announced to subscribers.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event.
    pub event: Event,
    /// Its decoded body, if understood.
    pub body: Option<Body>,
    /// Where it came from.
    pub origin: Origin,
}

/// What happened to an offered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored for the first time.
    New(EventId),
    /// Already held.
    Duplicate(EventId),
    /// Covered by a redaction: its content is not kept.
    Erased(EventId),
    /// Not kept: its author signed its day's quota of events already
    /// ([`aidmesh_protocol::quota::DAILY_EVENTS_PER_AUTHOR`]). Nothing is remembered
    /// of it.
    OverQuota(EventId),
}

/// Why an event was not stored.
#[derive(Debug, Error)]
pub enum IngestError {
    /// The protocol rejected it.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local write past this hub's daily quota: peers would drop it.
    #[error("this hub has signed {limit} events today, the most any hub may sign in a day (UTC); other hubs would not take more. Erasures and withdrawals still work; new posts can be made again from 00:00 UTC, or at another hub")]
    OverQuota {
        /// The quota.
        limit: u32,
    },
}

/// Result of ingesting a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchResult {
    /// Newly stored.
    pub new: usize,
    /// Already held or erased.
    pub known: usize,
    /// Rejected, with reasons.
    pub rejected: Vec<String>,
    /// Stamped too far ahead of our clock: not stored now, not the sender's fault (it was
    /// valid where it was written); sync brings it again later.
    pub deferred: Vec<EventId>,
}

/// Who reported a clock sample: the peer, and the host it connected from. The mesh
/// clock counts one vote per host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockKey {
    /// The peer (its id).
    pub peer: Vec<u8>,
    /// Its host (IP address; the peer id when unknown).
    pub host: Vec<u8>,
}

/// When this binary was built, in ms since the epoch (from `build.rs`): the mesh
/// clock's plausibility floor.
pub const BUILD_MS: u64 = parse_ms(env!("AIDMESH_BUILD_MS"));

const fn parse_ms(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: u64 = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "AIDMESH_BUILD_MS must be digits");
        n = n * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    n
}

/// Held events of kinds this node does not understand, by author: what
/// [`aidmesh_protocol::quota`] bounds.
type Unknown =
    std::collections::HashMap<AuthorId, std::collections::BTreeSet<(Timestamp, EventId)>>;

/// Held events that count toward the daily quota, by author and day (see
/// [`aidmesh_protocol::quota::day_of`]); a count past the quota means a refusal was
/// logged already.
type Daily = std::collections::HashMap<(AuthorId, u64), u32>;

struct State {
    view: View,
    unknown: Unknown,
    clock: Clock,
    mesh: MeshClock,
    digest: Option<[u8; 32]>,
    sync_set: Option<Arc<SyncSet>>,
    /// Bumped on every change of the stored set; caches computed outside the lock are
    /// kept only if it did not move meanwhile.
    generation: u64,
    warned: ClockStatus,
    /// While the background thread rebuilds the view from the store: the events
    /// stored meanwhile, to file into the new view before it replaces this one.
    rebuild_log: Option<Vec<(Event, Body)>>,
}

/// The node's state and its single write path.
pub struct Engine {
    store: Arc<Store>,
    identity: Identity,
    community: String,
    clock_offset_ms: i64,
    /// The mesh clock's correction at its last reading, for [`Engine::now_ms_unlocked`].
    mesh_correction_ms: std::sync::atomic::AtomicI64,
    state: Arc<Mutex<State>>,
    tx: broadcast::Sender<NewEvent>,
    compactor: Compactor,
    /// Refuses new events while the disk is nearly full (see [`crate::disk`]).
    disk: crate::disk::Guard,
    /// Every author of a stored event at start, with its newest event's time (ms):
    /// the hub roster's first members, read with the view (not by a second walk of
    /// the store, which would page every event into sled's cache again).
    authors_at_start: std::collections::HashMap<AuthorId, u64>,
    /// Random at each start: with the state's generation, names what is stored
    /// ([`Engine::version`]) across restarts too.
    boot: u64,
    /// Events per author and day, for the daily quota: apart from the state's lock,
    /// so the gossip checker reads it without waiting for the store.
    daily: Mutex<Daily>,
}

/// How long the background compaction waits after an erasure for more erasures to
/// share the rewrite.
pub const COMPACT_COALESCE: Duration = Duration::from_millis(500);
/// Least time between the start of one background compaction and the next.
pub const COMPACT_MIN_GAP: Duration = Duration::from_secs(5);
/// Wait before retrying a compaction that failed.
const COMPACT_RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct CompactFlags {
    requested: bool,
    /// Rebuild the view too (content was erased by a redaction).
    rebuild: bool,
    stop: bool,
}

/// The background thread that, after an erasure, rebuilds the view (so no erased
/// text stays in memory) and compacts the store.
struct Compactor {
    flags: Arc<(Mutex<CompactFlags>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Compactor {
    fn start(store: Arc<Store>, state: Arc<Mutex<State>>) -> Compactor {
        let flags: Arc<(Mutex<CompactFlags>, Condvar)> = Arc::default();
        let shared = flags.clone();
        let thread = std::thread::Builder::new()
            .name("compactor".into())
            .spawn(move || {
                lower_this_threads_priority();
                compact_loop(&store, &state, &shared)
            })
            .ok();
        if thread.is_none() {
            warn!(
                "could not start the compaction thread; erased bytes are removed at the next start"
            );
        }
        Compactor { flags, thread }
    }

    fn request(&self, rebuild: bool) {
        let (m, cv) = &*self.flags;
        let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
        f.requested = true;
        f.rebuild |= rebuild;
        cv.notify_all();
    }
}

/// Nice 10 for the calling thread (Linux keeps a nice value per thread): the
/// compaction's copy of a big database then yields a busy core to gossip, posts and
/// the API instead of taking an equal share of it. Best effort.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread, with no pointers.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        let (m, cv) = &*self.flags;
        m.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits on `flags` until `deadline` or stop; returns false on stop.
fn sleep_until(flags: &(Mutex<CompactFlags>, Condvar), deadline: Instant) -> bool {
    let (m, cv) = flags;
    let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
    while !f.stop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        f = cv
            .wait_timeout(f, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    false
}

/// Rebuilds the view from the store without holding the engine lock for the long
/// part: events stored meanwhile are logged by `ingest` and filed into the new view
/// (filing is idempotent and order-free, so one seen twice is harmless).
fn rebuild_view(store: &Arc<Store>, state: &Mutex<State>) -> Result<(), StoreError> {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    lock().rebuild_log = Some(Vec::new());
    let loaded = load_view(store);
    let mut st = lock();
    let log = st.rebuild_log.take().unwrap_or_default();
    let mut view = loaded?.view;
    for (event, body) in &log {
        view.insert(event, body);
        // Its arrival may have been written after `load_view` read them.
        if let Some(at) = store.arrival(&event.id())? {
            view.note_arrival(event.id(), at);
        }
    }
    st.view = view;
    drop(st);
    release_freed_memory();
    Ok(())
}

fn compact_loop(store: &Arc<Store>, state: &Mutex<State>, flags: &(Mutex<CompactFlags>, Condvar)) {
    let (m, cv) = flags;
    loop {
        {
            let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
            while !f.requested && !f.stop {
                f = cv.wait(f).unwrap_or_else(|p| p.into_inner());
            }
            if f.stop {
                return;
            }
        }
        // Let a burst of forgets gather, then take them all in one rewrite.
        if !sleep_until(flags, Instant::now() + COMPACT_COALESCE) {
            return;
        }
        let rebuild = {
            let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
            f.requested = false;
            std::mem::take(&mut f.rebuild)
        };
        let started = Instant::now();
        if rebuild {
            if let Err(e) = rebuild_view(store, state) {
                warn!(error = %e, "could not rebuild the board after an erasure; retrying");
                let mut f = m.lock().unwrap_or_else(|p| p.into_inner());
                f.rebuild = true;
                f.requested = true;
            }
        }
        let next = match store.compact() {
            Ok(()) => {
                info!(
                    ms = started.elapsed().as_millis() as u64,
                    "database compacted: erased content is gone from the files"
                );
                started + COMPACT_MIN_GAP
            }
            Err(e) => {
                warn!(error = %e, "compaction failed; the old database stays in use and it is retried");
                m.lock().unwrap_or_else(|p| p.into_inner()).requested = true;
                started + COMPACT_RETRY
            }
        };
        if !sleep_until(flags, next) {
            return;
        }
    }
}

/// Capacity of the new-event channel; a subscriber that falls further behind skips
/// events (gossip has anti-entropy behind it, pages reload).
const CHANNEL: usize = 1024;

/// The view's [`PostSource`]: a need or offer's post read back from the store when an
/// answer shows it, so the view keeps only its index in memory (issue 14).
struct StoredPosts(Arc<Store>);

impl PostSource for StoredPosts {
    fn post(&self, id: &EventId) -> Option<Post> {
        let bytes = match self.0.get(id) {
            Ok(Some(bytes)) => bytes,
            // Erased since it was filed: the view is rebuilt after every erasure.
            Ok(None) => return None,
            Err(e) => {
                warn!(error = %e, id = %id.short(), "could not read a post from the store; it is left out of this answer");
                return None;
            }
        };
        match Event::decode(&bytes).ok()?.body() {
            Ok(Some(Body::Need(p) | Body::Offer(p))) => Some(p),
            _ => None,
        }
    }
}

/// Builds the view from every stored event, indexes those of unknown kinds, and finds
/// the newest timestamp held. No signature is re-checked: events were validated
/// before they were stored. The view reads posts back from `store`.
/// What the start reads from every stored event.
struct Loaded {
    view: View,
    unknown: Unknown,
    newest: Timestamp,
    held: usize,
    /// Of `held`, events of the welfare kinds ([`crate::store::is_welfare_kind`]).
    welfare: usize,
    authors: std::collections::HashMap<AuthorId, u64>,
    daily: Daily,
}

fn load_view(store: &Arc<Store>) -> Result<Loaded, StoreError> {
    let mut view = View::with_source(Arc::new(StoredPosts(store.clone())));
    let mut held = 0;
    let mut welfare = 0;
    let mut unknown = Unknown::new();
    let mut newest = Timestamp::default();
    let mut authors: std::collections::HashMap<AuthorId, u64> = std::collections::HashMap::new();
    let mut daily = Daily::new();
    for bytes in store.events() {
        let bytes = bytes?;
        held += 1;
        let Ok(event) = Event::decode(&bytes) else {
            warn!(db = %store.path().display(), "skipping an undecodable stored event");
            continue;
        };
        newest = newest.max(event.timestamp());
        welfare += usize::from(crate::store::is_welfare_kind(event.kind()));
        let t = authors.entry(event.author()).or_default();
        *t = (*t).max(event.timestamp().millis());
        let Ok(body) = event.body() else {
            continue;
        };
        if quota::counts_toward_daily(body.as_ref()) {
            *daily
                .entry((event.author(), quota::day_of(event.timestamp())))
                .or_default() += 1;
        }
        match body {
            Some(body) => view.insert(&event, &body),
            None => {
                unknown
                    .entry(event.author())
                    .or_default()
                    .insert((event.timestamp(), event.id()));
            }
        }
    }
    for (id, at) in store.arrivals()? {
        view.note_arrival(id, at);
    }
    view.pack();
    Ok(Loaded {
        view,
        unknown,
        newest,
        held,
        welfare,
        authors,
        daily,
    })
}

impl Engine {
    /// Loads every stored event into the view. No signature is re-checked: events were
    /// validated before they were stored.
    pub fn open(
        store: Store,
        identity: Identity,
        community: String,
        clock_offset_ms: i64,
    ) -> Result<Engine, StoreError> {
        let store = Arc::new(store);
        let Loaded {
            view,
            unknown,
            newest,
            held,
            welfare,
            authors,
            daily,
        } = load_view(&store)?;
        store.set_welfare_len(welfare);
        // Events are written without a transaction (see `Store::insert_new`): after
        // an unclean stop the time index may need a repair.
        store.repair_time_index(held)?;
        // Reading every stored event left sled holding each page it read; a reopen
        // hands them back (the view reads posts from the store from now on).
        // An error means the database could not be reopened: no start.
        store.release_cache()?;
        // Decoding every stored event left the heap full of freed blocks.
        release_freed_memory();
        // `newest` may be ahead of our clock; `Clock::now` clamps it so local writes
        // still validate.
        let clock = Clock::new(newest);
        let (tx, _) = broadcast::channel(CHANNEL);
        let started = system_ms().saturating_add_signed(clock_offset_ms);
        if started < BUILD_MS {
            warn!(
                behind_build_ms = BUILD_MS - started,
                "this computer's clock is before this program was built; using the build time until a peer tells the time. Set the clock if you can"
            );
        }
        let state = Arc::new(Mutex::new(State {
            view,
            unknown,
            clock,
            mesh: MeshClock::new(BUILD_MS, started),
            digest: None,
            sync_set: None,
            generation: 0,
            warned: ClockStatus::Unknown,
            rebuild_log: None,
        }));
        let compactor = Compactor::start(store.clone(), state.clone());
        if store.compaction_pending()? {
            compactor.request(false);
        }
        Ok(Engine {
            compactor,
            disk: crate::disk::Guard::new(store.path()),
            authors_at_start: authors,
            store,
            state,
            identity,
            community,
            clock_offset_ms,
            mesh_correction_ms: std::sync::atomic::AtomicI64::new(0),
            tx,
            boot: {
                let mut b = [0u8; 8];
                // Without randomness, the start time still differs between starts.
                if getrandom::fill(&mut b).is_err() {
                    b = system_ms().to_le_bytes();
                }
                u64::from_le_bytes(b)
            },
            daily: Mutex::new(daily),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; the data is still consistent
        // (every step below is idempotent), so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Every author of an event stored at start, with its newest event's time (ms).
    pub fn authors_at_start(&self) -> &std::collections::HashMap<AuthorId, u64> {
        &self.authors_at_start
    }

    /// The community name.
    pub fn community(&self) -> &str {
        &self.community
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs an owed compaction now, on this thread, instead of waiting for the
    /// background one. Returns whether one was owed.
    pub fn compact_now(&self) -> Result<bool, StoreError> {
        if !self.store.compaction_pending()? {
            return Ok(false);
        }
        self.store.compact()?;
        Ok(true)
    }

    /// The system wall clock plus the configured offset (a test hook for bad clocks):
    /// the local, uncorrected clock, which is what peers are told.
    pub fn wall_ms(&self) -> u64 {
        system_ms().saturating_add_signed(self.clock_offset_ms)
    }

    /// The times in use now (see [`aidmesh_protocol::MeshClock::read`]).
    pub fn clock(&self) -> ClockReading {
        let wall = self.wall_ms();
        let reading = self.lock().mesh.read(wall);
        self.mesh_correction_ms.store(
            reading.now_ms as i64 - wall as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        reading
    }

    /// [`Engine::now_ms`] without the engine's lock: the local clock with the mesh
    /// correction of the last reading. For checks that must not wait behind a store
    /// write (the gossip verdict, `crate::net::gossip`).
    pub fn now_ms_unlocked(&self) -> u64 {
        self.wall_ms().saturating_add_signed(
            self.mesh_correction_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// The time for new events, validation and due checks: the local clock, corrected
    /// only as the mesh-clock rules allow.
    pub fn now_ms(&self) -> u64 {
        self.clock().now_ms
    }

    /// The build-time floor this node uses.
    pub fn clock_floor_ms(&self) -> u64 {
        BUILD_MS
    }

    /// Subscribes to newly stored events.
    pub fn subscribe(&self) -> broadcast::Receiver<NewEvent> {
        self.tx.subscribe()
    }

    /// Runs `f` on the current view.
    pub fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.lock().view)
    }

    /// Records a peer's wall clock (from a sync message) and warns once when our clock
    /// looks wrong.
    pub fn record_peer_clock(&self, key: &ClockKey, peer_wall_ms: u64) {
        let wall = self.wall_ms();
        let mut st = self.lock();
        st.mesh.record(&key.peer, &key.host, peer_wall_ms, wall);
        let status = st.mesh.status();
        let reading = st.mesh.read(wall);
        let changed = std::mem::discriminant(&status) != std::mem::discriminant(&st.warned);
        if changed {
            let action = match reading.source {
                TimeSource::Mesh => "using the mesh's time",
                _ => "not corrected: too few computers agree",
            };
            match status {
                ClockStatus::Behind(ms) => warn!(
                    behind_ms = ms,
                    hosts = reading.hosts,
                    "this computer's clock is {} behind the mesh; {action}. Set the clock if you can",
                    human_ms(ms)
                ),
                ClockStatus::Ahead(ms) => warn!(
                    ahead_ms = ms,
                    hosts = reading.hosts,
                    "this computer's clock is {} ahead of the mesh; {action}. Set the clock if you can",
                    human_ms(ms)
                ),
                ClockStatus::Ok => info!("clock agrees with the mesh"),
                ClockStatus::Unknown => {}
            }
            st.warned = status;
        }
    }

    /// Forgets a peer's clock sample (it disconnected); `peer` as in [`ClockKey::peer`].
    pub fn forget_peer_clock(&self, peer: &[u8]) {
        self.lock().mesh.forget(peer);
    }

    /// What the mesh says about our clock.
    pub fn clock_status(&self) -> (ClockStatus, Option<i64>) {
        let st = self.lock();
        (st.mesh.status(), st.mesh.median_offset())
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Number of events held that are not welfare records: the count a stranger is
    /// told (issue 24 item 9).
    pub fn public_len(&self) -> usize {
        self.store.len().saturating_sub(self.store.welfare_len())
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Changes with every stored or erased event, and at every start: what an HTTP
    /// validator needs, at no cost (the digest reads every id after each change).
    pub fn version(&self) -> (u64, u64) {
        (self.boot, self.lock().generation)
    }

    /// BLAKE3 over the sorted ids of every held event.
    pub fn digest(&self) -> Result<[u8; 32], StoreError> {
        let generation = {
            let st = self.lock();
            if let Some(d) = st.digest {
                return Ok(d);
            }
            st.generation
        };
        // Computed outside the lock; cached only if nothing changed meanwhile, or a
        // concurrent ingest would leave a stale digest in the cache.
        let d = self.store.digest()?;
        let mut st = self.lock();
        if st.generation == generation {
            st.digest = Some(d);
        }
        Ok(d)
    }

    /// The reconciliation set, cached until the next change.
    pub fn sync_set(&self) -> Result<Arc<SyncSet>, StoreError> {
        let generation = {
            let st = self.lock();
            if let Some(s) = &st.sync_set {
                return Ok(s.clone());
            }
            st.generation
        };
        let items = self.store.sync_items()?;
        // Only fails on negentropy-internal errors, which a sorted set cannot trigger.
        let set = Arc::new(SyncSet::new(items).map_err(|e| StoreError::Corrupt {
            path: self.store.path().to_path_buf(),
            tree: "by_time",
            detail: e.to_string(),
        })?);
        let mut st = self.lock();
        if st.generation == generation {
            st.sync_set = Some(set.clone());
        }
        Ok(set)
    }

    /// A sync session has ended (the worker records it in the peer book): the cached
    /// reconciliation set (40 bytes an event) is dropped until the next session
    /// needs it, and the heap the session freed is handed back to the system. A node
    /// otherwise kept both until its next change (issue 14: 13 MB at 100,000
    /// events). Call off the network task: the trim walks the allocator's free lists.
    pub fn after_sync(&self) {
        self.lock().sync_set = None;
        release_freed_memory();
    }

    /// Whether an id is held or was erased (so there is no point fetching it).
    pub fn knows(&self, id: &EventId) -> Result<bool, StoreError> {
        Ok(self.store.contains(id)? || self.store.erased_kind(id)?.is_some())
    }

    /// Signs a new event with this node's identity, stores it durably and announces it.
    pub fn post(&self, body: Body) -> Result<Event, IngestError> {
        let event = self.sign(&body)?;
        self.ingest_durable(event.bytes(), Origin::Local)?;
        Ok(event)
    }

    /// Signs and stores several new events with one flush at the end (taking back a
    /// flood: one fsync per erasure made thousands of them outlast the CLI's wait on an
    /// SD card). Stops at the first refusal; what was stored before it is flushed too.
    /// Returns how many were stored.
    pub fn post_all(&self, bodies: impl IntoIterator<Item = Body>) -> Result<usize, IngestError> {
        let mut stored = 0;
        let r = bodies.into_iter().try_for_each(|body| {
            self.ingest(self.sign(&body)?.bytes(), Origin::Local)?;
            stored += 1;
            Ok::<_, IngestError>(())
        });
        self.store.flush()?;
        r.map(|()| stored)
    }

    /// A new event of ours with `body`, stamped by our clock. Every limit is checked
    /// before signing: an oversized field is an error naming the field, never a panic.
    fn sign(&self, body: &Body) -> Result<Event, IngestError> {
        let now = self.now_ms();
        let mut st = self.lock();
        let ts = st.clock.now(now);
        Ok(Event::try_create(&self.identity, ts, body)?)
    }

    /// Records a welfare check-in. A "needs help" check-in also posts a linked need on
    /// the open board, as [`aidmesh_protocol::welfare::follow_up`] words it: the kind
    /// of help and the coarse area of where the person is, never who, which door or
    /// the volunteer's text (those stay in the check-in, behind the volunteer PIN).
    /// Returns the check-in and the need.
    pub fn check_in(&self, check: CheckIn) -> Result<(Event, Option<Event>), IngestError> {
        let help = match &check.outcome {
            Outcome::NeedsHelp(what) => Some(what.clone()),
            _ => None,
        };
        let person = check.person;
        let c = self.post(Body::CheckIn(check))?;
        let Some(what) = help else {
            return Ok((c, None));
        };
        let place = self
            .with_view(|v| v.person(&person))
            .map(|p| p.place())
            .unwrap_or_default();
        let need = self.post(Body::Need(aidmesh_protocol::welfare::follow_up(
            &what,
            &place,
            c.id(),
        )))?;
        Ok((c, Some(need)))
    }

    /// Validates and stores one event, then flushes it to disk.
    pub fn ingest_durable(&self, bytes: &[u8], origin: Origin) -> Result<Ingested, IngestError> {
        let r = self.ingest(bytes, origin)?;
        self.store.flush()?;
        Ok(r)
    }

    /// Validates and stores a batch with one flush at the end. Peers' events are
    /// validated before the engine lock is taken, in parallel across the cores (the
    /// Ed25519 check is most of the cost); only filing them takes the lock.
    pub fn ingest_batch(
        &self,
        batch: &[Vec<u8>],
        origin: Origin,
    ) -> Result<BatchResult, StoreError> {
        let mut out = BatchResult::default();
        let tally = |out: &mut BatchResult, r: Result<Ingested, IngestError>, bytes: &[u8]| {
            match r {
                Ok(Ingested::New(_)) => out.new += 1,
                Ok(_) => out.known += 1,
                Err(IngestError::Invalid(ValidationError::FromTheFuture { .. })) => {
                    if let Ok(e) = Event::decode(bytes) {
                        out.deferred.push(e.id());
                    }
                }
                Err(IngestError::Invalid(e)) => out.rejected.push(e.to_string()),
                Err(e @ IngestError::OverQuota { .. }) => out.rejected.push(e.to_string()),
                Err(IngestError::Store(e)) => return Err(e),
            }
            Ok(())
        };
        if origin == Origin::Local {
            // Local writes are checked against the view (rights on held targets),
            // which needs the lock: one at a time.
            for bytes in batch {
                tally(&mut out, self.ingest(bytes, origin), bytes)?;
            }
        } else {
            // A nearly full disk leaves peers' and imported events where they came from
            // (the batch fails as a whole; catch-up fetches it again once there is room).
            self.disk.admit(false)?;
            let now = self.now_ms();
            let checked = validate_all(batch, &Rules::at(now));
            let mut filed = batch.iter().zip(checked).peekable();
            while filed.peek().is_some() {
                // The lock is let go every few events, so a page or a local post
                // waits for a few events' filing, not a whole batch's.
                let mut announce = Vec::new();
                let mut st = self.lock();
                for (bytes, v) in filed.by_ref().take(FILE_CHUNK) {
                    let r = match v {
                        Ok(v) => self.file(&mut st, v, origin, now, &mut announce),
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = tally(&mut out, r, bytes) {
                        drop(st);
                        self.announce(announce);
                        return Err(e);
                    }
                }
                drop(st);
                self.announce(announce);
            }
        }
        self.store.flush()?;
        Ok(out)
    }

    /// Validates and stores one event (not yet flushed).
    pub fn ingest(&self, bytes: &[u8], origin: Origin) -> Result<Ingested, IngestError> {
        // Before anything is written: a full disk refuses local posts (HTTP 507) and
        // leaves peers' events with the peers until there is room.
        // Erasures are taken nearly to the last byte: they free space.
        let erasure = Event::decode(bytes).is_ok_and(|e| e.kind() == BodyKind::Redaction.code());
        if erasure {
            self.disk.admit_erasure()
        } else {
            self.disk.admit(origin == Origin::Local)
        }
        .map_err(StoreError::from)?;
        let now = self.now_ms();
        // Rights against held targets are checked for local writes only, under the
        // lock; see `aidmesh_protocol::TargetLookup` for why peers' events are not.
        // Theirs are validated before the lock is taken.
        let (mut st, verified) = if origin == Origin::Local {
            let st = self.lock();
            let v = validate(bytes, &Rules::at(now), &st.view)?;
            (st, v)
        } else {
            let v = validate(bytes, &Rules::at(now), &())?;
            (self.lock(), v)
        };
        let mut announce = Vec::new();
        let r = self.file(&mut st, verified, origin, now, &mut announce);
        drop(st);
        self.announce(announce);
        match r {
            // Our own write past the quota: refused, so that we never sign what
            // peers would drop.
            Ok(Ingested::OverQuota(_)) if origin == Origin::Local => Err(IngestError::OverQuota {
                limit: DAILY_EVENTS_PER_AUTHOR,
            }),
            r => r,
        }
    }

    /// Events `author` signed on the UTC day of `at` that count toward the daily quota.
    pub fn signed_on_day(&self, author: &AuthorId, at: Timestamp) -> u32 {
        let daily = self.daily.lock().unwrap_or_else(|p| p.into_inner());
        daily
            .get(&(*author, quota::day_of(at)))
            .map_or(0, |n| (*n).min(DAILY_EVENTS_PER_AUTHOR))
    }

    /// Whether the event in `bytes` (valid) is one its author may not sign any more
    /// today: the gossip checker does not forward it (it is not stored either).
    pub fn over_daily_quota(&self, bytes: &[u8]) -> bool {
        let Ok(event) = Event::decode(bytes) else {
            return false;
        };
        let body = event.body().ok().flatten();
        quota::counts_toward_daily(body.as_ref())
            && self.signed_on_day(&event.author(), event.timestamp()) >= DAILY_EVENTS_PER_AUTHOR
    }

    /// Tells subscribers about newly stored events (after the lock is released).
    fn announce(&self, events: Vec<NewEvent>) {
        for e in events {
            // No subscriber is fine (e.g. no page open, network not started yet).
            let _ = self.tx.send(e);
        }
    }

    /// Files one validated event: duplicate and erasure checks, the store (one write
    /// per tree, not yet flushed), the view. A new event is pushed to `announce`.
    fn file(
        &self,
        st: &mut State,
        verified: Verified,
        origin: Origin,
        now: u64,
        announce: &mut Vec<NewEvent>,
    ) -> Result<Ingested, IngestError> {
        let Verified { event, body } = verified;
        let id = event.id();
        if self.store.contains_at(event.timestamp(), &id)? {
            return Ok(Ingested::Duplicate(id));
        }
        if self.store.erased_kind(&id)?.is_some() {
            return Ok(Ingested::Erased(id));
        }
        if let Some(body) = &body {
            if self.covered_by_redaction(&st.view, &event, body)? {
                self.store.erase(&id, event.kind())?;
                return Ok(Ingested::Erased(id));
            }
        }
        let day = (event.author(), quota::day_of(event.timestamp()));
        let counted = quota::counts_toward_daily(body.as_ref());
        if counted {
            let mut daily = self.daily.lock().unwrap_or_else(|p| p.into_inner());
            let n = daily.entry(day).or_default();
            if *n >= DAILY_EVENTS_PER_AUTHOR {
                if *n == DAILY_EVENTS_PER_AUTHOR {
                    *n += 1; // logged once a day and author
                    warn!(
                        author = %event.author().short(),
                        limit = DAILY_EVENTS_PER_AUTHOR,
                        "an author signed its day's quota of events; more of its events of that day are not kept nor forwarded (a flood? see docs/security.md)"
                    );
                }
                return Ok(Ingested::OverQuota(id));
            }
        }
        let key = (event.timestamp(), id);
        if body.is_none() {
            // The per-author bound on events nobody here can read or redact.
            let held = st.unknown.entry(event.author()).or_default();
            match admit_unknown(held, key) {
                Admit::Keep => {}
                Admit::KeepDropping(later) => {
                    let kind = self
                        .store
                        .get(&later)?
                        .and_then(|b| Event::decode(&b).ok())
                        .map_or(0, |e| e.kind());
                    held.retain(|(_, i)| *i != later);
                    if self.store.erase(&later, kind)? {
                        self.compactor.request(false);
                    }
                }
                Admit::Drop => {
                    self.store.erase(&id, event.kind())?;
                    return Ok(Ingested::Erased(id));
                }
            }
        }
        // Checked just above, under the lock: no second look-up in the store.
        self.store.insert_new(&event)?;
        if counted {
            *self
                .daily
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(day)
                .or_default() += 1;
        }
        // A stamp before the build floor (an older node's clock in 1970) says nothing
        // about when it happened: remember when it reached us, to show that instead.
        if event.timestamp().millis() < BUILD_MS {
            self.store.set_arrival(&id, now)?;
            st.view.note_arrival(id, now);
        }
        if body.is_none() {
            st.unknown.entry(event.author()).or_default().insert(key);
        }
        st.clock.observe(event.timestamp(), now);
        st.digest = None;
        st.sync_set = None;
        st.generation += 1;
        if let Some(body) = &body {
            st.view.insert(&event, body);
            if let Some(log) = &mut st.rebuild_log {
                log.push((event.clone(), body.clone()));
            }
            if matches!(body, Body::Redaction(_)) {
                self.purge(st)?;
            }
        }
        announce.push(NewEvent {
            event,
            body,
            origin,
        });
        Ok(Ingested::New(id))
    }

    fn covered_by_redaction(
        &self,
        view: &View,
        event: &Event,
        body: &Body,
    ) -> Result<bool, StoreError> {
        if matches!(body, Body::Redaction(_)) {
            return Ok(false); // redactions cannot be redacted
        }
        if view.redacted_by(&event.id(), &event.author()) {
            return Ok(true);
        }
        if let Body::Need(p) | Body::Offer(p) = body {
            // A need raised by a check-in that has since been erased goes with it.
            if let Some(r) = p.related {
                if self.store.erased_kind(&r)? == Some(BodyKind::CheckIn.code()) {
                    return Ok(true);
                }
            }
        }
        if let Body::CheckIn(c) = body {
            if view.checkin_hidden(&event.id(), &event.author(), &c.person) {
                return Ok(true);
            }
            // The person may have been erased before this check-in arrived.
            if self.store.erased_kind(&c.person)? == Some(BodyKind::Person.code()) {
                return Ok(true);
            }
        }
        // Likewise a sharing answer on a person erased before it arrived.
        if let Body::Sharing(c) = body {
            if self.store.erased_kind(&c.person)? == Some(BodyKind::Person.code()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Erases welfare records past retention (see
    /// [`aidmesh_protocol::View::welfare_expired`]); returns how many events went.
    /// Uses [`ClockReading::erase_ms`]: a corrected clock ahead of ours never hastens an
    /// erasure.
    pub fn expire_welfare(&self, retention_ms: u64) -> Result<usize, StoreError> {
        let now = self.clock().erase_ms;
        let mut st = self.lock();
        let targets = st.view.welfare_expired(now, retention_ms, BUILD_MS);
        if targets.is_empty() {
            return Ok(0);
        }
        let n = self.erase(&mut st, &targets)?;
        if n > 0 {
            // Expired records are not hidden by any event, so the view is rebuilt
            // now (rare: one sweep every few minutes, on a blocking thread).
            st.view = load_view(&self.store)?.view;
            drop(st);
            release_freed_memory();
            info!(erased = n, "welfare records past retention erased");
        }
        Ok(n)
    }

    /// Erases every event a redaction now covers from the store. The board already
    /// hides them (the redaction is filed); the background thread then rebuilds the
    /// view, so no erased text stays in memory, and compacts the database.
    fn purge(&self, st: &mut State) -> Result<(), StoreError> {
        let targets = st.view.purgeable();
        let erased = self.erase(st, &targets)?;
        if erased > 0 {
            self.compactor.request(true);
        }
        if erased > 0 {
            info!(
                erased,
                "redaction applied: content erased from the database"
            );
        }
        Ok(())
    }

    /// Erases the held events among `targets` from the store (durably) and asks the
    /// background thread to compact the database (sled keeps removed values in old log
    /// segments until then). Returns how many went. The caller sees to the view.
    fn erase(
        &self,
        st: &mut State,
        targets: &std::collections::BTreeSet<EventId>,
    ) -> Result<usize, StoreError> {
        let mut erased = 0;
        for id in targets {
            if let Some(bytes) = self.store.get(id)? {
                let kind = Event::decode(&bytes).map_or(0, |e| e.kind());
                self.store.erase(id, kind)?;
                erased += 1;
            }
        }
        if erased == 0 {
            return Ok(0);
        }
        st.digest = None;
        st.sync_set = None;
        st.generation += 1;
        // Durable before the compaction is asked for: the erasure and its pending flag.
        self.store.flush()?;
        self.compactor.request(false);
        Ok(erased)
    }
}

/// Most events filed under one hold of the engine lock by [`Engine::ingest_batch`].
const FILE_CHUNK: usize = 64;

/// Validates peers' events (no target look-up, see [`aidmesh_protocol::TargetLookup`]) on every core:
/// decoding and the Ed25519 check are independent per event. Results in input order.
///
/// Not `ed25519_dalek::verify_batch`: its cofactorless equation with coefficients
/// derived from the batch can accept, about one time in eight per try, a crafted
/// signature whose points carry a small-torsion component that `verify_strict`
/// rejects. Whether such an event were stored would then depend on which batch it
/// arrived in, and two nodes could hold different sets for good.
fn validate_all(batch: &[Vec<u8>], rules: &Rules) -> Vec<Result<Verified, ValidationError>> {
    /// Below this, starting threads costs more than it saves.
    const MIN_PARALLEL: usize = 64;
    let one = |bytes: &Vec<u8>| validate(bytes, rules, &());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || batch.len() < MIN_PARALLEL {
        return batch.iter().map(one).collect();
    }
    let per = batch.len().div_ceil(cores);
    std::thread::scope(|s| {
        let mut parts = batch.chunks(per);
        // This thread takes the first part; a thread that cannot be started leaves
        // its part to this one.
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| {
                let handle = std::thread::Builder::new()
                    .name("validate".into())
                    .spawn_scoped(s, move || part.iter().map(one).collect::<Vec<_>>());
                (part, handle)
            })
            .collect();
        let mut out: Vec<_> = first.iter().map(one).collect();
        for (part, handle) in others {
            match handle.map(|h| h.join()) {
                Ok(Ok(done)) => out.extend(done),
                // A panic in validation would be a bug; validate here instead.
                _ => out.extend(part.iter().map(one)),
            }
        }
        out
    })
}

/// Caps glibc's malloc at one arena and fixes its mmap threshold. By default glibc
/// gives each thread that meets contention an arena of its own (up to 8 per core), and
/// the node's threads (runtime workers, network, sled, compactor, API) each keep freed
/// blocks in theirs. At 100,000 events a node then settles at 76 MB after its start;
/// with one arena at 60–61 MB in every start measured, with two in only half of them
/// (`docs/benchmarks.md`). Small blocks still go through each thread's own cache
/// (glibc's tcache) without the arena lock.
///
/// The mmap threshold: glibc raises it each time a block it had mapped is freed (up
/// to 32 MB), after which the node's big short-lived vectors (the sync set and its
/// copies, 4 MB each at 100,000 events) are carved from the heap and leave holes it
/// cannot hand back. Fixed at [`MMAP_THRESHOLD`], they are mapped and unmapped whole.
///
/// Call first thing in `main`, before any thread starts; `MALLOC_ARENA_MAX` and
/// `MALLOC_MMAP_THRESHOLD_` set in the environment win.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets an allocator parameter; any return value is fine.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

/// Blocks of this size or more are mapped on their own (see [`limit_malloc_arenas`]):
/// glibc's default starting value, kept from rising.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Hands memory the allocator holds but no longer uses back to the system, after a
/// step that decoded the whole store (a start, a rebuild of the view) or a sync
/// session. glibc keeps freed blocks for reuse, so without this the peak of that step
/// would stay resident for good; on a 512 MB Raspberry Pi that is the difference that
/// matters.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointer is
    // passed and any return value is fine.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "3 days", "5 min": for log lines people read.
pub fn human_ms(ms: u64) -> String {
    // Rounded to the nearest unit: a clock 3 days behind less a few ms is "3 days".
    let s = (ms + 500) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3569 => format!("{} min", (s + 30) / 60),
        3570..=84_599 => format!("{} h", (s + 1800) / 3600),
        _ => format!("{} days", (s + 43_200) / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FailAt;
    use aidmesh_protocol::{
        Category, CheckIn, Consent, Outcome, PersonRegistered, Place, Post, Redaction, Urgency,
    };

    fn engine(dir: &std::path::Path, seed: u8) -> Engine {
        Engine::open(
            Store::open(dir).unwrap(),
            Identity::from_seed([seed; 32]),
            "test".into(),
            0,
        )
        .unwrap()
    }

    fn need() -> Body {
        Body::Need(Post::new("water", Category::Water, Urgency::Normal))
    }

    #[test]
    fn posted_events_survive_reopen_and_duplicates_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let e = {
            let eng = engine(dir.path(), 1);
            let e = eng.post(need()).unwrap();
            assert_eq!(
                eng.ingest(e.bytes(), Origin::Gossip).unwrap(),
                Ingested::Duplicate(e.id())
            );
            e
        };
        let eng = engine(dir.path(), 1);
        assert_eq!(eng.len(), 1);
        assert!(eng.with_view(|v| v.item(&e.id(), 0)).is_some());
        // A new local event is ordered after what was loaded.
        let e2 = eng.post(need()).unwrap();
        assert!(e2.timestamp() > e.timestamp());
    }

    #[test]
    fn posts_are_read_back_from_the_store_after_a_start_and_a_reopened_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut posted = need();
        if let Body::Need(p) = &mut posted {
            p.details = "ring twice\nback door".into();
            p.contact = "+33 6 00 00 00 00".into();
        }
        let e = engine(dir.path(), 1).post(posted.clone()).unwrap();
        // The start read every event, then closed and reopened the database.
        let eng = engine(dir.path(), 1);
        let shown = eng.with_view(|v| v.item(&e.id(), 0)).expect("shown");
        assert_eq!(Body::Need(shown.post), posted);
        // Writes after the reopen land in the reopened database and are shown.
        let e2 = eng.post(need()).unwrap();
        assert_eq!(eng.with_view(|v| v.items(0).len()), 2);
        eng.store().release_cache().unwrap();
        assert!(eng.with_view(|v| v.item(&e2.id(), 0)).is_some());
        drop(eng);
        assert_eq!(engine(dir.path(), 1).len(), 2);
    }

    #[test]
    fn forgetting_a_person_erases_their_bytes_and_refuses_late_check_ins() {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        let reg = eng
            .post(Body::Person(PersonRegistered {
                name: "Zebulon Quartermaine".into(),
                place: Place::default(),
                risks: vec![],
                check_every_secs: 3600,
                consent: Consent::Own,
                phone: String::new(),
                note: String::new(),
            }))
            .unwrap();
        // The test can fail: before forgetting, the name is on disk.
        assert!(files_contain(dir.path(), b"Zebulon Q").is_some());
        // A check-in written elsewhere, which arrives only after the redaction.
        let other = Identity::from_seed([2; 32]);
        let late = Event::create(
            &other,
            aidmesh_protocol::Timestamp::from_millis(eng.now_ms()),
            &Body::CheckIn(CheckIn {
                person: reg.id(),
                outcome: Outcome::Safe,
                note: "fine".into(),
                by: "Sam".into(),
            }),
        );
        eng.post(Body::Redaction(Redaction {
            target: reg.id(),
            reason: String::new(),
        }))
        .unwrap();
        assert!(eng.store().get(&reg.id()).unwrap().is_none());
        wait_compacted(&eng, 1);
        assert_eq!(
            eng.ingest(late.bytes(), Origin::Gossip).unwrap(),
            Ingested::Erased(late.id())
        );
        assert!(eng.with_view(|v| v.people().is_empty()));
        assert_eq!(
            eng.ingest(reg.bytes(), Origin::Sync).unwrap(),
            Ingested::Erased(reg.id())
        );
        // Not only hidden: no byte of the name is left in the database files.
        eng.store().flush().unwrap();
        if let Some(f) = files_contain(dir.path(), b"Zebulon Q") {
            panic!("the forgotten name is still in {}", f.display());
        }
        // The store still works after compaction, and a restart sees the same.
        eng.post(need()).unwrap();
        let n = eng.len();
        drop(eng);
        let again = engine(dir.path(), 1);
        assert_eq!(again.len(), n);
    }

    /// Between sessions a node keeps no reconciliation set (issue 14: 4 MB at
    /// 100,000 events); the next session builds it again, the same.
    #[test]
    fn after_a_sync_the_cached_set_is_let_go_and_built_again_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        eng.post(need()).unwrap();
        let set = eng.sync_set().unwrap();
        assert_eq!(Arc::strong_count(&set), 2, "the engine caches the set");
        eng.after_sync();
        assert_eq!(Arc::strong_count(&set), 1, "the engine let go of it");
        let again = eng.sync_set().unwrap();
        assert_eq!(again.len(), set.len());
        assert_eq!(
            eng.store().sync_items().unwrap().len(),
            again.len(),
            "built from the store's time index"
        );
    }

    #[test]
    fn the_digest_is_never_stale_after_concurrent_writes() {
        let dir = tempfile::tempdir().unwrap();
        let eng = Arc::new(engine(dir.path(), 1));
        let writer = {
            let eng = eng.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    eng.post(need()).unwrap();
                }
            })
        };
        while !writer.is_finished() {
            eng.digest().unwrap();
            eng.sync_set().unwrap();
        }
        writer.join().unwrap();
        let fresh = aidmesh_protocol::sync::digest(&eng.store().ids().unwrap());
        assert_eq!(eng.digest().unwrap(), fresh, "a stale digest was cached");
        assert_eq!(
            eng.sync_set().unwrap().len(),
            eng.len(),
            "a stale sync set was cached"
        );
    }

    #[test]
    fn human_durations_round_to_the_nearest_unit() {
        assert_eq!(human_ms(3 * 86_400_000 - 40), "3 days");
        assert_eq!(human_ms(90 * 60_000), "2 h");
        assert_eq!(human_ms(125_000), "2 min");
        assert_eq!(human_ms(1_400), "1 s");
    }

    #[test]
    fn welfare_records_are_erased_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        const DAY: u64 = 86_400_000;
        {
            let eng = engine(dir.path(), 1);
            eng.post(Body::Person(PersonRegistered {
                name: "Yolanda Retention".into(),
                place: Place::default(),
                risks: vec![],
                check_every_secs: 3600,
                consent: Consent::Own,
                phone: String::new(),
                note: String::new(),
            }))
            .unwrap();
            eng.post(need()).unwrap();
            assert_eq!(eng.expire_welfare(30 * DAY).unwrap(), 0);
        }
        // 31 days later.
        let later = Engine::open(
            Store::open(dir.path()).unwrap(),
            Identity::from_seed([1; 32]),
            "test".into(),
            31 * DAY as i64,
        )
        .unwrap();
        assert_eq!(later.expire_welfare(30 * DAY).unwrap(), 1);
        assert!(later.with_view(|v| v.people().is_empty()));
        assert_eq!(later.len(), 1, "the need is not welfare data and stays");
        wait_compacted(&later, 1);
        assert!(files_contain(dir.path(), b"Yolanda R").is_none());
    }

    /// Waits (bounded) until the background thread has finished `n` compactions and
    /// none is owed.
    fn wait_compacted(eng: &Engine, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while eng.store().compactions() < n || eng.store().compaction_pending().unwrap() {
            assert!(
                Instant::now() < deadline,
                "no background compaction within 20 s ({} done)",
                eng.store().compactions()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn person(name: &str) -> Body {
        Body::Person(PersonRegistered {
            name: name.into(),
            place: Place::default(),
            risks: vec![],
            check_every_secs: 3600,
            consent: Consent::Own,
            phone: String::new(),
            note: String::new(),
        })
    }

    fn key(peer: &str, host: &str) -> ClockKey {
        ClockKey {
            peer: peer.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        }
    }

    const DAY: u64 = 86_400_000;

    #[test]
    fn one_fast_peer_moves_neither_the_time_nor_erasure_nor_local_writes() {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        eng.post(person("Xavier Fastclock")).unwrap();
        eng.record_peer_clock(&key("liar", "10.0.0.9"), eng.wall_ms() + 40 * DAY);
        assert!(matches!(eng.clock_status().0, ClockStatus::Behind(_)));
        assert!(eng.now_ms().abs_diff(eng.wall_ms()) < 60_000, "time moved");
        assert_eq!(eng.expire_welfare(30 * DAY).unwrap(), 0, "erased early");
        let e = eng.post(need()).unwrap();
        assert!(e.timestamp().millis().abs_diff(eng.wall_ms()) < 60_000);
        // Its events are deferred, not stored and not counted as the sender's fault.
        let other = Identity::from_seed([2; 32]);
        let future = Event::create(
            &other,
            Timestamp::from_millis(eng.wall_ms() + 40 * DAY),
            &need(),
        );
        let r = eng
            .ingest_batch(&[future.bytes().to_vec()], Origin::Sync)
            .unwrap();
        assert_eq!((r.new, r.rejected.len()), (0, 0), "{r:?}");
        assert_eq!(r.deferred, vec![future.id()]);
    }

    #[test]
    fn a_quorum_ahead_never_hastens_erasure_and_moves_time_at_most_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        eng.post(person("Wilma Quorum")).unwrap();
        for h in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
            eng.record_peer_clock(&key(h, h), eng.wall_ms() + 40 * DAY);
        }
        let r = eng.clock();
        assert_eq!(r.source, TimeSource::Mesh);
        let moved = r.now_ms - r.local_ms;
        assert!(
            moved <= aidmesh_protocol::time::MAX_CORRECTION_MS,
            "moved {moved} ms"
        );
        assert_eq!(eng.expire_welfare(30 * DAY).unwrap(), 0, "erased early");
        assert!(eng.with_view(|v| v.people().len()) == 1);
    }

    #[test]
    fn a_store_holding_future_events_still_takes_local_writes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            // Written while this node's clock was 40 days ahead.
            let fast = Engine::open(
                Store::open(dir.path()).unwrap(),
                Identity::from_seed([1; 32]),
                "test".into(),
                40 * DAY as i64,
            )
            .unwrap();
            fast.post(need()).unwrap();
        }
        let eng = engine(dir.path(), 1);
        let e = eng
            .post(need())
            .expect("a local write after the clock was fixed");
        assert!(e.timestamp().millis() <= eng.now_ms() + aidmesh_protocol::time::MAX_FUTURE_MS);
    }

    fn forget(eng: &Engine, target: EventId) {
        eng.post(Body::Redaction(Redaction {
            target,
            reason: String::new(),
        }))
        .unwrap();
    }

    #[test]
    fn several_forgets_share_one_background_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        let names: Vec<String> = (0..5).map(|i| format!("Quillon Nakamura-{i}")).collect();
        let ids: Vec<EventId> = names
            .iter()
            .map(|n| eng.post(person(n)).unwrap().id())
            .collect();
        for _ in 0..200 {
            eng.post(need()).unwrap();
        }
        assert!(files_contain(dir.path(), b"Quillon N").is_some());
        for id in ids {
            forget(&eng, id);
        }
        // Forgetting returns before the rewrite: none has happened yet...
        assert_eq!(eng.store().compactions(), 0);
        assert!(eng.with_view(|v| v.people().is_empty()));
        // ...and one rewrite then removes all five names.
        wait_compacted(&eng, 1);
        assert_eq!(
            eng.store().compactions(),
            1,
            "the forgets were not coalesced"
        );
        if let Some(f) = files_contain(dir.path(), b"Quillon N") {
            panic!("a forgotten name is still in {}", f.display());
        }
    }

    #[test]
    fn a_failed_compaction_keeps_the_store_serving_and_finishes_at_the_next_start() {
        for at in [FailAt::Copy, FailAt::Pointer] {
            let dir = tempfile::tempdir().unwrap();
            let eng = engine(dir.path(), 1);
            let reg = eng.post(person("Wilhelmina Failsafe")).unwrap();
            *eng.store().fail_next.lock().unwrap() = Some(at);
            forget(&eng, reg.id());
            // The background compaction fails; it retries only after 30 s.
            let deadline = Instant::now() + Duration::from_secs(20);
            while eng.store().fail_next.lock().unwrap().is_some() {
                assert!(
                    Instant::now() < deadline,
                    "{at:?}: the compaction never ran"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            // Wait for the failed attempt to let go of the store.
            let _one = eng.store().compacting.lock().unwrap();
            drop(_one);
            assert_eq!(eng.store().compactions(), 0);
            assert!(eng.store().compaction_pending().unwrap(), "{at:?}");
            // The old database still serves reads and writes.
            let n = eng.post(need()).unwrap();
            assert!(eng.store().get(&n.id()).unwrap().is_some(), "{at:?}");
            assert!(eng.with_view(|v| v.people().is_empty()));
            assert!(
                files_contain(dir.path(), b"Wilhelmina F").is_some(),
                "{at:?}: the test must see the name before the retry"
            );
            let held = eng.len();
            drop(eng);
            // The next start finishes the compaction before anything else.
            let store = Store::open(dir.path()).unwrap();
            assert!(!store.compaction_pending().unwrap(), "{at:?}");
            assert_eq!(store.len(), held, "{at:?}");
            assert!(store.get(&n.id()).unwrap().is_some(), "{at:?}");
            if let Some(f) = files_contain(dir.path(), b"Wilhelmina F") {
                panic!("{at:?}: the forgotten name is still in {}", f.display());
            }
        }
    }

    #[test]
    fn events_stored_while_the_view_is_rebuilt_stay_on_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let eng = Arc::new(engine(dir.path(), 1));
        let base = wall_now() - 60_000;
        let older: Vec<Vec<u8>> = (0..3_000)
            .map(|i| {
                Event::create(
                    &Identity::from_seed([3; 32]),
                    Timestamp::from_millis(base + i),
                    &need(),
                )
                .into_bytes()
            })
            .collect();
        assert_eq!(eng.ingest_batch(&older, Origin::Sync).unwrap().new, 3_000);
        let reg = eng.post(person("Rebuild Person")).unwrap();
        // A writer stores needs all through the background rebuild.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (eng, stop) = (eng.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    eng.post(need()).unwrap();
                    n += 1;
                }
                n
            })
        };
        forget(&eng, reg.id());
        wait_compacted(&eng, 1);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert_eq!(
            eng.with_view(|v| v.post_ids().count()),
            3_000 + written,
            "a need stored during the background rebuild is missing from the board"
        );
        assert!(eng.with_view(|v| v.people().is_empty()));
    }

    #[test]
    fn writes_made_during_a_compaction_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let eng = Arc::new(engine(dir.path(), 1));
        for _ in 0..500 {
            eng.post(need()).unwrap();
        }
        let writer = {
            let eng = eng.clone();
            std::thread::spawn(move || {
                (0..300)
                    .map(|_| eng.post(need()).unwrap().id())
                    .collect::<Vec<_>>()
            })
        };
        let mut rounds = 0;
        while !writer.is_finished() || rounds == 0 {
            eng.store().compact().unwrap();
            rounds += 1;
        }
        let written = writer.join().unwrap();
        assert!(rounds > 1, "the writes did not overlap a compaction");
        let n = eng.len();
        drop(eng);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.len(), n);
        assert_eq!(store.sync_items().unwrap().len(), n);
        for id in written {
            assert!(
                store.get(&id).unwrap().is_some(),
                "a write made during a compaction was lost"
            );
        }
    }

    #[test]
    fn an_author_s_day_past_the_quota_is_neither_kept_nor_signed_and_erasures_still_are() {
        use aidmesh_protocol::body::Redaction;
        use aidmesh_protocol::quota::DAILY_EVENTS_PER_AUTHOR;
        let flooder = Identity::from_seed([9; 32]);
        // The start of today (UTC) by our clock, so the whole flood is one day's.
        let day_start = wall_now() / 86_400_000 * 86_400_000;
        // `n` needs by `who`, a millisecond apart from the start of today.
        let day_of = |who: &Identity, n: u64| -> Vec<Vec<u8>> {
            (0..n)
                .map(|i| {
                    let body = Body::Need(Post::new(
                        format!("post {i}"),
                        Category::Water,
                        Urgency::Low,
                    ));
                    Event::try_create(who, Timestamp::from_millis(day_start + i), &body)
                        .unwrap()
                        .bytes()
                        .to_vec()
                })
                .collect()
        };
        let flood = day_of(&flooder, u64::from(DAILY_EVENTS_PER_AUTHOR) + 5);
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        let r = eng.ingest_batch(&flood, Origin::Sync).unwrap();
        assert_eq!(r.new, DAILY_EVENTS_PER_AUTHOR as usize, "{r:?}");
        assert_eq!(eng.len(), DAILY_EVENTS_PER_AUTHOR as usize);
        assert!(eng.over_daily_quota(&flood[DAILY_EVENTS_PER_AUTHOR as usize]));
        // The same author's events of another day, and another author's, are kept.
        let yesterday = Event::try_create(
            &flooder,
            Timestamp::from_millis(day_start - 1),
            &Body::Need(Post::new("yesterday", Category::Water, Urgency::Low)),
        )
        .unwrap();
        assert!(!eng.over_daily_quota(yesterday.bytes()));
        assert!(matches!(
            eng.ingest(yesterday.bytes(), Origin::Gossip).unwrap(),
            Ingested::New(_)
        ));
        // Counted again at a restart.
        drop(eng);
        let eng = engine(dir.path(), 1);
        let late = &flood[DAILY_EVENTS_PER_AUTHOR as usize + 1];
        assert!(matches!(
            eng.ingest(late, Origin::Gossip).unwrap(),
            Ingested::OverQuota(_)
        ));
        assert!(!eng.knows(&Event::decode(late).unwrap().id()).unwrap());
        // A hub past its own quota refuses to sign, except an erasure.
        let me = Identity::from_seed([1; 32]);
        let mine = day_of(&me, u64::from(DAILY_EVENTS_PER_AUTHOR));
        assert_eq!(
            eng.ingest_batch(&mine, Origin::Sync).unwrap().new,
            DAILY_EVENTS_PER_AUTHOR as usize
        );
        let refused = eng.post(Body::Need(Post::new(
            "one more",
            Category::Water,
            Urgency::Low,
        )));
        assert!(
            matches!(refused, Err(IngestError::OverQuota { .. })),
            "{refused:?}"
        );
        let first = Event::decode(&mine[0]).unwrap().id();
        eng.post(Body::Redaction(Redaction {
            target: first,
            reason: String::new(),
        }))
        .expect("an erasure past the quota");
        assert!(!eng.store().contains(&first).unwrap(), "erased");
    }

    #[test]
    fn unknown_kind_events_are_bounded_per_author_whatever_the_arrival_order() {
        use aidmesh_protocol::quota::MAX_UNKNOWN_PER_AUTHOR;
        let member = Identity::from_seed([9; 32]);
        let now = Timestamp::from_millis(wall_now());
        let blobs: Vec<Event> = (0..MAX_UNKNOWN_PER_AUTHOR as u64 + 8)
            .map(|i| {
                Event::create_raw(
                    &member,
                    1,
                    Timestamp(now.0 - 1_000_000 + i * 1_000),
                    999,
                    &vec![i as u8; 8_000],
                )
            })
            .collect();
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (engine(da.path(), 1), engine(db.path(), 2));
        for e in &blobs {
            a.ingest(e.bytes(), Origin::Gossip).unwrap();
        }
        for e in blobs.iter().rev() {
            b.ingest(e.bytes(), Origin::Sync).unwrap();
        }
        assert_eq!(a.len(), MAX_UNKNOWN_PER_AUTHOR, "the quota did not hold");
        assert_eq!(b.len(), MAX_UNKNOWN_PER_AUTHOR, "the quota did not hold");
        assert_eq!(
            a.digest().unwrap(),
            b.digest().unwrap(),
            "the nodes kept different events"
        );
        // The earliest are kept; a later one offered again stays out, also after a
        // restart (the index is rebuilt from the store).
        let last = blobs.last().unwrap();
        assert_eq!(
            a.ingest(last.bytes(), Origin::Sync).unwrap(),
            Ingested::Erased(last.id())
        );
        assert!(a.store().get(&blobs[0].id()).unwrap().is_some());
        drop(a);
        let a = engine(da.path(), 1);
        let another = Event::create_raw(&member, 1, Timestamp(now.0), 999, b"more");
        assert_eq!(
            a.ingest(another.bytes(), Origin::Gossip).unwrap(),
            Ingested::Erased(another.id())
        );
        assert_eq!(a.len(), MAX_UNKNOWN_PER_AUTHOR);
        // Another author has a quota of their own.
        let other = Event::create_raw(&Identity::from_seed([8; 32]), 1, now, 999, b"x");
        assert_eq!(
            a.ingest(other.bytes(), Origin::Gossip).unwrap(),
            Ingested::New(other.id())
        );
    }

    fn wall_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Option<std::path::PathBuf> {
        walk(dir)
            .into_iter()
            .find(|f| std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn a_batch_validated_in_parallel_files_exactly_what_one_by_one_ingest_does() {
        // After the build floor, so no arrival time (local to each node) is noted.
        let base = wall_now() - 2_000;
        let people: Vec<Identity> = (10..14).map(|i| Identity::from_seed([i; 32])).collect();
        let at = |i: u64| Timestamp::from_millis(base + i);
        let mut batch: Vec<Vec<u8>> = Vec::new();
        for i in 0..300u64 {
            batch.push(Event::create(&people[i as usize % 4], at(i), &need()).into_bytes());
        }
        // A person, a check-in on them and the redaction of the person, all in the
        // batch; the check-in again after the redaction.
        let reg = Event::create(&people[0], at(400), &person("Batch Person"));
        let check = Event::create(
            &people[1],
            at(401),
            &Body::CheckIn(CheckIn {
                person: reg.id(),
                outcome: Outcome::Safe,
                note: String::new(),
                by: String::new(),
            }),
        );
        let redact = Event::create(
            &people[0],
            at(402),
            &Body::Redaction(Redaction {
                target: reg.id(),
                reason: String::new(),
            }),
        );
        batch.splice(
            100..100,
            [reg.bytes(), check.bytes(), redact.bytes(), check.bytes()].map(<[u8]>::to_vec),
        );
        // A duplicate within the batch, a bad signature, garbage, one from the future.
        batch.push(batch[5].clone());
        let mut forged = batch[7].clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        batch.push(forged);
        batch.push(b"not an event".to_vec());
        batch.push(Event::create(&people[2], at(DAY * 40 + 600_000), &need()).into_bytes());

        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (par, seq) = (engine(da.path(), 1), engine(db.path(), 1));
        let r = par.ingest_batch(&batch, Origin::Sync).unwrap();
        let mut expect = BatchResult::default();
        for bytes in &batch {
            match seq.ingest(bytes, Origin::Sync) {
                Ok(Ingested::New(_)) => expect.new += 1,
                Ok(_) => expect.known += 1,
                Err(IngestError::Invalid(ValidationError::FromTheFuture { .. })) => {
                    expect.deferred.push(Event::decode(bytes).unwrap().id())
                }
                Err(IngestError::Invalid(e)) => expect.rejected.push(e.to_string()),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(r, expect);
        assert_eq!(
            (r.new, r.known, r.rejected.len(), r.deferred.len()),
            (303, 2, 2, 1)
        );
        assert_eq!(par.digest().unwrap(), seq.digest().unwrap());
        assert_eq!(par.store().sync_items().unwrap().len(), par.len());
        let now = par.now_ms();
        assert_eq!(
            par.with_view(|v| (v.items(now), v.people())),
            seq.with_view(|v| (v.items(now), v.people()))
        );
        assert!(par.store().get(&reg.id()).unwrap().is_none(), "not erased");
        assert!(
            par.store().get(&check.id()).unwrap().is_none(),
            "not erased"
        );
    }

    #[test]
    fn a_needs_help_check_in_posts_a_need_with_the_street_not_the_door() {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 3);
        let person = eng
            .post(Body::Person(PersonRegistered {
                name: "Ada Lovelace".into(),
                place: Place {
                    label: "14 River Rd, 3rd floor".into(),
                    coords: None,
                },
                risks: vec![],
                check_every_secs: 3600,
                consent: Consent::Own,
                phone: String::new(),
                note: String::new(),
            }))
            .unwrap();
        let (check, need) = eng
            .check_in(CheckIn {
                person: person.id(),
                outcome: Outcome::NeedsHelp("oxygen".into()),
                note: String::new(),
                by: String::new(),
            })
            .unwrap();
        let need = need.expect("a linked need");
        let Ok(Some(Body::Need(post))) = need.body() else {
            panic!("not a need");
        };
        assert_eq!(post.place.label, "River Rd");
        assert_eq!(post.related, Some(check.id()));
        assert!(!post.title.contains("Ada"), "{}", post.title);
        assert!(!post.title.contains("oxygen"), "{}", post.title);
        assert_eq!(post.category, Category::Medical);
        // Other outcomes post nothing.
        let (_, none) = eng
            .check_in(CheckIn {
                person: person.id(),
                outcome: Outcome::Safe,
                note: String::new(),
                by: String::new(),
            })
            .unwrap();
        assert!(none.is_none());
    }
}
