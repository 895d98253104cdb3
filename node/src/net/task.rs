//! The network task: the one loop that owns the swarm. It reacts to swarm events,
//! commands from the rest of the node and results from the ingest worker, and wakes
//! on its own only when something is due (a dial, a ban to lift, a periodic sync, a
//! hub summary): there is no fixed tick. It never waits on disk: storing, sync steps
//! and the peer book are jobs for the ingest worker ([`super::ingest`]). It keeps the
//! connections, dials and peer exchange itself; the sync driver
//! ([`super::sessions`]) and the hub summaries ([`super::summaries`]) each keep
//! their own state, and the loop hands them their events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

use super::dialer::{Added, Dialer, BAN, MAX_WANTED};
use super::gossip::{Check, Checker};
use super::ingest::{Done, Job, Worker};
use super::pex::{Pex, PexRequest};
use super::sessions::{Broke, Sessions};
use super::summaries::Summaries;
use super::sync::Counters;
use super::transport::{Behaviour, BehaviourEvent, PnetPassed};
use super::{dialable, remote_ip, split_peer, Command, NetConfig, NetStatus, PeerStatus};
use crate::engine::{Engine, Origin};

/// How an address came to be wanted, which decides how hard it is redialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// Found by mDNS or peer exchange: given up on after failed dials.
    Learned,
    /// Given by a user: never given up on.
    Kept,
    /// Announced by a beacon: one dial, not retried after a failure.
    Once,
}

pub(super) struct Task {
    engine: Arc<Engine>,
    swarm: Swarm<Behaviour>,
    topic: IdentTopic,
    /// Hub summaries (issue 11).
    summaries: Summaries,
    counters: Arc<Counters>,
    /// libp2p's own counts of gossip and stream bytes (issue 10).
    meter: super::metrics::Meter,
    events: broadcast::Receiver<crate::engine::NewEvent>,
    /// Our sync sessions with the peers.
    sessions: Sessions,
    /// Where disk work goes.
    worker: Worker,
    /// Where gossip goes for its verdict.
    checker: Checker,
    /// Results of that work.
    done: mpsc::UnboundedReceiver<Done>,
    /// Remote address of each connected peer's latest connection.
    peer_addr: HashMap<PeerId, Multiaddr>,
    /// Addresses we keep dialling (static peers, discovered peers) with back-off,
    /// and the bans.
    dialer: Dialer,
    /// Dials in flight, by connection id, to the address in `wanted`.
    dialing: HashMap<libp2p::swarm::ConnectionId, Multiaddr>,
    /// Nodes of another community that tried to connect.
    refused: super::refused::RefusedLog,
    /// Nodes of another community that this node dialled.
    refused_by: super::refused::RefusedLog,
    /// Nodes of another community heard by mDNS, and what differs (issue 29).
    nearby: super::nearby::NearbyLog,
    /// Outbound connections that passed the pnet exchange (see [`PnetPassed`]).
    pnet_passed: PnetPassed,
    /// The static peers (`--peer`): the links discovery cannot make, often the long
    /// ones between segments. A peer reached through one is a gossipsub *explicit*
    /// peer: every event crosses to it at once, whatever the mesh.
    static_peers: HashSet<Multiaddr>,
    /// Peer exchange: the members' addresses we hand out, and when to ask each peer.
    pex: Pex,
    /// `--no-peer-exchange` makes this false: never ask, answer with no address.
    peer_exchange: bool,
    commands: mpsc::Receiver<Command>,
    shutdown: watch::Receiver<bool>,
}

/// Everything the task needs, built by [`super::start`].
pub(super) struct Parts {
    pub engine: Arc<Engine>,
    pub swarm: Swarm<Behaviour>,
    pub topic: IdentTopic,
    pub delivery_topic: IdentTopic,
    pub delivery: Arc<crate::delivery::Delivery>,
    pub counters: Arc<Counters>,
    pub meter: super::metrics::Meter,
    pub summaries: bool,
    pub worker: Worker,
    pub checker: Checker,
    pub done: mpsc::UnboundedReceiver<Done>,
    pub pnet_passed: PnetPassed,
    pub commands: mpsc::Receiver<Command>,
    pub shutdown: watch::Receiver<bool>,
}

