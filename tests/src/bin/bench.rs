//! Benchmarks of the performance targets, against real `aidmesh up` processes on
//! loopback (and, for ingest, the engine in-process). Results go to
//! `docs/benchmarks.md`; this prints the same table.
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench            # full run, ~3 minutes
//! cargo run --release -p aidmesh-tests --bin bench -- --quick # 10x smaller, smoke test
//! ```
//!
//! What is measured (each a single run; medians where there are several samples):
//! 1. propagation latency of a new event across 5 nodes in a full mesh: POST at one
//!    node, arrival on the other four's `/api/v1/stream`;
//! 2. catch-up of a node missing 10,000 events: time, and sync bytes on the wire over
//!    the events' own encoded size; then of a node missing 100,000;
//! 3. sync bytes to confirm that two nodes holding the same 100,000 events are in sync;
//! 4. ingest rate of signed events, validated and flushed to disk;
//! 5. resident memory of a node holding 100,000 events;
//! 6. start time of a node holding 100,000 events (until its API answers);
//! 7. forget latency of a node holding 20,000 events (compaction in the background),
//!    and, for comparison, a forget with its compaction in the same call;
//! 8. propagation from B through A to C while A (20,000 events) forgets people;
//! 9. idle CPU of 3 connected nodes left alone for 30 s (`/proc/PID/stat`), and
//!    propagation across 5 nodes while one of them catches up on 40,000 events.

use aidmesh_tests::field::arrivals::watch;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;

use aidmesh_protocol::{Body, Category, Coords, Event, Identity, Place, Post, Timestamp, Urgency};
use aidmesh_tests::bench_util::{
    self, ingest, init_dir, open_engine, percentile, wall_ms, Latency,
};
use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::{json, Value};

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Events held by the big nodes (in-sync, memory, start time).
    big: usize,
    /// Events the catching-up node lacks.
    missing: usize,
    /// Events posted in the latency test.
    posts: usize,
    /// Gap between two posts in the latency test.
    pace: Duration,
    /// Nodes in the latency test.
    nodes: usize,
    /// Batch size of the ingest test (one flush per batch).
    batch: usize,
}

const FULL: Sizes = Sizes {
    big: 100_000,
    missing: 10_000,
    posts: 200,
    pace: Duration::from_millis(20),
    nodes: 5,
    batch: 1_000,
};

/// One line of the results table.
struct Row {
    metric: String,
    goal: String,
    measured: String,
    met: Option<bool>,
}

