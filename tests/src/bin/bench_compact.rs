//! Never blocked (issue 14): what a node's peers see while it compacts, and what
//! concurrent sync sessions cost in memory. Results go to `docs/benchmarks.md`
//! ("Never blocked (issue 14)").
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_compact                  # 100,000 events
//! cargo run --release -p aidmesh-tests --bin bench_compact -- --quick       # 10,000
//! cargo run --release -p aidmesh-tests --bin bench_compact -- --only memory # or compacting
//! # --trace-slow: also list the posts slower than 50 ms and A's compaction log lines
//! ```
//!
//! 1. `memory`: an engine (in-process, the node's own code) holding N events; resident
//!    memory once its reconciliation set is built, then with 3 sync sessions open over
//!    the shared set (as now), then with 3 more holding a copy each (what a session
//!    used to hold: `Initiator::start((*set).clone())` over a deep copy).
//! 2. `compacting`: three real `aidmesh up` processes in a line, B — A — C, each holding
//!    the same N events. B posts a need every 25 ms; its arrival is timed on A's and on
//!    C's `/api/v1/stream` (B→A: into the compacting node; B→A→C: through it), from the
//!    POST and from its arrival on B's own stream (when B had stored it). Once with A
//!    idle, once while A's API forgets 10 people and A compacts its database (posting
//!    goes on until A's log shows the compaction finished). The redactions reach B and
//!    C, which erase and compact too.

use aidmesh_tests::field::arrivals::watch;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_protocol::sync::SyncSet;
use aidmesh_protocol::{Body, Category, Event, Identity, Place, Post, Timestamp, Urgency};
use aidmesh_tests::bench_util::{self, init_dir, open_engine, percentile, wall_ms, Latency};
use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let n = if quick { 10_000 } else { 100_000 };
    aidmesh_tests::binary();
    println!(
        "bench_compact: {n} events, {} CPUs, load average at start {}",
        std::thread::available_parallelism().map_or(0, |c| c.get()),
        bench_util::load_average()
    );
    let t = Instant::now();
    let events = make_events(n);
    println!("signed {n} events in {:.1} s", t.elapsed().as_secs_f64());
    if only.as_deref().is_none_or(|o| o == "memory") {
        memory(&events);
    }
    if only.as_deref().is_none_or(|o| o == "compacting") {
        compacting(&events);
    }
}

// ---------------------------------------------------------------------------------
// 1. Memory of concurrent sessions

/// VmRSS of this process, in kB.
fn self_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn memory(events: &[Vec<u8>]) {
    let dir = tempdir("memory");
    prefill(dir.path(), events);
    let engine = open_engine(dir.path());
    let set = engine.sync_set().expect("sync set");
    assert_eq!(set.len(), events.len());
    let base = self_rss_kb();
    let shared: Vec<_> = (0..3)
        .map(|_| {
            aidmesh_node::net::sync::Session::start(&engine, false, &Default::default())
                .expect("session")
        })
        .collect();
    let with_shared = self_rss_kb();
    // The old way: each session over a copy of the set (a copy has exactly the
    // footprint of the clone the old code made).
    let items = engine.store().sync_items().expect("items");
    let copies: Vec<_> = (0..3)
        .map(|_| {
            let copy = SyncSet::new(items.iter().copied()).expect("set");
            aidmesh_protocol::session::Session::start(&copy, false, 0).expect("session")
        })
        .collect();
    drop(items);
    let with_copies = self_rss_kb();
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!();
    println!("## memory: {} events, 3 sessions", events.len());
    println!("| | VmRSS | added by 3 sessions |");
    println!("|---|---|---|");
    println!("| engine, set built, no session | {:.1} MB | – |", mb(base));
    println!(
        "| 3 sessions sharing the set (now) | {:.1} MB | {:.2} MB |",
        mb(with_shared),
        mb(with_shared.saturating_sub(base))
    );
    println!(
        "| + 3 sessions holding a copy each (before) | {:.1} MB | {:.2} MB |",
        mb(with_copies),
        mb(with_copies.saturating_sub(with_shared))
    );
    drop((shared, copies));
}

// ---------------------------------------------------------------------------------
// 2. Propagation while a node compacts

fn latency(
    sent: &[(String, Instant)],
    seen: &HashMap<(usize, String), Instant>,
    at: usize,
) -> Latency {
    let ms: Vec<f64> = sent
        .iter()
        .filter_map(|(id, t0)| {
            seen.get(&(at, id.clone()))
                .map(|t| t.duration_since(*t0).as_secs_f64() * 1e3)
        })
        .collect();
    Latency::of(ms, sent.len())
}

