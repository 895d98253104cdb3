//! The sync driver: the network task's side of catch-up sync. It keeps our session
//! with each connected peer (which one runs, its requests in flight, the responses
//! that came early), starts the periodic ones when due, relays what a session fetched
//! to the other peers, answers peers' requests through the ingest worker, and keys
//! each peer's clock samples by its host. The session's own I/O (engine lookups,
//! storing) runs on the worker ([`super::sync::Session`], [`super::ingest`]); its
//! state machine is `aidmesh_protocol::session`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::{PeerId, Swarm};
use tracing::{debug, info, warn};

use super::ingest::{Job, SyncDone, Worker};
use super::sync::{self, Next};
use super::transport::Behaviour;
use crate::engine::{ClockKey, Engine};

/// How soon a periodic session that could not start (a full queue, a store error) is
/// tried again.
const SYNC_RETRY: Duration = Duration::from_secs(1);

/// A peer that broke the sync protocol: the network task disconnects and bans it.
pub(super) struct Broke {
    /// The peer.
    pub peer: PeerId,
    /// What it did.
    pub reason: String,
}

/// Our sync sessions with the connected peers, and when each is next due.
pub(super) struct Sessions {
    engine: Arc<Engine>,
    /// Where session steps and answers to peers run.
    worker: Worker,
    /// The community's event topic, on which a relay session publishes what a peer
    /// lacks.
    topic: IdentTopic,
    /// Our session with each peer.
    running: HashMap<PeerId, Running>,
    generation: u64,
    /// Peers to run a relay session with as soon as their current session ends.
    relay_due: HashSet<PeerId>,
    /// When the last session with each peer finished (wall clock, for status).
    last_sync: HashMap<PeerId, u64>,
    /// When each connected peer's next periodic session is due (missing: now).
    due: HashMap<PeerId, Instant>,
    /// How long after a session the next periodic one with that peer is due.
    every: Duration,
    /// Remote IP of each connected peer: the key of its vote in the mesh clock, so one
    /// machine cannot outvote the others by making up peer ids.
    peer_ip: HashMap<PeerId, std::net::IpAddr>,
}

/// Our sync session with one peer, as the task holds it.
struct Running {
    /// Which session of the peer's this is (a result for a session that ended
    /// meanwhile is dropped).
    generation: u64,
    /// The session; `None` while the worker has it.
    session: Option<Box<sync::Session>>,
    /// Requests sent and not yet fed to the session, oldest first: responses may
    /// arrive out of order (one stream each), the session takes them in order.
    in_flight: VecDeque<OutboundRequestId>,
    /// Responses that arrived before those of older requests, or while the worker
    /// had the session.
    arrived: HashMap<OutboundRequestId, SyncResponse>,
}

impl Running {
    fn new(generation: u64) -> Running {
        Running {
            generation,
            session: None,
            in_flight: VecDeque::new(),
            arrived: HashMap::new(),
        }
    }
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

impl Sessions {
    /// No sessions yet; a periodic one with each peer every `every`.
    pub(super) fn new(
        engine: Arc<Engine>,
        worker: Worker,
        topic: IdentTopic,
        every: Duration,
    ) -> Sessions {
        Sessions {
            engine,
            worker,
            topic,
            running: HashMap::new(),
            generation: 0,
            relay_due: HashSet::new(),
            last_sync: HashMap::new(),
            due: HashMap::new(),
            every,
            peer_ip: HashMap::new(),
        }
    }

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

    /// A connection to `peer` from `ip` was established: its clock samples count for
    /// that host.
    pub(super) fn note_host(&mut self, peer: PeerId, ip: std::net::IpAddr) {
        self.peer_ip.insert(peer, ip);
    }

    /// `peer` connected (its first connection): a session starts unless one runs.
    pub(super) fn connected(&mut self, peer: PeerId) {
        if !self.running.contains_key(&peer) {
            self.start(peer, false);
        }
    }

    /// `peer`'s last connection closed: its session, relay and clock samples go.
    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.running.remove(peer);
        self.relay_due.remove(peer);
        // The engine's lock may be held by a store write: not on this task.
        let (engine, key) = (self.engine.clone(), peer.to_bytes());
        tokio::task::spawn_blocking(move || engine.forget_peer_clock(&key));
        self.peer_ip.remove(peer);
        self.due.remove(peer);
    }