fn row(metric: &str, goal: &str, measured: String, met: Option<bool>) -> Row {
    Row {
        metric: metric.into(),
        goal: goal.into(),
        measured,
        met,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let (Some("--memory-probe"), Some(dir)) = (args.get(1).map(String::as_str), args.get(2)) {
        memory_probe(Path::new(dir));
        return;
    }
    // --fill DIR N [DIR2...]: initialised node directories (each its own identity)
    // holding the same first N events of the bench (for `--memory-probe` or an
    // in-sync pair without a full run).
    if let (Some("--fill"), Some(dir), Some(n)) = (
        args.get(1).map(String::as_str),
        args.get(2),
        args.get(3).and_then(|n| n.parse::<usize>().ok()),
    ) {
        let events = make_events(n, 0x00a1_d0e5);
        for dir in std::iter::once(dir).chain(&args[4..]) {
            let took = prefill(Path::new(dir), &events, FULL.batch);
            eprintln!("{n} events filed in {dir} in {:.1} s", took.as_secs_f64());
        }
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // --only ingest|latency|latency-load|idle|catch-up|catch-up-big|in-sync|forget|compacting:
    // one section
    // (for investigating).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let sizes = if quick {
        Sizes {
            big: FULL.big / 10,
            missing: FULL.missing / 10,
            posts: 50,
            ..FULL
        }
    } else {
        FULL
    };
    let started = Instant::now();
    locate_binary();
    print_machine(quick);

    let n = if run("ingest") || run("in-sync") || run("catch-up-big") {
        sizes.big
    } else if run("forget") || run("compacting") {
        sizes.missing * 2
    } else {
        sizes.missing
    };
    eprintln!("signing {n} events...");
    let t = Instant::now();
    let events = make_events(n, 0x00a1_d0e5);
    let avg = events.iter().map(Vec::len).sum::<usize>() as f64 / events.len() as f64;
    eprintln!(
        "  signed in {:.1} s; mean event size {avg:.0} bytes",
        t.elapsed().as_secs_f64()
    );

    let mut rows = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // 4. Ingest (in-process). The two big nodes' stores are filled here, and timed.
    let mut big_dirs = None;
    if run("ingest") || run("in-sync") {
        eprintln!("ingest: filling two fresh stores with {n} events each...");
        let dir_a = tempdir("big-a");
        let dir_b = tempdir("big-b");
        let fill_a = prefill(dir_a.path(), &events, sizes.batch);
        let fill_b = prefill(dir_b.path(), &events, sizes.batch);
        big_dirs = Some((dir_a, dir_b));
        let rate_batched = (2 * n) as f64 / (fill_a + fill_b).as_secs_f64();
        eprintln!(
            "  {:.0} events/s and {:.0} events/s",
            n as f64 / fill_a.as_secs_f64(),
            n as f64 / fill_b.as_secs_f64()
        );
        let (n_single, rate_single) = ingest_one_by_one(&events, Duration::from_secs(8));
        eprintln!("  one flush per event: {rate_single:.0} events/s over {n_single} events");
        // Where the time goes: protocol validation alone (decode, signature, limits).
        let sample = &events[..n.min(20_000)];
        let now = wall_ms();
        let t = Instant::now();
        for e in sample {
            aidmesh_protocol::validate(e, &aidmesh_protocol::Rules::at(now), &()).expect("valid");
        }
        let validate_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        // And the store alone: Store::insert of decoded events, a flush per batch.
        let decoded: Vec<Event> = sample
            .iter()
            .map(|e| Event::decode(e).expect("decode"))
            .collect();
        let store_dir = tempdir("store-only");
        let store = Store::open(store_dir.path()).expect("open store");
        let t = Instant::now();
        for chunk in decoded.chunks(sizes.batch) {
            for e in chunk {
                store.insert(e).expect("insert");
            }
            store.flush().expect("flush");
        }
        let store_us = t.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        drop(store);
        let batched_us = 1e6 / rate_batched;
        notes.push(format!(
            "Ingest cost per event, batched: {batched_us:.0} µs. Measured apart on {} \
             events: protocol validation alone (decode, Ed25519 verify, limits) \
             {validate_us:.0} µs; `Store::insert` alone (flush per {}) {store_us:.0} µs; \
             the rest is the engine's duplicate/erasure look-ups and the view.",
            thousands(sample.len()),
            thousands(sizes.batch)
        ));
        rows.push(row(
            &format!(
                "Ingest rate, validated + flushed, batches of {}",
                thousands(sizes.batch)
            ),
            "≥ 15,000/s",
            format!(
                "{}/s (2 × {} events)",
                thousands(rate_batched as usize),
                thousands(n)
            ),
            Some(rate_batched >= 15_000.0),
        ));
        rows.push(row(
            "Ingest rate, validated + flushed, one flush per event",
            "(report)",
            format!(
                "{}/s ({} events)",
                thousands(rate_single as usize),
                thousands(n_single)
            ),
            None,
        ));
    }

    // 1. Latency.
    if run("latency") {
        eprintln!("latency: {} nodes, {} posts...", sizes.nodes, sizes.posts);
        let lat = latency(&sizes);
        rows.push(row(
            &format!("Propagation latency p50, {} loopback nodes", sizes.nodes),
            "< 10 ms",
            format!("{:.1} ms", lat.p50),
            Some(lat.p50 < 10.0),
        ));
        rows.push(row(
            &format!("Propagation latency p99, {} loopback nodes", sizes.nodes),
            "(report)",
            format!(
                "{:.1} ms ({} of {} arrivals, max {:.1} ms)",
                lat.p99, lat.arrived, lat.expected, lat.max
            ),
            None,
        ));
    }

    // 9. Idle CPU and propagation under ingest load (issue 14).
    if run("idle") {
        let secs = if quick { 10 } else { 30 };
        eprintln!("idle: 3 connected nodes left alone for {secs} s...");
        let idle = idle_cpu(secs);
        let worst = idle.percent.iter().copied().fold(0.0, f64::max);
        rows.push(row(
            "Idle CPU, node with 2 peers (3 connected nodes)",
            "< 0.5 % of a core",
            format!(
                "{worst:.2} % worst node ({} over {:.0} s)",
                idle.percent
                    .iter()
                    .map(|p| format!("{p:.2} %"))
                    .collect::<Vec<_>>()
                    .join(", "),
                idle.secs
            ),
            Some(worst < 0.5),
        ));
    }
    if run("latency-load") {
        let bulk_n = if quick { 4_000 } else { 40_000 };
        eprintln!(
            "latency-load: {} nodes, one catching up on {bulk_n} events...",
            sizes.nodes
        );
        let bulk = make_events(bulk_n, 0x0b01_d0e5);
        let ul = latency_under_ingest(&sizes, &bulk);
        rows.push(row(
            &format!(
                "Propagation p50, {} loopback nodes, one ingesting {} events by sync",
                sizes.nodes,
                thousands(bulk_n)
            ),
            "< 10 ms",
            format!(
                "{:.1} ms (p99 {:.1}, max {:.1} ms, {} of {} arrivals); from stored at node 0: p50 {:.1} / p99 {:.1} ms; at the ingesting node p50 {:.1} / p99 {:.1} ms; it took in {} events in {:.1} s",
                ul.all.p50,
                ul.all.p99,
                ul.all.max,
                ul.all.arrived,
                ul.all.expected,
                ul.stored.p50,
                ul.stored.p99,
                ul.loaded.p50,
                ul.loaded.p99,
                thousands(ul.ingested as usize),
                ul.ingest_s
            ),
            Some(ul.all.p50 < 10.0),
        ));
    }

    // 2. Catch-up.
    if run("catch-up") {
        eprintln!("catch-up: a node missing {} events...", sizes.missing);
        let cu = catch_up(&events[..sizes.missing], Duration::from_secs(60));
        let missing = thousands(sizes.missing);
        rows.push(match cu.secs {
            Some(secs) => row(
                &format!("Catch-up of {missing} missing events: time"),
                "< 1 s",
                format!(
                    "{secs:.2} s{}",
                    if cu.digest_ok {
                        ""
                    } else {
                        " (status digest stale afterwards)"
                    }
                ),
                Some(secs < 1.0),
            ),
            None => row(
                &format!("Catch-up of {missing} missing events: time"),
                "< 1 s",
                format!(
                    "not done after {:.0} s: {} of {missing} held",
                    cu.waited,
                    thousands(cu.held)
                ),
                Some(false),
            ),
        });
        let ratio = cu.bytes as f64 / cu.event_bytes as f64;
        rows.push(row(
            &format!("Catch-up of {missing} missing events: wire bytes / event bytes"),
            "≤ 1.3",
            format!(
                "{ratio:.3} ({} / {} bytes{})",
                thousands(cu.bytes as usize),
                thousands(cu.event_bytes as usize),
                if cu.secs.is_some() {
                    ""
                } else {
                    ", at the time-out"
                }
            ),
            cu.secs.map(|_| ratio <= 1.3),
        ));
        notes.push(format!(
            "An empty node, started and idle, is {:.1} MB resident.",
            mb(cu.empty_rss_kb)
        ));
        if cu.secs.is_some() && !cu.digest_ok {
            notes.push(
                "The caught-up node held every event but its status digest differed from \
                 the full node's: a stale cached digest (see docs/benchmarks.md)."
                    .into(),
            );
        }
    }

    // 2b. Catch-up of the big set.
    if run("catch-up-big") {
        eprintln!("catch-up: a node missing {} events...", sizes.big);
        let cu = catch_up(&events[..sizes.big], Duration::from_secs(120));
        let missing = thousands(sizes.big);
        rows.push(row(
            &format!("Catch-up of {missing} missing events: time"),
            "< 10 s",
            match cu.secs {
                Some(secs) => format!(
                    "{secs:.2} s ({:.3} wire bytes per event byte)",
                    cu.bytes as f64 / cu.event_bytes as f64
                ),
                None => format!(
                    "not done after {:.0} s: {} of {missing} held",
                    cu.waited,
                    thousands(cu.held)
                ),
            },
            Some(cu.secs.is_some_and(|s| s < 10.0)),
        ));
    }

    // 7. Forget latency (in-process) with the compaction in the background.
    if run("forget") {
        let held = sizes.missing * 2;
        eprintln!("forget: a node holding {held} events forgets people...");
        let f = forget(&events[..held.min(events.len())]);
        rows.push(row(
            &format!("Forget latency, node holding {} events", thousands(held)),
            "(report)",
            format!(
                "{:.1} ms median of {} (max {:.1} ms); names gone from the files {:.2} s after the last, {} compaction(s)",
                f.median_ms, f.forgets, f.max_ms, f.gone_s, f.compactions
            ),
            None,
        ));
        rows.push(row(
            &format!(
                "Forget + compaction in the call (the old way), {} events",
                thousands(held)
            ),
            "(report)",
            format!("{:.0} ms median of {}", f.inline_median_ms, f.inline),
            None,
        ));
    }

    // 8. Propagation through a node while it forgets people (and compacts).
    if run("compacting") {
        let held = sizes.missing * 2;
        eprintln!(
            "compacting: propagation through a node holding {held} events while it forgets..."
        );
        let p = through_compaction(&events[..held.min(events.len())]);
        for (label, lat) in [("idle", &p.idle), ("forgetting 10 people", &p.forgetting)] {
            rows.push(row(
                &format!(
                    "Propagation B→A→C, A holding {} events, A {label}",
                    thousands(held)
                ),
                "(report)",
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} arrivals)",
                    lat.p50, lat.p99, lat.max, lat.arrived, lat.expected
                ),
                None,
            ));
        }
        notes.push(format!(
            "While A forgot 10 people: forget calls took {:.0} ms median (max {:.0} ms) at A's API.",
            p.forget_median_ms, p.forget_max_ms
        ));
    }

    // 3, 5, 6. Two nodes with the same big set.
    if let (true, Some((dir_a, dir_b))) = (run("in-sync"), big_dirs) {
        eprintln!("in sync: two nodes holding the same {n} events...");
        let big = in_sync(dir_a, dir_b);
        rows.push(row(
            &format!("Bytes to confirm in sync, same {} events", thousands(n)),
            "< 5 KB",
            format!(
                "{} bytes, both sessions ({:.0} ms)",
                thousands(big.sync_bytes as usize),
                big.sync_ms
            ),
            Some(big.sync_bytes < 5_000),
        ));
        rows.push(row(
            &format!("Resident memory, node holding {} events", thousands(n)),
            "< 60 MB",
            format!(
                "{:.1} MB after start, {:.1} MB after a sync (peak {:.1} MB)",
                mb(big.rss_start_kb),
                mb(big.rss_synced_kb),
                mb(big.hwm_kb)
            ),
            Some(mb(big.rss_synced_kb) < 60.0),
        ));
        notes.push(format!(
            "Memory breakdown (RSS growth of a fresh process opening the stopped node's \
             directory): {}.",
            big.probe
        ));
        rows.push(row(
            &format!("Start time, node holding {} events", thousands(n)),
            "seconds or less",
            format!(
                "{:.2} s median of {} clean starts; {:.2} s after kill -9",
                big.start_median, big.starts, big.start_after_kill
            ),
            Some(big.start_median < 5.0),
        ));
    }

    println!();
    println!("| Metric | Goal | Measured | Met? |");
    println!("|---|---|---|---|");
    for r in &rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        println!("| {} | {} | {} | {met} |", r.metric, r.goal, r.measured);
    }
    println!();
    for n in &notes {
        println!("{n}");
        println!();
    }
    println!(
        "Mean event size {avg:.0} bytes. Whole run {:.0} s.",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------
// Environment

/// Builds `target/<profile>/aidmesh` (the harness's [`aidmesh_tests::binary`] does it
/// from a bin as from a test) before any node is started.
fn locate_binary() {
    aidmesh_tests::binary();
}

fn print_machine(quick: bool) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "aidmesh bench{}: {ncpu} CPUs ({cpu}), {}, load average at start {}",
        if quick { " --quick" } else { "" },
        mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aidmesh-bench-{name}-"))
        .tempdir()
        .expect("temp dir")
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 50.0)
}

