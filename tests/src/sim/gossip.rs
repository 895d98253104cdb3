//! Events posted, and gossipsub as modelled: publish, forwarding after validation,
//! IHAVE/IWANT, the heartbeat's mesh upkeep, GRAFT and PRUNE.

use aidmesh_protocol::{Body, Category, Event, Place, Post, Timestamp, Urgency};

use super::bytes::{control_bytes, gossip_data_bytes, ihave_bytes, iwant_bytes};
use super::{
    Cat, Hub, Item, Msg, Sim, SimEvent, Via, EPOCH_MS, IWANT_FOLLOWUP, MS, PRUNE_BACKOFF, VALIDATE,
};

/// Marks a gossip message that came in answer to an IWANT (in `Item::Validated`).
const PULLED: usize = 1 << 40;

impl Sim {
    pub(super) fn backed_off(&self, x: usize, y: usize) -> bool {
        self.hubs[x].backoff.get(&y).is_some_and(|t| *t > self.now)
    }

    pub(super) fn graft(&mut self, x: usize, y: usize) {
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

    pub(super) fn store(&mut self, hub: usize, ev: u32, via: Via) {
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
        self.summary_observe(hub);
    }

    /// gossipsub's publish: refused if already seen; else to every connected peer
    /// (flood publish) or the mesh.
    pub(super) fn publish(&mut self, hub: usize, ev: u32) {
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

    pub(super) fn on_message(&mut self, to: usize, from: usize, msg: Msg) {
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
            Msg::Summary { origin, seq, bytes } => {
                self.summary_received(to, from, origin, seq, bytes)
            }
            Msg::Request { generation, req } => self.serve(to, from, generation, req),
            Msg::Response { generation, resp } => self.on_response(to, from, generation, resp),
        }
    }

    pub(super) fn validated(&mut self, hub: usize, ev: u32, source: usize) {
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

    pub(super) fn heartbeat(&mut self, hub: usize) {
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
        self.summary_heartbeat(hub);
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
    ///
    /// [`GossipParams::explicit_long`]: super::GossipParams::explicit_long
    pub(super) fn explicit(&self, hub: usize, peer: usize) -> bool {
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
}
