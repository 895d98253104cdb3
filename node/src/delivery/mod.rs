//! Honest delivery (issue 11), the node's side: what this node knows about which hubs
//! hold which events, and the hub roster.
//!
//! - It reads what this node holds from the store's time index (the one copy of every
//!   held `(timestamp, id)` in memory, [`SyncIndex`]: issue 28 took out the 40-byte
//!   copy of each that delivery kept), is told of each new event by the engine's
//!   broadcast through the network task, and makes this node's signed summary
//!   ([`aidmesh_protocol::delivery::Summary`]) from it.
//! - It sends a full summary (every bucket) at first, at every keep-alive, soon after a
//!   peer connects, and whenever a delta would not save a third; otherwise a delta
//!   against its last full one (only the buckets that changed: most of a long
//!   history never does).
//! - It keeps the newest summary of every other hub, checked against what we hold:
//!   the time ranges where the hub holds exactly what we hold ("matched"), and events
//!   proven held by an earlier summary ("sticky": a matched range stops proving
//!   anything the moment an event arrives here in it, so the events it proved are
//!   remembered first). A delta is read through the hub's last full summary; one
//!   whose base we missed proves nothing by range until the hub's next full one.
//! - It answers "which hubs are known to hold event X, since when", the roster (every
//!   hub that earned its place: its summaries, its hub announcement, a connection to
//!   it; not the mere author of events; bounded) and which urgent
//!   needs posted here have reached no other hub.
//!
//! Nothing here waits on disk: the time index is memory (its lock is taken after
//! delivery's own, never the other way), the rest is delivery's own state, called from
//! the network task and the API.
//!
//! This file holds the state and what feeds it (our own arrivals, connections). The
//! rest, by job: [`send`] (our summaries), [`receive`] (other hubs' summaries) and
//! [`answers`] (what the API reads: who holds an event, the roster).

mod answers;
mod receive;
mod send;
#[cfg(test)]
mod tests;

pub use answers::{silent, standing, RetireError, Standing};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aidmesh_protocol::delivery::{
    bucket_of, community_tag, fingerprint, prefix, Bucket, Summary, SummaryError,
};
use aidmesh_protocol::sync::SyncIndex;
use aidmesh_protocol::{AuthorId, Event, EventId, Timestamp};
use libp2p::PeerId;
use tokio::sync::broadcast;

use crate::store::{Store, StoreError};

/// Least time between two summaries of ours (a change waits at most this long in a
/// small mesh).
pub const MIN_GAP_MS: u64 = 5_000;
/// The gap grows by this much per hub heard of, so that the whole mesh sends about
/// one summary a second while events arrive, however many hubs it has (every hub
/// receives every summary: at 30 hubs and a 5 s gap, summaries cost each host twice
/// the bytes of the events' own gossip).
pub const GAP_PER_HUB_MS: u64 = 1_000;
/// Most time between a change and our summary saying it (below
/// [`UNREACHED_AFTER_MS`], so a reached hub says so before the need is flagged).
pub const MAX_GAP_MS: u64 = 30_000;
/// Our arrivals this recent (and since our previous summary) are listed by id prefix
/// in our summary; older ones are proven by its buckets. In a small mesh (a gap of
/// 5 s) that is every arrival.
pub const LIST_MS: u64 = 10_000;
/// A summary goes out at least this often, changed or not (a keep-alive), in a small
/// mesh.
pub const KEEPALIVE_MS: u64 = 60_000;
/// The keep-alive grows by this much per hub heard of: a mesh of any size sends about
/// one keep-alive every 4 s.
pub const KEEPALIVE_PER_HUB_MS: u64 = 4_000;
/// Longest keep-alive: well within [`SILENT_AFTER_MS`], so two lost in a row do not
/// make a hub look silent.
pub const MAX_KEEPALIVE_MS: u64 = 5 * 60_000;
/// A hub not heard from for longer than this is flagged silent.
pub const SILENT_AFTER_MS: u64 = 15 * 60_000;
/// A hub not heard from (no summary, no event it made, no connection) for longer than
/// this is shown as "not seen for N days" and no longer counted in any "at X of Y
/// hubs" (issue 29: a laptop that joined once stayed on the list forever).
pub const GONE_AFTER_MS: u64 = 3 * 86_400_000;
/// Most retired hubs remembered (the oldest retirement is forgotten beyond).
pub const RETIRED_MAX: usize = ROSTER_MAX;
/// The `meta` key under which the retired hubs are kept on disk (JSON: full author
/// hex -> retirement time, local wall ms).
pub const RETIRED_META: &str = "retired-hubs";
/// An urgent need posted here and known nowhere else after this long is flagged.
pub const UNREACHED_AFTER_MS: u64 = 60_000;
/// A matched range holding more events than this is not remembered event by event
/// when it stops proving (an old coarse bucket): its events are confirmed again by
/// the hub's next summary.
const STICKY_RANGE_MAX: usize = 512;
/// Most events remembered as proven held ("sticky"); beyond, the memory is cleared and
/// rebuilt from the next summaries (claims can only shrink, never be wrong).
const STICKY_MAX: usize = 200_000;
/// Cached bucket fingerprints of ours (see `State::fps`); beyond, the cache restarts.
const FPS_KEPT: usize = 4_096;
/// Our own arrivals kept for the recent-id lookups (prefix -> id).
const ARRIVALS_KEPT: usize = 4_096;
/// Most id prefixes remembered that hubs listed before the event reached us.
const UNFOUND_MAX: usize = 16_384;
/// Most nodes on the roster, this node included (a town of 300 hubs fits): what
/// every board answer and every `known` count's `of` is bounded by.
pub const ROSTER_MAX: usize = 512;
/// Most other hubs whose summaries are kept (each summary is checked against what we
/// hold, and every `known` answer looks at each of them).
const HUBS_KEPT: usize = 1_024;
/// Stamps of our full summaries never reused (`State::full_stamps`): a receiver
/// holding an older full summary of ours than the last 64 (it missed at least 64
/// keep-alives) while our clock went back to exactly its millisecond is not guarded.
const FULL_STAMPS_KEPT: usize = 64;

