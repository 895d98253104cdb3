//! The town and its clock: building it, what can be asked of it, the event loop,
//! hubs going up and down, links connecting, cut and healed, and sending over them.

use std::collections::{BTreeSet, BinaryHeap, HashMap};

use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use aidmesh_protocol::Identity;

use super::bytes::{control_bytes, CATS};
use super::{
    Cat, Config, Counters, Entry, Hub, Item, Link, LinkSpec, Micros, Msg, Peer, Rng, Sim,
    FIRST_HEARTBEAT, MS, MSS, RTO, SEC,
};

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
            hubs: (0..n)
                .map(|_| Hub {
                    latest: if cfg.summaries.is_some() {
                        super::summaries::latest(n)
                    } else {
                        Vec::new()
                    },
                    ..Hub::default()
                })
                .collect(),
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

    pub(super) fn schedule(&mut self, at: Micros, item: Item) {
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
            Item::SummaryDue { hub, life } => {
                if self.hubs[hub].up && self.hubs[hub].life == life {
                    self.summary_due(hub);
                }
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
            Self::summary_down(h);
        }
    }

    fn bring_up(&mut self, hub: usize) {
        let h = &mut self.hubs[hub];
        h.up = true;
        h.life += 1;
        let life = h.life;
        let beat = self.now + FIRST_HEARTBEAT + self.rng.between(0, 700) * MS;
        self.schedule(beat, Item::Heartbeat { hub, life });
        self.summary_arm(hub);
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
        for (x, y) in [(a, b), (b, a)] {
            self.hubs[x].peers.insert(
                y,
                Peer {
                    link,
                    mesh: false,
                    smesh: false,
                },
            );
        }
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
        self.summary_connect(a, b);
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

    /// Sends `msg` from `from` to its connected peer `to`.
    pub(super) fn send(&mut self, from: usize, to: usize, cat: Cat, bytes: u64, msg: Msg) {
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
}
