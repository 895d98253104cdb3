//! The network: libp2p over TCP inside a pnet private network (the community key), then
//! noise and yamux. Gossipsub pushes new events to everyone at once; request-response
//! sync pulls whatever a node missed. No QUIC: pnet does not cover it, and it would be
//! an unprotected way in.
//!
//! One task owns the swarm ([`run`]); the rest of the node talks to it through
//! [`NetHandle`]. It never waits on disk: storing, sync and the peer book run on the
//! ingest worker ([`crate::ingest`]), whose results come back to the task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aidmesh_protocol::event::MAX_EVENT_BYTES;
use aidmesh_protocol::Event;
use futures::StreamExt;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::upgrade::Version;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identity, noise, tcp, yamux, Multiaddr, PeerId, Swarm,
    Transport,
};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::engine::{ClockKey, Engine, Origin};
use crate::ingest::{Done, Job, Worker};
use crate::sync::{self, Codec, Counters, Next};

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Static peers, dialled and redialled with back-off.
    pub peers: Vec<Multiaddr>,
    /// The community's pre-shared key.
    pub psk: [u8; 32],
    /// The community's gossip topic.
    pub topic: String,
    /// How often to re-run anti-entropy with each connected peer.
    pub sync_every: Duration,
}

/// A failure to start networking.
#[derive(Debug, Error)]
pub enum NetError {
    /// libp2p could not be set up.
    #[error("network setup failed: {0}")]
    Setup(String),
    /// An address could not be listened on.
    #[error("cannot listen on {addr}: {reason}. Is another node using that port? Pick another with --listen")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// One connected peer, as shown in status.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// libp2p peer id.
    pub peer_id: String,
    /// Address of the connection.
    pub addr: String,
    /// Wall-clock ms of the last completed sync with it.
    pub last_sync_ms: Option<u64>,
}

/// What the network task reports.
#[derive(Debug, Clone, Serialize)]
pub struct NetStatus {
    /// Our peer id.
    pub peer_id: String,
    /// Addresses we listen on.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerStatus>,
    /// Addresses whose connection failed the community handshake (issue 15).
    pub refused: Vec<crate::refused::Refused>,
    /// Addresses this node dialled whose answer failed the community handshake: nodes
    /// of another community (issue 15, the dialling side).
    pub refused_by: Vec<crate::refused::Refused>,
    /// Bytes of sync traffic received.
    pub sync_bytes_in: u64,
    /// Bytes of sync traffic sent.
    pub sync_bytes_out: u64,
}

/// Requests to the network task.
#[derive(Debug)]
pub enum Command {
    /// Dial a peer found by discovery (or given by a user).
    Dial(Multiaddr),
    /// Report status.
    Status(oneshot::Sender<NetStatus>),
}

/// How the rest of the node reaches the network task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    /// Commands.
    pub commands: mpsc::Sender<Command>,
    /// Our peer id.
    pub peer_id: PeerId,
}

impl NetHandle {
    /// Asks the network task for its status; `None` if it does not answer within 2 s
    /// (stopping, or busy), so that callers such as the status page never hang.
    pub async fn status(&self) -> Option<NetStatus> {
        let ask = async {
            let (tx, rx) = oneshot::channel();
            self.commands.send(Command::Status(tx)).await.ok()?;
            rx.await.ok()
        };
        tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .ok()
            .flatten()
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pending_per_ip: crate::pending::PendingPerIp,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<Codec>,
}

/// Connection limits: a hub LAN has tens of nodes, not thousands. Connections in their
/// handshake are also bounded per remote address ([`crate::pending`]), so one host
/// cannot take every pending slot.
fn limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(64))
        .with_max_pending_outgoing(Some(32))
        .with_max_established(Some(128))
        .with_max_established_per_peer(Some(2))
}

/// Gossipsub message id = event id, so the same event relayed by many peers is one
/// message. Undecodable data gets a hash of its bytes (and will be rejected).
fn message_id(m: &gossipsub::Message) -> MessageId {
    match Event::decode(&m.data) {
        Ok(e) => MessageId::from(e.id().0.to_vec()),
        Err(_) => MessageId::from(blake3::hash(&m.data).as_bytes().to_vec()),
    }
}

