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
//!
//! This file holds the sizes, the results table and `main`, which runs the sections
//! in turn (4, ingest, in place) and prints the table; the sections live by job in
//! `latency.rs` (1, 9), `catch_up.rs` (2, 3, 5, 6) and `forget.rs` (7, 8), with
//! `events.rs` (the events, filling a store) and `env.rs` (the machine, node processes,
//! formatting).

mod catch_up;
mod env;
mod events;
mod forget;
mod latency;

use std::path::Path;
use std::time::{Duration, Instant};

use aidmesh_node::store::Store;
use aidmesh_protocol::Event;
use aidmesh_tests::bench_util::wall_ms;

use catch_up::{catch_up, in_sync, memory_probe};
use env::{locate_binary, mb, print_machine, tempdir, thousands};
use events::{ingest_one_by_one, make_events, prefill};
use forget::{forget, through_compaction};
use latency::{idle_cpu, latency, latency_under_ingest};

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
    let mut sizes = if quick {
        Sizes {
            big: FULL.big / 10,
            missing: FULL.missing / 10,
            posts: 50,
            ..FULL
        }
    } else {
        FULL
    };
    // AIDMESH_BENCH_BIG=1000000: the big nodes (ingest, catch-up-big, in-sync) at
    // another size (issue 28 measures a million).
    if let Some(big) = std::env::var("AIDMESH_BENCH_BIG")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        sizes.big = big;
    }
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
        // A minute more for each 10,000 events past 100,000 would be generous.
        let timeout = Duration::from_secs(120.max(sizes.big as u64 / 2_000));
        let cu = catch_up(&events[..sizes.big], timeout);
        let missing = thousands(sizes.big);
        rows.push(row(
            &format!("Catch-up of {missing} missing events: time"),
            "< 10 s",
            match cu.secs {
                Some(secs) => format!(
                    "{secs:.2} s from the dial, {:.2} s from the empty node's start ({:.3} wire bytes per event byte); the caught-up node {:.1} MB resident after both sessions",
                    secs + cu.start_secs,
                    cu.bytes as f64 / cu.event_bytes as f64,
                    mb(cu.rss_after_kb)
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
