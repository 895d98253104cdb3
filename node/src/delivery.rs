//! Honest delivery (issue 11), the node's side: what this node knows about which hubs
//! hold which events, and the hub roster.
//!
//! - It keeps the `(timestamp, id)` set of what this node holds (fed by the engine's
//!   new-event broadcast through the network task) and makes this node's signed
//!   summary ([`aidmesh_protocol::delivery::Summary`]) from it.
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
//! Nothing here waits on disk: [`Delivery::open`] reads the store once at start; the
//! rest is memory, called from the network task and the API.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use aidmesh_protocol::delivery::{
    bucket_of, community_tag, fingerprint, prefix, Bucket, Summary, SummaryError, MAX_RECENT,
};
use aidmesh_protocol::time::MAX_FUTURE_MS;
use aidmesh_protocol::{AuthorId, Event, EventId, Identity, Timestamp};
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
    /// Matched ranges: start ms -> end ms.
    matched: BTreeMap<u64, u64>,
}

#[derive(Default)]
struct State {
    /// What we hold, sorted by `(timestamp, id)`; `pending` is merged in lazily.
    items: Vec<(Timestamp, EventId)>,
    pending: Vec<(Timestamp, EventId)>,
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
    fn merge(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        let old = std::mem::take(&mut self.items);
        let mut out = Vec::with_capacity(old.len() + pending.len());
        let (mut a, mut b) = (old.into_iter().peekable(), pending.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(n) = next {
                if out.last() != Some(&n) {
                    out.push(n);
                }
            }
        }
        self.items = out;
    }

    /// Our events in `[start_ms, end_ms)` (after a merge).
    fn range(&self, start_ms: u64, end_ms: u64) -> &[(Timestamp, EventId)] {
        let lo = self.items.partition_point(|(t, _)| t.millis() < start_ms);
        let hi = lo + self.items[lo..].partition_point(|(t, _)| t.millis() < end_ms);
        &self.items[lo..hi]
    }

