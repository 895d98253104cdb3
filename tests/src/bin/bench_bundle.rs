//! Sneakernet bundles at scale (issue 12): `aidmesh bundle export` of a node holding
//! 100,000 events, and `aidmesh bundle import` of that file into a node that holds
//! none of them, then again into the same node (all already known). Real `aidmesh up`
//! processes on loopback, the real CLI, a real file on disk; results go to
//! `docs/benchmarks.md` ("Bundles"); this prints the same table.
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_bundle            # 100,000 events, 3 runs
//! cargo run --release -p aidmesh-tests --bin bench_bundle -- 10000 1 # smaller
//! ```
//!
//! The exporting node's directory is filled through the engine (signed needs and
//! offers by 50 authors over the last 7 days), so only export and import are timed.
//! Each run imports into a fresh node; medians are quoted.

use std::process::Command;
use std::time::{Duration, Instant};

use aidmesh_protocol::fixture::Xorshift;
use aidmesh_protocol::{Body, Category, Event, Identity, Place, Post, Timestamp, Urgency};
use aidmesh_tests::bench_util::{init_dir, median, prefill, wall_ms};
use aidmesh_tests::{binary, Node, Opts};

const WHAT: [&str; 8] = [
    "Drinking water",
    "Insulin pens",
    "Blankets",
    "Generator fuel",
    "Baby formula",
    "Tarpaulins",
    "Phone charging",
    "Ride to the clinic",
];
const STREETS: [&str; 6] = [
    "Mill Lane",
    "River Road",
    "Elm Street",
    "Canal Street",
    "Oak Avenue",
    "Station Road",
];

fn body(rng: &mut Xorshift, i: usize) -> Body {
    let street = STREETS[rng.below(STREETS.len())];
    let post = Post {
        title: format!(
            "{} for {} people ({i})",
            WHAT[rng.below(WHAT.len())],
            1 + rng.below(9)
        ),
        category: Category::ALL[rng.below(Category::ALL.len())],
        details: format!(
            "Ground floor flooded at {} {street}; reachable by the back lane.",
            1 + rng.below(200)
        ),
        quantity: Some(1 + rng.below(50) as u32),
        unit: "boxes".into(),
        urgency: Urgency::ALL[rng.below(Urgency::ALL.len())],
        place: Place {
            label: format!("{} {street}", 1 + rng.below(200)),
            coords: None,
        },
        contact: format!("07700 {:06}", rng.below(1_000_000)),
        expires_ms: None,
        related: None,
    };
    if rng.below(3) == 0 {
        Body::Offer(post)
    } else {
        Body::Need(post)
    }
}

/// `n` signed events by 50 authors over the last 7 days, on two threads.
fn make_events(n: usize) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    let span = 7 * 86_400_000u64;
    let start = wall_ms() - span - 60_000;
    let step = span / n.max(1) as u64;
    let make = |range: std::ops::Range<usize>, seed: u64| {
        let mut rng = Xorshift(seed);
        range
            .map(|i| {
                let b = body(&mut rng, i);
                let a = &authors[rng.below(authors.len())];
                Event::create(a, Timestamp::from_millis(start + i as u64 * step), &b).into_bytes()
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let second = s.spawn(|| make(n / 2..n, 0x9e37_79b9));
        let mut out = make(0..n / 2, 0x1234_5677);
        out.extend(second.join().expect("signing thread"));
        out
    })
}

/// CPU time (user + system) the node's process has used so far, in seconds.
fn cpu_s(node: &Node) -> f64 {
    let pid = node.pid().expect("the node is running");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime
    // the 13th; in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// Runs the CLI against `node`; returns its stdout, the wall time and the CPU time the
/// node spent meanwhile (less sensitive than wall time to other work on the machine).
fn timed_cli_cpu(node: &Node, args: &[&str]) -> (String, Duration, f64) {
    let before = cpu_s(node);
    let (out, t) = timed_cli(node, args);
    (out, t, cpu_s(node) - before)
}

/// Runs the CLI against `node`; returns its stdout and the wall time.
fn timed_cli(node: &Node, args: &[&str]) -> (String, Duration) {
    let t = Instant::now();
    let out = Command::new(binary())
        .arg("--data-dir")
        .arg(node.dir())
        .args(args)
        .output()
        .expect("run aidmesh");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "aidmesh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        took,
    )
}

