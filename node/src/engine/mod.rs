//! The engine: the one path every event takes, whatever door it came through:
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
//!
//! This file holds the engine's state, its start (reading the store into the view) and
//! its reads. The rest, by job:
//! - [`write`]: signing, validating and filing events (the write path);
//! - [`retention`]: erasing what redactions cover and welfare records past retention,
//!   as the protocol's rules ([`aidmesh_protocol::retention`]) decide;
//! - [`compactor`]: the background thread that rebuilds the view and compacts the store;
//! - [`clock`]: the local clock, peers' clock samples and the mesh clock;
//! - [`memory`]: the allocator's tuning and handing freed memory back.

mod clock;
mod compactor;
mod memory;
mod retention;
#[cfg(test)]
mod start_tests;
#[cfg(test)]
mod tests;
mod write;

use std::sync::{Arc, Mutex, MutexGuard};

use aidmesh_protocol::body::Post;
use aidmesh_protocol::quota;
use aidmesh_protocol::start_file::{self, Counts, StartFileRef};
use aidmesh_protocol::sync::SyncSet;
use aidmesh_protocol::view::PostSource;
use aidmesh_protocol::{
    AuthorId, Body, Clock, ClockStatus, Event, EventId, Identity, MeshClock, Timestamp,
    ValidationError, View,
};
use thiserror::Error;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::store::{Saved, Store, StoreError};

use clock::system_ms;
pub use clock::{human_ms, ClockKey, BUILD_MS};
use compactor::Compactor;
pub use compactor::{COMPACT_COALESCE, COMPACT_MIN_GAP};
use memory::release_freed_memory;
pub use memory::{limit_malloc_arenas, MMAP_THRESHOLD};

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

/// Held events of kinds this node does not understand, by author: what
/// [`aidmesh_protocol::quota`] bounds.
type Unknown =
    std::collections::HashMap<AuthorId, std::collections::BTreeSet<(Timestamp, EventId)>>;

/// Held events that count toward the daily quota, by author and day (see
/// [`aidmesh_protocol::quota::day_of`]); a count past the quota means a refusal was
/// logged already.
type Daily = std::collections::HashMap<(AuthorId, u64), u32>;

/// Most entries [`HeadChanges`] keeps: a list's heads older than that many changes
/// are folded in full again.
const HEAD_CHANGES_KEPT: usize = 16_384;

/// The needs and offers whose heads each change of the store may have reached
/// ([`View::heads_touched`]), by generation: what lets a list keep its sorted heads
/// and fold again only those (issue 28: a fold of every item was 302 ms at a million).
/// Bounded ([`HEAD_CHANGES_KEPT`]); after a change that may reach any item (a
/// redaction, a check-in, an erasure), it cannot tell for older generations.
#[derive(Debug, Default)]
pub struct HeadChanges {
    /// `(generation, id)`, oldest first.
    log: std::collections::VecDeque<(u64, EventId)>,
    /// What changed up to this generation is not known.
    floor: u64,
}

impl HeadChanges {
    fn note(&mut self, generation: u64, touched: Option<Vec<EventId>>) {
        match touched {
            Some(ids) => self.log.extend(ids.into_iter().map(|id| (generation, id))),
            None => {
                self.log.clear();
                self.floor = generation;
            }
        }
        while self.log.len() > HEAD_CHANGES_KEPT {
            if let Some((g, _)) = self.log.pop_front() {
                self.floor = self.floor.max(g);
            }
        }
    }

    /// Every need or offer whose head may have changed after generation `since`, or
    /// `None` when that is not known (fold every item).
    pub fn since(&self, since: u64) -> Option<std::collections::BTreeSet<EventId>> {
        (since >= self.floor).then(|| {
            self.log
                .iter()
                .rev()
                .take_while(|(g, _)| *g > since)
                .map(|(_, id)| *id)
                .collect()
        })
    }
}

struct State {
    view: View,
    /// See [`HeadChanges`].
    head_changes: HeadChanges,
    unknown: Unknown,
    clock: Clock,
    mesh: MeshClock,
    digest: Option<[u8; 32]>,
    /// Bumped on every change of the stored set; caches computed outside the lock are
    /// kept only if it did not move meanwhile.
    generation: u64,
    warned: ClockStatus,
    /// While the background thread rebuilds the view from the store: the events
    /// stored meanwhile, to file into the new view before it replaces this one.
    rebuild_log: Option<Vec<(Event, Body)>>,
    /// Every author of a stored event with its newest event's time (ms), kept by
    /// every write: what the start file hands the next start (as
    /// [`Engine::authors_at_start`]).
    authors: std::collections::HashMap<AuthorId, u64>,
}

