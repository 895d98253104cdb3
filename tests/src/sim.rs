//! A seeded discrete-event simulation of how events spread through a town of hubs
//! (issue 10, "A simulation beyond one machine").
//!
//! Real processes top out at a few dozen on one machine; this runs hundreds of hubs in
//! one process, on simulated time.
//!
//! What *runs for real* here, from `aidmesh-protocol`: the event bytes (signed
//! [`Event`]s), and the whole sync session. Every hub's session with a peer is the
//! node's own sans-IO state machine, [`Session`] (`protocol/src/session.rs`): its
//! negentropy rounds, its batches of at most 256 ids with up to four fetches in
//! flight, its relay sessions' list of what the peer lacks, and its end. The sim is its
//! driver, as `node/src/net/sync.rs` is the node's: it answers the session's questions
//! (which ids the hub holds, which another of its sessions is fetching: the node's
//! `Claims`; storing what came) and carries its requests over the simulated links. The
//! responder answers from its current [`SyncSet`] and store, as `node::net::sync::serve`
//! does. Message sizes are the real encodings' (see [`fetch_bytes`]).
//!
//! What the sim *models*, because the real thing is libp2p's and needs sockets and
//! tokio (written from `node/src/net/task.rs` and libp2p-gossipsub 0.50's
//! `behaviour.rs`):
//! - gossipsub: publish to the mesh (or, per [`GossipParams::flood_publish`], to every
//!   connected peer), forwarding to mesh peers after
//!   validation (minus the source and peers that sent a duplicate meanwhile), mesh
//!   upkeep at every heartbeat (700 ms, first after 5 s), IHAVE of the last `history_gossip` heartbeat
//!   windows to `max(gossip_lazy, gossip_factor × non-mesh)` non-mesh peers, IWANT for unseen
//!   ids, a duplicate cache, "ignore" (no forwarding) for events the node already held;
//!   GRAFT/PRUNE act at once on both ends (only their bytes travel);
//! - when sessions run, as the node's network task decides: one at every new
//!   connection, the next `sync_every` after the last one with that peer ended (a timer
//!   per peer), and relay sessions with every other peer after a session fetched
//!   something, whose peer's lacking events (up to [`MAX_RELAY`]) are published;
//! - links: TCP, so nothing is lost, but each lost segment costs a 200 ms retransmission
//!   timeout (doubling when lost again); bandwidth is serialised per direction, and a
//!   connection delivers in order (head-of-line blocking);
//! - discovery and dialling: LAN peers connect 0.2–1.2 s after a hub comes up (mDNS);
//!   a cut long link is redialled on the node's back-off (1 s, then 2, 4, … 60 s).
//!
//! Not modelled: CPU and disk time (except 1 ms to validate a gossip message; events a
//! session fetched are stored at once), a shared radio medium (each pair of hubs has
//! its own link), TCP and IP headers and retransmitted bytes (application bytes plus
//! yamux, noise and multistream framing are counted), fast retransmit and tail-loss
//! probes (delays under loss are on the pessimistic side), peer scoring, the duplicate
//! cache's expiry.
//!
//! Everything random comes from [`Rng`]s seeded by [`Config::seed`] (the town, churn,
//! posting and the network each have their own stream, so variants of the protocol's
//! parameters run on the same town with the same ups and downs), and every collection
//! iterated is ordered: one seed gives one report, byte for byte. One order the sim
//! does not choose: negentropy hands the session the ids it lacks in a hash set's
//! order, so when a session lacks more than one batch (256 ids), which ids share a
//! batch differs from run to run (in the node too). Every simulated event is
//! therefore the same size, so the batches weigh the same and take the same time
//! whatever they hold (`the_same_seed_gives_the_same_report_and_another_seed_another`
//! checks a returning hub that lacks 312).
//!
//! The experiments ([`propagation`], [`partition`], [`returning_hub`]) are what
//! `bench_sim` prints and `docs/reliability.md` reports; [`Config::fetch_once`] off
//! is the node's old way of fetching (no claims: each session fetches whatever the hub
//! does not hold when it checks), kept for comparison.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;

use aidmesh_protocol::session::{Failure, Session, Step, Stored};
use aidmesh_protocol::sync::{SyncRequest, SyncResponse, SyncSet, MAX_EVENTS_RESPONSE_BYTES};
use aidmesh_protocol::{Body, Category, Event, EventId, Identity, Place, Post, Timestamp, Urgency};

use crate::bench_util::percentile;

/// Most events a relay session publishes.
pub use aidmesh_protocol::session::MAX_RELAY;

/// Microseconds of simulated time.
pub type Micros = u64;

const MS: Micros = 1_000;
const SEC: Micros = 1_000_000;
/// Wall clock of the simulation's start (2026-11-30), for event timestamps.
const EPOCH_MS: u64 = 1_796_000_000_000;

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// `k` distinct items of `v` in random order (all of them if `k >= v.len()`).
    fn sample<T: Copy>(&mut self, v: &[T], k: usize) -> Vec<T> {
        let mut v = v.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

/// One kind of link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    /// One-way latency range, ms.
    pub latency_ms: (u64, u64),
    /// Probability that a TCP segment is lost.
    pub loss: f64,
    /// Bits per second, each direction.
    pub bandwidth_bps: u64,
}

/// Gossipsub parameters (defaults: as `node/src/net/transport.rs` configures
/// libp2p-gossipsub 0.50 for LANs: mesh degree 4, IHAVE of the last heartbeat window
/// to 2 non-mesh peers, publish to the mesh only, 700 ms heartbeat).
#[derive(Debug, Clone, PartialEq)]
pub struct GossipParams {
    /// Target mesh degree (D).
    pub mesh_n: usize,
    /// Below this, a heartbeat grafts up to D.
    pub mesh_n_low: usize,
    /// At or above this, a heartbeat prunes down to D.
    pub mesh_n_high: usize,
    /// Least number of non-mesh peers sent IHAVE per heartbeat.
    pub gossip_lazy: usize,
    /// Share of non-mesh peers sent IHAVE per heartbeat.
    pub gossip_factor: f64,
    /// Heartbeat windows whose message ids go into IHAVE.
    pub history_gossip: usize,
    /// Heartbeat windows kept to answer IWANT.
    pub history_length: usize,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Publish to every connected peer (true), or to the mesh only.
    pub flood_publish: bool,
    /// Long links are gossipsub *explicit peers* at both ends (each end names the
    /// other with `--peer`, which the node makes explicit): every event is sent
    /// across them at once, and they are never in the mesh.
    pub explicit_long: bool,
}

impl Default for GossipParams {
    fn default() -> Self {
        GossipParams {
            mesh_n: 4,
            mesh_n_low: 3,
            mesh_n_high: 6,
            gossip_lazy: 2,
            gossip_factor: 0.0,
            history_gossip: 1,
            history_length: 5,
            heartbeat_ms: 700,
            flood_publish: false,
            explicit_long: true,
        }
    }
}

/// Hubs going down and up.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    /// Mean time a hub stays up, s (exponential).
    pub mean_up_s: f64,
    /// Mean time a hub stays down, s (exponential).
    pub mean_down_s: f64,
}

/// The town and the protocol's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of hubs.
    pub hubs: usize,
    /// Hubs per LAN segment (cluster), uniform in this range.
    pub cluster_size: (usize, usize),
    /// Long links besides the ones that join the clusters into one tree.
    pub extra_long_links: usize,
    /// Links inside a cluster (every hub of a LAN connects to every other).
    pub lan: LinkSpec,
    /// Long links between clusters (one hub at each end).
    pub long: LinkSpec,
    /// Gossipsub.
    pub gossip: GossipParams,
    /// Periodic anti-entropy per peer (`--sync-every`), ms.
    pub sync_every_ms: u64,
    /// Churn, if any.
    pub churn: Option<Churn>,
    /// Characters of details text in each posted need (sets the event size).
    pub details_chars: usize,
    /// Length of the gossip topic (`aidmesh/1/<community>`).
    pub topic_len: usize,
    /// A hub asks only one of its sessions at a time for an id: ids another session
    /// claimed are looked at once more when the rest is done, then left to it (or to
    /// the next periodic session), as the node's shared sync claims
    /// (`node/src/net/sync.rs`) do. `false`: the old way, each session fetches
    /// whatever the hub does not hold when it checks.
    pub fetch_once: bool,
}