impl Task {
    /// The task for `cfg`, not yet running.
    pub(super) fn new(p: Parts, cfg: &NetConfig) -> Task {
        Task {
            events: p.engine.subscribe(),
            summaries: Summaries::new(p.engine.clone(), p.delivery, p.delivery_topic, p.summaries),
            sessions: Sessions::new(
                p.engine.clone(),
                p.worker.clone(),
                p.topic.clone(),
                cfg.sync_every,
            ),
            engine: p.engine,
            swarm: p.swarm,
            topic: p.topic,
            counters: p.counters,
            meter: p.meter,
            worker: p.worker,
            checker: p.checker,
            done: p.done,
            peer_addr: HashMap::new(),
            dialer: Dialer::new(&cfg.peers, Instant::now()),
            dialing: HashMap::new(),
            refused: Default::default(),
            refused_by: Default::default(),
            nearby: Default::default(),
            pnet_passed: p.pnet_passed,
            static_peers: cfg.peers.iter().cloned().collect(),
            pex: Pex::default(),
            peer_exchange: cfg.peer_exchange,
            commands: p.commands,
            shutdown: p.shutdown,
        }
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
    // Before the pnet exchange completed, nothing was learned about the other end's
    // key: a refused port, a node killed or restarting, a limit (issue 29).
    if !pnet_passed {
        return false;
    }
    errors.iter().any(|(_, e)| {
        let mut cur: Option<&dyn std::error::Error> = Some(e);
        while let Some(err) = cur {
            let text = err.to_string();
            if text.contains("Handshake failed")
                || text.contains("Multistream select failed")
                || text.contains("Timeout has been reached")
            {
                return true;
            }
            cur = err.source();
        }
        false
    })
}

/// An error and all its sources, "a: b: c", for the log: libp2p's outer messages
/// ("Failed to negotiate transport protocol(s)") say nothing of the cause.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cur = error.source();
    while let Some(e) = cur {
        let t = e.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = e.source();
    }
    out
}

/// Whether an incoming connection failed because what came after the pnet exchange
/// made no sense: multistream-select read an invalid message or protocol name, or
/// noise could not decrypt (a member's bytes always parse), not a plain I/O error (a
/// reset, a closed socket, a timeout), which a member restarting or giving up causes
/// too.
fn garbled(error: &libp2p::swarm::ListenError) -> bool {
    let libp2p::swarm::ListenError::Transport(_) = error else {
        return false;
    };
    let text = chain(error).to_lowercase();
    if text.contains(super::transport::ANOTHER_KEY) {
        return true;
    }
    let io_only = [
        "reset",
        "broken pipe",
        "unexpected end",
        "eof",
        "timed out",
        "timeout",
        "closed",
        "aborted",
    ]
    .iter()
    .any(|t| text.contains(t));
    !io_only
        && [
            "invalid message",
            "invalid protocol",
            "invalid data",
            "decrypt",
            "handshake failed",
            "multistream",
        ]
        .iter()
        .any(|t| text.contains(t))
}

/// What an outgoing dial's failure plainly is, when it is not another community: the
/// port refused (no node there now, e.g. it restarted on another port), no route, a
/// connection limit, another peer id at that address.
fn plain_failure(error: &libp2p::swarm::DialError) -> Option<&'static str> {
    use libp2p::swarm::DialError;
    match error {
        DialError::Denied { .. } => {
            Some("this node's connection limit (already connected to that peer, or too many dials)")
        }
        DialError::WrongPeerId { .. } => {
            Some("another node (another peer id) answers at that address now")
        }
        DialError::LocalPeerId { .. } => Some("that address is this node itself"),
        DialError::Aborted => Some("the dial was cancelled"),
        DialError::Transport(errors) => {
            let text = errors
                .iter()
                .map(|(_, e)| chain(e))
                .collect::<Vec<_>>()
                .join("; ")
                .to_lowercase();
            if text.contains("connection refused") {
                Some("no node listens there now (connection refused)")
            } else if text.contains("no route") || text.contains("unreachable") {
                Some("no route to that address from this network")
            } else if text.contains("reset") || text.contains("closed") || text.contains("eof") {
                Some("the other node closed the connection during the handshake (restarting, or at its connection limit)")
            } else if text.contains("timed out")
                || text.contains("timeout")
                || text.contains("in time")
            {
                Some("no answer in time")
            } else {
                None
            }
        }
        _ => None,
    }
}