// ---------------------------------------------------------------------------------
// Events

/// xorshift64*: enough variety for realistic bodies, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const THINGS: [(&str, Category, &str); 10] = [
    ("Bottled water", Category::Water, "litres"),
    ("Tinned food and a tin opener", Category::Food, "boxes"),
    ("Insulin pens (need a fridge)", Category::Medical, "pens"),
    ("Dry blankets and sleeping bags", Category::Shelter, "bags"),
    ("Phone charging from a generator", Category::Power, "phones"),
    (
        "Lift to the evacuation centre",
        Category::Transport,
        "seats",
    ),
    (
        "Help shovelling mud out of a ground floor",
        Category::Cleanup,
        "people",
    ),
    (
        "Someone to sit with an elderly neighbour",
        Category::Care,
        "hours",
    ),
    ("Nappies size 4 and baby formula", Category::Care, "packs"),
    (
        "Chainsaw and operator for a fallen tree",
        Category::Rescue,
        "people",
    ),
];

const STREETS: [&str; 8] = [
    "Mill Lane",
    "Elm Street",
    "Station Road",
    "Church Walk",
    "Riverside Drive",
    "Hill Crescent",
    "Market Square",
    "Quarry Road",
];

const NAMES: [&str; 8] = [
    "Sam", "Priya", "Tomasz", "Aisha", "Joe", "Mei", "Ana", "Kofi",
];

