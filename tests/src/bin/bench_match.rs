//! End-to-end cost of `GET /api/v1/match` on a crowded board (issue 9), against a
//! real `aidmesh up` process on loopback. Results go to `docs/benchmarks.md`
//! ("Matching on a crowded board"); this prints the same table.
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_match
//! ```
//!
//! For each board (1,000 needs × 1,000 offers and 500 × 500, all in one category and
//! all within about 11 km × 7 km, so nearly every pair is a candidate: the worst case),
//! the node's data directory is filled through the engine (signed events by 50
//! authors), the node is started, and then measured from outside:
//! - the time of one request (median of several, loopback HTTP included) and the size
//!   of the answer, for the default page, the largest page and for every page in turn;
//! - the node's peak resident memory during all those requests above its resident
//!   memory before them (the kernel's high-water mark, reset before the requests).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::{Body, Category, Coords, Event, Identity, Place, Post, Timestamp, Urgency};
use aidmesh_tests::{http, Node, Opts};

/// xorshift: the same board on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `needs` needs then `offers` offers of drinking water, signed by 50 authors over the
/// last hour.
fn events(needs: usize, offers: usize) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    let mut rng = Rng(42);
    let start = wall_ms() - 3_600_000;
    (0..needs + offers)
        .map(|i| {
            let n = 1 + rng.below(20) as u32;
            let post = Post {
                title: format!("Drinking water, {n} litres, near Mill Lane ({i})"),
                category: Category::Water,
                details: "Ground floor flooded since Tuesday night; 4 people here including \
                          two children. Ring the bell at the side gate."
                    .into(),
                quantity: Some(n),
                unit: "litres".into(),
                urgency: Urgency::ALL[rng.below(Urgency::ALL.len())],
                place: Place {
                    label: format!("{} Mill Lane", 1 + rng.below(200)),
                    coords: Coords::from_degrees(
                        51.44 + rng.below(10_000) as f64 * 1e-5,
                        -2.60 + rng.below(10_000) as f64 * 1e-5,
                    ),
                },
                contact: "Ask for Sam at the Mill Lane hub, 07700 900123".into(),
                expires_ms: None,
                related: None,
            };
            let body = if i < needs {
                Body::Need(post)
            } else {
                Body::Offer(post)
            };
            let ts = Timestamp::from_millis(start + i as u64);
            Event::create(&authors[i % authors.len()], ts, &body).into_bytes()
        })
        .collect()
}

/// Stores `events` in a stopped node's data directory through its engine.
fn prefill(dir: &Path, events: &[Vec<u8>]) {
    let store = Store::open(&dir.join("db")).expect("open store");
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
    for chunk in events.chunks(1_000) {
        let r = engine.ingest_batch(chunk, Origin::Sync).expect("ingest");
        assert!(r.rejected.is_empty(), "rejected: {:?}", r.rejected.first());
    }
}

