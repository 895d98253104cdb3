//! Hub summaries (issue 11, `node/src/delivery/`) as the town's gossip carries them:
//! each hub signs a summary of what it holds and publishes it on a topic of its own,
//! soon after a change (the gap) or as a keep-alive; every hub passes on a summary
//! only if it is newer than the one it has from that hub. Modelled, not run: the
//! cadence and the full/delta choice follow `node/src/delivery/send.rs`, the sizes are
//! the ones measured on the 30-host test bed (a delta about 230 bytes plus 9 per
//! listed id, a full summary of a long history about 2.2 KB). The summaries' topic
//! has its own mesh ([`SummaryParams::mesh`]), kept at each heartbeat like the
//! events'; explicit peers (long links) get every summary, as they get every event.
//! IHAVE of summary ids is not modelled (the node announces them with the events').

use super::{Cat, Hub, Item, Msg, Sim, MS};

/// The node's cadence (`node/src/delivery/mod.rs`): the gap between two summaries and
/// the keep-alive grow with the hubs heard of (at most 1,024 kept).
const MIN_GAP_MS: u64 = 5_000;
const GAP_PER_HUB_MS: u64 = 1_000;
const MAX_GAP_MS: u64 = 30_000;
const KEEPALIVE_MS: u64 = 60_000;
const KEEPALIVE_PER_HUB_MS: u64 = 4_000;
const MAX_KEEPALIVE_MS: u64 = 5 * 60_000;
const HUBS_KEPT: u64 = 1_024;
/// Arrivals this recent and since the last summary are listed (`LIST_MS`), at most
/// `MAX_RECENT`.
const LIST_MS: u64 = 10_000;
const MAX_RECENT: usize = 256;

/// Hub summaries in the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryParams {
    /// The summaries' mesh: target, low, high.
    pub mesh: (usize, usize, usize),
    /// Bytes on the streams of a delta summary besides its listed ids (the hub's key,
    /// the signature, the changed buckets, protobuf and yamux/noise framing).
    pub delta_bytes: u64,
    /// Bytes per listed id (an 8-byte prefix and its field tag).
    pub per_id: u64,
    /// Bytes of a full summary (first, after a new peer, once per keep-alive).
    pub full_bytes: u64,
    /// Longest gap between a change and the hub's summary, ms: the node's 30 s
    /// (`MAX_GAP_MS`), or longer to keep the whole mesh at about one summary a second
    /// past 30 hubs (the gap is 1 s per hub heard of up to this).
    pub max_gap_ms: u64,
}

impl Default for SummaryParams {
    fn default() -> Self {
        SummaryParams {
            mesh: (3, 2, 4),
            delta_bytes: 230,
            per_id: 9,
            full_bytes: 2_200,
            max_gap_ms: MAX_GAP_MS,
        }
    }
}

/// A hub's own summary state.
#[derive(Debug, Default)]
pub(super) struct Own {
    /// When the last one went out.
    last_sent: Option<super::Micros>,
    /// When the last full one went out.
    last_full: Option<super::Micros>,
    /// Something was stored since the last one.
    dirty: bool,
    /// A peer connected since the last full one.
    want_full: bool,
    /// Its sequence number (a newer summary has a higher one).
    seq: u32,
    /// When a `SummaryDue` is already scheduled.
    due_at: Option<super::Micros>,
    /// Arrival times since the last summary (listed if recent).
    arrivals: Vec<super::Micros>,
}

impl Sim {
    fn heard(&self) -> u64 {
        (self.cfg.hubs as u64).min(HUBS_KEPT)
    }

    fn gap(&self) -> super::Micros {
        let max = self
            .cfg
            .summaries
            .as_ref()
            .map_or(MAX_GAP_MS, |p| p.max_gap_ms);
        (self.heard() * GAP_PER_HUB_MS).clamp(MIN_GAP_MS, max.max(MIN_GAP_MS)) * MS
    }

    fn keepalive(&self) -> super::Micros {
        (self.heard() * KEEPALIVE_PER_HUB_MS).clamp(KEEPALIVE_MS, MAX_KEEPALIVE_MS) * MS
    }

