//! What the bench binaries (`src/bin/bench*.rs`) share: the wall clock, percentiles,
//! medians and latency summaries, filling a stopped node's directory through its engine, timing a GET,
//! and reading a node's memory from `/proc`. The boards they fill it with come from
//! `aidmesh_protocol::fixture`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::Identity;

use crate::{http, Node, TEST_PASSPHRASE};

/// The machine's load averages over 1, 5 and 15 minutes, as `/proc/loadavg` has them
/// ("1.20 0.80 0.50"; empty where it cannot be read): every bench prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Nearest-rank percentile `p` (0 to 100) of sorted values; NaN of none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Arrival times of posts, summed up: p50, p99 and max in ms, and how many arrived of
/// how many were expected.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Slowest, ms.
    pub max: f64,
    /// Arrivals measured.
    pub arrived: usize,
    /// Arrivals expected.
    pub expected: usize,
}

impl Latency {
    /// The summary of arrival times `ms` (any order) of `expected`.
    pub fn of(mut ms: Vec<f64>, expected: usize) -> Latency {
        ms.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&ms, 50.0),
            p99: percentile(&ms, 99.0),
            max: ms.last().copied().unwrap_or(f64::NAN),
            arrived: ms.len(),
            expected,
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} / {:.1} / {:.1} ms ({} of {})",
            self.p50, self.p99, self.max, self.arrived, self.expected
        )
    }
}

/// The middle value (the upper one of an even count); 0 of none.
pub fn median<T: PartialOrd + Copy + Default>(mut v: Vec<T>) -> T {
    if v.is_empty() {
        return T::default();
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Makes `dir` a node directory of the test community (passphrase
/// [`TEST_PASSPHRASE`]), not started.
pub fn init_dir(dir: &Path) {
    aidmesh_node::node::init(dir, "test", Some(TEST_PASSPHRASE)).expect("init data dir");
}

/// The engine of the stopped node whose directory is `dir`, with its own identity.
pub fn open_engine(dir: &Path) -> Engine {
    let store = Store::open(&dir.join("db")).expect("open store");
    let profile = aidmesh_node::node::load_profile(&store)
        .expect("load profile")
        .expect("a profile");
    Engine::open(
        store,
        Identity::from_seed(profile.seed),
        profile.community,
        0,
    )
    .expect("open engine")
}

/// Ingests `events` through `engine` in batches of `batch` (validated, one flush per
/// batch), asserting none is rejected. Returns the time it took.
pub fn ingest(engine: &Engine, events: &[Vec<u8>], batch: usize) -> Duration {
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        let r = engine.ingest_batch(chunk, Origin::Sync).expect("ingest");
        assert!(r.rejected.is_empty(), "rejected: {:?}", r.rejected.first());
    }
    t.elapsed()
}

/// Stores `events` in the stopped node's directory `dir`, 1,000 to a batch.
pub fn prefill(dir: &Path, events: &[Vec<u8>]) {
    ingest(&open_engine(dir), events, 1_000);
}

/// GET `path` of `node`, expecting 200: the time to the last byte and the answer.
pub fn timed_get(node: &Node, path: &str) -> (Duration, Vec<u8>) {
    let t = Instant::now();
    let mut r = http()
        .get(format!("{}{path}", node.api_url()))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .expect("answer");
    (t.elapsed(), body)
}

/// The pid of the `aidmesh up` serving `dir`, found in `/proc` (for nodes the harness
/// started, [`Node::pid`] says it directly).
pub fn pid_of(dir: &Path) -> u32 {
    let dir = dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.contains(&dir.as_bytes()) && args.contains(&&b"up"[..])
            })
        })
        .expect("the node's process")
}

/// (VmRSS, VmHWM) of process `pid`, in kB (0 where unknown).
pub fn memory_kb(pid: u32) -> (u64, u64) {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        st.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
