//! The load harness at small N, as a normal test (issue 17): simulated pages
//! (`aidmesh_tests::phones`, behaving as the web page does) against a real node. Each
//! posted need reaches every page by its stream, with no list fetched again; the timer
//! refresh is a conditional request answered 304 when nothing changed; and one page
//! reads far less than 20 KB per posted need. (The 300-page figures come from the
//! `bench_phones` binary; see docs/benchmarks.md.)

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aidmesh_tests::phones::{PagePlan, Phone, Target};
use aidmesh_tests::{wait_for_async, Node, Opts};
use serde_json::json;

const PHONES: usize = 12;
const POSTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_pages_get_each_new_need_from_the_stream_without_refetching_the_board() {
    let node = tokio::task::spawn_blocking(|| {
        let node = Node::start("hub", Opts::default());
        for i in 0..40 {
            node.need(&format!("seed need {i}"));
        }
        for i in 0..10 {
            node.post(
                "/api/v1/offers",
                &json!({ "title": format!("seed offer {i}"), "category": "food" }),
            );
        }
        node
    })
    .await
    .unwrap();
    let api = node
        .api_url()
        .trim_start_matches("http://")
        .parse()
        .expect("the node's API address");
    let mut plan = PagePlan::from_page();
    // The timer is fired by hand below (`tick`), as a test fast-forwards a page's clock;
    // on its own it would fire at a random moment in the middle of the checks.
    plan.refresh_ms = 3_600_000;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let phones: Vec<Phone> = (0..PHONES)
        .map(|n| {
            Phone::open(
                n,
                plan.clone(),
                Target::new(api),
                None,
                Some(seen_tx.clone()),
            )
        })
        .collect();
    for p in &phones {
        assert!(
            p.wait_served(Duration::from_secs(20)).await,
            "a page got its board: {:?}",
            p.stats()
        );
        assert_eq!(p.stats().cards, (30, 10), "first page of needs, all offers");
    }
    // Every stream is asked for (the stream is opened before the board is loaded,
    // but by a task of its own, so its request may be noted after the board's).
    let stream = format!("GET {}", plan.stream);
    wait_for_async(
        "every phone to ask for the stream",
        Duration::from_secs(10),
        || {
            phones
                .iter()
                .all(|p| p.stats().requests.contains(&stream))
                .then_some(())
        },
    )
    .await;
    let before: Vec<_> = phones.iter().map(Phone::stats).collect();
    for s in &before {
        let mut want: Vec<String> = plan.assets.iter().map(|a| format!("GET {a}")).collect();
        want.push(format!("GET {}", plan.stream));
        want.push(format!("GET {}", plan.board_path()));
        // The stream and the board go out on two connections at once: in either order.
        let mut got = s.requests.clone();
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "start-up: the page's files, the stream and one board"
        );
    }

    // Posts, as the coordinator makes them, each awaited by every page.
    let mut posted = Vec::new();
    let mut arrivals: HashMap<String, HashSet<usize>> = HashMap::new();
    for i in 0..POSTS {
        let base = node.api_url().to_string();
        let id = tokio::task::spawn_blocking(move || {
            aidmesh_tests::try_post_need(&aidmesh_tests::http(), &base, &format!("posted need {i}"))
                .expect("post a need")
        })
        .await
        .unwrap();
        let start = Instant::now();
        while arrivals.get(&id).map_or(0, HashSet::len) < PHONES {
            let s = tokio::time::timeout(Duration::from_secs(10), seen.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "need {i} reached only {:?} of {PHONES} pages within 10 s",
                        arrivals.get(&id).map(HashSet::len)
                    )
                })
                .expect("phones running");
            arrivals.entry(s.id).or_default().insert(s.phone);
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        posted.push(id);
    }
    for (p, b) in phones.iter().zip(&before) {
        let s = p.stats();
        assert_eq!(s.requests, b.requests, "no request made for a posted need");
        assert_eq!(s.cards.0, 30 + POSTS, "each new need is drawn");
        let per_post = (s.bytes - b.bytes) / POSTS as u64;
        assert!(per_post < 20_000, "{per_post} bytes per posted need");
        assert!(s.errors.is_empty(), "{:?}", s.errors);
    }
    // The timer: a conditional request; the board changed, so a full answer, then 304.
    let p = &phones[0];
    p.tick().await;
    p.tick().await;
    let s = p.stats();
    let cond = format!("GET {} (conditional)", plan.board_path());
    assert_eq!(s.requests[s.requests.len() - 2..], [cond.clone(), cond]);
    assert_eq!((s.board_full, s.board_not_modified), (2, 1), "{s:?}");
    drop(node);
}