/// A need or offer of a realistic size (title, category, details, place, contact).
fn body(rng: &mut Rng, i: usize) -> Body {
    let (thing, category, unit) = THINGS[rng.below(THINGS.len())];
    let street = STREETS[rng.below(STREETS.len())];
    let n = 1 + rng.below(20) as u32;
    let post = Post {
        title: format!("{thing}, {n} {unit}, near {street}"),
        category,
        details: format!(
            "Ground floor flooded since Tuesday night; {} people here including two \
             children. Ring the bell at the side gate, we are upstairs. Ref {i}.",
            1 + rng.below(8)
        ),
        quantity: Some(n),
        unit: unit.to_string(),
        urgency: Urgency::ALL[rng.below(Urgency::ALL.len())],
        place: Place {
            label: format!("{} {street}", 1 + rng.below(200)),
            coords: Coords::from_degrees(
                51.44 + rng.below(10_000) as f64 * 1e-5,
                -2.60 + rng.below(10_000) as f64 * 1e-5,
            ),
        },
        contact: format!(
            "Ask for {} at the {street} hub, 07700 {:06}",
            NAMES[rng.below(NAMES.len())],
            rng.below(1_000_000)
        ),
        expires_ms: None,
        related: None,
    };
    if rng.below(3) == 0 {
        Body::Offer(post)
    } else {
        Body::Need(post)
    }
}

