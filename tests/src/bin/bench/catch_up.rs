//! Catch-up of a node missing events (benchmark 2), and two nodes holding the same
//! events: sync bytes to confirm, resident memory, start time (3, 5, 6), with the
//! memory probe.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aidmesh_node::engine::Engine;
use aidmesh_node::store::Store;
use aidmesh_protocol::Identity;
use aidmesh_tests::{wait_for, Node};

use crate::env::{bench_opts, mb, median, memory_kb, stop, sync_bytes, synced_once, tempdir};
use crate::events::prefill;

// ---------------------------------------------------------------------------------
// 2. Catch-up

pub(crate) struct CatchUp {
    /// Time until the node held every event, if it did within the time-out.
    pub(crate) secs: Option<f64>,
    /// Whether the caught-up node's status digest matched the full node's.
    pub(crate) digest_ok: bool,
    /// Resident memory of the empty node, started and idle.
    pub(crate) empty_rss_kb: u64,
    pub(crate) waited: f64,
    pub(crate) held: usize,
    pub(crate) bytes: u64,
    pub(crate) event_bytes: u64,
    /// The empty node's start, until its API answered.
    pub(crate) start_secs: f64,
    /// Resident memory of the caught-up node once both sessions finished.
    pub(crate) rss_after_kb: u64,
    /// The caught-up node's own account of its fetching session(s): time, and its
    /// reconcile, check and store parts (read by `bench_syncthing`).
    #[allow(dead_code)]
    pub(crate) phases: Vec<String>,
}

pub(crate) fn catch_up(events: &[Vec<u8>], timeout: Duration) -> CatchUp {
    let full_dir = tempdir("catchup-full");
    prefill(full_dir.path(), events, 1_000);
    let full = Node::open("catchup-full", full_dir, bench_opts());
    let started = Instant::now();
    let empty = Node::start("catchup-empty", bench_opts());
    let start_secs = started.elapsed().as_secs_f64();
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
        // AIDMESH_BENCH_POLL_MS sets the later interval (to see what the polls cost).
        let later = std::env::var("AIDMESH_BENCH_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let every = if t.elapsed() < Duration::from_secs(2) {
            20
        } else {
            later
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
        // Where the catching-up session's time went (reconcile, check, store).
        for line in empty.log().lines().filter(|l| l.contains("synced")) {
            eprintln!("  {}: {line}", empty.name);
        }
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
    let rss_after_kb = memory_kb(&empty).0;
    let event_bytes = events.iter().map(|e| e.len() as u64).sum();
    let phases = session_phases(&empty.log());
    CatchUp {
        secs,
        digest_ok,
        empty_rss_kb,
        waited,
        held,
        bytes,
        event_bytes,
        start_secs,
        rss_after_kb,
        phases,
    }
}

/// From a node's log, each session that fetched events: "N events in T ms (reconcile
/// R, check C, store S ms)", from its `synced` line.
fn session_phases(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" synced") && l.contains("fetched="))
        .map(|l| {
            let field = |key: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("?")
            };
            format!(
                "{} events in {} ms (reconcile {}, check {}, store {} ms)",
                field("fetched"),
                field("ms"),
                field("reconcile_ms"),
                field("check_ms"),
                field("store_ms")
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// 3, 5, 6. Two nodes holding the same events

pub(crate) struct Big {
    pub(crate) sync_bytes: u64,
    pub(crate) sync_ms: f64,
    pub(crate) rss_start_kb: u64,
    pub(crate) rss_synced_kb: u64,
    pub(crate) hwm_kb: u64,
    pub(crate) start_median: f64,
    pub(crate) starts: usize,
    pub(crate) start_after_kill: f64,
    /// The memory probe's breakdown.
    pub(crate) probe: String,
}

pub(crate) fn in_sync(dir_a: tempfile::TempDir, dir_b: tempfile::TempDir) -> Big {
    let mut a = Node::open("big-a", dir_a, bench_opts());
    let mut starts = vec![a.start_time().as_secs_f64()];
    let mut b = Node::open("big-b", dir_b, bench_opts());
    let (rss_start_kb, _) = memory_kb(&a);
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa["digest"], sb["digest"], "the two big nodes differ");
    let before = sync_bytes(&sa);
    let t = Instant::now();
    b.connect(&a.addr());
    wait_for("both sessions", Duration::from_secs(600), || {
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
pub(crate) fn memory_probe(dir: &Path) {
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
    // What the lists keep: every item's head, folded (the node's lists sort and keep
    // them until the next change; issue 28).
    let heads = engine.with_view(|v| v.heads(0));
    parts.push(("every item's head, as the lists keep them", self_rss_kb()));
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
    drop((set, digest, heads));
}
