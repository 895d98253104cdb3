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

use std::time::{Duration, Instant};

use aidmesh_protocol::fixture::{mill_lane_post, Xorshift};
use aidmesh_protocol::{Body, Event, Identity, Timestamp};
use aidmesh_tests::bench_util::{median, memory_kb, pid_of, prefill, timed_get, wall_ms};
use aidmesh_tests::{http, Node, Opts};

/// `needs` needs then `offers` offers of drinking water, signed by 50 authors over the
/// last hour.
fn events(needs: usize, offers: usize) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    let mut rng = Xorshift(42);
    let start = wall_ms() - 3_600_000;
    (0..needs + offers)
        .map(|i| {
            let post = mill_lane_post(&mut rng, i, None);
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

/// GET `path`: (time, answer bytes, answer).
fn get(node: &Node, path: &str) -> (Duration, usize, serde_json::Value) {
    let (took, body) = timed_get(node, path);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
    (took, body.len(), v)
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
