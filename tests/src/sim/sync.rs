//! The sync driver: when sessions run, carrying the real [`Session`]'s requests, the
//! stateless responder, claims, storing what was fetched, and relay sessions.

use std::rc::Rc;

use aidmesh_protocol::session::{Failure, Session, Step, Stored};
use aidmesh_protocol::sync::{SyncRequest, SyncResponse, SyncSet, MAX_EVENTS_RESPONSE_BYTES};
use aidmesh_protocol::{Event, EventId};

use super::bytes::{events_bytes, fetch_bytes, reconcile_bytes, STREAM};
use super::{Cat, Item, Msg, Running, Sim, Via, EPOCH_MS, MS};

impl Sim {
    /// As the node's timer for `peer` (`node/src/net/task.rs`, `sync_due`): a periodic
    /// session if none runs and the last one ended `sync_every` ago.
    pub(super) fn sync_due(&mut self, hub: usize, peer: usize) {
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

    pub(super) fn start_sync(&mut self, hub: usize, peer: usize, relay: bool) {
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
    pub(super) fn serve(&mut self, hub: usize, peer: usize, generation: u64, req: SyncRequest) {
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
    pub(super) fn on_response(
        &mut self,
        hub: usize,
        peer: usize,
        generation: u64,
        resp: SyncResponse,
    ) {
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
    ///
    /// [`Config::fetch_once`]: super::Config::fetch_once
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
