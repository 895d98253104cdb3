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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::body::{CheckIn, Consent, Outcome, PersonRegistered, Sharing};
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
    let mut rng = Rng(42);
    let start = wall_ms() - 86_400_000;
    (0..items)
        .map(|i| {
            let n = 1 + rng.below(20) as u32;
            let post = Post {
                title: format!("Drinking water, {n} litres, near Mill Lane ({i})"),
                category: CATEGORIES[rng.below(CATEGORIES.len())],
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
    let store = Store::open(&dir.join("db")).expect("open store");
    let profile = aidmesh_node::node::load_profile(&store)
        .expect("profile")
        .expect("initialised");
    let me = Identity::from_seed(profile.seed);
    let mut events = board(items);
    events.extend(register(&me, people));
    let engine = Engine::open(store, me, profile.community, 0).expect("open engine");
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

/// GET the export: (time, bytes).
fn fetch(node: &Node, format: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut r = http()
        .get(format!("{}/api/v1/export?format={format}", node.api_url()))
        .call()
        .unwrap_or_else(|e| panic!("GET export {format}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "GET export {format}");
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .expect("answer");
    (t.elapsed(), body.len())
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