fn gossipsub(topic: &TopicHash) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(MAX_EVENT_BYTES + 1024)
        .heartbeat_interval(Duration::from_millis(700))
        .build()
        .map_err(|e| e.to_string())?;
    // Events are signed by their authors; gossipsub's own signatures would add nothing.
    let mut b = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)?;
    // Peer scoring: an invalid event costs a peer heavily, so a forger is quickly
    // graylisted. Delivery-rate penalties are off: a quiet LAN is normal, and many
    // test nodes share one IP, so the IP-colocation penalty is off too.
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 1.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(topic.clone(), topic_params);
    b.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
    Ok(b)
}

/// Time for the pnet handshake (24 bytes each way) on a new connection.
pub const PNET_DEADLINE: Duration = Duration::from_secs(3);
/// Time for the whole upgrade of a new connection (pnet, noise, yamux).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// The peer transport: TCP inside a pnet private network keyed by the community key,
/// then noise and yamux. Public so that test peers speak exactly the node's stack.
pub fn transport(
    key: &identity::Keypair,
    psk: [u8; 32],
) -> Result<
    libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    transport_noting(key, psk, PnetPassed::default())
}

/// Outbound connections (remote IP and TCP port) whose pnet exchange completed, so
/// that a dial which then times out can be told apart from a silent port: a node of
/// another community passes the exchange (any key does), then often waits in silence
/// for bytes that never make sense to it. Bounded: cleared when it grows past 256.
#[derive(Debug, Clone, Default)]
pub struct PnetPassed(Arc<std::sync::Mutex<HashSet<(std::net::IpAddr, u16)>>>);

impl PnetPassed {
    fn note(&self, addr: &Multiaddr) {
        if let Some(k) = ip_port(addr) {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if s.len() >= 256 {
                s.clear();
            }
            s.insert(k);
        }
    }

    /// Whether the pnet exchange with `addr` completed since the last call; forgets it.
    fn take(&self, addr: &Multiaddr) -> bool {
        ip_port(addr).is_some_and(|k| self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&k))
    }
}

fn ip_port(addr: &Multiaddr) -> Option<(std::net::IpAddr, u16)> {
    let port = addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })?;
    Some((remote_ip(addr)?, port))
}

/// [`transport`], noting in `passed` every outbound connection whose pnet exchange
/// completed.
fn transport_noting(
    key: &identity::Keypair,
    psk: [u8; 32],
    passed: PnetPassed,
) -> Result<
    libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let psk = PreSharedKey::new(psk);
    Ok(
        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
            .and_then(move |socket, endpoint| {
                let passed = passed.clone();
                async move {
                    // A peer of the community sends its pnet nonce at once; a socket held
                    // open in silence is dropped soon, freeing its pending slot.
                    let out =
                        tokio::time::timeout(PNET_DEADLINE, PnetConfig::new(psk).handshake(socket))
                            .await
                            .map_err(|_| {
                                std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "no private-network handshake in time",
                                )
                            })?
                            .map_err(std::io::Error::other)?;
                    if let libp2p::core::ConnectedPoint::Dialer { address, .. } = &endpoint {
                        passed.note(address);
                    }
                    Ok::<_, std::io::Error>(out)
                }
            })
            .upgrade(Version::V1Lazy)
            .authenticate(noise::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .timeout(HANDSHAKE_DEADLINE)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    )
}

fn build_swarm(
    keypair: identity::Keypair,
    cfg: &NetConfig,
    counters: Arc<Counters>,
    passed: PnetPassed,
) -> Result<Swarm<Behaviour>, NetError> {
    let topic = IdentTopic::new(cfg.topic.clone()).hash();
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(|key| transport_noting(key, cfg.psk, passed))
        .map_err(|e| setup(&e))?
        .with_behaviour(|_| {
            Ok(Behaviour {
                blocked: allow_block_list::Behaviour::default(),
                pending_per_ip: crate::pending::PendingPerIp::default(),
                limits: connection_limits::Behaviour::new(limits()),
                gossipsub: gossipsub(&topic)?,
                sync: request_response::Behaviour::with_codec(
                    Codec::new(counters),
                    [(sync::PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(30))
                        .with_max_concurrent_streams(32),
                ),
            })
        })
        .map_err(|e| setup(&e))?
        // libp2p's default idle timeout (10 s) drops quiet LAN links; keep them.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

/// Back-off state of one address we want to be connected to.
#[derive(Debug, Clone)]
struct Dial {
    failures: u32,
    next_at: Instant,
    /// A static peer (`--peer`, peers file): never evicted.
    pinned: bool,
    /// A dial to it ever succeeded.
    reached: bool,
    /// When it was added (the oldest of equals goes first).
    added: Instant,
}

impl Dial {
    fn new(now: Instant, pinned: bool) -> Dial {
        Dial {
            failures: 0,
            next_at: now,
            pinned,
            reached: false,
            added: now,
        }
    }
}

/// Which address to drop to make room in a full dial list: never a static peer;
/// first those never reached, then the most failures, then the oldest. Spoofed mDNS
/// adverts and made-up addresses are never reached, so a real peer that connected is
/// kept and a new address always finds room.
fn eviction_candidate(wanted: &HashMap<Multiaddr, Dial>) -> Option<Multiaddr> {
    wanted
        .iter()
        .filter(|(_, d)| !d.pinned)
        .min_by_key(|(_, d)| (d.reached, std::cmp::Reverse(d.failures), d.added))
        .map(|(a, _)| a.clone())
}

/// How long a peer that broke the sync protocol is kept out.
pub const BAN: Duration = Duration::from_secs(600);

fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.min(6)).min(60))
}