/// Where a start took its view and time index from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartedFrom {
    /// The start file written at the last clean stop.
    File,
    /// Every stored event, read again; why the start file was not used.
    Log(String),
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
    /// Where the start took its state from.
    started_from: StartedFrom,
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

/// What the start reads from every stored event: the view, and the rest added up.
struct Loaded {
    view: View,
    tally: Tally,
}

/// What [`load_view`] gathers besides the view (each thread its own, added up at the
/// end).
#[derive(Default)]
struct Tally {
    unknown: Unknown,
    newest: Timestamp,
    held: usize,
    /// Of `held`, events of the welfare kinds ([`aidmesh_protocol::retention::is_welfare_kind`]).
    welfare: usize,
    authors: std::collections::HashMap<AuthorId, u64>,
    daily: Daily,
}

impl From<Counts> for Tally {
    fn from(c: Counts) -> Tally {
        Tally {
            unknown: c.unknown,
            newest: c.newest,
            held: usize::try_from(c.held).unwrap_or(usize::MAX),
            welfare: usize::try_from(c.welfare).unwrap_or(usize::MAX),
            authors: c.authors,
            daily: c.daily,
        }
    }
}

impl Tally {
    fn add(&mut self, other: Tally) {
        for (author, held) in other.unknown {
            self.unknown.entry(author).or_default().extend(held);
        }
        self.newest = self.newest.max(other.newest);
        self.held += other.held;
        self.welfare += other.welfare;
        for (author, at) in other.authors {
            let t = self.authors.entry(author).or_default();
            *t = (*t).max(at);
        }
        for (day, n) in other.daily {
            *self.daily.entry(day).or_default() += n;
        }
    }

    /// Notes one stored event; returns its body if the view files it.
    fn note(&mut self, event: &Event) -> Option<Body> {
        self.newest = self.newest.max(event.timestamp());
        self.welfare += usize::from(aidmesh_protocol::retention::is_welfare_kind(event.kind()));
        let t = self.authors.entry(event.author()).or_default();
        *t = (*t).max(event.timestamp().millis());
        let body = event.body().ok()?;
        if quota::counts_toward_daily(body.as_ref()) {
            *self
                .daily
                .entry((event.author(), quota::day_of(event.timestamp())))
                .or_default() += 1;
        }
        if body.is_none() {
            self.unknown
                .entry(event.author())
                .or_default()
                .insert((event.timestamp(), event.id()));
        }
        body
    }
}