/// `n` signed events by 50 authors, spread over the last 7 days, on two threads.
fn make_events(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    // Dated over the past 7 days, but after the build floor: an event stamped before
    // it is the rare case of a writer with its clock in 1970, for which each node
    // also records the arrival time (a second write and an entry in the view).
    let end = wall_ms() - 60_000;
    let start = (end - 7 * 86_400_000).max(aidmesh_node::engine::BUILD_MS + 1);
    let span = end.saturating_sub(start).max(1);
    let step = span / n.max(1) as u64;
    let half = n / 2;
    let make = |range: std::ops::Range<usize>, seed: u64| {
        let mut rng = Rng(seed | 1);
        range
            .map(|i| {
                let b = body(&mut rng, i);
                let a = &authors[rng.below(authors.len())];
                let ts = Timestamp::from_millis(start + i as u64 * step);
                Event::create(a, ts, &b).into_bytes()
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let second = s.spawn(|| make(half..n, seed.rotate_left(17)));
        let mut out = make(0..half, seed);
        out.extend(second.join().expect("signing thread"));
        out
    })
}

/// Initialises a node directory of the test community and ingests `events` into its
/// store through the engine (validated, one flush per batch). Returns the ingest time.
fn prefill(dir: &Path, events: &[Vec<u8>], batch: usize) -> Duration {
    init_dir(dir);
    ingest(&open_engine(dir), events, batch)
}

/// Ingests events one at a time, each flushed before the next, for up to `budget`.
fn ingest_one_by_one(events: &[Vec<u8>], budget: Duration) -> (usize, f64) {
    let dir = tempdir("ingest-single");
    let engine = Engine::open(
        Store::open(dir.path()).expect("open store"),
        Identity::from_seed([200; 32]),
        "test".into(),
        0,
    )
    .expect("open engine");
    let t = Instant::now();
    let mut n = 0;
    for e in events {
        engine.ingest_durable(e, Origin::Sync).expect("ingest");
        n += 1;
        if t.elapsed() > budget {
            break;
        }
    }
    (n, n as f64 / t.elapsed().as_secs_f64())
}

struct Forget {
    forgets: usize,
    median_ms: f64,
    max_ms: f64,
    gone_s: f64,
    compactions: u64,
    inline: usize,
    inline_median_ms: f64,
}

/// An engine holding `events` forgets people one after the other: the time each
/// forget takes to return, and until the names are gone from the database files.
/// Then the old way for comparison: each forget followed by the compaction in the
/// same call.
fn forget(events: &[Vec<u8>]) -> Forget {
    let dir = tempdir("forget");
    prefill(dir.path(), events, 1_000);
    let store = Store::open(&dir.path().join("db")).expect("open store");
    let profile = aidmesh_node::node::load_profile(&store)
        .expect("load profile")
        .expect("a profile");
    let engine = Engine::open(
        store,
        Identity::from_seed(profile.seed),
        profile.community,
        0,
    )
    .expect("open engine");
    let person = |i: usize| {
        Body::Person(aidmesh_protocol::PersonRegistered {
            name: format!("Forgettable Person {i}"),
            place: Place::default(),
            risks: vec![],
            check_every_secs: 3600,
            consent: aidmesh_protocol::Consent::Own,
            phone: String::new(),
            note: String::new(),
        })
    };
    let redact = |target| {
        Body::Redaction(aidmesh_protocol::Redaction {
            target,
            reason: String::new(),
        })
    };
    let ids: Vec<_> = (0..15)
        .map(|i| engine.post(person(i)).expect("register").id())
        .collect();
    let before = engine.store().compactions();
    let mut ms = Vec::new();
    for id in &ids[..10] {
        let t = Instant::now();
        engine.post(redact(*id)).expect("forget");
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let t = Instant::now();
    wait_for("the background compaction", Duration::from_secs(60), || {
        (!engine.store().compaction_pending().expect("store")).then_some(())
    });
    let gone_s = t.elapsed().as_secs_f64();
    let compactions = engine.store().compactions() - before;
    let mut inline = Vec::new();
    for id in &ids[10..] {
        let t = Instant::now();
        engine.post(redact(*id)).expect("forget");
        engine.compact_now().expect("compact");
        inline.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let max_ms = ms.iter().copied().fold(0.0, f64::max);
    Forget {
        forgets: ms.len(),
        median_ms: median(&mut ms),
        max_ms,
        gone_s,
        compactions,
        inline: inline.len(),
        inline_median_ms: median(&mut inline),
    }
}

struct ThroughCompaction {
    idle: Latency,
    forgetting: Latency,
    forget_median_ms: f64,
    forget_max_ms: f64,
}

/// B — A — C in a line, A a process on a pre-filled directory. B posts a need every
/// 25 ms for 4 s; arrival is timed on C's stream. Once with A idle, once while A's API
/// forgets 10 people one after the other.
fn through_compaction(events: &[Vec<u8>]) -> ThroughCompaction {
    let dir = tempdir("compacting-a");
    prefill(dir.path(), events, 1_000);
    let a = Node::open("compacting-a", dir, bench_opts());
    // No peer exchange: b and c stay a line through a instead of learning each other.
    let line = || Opts {
        args: vec!["--no-peer-exchange".into()],
        ..Opts::default()
    };
    let b = Node::start("b", line());
    let c = Node::start("c", line());
    b.connect(&a.addr());
    c.connect(&a.addr());
    let want = events.len() as u64;
    wait_for(
        "b and c to catch up with a",
        Duration::from_secs(120),
        || (b.events() >= want && c.events() >= want).then_some(()),
    );
    let agent = aidmesh_tests::http();
    let names: Vec<String> = (0..10).map(|i| format!("Compaction Person {i}")).collect();
    let people: Vec<String> = names
        .iter()
        .map(|n| {
            let mut r = agent
                .post(format!("{}/api/v1/people", a.api_url()))
                .send_json(json!({"name": n, "place": "1 Bench Road", "every": "12h"}))
                .expect("register");
            let v: Value = r.body_mut().read_json().expect("json");
            v["id"].as_str().expect("person id").to_string()
        })
        .collect();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    watch(0, c.api_url().to_string(), seen.clone());
    std::thread::sleep(Duration::from_secs(3)); // gossipsub meshes (700 ms heartbeats)
    let run = |tag: &str, forget: bool| -> (Latency, Vec<f64>) {
        let forgetter =
            forget.then(|| aidmesh_tests::forget_in_background(a.api_url(), people.clone()));
        let mut sent = Vec::new();
        let t = Instant::now();
        for k in 0..160u32 {
            let slot = t + Duration::from_millis(25) * k;
            if let Some(d) = slot.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let t0 = Instant::now();
            let id = b.need(&format!("Sandbags for the {tag} test ({k})"));
            sent.push((id, t0));
        }
        let forgets = forgetter
            .map(|h| h.join().expect("forgetter"))
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(15);
        let arrived = |s: &HashMap<(usize, String), Instant>| {
            sent.iter().all(|(id, _)| s.contains_key(&(0, id.clone())))
        };
        while !arrived(&seen.lock().expect("arrivals")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = seen.lock().expect("arrivals");
        let ms: Vec<f64> = sent
            .iter()
            .filter_map(|(id, t0)| {
                s.get(&(0, id.clone()))
                    .map(|at| at.duration_since(*t0).as_secs_f64() * 1e3)
            })
            .collect();
        let lat = Latency::of(ms, sent.len());
        (lat, forgets)
    };
    let (idle, _) = run("idle", false);
    let (forgetting, mut forgets) = run("forget", true);
    let forget_max_ms = forgets.iter().copied().fold(0.0, f64::max);
    ThroughCompaction {
        idle,
        forgetting,
        forget_median_ms: median(&mut forgets),
        forget_max_ms,
    }
}

// ---------------------------------------------------------------------------------
// Node processes, through the test harness

/// Options of the benchmark's nodes: only the sessions on connection (no periodic
/// re-sync inside a measurement), no debug logging, and time for a big store to open.
fn bench_opts() -> Opts {
    Opts {
        sync_every: Some("10m".into()),
        log: Some("info,libp2p_gossipsub=warn".into()),
        start_timeout: Some(Duration::from_secs(120)),
        ..Opts::default()
    }
}

/// (VmRSS, VmHWM) of a running node, in kB.
fn memory_kb(node: &Node) -> (u64, u64) {
    bench_util::memory_kb(node.pid().expect("the node is running"))
}

/// Ctrl-C, expecting a clean exit (a start after it is a clean start).
fn stop(node: &mut Node) {
    assert!(
        node.interrupt(),
        "{} did not exit cleanly on Ctrl-C:\n{}",
        node.name,
        node.log_tail(20)
    );
}

fn sync_bytes(s: &Value) -> u64 {
    s["sync_bytes_in"].as_u64().unwrap_or(0) + s["sync_bytes_out"].as_u64().unwrap_or(0)
}

/// Whether the node's session with its one peer has completed.
fn synced_once(s: &Value) -> bool {
    s["peer_list"]
        .as_array()
        .is_some_and(|l| !l.is_empty() && l.iter().all(|p| p["last_sync_ms"].is_u64()))
}

// ---------------------------------------------------------------------------------
// 1. Propagation latency

fn latency(sizes: &Sizes) -> Latency {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..sizes.nodes {
        let peers = nodes.iter().map(Node::addr).collect();
        nodes.push(Node::start(
            &format!("lat-{i}"),
            Opts {
                peers,
                ..Opts::default()
            },
        ));
    }
    let want = sizes.nodes as u64 - 1;
    wait_for("a full mesh", Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.status()["peers"].as_u64() == Some(want))
            .then_some(())
    });
    let seen = Arc::new(Mutex::new(HashMap::new()));
    for (i, n) in nodes.iter().enumerate().skip(1) {
        watch(i, n.api_url().to_string(), seen.clone());
    }
    // Let gossipsub exchange subscriptions and build its mesh (700 ms heartbeats).
    std::thread::sleep(Duration::from_secs(3));
    let post = |k: usize| -> (String, Instant) {
        let t0 = Instant::now();
        let v = nodes[0].post(
            "/api/v1/needs",
            &json!({
                "title": format!("Bottled water, 6 litres, near Mill Lane ({k})"),
                "category": "water",
                "place": "12 Mill Lane",
                "contact": "Ask for Sam at the Mill Lane hub",
                "details": "Ground floor flooded since Tuesday night; ring the bell at the side gate.",
                "qty": 6,
                "unit": "litres",
            }),
        );
        (v["id"].as_str().expect("id").to_string(), t0)
    };
    let receivers = 1..sizes.nodes;
    let all_arrived = |ids: &[(String, Instant)]| {
        let s = seen.lock().expect("arrivals");
        ids.iter()
            .all(|(id, _)| receivers.clone().all(|r| s.contains_key(&(r, id.clone()))))
    };
    // Warm-up: every receiver's stream works and gossip reaches everyone.
    let warm: Vec<_> = (0..10).map(|k| post(1_000_000 + k)).collect();
    wait_for("warm-up events everywhere", Duration::from_secs(30), || {
        all_arrived(&warm).then_some(())
    });
    let mut sent = Vec::with_capacity(sizes.posts);
    let t = Instant::now();
    for k in 0..sizes.posts {
        let slot = t + sizes.pace * k as u32;
        if let Some(d) = slot.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        sent.push(post(k));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_arrived(&sent) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = seen.lock().expect("arrivals");
    let ms: Vec<f64> = sent
        .iter()
        .flat_map(|(id, t0)| {
            receivers.clone().filter_map(|r| {
                s.get(&(r, id.clone()))
                    .map(|at| at.duration_since(*t0).as_secs_f64() * 1000.0)
            })
        })
        .collect();
    Latency::of(ms, sent.len() * (sizes.nodes - 1))
}

// ---------------------------------------------------------------------------------
// 2. Catch-up

struct CatchUp {
    /// Time until the node held every event, if it did within the time-out.
    secs: Option<f64>,
    /// Whether the caught-up node's status digest matched the full node's.
    digest_ok: bool,
    /// Resident memory of the empty node, started and idle.
    empty_rss_kb: u64,
    waited: f64,
    held: usize,
    bytes: u64,
    event_bytes: u64,
}

fn catch_up(events: &[Vec<u8>], timeout: Duration) -> CatchUp {
    let full_dir = tempdir("catchup-full");
    prefill(full_dir.path(), events, 1_000);
    let full = Node::open("catchup-full", full_dir, bench_opts());
    let empty = Node::start("catchup-empty", bench_opts());
    let target = full.status();
    let digest = target["digest"].as_str().expect("digest").to_string();
    let before = sync_bytes(&empty.status());
    let empty_rss_kb = memory_kb(&empty).0;
    let t = Instant::now();
    empty.connect(&full.addr());
    let mut secs = None;
    let mut held = 0;
    while t.elapsed() < timeout {
        let s = empty.status();
        held = s["events"].as_u64().unwrap_or(0) as usize;
        // The event count, not the digest: the digest can be cached stale (see
        // docs/benchmarks.md); it is checked below.
        if held >= events.len() {
            secs = Some(t.elapsed().as_secs_f64());
            break;
        }
        // Each poll costs the node a digest over every id it holds (sorted anew after
        // each change): at 100,000 events, polling every 20 ms took a quarter of a core
        // from the catch-up it measures. Fine-grained for the first 2 s (the
        // 10,000-event case), then every 100 ms (under 1 % of a 10 s catch-up).
        let every = if t.elapsed() < Duration::from_secs(2) {
            20
        } else {
            100
        };
        std::thread::sleep(Duration::from_millis(every));
    }
    let waited = t.elapsed().as_secs_f64();
    let digest_ok = empty.status()["digest"].as_str() == Some(digest.as_str());
    if secs.is_some() && !digest_ok {
        eprintln!(
            "  WARNING: {} holds all {} events but reports a digest different from {}'s",
            empty.name,
            events.len(),
            full.name
        );
    }
    if secs.is_some() {
        // Both sessions (each side runs one on connection) have finished.
        wait_for("both sessions", Duration::from_secs(30), || {
            (synced_once(&empty.status()) && synced_once(&full.status())).then_some(())
        });
    } else {
        eprintln!(
            "catch-up not done after {waited:.0} s ({held} of {} held)\n--- {} log ---\n{}\n--- {} log ---\n{}",
            events.len(),
            empty.name,
            empty.log_tail(20),
            full.name,
            full.log_tail(20)
        );
    }
    // Each byte crosses the wire once: the empty node's in + out counts both
    // directions of both sessions.
    let bytes = sync_bytes(&empty.status()) - before;
    let event_bytes = events.iter().map(|e| e.len() as u64).sum();
    CatchUp {
        secs,
        digest_ok,
        empty_rss_kb,
        waited,
        held,
        bytes,
        event_bytes,
    }
}

// ---------------------------------------------------------------------------------
// 3, 5, 6. Two nodes holding the same events

struct Big {
    sync_bytes: u64,
    sync_ms: f64,
    rss_start_kb: u64,
    rss_synced_kb: u64,
    hwm_kb: u64,
    start_median: f64,
    starts: usize,
    start_after_kill: f64,
    /// The memory probe's breakdown.
    probe: String,
}

fn in_sync(dir_a: tempfile::TempDir, dir_b: tempfile::TempDir) -> Big {
    let mut a = Node::open("big-a", dir_a, bench_opts());
    let mut starts = vec![a.start_time().as_secs_f64()];
    let mut b = Node::open("big-b", dir_b, bench_opts());
    let (rss_start_kb, _) = memory_kb(&a);
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa["digest"], sb["digest"], "the two big nodes differ");
    let before = sync_bytes(&sa);
    let t = Instant::now();
    b.connect(&a.addr());
    wait_for("both sessions", Duration::from_secs(120), || {
        (synced_once(&a.status()) && synced_once(&b.status())).then_some(())
    });
    let sync_ms = t.elapsed().as_secs_f64() * 1000.0;
    let sync_bytes = sync_bytes(&a.status()) - before;
    let (rss_synced_kb, hwm_kb) = memory_kb(&a);
    b.kill();
    // Start time: two more clean restarts, then one after kill -9.
    for _ in 0..2 {
        stop(&mut a);
        starts.push(a.restart().as_secs_f64());
    }
    a.kill();
    let start_after_kill = a.restart().as_secs_f64();
    stop(&mut a);
    let out = Command::new(std::env::current_exe().expect("own path"))
        .arg("--memory-probe")
        .arg(a.dir())
        .output()
        .expect("run the memory probe");
    let probe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let n = starts.len();
    Big {
        sync_bytes,
        sync_ms,
        rss_start_kb,
        rss_synced_kb,
        hwm_kb,
        start_median: median(&mut starts),
        starts: n,
        start_after_kill,
        probe,
    }
}

fn self_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Run in a child process on a stopped node's directory: how much resident memory
/// each part of a node's state adds (store opened, engine with its view, sync set,
/// digest, a board page read back from the store). A step may give memory back (the
/// engine's start closes and reopens sled): deltas are signed.
fn memory_probe(dir: &Path) {
    // As `aidmesh` does first thing.
    aidmesh_node::engine::limit_malloc_arenas();
    let mut parts = vec![("process", self_rss_kb())];
    let store = Store::open(&dir.join("db")).expect("open store");
    parts.push(("sled opened", self_rss_kb()));
    let profile = aidmesh_node::node::load_profile(&store)
        .expect("profile")
        .expect("initialised");
    let engine = Engine::open(
        store,
        Identity::from_seed(profile.seed),
        profile.community,
        0,
    )
    .expect("open engine");
    parts.push((
        "engine with its view (start read every event)",
        self_rss_kb(),
    ));
    let set = engine.sync_set().expect("sync set");
    parts.push(("sync set", self_rss_kb()));
    let digest = engine.digest().expect("digest");
    parts.push(("digest", self_rss_kb()));
    // What a board page costs: 50 items' posts read back from the store.
    let page: usize = engine.with_view(|v| {
        let ids: Vec<_> = v.post_ids().take(50).copied().collect();
        ids.iter().filter_map(|id| v.item(id, 0)).count()
    });
    parts.push(("a page of 50 items read back", self_rss_kb()));
    let mut prev = 0;
    let shown: Vec<String> = parts
        .iter()
        .map(|(what, kb)| {
            let d = *kb as f64 / 1024.0 - prev as f64 / 1024.0;
            prev = *kb;
            format!("{what} {d:+.1} MB")
        })
        .collect();
    println!(
        "{} (total {:.1} MB, {} events, {page} items on the page)",
        shown.join(", "),
        mb(prev),
        engine.len()
    );
    drop((set, digest));
}

// ---------------------------------------------------------------------------------
// 9. Idle CPU, and propagation while one node ingests a bulk batch (issue 14)

/// CPU time (user + system) a node's process has used so far, in seconds, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks).
fn cpu_s(node: &Node) -> f64 {
    let pid = node.pid().expect("the node is running");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (which ends with ')'), utime is the 12th field and stime
    // the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `n` nodes in a full mesh (default options, as a hub runs), each reporting `n - 1`
/// peers.
/// `n` nodes joined by `--peer` to every earlier one, each started with `opts` (and
/// those peers).
fn full_mesh(prefix: &str, n: usize, opts: &Opts) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let peers = nodes.iter().map(Node::addr).collect();
        nodes.push(Node::start(
            &format!("{prefix}-{i}"),
            Opts {
                peers,
                ..opts.clone()
            },
        ));
    }
    let want = n as u64 - 1;
    wait_for("a full mesh", Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| n.status()["peers"].as_u64() == Some(want))
            .then_some(())
    });
    nodes
}