fn compacting(events: &[Vec<u8>]) {
    let n = events.len() as u64;
    let dirs: Vec<tempfile::TempDir> = ["a", "b", "c"].iter().map(|s| tempdir(s)).collect();
    let t = Instant::now();
    for d in &dirs {
        prefill(d.path(), events);
    }
    println!("prefilled 3 nodes in {:.1} s", t.elapsed().as_secs_f64());
    let mut dirs = dirs.into_iter();
    let a = Node::open("compact-a", dirs.next().expect("a"), opts(vec![]));
    let b = Node::open("compact-b", dirs.next().expect("b"), opts(vec![a.addr()]));
    let c = Node::open("compact-c", dirs.next().expect("c"), opts(vec![a.addr()]));
    wait_for("b and c to connect to a", Duration::from_secs(60), || {
        (a.status()["peers"].as_u64() == Some(2)).then_some(())
    });
    let agent = aidmesh_tests::http();
    let people: Vec<String> = (0..10)
        .map(|i| {
            let mut r = agent
                .post(format!("{}/api/v1/people", a.api_url()))
                .send_json(json!({"name": format!("Compaction Person {i}"), "place": "1 Bench Road", "every": "12h"}))
                .expect("register");
            let v: Value = r.body_mut().read_json().expect("json");
            v["id"].as_str().expect("person id").to_string()
        })
        .collect();
    wait_for(
        "the people to reach b and c",
        Duration::from_secs(60),
        || (b.events() >= n + 10 && c.events() >= n + 10).then_some(()),
    );
    let seen = Arc::new(Mutex::new(HashMap::new()));
    watch(0, a.api_url().to_string(), seen.clone());
    watch(1, c.api_url().to_string(), seen.clone());
    watch(2, b.api_url().to_string(), seen.clone());
    // Warm-up: both streams are connected and gossip reaches A and C (gossipsub meshes
    // are built on 700 ms heartbeats): post until one need has arrived at both.
    let mut k = 0;
    wait_for("a warm-up need at a and c", Duration::from_secs(60), || {
        k += 1;
        let id = b.need(&format!("Warm-up need {k}"));
        std::thread::sleep(Duration::from_millis(200));
        let s = seen.lock().expect("arrivals");
        (s.contains_key(&(0, id.clone())) && s.contains_key(&(1, id))).then_some(())
    });
    let trace = std::env::args().any(|a| a == "--trace-slow");
    let compactions = |a: &Node| a.log().matches("database compacted").count();
    let run = |tag: &str, forget: bool| -> ([Latency; 4], Vec<f64>, f64) {
        let before = compactions(&a);
        let forgetter =
            forget.then(|| aidmesh_tests::forget_in_background(a.api_url(), people.clone()));
        let mut sent = Vec::new();
        let mut wall = Vec::new();
        let t = Instant::now();
        let mut compacted_at = None;
        for k in 0u32.. {
            let slot = t + Duration::from_millis(25) * k;
            if let Some(d) = slot.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let t0 = Instant::now();
            let id = b.need(&format!("Sandbags for the {tag} run ({k})"));
            sent.push((id, t0));
            wall.push(SystemTime::now());
            // 4 s at least; while forgetting, until the compaction finished (+0.5 s).
            if k % 20 == 0 && forget && compacted_at.is_none() && compactions(&a) > before {
                compacted_at = Some(t.elapsed().as_secs_f64());
            }
            let enough = t.elapsed() >= Duration::from_secs(4)
                && (!forget || compacted_at.is_some_and(|s| t.elapsed().as_secs_f64() > s + 0.5));
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "a did not finish compacting within 120 s:\n{}",
                a.log_tail(20)
            );
            if enough {
                break;
            }
        }
        let forgets = forgetter
            .map(|h| h.join().expect("forgetter"))
            .unwrap_or_default();
        let all = |s: &HashMap<(usize, String), Instant>| {
            sent.iter()
                .all(|(id, _)| s.contains_key(&(0, id.clone())) && s.contains_key(&(1, id.clone())))
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !all(&seen.lock().expect("arrivals")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = seen.lock().expect("arrivals");
        // From when B had stored it (its own stream), which leaves out B's own write.
        let from_b: Vec<(String, Instant)> = sent
            .iter()
            .filter_map(|(id, _)| s.get(&(2, id.clone())).map(|t| (id.clone(), *t)))
            .collect();
        if trace {
            // Which posts were slow, by wall clock, to read against A's log.
            for ((id, t0), w) in sent.iter().zip(&wall) {
                let at = |i| {
                    s.get(&(i, id.clone()))
                        .map(|t: &Instant| t.duration_since(*t0).as_millis())
                };
                let (to_a, to_c) = (at(0), at(1));
                if to_a.is_none_or(|m| m > 50) || to_c.is_none_or(|m| m > 50) {
                    let ms = w.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) % 100_000;
                    println!("slow: sent at …{ms:05} ms: to A {to_a:?} ms, to C {to_c:?} ms");
                }
            }
        }
        (
            [
                latency(&sent, &s, 0),
                latency(&sent, &s, 1),
                latency(&from_b, &s, 0),
                latency(&from_b, &s, 1),
            ],
            forgets,
            t.elapsed().as_secs_f64(),
        )
    };
    let (idle, _, idle_s) = run("idle", false);
    let (busy, mut forgets, busy_s) = run("forget", true);
    let log = a.log();
    if trace {
        for l in log
            .lines()
            .filter(|l| l.contains("compact") || l.contains("WARN"))
        {
            println!("a: {l}");
        }
    }
    let field = |what: &str, key: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(what))
            .filter_map(|l| l.split(key).nth(1))
            .filter_map(|s| s.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let compaction_ms = field("database compacted", " ms=");
    // The store's log line of a swap (node/src/store/compact.rs, `Store::compact`).
    const SWAP: &str = "compaction put the new database generation in service";
    let us_as_ms = |v: Vec<String>| -> Vec<String> {
        v.iter()
            .map(|us| {
                us.parse::<f64>()
                    .map_or(us.clone(), |us| format!("{:.1}", us / 1000.0))
            })
            .collect()
    };
    let exclusive_ms = us_as_ms(field(SWAP, "exclusive_us="));
    let close_ms = field(SWAP, "close_and_remove_ms=");
    let others = |n: &Node| {
        let log = n.log();
        let f = |line: &str, k: &str| {
            log.lines()
                .filter(|l| l.contains(line))
                .filter_map(|l| l.split(k).nth(1))
                .filter_map(|s| s.split_whitespace().next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        format!(
            "{} (exclusive {})",
            f("database compacted", " ms=").join(", "),
            us_as_ms(f(SWAP, "exclusive_us=")).join(", ")
        )
    };
    forgets.sort_by(f64::total_cmp);
    println!();
    println!(
        "## compacting: B — A — C, {} events each; B posts every 25 ms",
        events.len()
    );
    println!("| | A idle ({idle_s:.1} s) | A forgets 10 people and compacts ({busy_s:.1} s) |");
    println!("|---|---|---|");
    println!(
        "| POST at B → A p50 / p99 / max | {} | {} |",
        idle[0], busy[0]
    );
    println!(
        "| POST at B → A → C p50 / p99 / max | {} | {} |",
        idle[1], busy[1]
    );
    println!(
        "| stored at B → A p50 / p99 / max | {} | {} |",
        idle[2], busy[2]
    );
    println!(
        "| stored at B → A → C p50 / p99 / max | {} | {} |",
        idle[3], busy[3]
    );
    println!(
        "| forget calls at A: median / max | – | {:.1} / {:.1} ms |",
        percentile(&forgets, 50.0),
        forgets.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| A's compactions, in all / store held exclusively / closing and removing the old generation, off the lock (ms each, from its log) | – | {} / {} / {} |",
        compaction_ms.join(", "),
        exclusive_ms.join(", "),
        close_ms.join(", ")
    );
    println!(
        "| B's and C's compactions (the redactions reach them too): ms in all (exclusive) | – | B: {}; C: {} |",
        others(&b),
        others(&c)
    );
    let goal = busy[2].p99 < 50.0 && busy[3].p99 < 50.0;
    println!(
        "goal p99 < 50 ms while compacting: {}",
        if goal { "met" } else { "MISSED" }
    );
}

/// No peer exchange: b and c must stay a line through a, not learn each other.
fn opts(peers: Vec<String>) -> Opts {
    Opts {
        peers,
        args: vec!["--no-peer-exchange".into()],
        sync_every: Some("10m".into()),
        log: Some("info,libp2p_gossipsub=warn".into()),
        start_timeout: Some(Duration::from_secs(120)),
        ..Opts::default()
    }
}

// ---------------------------------------------------------------------------------
// Events and node directories

fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aidmesh-bench-compact-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// `n` signed needs of a realistic size by 50 authors over the last 7 days.
fn make_events(n: usize) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    let now = wall_ms();
    let span = 7 * 86_400_000u64;
    let start = now - span - 60_000;
    let step = span / n.max(1) as u64;
    let make = |range: std::ops::Range<usize>| {
        range
            .map(|i| {
                let body = Body::Need(Post {
                    title: format!(
                        "Dry blankets and sleeping bags, {} bags, near Mill Lane",
                        1 + i % 20
                    ),
                    category: Category::Shelter,
                    details: format!(
                        "Ground floor flooded since Tuesday night; {} people here including two \
                         children. Ring the bell at the side gate, we are upstairs. Ref {i}.",
                        1 + i % 8
                    ),
                    quantity: Some(1 + (i % 20) as u32),
                    unit: "bags".into(),
                    urgency: Urgency::Normal,
                    place: Place {
                        label: format!("{} Mill Lane", 1 + i % 200),
                        coords: None,
                    },
                    contact: format!(
                        "Ask for Sam at the Mill Lane hub, 07700 {:06}",
                        i % 1_000_000
                    ),
                    expires_ms: None,
                    related: None,
                });
                let ts = Timestamp::from_millis(start + i as u64 * step);
                Event::create(&authors[i % authors.len()], ts, &body).into_bytes()
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let second = s.spawn(|| make(n / 2..n));
        let mut out = make(0..n / 2);
        out.extend(second.join().expect("signing thread"));
        out
    })
}

/// Initialises a node directory of the test community and ingests `events` into it.
fn prefill(dir: &Path, events: &[Vec<u8>]) {
    init_dir(dir);
    bench_util::prefill(dir, events);
}