impl Task {
    /// Disconnects a peer that broke the protocol and keeps it out for [`BAN`].
    fn ban(&mut self, Broke { peer, reason }: Broke) {
        let reason = reason.as_str();
        warn!(%peer, reason, "peer broke the sync protocol; disconnecting it for {} min", BAN.as_secs() / 60);
        self.sessions.stop(&peer);
        self.dialer.ban(peer, Instant::now());
        self.swarm.behaviour_mut().blocked.block_peer(peer);
    }

    pub(super) async fn run(mut self) {
        loop {
            // Sleep until the next thing due; recomputed after every event, since any
            // of them may change it.
            let wake = self.next_wake();
            let due = async move {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                ev = self.events.recv() => match ev {
                    Ok(ne) => self.on_new_event(ne),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(skipped = n, "gossip fell behind; anti-entropy will cover the skipped events");
                        self.summaries.reload();
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(cmd) = self.commands.recv() => self.on_command(cmd),
                Some(done) = self.done.recv() => self.on_done(done),
                () = due => self.on_due(),
                _ = self.shutdown.changed() => break,
            }
        }
        info!("network stopped");
    }

    fn on_new_event(&mut self, ne: crate::engine::NewEvent) {
        self.summaries.observe(&ne);
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
            Command::Dial(addr) => self.want(addr, Wanted::Learned),
            Command::DialKept(addr) => self.want(addr, Wanted::Kept),
            Command::DialOnce(addr) => self.want(addr, Wanted::Once),
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::OtherCommunity { peer, ip, differs } => {
                if self.nearby.note(&peer, &ip, differs, self.engine.wall_ms()) {
                    warn!(%peer, %ip, differs = ?differs, "{}", super::nearby::says(&ip, differs));
                }
            }
        }
    }

    /// Adds an address found by discovery, peer exchange, a beacon or given by a user
    /// (`how`) to the dial list, and dials it now if it is due.
    fn want(&mut self, addr: Multiaddr, how: Wanted) {
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
        let now = Instant::now();
        let added = match how {
            Wanted::Learned => self.dialer.add(addr.clone(), now),
            Wanted::Kept => self.dialer.add_kept(addr.clone(), now),
            Wanted::Once => self.dialer.add_once(addr.clone(), now),
        };
        match added {
            Added::New | Added::Known => {}
            Added::Replaced(worst) => {
                debug!(dropped = %worst, added = %addr, "dial list full; dropped the address least likely to work");
            }
            Added::Full => {
                warn!(%addr, "already keeping {MAX_WANTED} static peers to dial; ignoring a new address");
                return;
            }
            Added::GivenUp => {
                debug!(%addr, "an address given up on after failed dials; ignored for now");
                return;
            }
        }
        // Dial now rather than at the next wake.
        self.dial_due(Instant::now());
    }