/// Starts networking: builds the swarm, listens, and spawns the task that runs it.
pub fn start(
    engine: Arc<Engine>,
    keypair: identity::Keypair,
    cfg: NetConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), NetError> {
    let counters = Arc::new(Counters::default());
    let pnet_passed = PnetPassed::default();
    let mut swarm = build_swarm(keypair, &cfg, counters.clone(), pnet_passed.clone())?;
    let topic = IdentTopic::new(cfg.topic.clone());
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| NetError::Setup(e.to_string()))?;
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    }
    let (done_tx, done) = mpsc::unbounded_channel();
    let worker = Worker::start(engine.clone(), done_tx)
        .map_err(|e| NetError::Setup(format!("cannot start the ingest thread: {e}")))?;
    let (tx, rx) = mpsc::channel(256);
    let handle = NetHandle {
        commands: tx,
        peer_id: *swarm.local_peer_id(),
    };
    let now = Instant::now();
    let task = Task {
        events: engine.subscribe(),
        engine,
        swarm,
        topic,
        counters,
        sessions: HashMap::new(),
        session_generation: 0,
        relay_due: HashSet::new(),
        pending: HashMap::new(),
        worker,
        done,
        peer_addr: HashMap::new(),
        wanted: cfg
            .peers
            .iter()
            .map(|a| (a.clone(), Dial::new(now, true)))
            .collect(),
        dialing: HashMap::new(),
        last_sync: HashMap::new(),
        peer_ip: HashMap::new(),
        bans: HashMap::new(),
        refused: Default::default(),
        refused_by: Default::default(),
        pnet_passed,
        sync_every: cfg.sync_every,
        commands: rx,
        shutdown,
    };
    Ok((handle, tokio::spawn(task.run())))
}

struct Task {
    engine: Arc<Engine>,
    swarm: Swarm<Behaviour>,
    topic: IdentTopic,
    counters: Arc<Counters>,
    events: broadcast::Receiver<crate::engine::NewEvent>,
    /// Our sync session with each peer: its generation (so a result for a session
    /// that ended meanwhile is dropped) and the session, `None` while the worker has it.
    sessions: HashMap<PeerId, (u64, Option<Box<sync::Session>>)>,
    session_generation: u64,
    /// Peers to run a relay session with as soon as their current session ends.
    relay_due: HashSet<PeerId>,
    /// The id of each session's outstanding request.
    pending: HashMap<OutboundRequestId, PeerId>,
    /// Where disk work goes.
    worker: Worker,
    /// Results of that work.
    done: mpsc::UnboundedReceiver<Done>,
    /// Remote address of each connected peer's latest connection.
    peer_addr: HashMap<PeerId, Multiaddr>,
    /// Addresses we keep dialling (static peers, discovered peers) with back-off.
    wanted: HashMap<Multiaddr, Dial>,
    /// Dials in flight, by connection id, to the address in `wanted`.
    dialing: HashMap<libp2p::swarm::ConnectionId, Multiaddr>,
    /// When the last session with each peer finished (monotonic and wall clock).
    last_sync: HashMap<PeerId, (Instant, u64)>,
    /// Remote IP of each connected peer: the key of its vote in the mesh clock, so one
    /// machine cannot outvote the others by making up peer ids.
    peer_ip: HashMap<PeerId, std::net::IpAddr>,
    /// Peers kept out after breaking the sync protocol, until the given time.
    bans: HashMap<PeerId, Instant>,
    /// Nodes of another community that tried to connect.
    refused: crate::refused::RefusedLog,
    /// Nodes of another community that this node dialled.
    refused_by: crate::refused::RefusedLog,
    /// Outbound connections that passed the pnet exchange (see [`PnetPassed`]).
    pnet_passed: PnetPassed,
    sync_every: Duration,
    commands: mpsc::Receiver<Command>,
    shutdown: watch::Receiver<bool>,
}