    /// Count and fingerprint of our events in `[start_ms, end_ms)` (after a merge).
    fn fp(&mut self, start_ms: u64, end_ms: u64) -> (u32, [u8; 8]) {
        if let Some(v) = self.fps.get(&(start_ms, end_ms)) {
            return *v;
        }
        let mut ids: Vec<EventId> = self
            .range(start_ms, end_ms)
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
    fn buckets(&mut self, made_ms: u64) -> Vec<Bucket> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            let (start, end) = bucket_of(self.items[i].0.millis(), made_ms);
            i += self.items[i..].partition_point(|(t, _)| t.millis() < end);
            let (count, fp) = self.fp(start, end);
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
    /// Knowledge for node `me` in the community with key `psk`, starting from what
    /// `store` holds (its `(timestamp, id)` set, read here; the authors of its events
    /// come later, from [`Delivery::load_authors`]).
    pub fn open(store: &Store, me: AuthorId, psk: &[u8; 32]) -> Result<Self, StoreError> {
        let items = store.sync_items()?;
        let d = Self::new(me, psk);
        d.reload(items);
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

    /// Empty knowledge (nothing held yet).
    pub fn new(me: AuthorId, psk: &[u8; 32]) -> Self {
        Delivery {
            me,
            tag: community_tag(psk),
            state: Mutex::new(State {
                dirty: true,
                ..State::default()
            }),
            generation: AtomicU64::new(0),
            changes: broadcast::channel(16).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        // Every range matched by a hub over this time now also covers an event it was
        // not proven to hold: remember what the range did prove, then drop it.
        let ms = ts.millis();
        let hubs: Vec<AuthorId> = st.hubs.keys().copied().collect();
        for h in hubs {
            let Some(hub) = st.hubs.get_mut(&h) else {
                continue;
            };
            let Some((&start, &end)) = hub.matched.range(..=ms).next_back() else {
                continue;
            };
            if ms >= end {
                continue;
            }
            hub.matched.remove(&start);
            let made = hub.summary.made_ms;
            let proven: Vec<EventId> = st.range(start, end).iter().map(|(_, i)| *i).collect();
            if proven.len() <= STICKY_RANGE_MAX {
                for i in proven {
                    st.stick(i, h, made);
                }
            }
        }
        st.fps.retain(|(start, end), _| ms < *start || ms >= *end);
        st.pending.push((ts, id));
        if st.pending.len() > 4096 {
            st.merge();
        }
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

    /// Replaces our set with the store's (after [`Delivery::mark_stale`]).
    pub fn reload(&self, items: Vec<(Timestamp, EventId)>) {
        let mut st = self.lock();
        st.items = items;
        st.items.sort_unstable();
        st.pending.clear();
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

    /// When our next summary is due (local wall ms): soon after a change, else the
    /// keep-alive.
    pub fn next_summary_ms(&self) -> u64 {
        let st = self.lock();
        match st.last_sent_ms {
            None => 0,
            Some(last) if st.dirty => last + st.gap_ms(),
            Some(last) => last + st.keepalive_ms(),
        }
    }

    /// Our signed summary if one is due at `now_ms` (local wall ms); `made_ms` is the
    /// mesh-corrected time it carries.
    pub fn summary_due(&self, identity: &Identity, now_ms: u64, made_ms: u64) -> Option<Vec<u8>> {
        let mut st = self.lock();
        let due = match st.last_sent_ms {
            None => true,
            Some(last) if st.dirty => now_ms >= last + st.gap_ms(),
            Some(last) => now_ms >= last + st.keepalive_ms(),
        };
        if !due || st.stale {
            return None;
        }
        // Two different full summaries with one `made_ms` would let a receiver
        // rebuild a delta on the wrong base (a false proof): after the clock went
        // back, step past the stamps of our recent full ones.
        let mut made_ms = made_ms;
        while st.full_stamps.contains(&made_ms) {
            made_ms += 1;
        }
        st.merge();
        // What arrived since our last summary and in the last `LIST_MS` (newest first).
        // What came before our last summary was listed then, and a receiver
        // remembers it; what came earlier since has reached the hubs around us, and
        // our buckets prove it (listing every arrival cost each host 30 x 8 bytes per
        // event and copy at 30 hubs, three times the event's own gossip).
        let new = usize::try_from(st.arrived - st.listed).unwrap_or(usize::MAX);
        let recent: Vec<EventId> = st
            .arrivals
            .iter()
            .rev()
            .take(new.min(MAX_RECENT))
            .take_while(|(at, _)| at.saturating_add(LIST_MS) >= now_ms)
            .map(|(_, id)| *id)
            .collect();
        st.listed = st.arrived;
        let buckets = st.buckets(made_ms);
        let s = Summary {
            community: self.tag,
            hub: self.me,
            made_ms,
            count: buckets.iter().map(|b| u64::from(b.count)).sum(),
            base_ms: 0,
            buckets,
            recent: recent.iter().take(MAX_RECENT).map(prefix).collect(),
        };
        // A delta against our last full summary, unless a full one is due: a peer
        // connected, a keep-alive since the last full one passed (someone who
        // missed it gets a base at least that often), the clock went back, or the
        // delta would not save a third of the bytes.
        let keepalive = st.keepalive_ms();
        let delta = match &st.last_full {
            Some((base, at))
                if !st.want_full && now_ms < at + keepalive && base.made_ms < made_ms =>
            {
                Some(s.delta(base)).filter(|d| 3 * d.wire_len() <= 2 * s.wire_len())
            }
            _ => None,
        };
        let out = match delta {
            Some(d) => d,
            None => {
                st.want_full = false;
                st.last_full = Some((s.clone(), now_ms));
                if st.full_stamps.len() >= FULL_STAMPS_KEPT {
                    st.full_stamps.pop_front();
                }
                st.full_stamps.push_back(made_ms);
                s
            }
        };
        st.dirty = false;
        st.last_sent_ms = Some(now_ms);
        Some(out.sign(identity))
    }

    /// A summary from gossip, passed on by `source`, at local wall time `now_ms` and
    /// mesh-corrected time `made_now_ms` (the clock summaries are stamped with).
    pub fn receive(
        &self,
        bytes: &[u8],
        source: Option<PeerId>,
        now_ms: u64,
        made_now_ms: u64,
    ) -> Received {
        let s = match Summary::open(bytes, &self.tag) {
            Ok(s) => s,
            Err(e) => return Received::Refused(e),
        };
        if s.hub == self.me {
            return Received::Stale;
        }
        let mut st = self.lock();
        // Newest wins; but a held summary stamped beyond the clock rules' future limit
        // (the hub's clock was ahead, then corrected) does not lock its later ones out.
        if st.hubs.get(&s.hub).is_some_and(|h| {
            h.summary.made_ms >= s.made_ms
                && h.summary.made_ms <= made_now_ms.saturating_add(MAX_FUTURE_MS)
        }) {
            return Received::Stale;
        }
        // A delta is read through the hub's last full summary; one whose base we
        // lack (we missed it) proves nothing by range.
        let held_base = st.hubs.get(&s.hub).and_then(|h| h.base.as_ref());
        let (full, base) = if !s.is_delta() {
            (Some(s.clone()), Some(s.clone()))
        } else {
            match held_base {
                Some(b) if b.made_ms == s.base_ms => match s.apply(b) {
                    Ok(f) => (Some(f), Some(b.clone())),
                    // Signed by the hub, against the base we hold, and wrong.
                    Err(e) => return Received::Refused(e),
                },
                other => (None, other.cloned()),
            }
        };
        st.merge();
        let direct = source.is_some() && source == peer_of(&s.hub);
        let mut matched = BTreeMap::new();
        let mut behind = None;
        if let Some(full) = &full {
            let (mut covered, mut short) = (0u64, 0u64);
            let stale = st.stale;
            for b in &full.buckets {
                let (n, fp) = st.fp(b.start_ms, b.end_ms);
                let n = u64::from(n);
                covered += n;
                if n == u64::from(b.count) && fp == b.fp {
                    if !stale {
                        matched.insert(b.start_ms, b.end_ms);
                    }
                } else {
                    short += n.saturating_sub(u64::from(b.count));
                }
            }
            behind = Some(short + (st.items.len() as u64).saturating_sub(covered));
        }
        // Recently received ids: find ours among them (most are our recent arrivals).
        let listed: HashSet<[u8; 8]> = s.recent.iter().copied().collect();
        let found: Vec<EventId> = st
            .arrivals
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| listed.contains(&prefix(id)))
            .collect();
        let found_prefixes: HashSet<[u8; 8]> = found.iter().map(prefix).collect();
        for id in found {
            st.stick(id, s.hub, s.made_ms);
        }
        // Listed but not here yet (the hub got it first): proven when it arrives.
        // A prefix listed is listed once, so it is remembered, not looked up again.
        for p in listed.difference(&found_prefixes) {
            if st.unfound.len() >= UNFOUND_MAX {
                st.unfound.clear();
            }
            let v = st.unfound.entry(*p).or_default();
            if !v.iter().any(|(h, _)| *h == s.hub) {
                v.push((s.hub, s.made_ms));
            }
        }
        // Bounded: a new hub beyond the bound takes the place of the one heard from
        // longest ago (a real hub's keep-alives keep it heard from).
        if st.hubs.len() >= HUBS_KEPT && !st.hubs.contains_key(&s.hub) {
            if let Some(oldest) = st
                .hubs
                .iter()
                .min_by_key(|(_, h)| h.heard_ms)
                .map(|(a, _)| *a)
            {
                st.hubs.remove(&oldest);
            }
        }
        st.hubs.insert(
            s.hub,
            Hub {
                heard_ms: now_ms,
                via: if direct { Via::Direct } else { Via::Relayed },
                behind,
                matched,
                summary: full.unwrap_or(s),
                base,
            },
        );
        drop(st);
        self.changed();
        Received::Newer
    }

    /// The other hubs known to hold event `(ts, id)` (which this node holds), each
    /// with the time it was proven, ordered by node.
    ///
    /// An event this node's set does not hold yet (the API drew its card before the
    /// engine's broadcast reached [`Delivery::observe`]) is proven by no range: a
    /// range that matched before it arrived says nothing about it.
    pub fn known(&self, ts: Timestamp, id: &EventId) -> Vec<KnownAt> {
        let st = self.lock();
        // No merge here: a page's stream asks for every new card, and merging the
        // pending arrivals into 100,000 items then cost each event milliseconds.
        let held = st.items.binary_search(&(ts, *id)).is_ok() || st.pending.contains(&(ts, *id));
        let ms = ts.millis();
        let mut out = Vec::new();
        for (node, hub) in &st.hubs {
            let in_range = held
                && hub
                    .matched
                    .range(..=ms)
                    .next_back()
                    .is_some_and(|(_, end)| ms < *end);
            let at = if in_range || hub.summary.lists(id) {
                Some(hub.summary.made_ms)
            } else {
                st.sticky
                    .get(id)
                    .and_then(|v| v.iter().find(|(h, _)| h == node).map(|(_, at)| *at))
            };
            if let Some(at_ms) = at {
                out.push(KnownAt { node: *node, at_ms });
            }
        }
        out
    }

    /// The hubs of the mesh: this node, the hubs whose summaries we hold, the peers
    /// connected now and `announced` (authors of hub announcements), each with when
    /// it was last heard from (its summary, or the newest event it made). An author of
    /// events that did none of these is not a hub: a bundle of events under a
    /// thousand throwaway keys adds no one (issue 24). At most [`ROSTER_MAX`]: this
    /// node first, then the others by key; beyond the bound, those connected and
    /// heard from most recently are kept.
    pub fn roster(&self, announced: &[AuthorId], now_ms: u64) -> Vec<RosterEntry> {
        let st = self.lock();
        let mut nodes: BTreeMap<AuthorId, RosterEntry> = BTreeMap::new();
        let entry = |node: AuthorId| RosterEntry {
            node,
            me: false,
            last_heard_ms: st.authors.get(&node).copied(),
            via: None,
            behind: None,
            reachable: peer_of(&node).is_some_and(|p| st.connected.contains(&p)),
        };
        for a in announced {
            nodes.entry(*a).or_insert_with(|| entry(*a));
        }
        for a in st.connected.iter().filter_map(author_of) {
            nodes.entry(a).or_insert_with(|| entry(a));
        }
        for (a, h) in &st.hubs {
            let e = nodes.entry(*a).or_insert_with(|| entry(*a));
            e.last_heard_ms = Some(e.last_heard_ms.unwrap_or(0).max(h.heard_ms));
            e.via = Some(h.via);
            e.behind = h.behind;
        }
        nodes.remove(&self.me);
        let mut others: Vec<RosterEntry> = nodes.into_values().collect();
        if others.len() >= ROSTER_MAX {
            others.sort_by_key(|e| {
                (
                    std::cmp::Reverse(e.reachable),
                    std::cmp::Reverse(e.last_heard_ms),
                    e.node,
                )
            });
            others.truncate(ROSTER_MAX - 1);
            others.sort_by_key(|e| e.node);
        }
        let me = RosterEntry {
            node: self.me,
            me: true,
            last_heard_ms: Some(now_ms),
            via: None,
            behind: Some(0),
            reachable: true,
        };
        std::iter::once(me).chain(others).collect()
    }
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

/// Whether a roster entry is silent at `now_ms`: not heard from for longer than
/// [`SILENT_AFTER_MS`] (or never).
pub fn silent(e: &RosterEntry, now_ms: u64) -> bool {
    !e.me
        && e.last_heard_ms
            .is_none_or(|t| now_ms.saturating_sub(t) > SILENT_AFTER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidmesh_protocol::{Body, Category, Post, Urgency};

    const PSK: [u8; 32] = [5; 32];
    const NOW: u64 = 1_795_000_000_000;

    fn event(who: &Identity, n: u32, at_ms: u64) -> Event {
        Event::create(
            who,
            Timestamp::from_millis(at_ms),
            &Body::Need(Post::new(
                format!("need {n}"),
                Category::Water,
                Urgency::Normal,
            )),
        )
    }

    struct Node {
        id: Identity,
        d: Delivery,
    }

    fn node(seed: u8) -> Node {
        let id = Identity::from_seed([seed; 32]);
        let d = Delivery::new(id.author(), &PSK);
        Node { id, d }
    }

    fn summary(n: &Node, now: u64) -> Vec<u8> {
        // Force one out whatever the rate limit.
        n.d.lock().last_sent_ms = None;
        n.d.summary_due(&n.id, now, now).unwrap()
    }

    #[test]
    fn a_hub_is_known_to_hold_what_its_summary_proves_and_nothing_else() {
        let (a, c) = (node(1), node(3));
        let x = event(&a.id, 1, NOW - 5_000);
        a.d.observe(&x, NOW);
        // C lacks x: nothing is claimed.
        assert_eq!(
            a.d.receive(&summary(&c, NOW), None, NOW, NOW),
            Received::Newer
        );
        assert!(a.d.known(x.timestamp(), &x.id()).is_empty());
        // C gets x: its next summary proves it (listed, and the bucket matches).
        c.d.observe(&x, NOW + 100);
        assert_eq!(
            a.d.receive(&summary(&c, NOW + 200), None, NOW + 300, NOW + 300),
            Received::Newer
        );
        let k = a.d.known(x.timestamp(), &x.id());
        assert_eq!(
            k,
            vec![KnownAt {
                node: c.id.author(),
                at_ms: NOW + 200
            }]
        );
        // A replay of the older summary changes nothing.
        let old = {
            c.d.lock().last_sent_ms = None;
            c.d.summary_due(&c.id, NOW + 150, NOW + 150).unwrap()
        };
        assert_eq!(
            a.d.receive(&old, None, NOW + 400, NOW + 400),
            Received::Stale
        );
        // A new event y in the same minute: C is not claimed for y, still for x.
        let y = event(&a.id, 2, NOW - 4_000);
        a.d.observe(&y, NOW + 500);
        assert!(a.d.known(y.timestamp(), &y.id()).is_empty());
        assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1, "x stays proven");
    }

    #[test]
    fn an_event_not_yet_observed_here_is_proven_by_no_range() {
        let (a, c) = (node(1), node(3));
        let x = event(&a.id, 1, NOW - 5_000);
        a.d.observe(&x, NOW);
        c.d.observe(&x, NOW);
        a.d.receive(&summary(&c, NOW + 100), None, NOW + 100, NOW + 100);
        assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1);
        // y is stored by the engine, and a page asks for its count before the
        // broadcast reached `observe`: C's matched range covers y's time, but C was
        // never shown to hold y.
        let y = event(&a.id, 2, NOW - 4_000);
        assert!(
            a.d.known(y.timestamp(), &y.id()).is_empty(),
            "C's bucket matched before y existed here"
        );
        a.d.observe(&y, NOW + 200);
        assert!(a.d.known(y.timestamp(), &y.id()).is_empty());
        assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1, "x stays proven");
    }

    #[test]
    fn forged_and_foreign_summaries_are_refused() {
        let (a, c) = (node(1), node(3));
        let forger = Identity::from_seed([9; 32]);
        // Signed by another key in C's name.
        let s = Summary::make(community_tag(&PSK), c.id.author(), NOW, &[], []);
        assert_eq!(
            a.d.receive(&s.sign(&forger), None, NOW, NOW),
            Received::Refused(SummaryError::BadSignature)
        );
        // Made with another community key.
        let other = Delivery::new(c.id.author(), &[6; 32]);
        let foreign = other.summary_due(&c.id, NOW, NOW).unwrap();
        assert_eq!(
            a.d.receive(&foreign, None, NOW, NOW),
            Received::Refused(SummaryError::OtherCommunity)
        );
        assert_eq!(
            a.d.roster(&[], NOW).len(),
            1,
            "nothing refused enters the roster"
        );
    }

    #[test]
    fn the_roster_lists_every_node_heard_of_and_how() {
        let (a, b, c) = (node(1), node(2), node(3));
        let x = event(&b.id, 1, NOW - 1_000);
        a.d.observe(&x, NOW);
        a.d.set_connected(peer_of(&b.id.author()).unwrap(), true);
        a.d.receive(&summary(&c, NOW), peer_of(&b.id.author()), NOW, NOW);
        let r = a.d.roster(&[], NOW);
        assert_eq!(r.len(), 3);
        assert!(r[0].me);
        let bb = r.iter().find(|e| e.node == b.id.author()).unwrap();
        assert!(bb.reachable && bb.via.is_none());
        let cc = r.iter().find(|e| e.node == c.id.author()).unwrap();
        assert_eq!(
            (cc.via, cc.reachable, cc.behind),
            (Some(Via::Relayed), false, Some(1))
        );
        assert!(!silent(cc, NOW + SILENT_AFTER_MS));
        assert!(silent(cc, NOW + SILENT_AFTER_MS + 1));
    }

    #[test]
    fn authors_of_events_alone_are_not_hubs_and_the_roster_is_bounded() {
        let a = node(1);
        // 2,000 events under throwaway keys (issue 24): no hub among them.
        let mut authors = HashMap::new();
        for n in 0..2_000u32 {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            let junk = Identity::from_seed(seed);
            let e = event(&junk, n, NOW - 1_000);
            a.d.observe(&e, NOW);
            authors.insert(junk.author(), NOW);
        }
        a.d.add_authors(&authors, NOW);
        assert_eq!(a.d.roster(&[], NOW).len(), 1);
        // Hubs that announced themselves are listed, at most ROSTER_MAX in all.
        let announced: Vec<AuthorId> = authors.keys().copied().collect();
        let r = a.d.roster(&announced, NOW);
        assert_eq!(r.len(), ROSTER_MAX);
        assert!(r[0].me);
        // Beyond the bound, a connected hub is kept.
        let b = node(2);
        a.d.set_connected(peer_of(&b.id.author()).unwrap(), true);
        let r = a.d.roster(&announced, NOW);
        assert_eq!(r.len(), ROSTER_MAX);
        assert!(r.iter().any(|e| e.node == b.id.author() && e.reachable));
        assert_eq!(
            author_of(&peer_of(&b.id.author()).unwrap()),
            Some(b.id.author())
        );
    }

    #[test]
    fn the_cached_summary_is_the_protocol_s_summary() {
        let a = node(1);
        let mut all = Vec::new();
        for n in 0..300u32 {
            let e = event(&a.id, n, NOW - u64::from(n) * 977_000);
            all.push((e.timestamp(), e.id()));
            a.d.observe(&e, NOW);
            if n % 50 == 0 {
                // Fill the cache, then keep changing the set under it.
                let _ = summary(&a, NOW);
            }
        }
        all.sort();
        a.d.lock().want_full = true;
        let got = Summary::open(&summary(&a, NOW), &community_tag(&PSK)).unwrap();
        assert!(!got.is_delta());
        let want = Summary::make(community_tag(&PSK), a.id.author(), NOW, &all, []);
        assert_eq!(got.buckets, want.buckets);
        assert_eq!(got.count, 300);
    }

    #[test]
    fn a_summary_lists_each_arrival_once_and_a_listing_seen_early_proves_it_later() {
        let (a, c) = (node(1), node(3));
        let x = event(&c.id, 1, NOW - 5_000);
        let y = event(&c.id, 2, NOW - 4_000);
        c.d.observe(&x, NOW);
        let first = Summary::open(&summary(&c, NOW), &community_tag(&PSK)).unwrap();
        assert_eq!(first.recent, vec![prefix(&x.id())]);
        c.d.observe(&y, NOW + 10);
        let second = summary(&c, NOW + 20);
        assert_eq!(
            Summary::open(&second, &community_tag(&PSK)).unwrap().recent,
            vec![prefix(&y.id())],
            "x was listed in the summary before"
        );
        // A gets C's second summary before y reaches it (C got it first), and holds
        // other events in y's minute, so no bucket can prove y.
        let z = event(&a.id, 3, NOW - 3_000);
        a.d.observe(&z, NOW + 30);
        a.d.receive(&second, None, NOW + 40, NOW + 40);
        // C's next summary lists nothing new: y's listing is behind us.
        a.d.receive(&summary(&c, NOW + 45), None, NOW + 45, NOW + 45);
        a.d.observe(&y, NOW + 50);
        assert_eq!(
            a.d.known(y.timestamp(), &y.id()),
            vec![KnownAt {
                node: c.id.author(),
                at_ms: NOW + 20
            }]
        );
        assert!(
            a.d.known(z.timestamp(), &z.id()).is_empty(),
            "C never had z"
        );
    }

    #[test]
    fn an_arrival_older_than_the_listing_window_is_proven_by_its_bucket() {
        let (a, c) = (node(1), node(3));
        let w = event(&a.id, 1, NOW - 50_000);
        a.d.observe(&w, NOW);
        c.d.observe(&w, NOW);
        let s = summary(&c, NOW + LIST_MS + 1);
        assert!(
            Summary::open(&s, &community_tag(&PSK))
                .unwrap()
                .recent
                .is_empty(),
            "w arrived {LIST_MS} ms before the summary"
        );
        a.d.receive(&s, None, NOW + LIST_MS + 2, NOW + LIST_MS + 1);
        assert_eq!(a.d.known(w.timestamp(), &w.id()).len(), 1, "by its bucket");
    }

    #[test]
    fn the_summary_gap_and_keepalive_grow_with_the_hubs_heard_of() {
        let a = node(1);
        assert_eq!(a.d.lock().gap_ms(), MIN_GAP_MS);
        for seed in 2..40u8 {
            let h = node(seed);
            a.d.receive(&summary(&h, NOW), None, NOW, NOW);
            let n = u64::from(seed);
            assert_eq!(
                a.d.lock().gap_ms(),
                (n * GAP_PER_HUB_MS).clamp(MIN_GAP_MS, MAX_GAP_MS),
                "{n} hubs"
            );
        }
        assert_eq!(a.d.lock().gap_ms(), MAX_GAP_MS);
        assert_eq!(a.d.lock().keepalive_ms(), 39 * KEEPALIVE_PER_HUB_MS);
        const { assert!(MAX_GAP_MS < UNREACHED_AFTER_MS) };
        const { assert!(3 * MAX_KEEPALIVE_MS <= SILENT_AFTER_MS) };
    }

    /// C's history: 30 events over the last 30 days, held by A as well (read from
    /// the store at start: no summary lists them as recent arrivals).
    fn shared_history(a: &Node, c: &Node) -> Vec<Event> {
        let h: Vec<Event> = (0..30u32)
            .map(|n| {
                event(
                    &c.id,
                    100 + n,
                    NOW - 3 * 3_600_000 - u64::from(n) * 86_400_000,
                )
            })
            .collect();
        let items: Vec<_> = h.iter().map(|e| (e.timestamp(), e.id())).collect();
        a.d.reload(items.clone());
        c.d.reload(items);
        h
    }

    fn open(bytes: &[u8]) -> Summary {
        Summary::open(bytes, &community_tag(&PSK)).unwrap()
    }

    #[test]
    fn a_delta_is_read_through_the_hub_s_last_full_summary() {
        let (a, c) = (node(1), node(3));
        let h = shared_history(&a, &c);
        let first = summary(&c, NOW);
        assert!(!open(&first).is_delta(), "the first summary is full");
        a.d.receive(&first, None, NOW, NOW);
        // A new event at both: C's next summary lists only its minute.
        let x = event(&c.id, 1, NOW + 5_000);
        a.d.observe(&x, NOW + 6_000);
        c.d.observe(&x, NOW + 6_000);
        let second = summary(&c, NOW + 10_000);
        let d = open(&second);
        assert_eq!((d.is_delta(), d.base_ms, d.buckets.len()), (true, NOW, 1));
        assert!(
            3 * second.len() <= first.len(),
            "{} vs {} bytes",
            second.len(),
            first.len()
        );
        assert_eq!(
            a.d.receive(&second, None, NOW + 10_000, NOW + 10_000),
            Received::Newer
        );
        // The old events are proven by the base's buckets, as of the delta.
        for e in h.iter().chain([&x]) {
            assert_eq!(
                a.d.known(e.timestamp(), &e.id()),
                vec![KnownAt {
                    node: c.id.author(),
                    at_ms: NOW + 10_000
                }]
            );
        }
        let r = a.d.roster(&[], NOW + 10_000);
        assert_eq!(r[1].behind, Some(0));
        // A delta against the base A holds that does not add up is refused.
        let mut bad = d.clone();
        bad.made_ms += 1;
        bad.count += 1;
        assert!(matches!(
            a.d.receive(&bad.sign(&c.id), None, NOW + 11_000, NOW + 11_000),
            Received::Refused(SummaryError::Inconsistent(_))
        ));
    }

    #[test]
    fn a_delta_whose_base_was_missed_proves_nothing_by_range_but_its_recent_ids_count() {
        let (a, c) = (node(1), node(3));
        let h = shared_history(&a, &c);
        a.d.receive(&summary(&c, NOW), None, NOW, NOW);
        assert_eq!(a.d.known(h[0].timestamp(), &h[0].id()).len(), 1);
        // C sends a full summary A misses (C met a new peer), then a delta on it.
        c.d.set_connected(peer_of(&node(7).id.author()).unwrap(), true);
        let missed = summary(&c, NOW + 10_000);
        assert!(!open(&missed).is_delta());
        let x = event(&c.id, 1, NOW + 15_000);
        a.d.observe(&x, NOW + 16_000);
        c.d.observe(&x, NOW + 16_000);
        let d = summary(&c, NOW + 20_000);
        assert_eq!(open(&d).base_ms, NOW + 10_000);
        let via = peer_of(&c.id.author());
        assert_eq!(
            a.d.receive(&d, via, NOW + 20_000, NOW + 20_000),
            Received::Newer
        );
        // No range is proven (not even the one the older full summary matched)...
        assert!(a.d.known(h[0].timestamp(), &h[0].id()).is_empty());
        // ...but the listed arrival is, and C counts as heard, directly.
        assert_eq!(
            a.d.known(x.timestamp(), &x.id()),
            vec![KnownAt {
                node: c.id.author(),
                at_ms: NOW + 20_000
            }]
        );
        let r = a.d.roster(&[], NOW + 20_000);
        assert_eq!(
            (r[1].last_heard_ms, r[1].via, r[1].behind),
            (Some(NOW + 20_000), Some(Via::Direct), None)
        );
        // C's next full summary proves the history again.
        c.d.set_connected(peer_of(&node(8).id.author()).unwrap(), true);
        a.d.receive(&summary(&c, NOW + 30_000), None, NOW + 30_000, NOW + 30_000);
        assert_eq!(a.d.known(h[0].timestamp(), &h[0].id()).len(), 1);
    }

    #[test]
    fn a_full_summary_goes_out_to_a_new_peer_at_the_keepalive_and_when_a_delta_saves_little() {
        let c = node(3);
        let a = node(1);
        shared_history(&a, &c);
        let is_delta = |now: u64| open(&summary(&c, now)).is_delta();
        assert!(!is_delta(NOW), "first");
        c.d.observe(&event(&c.id, 1, NOW), NOW + 1);
        assert!(is_delta(NOW + MIN_GAP_MS));
        // A peer connects: the next summary is due after the gap, and full.
        c.d.set_connected(peer_of(&a.id.author()).unwrap(), true);
        assert_eq!(c.d.next_summary_ms(), NOW + 2 * MIN_GAP_MS);
        let next =
            c.d.summary_due(&c.id, NOW + 2 * MIN_GAP_MS, NOW + 2 * MIN_GAP_MS)
                .unwrap();
        assert!(!open(&next).is_delta(), "a new peer gets a full summary");
        c.d.observe(&event(&c.id, 2, NOW + 11_000), NOW + 11_000);
        assert!(is_delta(NOW + 15_000));
        // Changes keep coming: a keep-alive after the last full one, the next is full.
        c.d.observe(&event(&c.id, 3, NOW + 16_000), NOW + 16_000);
        assert!(!is_delta(NOW + 2 * MIN_GAP_MS + KEEPALIVE_MS));
        // An empty history: a delta would save nothing.
        let e = node(4);
        assert!(!open(&summary(&e, NOW)).is_delta());
        e.d.observe(&event(&e.id, 1, NOW), NOW);
        assert!(!open(&summary(&e, NOW + MIN_GAP_MS)).is_delta());
    }

    #[test]
    fn after_the_clock_went_back_no_full_summary_takes_an_earlier_one_s_stamp() {
        let (a, c) = (node(1), node(3));
        let h = shared_history(&a, &c);
        // A holds C's full summary of NOW, then misses the ones after it.
        a.d.receive(&summary(&c, NOW), None, NOW, NOW);
        c.d.set_connected(peer_of(&node(7).id.author()).unwrap(), true);
        let _missed = summary(&c, NOW + 60_000);
        // C's clock goes back to NOW; an event arrives and a peer connects: C sends
        // a full summary, stamped past NOW.
        let x = event(&c.id, 1, NOW - 2_000);
        c.d.observe(&x, NOW + 61_000);
        c.d.set_connected(peer_of(&node(8).id.author()).unwrap(), true);
        let full = open(&summary(&c, NOW));
        assert!(!full.is_delta());
        assert_eq!(full.made_ms, NOW + 1);
        // Its next delta is against NOW + 1, which A does not hold: A proves nothing
        // by range rather than rebuild it on the full summary of NOW.
        let y = event(&c.id, 2, NOW - 1_000);
        c.d.observe(&y, NOW + 62_000);
        let d = summary(&c, NOW + 5_000);
        assert_eq!(open(&d).base_ms, NOW + 1);
        a.d.receive(&d, None, NOW + 62_000, NOW + 5_000);
        assert!(a.d.known(h[0].timestamp(), &h[0].id()).is_empty());
        assert_eq!(a.d.roster(&[], NOW + 62_000)[1].behind, None);
    }

    #[test]
    fn summaries_are_rate_limited_with_a_keepalive() {
        let a = node(1);
        assert!(a.d.summary_due(&a.id, NOW, NOW).is_some());
        assert!(a.d.summary_due(&a.id, NOW + 10, NOW).is_none());
        a.d.observe(&event(&a.id, 1, NOW), NOW + 20);
        assert!(a.d.summary_due(&a.id, NOW + MIN_GAP_MS - 1, NOW).is_none());
        assert!(a.d.summary_due(&a.id, NOW + MIN_GAP_MS, NOW).is_some());
        assert_eq!(a.d.next_summary_ms(), NOW + MIN_GAP_MS + KEEPALIVE_MS);
        assert!(a
            .d
            .summary_due(&a.id, NOW + MIN_GAP_MS + KEEPALIVE_MS, NOW)
            .is_some());
    }
}
