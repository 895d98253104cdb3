//! The environment of a run: the node binary, the machine, temporary directories,
//! number formatting, and node processes through the test harness (options, memory,
//! a clean stop, sync counters).

use std::time::Duration;

use aidmesh_tests::bench_util::{self, percentile};
use aidmesh_tests::{Node, Opts};
use serde_json::Value;

/// Builds `target/<profile>/aidmesh` (the harness's [`aidmesh_tests::binary`] does it
/// from a bin as from a test) before any node is started.
pub(crate) fn locate_binary() {
    aidmesh_tests::binary();
}

pub(crate) fn print_machine(quick: bool) {
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
    let ncpu = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "aidmesh bench{}: {ncpu} CPUs ({cpu}), {}, load average at start {}",
        if quick { " --quick" } else { "" },
        mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        aidmesh_tests::bench_util::load_average()
    );
}

pub(crate) fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aidmesh-bench-{name}-"))
        .tempdir()
        .expect("temp dir")
}

pub(crate) fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub(crate) fn thousands(n: usize) -> String {
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

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 50.0)
}

// ---------------------------------------------------------------------------------
// Node processes, through the test harness

/// Options of the benchmark's nodes: only the sessions on connection (no periodic
/// re-sync inside a measurement), no debug logging, and time for a big store to open.
pub(crate) fn bench_opts() -> Opts {
    Opts {
        sync_every: Some("10m".into()),
        log: Some("info,libp2p_gossipsub=warn".into()),
        start_timeout: Some(Duration::from_secs(120)),
        ..Opts::default()
    }
}

/// (VmRSS, VmHWM) of a running node, in kB.
pub(crate) fn memory_kb(node: &Node) -> (u64, u64) {
    bench_util::memory_kb(node.pid().expect("the node is running"))
}

/// Ctrl-C, expecting a clean exit (a start after it is a clean start).
pub(crate) fn stop(node: &mut Node) {
    assert!(
        node.interrupt(),
        "{} did not exit cleanly on Ctrl-C:\n{}",
        node.name,
        node.log_tail(20)
    );
}

pub(crate) fn sync_bytes(s: &Value) -> u64 {
    s["sync_bytes_in"].as_u64().unwrap_or(0) + s["sync_bytes_out"].as_u64().unwrap_or(0)
}

/// Whether the node's session with its one peer has completed.
pub(crate) fn synced_once(s: &Value) -> bool {
    s["peer_list"]
        .as_array()
        .is_some_and(|l| !l.is_empty() && l.iter().all(|p| p["last_sync_ms"].is_u64()))
}