/// Most addresses kept for (re)dialling; beyond this a new one replaces the worst
/// (see [`eviction_candidate`]).
pub const MAX_WANTED: usize = 64;

/// Whether `addr` is something this node can dial: an IP or DNS host, a TCP port, and
/// optionally a peer id.
pub fn dialable(addr: &Multiaddr) -> bool {
    let mut host = false;
    let mut tcp = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(_)
            | Protocol::Ip6(_)
            | Protocol::Dns(_)
            | Protocol::Dns4(_)
            | Protocol::Dns6(_) => host = true,
            Protocol::Tcp(port) => tcp = port != 0,
            Protocol::P2p(_) => {}
            _ => return false,
        }
    }
    host && tcp
}

/// Strips a trailing `/p2p/<id>` and returns it.
fn split_peer(addr: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
    let mut a = addr.clone();
    match a.pop() {
        Some(Protocol::P2p(p)) => (a, Some(p)),
        Some(other) => {
            a.push(other);
            (a, None)
        }
        None => (a, None),
    }
}

/// Whether a failed dial reached a node of another community. The pnet nonce exchange
/// passes whatever the key (a failure there reads "Handshake error"); with another key
/// the bytes after it are garbled, so the upgrade that follows (multistream-select and
/// noise) fails: libp2p reports that as "Handshake failed" or "Multistream select
/// failed". Often the other node instead waits in silence for bytes that make sense
/// to it, and the upgrade times out: that counts when the pnet exchange had completed
/// (`pnet_passed`). A refused or silent port, or a peer that drops us before the pnet
/// exchange (its connection limits), is not counted.
fn other_community(error: &libp2p::swarm::DialError, pnet_passed: bool) -> bool {
    let libp2p::swarm::DialError::Transport(errors) = error else {
        return false;
    };
    errors.iter().any(|(_, e)| {
        let mut cur: Option<&dyn std::error::Error> = Some(e);
        while let Some(err) = cur {
            let text = err.to_string();
            if text.contains("Handshake failed")
                || text.contains("Multistream select failed")
                || (pnet_passed && text.contains("Timeout has been reached"))
            {
                return true;
            }
            cur = err.source();
        }
        false
    })
}