impl Config {
    /// The town of the report: `hubs` hubs in LANs of 6–14, 10% segment loss on the
    /// LANs (crowded 2.4 GHz), long links of 1 Mbit/s with 5% loss, the node's defaults.
    pub fn town(hubs: usize, seed: u64) -> Config {
        Config {
            seed,
            hubs,
            cluster_size: (6, 14),
            extra_long_links: hubs / 15,
            lan: LinkSpec {
                latency_ms: (1, 5),
                loss: 0.10,
                bandwidth_bps: 10_000_000,
            },
            long: LinkSpec {
                latency_ms: (5, 20),
                loss: 0.05,
                bandwidth_bps: 1_000_000,
            },
            gossip: GossipParams::default(),
            sync_every_ms: 30_000,
            churn: None,
            details_chars: 120,
            topic_len: 19,
            fetch_once: true,
        }
    }
}

/// Kinds of traffic, for the byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cat {
    /// Gossip messages carrying events (first copies and duplicates).
    GossipData = 0,
    /// IHAVE, IWANT, GRAFT, PRUNE, subscriptions.
    GossipControl = 1,
    /// Sync reconciliation rounds.
    SyncReconcile = 2,
    /// Sync fetch requests and the events answered.
    SyncFetch = 3,
}

const CATS: usize = 4;

/// Framing per gossip RPC on the wire: a yamux header (12) and a noise frame (2-byte
/// length, 16-byte tag).
const FRAME: u64 = 30;
/// Per sync request or response: a new yamux stream (SYN/ACK/FIN headers), the
/// multistream-select exchange for `/aidmesh/sync/1` (37 bytes each way), noise frames
/// and the 4-byte length prefix.
const STREAM: u64 = 110;
/// Segment size for the loss model.
const MSS: u64 = 1_400;
/// TCP's minimum retransmission timeout on Linux.
const RTO: Micros = 200 * MS;
/// Time to validate and store one gossip message on the ingest worker.
const VALIDATE: Micros = MS;
/// Gossipsub's heartbeat_initial_delay.
const FIRST_HEARTBEAT: Micros = 5 * SEC;
/// Gossipsub's prune back-off.
const PRUNE_BACKOFF: Micros = 60 * SEC;
/// Gossipsub's iwant_followup_time: a promise is not asked again before this.
const IWANT_FOLLOWUP: Micros = 3 * SEC;

fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A protobuf length-delimited field of `len` bytes.
fn field(len: u64) -> u64 {
    1 + varint_len(len) + len
}

fn gossip_data_bytes(event_len: u64, topic: u64) -> u64 {
    let msg = field(event_len) + field(topic);
    let rpc = field(msg);
    varint_len(rpc) + rpc + FRAME
}

fn ihave_bytes(ids: usize, topic: u64) -> u64 {
    let ih = field(topic) + ids as u64 * field(32);
    let ctrl = field(ih);
    let rpc = field(ctrl);
    varint_len(rpc) + rpc + FRAME
}

fn iwant_bytes(ids: usize) -> u64 {
    let iw = ids as u64 * field(32);
    let ctrl = field(iw);
    let rpc = field(ctrl);
    varint_len(rpc) + rpc + FRAME
}

fn control_bytes(topic: u64) -> u64 {
    // GRAFT, PRUNE (with a back-off varint) or a subscription: a topic and a few bytes.
    let rpc = field(field(field(topic) + 2));
    varint_len(rpc) + rpc + FRAME
}

/// Encoded bytes of a `SyncRequest::Fetch` of `n` ids (version byte, postcard), as
/// `SyncRequest::encode` makes it; the test `sizes_match_the_real_encoding` checks.
pub fn fetch_bytes(n: usize) -> u64 {
    1 + 1 + varint_len(n as u64) + 32 * n as u64
}

/// Encoded bytes of a `SyncResponse::Events` holding events of these sizes.
pub fn events_bytes(sizes: impl IntoIterator<Item = u64>) -> u64 {
    let (mut n, mut sum) = (0u64, 0u64);
    for s in sizes {
        n += 1;
        sum += varint_len(s) + s;
    }
    1 + 1 + varint_len(n) + sum
}

/// How an event first reached a hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Posted there.
    Local = 0,
    /// A gossip message pushed by a peer (publish or mesh forward).
    Push = 1,
    /// Gossip asked for by IWANT after an IHAVE.
    Pull = 2,
    /// Fetched by a sync session.
    Sync = 3,
}

struct SimEvent {
    id: EventId,
    ts: Timestamp,
    bytes: u64,
    /// The signed event, as sync responses carry it.
    wire: Rc<[u8]>,
    posted_at: Micros,
    origin: usize,
    /// Hubs that were up and connected (through any path) to the origin when it was
    /// posted.
    targets: Vec<bool>,
    /// When each hub first held it (`u64::MAX`: not yet).
    held_at: Vec<Micros>,
}

#[derive(Debug)]
enum Msg {
    Gossip(u32, bool),
    IHave(Vec<u32>),
    IWant(Vec<u32>),
    /// A sync request of the session `generation`.
    Request {
        generation: u64,
        req: SyncRequest,
    },
    /// The answer to one.
    Response {
        generation: u64,
        resp: SyncResponse,
    },
}

#[derive(Debug)]
enum Item {
    Deliver {
        link: usize,
        conn: u64,
        to: usize,
        from: usize,
        cat: Cat,
        bytes: u64,
        msg: Msg,
    },
    Heartbeat {
        hub: usize,
        life: u64,
    },
    SyncDue {
        hub: usize,
        peer: usize,
        life: u64,
    },
    Validated {
        hub: usize,
        life: u64,
        ev: u32,
        source: usize,
    },
    Toggle {
        hub: usize,
    },
    Connect {
        link: usize,
    },
}

struct Entry {
    at: Micros,
    seq: u64,
    item: Item,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap pops the greatest; we want the earliest.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Link {
    a: usize,
    b: usize,
    long: bool,
    latency: Micros,
    loss: f64,
    bandwidth_bps: u64,
    cut: bool,
    cut_at: Micros,
    conn: Option<u64>,
    connect_pending: bool,
    /// Per direction (a→b, b→a): when the sender's queue is free, last arrival.
    free_at: [Micros; 2],
    last_arrival: [Micros; 2],
}

struct Peer {
    link: usize,
    mesh: bool,
}

/// A hub's session with one peer: the real [`Session`] and what the driver keeps.
struct Running {
    generation: u64,
    session: Session,
    relay: bool,
    /// Fetch requests sent and not answered yet.
    fetches: usize,
}

#[derive(Default)]
struct Hub {
    up: bool,
    life: u64,
    held: Vec<bool>,
    held_items: BTreeSet<(Timestamp, u32)>,
    sync_set: Option<Rc<SyncSet>>,
    peers: BTreeMap<usize, Peer>,
    backoff: BTreeMap<usize, Micros>,
    seen: BTreeSet<u32>,
    validating: BTreeMap<u32, Vec<usize>>,
    mcache: VecDeque<Vec<u32>>,
    in_mcache: BTreeSet<u32>,
    promises: BTreeMap<u32, Micros>,
    sessions: BTreeMap<usize, Running>,
    last_sync: BTreeMap<usize, Micros>,
    relay_due: BTreeSet<usize>,
    /// Ids a session is fetching, and which peer's session claimed each, until that
    /// session ends ([`Config::fetch_once`]; the node's `Claims`).
    claims: BTreeMap<u32, usize>,
    /// Events this hub first received by sync.
    by_sync: BTreeSet<u32>,
    rx: [u64; CATS],
}

impl Hub {
    fn holds(&self, ev: u32) -> bool {
        self.held.get(ev as usize).copied().unwrap_or(false)
    }

    fn mesh_len(&self) -> usize {
        self.peers.values().filter(|p| p.mesh).count()
    }
}

/// Counters of the whole run (all hubs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Gossip data messages that arrived at a hub that had already seen the event.
    pub gossip_duplicates: u64,
    /// Events that arrived in a sync response at a hub that already held them (two of
    /// its sessions, with different peers, asked for the same id before either answer
    /// came back).
    pub sync_duplicate_arrivals: u64,
    /// Of those, events the hub had itself received by sync before (not by gossip):
    /// "received twice through sync".
    pub sync_twice: u64,
    /// Ids a sync session asked for that the hub already held when it asked. The
    /// session filters them out, so this must stay 0.
    pub sync_requested_held: u64,
    /// Sync sessions started.
    pub sessions: u64,
    /// Events published by relay sessions.
    pub relayed: u64,
    /// First arrivals by [`Via`]: local, push, pull, sync.
    pub first_via: [u64; 4],
}

/// The simulation. Drive it with [`Sim::run_until`], [`Sim::post`], [`Sim::cut`],
/// [`Sim::heal`], [`Sim::set_up`].
pub struct Sim {
    cfg: Config,
    /// Network randomness: loss, mesh choices, delays.
    rng: Rng,
    /// Churn: its own stream, so the same seed gives the same ups and downs whatever
    /// the protocol's parameters.
    churn_rng: Rng,
    now: Micros,
    seq: u64,
    queue: BinaryHeap<Entry>,
    hubs: Vec<Hub>,
    cluster: Vec<usize>,
    links: Vec<Link>,
    events: Vec<SimEvent>,
    ids: HashMap<EventId, u32>,
    identities: Vec<Identity>,
    next_generation: u64,
    held_total: u64,
    /// What happened.
    pub counters: Counters,
}