    /// When `hub`'s next summary is due.
    fn summary_next(&self, hub: usize) -> super::Micros {
        let o = &self.hubs[hub].own;
        match o.last_sent {
            None => self.now,
            Some(last) if o.dirty => last + self.gap(),
            Some(last) => last + self.keepalive(),
        }
    }

    /// (Re)arms `hub`'s summary timer if its next summary is due before the one set.
    pub(super) fn summary_arm(&mut self, hub: usize) {
        if self.cfg.summaries.is_none() || !self.hubs[hub].up {
            return;
        }
        let at = self.summary_next(hub).max(self.now);
        if self.hubs[hub].own.due_at.is_some_and(|t| t <= at) {
            return;
        }
        self.hubs[hub].own.due_at = Some(at);
        let life = self.hubs[hub].life;
        self.schedule(at, Item::SummaryDue { hub, life });
    }

    /// `hub` stored an event: its next summary comes after the gap.
    pub(super) fn summary_observe(&mut self, hub: usize) {
        if self.cfg.summaries.is_none() {
            return;
        }
        let now = self.now;
        let o = &mut self.hubs[hub].own;
        o.dirty = true;
        if o.arrivals.len() >= 2 * MAX_RECENT {
            o.arrivals.drain(..MAX_RECENT);
        }
        o.arrivals.push(now);
        self.summary_arm(hub);
    }

    /// A peer connected to `hub`: its next summary is full.
    pub(super) fn summary_new_peer(&mut self, hub: usize) {
        self.hubs[hub].own.want_full = true;
    }

    /// A hub went down: its summary state in memory goes (its sequence survives, as
    /// the node's summaries carry the time they were made).
    pub(super) fn summary_down(h: &mut Hub) {
        let seq = h.own.seq;
        h.own = Own {
            seq,
            ..Own::default()
        };
    }

    /// The timer fired: publish if due, then arm the next.
    pub(super) fn summary_due(&mut self, hub: usize) {
        let Some(p) = self.cfg.summaries.clone() else {
            return;
        };
        self.hubs[hub].own.due_at = None;
        if self.summary_next(hub) > self.now {
            self.summary_arm(hub);
            return;
        }
        let now = self.now;
        let keepalive = self.keepalive();
        let o = &mut self.hubs[hub].own;
        let listed = o
            .arrivals
            .iter()
            .rev()
            .take(MAX_RECENT)
            .take_while(|t| **t + LIST_MS * MS >= now)
            .count() as u64;
        o.arrivals.clear();
        let full = o.want_full || o.last_full.is_none_or(|t| now >= t + keepalive);
        let bytes = if full {
            o.want_full = false;
            o.last_full = Some(now);
            p.full_bytes + p.per_id * listed
        } else {
            p.delta_bytes + p.per_id * listed
        };
        o.dirty = false;
        o.last_sent = Some(now);
        o.seq += 1;
        let seq = o.seq;
        self.hubs[hub].latest[hub] = seq;
        // Publish: the summaries' mesh topped up to its degree, and the explicit peers.
        let all: Vec<usize> = self.hubs[hub].peers.keys().copied().collect();
        let mut to: Vec<usize> = self.hubs[hub]
            .peers
            .iter()
            .filter(|(_, q)| q.smesh)
            .map(|(k, _)| *k)
            .collect();
        let others: Vec<usize> = all
            .iter()
            .copied()
            .filter(|q| !to.contains(q) && !self.explicit(hub, *q))
            .collect();
        let extra = p.mesh.0.saturating_sub(to.len());
        to.extend(self.rng.sample(&others, extra));
        for q in all {
            if self.explicit(hub, q) && !to.contains(&q) {
                to.push(q);
            }
        }
        if !to.is_empty() {
            // (With no peer, gossipsub refuses it; the node counts it sent anyway.)
            self.counters.summaries += 1;
        }
        for q in to {
            self.send(
                hub,
                q,
                Cat::Summary,
                bytes,
                Msg::Summary {
                    origin: hub,
                    seq,
                    bytes,
                },
            );
        }
        self.summary_arm(hub);
    }