fn remote_ip(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

/// A host for the mesh clock's one-vote-per-host rule: an IPv4 address, or an IPv6 /64
/// (one machine or home network gets a whole /64 and may pick any address in it).
fn clock_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Task {
    /// The mesh-clock key of a peer: its id, and its host, the IP address (or, unknown,
    /// its id). The mesh clock counts one vote per host.
    fn clock_key(&self, peer: &PeerId) -> ClockKey {
        ClockKey {
            peer: peer.to_bytes(),
            host: match self.peer_ip.get(peer) {
                Some(ip) => clock_host(*ip).into_bytes(),
                None => peer.to_bytes(),
            },
        }
    }

    /// Disconnects a peer that broke the protocol and keeps it out for [`BAN`].
    fn ban(&mut self, peer: PeerId, reason: &str) {
        warn!(%peer, reason, "peer broke the sync protocol; disconnecting it for {} min", BAN.as_secs() / 60);
        self.sessions.remove(&peer);
        self.bans.insert(peer, Instant::now() + BAN);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                ev = self.events.recv() => match ev {
                    Ok(ne) => self.on_new_event(ne),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(skipped = n, "gossip fell behind; anti-entropy will cover the skipped events");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(cmd) = self.commands.recv() => self.on_command(cmd),
                Some(done) = self.done.recv() => self.on_done(done),
                _ = tick.tick() => self.on_tick(),
                _ = self.shutdown.changed() => break,
            }
        }
        info!("network stopped");
    }

    fn on_new_event(&mut self, ne: crate::engine::NewEvent) {
        // Events from gossip are forwarded by gossipsub itself once accepted; events
        // fetched by sync are handed on by relay sessions (`relay_caught_up`).
        if !matches!(ne.origin, Origin::Local | Origin::Import) {
            return;
        }
        let bytes = ne.event.into_bytes();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::trace!("no peer subscribed yet; anti-entropy will deliver the event");
            }
            Err(e) => warn!(error = %e, "could not gossip an event; anti-entropy will deliver it"),
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial(addr) => {
                let (_, peer) = split_peer(&addr);
                if peer == Some(*self.swarm.local_peer_id()) {
                    return;
                }
                if peer.is_some_and(|p| self.swarm.is_connected(&p)) {
                    return;
                }
                if !dialable(&addr) {
                    debug!(%addr, "not a dialable TCP address; ignored");
                    return;
                }
                if self.wanted.len() >= MAX_WANTED && !self.wanted.contains_key(&addr) {
                    let Some(worst) = eviction_candidate(&self.wanted) else {
                        warn!(%addr, "already keeping {MAX_WANTED} static peers to dial; ignoring a new address");
                        return;
                    };
                    debug!(dropped = %worst, added = %addr, "dial list full; dropped the address least likely to work");
                    self.wanted.remove(&worst);
                }
                self.wanted
                    .entry(addr)
                    .or_insert_with(|| Dial::new(Instant::now(), false));
                // Dial now rather than at the next tick.
                self.on_tick();
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&self) -> NetStatus {
        let mut peers: Vec<PeerStatus> = self
            .swarm
            .connected_peers()
            .map(|p| PeerStatus {
                peer_id: p.to_string(),
                addr: self
                    .peer_addr
                    .get(p)
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                last_sync_ms: self.last_sync.get(p).map(|(_, ms)| *ms),
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        NetStatus {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen: self.swarm.listeners().map(|a| a.to_string()).collect(),
            peers,
            refused: self.refused.list(),
            refused_by: self.refused_by.list(),
            sync_bytes_in: self
                .counters
                .bytes_in
                .load(std::sync::atomic::Ordering::Relaxed),
            sync_bytes_out: self
                .counters
                .bytes_out
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.bans.remove(&p);
            self.swarm.behaviour_mut().blocked.unblock_peer(p);
        }
        // Redial what we want and are not connected to, with back-off.
        let due: Vec<Multiaddr> = self
            .wanted
            .iter()
            .filter(|(a, d)| d.next_at <= now && !self.dialing.values().any(|x| x == *a))
            .map(|(a, _)| a.clone())
            .filter(|a| split_peer(a).1.is_none_or(|p| !self.swarm.is_connected(&p)))
            .collect();
        for addr in due {
            let (plain, peer) = split_peer(&addr);
            if peer.is_none() && self.connected_via(&plain) {
                continue;
            }
            let opts = match peer {
                Some(p) => DialOpts::peer_id(p).addresses(vec![plain]).build(),
                None => DialOpts::unknown_peer_id().address(plain).build(),
            };
            let cid = opts.connection_id();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%addr, error = %e, "dial not started");
                self.dial_failed(&addr);
            } else {
                self.dialing.insert(cid, addr);
            }
        }
        // Periodic anti-entropy with every connected peer.
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for p in peers {
            let stale = self
                .last_sync
                .get(&p)
                .is_none_or(|(at, _)| now.duration_since(*at) >= self.sync_every);
            if stale && !self.sessions.contains_key(&p) {
                self.start_sync(p, false);
            }
        }
    }

    /// Whether an established connection goes to this (peer-less) address.
    fn connected_via(&self, plain: &Multiaddr) -> bool {
        self.peer_addr
            .iter()
            .any(|(p, a)| a == plain && self.swarm.is_connected(p))
    }

    fn dial_failed(&mut self, addr: &Multiaddr) {
        if let Some(d) = self.wanted.get_mut(addr) {
            d.failures += 1;
            d.next_at = Instant::now() + backoff(d.failures);
        }
    }

    /// Starts a session with `peer` on the worker (its first request goes out when
    /// the worker has computed our set). A relay session also notes what the peer
    /// lacks, to gossip it on (see [`Task::relay_caught_up`]).
    fn start_sync(&mut self, peer: PeerId, relay: bool) {
        self.session_generation += 1;
        let generation = self.session_generation;
        let job = Job::Start {
            peer,
            generation,
            relay,
        };
        if self.worker.offer(job).is_err() {
            debug!(%peer, "ingest queue full; sync starts at the next round");
            return;
        }
        self.sessions.insert(peer, (generation, None));
    }

    fn finish_sync(&mut self, peer: PeerId) {
        self.sessions.remove(&peer);
        let wall = self.engine.wall_ms();
        self.last_sync.insert(peer, (Instant::now(), wall));
        // The peer book is a cache: if the queue is full, this record is skipped.
        let _ = self.worker.offer(Job::Synced {
            peer,
            wall_ms: wall,
        });
        if self.relay_due.remove(&peer) && self.swarm.is_connected(&peer) {
            self.start_sync(peer, true);
        }
    }

    /// We just caught up from `from`: hand it on to every other connected peer at
    /// once rather than at their next periodic sync. Gossipsub does not forward what
    /// sync fetched, and the peers cannot know to ask. So a relay session is run with
    /// each: its reconciliation tells us exactly which events that peer lacks (nothing
    /// it already has is sent again), and those, up to [`sync::MAX_RELAY`], are
    /// published by gossip (message id = event id, so none loops).
    fn relay_caught_up(&mut self, from: PeerId) {
        let others: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| **p != from)
            .copied()
            .collect();
        for p in others {
            if self.sessions.contains_key(&p) {
                self.relay_due.insert(p);
            } else {
                self.start_sync(p, true);
            }
        }
    }

    /// Publishes events a peer lacks (found by a relay session) by gossip.
    fn gossip_lacking(&mut self, peer: PeerId, lacking: Vec<Vec<u8>>, of: usize) {
        let n = lacking.len();
        for bytes in lacking {
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(self.topic.clone(), bytes)
            {
                Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
                Err(e) => {
                    debug!(error = %e, "could not relay an event; anti-entropy will deliver it");
                }
            }
        }
        if of > n {
            info!(%peer, relayed = n, lacking = of, "relayed caught-up events; the peer fetches the rest at its next sync");
        } else {
            info!(%peer, relayed = n, "relayed caught-up events the peer lacked");
        }
    }

    /// Whether `generation` is still `peer`'s current session.
    fn current(&self, peer: &PeerId, generation: u64) -> bool {
        self.sessions
            .get(peer)
            .is_some_and(|(g, _)| *g == generation)
    }

    /// Acts on what the worker did.
    fn on_done(&mut self, done: Done) {
        match done {
            Done::Gossip {
                id,
                source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Done::Served {
                peer,
                channel,
                response,
                misbehaved,
            } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response)
                    .is_err()
                {
                    debug!(%peer, "sync response not sent: connection closed");
                }
                if misbehaved {
                    self.ban(peer, "malformed reconciliation message");
                }
            }
            Done::Started {
                peer,
                generation,
                result,
            } => {
                if !self.current(&peer, generation) {
                    return;
                }
                match result {
                    Ok((session, req)) if self.swarm.is_connected(&peer) => {
                        let rid = self.swarm.behaviour_mut().sync.send_request(&peer, req);
                        self.pending.insert(rid, peer);
                        self.sessions.insert(peer, (generation, Some(session)));
                    }
                    Ok(_) => {
                        self.sessions.remove(&peer);
                    }
                    Err(e) => {
                        warn!(%peer, error = %e, "could not start sync");
                        self.sessions.remove(&peer);
                    }
                }
            }
            Done::Stepped {
                peer,
                generation,
                session,
                next,
                lacking,
            } => {
                if !self.current(&peer, generation) {
                    return;
                }
                self.sessions.insert(peer, (generation, Some(session)));
                match next {
                    Ok(Next::Send(req)) => {
                        let rid = self.swarm.behaviour_mut().sync.send_request(&peer, req);
                        self.pending.insert(rid, peer);
                    }
                    Ok(Next::Done { summary: s, millis }) => {
                        if s.fetched > 0 || s.rejected > 0 {
                            info!(%peer, fetched = s.fetched, rejected = s.rejected, deferred = s.deferred, rounds = s.rounds, ms = millis, "synced");
                        } else if s.deferred > 0 {
                            // Repeats every round until our clock catches up: debug.
                            debug!(%peer, deferred = s.deferred, rounds = s.rounds, "in sync but for events ahead of our clock (set aside until then)");
                        } else {
                            debug!(%peer, rounds = s.rounds, "in sync");
                        }
                        self.finish_sync(peer);
                        if !lacking.is_empty() {
                            self.gossip_lacking(peer, lacking, s.lacking);
                        }
                        if s.fetched > 0 {
                            self.relay_caught_up(peer);
                        }
                    }
                    Err(f) if f.misbehaved => {
                        self.finish_sync(peer);
                        self.ban(peer, &f.reason);
                    }
                    Err(f) => {
                        warn!(%peer, error = %f.reason, "sync stopped");
                        self.finish_sync(peer);
                    }
                }
            }
        }
    }

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                connection_id,
                ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                if endpoint.is_dialer() {
                    // A member: a later timeout to this address proves nothing.
                    self.pnet_passed.take(&addr);
                }
                if let Some(wanted) = self.dialing.remove(&connection_id) {
                    if let Some(d) = self.wanted.get_mut(&wanted) {
                        d.failures = 0;
                        d.reached = true;
                    }
                }
                if let Some(ip) = remote_ip(&addr) {
                    self.peer_ip.insert(peer_id, ip);
                }
                if num_established.get() == 1 {
                    info!(peer = %peer_id, %addr, "connected");
                    self.peer_addr.insert(peer_id, addr.clone());
                    let _ = self.worker.offer(Job::Connected {
                        peer: peer_id,
                        addr: addr.to_string(),
                    });
                    if !self.sessions.contains_key(&peer_id) {
                        self.start_sync(peer_id, false);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "disconnected");
                self.sessions.remove(&peer_id);
                self.relay_due.remove(&peer_id);
                self.engine.forget_peer_clock(&peer_id.to_bytes());
                self.peer_ip.remove(&peer_id);
                self.peer_addr.remove(&peer_id);
                // Redial wanted addresses of this peer soon.
                let soon = Instant::now() + Duration::from_secs(1);
                for (a, d) in self.wanted.iter_mut() {
                    let p = split_peer(a).1;
                    if p == Some(peer_id) || p.is_none() {
                        d.next_at = d.next_at.max(soon);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(addr) = self.dialing.remove(&connection_id) {
                    let failures = self.wanted.get(&addr).map_or(0, |d| d.failures + 1);
                    warn!(%addr, peer = ?peer_id, failures, error = %error,
                        "could not connect (if this keeps failing: is the other node in the same community, with the same passphrase?)");
                    let passed = self.pnet_passed.take(&addr);
                    if let (true, Some(ip)) = (other_community(&error, passed), remote_ip(&addr)) {
                        self.refused_by.note(ip, self.engine.wall_ms());
                    }
                    self.dial_failed(&addr);
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error: libp2p::swarm::ListenError::Denied { .. },
                ..
            } => {
                debug!(from = %send_back_addr, "refused a connection (banned peer or connection limit)");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                warn!(from = %send_back_addr, error = %error,
                    "a connection attempt failed: most likely a node with a different community key");
                // Another key passes the pnet nonce exchange, then garbles the bytes
                // after it, so protocol negotiation fails: only that is counted, not a
                // silent socket, a reset or a peer that gave up mid-handshake.
                let other_key = matches!(&error, libp2p::swarm::ListenError::Transport(_))
                    && error.to_string().contains("negotiate");
                if let (true, Some(ip)) = (other_key, remote_ip(&send_back_addr)) {
                    self.refused.note(ip, self.engine.wall_ms());
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // Validated and stored on the worker; gossipsub holds the message (and
                // does not forward it) until the verdict comes back in `on_done`.
                let job = Job::Gossip {
                    data: message.data,
                    id: message_id,
                    source: propagation_source,
                };
                if let Err(Job::Gossip { id, source, .. }) = self.worker.offer(job).map_err(|j| *j)
                {
                    debug!(peer = %source, "ingest queue full; anti-entropy will fetch this event");
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync(ev),
            _ => {}
        }
    }

    fn on_sync(
        &mut self,
        ev: request_response::Event<
            aidmesh_protocol::sync::SyncRequest,
            aidmesh_protocol::sync::SyncResponse,
        >,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let job = Job::Serve {
                        peer,
                        clock_key: self.clock_key(&peer),
                        request,
                        channel,
                    };
                    if let Err(Job::Serve { channel, .. }) = self.worker.offer(job).map_err(|j| *j)
                    {
                        let busy = aidmesh_protocol::sync::SyncResponse::Refused {
                            reason: "busy; try again later".into(),
                        };
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.pending.remove(&request_id);
                    let clock_key = self.clock_key(&peer);
                    let Some((generation, slot)) = self.sessions.get_mut(&peer) else {
                        return;
                    };
                    let Some(session) = slot.take() else {
                        return;
                    };
                    let job = Job::Step {
                        peer,
                        generation: *generation,
                        clock_key,
                        session,
                        response,
                    };
                    if self.worker.offer(job).is_err() {
                        debug!(%peer, "ingest queue full; sync runs again at the next round");
                        self.finish_sync(peer);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending.remove(&request_id);
                debug!(%peer, error = %error, "sync request failed");
                self.finish_sync(peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "sync request from peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use aidmesh_protocol::{Body, Category, Identity, Place, Post, Urgency};

    fn engine(dir: &std::path::Path, seed: u8) -> Arc<Engine> {
        let store = Store::open(dir).unwrap();
        Arc::new(Engine::open(store, Identity::from_seed([seed; 32]), "t".into(), 0).unwrap())
    }

    fn need(title: &str) -> Body {
        Body::Need(Post {
            title: title.into(),
            category: Category::Water,
            details: String::new(),
            quantity: None,
            unit: String::new(),
            urgency: Urgency::Normal,
            place: Place::default(),
            contact: String::new(),
            expires_ms: None,
            related: None,
        })
    }

    async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 20 s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_network_task_keeps_answering_while_the_store_is_stalled() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ea, eb) = (engine(da.path(), 1), engine(db.path(), 2));
        let (_stop, stop) = watch::channel(false);
        let cfg = |peers| NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            peers,
            psk: [7; 32],
            topic: "t".into(),
            sync_every: Duration::from_secs(1),
        };
        let key = identity::Keypair::generate_ed25519;
        let (ha, _ta) = start(ea.clone(), key(), cfg(vec![]), stop.clone()).unwrap();
        let listen = until("a to listen", async || {
            ha.status().await.and_then(|s| s.listen.first().cloned())
        })
        .await;
        let a_addr: Multiaddr = format!("{listen}/p2p/{}", ha.peer_id).parse().unwrap();
        let (hb, _tb) = start(eb.clone(), key(), cfg(vec![a_addr]), stop.clone()).unwrap();
        until("b to connect to a", async || {
            (hb.status().await?.peers.len() == 1).then_some(())
        })
        .await;
        ea.post(need("first")).unwrap();
        until("b to get the first event", async || {
            (eb.len() == 1).then_some(())
        })
        .await;

        // b's disk stalls while a's events arrive by gossip and sync.
        // (Held on a thread of its own: a lock guard must not live across awaits.)
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held_tx, held) = std::sync::mpsc::channel();
        let staller = {
            let eb = eb.clone();
            std::thread::spawn(move || {
                let _stalled = eb.store().stall();
                let _ = held_tx.send(());
                let _ = released.recv();
            })
        };
        held.recv().unwrap();
        let ea2 = ea.clone();
        tokio::task::spawn_blocking(move || ea2.post(need("second")).unwrap())
            .await
            .unwrap();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let status = hb.status().await;
            assert!(
                status.is_some_and(|s| s.peers.len() == 1),
                "b's network task stopped answering while its store was stalled"
            );
        }
        drop(release);
        staller.join().unwrap();
        until(
            "b to store the second event once its disk is back",
            async || (eb.len() == 2).then_some(()),
        )
        .await;
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_full_dial_list_drops_unreached_failing_entries_first() {
        let t0 = Instant::now();
        let mut wanted = HashMap::new();
        wanted.insert(addr(1), Dial::new(t0, true));
        let mut real = Dial::new(t0, false);
        real.reached = true;
        real.failures = 3;
        wanted.insert(addr(2), real);
        let mut spoofed = Dial::new(t0 + Duration::from_secs(1), false);
        spoofed.failures = 2;
        wanted.insert(addr(3), spoofed);
        wanted.insert(addr(4), Dial::new(t0, false));
        // Never reached, most failures.
        assert_eq!(eviction_candidate(&wanted), Some(addr(3)));
        wanted.remove(&addr(3));
        // Never reached, even without failures, before a peer that answered once.
        assert_eq!(eviction_candidate(&wanted), Some(addr(4)));
        wanted.remove(&addr(4));
        assert_eq!(eviction_candidate(&wanted), Some(addr(2)));
        wanted.remove(&addr(2));
        // A static peer is never dropped.
        assert_eq!(eviction_candidate(&wanted), None);
    }

    #[test]
    fn one_ipv6_network_is_one_clock_host() {
        let a = clock_host("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = clock_host("2001:db8:1:2:bbbb:cccc:dddd:eeee".parse().unwrap());
        let other = clock_host("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b, "privacy addresses of one /64 are one vote");
        assert_ne!(a, other);
        assert_eq!(clock_host("::ffff:10.0.0.2".parse().unwrap()), "10.0.0.2");
        assert_ne!(
            clock_host("10.0.0.2".parse().unwrap()),
            clock_host("10.0.0.3".parse().unwrap())
        );
    }
}