    /// The TCP ports we listen on, for peer exchange.
    fn listen_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .swarm
            .listeners()
            .filter_map(|a| {
                a.iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::Tcp(port) if port != 0 => Some(port),
                    _ => None,
                })
            })
            .collect();
        ports.sort();
        ports.dedup();
        ports.truncate(super::pex::MAX_PORTS);
        ports
    }

    /// Asks the peers due for peer exchange.
    fn ask_pex(&mut self, now: Instant) {
        let due = self.pex.due(now);
        if due.is_empty() || !self.peer_exchange {
            return;
        }
        let req = PexRequest {
            ports: self.listen_ports(),
        };
        for p in due {
            self.swarm.behaviour_mut().pex.send_request(&p, req.clone());
        }
    }

    fn on_pex(&mut self, ev: request_response::Event<PexRequest, super::pex::PexResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.pex.heard(peer, &request);
                    let answer = if self.peer_exchange {
                        self.pex.answer(&peer)
                    } else {
                        super::pex::PexResponse::default()
                    };
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .pex
                        .send_response(channel, answer);
                }
                request_response::Message::Response { response, .. } => {
                    let me = *self.swarm.local_peer_id();
                    let learned = self.pex.learned(&me, response);
                    if !learned.is_empty() {
                        debug!(%peer, n = learned.len(), "peer exchange: learned addresses");
                    }
                    for a in learned {
                        self.want(a, Wanted::Learned);
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "peer exchange request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "peer exchange request from peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
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
                last_sync_ms: self.sessions.last_sync(p),
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        NetStatus {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen: self.swarm.listeners().map(|a| a.to_string()).collect(),
            peers,
            refused: self.refused.list(),
            refused_by: self.refused_by.list(),
            other_communities: self.nearby.list(self.engine.wall_ms()),
            sync_bytes_in: self
                .counters
                .bytes_in
                .load(std::sync::atomic::Ordering::Relaxed),
            sync_bytes_out: self
                .counters
                .bytes_out
                .load(std::sync::atomic::Ordering::Relaxed),
            metered: self.meter.read(),
        }
    }

    /// Whether the dial list may skip `addr` now: a dial to it is in flight, or its
    /// peer is connected already.
    fn dial_skip(&self, addr: &Multiaddr) -> bool {
        if self.dialing.values().any(|x| x == addr) {
            return true;
        }
        // A peer already connected (by whatever address: after a restart on another
        // port it may have dialled us) is never dialled again (issue 29).
        match self.dialer.peer_of(addr) {
            Some(p) => self.swarm.is_connected(&p),
            None => self.connected_via(&split_peer(addr).0),
        }
    }

    /// When the task must wake next on its own: the earliest dial due, ban to lift,
    /// periodic sync or hub summary due. `None`: nothing is pending, sleep until an
    /// event.
    fn next_wake(&self) -> Option<Instant> {
        let dial = self.dialer.next_due(|a| self.dial_skip(a));
        let now = Instant::now();
        let sync = self.sessions.next_due(&self.swarm, now);
        // Our hub summary (issue 11): soon after a change, else a keep-alive.
        let summary = self.summaries.next_due(now);
        dial.into_iter()
            .chain(sync)
            .chain([summary])
            .chain(self.pex.next_due())
            .min()
    }

    /// Does whatever is due: lifts bans, dials, starts periodic syncs.
    fn on_due(&mut self) {
        let now = Instant::now();
        for p in self.dialer.lift_bans(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(p);
        }
        self.dial_due(now);
        self.summaries
            .send_due(&mut self.swarm.behaviour_mut().gossipsub);
        self.ask_pex(now);
        // Periodic anti-entropy with every connected peer.
        self.sessions.start_due(&self.swarm, now);
    }

    /// Redials what we want and are not connected to, with back-off.
    fn dial_due(&mut self, now: Instant) {
        let due = self.dialer.due(now, |a| self.dial_skip(a));
        for addr in due {
            let (plain, peer) = split_peer(&addr);
            // From a port of its own, not the listening one (libp2p's default reuses
            // it): two nodes that dial each other at once from their listening ports
            // make one TCP connection by simultaneous open, on which both act as
            // dialer and the handshake fails ("Handshake failed: input error"). On a
            // lossy LAN, where retransmitted SYNs cross often, that held a 30-host
            // full mesh back by hundreds of failed dials.
            let opts = match peer {
                Some(p) => DialOpts::peer_id(p)
                    .addresses(vec![plain])
                    .allocate_new_port()
                    .build(),
                None => DialOpts::unknown_peer_id()
                    .address(plain)
                    .allocate_new_port()
                    .build(),
            };
            let cid = opts.connection_id();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%addr, error = %e, "dial not started");
                let _ = self.dialer.failed(&addr, Instant::now());
            } else {
                self.dialing.insert(cid, addr);
            }
        }
    }

    /// Whether an established connection goes to this (peer-less) address.
    fn connected_via(&self, plain: &Multiaddr) -> bool {
        self.peer_addr
            .iter()
            .any(|(p, a)| a == plain && self.swarm.is_connected(p))
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
            Done::Sync(done) => {
                if let Some(broke) = self.sessions.on_done(&mut self.swarm, done) {
                    self.ban(broke);
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
                    self.dialer.reached(&wanted, peer_id);
                    if self.static_peers.contains(&wanted) {
                        // With a LAN-sized mesh of 4, a long link is often outside
                        // both ends' meshes and would carry events only by IHAVE.
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .add_explicit_peer(&peer_id);
                    }
                }
                if let Some(ip) = remote_ip(&addr) {
                    self.sessions.note_host(peer_id, ip);
                }
                if num_established.get() == 1 {
                    info!(peer = %peer_id, %addr, "connected");
                    // One of ours now (it joined again with the right words).
                    self.nearby.forget(&peer_id.to_string());
                    self.summaries.set_connected(peer_id, true);
                    self.dialer.connected(&peer_id);
                    let dialed = endpoint.is_dialer().then_some(&addr);
                    self.pex.connected(peer_id, dialed, &addr, Instant::now());
                    self.peer_addr.insert(peer_id, addr.clone());
                    let _ = self.worker.offer(Job::Connected {
                        peer: peer_id,
                        addr: addr.to_string(),
                    });
                    self.sessions.connected(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "disconnected");
                self.summaries.set_connected(peer_id, false);
                self.sessions.disconnected(&peer_id);
                self.peer_addr.remove(&peer_id);
                self.pex.disconnected(&peer_id);
                self.dialer.disconnected(peer_id, Instant::now());
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(addr) = self.dialing.remove(&connection_id) {
                    let failures = self.dialer.failures(&addr) + 1;
                    let passed = self.pnet_passed.take(&addr);
                    let error_chain = chain(&error);
                    // The passphrase is named only where the handshake shows another
                    // key (issue 29): a refused port, a node restarting, a connection
                    // limit or a dial that lost a race says what it is instead.
                    if other_community(&error, passed) {
                        warn!(%addr, peer = ?peer_id, failures, error = %error_chain,
                            "could not connect: the node there uses another community key (another passphrase or community name); check the card on both nodes with `aidmesh passphrase`");
                        if let Some(ip) = remote_ip(&addr) {
                            self.refused_by.note(ip, self.engine.wall_ms());
                        }
                    } else {
                        let why = plain_failure(&error).unwrap_or("see the error");
                        info!(%addr, peer = ?peer_id, failures, error = %error_chain, "could not connect: {why}");
                    }
                    if let (n, true) = self.dialer.failed(&addr, Instant::now()) {
                        info!(%addr, failures = n, "gave up on a learned address after failed dials");
                    }
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
                // Another key passes the pnet nonce exchange, then garbles the bytes
                // after it, so protocol negotiation reads nonsense: only that is
                // counted and said, not a silent socket, a reset or a peer that gave
                // up mid-handshake (a node restarting, a dial that lost a race).
                let error_chain = chain(&error);
                if garbled(&error) {
                    warn!(from = %send_back_addr, error = %error_chain,
                        "a node with another community key (another passphrase or community name) tried to connect; not accepted");
                    if let Some(ip) = remote_ip(&send_back_addr) {
                        self.refused.note(ip, self.engine.wall_ms());
                    }
                } else {
                    info!(from = %send_back_addr, error = %error_chain,
                        "an incoming connection ended before its handshake finished (not a sign of another community)");
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) if self.summaries.is_summary(&message.topic) => {
                // A hub summary: checked here (a signature check, no disk); passed on
                // only if it is new knowledge.
                let acceptance = self.summaries.receive(&message.data, propagation_source);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // Judged on the checker thread, then stored by the worker; gossipsub
                // holds the message (and does not forward it) until the verdict comes
                // back in `on_done`, which does not wait for the store.
                let check = Check {
                    data: message.data,
                    id: message_id,
                    source: propagation_source,
                };
                if let Err(Check { id, source, .. }) = self.checker.offer(check).map_err(|c| *c) {
                    debug!(peer = %source, "ingest queue full; anti-entropy will fetch this event");
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => {
                self.sessions.on_event(&mut self.swarm, ev)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Pex(ev)) => self.on_pex(ev),
            _ => {}
        }
    }
}