/// How many threads the start reads the store with: every core, at most 4, unless
/// `AIDMESH_START_THREADS` says (for measuring; docs/benchmarks.md).
fn start_threads() -> usize {
    std::env::var("AIDMESH_START_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
        .clamp(1, 64)
}

/// Builds the view from every stored event, indexes those of unknown kinds, and finds
/// the newest timestamp held. No signature is re-checked: events were validated
/// before they were stored, and each is taken under the id the store keyed it by
/// (not hashed again). The view reads posts back from `store`.
///
/// `threads` threads read `log` at once, each a range of stamps at a time
/// ([`Store::log_parts`]), decoding what they read and filing it into the view under
/// a lock (filing is idempotent and order-free, so the view is the same as one
/// thread's). The start uses every core (issue 28: a million events
/// on one thread took most of a 15 s start); a rebuild while the node serves, one.
fn load_view(store: &Arc<Store>, threads: usize) -> Result<Loaded, StoreError> {
    let view = Mutex::new(View::with_source(Arc::new(StoredPosts(store.clone()))));
    let threads = threads.max(1);
    // Several ranges a thread, so that a stretch of time denser than the rest does
    // not leave the other threads idle at the end.
    let parts = store.log_parts(if threads == 1 { 1 } else { threads * 8 })?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let read = || -> Result<Tally, StoreError> {
        let mut tally = Tally::default();
        while let Some(part) = parts.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            part.each(|key, bytes| {
                tally.held += 1;
                // Under the id it is keyed by; hashed as any event if the key is not
                // of the usual shape or names another stamp than the bytes.
                let decoded = match key {
                    Some((ts, id)) => Event::decode_known(bytes, id)
                        .ok()
                        .filter(|e| e.timestamp() == ts)
                        .map_or_else(|| Event::decode(bytes), Ok),
                    None => Event::decode(bytes),
                };
                let Ok(event) = decoded else {
                    warn!(db = %store.path().display(), "skipping an undecodable stored event");
                    return;
                };
                // Filed at once, each under the lock (held for the insert only): an
                // event and its body freed right after they were made is the
                // allocator's cheapest case. Holding batches of 256 cost a third more
                // CPU at a million events (one malloc arena, see `limit_malloc_arenas`).
                if let Some(body) = tally.note(&event) {
                    view.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(&event, &body);
                }
            })?;
        }
        Ok(tally)
    };
    let tallies = std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("load-view".into())
                    .spawn_scoped(s, read)
                    .ok()
            })
            .collect();
        // This thread reads too (all of it if no other could be started).
        let mut out = vec![read()];
        for w in workers {
            // A panic while decoding is a bug: it goes on as it would on one thread.
            out.push(w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    });
    let mut total = Tally::default();
    for t in tallies {
        total.add(t?);
    }
    let mut view = view.into_inner().unwrap_or_else(|p| p.into_inner());
    for (id, at) in store.arrivals()? {
        view.note_arrival(id, at);
    }
    view.pack();
    Ok(Loaded { view, tally: total })
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
        let (loaded, started_from) = match store.take_start() {
            Ok(Saved { mut view, counts }) => {
                view.set_source(Arc::new(StoredPosts(store.clone())));
                info!(
                    events = counts.held,
                    "started from the start file written at the last clean stop"
                );
                let tally = Tally::from(counts);
                (Loaded { view, tally }, StartedFrom::File)
            }
            Err(why) => {
                info!(reason = %why, "reading every stored event to start");
                (load_view(&store, start_threads())?, StartedFrom::Log(why))
            }
        };
        let Loaded {
            view,
            tally:
                Tally {
                    unknown,
                    newest,
                    held,
                    welfare,
                    authors,
                    daily,
                },
        } = loaded;
        store.set_welfare_len(welfare);
        if let StartedFrom::Log(_) = started_from {
            // Events are written without a transaction (see `Store::insert_new`):
            // after an unclean stop the time index may need a repair.
            store.repair_time_index(held)?;
            // Reading every stored event left sled holding each page it read; a
            // reopen hands them back (the view reads posts from the store from now
            // on). An error means the database could not be reopened: no start.
            store.release_cache()?;
        }
        // Decoding every stored event (or the start file) left the heap full of
        // freed blocks.
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
            head_changes: HeadChanges::default(),
            unknown,
            clock,
            mesh: MeshClock::new(BUILD_MS, started),
            digest: None,
            generation: 0,
            warned: ClockStatus::Unknown,
            rebuild_log: None,
            authors: authors.clone(),
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
            started_from,
        })
    }

    /// Where this start took its view and time index from: the start file, or every
    /// stored event (and why).
    pub fn started_from(&self) -> &StartedFrom {
        &self.started_from
    }

    /// The clean stop, once nothing else should write: refuses every later write of
    /// an event ([`Store::close_writes`]), flushes, and writes the start file so the
    /// next start need not read every event (docs/hub.md). A start file that cannot
    /// be written is logged and left out: the next start reads every event, as after
    /// a power cut. Only the flush's error is returned.
    pub fn stop_cleanly(&self) -> Result<(), StoreError> {
        let st = self.lock();
        self.store.close_writes();
        self.store.flush()?;
        let started = std::time::Instant::now();
        match self.write_start_file(&st) {
            Ok(bytes) => info!(
                bytes,
                events = self.store.len(),
                ms = started.elapsed().as_millis() as u64,
                "wrote the start file: the next start reads it instead of every event"
            ),
            Err(why) => warn!(
                reason = %why,
                "no start file written; the next start reads every stored event"
            ),
        }
        Ok(())
    }

    /// Encodes the state a start builds and has the store write it; returns the
    /// file's size. Under the engine's lock, after the store refuses writes.
    fn write_start_file(&self, st: &State) -> Result<usize, String> {
        // No compaction may run meanwhile (the token must land in the generation
        // the file names), and none may be owed: a view not yet rebuilt after an
        // erasure may still hold the erased content, which must not reach a file.
        let Ok(_one) = self.store.compacting.try_lock() else {
            return Err("a compaction is running".into());
        };
        if self.store.compaction_pending().map_err(|e| e.to_string())?
            || self.compactor.owes_work()
            || st.rebuild_log.is_some()
        {
            return Err("a compaction (after an erasure) is owed".into());
        }
        let mut token = [0u8; 16];
        getrandom::fill(&mut token).map_err(|e| format!("no randomness for the token: {e}"))?;
        let set = self.store.sync_set();
        let time_index = set.items();
        let counts = Counts {
            unknown: st.unknown.clone(),
            newest: time_index
                .last()
                .map_or_else(Timestamp::default, |(ts, _)| *ts),
            held: time_index.len() as u64,
            welfare: self.store.welfare_len() as u64,
            authors: st.authors.clone(),
            daily: self.daily.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        };
        let bytes = start_file::encode(
            &token,
            &StartFileRef {
                generation: self.store.generation(),
                time_index,
                counts: &counts,
                view: &st.view,
            },
        )
        .map_err(|e| e.to_string())?;
        // The file must not take the room the database needs to open again (it is
        // deleted only once the database is open, and a nearly full disk refuses that).
        let free = crate::disk::Space::of(self.store.path())
            .map_err(|e| format!("cannot tell the free disk space: {e}"))?
            .free_bytes;
        if free < bytes.len() as u64 + crate::disk::WARN_FREE_BYTES {
            return Err(format!(
                "too little free disk for it ({free} bytes free, the file is {} bytes and {} must stay free)",
                bytes.len(),
                crate::disk::WARN_FREE_BYTES
            ));
        }
        self.store.write_start_file(&bytes, &token)?;
        Ok(bytes.len())
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

    /// Subscribes to newly stored events.
    pub fn subscribe(&self) -> broadcast::Receiver<NewEvent> {
        self.tx.subscribe()
    }

    /// Runs `f` on the current view.
    pub fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.lock().view)
    }

    /// The post of the need or offer `id` stamped `ts`, read from the store without
    /// the engine's lock: a word search reads many (every candidate's, seconds at
    /// 100,000 items), and ingest and every other answer would wait for it meanwhile.
    /// `None` if it is not held (erased since) or is not a need or offer.
    pub fn post_at(&self, ts: Timestamp, id: &EventId) -> Option<Post> {
        let bytes = match self.store.get_at(ts, id) {
            Ok(bytes) => bytes?,
            Err(e) => {
                warn!(error = %e, id = %id.short(), "could not read a post from the store; it is left out of this answer");
                return None;
            }
        };
        match Event::decode_known(&bytes, *id).ok()?.body() {
            Ok(Some(Body::Need(p) | Body::Offer(p))) => Some(p),
            _ => None,
        }
    }

    /// Runs `f` on the current view, its [`Engine::version`] and what each change
    /// reached ([`HeadChanges`]), all under one hold of the lock.
    pub fn with_view_changes<R>(&self, f: impl FnOnce(&View, (u64, u64), &HeadChanges) -> R) -> R {
        let st = self.lock();
        f(&st.view, (self.boot, st.generation), &st.head_changes)
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

    /// The reconciliation set: a snapshot of the store's time index (its items
    /// shared, not copied: issue 28), so nothing is cached here. A session holding
    /// it keeps reading the items of its moment; the index changes in place again
    /// once no session reads them.
    pub fn sync_set(&self) -> Result<Arc<SyncSet>, StoreError> {
        Ok(Arc::new(self.store.sync_set()))
    }

    /// A sync session has ended (the worker records it in the peer book): the heap
    /// the session freed (a snapshot the index had to copy while the session read
    /// it, the fetched batches) is handed back to the system. Call off the network
    /// task: the trim walks the allocator's free lists.
    pub fn after_sync(&self) {
        release_freed_memory();
    }

    /// Whether an id is held or was erased (so there is no point fetching it).
    pub fn knows(&self, id: &EventId) -> Result<bool, StoreError> {
        Ok(self.store.contains(id)? || self.store.erased_kind(id)?.is_some())
    }
}