/// The pid of the `aidmesh up` serving `dir` (the harness keeps its child private).
fn pid_of(dir: &Path) -> u32 {
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

/// (VmRSS, VmHWM) of `pid` in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
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

/// GET `path`: (time, answer bytes, answer).
fn get(node: &Node, path: &str) -> (Duration, usize, serde_json::Value) {
    let t = Instant::now();
    let mut r = http()
        .get(format!("{}{path}", node.api_url()))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    let text = r.body_mut().read_to_string().expect("answer");
    let took = t.elapsed();
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON answer");
    (took, text.len(), v)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Runs `f` and returns the node's peak resident memory during it above its resident
/// memory just before, in kB (`None` where the kernel's peak mark cannot be reset).
fn peak_extra_kb(pid: u32, f: impl FnOnce()) -> Option<u64> {
    // Linux: writing 5 to clear_refs resets VmHWM to the current resident size.
    let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let (before, _) = memory_kb(pid);
    f();
    let (_, hwm) = memory_kb(pid);
    reset.then(|| hwm.saturating_sub(before))
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("unknown".into(), |kb| format!("{:.1} MB", kb as f64 / 1e3))
}

/// A node on a freshly filled board of `needs` needs and `offers` offers.
fn node_with(needs: usize, offers: usize) -> (Node, u32) {
    let mut node = Node::start("bench-match", Opts::default());
    assert!(
        node.interrupt(),
        "the node stops cleanly before the prefill"
    );
    prefill(node.dir(), &events(needs, offers));
    node.restart();
    let pid = pid_of(node.dir());
    (node, pid)
}

fn main() {
    // Same profile as this binary, so `--release` measures a release node.
    let bin = aidmesh_tests::binary();
    eprintln!("node binary: {}", bin.display());
    println!("| board | request | median time | node's peak extra memory | answer | result |");
    println!("|---|---|---|---|---|---|");
    if std::env::args().any(|a| a == "--before") {
        before();
        return;
    }
    for (needs, offers) in [(1_000, 1_000), (500, 500)] {
        let board = format!("{needs} × {offers}");
        let (node, pid) = node_with(needs, offers);
        get(&node, "/api/v1/match"); // warm-up: the first fold of a cold view

        for (what, path, runs) in [
            ("default page (20 needs × 5)", "/api/v1/match", 15),
            (
                "largest page (100 needs × 20)",
                "/api/v1/match?limit=100&per_need=20",
                9,
            ),
        ] {
            let mut times = Vec::new();
            let mut last = (0, serde_json::Value::Null);
            let peak = peak_extra_kb(pid, || {
                for _ in 0..runs {
                    let (t, bytes, v) = get(&node, path);
                    times.push(t);
                    last = (bytes, v);
                }
            });
            let (bytes, v) = last;
            let matches = v["matches"].as_array().cloned().unwrap_or_default();
            let shown: usize = matches
                .iter()
                .map(|x| x["offers"].as_array().map_or(0, Vec::len))
                .sum();
            let total: u64 = matches
                .iter()
                .filter_map(|x| x["offers_total"].as_u64())
                .sum();
            println!(
                "| {board} | {what} | {} | {} | {:.0} kB | {} of {} needs; {shown} of their {total} candidates |",
                ms(median(times)),
                mb(peak),
                bytes as f64 / 1e3,
                matches.len(),
                v["needs_total"]
            );
        }

        // Every need: follow the cursor from the first page to the last, 5 times.
        let mut walks = Vec::new();
        let (mut pages, mut bytes_all, mut seen) = (0, 0, 0);
        let peak = peak_extra_kb(pid, || {
            for _ in 0..5 {
                let t = Instant::now();
                let mut path = "/api/v1/match?limit=100".to_string();
                (pages, bytes_all, seen) = (0, 0, 0);
                loop {
                    let (_, bytes, v) = get(&node, &path);
                    pages += 1;
                    bytes_all += bytes;
                    seen += v["matches"].as_array().map_or(0, Vec::len);
                    match v["next_cursor"].as_str() {
                        Some(c) => path = format!("/api/v1/match?limit=100&cursor={c}"),
                        None => break,
                    }
                    assert!(pages <= needs, "the cursor never ends");
                }
                walks.push(t.elapsed());
            }
        });
        assert_eq!(seen, needs, "every need once");
        println!(
            "| {board} | every need: {pages} pages of 100 × 5, one after another | {} for all pages | {} | {:.0} kB in all | {seen} needs |",
            ms(median(walks)),
            mb(peak),
            bytes_all as f64 / 1e3
        );
        let (rss, _) = memory_kb(pid);
        eprintln!(
            "{board}: node resident {:.1} MB at the end",
            rss as f64 / 1e3
        );
    }
}

/// `--before`: one `GET /api/v1/match` of a node built before issue 9 (run with
/// `AIDMESH_BIN` pointing at it), on the 500 × 500 board; it ignores the paging
/// parameters and answers every pair.
fn before() {
    let (node, pid) = node_with(500, 500);
    let mut out = (Duration::ZERO, 0);
    let peak = peak_extra_kb(pid, || {
        let t = Instant::now();
        let mut r = http()
            .get(format!("{}/api/v1/match", node.api_url()))
            .call()
            .expect("GET /api/v1/match");
        let text = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .expect("answer");
        out = (t.elapsed(), text.len());
    });
    println!(
        "| 500 × 500 | whole answer, binary before issue 9 | {} (one run) | {} | {:.0} kB | every need with every candidate |",
        ms(out.0),
        mb(peak),
        out.1 as f64 / 1e3
    );
}