struct Idle {
    /// % of one core, per node.
    percent: Vec<f64>,
    secs: f64,
}

/// Three connected nodes left alone: CPU used over `secs`, after the sessions of the
/// connection have finished.
fn idle_cpu(secs: u64) -> Idle {
    let nodes = full_mesh("idle", 3, &Opts::default());
    // Let the first sync sessions and gossipsub's mesh settle: every node has synced
    // with both peers.
    wait_for("first syncs", Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| {
                n.status()["peer_list"]
                    .as_array()
                    .is_some_and(|l| l.len() == 2 && l.iter().all(|p| p["last_sync_ms"].is_u64()))
            })
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let before: Vec<f64> = nodes.iter().map(cpu_s).collect();
    let t = Instant::now();
    // Nothing is asked of the nodes meanwhile (no status polling, no stream).
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t.elapsed().as_secs_f64();
    let percent = nodes
        .iter()
        .zip(before)
        .map(|(n, b)| (cpu_s(n) - b) / wall * 100.0)
        .collect();
    Idle {
        percent,
        secs: wall,
    }
}

struct UnderLoad {
    /// All receivers.
    all: Latency,
    /// All receivers, from the post's arrival on node 0's own stream (node 0 has
    /// stored it: leaves out the poster's write and fsync).
    stored: Latency,
    /// The ingesting node only.
    loaded: Latency,
    /// Events the loaded node took in, and how long it took.
    ingested: u64,
    ingest_s: f64,
}

