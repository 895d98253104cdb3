//! What grows without bound (issue 28): a hub whose peers are gone, holding `N` open
//! needs and offers it posted itself (a third of the needs urgent, so most are
//! "unreached"). Measures, against a real `aidmesh up` on loopback: `GET /status`
//! (size and time), the page's first screen `GET /board` (size and time), and the
//! node's resident memory while `PHONES` phones load the board at once, just after a
//! need was posted (so the board is folded again). Results go to `docs/benchmarks.md`
//! ("Status and the first screen at size"); this prints one row of its table:
//! items, unreached, status size, status median of 5, status just after a change,
//! board size, board median of 5, board just after a change, the phones' load time,
//! resident memory before and at the peak of the phones' load. Then a second line: a
//! new card on the page's stream (`GET /api/v1/stream`, what every open page listens
//! to), from just before its `POST /api/v1/needs` until the stream carries it, over 20
//! needs posted 100 ms apart (p50, p99). With `--page` (after N and PHONES), the page
//! itself in a phone-sized Chromium (`tests/web/bench_board.mjs`: first screen at CPU
//! 1x and 4x, "Show more", a word search).
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_bounds                 # 100,000 items, 50 phones
//! cargo run --release -p aidmesh-tests --bin bench_bounds -- 10000 50     # smaller
//! ```
//!
//! The node's directory is filled through the engine with events signed by the node's
//! own key (so they count as posted here), stamped over the last 7 days up to two
//! minutes ago, so only the answers are timed.

use std::time::{Duration, Instant};

use aidmesh_protocol::{Body, Category, Event, Place, Post, Timestamp, Urgency};
use aidmesh_tests::bench_util::{ingest, init_dir, median, open_engine, timed_get, wall_ms};
use aidmesh_tests::field::arrivals::{at, watch, Seen};
use aidmesh_tests::{wait_for, Node, Opts};

/// Item `i`: a need (two in three) or an offer, every third need urgent.
fn body(i: usize) -> Body {
    let urgency = Urgency::ALL[i % Urgency::ALL.len()];
    let post = Post {
        title: format!("Drinking water for flat {i}"),
        category: Category::ALL[i % Category::ALL.len()],
        details: format!("Ground floor flooded at {} Mill Lane.", i % 200),
        quantity: Some(1 + (i % 50) as u32),
        unit: "boxes".into(),
        urgency,
        place: Place {
            label: format!("{} Mill Lane", i % 200),
            coords: None,
        },
        contact: format!("07700 {:06}", i % 1_000_000),
        expires_ms: None,
        related: None,
    };
    if i % 3 == 2 {
        Body::Offer(post)
    } else {
        Body::Need(post)
    }
}

/// A data directory holding `n` items posted by its own node.
fn filled(n: usize) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("aidmesh-bench-bounds-")
        .tempdir()
        .expect("temp dir");
    init_dir(dir.path());
    let engine = open_engine(dir.path());
    let me = engine.identity();
    // At most 9,000 a day (and over 7 days at least): a hub keeps at most 10,000 events
    // a UTC day from one author (aidmesh_protocol::quota), so 1,000,000 span 112 days.
    let span = (n as u64).div_ceil(9_000).max(7) * 86_400_000u64;
    let start = wall_ms() - span - 120_000;
    let step = span / n.max(1) as u64;
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..n {
        let ts = Timestamp::from_millis(start + i as u64 * step);
        batch.push(Event::create(me, ts, &body(i)).into_bytes());
        if batch.len() == 1_000 || i + 1 == n {
            ingest(&engine, &batch, 1_000);
            batch.clear();
        }
    }
    assert_eq!(
        engine.len(),
        n,
        "every item stored (none past a daily quota)"
    );
    dir
}

/// GET `path`: (bytes, time).
fn get(node: &Node, path: &str) -> (usize, Duration) {
    let (took, body) = timed_get(node, path);
    (body.len(), took)
}

/// Median size and time of `runs` GETs of `path`.
fn median_get(node: &Node, path: &str, runs: usize) -> (usize, f64) {
    let mut times: Vec<f64> = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let (s, t) = get(node, path);
        size = s;
        times.push(t.as_secs_f64() * 1000.0);
    }
    (size, median(times))
}