impl Sim {
    /// Builds the town (every hub up, none connected yet: connections form in the first
    /// seconds as discovery would make them).
    pub fn new(cfg: Config) -> Sim {
        let mut rng = Rng::new(cfg.seed);
        let n = cfg.hubs;
        let mut cluster = Vec::with_capacity(n);
        let mut members: Vec<Vec<usize>> = Vec::new();
        while cluster.len() < n {
            let size = rng
                .between(cfg.cluster_size.0 as u64, cfg.cluster_size.1 as u64)
                .min((n - cluster.len()) as u64) as usize;
            let c = members.len();
            members.push((cluster.len()..cluster.len() + size).collect());
            cluster.extend(std::iter::repeat_n(c, size));
        }
        let mut links = Vec::new();
        let link = |rng: &mut Rng, a: usize, b: usize, spec: &LinkSpec, long: bool| Link {
            a,
            b,
            long,
            latency: rng.between(spec.latency_ms.0, spec.latency_ms.1) * MS,
            loss: spec.loss,
            bandwidth_bps: spec.bandwidth_bps,
            cut: false,
            cut_at: 0,
            conn: None,
            connect_pending: false,
            free_at: [0; 2],
            last_arrival: [0; 2],
        };
        for m in &members {
            for (i, &a) in m.iter().enumerate() {
                for &b in &m[i + 1..] {
                    links.push(link(&mut rng, a, b, &cfg.lan, false));
                }
            }
        }
        let mut long_pairs = BTreeSet::new();
        for c in 1..members.len() {
            let other = rng.below(c);
            long_pairs.insert((other, c));
        }
        let mut tries = 0;
        let target = long_pairs.len() + cfg.extra_long_links;
        while members.len() > 2 && long_pairs.len() < target && tries < 10_000 {
            tries += 1;
            let (x, y) = (rng.below(members.len()), rng.below(members.len()));
            if x != y {
                long_pairs.insert((x.min(y), x.max(y)));
            }
        }
        for (x, y) in long_pairs {
            let a = members[x][rng.below(members[x].len())];
            let b = members[y][rng.below(members[y].len())];
            links.push(link(&mut rng, a, b, &cfg.long, true));
        }
        let identities = (0..n)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
                seed[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                Identity::from_seed(seed)
            })
            .collect();
        let mut sim = Sim {
            rng: Rng::new(cfg.seed ^ 0x6e65_7477_6f72_6b00),
            churn_rng: Rng::new(cfg.seed ^ 0x6368_7572_6e00),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            hubs: (0..n).map(|_| Hub::default()).collect(),
            cluster,
            links,
            events: Vec::new(),
            ids: HashMap::new(),
            identities,
            next_generation: 0,
            held_total: 0,
            counters: Counters::default(),
            cfg,
        };
        for h in 0..n {
            let up = match &sim.cfg.churn {
                Some(c) => sim
                    .churn_rng
                    .chance(c.mean_up_s / (c.mean_up_s + c.mean_down_s)),
                None => true,
            };
            if up {
                sim.bring_up(h);
            }
            if let Some(c) = sim.cfg.churn.clone() {
                let mean = if up { c.mean_up_s } else { c.mean_down_s };
                let at = (sim.churn_rng.exp(mean) * SEC as f64) as Micros;
                sim.schedule(at, Item::Toggle { hub: h });
            }
        }
        sim
    }

    /// Stops churn: hubs stay as they are from now on.
    pub fn stop_churn(&mut self) {
        self.cfg.churn = None;
    }

    /// Number of peers `hub` is connected to.
    pub fn peers_of(&self, hub: usize) -> usize {
        self.hubs[hub].peers.len()
    }

    /// Events `hub` holds.
    pub fn held_count(&self, hub: usize) -> usize {
        self.hubs[hub].held_items.len()
    }

    /// Simulated time now.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// Number of hubs.
    pub fn hubs(&self) -> usize {
        self.hubs.len()
    }

    /// Number of clusters (LAN segments).
    pub fn clusters(&self) -> usize {
        self.cluster.last().map_or(0, |c| c + 1)
    }

    /// The cluster of a hub.
    pub fn cluster_of(&self, hub: usize) -> usize {
        self.cluster[hub]
    }

    /// Number of long links.
    pub fn long_links(&self) -> usize {
        self.links.iter().filter(|l| l.long).count()
    }

    /// Whether a hub is up.
    pub fn is_up(&self, hub: usize) -> bool {
        self.hubs[hub].up
    }

    /// Whether a hub holds an event.
    pub fn holds(&self, hub: usize, ev: u32) -> bool {
        self.hubs[hub].holds(ev)
    }

    /// Number of events posted.
    pub fn events(&self) -> usize {
        self.events.len()
    }

    /// Wire size of an event.
    pub fn event_bytes(&self, ev: u32) -> u64 {
        self.events[ev as usize].bytes
    }

    /// When `hub` first held `ev`, if it does.
    pub fn held_at(&self, hub: usize, ev: u32) -> Option<Micros> {
        let t = self.events[ev as usize].held_at[hub];
        (t != u64::MAX).then_some(t)
    }

    /// When `ev` was posted, and where.
    pub fn posted(&self, ev: u32) -> (Micros, usize) {
        let e = &self.events[ev as usize];
        (e.posted_at, e.origin)
    }

    /// Hubs that were up and connected to the origin when `ev` was posted.
    pub fn targets(&self, ev: u32) -> Vec<usize> {
        let e = &self.events[ev as usize];
        (0..self.hubs.len()).filter(|&h| e.targets[h]).collect()
    }

    /// Bytes received so far by each hub, per [`Cat`].
    pub fn received(&self) -> Vec<[u64; CATS]> {
        self.hubs.iter().map(|h| h.rx).collect()
    }

    /// Whether every hub that is up holds every event.
    pub fn converged(&self) -> bool {
        let up = self.hubs.iter().filter(|h| h.up).count() as u64;
        self.hubs
            .iter()
            .filter(|h| h.up)
            .all(|h| h.held_items.len() == self.events.len())
            && self.held_total >= up * self.events.len() as u64
    }

    /// Whether the catch-up traffic has died down: no session is fetching or relaying,
    /// no relay session is due, and no event, gossip or fetch is on the wire (periodic
    /// reconciliation that finds nothing may go on).
    pub fn quiet(&self) -> bool {
        let busy = self.hubs.iter().any(|h| {
            !h.relay_due.is_empty()
                || h.sessions
                    .values()
                    .any(|r| r.relay || r.session.summary().fetched > 0 || r.fetches > 0)
        });
        !busy
            && !self.queue.iter().any(|e| {
                matches!(
                    e.item,
                    Item::Deliver {
                        msg: Msg::Gossip(..)
                            | Msg::IHave(_)
                            | Msg::IWant(_)
                            | Msg::Request {
                                req: SyncRequest::Fetch { .. },
                                ..
                            }
                            | Msg::Response {
                                resp: SyncResponse::Events { .. },
                                ..
                            },
                        ..
                    }
                )
            })
    }

    /// After convergence: runs in steps of 100 ms until [`Sim::quiet`], at most `limit`
    /// longer, so that the bytes still in flight are counted.
    pub fn settle(&mut self, limit: Micros) {
        let end = self.now + limit;
        while !self.quiet() && self.now < end {
            self.run_until(self.now + 100 * MS);
        }
    }

    /// Hubs that are up and connected (through any path) to `hub`.
    pub fn component(&self, hub: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([hub]);
        let mut todo = vec![hub];
        while let Some(h) = todo.pop() {
            for p in self.hubs[h].peers.keys() {
                if seen.insert(*p) {
                    todo.push(*p);
                }
            }
        }
        seen
    }

    fn schedule(&mut self, at: Micros, item: Item) {
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            item,
        });
    }

    /// Runs every step due up to `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Micros) {
        while self.queue.peek().is_some_and(|e| e.at <= t) {
            let Some(e) = self.queue.pop() else { break };
            self.now = e.at;
            self.step(e.item);
        }
        self.now = self.now.max(t);
    }

    /// Runs until `done(self)` holds (checked after every step) or until `deadline`;
    /// returns whether it held.
    pub fn run_while_not(&mut self, deadline: Micros, done: impl Fn(&Sim) -> bool) -> bool {
        if done(self) {
            return true;
        }
        while self.queue.peek().is_some_and(|e| e.at <= deadline) {
            let Some(e) = self.queue.pop() else { break };
            self.now = e.at;
            self.step(e.item);
            if done(self) {
                return true;
            }
        }
        self.now = self.now.max(deadline);
        false
    }

    fn step(&mut self, item: Item) {
        match item {
            Item::Deliver {
                link,
                conn,
                to,
                from,
                cat,
                bytes,
                msg,
            } => {
                if self.links[link].conn != Some(conn) || !self.hubs[to].up {
                    return;
                }
                self.hubs[to].rx[cat as usize] += bytes;
                self.on_message(to, from, msg);
            }
            Item::Heartbeat { hub, life } => {
                if self.hubs[hub].up && self.hubs[hub].life == life {
                    self.heartbeat(hub);
                    let next = self.now + self.cfg.gossip.heartbeat_ms * MS;
                    self.schedule(next, Item::Heartbeat { hub, life });
                }
            }
            Item::SyncDue { hub, peer, life } => {
                if self.hubs[hub].up && self.hubs[hub].life == life {
                    self.sync_due(hub, peer);
                }
            }
            Item::Validated {
                hub,
                life,
                ev,
                source,
            } => {
                if self.hubs[hub].up && self.hubs[hub].life == life {
                    self.validated(hub, ev, source);
                }
            }
            Item::Toggle { hub } => {
                let Some(c) = self.cfg.churn.clone() else {
                    return;
                };
                let up = !self.hubs[hub].up;
                self.set_up(hub, up);
                let mean = if up { c.mean_up_s } else { c.mean_down_s };
                let at = self.now + (self.churn_rng.exp(mean) * SEC as f64) as Micros;
                self.schedule(at, Item::Toggle { hub });
            }
            Item::Connect { link } => {
                self.links[link].connect_pending = false;
                let l = &self.links[link];
                if l.conn.is_none() && !l.cut && self.hubs[l.a].up && self.hubs[l.b].up {
                    self.connect(link);
                }
            }
        }
    }

    /// Turns a hub on (its store kept) or off (its connections and in-memory state go).
    pub fn set_up(&mut self, hub: usize, up: bool) {
        if up == self.hubs[hub].up {
            return;
        }
        if up {
            self.bring_up(hub);
        } else {
            let links: Vec<usize> = self.hubs[hub].peers.values().map(|p| p.link).collect();
            for l in links {
                self.disconnect(l);
            }
            let h = &mut self.hubs[hub];
            h.up = false;
            h.seen.clear();
            h.validating.clear();
            h.mcache.clear();
            h.in_mcache.clear();
            h.promises.clear();
            h.sessions.clear();
            h.last_sync.clear();
            h.relay_due.clear();
            h.claims.clear();
            h.backoff.clear();
        }
    }

    fn bring_up(&mut self, hub: usize) {
        let h = &mut self.hubs[hub];
        h.up = true;
        h.life += 1;
        let life = h.life;
        let beat = self.now + FIRST_HEARTBEAT + self.rng.between(0, 700) * MS;
        self.schedule(beat, Item::Heartbeat { hub, life });
        let links: Vec<usize> = (0..self.links.len())
            .filter(|&l| self.links[l].a == hub || self.links[l].b == hub)
            .collect();
        for l in links {
            let delay = self.rng.between(200, 1_200) * MS;
            self.want_connect(l, delay);
        }
    }

    fn want_connect(&mut self, link: usize, delay: Micros) {
        let l = &self.links[link];
        if l.conn.is_some() || l.cut || l.connect_pending {
            return;
        }
        if !(self.hubs[l.a].up && self.hubs[l.b].up) {
            return;
        }
        self.links[link].connect_pending = true;
        self.schedule(self.now + delay, Item::Connect { link });
    }

    /// Cuts every long link whose ends `side` puts on different sides (a partition).
    pub fn cut(&mut self, side: impl Fn(usize) -> bool) {
        for l in 0..self.links.len() {
            let (a, b) = (self.links[l].a, self.links[l].b);
            if side(a) != side(b) {
                self.links[l].cut = true;
                self.links[l].cut_at = self.now;
                self.disconnect(l);
            }
        }
    }

    /// Restores every cut link; each is redialled at the next attempt of the node's
    /// back-off (1 s after the cut, then every 2, 4, 8, 16, 32, 60, 60 … s).
    pub fn heal(&mut self) {
        for l in 0..self.links.len() {
            if !self.links[l].cut {
                continue;
            }
            self.links[l].cut = false;
            let mut at = self.links[l].cut_at + SEC;
            let mut failures = 0u32;
            while at < self.now {
                failures += 1;
                at += (1u64 << failures.min(6)).min(60) * SEC;
            }
            let delay = at - self.now + self.links[l].latency * 3;
            self.want_connect(l, delay);
        }
    }

    fn connect(&mut self, link: usize) {
        self.next_generation += 1;
        let conn = self.next_generation;
        let l = &mut self.links[link];
        l.conn = Some(conn);
        l.free_at = [self.now; 2];
        l.last_arrival = [self.now; 2];
        let (a, b) = (l.a, l.b);
        self.hubs[a].peers.insert(b, Peer { link, mesh: false });
        self.hubs[b].peers.insert(a, Peer { link, mesh: false });
        let topic = self.cfg.topic_len as u64;
        // Subscriptions, both ways.
        self.hubs[a].rx[Cat::GossipControl as usize] += control_bytes(topic);
        self.hubs[b].rx[Cat::GossipControl as usize] += control_bytes(topic);
        for (x, y) in [(a, b), (b, a)] {
            if self.hubs[x].mesh_len() < self.cfg.gossip.mesh_n_low
                && !self.backed_off(x, y)
                && !self.explicit(x, y)
            {
                self.graft(x, y);
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            if !self.hubs[x].sessions.contains_key(&y) {
                self.start_sync(x, y, false);
            }
        }
    }

    fn disconnect(&mut self, link: usize) {
        let l = &mut self.links[link];
        if l.conn.take().is_none() {
            return;
        }
        let (a, b) = (l.a, l.b);
        for (x, y) in [(a, b), (b, a)] {
            let h = &mut self.hubs[x];
            h.peers.remove(&y);
            h.sessions.remove(&y);
            h.relay_due.remove(&y);
            h.claims.retain(|_, p| *p != y);
        }
        // Each side redials: discovery finds a LAN peer again; a long link is a static
        // peer, redialled with back-off (the heal above; a cut link waits for it).
        let delay = SEC + self.rng.between(0, 200) * MS;
        self.want_connect(link, delay);
    }

    fn backed_off(&self, x: usize, y: usize) -> bool {
        self.hubs[x].backoff.get(&y).is_some_and(|t| *t > self.now)
    }

    fn graft(&mut self, x: usize, y: usize) {
        let topic = self.cfg.topic_len as u64;
        if let Some(p) = self.hubs[x].peers.get_mut(&y) {
            p.mesh = true;
        }
        self.hubs[y].rx[Cat::GossipControl as usize] += control_bytes(topic);
        if self.hubs[y].mesh_len() >= self.cfg.gossip.mesh_n_high || self.backed_off(y, x) {
            // PRUNE back.
            self.hubs[x].rx[Cat::GossipControl as usize] += control_bytes(topic);
            if let Some(p) = self.hubs[x].peers.get_mut(&y) {
                p.mesh = false;
            }
            self.hubs[x].backoff.insert(y, self.now + PRUNE_BACKOFF);
        } else if let Some(p) = self.hubs[y].peers.get_mut(&x) {
            p.mesh = true;
        }
    }

    fn prune(&mut self, x: usize, y: usize) {
        let topic = self.cfg.topic_len as u64;
        for (p, q) in [(x, y), (y, x)] {
            if let Some(peer) = self.hubs[p].peers.get_mut(&q) {
                peer.mesh = false;
            }
            self.hubs[p].backoff.insert(q, self.now + PRUNE_BACKOFF);
        }
        self.hubs[y].rx[Cat::GossipControl as usize] += control_bytes(topic);
    }

    /// Sends `msg` from `from` to its connected peer `to`.
    fn send(&mut self, from: usize, to: usize, cat: Cat, bytes: u64, msg: Msg) {
        let Some(peer) = self.hubs[from].peers.get(&to) else {
            return;
        };
        let link = peer.link;
        let l = &self.links[link];
        let Some(conn) = l.conn else { return };
        let dir = usize::from(l.a != from);
        let start = self.now.max(l.free_at[dir]);
        let tx = bytes * 8 * SEC / l.bandwidth_bps;
        let (latency, loss) = (l.latency, l.loss);
        let mut retrans = 0;
        if loss > 0.0 {
            for _ in 0..bytes.div_ceil(MSS) {
                let (mut wait, mut rto) = (0, RTO);
                while self.rng.chance(loss) {
                    wait += rto;
                    rto *= 2;
                }
                retrans = retrans.max(wait);
            }
        }
        let l = &mut self.links[link];
        l.free_at[dir] = start + tx;
        let arrival = (start + tx + latency + retrans).max(l.last_arrival[dir]);
        l.last_arrival[dir] = arrival;
        self.schedule(
            arrival,
            Item::Deliver {
                link,
                conn,
                to,
                from,
                cat,
                bytes,
                msg,
            },
        );
    }

    /// Posts a new need at `hub` (which must be up); returns its index.
    pub fn post(&mut self, hub: usize) -> u32 {
        let n = self.events.len() as u32;
        let wall = EPOCH_MS + self.now / MS;
        let ev = self.make_event(hub, wall, n);
        let reachable = self.component(hub);
        let targets = (0..self.hubs.len())
            .map(|h| reachable.contains(&h))
            .collect();
        self.push_event(ev, hub, targets);
        self.store(hub, n, Via::Local);
        self.publish(hub, n);
        n
    }

    /// Adds an event written at `wall_ms` by `origin` while `absent` was away, held by
    /// every other hub already (the state a town converges to); returns its index.
    pub fn preload(&mut self, origin: usize, wall_ms: u64, absent: usize) -> u32 {
        let n = self.events.len() as u32;
        let ev = self.make_event(origin, wall_ms, n);
        let targets = (0..self.hubs.len()).map(|h| h == absent).collect();
        self.push_event(ev, origin, targets);
        for h in 0..self.hubs.len() {
            if h != absent {
                self.store(h, n, Via::Local);
            }
        }
        n
    }

    /// A need of the same size as every other (numbers padded): see the module's
    /// note on fetch batches.
    fn make_event(&mut self, hub: usize, wall_ms: u64, n: u32) -> Event {
        let details: String = (0..self.cfg.details_chars)
            .map(|i| (b'a' + ((i as u32 + n) % 26) as u8) as char)
            .collect();
        let body = Body::Need(Post {
            title: format!("Drinking water for 4 people, request {n:06}"),
            category: Category::Water,
            details,
            quantity: Some(20),
            unit: "l".into(),
            urgency: Urgency::Normal,
            place: Place {
                label: format!("Hub {hub:04}"),
                coords: None,
            },
            contact: String::new(),
            expires_ms: None,
            related: None,
        });
        Event::create(&self.identities[hub], Timestamp(wall_ms << 16), &body)
    }

    fn push_event(&mut self, ev: Event, origin: usize, targets: Vec<bool>) {
        let n = self.events.len() as u32;
        self.ids.insert(ev.id(), n);
        self.events.push(SimEvent {
            id: ev.id(),
            ts: ev.timestamp(),
            bytes: ev.bytes().len() as u64,
            wire: ev.bytes().into(),
            posted_at: self.now,
            origin,
            targets,
            held_at: vec![u64::MAX; self.hubs.len()],
        });
    }

    fn store(&mut self, hub: usize, ev: u32, via: Via) {
        let ts = self.events[ev as usize].ts;
        let h = &mut self.hubs[hub];
        if h.held.len() <= ev as usize {
            h.held.resize(ev as usize + 1, false);
        }
        h.held[ev as usize] = true;
        h.held_items.insert((ts, ev));
        h.sync_set = None;
        self.events[ev as usize].held_at[hub] = self.now;
        self.held_total += 1;
        self.counters.first_via[via as usize] += 1;
    }

    /// gossipsub's publish: refused if already seen; else to every connected peer
    /// (flood publish) or the mesh.
    fn publish(&mut self, hub: usize, ev: u32) {
        if self.hubs[hub].seen.contains(&ev) {
            return;
        }
        let all: Vec<usize> = self.hubs[hub].peers.keys().copied().collect();
        let all_explicit: Vec<usize> = all
            .iter()
            .copied()
            .filter(|p| self.explicit(hub, *p))
            .collect();
        let to = if self.cfg.gossip.flood_publish {
            all
        } else {
            // The mesh, topped up with random other peers to mesh_n.
            let mut to = self.mesh_peers(hub);
            let others: Vec<usize> = all.into_iter().filter(|p| !to.contains(p)).collect();
            let extra = self.cfg.gossip.mesh_n.saturating_sub(to.len());
            to.extend(self.rng.sample(&others, extra));
            for p in all_explicit {
                if !to.contains(&p) {
                    to.push(p);
                }
            }
            to
        };
        if to.is_empty() {
            return; // NoPeersSubscribedToTopic: not cached, anti-entropy delivers it.
        }
        let h = &mut self.hubs[hub];
        h.seen.insert(ev);
        Self::cache(h, ev);
        let bytes = gossip_data_bytes(self.events[ev as usize].bytes, self.cfg.topic_len as u64);
        for p in to {
            self.send(hub, p, Cat::GossipData, bytes, Msg::Gossip(ev, false));
        }
    }

    fn cache(h: &mut Hub, ev: u32) {
        if h.mcache.is_empty() {
            h.mcache.push_front(Vec::new());
        }
        h.mcache[0].push(ev);
        h.in_mcache.insert(ev);
    }

    fn on_message(&mut self, to: usize, from: usize, msg: Msg) {
        match msg {
            Msg::Gossip(ev, pulled) => {
                let h = &mut self.hubs[to];
                if !h.seen.insert(ev) {
                    self.counters.gossip_duplicates += 1;
                    if let Some(v) = h.validating.get_mut(&ev) {
                        v.push(from);
                    }
                    return;
                }
                h.promises.remove(&ev);
                h.validating.insert(ev, Vec::new());
                let life = h.life;
                // Encode "pulled" in the source's sign: keep it simple with a side map.
                let source = if pulled { from | PULLED } else { from };
                self.schedule(
                    self.now + VALIDATE,
                    Item::Validated {
                        hub: to,
                        life,
                        ev,
                        source,
                    },
                );
            }
            Msg::IHave(ids) => {
                let now = self.now;
                let h = &mut self.hubs[to];
                let want: Vec<u32> = ids
                    .into_iter()
                    .filter(|id| {
                        !h.seen.contains(id) && h.promises.get(id).is_none_or(|t| *t <= now)
                    })
                    .collect();
                if want.is_empty() {
                    return;
                }
                for id in &want {
                    h.promises.insert(*id, now + IWANT_FOLLOWUP);
                }
                let bytes = iwant_bytes(want.len());
                self.send(to, from, Cat::GossipControl, bytes, Msg::IWant(want));
            }
            Msg::IWant(ids) => {
                let topic = self.cfg.topic_len as u64;
                for id in ids {
                    if self.hubs[to].in_mcache.contains(&id) {
                        let bytes = gossip_data_bytes(self.events[id as usize].bytes, topic);
                        self.send(to, from, Cat::GossipData, bytes, Msg::Gossip(id, true));
                    }
                }
            }
            Msg::Request { generation, req } => self.serve(to, from, generation, req),
            Msg::Response { generation, resp } => self.on_response(to, from, generation, resp),
        }
    }

    fn validated(&mut self, hub: usize, ev: u32, source: usize) {
        let pulled = source & PULLED != 0;
        let source = source & !PULLED;
        let originating = self.hubs[hub].validating.remove(&ev).unwrap_or_default();
        if self.hubs[hub].holds(ev) {
            return; // Ignore: stored already (by sync, or a relay); not forwarded.
        }
        self.store(hub, ev, if pulled { Via::Pull } else { Via::Push });
        Self::cache(&mut self.hubs[hub], ev);
        let to: Vec<usize> = self.hubs[hub]
            .peers
            .iter()
            .filter(|(k, p)| {
                (p.mesh || self.explicit(hub, **k)) && **k != source && !originating.contains(k)
            })
            .map(|(k, _)| *k)
            .collect();
        let bytes = gossip_data_bytes(self.events[ev as usize].bytes, self.cfg.topic_len as u64);
        for p in to {
            self.send(hub, p, Cat::GossipData, bytes, Msg::Gossip(ev, false));
        }
    }

    fn heartbeat(&mut self, hub: usize) {
        let g = self.cfg.gossip.clone();
        // Mesh upkeep.
        let mesh: Vec<usize> = self.mesh_peers(hub);
        if mesh.len() < g.mesh_n_low {
            let candidates: Vec<usize> = self.hubs[hub]
                .peers
                .iter()
                .filter(|(k, p)| !p.mesh && !self.backed_off(hub, **k) && !self.explicit(hub, **k))
                .map(|(k, _)| *k)
                .collect();
            for p in self.rng.sample(&candidates, g.mesh_n - mesh.len()) {
                self.graft(hub, p);
            }
        } else if mesh.len() >= g.mesh_n_high {
            for p in self.rng.sample(&mesh, mesh.len() - g.mesh_n) {
                self.prune(hub, p);
            }
        }
        // IHAVE to non-mesh peers.
        let ids: Vec<u32> = self.hubs[hub]
            .mcache
            .iter()
            .take(g.history_gossip)
            .flatten()
            .copied()
            .collect();
        if !ids.is_empty() {
            let others: Vec<usize> = self.hubs[hub]
                .peers
                .iter()
                .filter(|(_, p)| !p.mesh)
                .map(|(k, _)| *k)
                .collect();
            let n = g
                .gossip_lazy
                .max((g.gossip_factor * others.len() as f64) as usize);
            let bytes = ihave_bytes(ids.len(), self.cfg.topic_len as u64);
            for p in self.rng.sample(&others, n) {
                self.send(hub, p, Cat::GossipControl, bytes, Msg::IHave(ids.clone()));
            }
        }
        // Shift the message cache.
        let h = &mut self.hubs[hub];
        h.mcache.push_front(Vec::new());
        while h.mcache.len() > g.history_length {
            if let Some(old) = h.mcache.pop_back() {
                for ev in old {
                    h.in_mcache.remove(&ev);
                }
            }
        }
    }

    /// Whether `peer` is an explicit gossip peer of `hub` (a long link, when
    /// [`GossipParams::explicit_long`]).
    fn explicit(&self, hub: usize, peer: usize) -> bool {
        self.cfg.gossip.explicit_long
            && self.hubs[hub]
                .peers
                .get(&peer)
                .is_some_and(|p| self.links[p.link].long)
    }

    fn mesh_peers(&self, hub: usize) -> Vec<usize> {
        self.hubs[hub]
            .peers
            .iter()
            .filter(|(_, p)| p.mesh)
            .map(|(k, _)| *k)
            .collect()
    }

    /// As the node's timer for `peer` (`node/src/net/task.rs`, `sync_due`): a periodic
    /// session if none runs and the last one ended `sync_every` ago.
    fn sync_due(&mut self, hub: usize, peer: usize) {
        let every = self.cfg.sync_every_ms * MS;
        let h = &self.hubs[hub];
        if h.peers.contains_key(&peer)
            && !h.sessions.contains_key(&peer)
            && h.last_sync.get(&peer).is_none_or(|t| self.now - t >= every)
        {
            self.start_sync(hub, peer, false);
        }
    }

    fn sync_set(&mut self, hub: usize) -> Rc<SyncSet> {
        if let Some(s) = &self.hubs[hub].sync_set {
            return s.clone();
        }
        let items = self.hubs[hub]
            .held_items
            .iter()
            .map(|(ts, ev)| (*ts, self.events[*ev as usize].id));
        let set = Rc::new(SyncSet::new(items).expect("a set of valid items"));
        self.hubs[hub].sync_set = Some(set.clone());
        set
    }

    /// The simulated wall clock, for the sync messages' `wall_ms`.
    fn wall_ms(&self) -> u64 {
        EPOCH_MS + self.now / MS
    }

    fn start_sync(&mut self, hub: usize, peer: usize, relay: bool) {
        let set = self.sync_set(hub);
        let Ok((session, first)) = Session::start(&set, relay, self.wall_ms()) else {
            return;
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        self.counters.sessions += 1;
        self.hubs[hub].sessions.insert(
            peer,
            Running {
                generation,
                session,
                relay,
                fetches: 0,
            },
        );
        self.send_request(hub, peer, generation, first);
    }

    /// Sends one of a session's requests, counting its bytes as the node's codec
    /// frames them.
    fn send_request(&mut self, hub: usize, peer: usize, generation: u64, req: SyncRequest) {
        let (cat, bytes) = match &req {
            SyncRequest::Reconcile { message, .. } => {
                (Cat::SyncReconcile, reconcile_bytes(message) + STREAM)
            }
            SyncRequest::Fetch { ids } => {
                let h = &self.hubs[hub];
                self.counters.sync_requested_held += ids
                    .iter()
                    .filter(|id| self.ids.get(id).is_some_and(|n| h.holds(*n)))
                    .count() as u64;
                if let Some(r) = self.hubs[hub].sessions.get_mut(&peer) {
                    r.fetches += 1;
                }
                (Cat::SyncFetch, fetch_bytes(ids.len()) + 4 + STREAM)
            }
        };
        self.send(hub, peer, cat, bytes, Msg::Request { generation, req });
    }

    /// The responder, as `node::net::sync::serve`: stateless, from the current set
    /// and store.
    fn serve(&mut self, hub: usize, peer: usize, generation: u64, req: SyncRequest) {
        let (cat, bytes, resp) = match req {
            SyncRequest::Reconcile { message, .. } => {
                let set = self.sync_set(hub);
                let Ok(reply) = set.respond(&message) else {
                    return;
                };
                let bytes = reconcile_bytes(&reply) + STREAM;
                let resp = SyncResponse::Reconcile {
                    wall_ms: self.wall_ms(),
                    message: reply,
                };
                (Cat::SyncReconcile, bytes, resp)
            }
            SyncRequest::Fetch { ids } => {
                let mut events = Vec::new();
                let mut total = 0;
                for id in ids {
                    let Some(&n) = self.ids.get(&id) else {
                        continue;
                    };
                    if self.hubs[hub].holds(n) {
                        let wire = &self.events[n as usize].wire;
                        if total + wire.len() > MAX_EVENTS_RESPONSE_BYTES {
                            break;
                        }
                        total += wire.len();
                        events.push(wire.to_vec());
                    }
                }
                let bytes = events_bytes(events.iter().map(|e| e.len() as u64)) + 4 + STREAM;
                (Cat::SyncFetch, bytes, SyncResponse::Events { events })
            }
        };
        self.send(hub, peer, cat, bytes, Msg::Response { generation, resp });
    }

    /// The peer's response to the oldest request of `hub`'s session with it (a
    /// connection delivers in order), fed to the real session.
    fn on_response(&mut self, hub: usize, peer: usize, generation: u64, resp: SyncResponse) {
        let wall_ms = self.wall_ms();
        let Some(r) = self.hubs[hub]
            .sessions
            .get_mut(&peer)
            .filter(|r| r.generation == generation)
        else {
            return;
        };
        if matches!(resp, SyncResponse::Events { .. }) {
            r.fetches = r.fetches.saturating_sub(1);
        }
        let step = r.session.on_response(resp, wall_ms).map(|out| out.step);
        self.drive(hub, peer, generation, step);
    }

    /// Carries out what the session asks, as `node::net::sync::Session::on_response`
    /// does, until it waits for the peer or is done.
    fn drive(&mut self, hub: usize, peer: usize, generation: u64, mut step: Result<Step, Failure>) {
        loop {
            let next = match step {
                Err(_) => {
                    self.finish_sync(hub, peer, false);
                    return;
                }
                Ok(Step::Wait) => return,
                Ok(Step::Done(_)) => {
                    self.finish_sync(hub, peer, true);
                    return;
                }
                Ok(Step::Send(req)) => {
                    self.send_request(hub, peer, generation, req);
                    self.with_session(hub, peer, Session::after_send)
                }
                Ok(Step::Check(ids)) => {
                    let (held, busy) = self.check(hub, peer, &ids);
                    self.with_session(hub, peer, |s| s.checked(&held, &busy))
                }
                Ok(Step::Store(events)) => {
                    let new = self.store_fetched(hub, &events);
                    self.with_session(hub, peer, |s| {
                        s.stored(Stored {
                            new,
                            ..Stored::default()
                        })
                    })
                }
            };
            step = next;
        }
    }

    fn with_session(
        &mut self,
        hub: usize,
        peer: usize,
        f: impl FnOnce(&mut Session) -> Result<Step, Failure>,
    ) -> Result<Step, Failure> {
        match self.hubs[hub].sessions.get_mut(&peer) {
            Some(r) => f(&mut r.session),
            None => Err(Failure::benign("no session")),
        }
    }

    /// Which of `ids` the hub holds, and which another of its sessions is fetching
    /// ([`Config::fetch_once`]); claims the rest for this one, as the node's `Claims`.
    fn check(&mut self, hub: usize, peer: usize, ids: &[EventId]) -> (Vec<EventId>, Vec<EventId>) {
        let once = self.cfg.fetch_once;
        let h = &mut self.hubs[hub];
        let (mut held, mut busy) = (Vec::new(), Vec::new());
        for id in ids {
            let Some(&n) = self.ids.get(id) else { continue };
            if h.holds(n) {
                held.push(*id);
            } else if once {
                match h.claims.get(&n) {
                    Some(p) if *p != peer => busy.push(*id),
                    Some(_) => {}
                    None => {
                        h.claims.insert(n, peer);
                    }
                }
            }
        }
        (held, busy)
    }

    /// Stores the events a session fetched (no validation time: the node validates a
    /// batch on its worker); returns how many were new.
    fn store_fetched(&mut self, hub: usize, events: &[Vec<u8>]) -> usize {
        let mut new = 0;
        for bytes in events {
            let Some(n) = Event::decode(bytes)
                .ok()
                .and_then(|e| self.ids.get(&e.id()).copied())
            else {
                continue;
            };
            if self.hubs[hub].holds(n) {
                self.counters.sync_duplicate_arrivals += 1;
                if self.hubs[hub].by_sync.contains(&n) {
                    self.counters.sync_twice += 1;
                }
            } else {
                self.store(hub, n, Via::Sync);
                self.hubs[hub].by_sync.insert(n);
                new += 1;
            }
        }
        new
    }

    /// As `node/src/net/task.rs`: end the session (its claims go), set the peer's next
    /// periodic session, run a due relay session; when it completed, publish what a
    /// relay session found the peer lacks, and relay to the others if it fetched
    /// something.
    fn finish_sync(&mut self, hub: usize, peer: usize, completed: bool) {
        let Some(mut r) = self.hubs[hub].sessions.remove(&peer) else {
            return;
        };
        let h = &mut self.hubs[hub];
        h.claims.retain(|_, p| *p != peer);
        h.last_sync.insert(peer, self.now);
        let life = h.life;
        let due = self.now + self.cfg.sync_every_ms * MS;
        self.schedule(due, Item::SyncDue { hub, peer, life });
        if self.hubs[hub].relay_due.remove(&peer) && self.hubs[hub].peers.contains_key(&peer) {
            self.start_sync(hub, peer, true);
        }
        if !completed {
            return;
        }
        // The session lists what the peer lacks in the order of our set: the same for
        // one seed.
        for id in r.session.lacking() {
            let Some(&ev) = self.ids.get(&id) else {
                continue;
            };
            if !self.hubs[hub].seen.contains(&ev) {
                self.counters.relayed += 1;
            }
            self.publish(hub, ev);
        }
        if r.session.summary().fetched > 0 {
            let others: Vec<usize> = self.hubs[hub]
                .peers
                .keys()
                .filter(|p| **p != peer)
                .copied()
                .collect();
            for p in others {
                if self.hubs[hub].sessions.contains_key(&p) {
                    self.hubs[hub].relay_due.insert(p);
                } else {
                    self.start_sync(hub, p, true);
                }
            }
        }
    }
}

/// Marks a gossip message that came in answer to an IWANT (in `Item::Validated`).
const PULLED: usize = 1 << 40;

/// Encoded bytes of a reconciliation message (either direction: same layout) and its
/// length prefix.
fn reconcile_bytes(message: &[u8]) -> u64 {
    let wall = varint_len(EPOCH_MS);
    1 + 1 + wall + varint_len(message.len() as u64) + message.len() as u64 + 4
}

// ---------------------------------------------------------------------------------
// Experiments and their reports.

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Time to reach 99% of the hubs that were up when each event was posted, and the
/// bytes it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Propagation {
    /// Hubs, clusters, long links.
    pub town: (usize, usize, usize),
    /// Events posted (one every `every_ms`, at random hubs that are up).
    pub events: usize,
    /// Median event size, bytes.
    pub event_bytes: u64,
    /// Milliseconds to reach 99% of the target hubs: p50, p99, max over events.
    pub reach99_ms: (f64, f64, f64),
    /// Milliseconds to reach every target hub still up at the end: p50, p99, max.
    pub reach_all_ms: (f64, f64, f64),
    /// Events that did not reach 99% within the window.
    pub not_reached99: usize,
    /// Received bytes per hub per event: gossip data, gossip control, sync reconcile,
    /// sync fetch.
    pub bytes_per_hub_per_event: [f64; CATS],
    /// Gossip copies received per hub per event (1 is the minimum).
    pub copies_per_hub_per_event: f64,
    /// First arrivals: local, push, pull (IHAVE/IWANT), sync.
    pub first_via: [u64; 4],
    /// Length of the measured window, s.
    pub window_s: f64,
    /// Hubs up at the end.
    pub up_at_end: usize,
    /// Hubs that were up but not connected to the origin when an event was posted
    /// (a LAN cut off by its long-link hub being down), mean over events.
    pub cut_off: f64,
    /// The run's counters.
    pub counters: Counters,
}

