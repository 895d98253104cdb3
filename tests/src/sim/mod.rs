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
//! checks a returning hub that lacks 312). That is not enough when a hub lacks
//! thousands from many peers at once: several sessions then claim ids in that order,
//! and which session fetches what changes the bytes and the time. So `bench_sim`'s two
//! 300-hub "returning hub" lines (2,392 lacking) vary from run to run (measured: 1.4 to
//! 1.8 s, 2.36 to 2.64 MB, the same spread before and after issue 25's split); every
//! other line is the same, byte for byte.
//!
//! The experiments ([`propagation`], [`partition`], [`returning_hub`]) are what
//! `bench_sim` prints and `docs/reliability.md` reports; [`Config::fetch_once`] off
//! is the node's old way of fetching (no claims: each session fetches whatever the hub
//! does not hold when it checks), kept for comparison.
//!
//! The files, by job: this one holds the shared state (hubs, links, the event queue,
//! [`Sim`] itself); `config.rs` the parameters and [`Rng`]; `bytes.rs` the wire sizes;
//! `world.rs` building the town, the event loop, hubs up and down, links and sending;
//! `gossip.rs` posting and gossipsub; `summaries.rs` the hub summaries on their own
//! topic and mesh (issue 28, off unless [`Config::summaries`]); `sync.rs` the driver of
//! the real [`Session`]; `scenarios.rs` the experiments and their reports;
//! `history.rs` two hubs' catch-up over a long history (10,000,000 events) outside
//! the town; `tests.rs` the unit tests.
//!
//! [`Event`]: aidmesh_protocol::Event

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;

use aidmesh_protocol::session::Session;
use aidmesh_protocol::sync::{SyncRequest, SyncResponse, SyncSet};
use aidmesh_protocol::{EventId, Identity, Timestamp};

mod bytes;
mod config;
mod gossip;
mod history;
mod scenarios;
mod summaries;
mod sync;
#[cfg(test)]
mod tests;
mod world;

use bytes::CATS;
pub use bytes::{events_bytes, fetch_bytes, Cat};
pub use config::{Churn, Config, GossipParams, LinkSpec, Rng};
pub use history::{history, History};
pub use scenarios::{partition, propagation, returning_hub, CatchUp, Propagation};
pub use summaries::SummaryParams;

/// Most events a relay session publishes.
pub use aidmesh_protocol::session::MAX_RELAY;

/// Microseconds of simulated time.
pub type Micros = u64;

const MS: Micros = 1_000;
const SEC: Micros = 1_000_000;
/// Wall clock of the simulation's start (2026-11-30), for event timestamps.
const EPOCH_MS: u64 = 1_796_000_000_000;

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
    /// A hub summary: its hub, its sequence, its size.
    Summary {
        origin: usize,
        seq: u32,
        bytes: u64,
    },
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
    SummaryDue {
        hub: usize,
        life: u64,
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
    /// In the hub summaries' mesh.
    smesh: bool,
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
    /// Our hub summaries.
    own: summaries::Own,
    /// The newest summary sequence held from each hub (only with summaries on).
    latest: Vec<u32>,
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
    /// Hub summaries published.
    pub summaries: u64,
    /// Summary copies that arrived at a hub holding that summary or a newer one.
    pub summary_duplicates: u64,
    /// Summary copies that arrived anywhere.
    pub summary_arrivals: u64,
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
