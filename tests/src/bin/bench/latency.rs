//! Propagation latency across a full mesh (benchmark 1); idle CPU of connected nodes,
//! and propagation while one node ingests a bulk batch (9).

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidmesh_tests::bench_util::Latency;
use aidmesh_tests::field::arrivals::watch;
use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::{json, Value};

use crate::env::{bench_opts, tempdir};
use crate::events::prefill;
use crate::Sizes;

// ---------------------------------------------------------------------------------
// 1. Propagation latency

pub(crate) fn latency(sizes: &Sizes) -> Latency {
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

pub(crate) struct Idle {
    /// % of one core, per node.
    pub(crate) percent: Vec<f64>,
    pub(crate) secs: f64,
}

/// Three connected nodes left alone: CPU used over `secs`, after the sessions of the
/// connection have finished.
pub(crate) fn idle_cpu(secs: u64) -> Idle {
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

pub(crate) struct UnderLoad {
    /// All receivers.
    pub(crate) all: Latency,
    /// All receivers, from the post's arrival on node 0's own stream (node 0 has
    /// stored it: leaves out the poster's write and fsync).
    pub(crate) stored: Latency,
    /// The ingesting node only.
    pub(crate) loaded: Latency,
    /// Events the loaded node took in, and how long it took.
    pub(crate) ingested: u64,
    pub(crate) ingest_s: f64,
}

/// Propagation over `sizes.nodes` nodes in a full mesh (as [`latency`]) while node 2
/// catches up on `bulk` events from a sixth node it is told to dial (sync: validated
/// batch ingest on its ingest worker, flushed per batch). Posts at node 0 every
/// `sizes.pace` from the dial until node 2 holds every bulk event.
pub(crate) fn latency_under_ingest(sizes: &Sizes, bulk: &[Vec<u8>]) -> UnderLoad {
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