impl Propagation {
    /// Total received bytes per hub per event, and that over the event size.
    pub fn total(&self) -> (f64, f64) {
        let t: f64 = self.bytes_per_hub_per_event.iter().sum();
        (t, t / self.event_bytes as f64)
    }
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (total, ratio) = self.total();
        let b = &self.bytes_per_hub_per_event;
        writeln!(
            f,
            "town: {} hubs in {} LANs, {} long links; {} events of {} bytes; window {:.0} s; {} hubs up at the end; {:.1} up but cut off from the origin per event",
            self.town.0, self.town.1, self.town.2, self.events, self.event_bytes, self.window_s, self.up_at_end, self.cut_off
        )?;
        writeln!(
            f,
            "reach 99%: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; not reached: {}",
            self.reach99_ms.0, self.reach99_ms.1, self.reach99_ms.2, self.not_reached99
        )?;
        writeln!(
            f,
            "reach all: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.reach_all_ms.0, self.reach_all_ms.1, self.reach_all_ms.2
        )?;
        writeln!(
            f,
            "bytes per hub per event: {total:.0} = {ratio:.1}x the event (gossip data {:.0}, gossip control {:.0}, sync reconcile {:.0}, sync fetch {:.0}); {:.2} gossip copies each",
            b[0], b[1], b[2], b[3], self.copies_per_hub_per_event
        )?;
        writeln!(
            f,
            "first arrivals: push {}, IHAVE/IWANT {}, sync {}; sync sessions {}; duplicate sync arrivals {}; sync requests for held events {}",
            self.first_via[1],
            self.first_via[2],
            self.first_via[3],
            self.counters.sessions,
            self.counters.sync_duplicate_arrivals,
            self.counters.sync_requested_held
        )
    }
}