/// How a hub's newest summary reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// From the hub itself.
    Direct,
    /// Passed on by another node.
    Relayed,
}

impl Via {
    /// `"direct"` or `"relayed"`.
    pub fn name(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Relayed => "relayed",
        }
    }
}

/// What became of a summary received by gossip.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// New knowledge: keep and pass on.
    Newer,
    /// Ours, or not newer than the one held: drop without passing on.
    Stale,
    /// Refused: never passed on.
    Refused(SummaryError),
}

/// One hub known to hold an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAt {
    /// The hub.
    pub node: AuthorId,
    /// When it was proven (the hub's summary time; for this node, the arrival here).
    pub at_ms: u64,
}

/// One node of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// Its identity.
    pub node: AuthorId,
    /// Whether it is this node.
    pub me: bool,
    /// When we last heard from it (its summary arrived, or an event it made), local
    /// wall-clock ms.
    pub last_heard_ms: Option<u64>,
    /// How its newest summary reached us.
    pub via: Option<Via>,
    /// At least this many events we held that it lacked, when its summary was made.
    pub behind: Option<u64>,
    /// Connected to this node now.
    pub reachable: bool,
    /// Not heard from for longer than [`GONE_AFTER_MS`]: shown as "not seen for N
    /// days", not counted.
    pub gone: bool,
}

/// The newest summary of one hub and what it proves.
struct Hub {
    /// The newest summary: full, or a delta made full through `base`, or a delta
    /// whose base we lack (then only its recent ids count).
    summary: Summary,
    /// The hub's newest full summary received (what its deltas are made against).
    base: Option<Summary>,
    heard_ms: u64,
    via: Via,
    /// Unknown when the newest summary is a delta whose base we lack.
    behind: Option<u64>,
    /// Matched ranges: start ms -> (end ms, how many events we held in it then).
    /// The count tells whether the range still holds what it held when it matched:
    /// an event stored after that (and not yet told to [`Delivery::observe`]) makes
    /// it differ, and the range then proves nothing about it.
    matched: BTreeMap<u64, (u64, u32)>,
}