    /// Drops our session with `peer` (it broke the protocol).
    pub(super) fn stop(&mut self, peer: &PeerId) {
        self.running.remove(peer);
    }

    /// When the last session with `peer` finished (wall-clock ms).
    pub(super) fn last_sync(&self, peer: &PeerId) -> Option<u64> {
        self.last_sync.get(peer).copied()
    }

    /// The earliest periodic session due with a connected peer that has none running
    /// (one never run with a peer is due `now`).
    pub(super) fn next_due(&self, swarm: &Swarm<Behaviour>, now: Instant) -> Option<Instant> {
        swarm
            .connected_peers()
            .filter(|p| !self.running.contains_key(p))
            .map(|p| self.due.get(p).copied().unwrap_or(now))
            .min()
    }

    /// Starts the periodic anti-entropy sessions due by `now`.
    pub(super) fn start_due(&mut self, swarm: &Swarm<Behaviour>, now: Instant) {
        let due: Vec<PeerId> = swarm
            .connected_peers()
            .filter(|p| !self.running.contains_key(p))
            .filter(|p| self.due.get(p).is_none_or(|at| *at <= now))
            .copied()
            .collect();
        for p in due {
            self.start(p, false);
        }
    }

    /// Starts a session with `peer` on the worker (its first request goes out when
    /// the worker has computed our set). A relay session also notes what the peer
    /// lacks, to gossip it on (see [`Sessions::relay_caught_up`]).
    fn start(&mut self, peer: PeerId, relay: bool) {
        self.generation += 1;
        let generation = self.generation;
        let job = Job::Start {
            peer,
            generation,
            relay,
        };
        if self.worker.offer(job).is_err() {
            debug!(%peer, "ingest queue full; sync starts at the next round");
            self.due.insert(peer, Instant::now() + SYNC_RETRY);
            return;
        }
        self.running.insert(peer, Running::new(generation));
    }

    fn finish(&mut self, swarm: &Swarm<Behaviour>, peer: PeerId) {
        self.running.remove(&peer);
        let wall = self.engine.wall_ms();
        self.last_sync.insert(peer, wall);
        self.due.insert(peer, Instant::now() + self.every);
        // The peer book is a cache: if the queue is full, this record is skipped.
        let _ = self.worker.offer(Job::Synced {
            peer,
            wall_ms: wall,
        });
        if self.relay_due.remove(&peer) && swarm.is_connected(&peer) {
            self.start(peer, true);
        }
    }

    /// We just caught up from `from`: hand it on to every other connected peer at
    /// once rather than at their next periodic sync. Gossipsub does not forward what
    /// sync fetched, and the peers cannot know to ask. So a relay session is run with
    /// each: its reconciliation tells us exactly which events that peer lacks (nothing
    /// it already has is sent again), and those, up to [`sync::MAX_RELAY`], are
    /// published by gossip (message id = event id, so none loops).
    fn relay_caught_up(&mut self, swarm: &Swarm<Behaviour>, from: PeerId) {
        let others: Vec<PeerId> = swarm
            .connected_peers()
            .filter(|p| **p != from)
            .copied()
            .collect();
        for p in others {
            if self.running.contains_key(&p) {
                self.relay_due.insert(p);
            } else {
                self.start(p, true);
            }
        }
    }