/// Where and when events are posted: a stream of its own, like churn.
fn posts_rng(seed: u64) -> Rng {
    Rng::new(seed ^ 0x706f_7374_7300)
}

fn ms(t: Micros) -> f64 {
    t as f64 / MS as f64
}

/// Warms the town up (connections, meshes, first syncs), then posts `events` events,
/// one every `every_ms` at a random hub that is up, and runs `drain_s` more seconds.
pub fn propagation(cfg: &Config, events: usize, every_ms: u64, drain_s: u64) -> Propagation {
    let mut sim = Sim::new(cfg.clone());
    sim.run_until(15 * SEC);
    let before = sim.received();
    let start = sim.now();
    let mut posts = posts_rng(cfg.seed);
    let mut posted = Vec::new();
    let mut cut_off = 0usize;
    for i in 0..events {
        sim.run_until(start + i as u64 * every_ms * MS);
        let up: Vec<usize> = (0..sim.hubs()).filter(|h| sim.is_up(*h)).collect();
        if up.is_empty() {
            continue;
        }
        let hub = up[posts.below(up.len())];
        cut_off += up.len() - sim.component(hub).len();
        posted.push(sim.post(hub));
    }
    let end = sim.now() + drain_s * SEC;
    sim.run_until(end);
    let after = sim.received();
    let n = sim.hubs();
    let mut reach99 = Vec::new();
    let mut reach_all = Vec::new();
    let mut not_reached = 0;
    let mut sizes = Vec::new();
    for &ev in &posted {
        sizes.push(sim.event_bytes(ev) as f64);
        let (at, _) = sim.posted(ev);
        let targets = sim.targets(ev);
        let mut times: Vec<f64> = targets
            .iter()
            .filter_map(|h| sim.held_at(*h, ev))
            .map(|t| ms(t - at))
            .collect();
        times = sorted(times);
        let need = (targets.len() as f64 * 0.99).ceil() as usize;
        match times.get(need.saturating_sub(1)) {
            Some(t) if need > 0 => reach99.push(*t),
            _ => not_reached += 1,
        }
        let still_up = targets.iter().filter(|h| sim.is_up(**h)).count();
        let held_up = targets
            .iter()
            .filter(|h| sim.is_up(**h))
            .filter_map(|h| sim.held_at(*h, ev))
            .map(|t| ms(t - at));
        let held_up: Vec<f64> = held_up.collect();
        if held_up.len() == still_up {
            reach_all.push(held_up.into_iter().fold(0.0, f64::max));
        }
    }
    let r99 = sorted(reach99);
    let rall = sorted(reach_all);
    let mut per = [0.0; CATS];
    for h in 0..n {
        for (c, p) in per.iter_mut().enumerate() {
            *p += (after[h][c] - before[h][c]) as f64;
        }
    }
    let denom = (n * posted.len().max(1)) as f64;
    for p in per.iter_mut() {
        *p /= denom;
    }
    let event_bytes = percentile(&sorted(sizes), 50.0) as u64;
    let copies = per[0] / gossip_data_bytes(event_bytes, cfg.topic_len as u64) as f64;
    let trio = |v: &[f64]| {
        (
            percentile(v, 50.0),
            percentile(v, 99.0),
            v.last().copied().unwrap_or(f64::NAN),
        )
    };
    Propagation {
        town: (n, sim.clusters(), sim.long_links()),
        events: posted.len(),
        event_bytes,
        reach99_ms: trio(&r99),
        reach_all_ms: trio(&rall),
        not_reached99: not_reached,
        bytes_per_hub_per_event: per,
        copies_per_hub_per_event: copies,
        first_via: sim.counters.first_via,
        window_s: (end - start) as f64 / SEC as f64,
        up_at_end: (0..n).filter(|h| sim.is_up(*h)).count(),
        cut_off: cut_off as f64 / posted.len().max(1) as f64,
        counters: sim.counters.clone(),
    }
}