#[derive(Default)]
struct State {
    /// Set when an insert may have been missed: no range proves anything until the
    /// set is reloaded.
    stale: bool,
    /// Our arrivals, oldest first: (local wall ms, id).
    arrivals: VecDeque<(u64, EventId)>,
    /// Arrivals ever, and how many of them our summaries listed: a summary lists only
    /// what arrived since the one before (each arrival is listed once).
    arrived: u64,
    listed: u64,
    /// Prefixes listed by a hub's summary before the event reached us: the event is
    /// proven held by those hubs when it arrives ([`Delivery::observe`]).
    unfound: HashMap<[u8; 8], Vec<(AuthorId, u64)>>,
    hubs: BTreeMap<AuthorId, Hub>,
    /// Events proven held by hubs whose matched range has since moved on.
    sticky: HashMap<EventId, Vec<(AuthorId, u64)>>,
    /// Authors of events we hold, with the newest event time of each (capped at
    /// arrival), so the roster includes nodes we only heard of.
    authors: HashMap<AuthorId, u64>,
    /// Peers connected now.
    connected: HashSet<PeerId>,
    /// Hubs a coordinator retired here, with when (local wall ms): off the roster
    /// until heard from after that ([`answers::standing`]).
    retired: HashMap<AuthorId, u64>,
    /// Our set changed since our last summary.
    dirty: bool,
    /// When our last summary was made (local wall ms).
    last_sent_ms: Option<u64>,
    /// Our last full summary (the base of our deltas) and when it was made (local
    /// wall ms).
    last_full: Option<(Summary, u64)>,
    /// The next summary must be full (a peer connected: it holds no base of ours).
    want_full: bool,
    /// `made_ms` of our recent full summaries, oldest first: a receiver finds a
    /// delta's base by its `made_ms`, so after the clock went back no summary of
    /// ours takes one of these again (see [`FULL_STAMPS_KEPT`]).
    full_stamps: VecDeque<u64>,
    /// Count and fingerprint of our events in `[start, end)` ms, by range: old
    /// buckets rarely change, so making our summary and checking another hub's costs
    /// only the recent ones. A range is dropped when an event arrives in it.
    fps: HashMap<(u64, u64), (u32, [u8; 8])>,
}

impl State {
    /// Count and fingerprint of our events in `[start_ms, end_ms)`.
    fn fp(&mut self, held: &SyncIndex, start_ms: u64, end_ms: u64) -> (u32, [u8; 8]) {
        if let Some(v) = self.fps.get(&(start_ms, end_ms)) {
            return *v;
        }
        let mut ids: Vec<EventId> = held
            .range_ms(start_ms, end_ms)
            .iter()
            .map(|(_, i)| *i)
            .collect();
        ids.sort_unstable();
        let v = (
            u32::try_from(ids.len()).unwrap_or(u32::MAX),
            fingerprint(&ids),
        );
        if self.fps.len() >= FPS_KEPT {
            self.fps.clear();
        }
        self.fps.insert((start_ms, end_ms), v);
        v
    }

    /// Our buckets at `made_ms` (the layout of [`aidmesh_protocol::delivery::bucket_of`]),
    /// from the cache where it can.
    fn buckets(&mut self, held: &SyncIndex, made_ms: u64) -> Vec<Bucket> {
        let mut out = Vec::new();
        let mut next = held.first_from_ms(0);
        while let Some(ms) = next {
            let (start, end) = bucket_of(ms, made_ms);
            next = held.first_from_ms(end);
            let (count, fp) = self.fp(held, start, end);
            out.push(Bucket {
                start_ms: start,
                end_ms: end,
                count,
                fp,
            });
        }
        out
    }

    /// `per_hub` for every hub heard of (this node included), within `[min, max]`.
    fn per_hub_ms(&self, per_hub: u64, min: u64, max: u64) -> u64 {
        (self.hubs.len() as u64 + 1)
            .saturating_mul(per_hub)
            .clamp(min, max)
    }

    /// Least time between two summaries of ours: grows with the hubs heard of.
    fn gap_ms(&self) -> u64 {
        self.per_hub_ms(GAP_PER_HUB_MS, MIN_GAP_MS, MAX_GAP_MS)
    }

    /// Most time between two summaries of ours: grows with the hubs heard of.
    fn keepalive_ms(&self) -> u64 {
        self.per_hub_ms(KEEPALIVE_PER_HUB_MS, KEEPALIVE_MS, MAX_KEEPALIVE_MS)
    }

