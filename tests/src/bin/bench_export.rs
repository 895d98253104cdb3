//! End-to-end cost of `GET /api/v1/export` on a big board (issue 12), against a real
//! `aidmesh up` process on loopback. Results go to `docs/benchmarks.md` ("Exports for
//! responders"); this prints the same table.
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_export [-- --items 20000]
//! ```
//!
//! The node's data directory is filled through the engine with `--items` needs and
//! offers (default 20,000, two thirds needs, every one placed, signed by 50 authors),
//! plus 1,000 people who agreed to be shared, with 3 check-ins each; the node is
//! started, and each format is fetched 5 times (after one warm-up): the median time of
//! one request (loopback HTTP included), the size of the file, and the node's peak
//! resident memory during the requests above its resident memory before them.

use std::path::Path;
use std::time::Duration;

use aidmesh_protocol::body::{CheckIn, Consent, Outcome, PersonRegistered, Sharing};
use aidmesh_protocol::fixture::{mill_lane_post, Xorshift};
use aidmesh_protocol::{Body, Category, Event, Identity, Place, Timestamp};
use aidmesh_tests::bench_util::{ingest, memory_kb, open_engine, pid_of, timed_get, wall_ms};
use aidmesh_tests::{Node, Opts};

const CATEGORIES: [Category; 6] = [
    Category::Water,
    Category::Food,
    Category::Medical,
    Category::Shelter,
    Category::Power,
    Category::Rescue,
];

/// `items` needs and offers by 50 authors over the last day.
fn board(items: usize) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    let mut rng = Xorshift(42);
    let start = wall_ms() - 86_400_000;
    (0..items)
        .map(|i| {
            let post = mill_lane_post(&mut rng, i, Some(&CATEGORIES));
            let body = if i % 3 == 2 {
                Body::Offer(post)
            } else {
                Body::Need(post)
            };
            let ts = Timestamp::from_millis(start + i as u64);
            Event::create(&authors[i % authors.len()], ts, &body).into_bytes()
        })
        .collect()
}

/// `people` people registered by `hub`, each shared with responders and checked on 3
/// times.
fn register(hub: &Identity, people: usize) -> Vec<Vec<u8>> {
    let start = wall_ms() - 3_600_000;
    let mut out = Vec::new();
    for i in 0..people {
        let at = |k: u64| Timestamp::from_millis(start + i as u64 * 10 + k);
        let person = Event::create(
            hub,
            at(0),
            &Body::Person(PersonRegistered {
                name: format!("Resident {i} of Mill Lane"),
                place: Place {
                    label: format!("{} Mill Lane, flat {}", 1 + i % 200, i % 7),
                    coords: None,
                },
                risks: vec!["oxygen".into(), "lives alone".into()],
                check_every_secs: 12 * 3600,
                consent: Consent::Own,
                phone: String::new(),
                note: String::new(),
            }),
        );
        let id = person.id();
        out.push(person.into_bytes());
        out.push(
            Event::create(
                hub,
                at(1),
                &Body::Sharing(Sharing {
                    person: id,
                    share: true,
                }),
            )
            .into_bytes(),
        );
        for (k, outcome) in [Outcome::Safe, Outcome::NoAnswer, Outcome::Safe]
            .into_iter()
            .enumerate()
        {
            let check = Body::CheckIn(CheckIn {
                person: id,
                outcome,
                note: "knocked twice".into(),
                by: "Sam".into(),
            });
            out.push(Event::create(hub, at(2 + k as u64), &check).into_bytes());
        }
    }
    out
}

/// Stores the board in a stopped node's data directory through its engine.
fn prefill(dir: &Path, items: usize, people: usize) {
    let engine = open_engine(dir);
    let mut events = board(items);
    events.extend(register(engine.identity(), people));
    ingest(&engine, &events, 1_000);
}

/// GET the export: (time, bytes).
fn fetch(node: &Node, format: &str) -> (Duration, usize) {
    let (took, body) = timed_get(node, &format!("/api/v1/export?format={format}"));
    (took, body.len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(20_000usize);
    let people = 1_000;
    let bin = aidmesh_tests::binary();
    eprintln!("node binary: {}", bin.display());
    let mut node = Node::start(
        "bench-export",
        Opts {
            start_timeout: Some(Duration::from_secs(120)),
            ..Opts::default()
        },
    );
    assert!(
        node.interrupt(),
        "the node stops cleanly before the prefill"
    );
    prefill(node.dir(), items, people);
    node.restart();
    let pid = pid_of(node.dir());
    println!("board: {items} needs and offers, {people} people shared with 3 check-ins each");
    println!("| format | median time (5 runs) | file | node's peak extra memory |");
    println!("|---|---|---|---|");
    for format in ["csv", "hxl", "geojson", "pfif"] {
        fetch(&node, format); // warm-up
        let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let (before, _) = memory_kb(pid);
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let (t, n) = fetch(&node, format);
            times.push(t);
            size = n;
        }
        let (_, hwm) = memory_kb(pid);
        times.sort();
        let extra = if reset {
            format!("{:.1} MB", hwm.saturating_sub(before) as f64 / 1e3)
        } else {
            "unknown".into()
        };
        println!(
            "| {format} | {:.0} ms | {:.1} MB | {extra} |",
            times[times.len() / 2].as_secs_f64() * 1e3,
            size as f64 / 1e6
        );
    }
}