/// Traffic to bring the town back to one set after a partition or an absence.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchUp {
    /// Hubs.
    pub hubs: usize,
    /// Events some up hubs lacked when the catch-up began.
    pub missing_events: usize,
    /// Seconds from the heal (or return) until every up hub held every event; `None`
    /// if not within the limit.
    pub converged_s: Option<f64>,
    /// Bytes received by all hubs from the heal (or return) until the catch-up traffic
    /// died down ([`Sim::quiet`]), per [`Cat`]; periodic sync meanwhile included.
    pub bytes: [u64; CATS],
    /// Bytes received by the returning hub (absence), or by the hubs of the smaller
    /// side (partition).
    pub bytes_at_target: u64,
    /// Events posted on one side that a hub of the other side held before the heal
    /// (must be 0).
    pub crossed_early: usize,
    /// The run's counters.
    pub counters: Counters,
}

impl CatchUp {
    /// All bytes received.
    pub fn total(&self) -> u64 {
        self.bytes.iter().sum()
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        writeln!(
            f,
            "{} hubs, {} events missing: converged in {}; {} bytes received in all ({} per hub; gossip data {}, gossip control {}, reconcile {}, fetch {}); at the target {}; duplicate sync arrivals {} (twice through sync {}); crossed early {}",
            self.hubs,
            self.missing_events,
            self.converged_s.map_or("(not within the limit)".to_string(), |s| format!("{s:.1} s")),
            total,
            total / self.hubs as u64,
            self.bytes[0],
            self.bytes[1],
            self.bytes[2],
            self.bytes[3],
            self.bytes_at_target,
            self.counters.sync_duplicate_arrivals,
            self.counters.sync_twice,
            self.crossed_early
        )
    }
}