fn opts() -> Opts {
    Opts {
        sync_every: Some("10m".into()),
        log: Some("info,libp2p_gossipsub=warn".into()),
        start_timeout: Some(Duration::from_secs(120)),
        ..Opts::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    eprintln!("signing {n} events…");
    let events = make_events(n);
    let raw: usize = events.iter().map(Vec::len).sum();
    let dir = tempfile::Builder::new()
        .prefix("aidmesh-bench-bundle-")
        .tempdir()
        .expect("temp dir");
    eprintln!("filling the exporting node…");
    init_dir(dir.path());
    prefill(dir.path(), &events);
    let a = Node::open("bundle-a", dir, opts());
    assert_eq!(a.events(), n as u64);
    let usb = tempfile::tempdir().expect("temp dir");
    let file = usb.path().join("a.bundle");
    let file = file.to_str().expect("utf-8 path");
    let (mut export, mut import, mut again) = (Vec::new(), Vec::new(), Vec::new());
    let (mut export_cpu, mut import_cpu, mut again_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for run in 0..runs {
        let (out, t, c) = timed_cli_cpu(&a, &["bundle", "export", file]);
        assert!(out.starts_with(&format!("wrote {n} events")), "{out}");
        export.push(t.as_secs_f64());
        export_cpu.push(c);
        size = std::fs::metadata(file).expect("bundle").len();
        let b = Node::start(&format!("bundle-b{run}"), opts());
        let (out, t, c) = timed_cli_cpu(&b, &["bundle", "import", file]);
        assert_eq!(
            out.lines().next(),
            Some(format!("{n} new, 0 already known, 0 refused").as_str())
        );
        import.push(t.as_secs_f64());
        import_cpu.push(c);
        let (out, t, c) = timed_cli_cpu(&b, &["bundle", "import", file]);
        assert_eq!(
            out.lines().next(),
            Some(format!("0 new, {n} already known, 0 refused").as_str())
        );
        again.push(t.as_secs_f64());
        again_cpu.push(c);
        assert_eq!(
            b.digest(),
            a.digest(),
            "the import did not bring every event"
        );
        eprintln!(
            "run {run}: export {:.2} s ({:.2} s CPU), import {:.2} s ({:.2} s CPU), again {:.2} s ({:.2} s CPU)",
            export[run], export_cpu[run], import[run], import_cpu[run], again[run], again_cpu[run]
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (e, i, g) = (median(export), median(import), median(again));
    let (ec, ic, gc) = (median(export_cpu), median(import_cpu), median(again_cpu));
    println!("| Bundles, {n} events ({runs} runs, medians) | wall time | node CPU time |");
    println!("|---|---|---|");
    println!(
        "| `bundle export` (CLI, node → file on disk) | {e:.2} s ({:.0} events/s) | {ec:.2} s |",
        n as f64 / e
    );
    println!(
        "| `bundle import`, all new (validated, stored, flushed, gossiped) | {i:.2} s ({:.0} events/s) | {ic:.2} s |",
        n as f64 / i
    );
    println!("| `bundle import` again, all already known | {g:.2} s | {gc:.2} s |");
    println!(
        "| file size | {:.1} MB ({:.1} MB of events, +{:.2} %) | |",
        size as f64 / 1e6,
        raw as f64 / 1e6,
        (size as f64 / raw as f64 - 1.0) * 100.0
    );
    println!("\nload average at the end: {}", load.trim());
}