/// Propagation over `sizes.nodes` nodes in a full mesh (as [`latency`]) while node 2
/// catches up on `bulk` events from a sixth node it is told to dial (sync: validated
/// batch ingest on its ingest worker, flushed per batch). Posts at node 0 every
/// `sizes.pace` from the dial until node 2 holds every bulk event.
fn latency_under_ingest(sizes: &Sizes, bulk: &[Vec<u8>]) -> UnderLoad {
    const LOADED: usize = 2;
    let src_dir = tempdir("bulk-src");
    prefill(src_dir.path(), bulk, sizes.batch);
    // Only the loaded node catches up: without peer exchange (with it every node
    // dialled the source), and with no periodic sync (with sync every 2 s the others
    // fetched the bulk from the loaded node). Either way every node took in the bulk
    // and their streams, far behind, skipped most arrivals as `lagged`.
    let src = Node::open(
        "bulk-src",
        src_dir,
        Opts {
            args: vec!["--no-peer-exchange".into()],
            ..bench_opts()
        },
    );
    let nodes = full_mesh(
        "load",
        sizes.nodes,
        &Opts {
            args: vec!["--no-peer-exchange".into()],
            sync_every: Some("10m".into()),
            ..Opts::default()
        },
    );
    let seen = Arc::new(Mutex::new(HashMap::new()));
    for (i, n) in nodes.iter().enumerate() {
        watch(i, n.api_url().to_string(), seen.clone());
    }
    std::thread::sleep(Duration::from_secs(3));
    let agent = aidmesh_tests::http();
    let api0 = nodes[0].api_url().to_string();
    let post = |k: usize| -> (String, Instant) {
        let t0 = Instant::now();
        let id =
            aidmesh_tests::try_post_need(&agent, &api0, &format!("Water near Mill Lane ({k})"))
                .expect("post a need");
        (id, t0)
    };
    let receivers = 1..sizes.nodes;
    let all_arrived = |ids: &[(String, Instant)]| {
        let s = seen.lock().expect("arrivals");
        ids.iter()
            .all(|(id, _)| receivers.clone().all(|r| s.contains_key(&(r, id.clone()))))
    };
    let warm: Vec<_> = (0..10).map(|k| post(1_000_000 + k)).collect();
    wait_for("warm-up events everywhere", Duration::from_secs(30), || {
        all_arrived(&warm).then_some(())
    });
    let base = nodes[LOADED].events();
    let target = base + bulk.len() as u64;
    // Polled on its own thread, so the posting pace does not depend on it.
    let done = Arc::new(Mutex::new(None::<Instant>));
    let watcher = {
        let (api, done) = (nodes[LOADED].api_url().to_string(), done.clone());
        std::thread::spawn(move || {
            let agent = aidmesh_tests::http();
            let deadline = Instant::now() + Duration::from_secs(600);
            while Instant::now() < deadline {
                let held = agent
                    .get(format!("{api}/api/v1/status"))
                    .call()
                    .ok()
                    .and_then(|r| r.into_body().read_json::<Value>().ok())
                    .and_then(|v| v["events"].as_u64())
                    .unwrap_or(0);
                if held >= target {
                    *done.lock().expect("done") = Some(Instant::now());
                    return held;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            0
        })
    };
    let dialled = Instant::now();
    nodes[LOADED].connect(&src.addr());
    let mut sent = Vec::new();
    for k in 0.. {
        if done.lock().expect("done").is_some() || k >= 20_000 {
            break;
        }
        let slot = dialled + sizes.pace * k as u32;
        if let Some(d) = slot.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        sent.push(post(k));
    }
    let held = watcher.join().expect("watcher");
    assert!(
        held >= target,
        "node {LOADED} never caught up on the bulk batch"
    );
    let ingest_s = done
        .lock()
        .expect("done")
        .map_or(f64::NAN, |t| t.duration_since(dialled).as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_arrived(&sent) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let guard = seen.lock().expect("arrivals");
    let s = &*guard;
    let stats = |rs: &[usize], from_stored: bool| {
        let ms: Vec<f64> = sent
            .iter()
            .flat_map(|(id, t0)| {
                let t0 = if from_stored {
                    s.get(&(0, id.clone())).copied()
                } else {
                    Some(*t0)
                };
                rs.iter().filter_map(move |r| {
                    let t0 = t0?;
                    s.get(&(*r, id.clone()))
                        .map(|at| at.saturating_duration_since(t0).as_secs_f64() * 1000.0)
                })
            })
            .collect();
        Latency::of(ms, sent.len() * rs.len())
    };
    UnderLoad {
        all: stats(&receivers.clone().collect::<Vec<_>>(), false),
        stored: stats(&receivers.clone().collect::<Vec<_>>(), true),
        loaded: stats(&[LOADED], false),
        ingested: held - base,
        ingest_s,
    }
}