/// Resident memory of the node now, in MB.
fn rss_mb(node: &Node) -> f64 {
    let pid = node.pid().expect("running");
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let phones: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    eprintln!("filling a node with {n} items…");
    let dir = filled(n);
    let node = Node::open(
        "bounds",
        dir,
        Opts {
            sync_every: Some("10m".into()),
            log: Some("info,libp2p_gossipsub=warn".into()),
            start_timeout: Some(Duration::from_secs(300)),
            ..Opts::default()
        },
    );
    // The unreached needs are flagged a minute after they were posted: all are older.
    // (The start's readiness probe asked for the status once already.)
    let (status_size, status_ms) = median_get(&node, "/api/v1/status", 5);
    let (board_size, board_ms) = median_get(&node, "/api/v1/board", 5);
    // After a change (a need posted): the first answers fold the board again.
    node.need("Sandbags for Mill Lane");
    let (_, status_changed) = get(&node, "/api/v1/status");
    let (_, board_changed) = get(&node, "/api/v1/board");
    let status = node.status();
    let idle = rss_mb(&node);
    // PHONES phones load the first screen at once, just after a change; the peak
    // resident memory meanwhile.
    node.need("Drinking water for Mill Lane");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (peak, took) = std::thread::scope(|s| {
        let t = Instant::now();
        for _ in 0..phones {
            s.spawn(|| {
                get(&node, "/api/v1/board?limit=30");
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let mut peak = idle;
        while done.load(std::sync::atomic::Ordering::SeqCst) < phones {
            peak = peak.max(rss_mb(&node));
            std::thread::sleep(Duration::from_millis(5));
        }
        (peak, t.elapsed())
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {n} | {} | {:.1} KB | {status_ms:.1} ms | {:.0} ms | {:.1} KB | {board_ms:.0} ms | {:.0} ms | {:.2} s | {idle:.1} MB | {peak:.1} MB |",
        status["unreached_total"],
        status_size as f64 / 1024.0,
        ms(status_changed),
        board_size as f64 / 1024.0,
        ms(board_changed),
        took.as_secs_f64(),
    );
    let (p50, p99, arrived) = stream_latency(&node, 20);
    println!("stream: a new card on the page stream at {n} items: p50 {p50:.1} ms, p99 {p99:.1} ms ({arrived} of 20)");
    // A word search that matches nothing reads every candidate's post from the store:
    // its time, the node's memory after it (sled keeps the pages it read), and what
    // a need posted while it runs waits.
    let before = rss_mb(&node);
    let (_, search_ms) = median_get(&node, "/api/v1/needs?q=helicopter&limit=30", 3);
    let after = rss_mb(&node);
    let (mut waits, searching) = std::thread::scope(|s| {
        let search = s.spawn(|| get(&node, "/api/v1/needs?q=helicopter&limit=30").1);
        let mut waits = Vec::new();
        let mut k = 0;
        // One need every 10 ms at most: at a million items the fill has spent most of
        // today's quota of the node's own posts (10,000 a UTC day), so a refusal
        // (429) ends the posting, not the bench.
        while !search.is_finished() {
            let t = Instant::now();
            let (code, _) = node.post_raw(
                "/api/v1/needs",
                &serde_json::json!({ "title": format!("Posted during a search {k}"), "category": "water" }),
            );
            if code == 429 {
                break;
            }
            waits.push(ms(t.elapsed()));
            k += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        (waits, search.join().expect("search"))
    });
    waits.sort_by(f64::total_cmp);
    // The whole list searched, as "Search further" pressed until the end (or
    // `aidmesh list --search`): each answer reads a part.
    let (mut answers, mut path, whole) = (
        0,
        "/api/v1/needs?q=helicopter&limit=30".to_string(),
        Instant::now(),
    );
    loop {
        let (_, body) = timed_get(&node, &path);
        answers += 1;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("a list");
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/needs?q=helicopter&limit=30&cursor={c}"),
            None => break,
        }
    }
    let whole = ms(whole.elapsed());
    let end = rss_mb(&node);
    println!(
        "search: the whole list, following the cursors: {answers} answers in {whole:.0} ms; resident {end:.1} MB after"
    );
    println!(
        "search: a word search matching nothing at {n} items: {search_ms:.0} ms (median of 3); resident {before:.1} -> {after:.1} MB; {} needs posted during one ({:.0} ms): p50 {:.1} ms, max {:.1} ms",
        waits.len(),
        ms(searching),
        aidmesh_tests::field::quantile(&waits, 0.5),
        waits.last().copied().unwrap_or(0.0),
    );
    if args.iter().any(|a| a == "--page") {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/web/bench_board.mjs");
        let status = std::process::Command::new("node")
            .arg(script)
            .arg(node.api_url())
            .status()
            .expect("run node (Node.js) for tests/web/bench_board.mjs");
        assert!(status.success(), "tests/web/bench_board.mjs failed");
        println!("resident after the page's runs: {:.1} MB", rss_mb(&node));
    }
}

/// Posts `posts` needs 100 ms apart and times each from just before its POST until
/// the node's own `/api/v1/stream` carries it: (p50, p99 in ms, how many arrived).
fn stream_latency(node: &Node, posts: usize) -> (f64, f64, usize) {
    let seen: Seen = Default::default();
    watch(0, node.api_url().to_string(), seen.clone());
    // The stream is connected once a warm-up need arrives on it.
    let mut k = 0;
    wait_for(
        "a warm-up need on the stream",
        Duration::from_secs(60),
        || {
            k += 1;
            let id = node.need(&format!("Warm-up need {k}"));
            std::thread::sleep(Duration::from_millis(100));
            at(&seen, &id, 0).map(|_| ())
        },
    );
    let mut sent = Vec::new();
    for i in 0..posts {
        let t = Instant::now();
        let id = node.need(&format!("Stream need {i}"));
        sent.push((id, t));
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for("every need on the stream", Duration::from_secs(30), || {
        sent.iter()
            .all(|(id, _)| at(&seen, id, 0).is_some())
            .then_some(())
    });
    let mut ms: Vec<f64> = sent
        .iter()
        .filter_map(|(id, t)| at(&seen, id, 0).map(|a| (a - *t).as_secs_f64() * 1000.0))
        .collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    (
        aidmesh_tests::field::quantile(&ms, 0.5),
        aidmesh_tests::field::quantile(&ms, 0.99),
        n,
    )
}