    fn stick(&mut self, id: EventId, hub: AuthorId, at_ms: u64) {
        if self.sticky.len() >= STICKY_MAX {
            self.sticky.clear();
        }
        let v = self.sticky.entry(id).or_default();
        if !v.iter().any(|(h, _)| *h == hub) {
            v.push((hub, at_ms));
        }
    }
}

/// This node's delivery knowledge. Shared by the network task and the API.
pub struct Delivery {
    me: AuthorId,
    tag: [u8; 8],
    state: Mutex<State>,
    /// What this node holds: the store's time index ([`Delivery::open`]), or an index
    /// of delivery's own that [`Delivery::observe`] fills (a delivery made by
    /// [`Delivery::new`], without a store: the tests' and benches').
    held: Arc<Mutex<SyncIndex>>,
    /// Whether `held` is delivery's own.
    own: bool,
    /// Bumped whenever an answer of [`Delivery::known`] or the roster may change:
    /// part of the API's validators.
    generation: AtomicU64,
    changes: broadcast::Sender<u64>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Delivery({}, generation {})",
            self.me.short(),
            self.generation()
        )
    }
}

/// libp2p's peer id of a node: the node's libp2p key is its identity key.
pub fn peer_of(node: &AuthorId) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&node.0).ok()?;
    Some(PeerId::from_public_key(&key.into()))
}

impl Delivery {
    /// Knowledge for node `me` in the community with key `psk`, reading what `store`
    /// holds from its time index, not a copy (the authors of its events come later,
    /// from [`Delivery::add_authors`]).
    pub fn open(store: &Store, me: AuthorId, psk: &[u8; 32]) -> Result<Self, StoreError> {
        let d = Self::reading(me, psk, store.time_index(), false);
        d.lock().retired = retired_from_json(store.meta(RETIRED_META)?.as_deref());
        Ok(d)
    }

    /// Adds `authors` (each with its newest event time, capped at `now_ms`) to the
    /// roster: at start, the authors of every stored event, which the engine collected
    /// while it read them for its view ([`crate::engine::Engine::authors_at_start`]).
    pub fn add_authors(&self, authors: &HashMap<AuthorId, u64>, now_ms: u64) {
        let mut st = self.lock();
        for (a, t) in authors {
            let t = (*t).min(now_ms);
            let slot = st.authors.entry(*a).or_insert(t);
            *slot = (*slot).max(t);
        }
        drop(st);
        self.changed();
    }

    /// Empty knowledge (nothing held yet), with an index of its own that
    /// [`Delivery::observe`] and [`Delivery::reload`] fill.
    pub fn new(me: AuthorId, psk: &[u8; 32]) -> Self {
        Self::reading(me, psk, Arc::default(), true)
    }