    /// Publishes events a peer lacks (found by a relay session) by gossip.
    fn gossip_lacking(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        lacking: Vec<Vec<u8>>,
        of: usize,
    ) {
        let n = lacking.len();
        for bytes in lacking {
            match swarm
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

    /// Sends a session's requests to `peer`, noting their order.
    fn send_requests(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        reqs: Vec<SyncRequest>,
    ) {
        for req in reqs {
            let rid = swarm.behaviour_mut().sync.send_request(&peer, req);
            if let Some(r) = self.running.get_mut(&peer) {
                r.in_flight.push_back(rid);
            }
        }
    }

    /// Hands the worker the next response for `peer`'s session, if the session is
    /// here (not on the worker) and the response to its oldest request has arrived.
    fn feed(&mut self, swarm: &Swarm<Behaviour>, peer: PeerId) {
        let clock_key = self.clock_key(&peer);
        let Some(r) = self.running.get_mut(&peer) else {
            return;
        };
        let Some(oldest) = r.in_flight.front() else {
            return;
        };
        if r.session.is_none() || !r.arrived.contains_key(oldest) {
            return;
        }
        let (Some(rid), Some(session)) = (r.in_flight.pop_front(), r.session.take()) else {
            return;
        };
        let Some(response) = r.arrived.remove(&rid) else {
            return;
        };
        let job = Job::Step {
            peer,
            generation: r.generation,
            clock_key,
            session,
            response,
        };
        if self.worker.offer(job).is_err() {
            debug!(%peer, "ingest queue full; sync runs again at the next round");
            self.finish(swarm, peer);
        }
    }

    /// Whether `generation` is still `peer`'s current session.
    fn current(&self, peer: &PeerId, generation: u64) -> bool {
        self.running
            .get(peer)
            .is_some_and(|r| r.generation == generation)
    }

    /// Acts on what the worker did for sync; names a peer that broke the protocol.
    pub(super) fn on_done(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        done: SyncDone,
    ) -> Option<Broke> {
        match done {
            SyncDone::Served {
                peer,
                channel,
                response,
                misbehaved,
            } => {
                if swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response)
                    .is_err()
                {
                    debug!(%peer, "sync response not sent: connection closed");
                }
                if misbehaved {
                    return Some(Broke {
                        peer,
                        reason: "malformed reconciliation message".into(),
                    });
                }
            }
            SyncDone::Started {
                peer,
                generation,
                result,
            } => {
                if !self.current(&peer, generation) {
                    return None;
                }
                match result {
                    Ok((session, req)) if swarm.is_connected(&peer) => {
                        self.send_requests(swarm, peer, vec![req]);
                        if let Some(r) = self.running.get_mut(&peer) {
                            r.session = Some(session);
                        }
                    }
                    Ok(_) => {
                        self.running.remove(&peer);
                    }
                    Err(e) => {
                        warn!(%peer, error = %e, "could not start sync");
                        self.running.remove(&peer);
                        self.due.insert(peer, Instant::now() + SYNC_RETRY);
                    }
                }
            }
            SyncDone::Stepped {
                peer,
                generation,
                session,
                next,
                lacking,
            } => {
                if !self.current(&peer, generation) {
                    return None;
                }
                if let Some(r) = self.running.get_mut(&peer) {
                    r.session = Some(session);
                }
                match next {
                    Ok(Next::Send(reqs)) => {
                        self.send_requests(swarm, peer, reqs);
                        self.feed(swarm, peer);
                    }
                    Ok(Next::Done {
                        summary: s,
                        millis,
                        phases: p,
                    }) => {
                        if s.fetched > 0 || s.rejected > 0 {
                            info!(%peer, fetched = s.fetched, rejected = s.rejected, deferred = s.deferred, rounds = s.rounds, ms = millis, reconcile_ms = p.reconcile_ms, check_ms = p.check_ms, store_ms = p.store_ms, "synced");
                        } else if s.deferred > 0 {
                            // Repeats every round until our clock catches up: debug.
                            debug!(%peer, deferred = s.deferred, rounds = s.rounds, "in sync but for events ahead of our clock (set aside until then)");
                        } else {
                            debug!(%peer, rounds = s.rounds, "in sync");
                        }
                        self.finish(swarm, peer);
                        if !lacking.is_empty() {
                            self.gossip_lacking(swarm, peer, lacking, s.lacking);
                        }
                        if s.fetched > 0 {
                            self.relay_caught_up(swarm, peer);
                        }
                    }
                    Err(f) if f.misbehaved => {
                        self.finish(swarm, peer);
                        return Some(Broke {
                            peer,
                            reason: f.reason,
                        });
                    }
                    Err(f) => {
                        warn!(%peer, error = %f.reason, "sync stopped");
                        self.finish(swarm, peer);
                    }
                }
            }
        }
        None
    }

    /// Acts on the sync protocol's events: a peer's request goes to the worker (or is
    /// refused as busy), a response to our session.
    pub(super) fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<SyncRequest, SyncResponse>,
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
                        let busy = SyncResponse::Refused {
                            reason: "busy; try again later".into(),
                        };
                        let _ = swarm.behaviour_mut().sync.send_response(channel, busy);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(r) = self.running.get_mut(&peer) else {
                        return;
                    };
                    if r.in_flight.contains(&request_id) {
                        r.arrived.insert(request_id, response);
                        self.feed(swarm, peer);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, error = %error, "sync request failed");
                if self
                    .running
                    .get(&peer)
                    .is_some_and(|r| r.in_flight.contains(&request_id))
                {
                    self.finish(swarm, peer);
                }
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