fn diff(
    after: &[[u64; CATS]],
    before: &[[u64; CATS]],
    hubs: impl Iterator<Item = usize>,
) -> [u64; CATS] {
    let mut out = [0; CATS];
    for h in hubs {
        for c in 0..CATS {
            out[c] += after[h][c] - before[h][c];
        }
    }
    out
}

/// Splits the town in two (clusters by index, half each), posts `per_hub` events per
/// hub on each side over `split_s` seconds, then heals and measures the catch-up.
pub fn partition(cfg: &Config, split_s: u64, per_hub: usize, limit_s: u64) -> CatchUp {
    let mut sim = Sim::new(cfg.clone());
    sim.run_until(15 * SEC);
    let half = sim.clusters() / 2;
    let cluster: Vec<usize> = (0..sim.hubs()).map(|h| sim.cluster_of(h)).collect();
    let side = move |h: usize| cluster[h] < half;
    sim.cut(side.clone());
    let split_at = sim.now();
    let total = sim.hubs() * per_hub;
    let mut posts = posts_rng(cfg.seed);
    let mut posted = Vec::new();
    for i in 0..total {
        sim.run_until(split_at + (i as u64 * split_s * SEC) / total.max(1) as u64);
        let hub = posts.below(sim.hubs());
        if sim.is_up(hub) {
            posted.push(sim.post(hub));
        }
    }
    sim.run_until(split_at + split_s * SEC);
    let crossed_early = posted
        .iter()
        .filter(|&&ev| {
            let origin = sim.posted(ev).1;
            (0..sim.hubs()).any(|h| side(h) != side(origin) && sim.holds(h, ev))
        })
        .count();
    let before = sim.received();
    let heal_at = sim.now();
    sim.heal();
    let ok = sim.run_while_not(heal_at + limit_s * SEC, Sim::converged);
    let converged_s = ok.then(|| (sim.now() - heal_at) as f64 / SEC as f64);
    sim.settle(60 * SEC);
    let after = sim.received();
    let n = sim.hubs();
    let smaller = (0..n).filter(|h| side(*h));
    CatchUp {
        hubs: n,
        missing_events: posted.len(),
        converged_s,
        bytes: diff(&after, &before, 0..n),
        bytes_at_target: diff(&after, &before, smaller).iter().sum(),
        crossed_early,
        counters: sim.counters.clone(),
    }
}

