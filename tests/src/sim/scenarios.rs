//! The experiments ([`propagation`], [`partition`], [`returning_hub`]) and their
//! reports, as `bench_sim` prints them.

use std::fmt;

use crate::bench_util::percentile;

use super::bytes::{gossip_data_bytes, CATS};
use super::{Config, Counters, Micros, Rng, Sim, EPOCH_MS, MS, SEC};

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
        if self.counters.summaries > 0 {
            let pairs = (self.counters.summaries as f64 * (self.town.0 as f64 - 1.0)).max(1.0);
            writeln!(
                f,
                "hub summaries: {:.0} bytes per hub per event ({:.1}x the event) of the {:.0} above; {} published, {:.2} copies received per hub per summary, {:.1}% of (summary, other hub) pairs reached",
                b[4],
                b[4] / self.event_bytes as f64,
                total,
                self.counters.summaries,
                self.counters.summary_arrivals as f64 / pairs,
                100.0 * (self.counters.summary_arrivals - self.counters.summary_duplicates) as f64
                    / pairs
            )?;
        }
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
    ///
    /// [`Cat`]: super::Cat
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
            "{} hubs, {} events missing: converged in {}; {} bytes received in all ({} per hub; gossip data {}, gossip control {}, reconcile {}, fetch {}, hub summaries {}); at the target {}; duplicate sync arrivals {} (twice through sync {}); crossed early {}",
            self.hubs,
            self.missing_events,
            self.converged_s.map_or("(not within the limit)".to_string(), |s| format!("{s:.1} s")),
            total,
            total / self.hubs as u64,
            self.bytes[0],
            self.bytes[1],
            self.bytes[2],
            self.bytes[3],
            self.bytes[4],
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