    /// A summary arrived: passed on to the summaries' mesh and the explicit peers if it
    /// is newer than what `to` has from its hub (the node's `Received::Newer`), else
    /// dropped (`Stale`: ignored, not forwarded).
    pub(super) fn summary_received(
        &mut self,
        to: usize,
        from: usize,
        origin: usize,
        seq: u32,
        bytes: u64,
    ) {
        self.counters.summary_arrivals += 1;
        if self.hubs[to].latest[origin] >= seq {
            self.counters.summary_duplicates += 1;
            return;
        }
        self.hubs[to].latest[origin] = seq;
        let fwd: Vec<usize> = self.hubs[to]
            .peers
            .iter()
            .filter(|(k, q)| (q.smesh || self.explicit(to, **k)) && **k != from && **k != origin)
            .map(|(k, _)| *k)
            .collect();
        for q in fwd {
            self.send(
                to,
                q,
                Cat::Summary,
                bytes,
                Msg::Summary { origin, seq, bytes },
            );
        }
    }

    /// The summaries' mesh upkeep at a heartbeat, as the events' (GRAFT/PRUNE bytes
    /// counted as summaries).
    pub(super) fn summary_heartbeat(&mut self, hub: usize) {
        let Some(p) = self.cfg.summaries.clone() else {
            return;
        };
        let (d, lo, hi) = p.mesh;
        let mesh: Vec<usize> = self.hubs[hub]
            .peers
            .iter()
            .filter(|(_, q)| q.smesh)
            .map(|(k, _)| *k)
            .collect();
        let control = super::bytes::control_bytes(self.cfg.topic_len as u64 + 9);
        if mesh.len() < lo {
            let candidates: Vec<usize> = self.hubs[hub]
                .peers
                .iter()
                .filter(|(k, q)| !q.smesh && !self.explicit(hub, **k))
                .map(|(k, _)| *k)
                .collect();
            for q in self.rng.sample(&candidates, d - mesh.len()) {
                let full = self.hubs[q].peers.values().filter(|x| x.smesh).count() >= hi;
                self.hubs[q].rx[Cat::Summary as usize] += control;
                if full {
                    self.hubs[hub].rx[Cat::Summary as usize] += control;
                    continue;
                }
                for (x, y) in [(hub, q), (q, hub)] {
                    if let Some(peer) = self.hubs[x].peers.get_mut(&y) {
                        peer.smesh = true;
                    }
                }
            }
        } else if mesh.len() >= hi {
            for q in self.rng.sample(&mesh, mesh.len() - d) {
                self.hubs[q].rx[Cat::Summary as usize] += control;
                for (x, y) in [(hub, q), (q, hub)] {
                    if let Some(peer) = self.hubs[x].peers.get_mut(&y) {
                        peer.smesh = false;
                    }
                }
            }
        }
    }
}

/// Hubs' latest summary sequence per origin, for `hubs` hubs.
pub(super) fn latest(hubs: usize) -> Vec<u32> {
    vec![0; hubs]
}

impl Sim {
    /// A new connection: each end grafts the other into its summaries' mesh if that
    /// mesh is short (as gossipsub does for a topic both subscribe to), and sends a
    /// full summary next.
    pub(super) fn summary_connect(&mut self, a: usize, b: usize) {
        let Some(p) = self.cfg.summaries.clone() else {
            return;
        };
        let smesh = |h: &Hub| h.peers.values().filter(|x| x.smesh).count();
        for (x, y) in [(a, b), (b, a)] {
            self.summary_new_peer(x);
            if smesh(&self.hubs[x]) < p.mesh.1
                && smesh(&self.hubs[y]) < p.mesh.2
                && !self.explicit(x, y)
            {
                for (u, v) in [(x, y), (y, x)] {
                    if let Some(peer) = self.hubs[u].peers.get_mut(&v) {
                        peer.smesh = true;
                    }
                }
            }
            self.summary_arm(x);
        }
    }
}