/// One hub (on a LAN, not a long-link end) is away `away_h` hours while the rest of the
/// town writes `per_hub_per_h` events per hub per hour; it comes back and catches up.
pub fn returning_hub(cfg: &Config, away_h: f64, per_hub_per_h: f64, limit_s: u64) -> CatchUp {
    let mut sim = Sim::new(cfg.clone());
    sim.run_until(15 * SEC);
    let lan_only = (0..sim.hubs())
        .find(|h| !sim.links.iter().any(|l| l.long && (l.a == *h || l.b == *h)))
        .unwrap_or(0);
    sim.set_up(lan_only, false);
    let missed = (away_h * per_hub_per_h * (sim.hubs() - 1) as f64).round() as usize;
    let away_ms = (away_h * 3_600_000.0) as u64;
    let mut posts = posts_rng(cfg.seed);
    for i in 0..missed {
        let origin = loop {
            let h = posts.below(sim.hubs());
            if h != lan_only {
                break h;
            }
        };
        let wall = EPOCH_MS + 15_000 + (i as u64 * away_ms) / missed.max(1) as u64;
        sim.preload(origin, wall, lan_only);
    }
    sim.run_until(sim.now() + SEC);
    let before = sim.received();
    let back_at = sim.now();
    sim.set_up(lan_only, true);
    let ok = sim.run_while_not(back_at + limit_s * SEC, Sim::converged);
    let converged_s = ok.then(|| (sim.now() - back_at) as f64 / SEC as f64);
    sim.settle(60 * SEC);
    let after = sim.received();
    let n = sim.hubs();
    CatchUp {
        hubs: n,
        missing_events: missed,
        converged_s,
        bytes: diff(&after, &before, 0..n),
        bytes_at_target: diff(&after, &before, std::iter::once(lan_only))
            .iter()
            .sum(),
        crossed_early: 0,
        counters: sim.counters.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidmesh_protocol::sync::{SyncRequest, SyncResponse};

    #[test]
    fn sizes_match_the_real_encoding() {
        for n in [0usize, 1, 3, 127, 128, 256] {
            let real = SyncRequest::Fetch {
                ids: vec![EventId([7; 32]); n],
            }
            .encode();
            assert_eq!(fetch_bytes(n), real.len() as u64, "fetch of {n}");
        }
        for sizes in [vec![], vec![300u64], vec![100, 200, 5000], vec![64; 200]] {
            let real = SyncResponse::Events {
                events: sizes.iter().map(|s| vec![1u8; *s as usize]).collect(),
            }
            .encode();
            assert_eq!(events_bytes(sizes.iter().copied()), real.len() as u64);
        }
        for len in [0usize, 10, 200, 5000] {
            let real = SyncRequest::Reconcile {
                wall_ms: EPOCH_MS,
                message: vec![0; len],
            }
            .encode();
            assert_eq!(reconcile_bytes(&vec![0; len]), real.len() as u64 + 4);
        }
    }

    #[test]
    fn the_rng_is_the_same_everywhere() {
        let mut r = Rng::new(1);
        let v: Vec<u64> = (0..3).map(|_| r.next_u64() % 1000).collect();
        let mut again = Rng::new(1);
        assert_eq!(
            v,
            (0..3).map(|_| again.next_u64() % 1000).collect::<Vec<_>>()
        );
        assert_ne!(Rng::new(2).next_u64(), Rng::new(1).next_u64());
    }
}