    /// Knowledge reading what is held from `held`, delivery's own index if `own`.
    fn reading(me: AuthorId, psk: &[u8; 32], held: Arc<Mutex<SyncIndex>>, own: bool) -> Self {
        Delivery {
            me,
            tag: community_tag(psk),
            state: Mutex::new(State {
                dirty: true,
                ..State::default()
            }),
            held,
            own,
            generation: AtomicU64::new(0),
            changes: broadcast::channel(16).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What this node holds. Taken after [`Delivery::lock`] where both are needed.
    fn held(&self) -> MutexGuard<'_, SyncIndex> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        let g = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.changes.send(g);
    }

    /// This node.
    pub fn me(&self) -> AuthorId {
        self.me
    }

    /// Changes whenever what [`Delivery::known`] or [`Delivery::roster`] answer may.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Told (with the new generation) whenever counts or the roster may have changed.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Notes an event newly stored here, at local wall time `now_ms`.
    pub fn observe(&self, event: &Event, now_ms: u64) {
        let (ts, id) = (event.timestamp(), event.id());
        let mut st = self.lock();
        let mut held = self.held();
        // Every range matched by a hub over this time now also covers an event it was
        // not proven to hold: remember what the range did prove, then drop it. What
        // it proved is what we held in it when it matched: its count then tells
        // whether that is what we hold now, without this event (the store has it
        // already) or with it (it was stored before the match and counted there);
        // anything else stored meanwhile leaves the range proving nothing.
        let ms = ts.millis();
        let hubs: Vec<AuthorId> = st.hubs.keys().copied().collect();
        for h in hubs {
            let Some(hub) = st.hubs.get_mut(&h) else {
                continue;
            };
            let Some((&start, &(end, count))) = hub.matched.range(..=ms).next_back() else {
                continue;
            };
            if ms >= end {
                continue;
            }
            hub.matched.remove(&start);
            let made = hub.summary.made_ms;
            if held.count_ms(start, end) > STICKY_RANGE_MAX + 1 {
                continue;
            }
            let mut proven: Vec<EventId> =
                held.range_ms(start, end).iter().map(|(_, i)| *i).collect();
            let with_it = proven.contains(&id);
            match proven.len() - usize::from(with_it) {
                // What it held without this event: those.
                n if n == count as usize => proven.retain(|i| *i != id),
                // This event was stored before the match and counted in it.
                _ if with_it && proven.len() == count as usize => {}
                _ => continue,
            }
            for i in proven {
                st.stick(i, h, made);
            }
        }
        st.fps.retain(|(start, end), _| ms < *start || ms >= *end);
        if self.own {
            held.insert((ts, id));
        }
        drop(held);
        st.arrivals.push_back((now_ms, id));
        st.arrived += 1;
        while st.arrivals.len() > ARRIVALS_KEPT {
            st.arrivals.pop_front();
        }
        if let Some(hubs) = st.unfound.remove(&prefix(&id)) {
            for (h, made) in hubs {
                st.stick(id, h, made);
            }
        }
        let t = ms.min(now_ms);
        let slot = st.authors.entry(event.author()).or_insert(t);
        *slot = (*slot).max(t);
        st.dirty = true;
        drop(st);
        self.changed();
    }

    /// Some inserts may have been missed (the broadcast lagged): prove nothing by
    /// range until [`Delivery::reload`].
    pub fn mark_stale(&self) {
        let mut st = self.lock();
        st.stale = true;
        for hub in st.hubs.values_mut() {
            hub.matched.clear();
        }
        drop(st);
        self.changed();
    }

    /// A delivery with an index of its own ([`Delivery::new`]) holds `items` from now
    /// on, then [`Delivery::reload`]s; one that reads the store's ignores them.
    pub fn hold(&self, items: Vec<(Timestamp, EventId)>) {
        if self.own {
            let _st = self.lock();
            *self.held() = SyncIndex::new(items);
        }
        self.reload();
    }

    /// Proves by range again after [`Delivery::mark_stale`]: the counts kept, which
    /// may have missed an event, are dropped, to be made again from what the store
    /// holds.
    pub fn reload(&self) {
        let mut st = self.lock();
        st.fps.clear();
        st.stale = false;
        st.dirty = true;
    }

    /// A peer connected or disconnected.
    pub fn set_connected(&self, peer: PeerId, connected: bool) {
        let mut st = self.lock();
        let flipped = if connected {
            st.connected.insert(peer)
        } else {
            st.connected.remove(&peer)
        };
        if connected {
            // A new neighbour learns about us at once, in full: it holds no base
            // for our deltas.
            st.dirty = true;
            st.want_full = true;
        }
        drop(st);
        if flipped {
            self.changed();
        }
    }
}

/// The retired hubs as kept on disk (JSON: full author hex -> ms); anything unreadable
/// is skipped (a damaged list retires no one).
pub fn retired_from_json(bytes: Option<&[u8]>) -> HashMap<AuthorId, u64> {
    let Some(v) = bytes.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()) else {
        return HashMap::new();
    };
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, t)| Some((k.parse::<AuthorId>().ok()?, t.as_u64()?)))
        .take(RETIRED_MAX)
        .collect()
}

/// [`retired_from_json`]'s inverse.
pub fn retired_to_json(retired: &HashMap<AuthorId, u64>) -> Vec<u8> {
    let m: serde_json::Map<String, serde_json::Value> = retired
        .iter()
        .map(|(a, t)| (a.to_hex(), serde_json::json!(t)))
        .collect();
    serde_json::Value::Object(m).to_string().into_bytes()
}

/// The node whose libp2p peer id is `peer` (its identity key is inlined in the id).
pub fn author_of(peer: &PeerId) -> Option<AuthorId> {
    let hash = peer.as_ref();
    if hash.code() != 0 {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(hash.digest()).ok()?;
    Some(AuthorId(key.try_into_ed25519().ok()?.to_bytes()))
}
