//! The events benchmarked: realistic signed needs and offers, and filling a node's
//! store with them through the engine (4. ingest).

use std::path::Path;
use std::time::{Duration, Instant};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::{Body, Category, Coords, Event, Identity, Place, Post, Timestamp, Urgency};
use aidmesh_tests::bench_util::{ingest, init_dir, open_engine, wall_ms};

use crate::env::tempdir;

/// xorshift64*: enough variety for realistic bodies, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const THINGS: [(&str, Category, &str); 10] = [
    ("Bottled water", Category::Water, "litres"),
    ("Tinned food and a tin opener", Category::Food, "boxes"),
    ("Insulin pens (need a fridge)", Category::Medical, "pens"),
    ("Dry blankets and sleeping bags", Category::Shelter, "bags"),
    ("Phone charging from a generator", Category::Power, "phones"),
    (
        "Lift to the evacuation centre",
        Category::Transport,
        "seats",
    ),
    (
        "Help shovelling mud out of a ground floor",
        Category::Cleanup,
        "people",
    ),
    (
        "Someone to sit with an elderly neighbour",
        Category::Care,
        "hours",
    ),
    ("Nappies size 4 and baby formula", Category::Care, "packs"),
    (
        "Chainsaw and operator for a fallen tree",
        Category::Rescue,
        "people",
    ),
];

const STREETS: [&str; 8] = [
    "Mill Lane",
    "Elm Street",
    "Station Road",
    "Church Walk",
    "Riverside Drive",
    "Hill Crescent",
    "Market Square",
    "Quarry Road",
];

const NAMES: [&str; 8] = [
    "Sam", "Priya", "Tomasz", "Aisha", "Joe", "Mei", "Ana", "Kofi",
];

/// A need or offer of a realistic size (title, category, details, place, contact).
fn body(rng: &mut Rng, i: usize) -> Body {
    let (thing, category, unit) = THINGS[rng.below(THINGS.len())];
    let street = STREETS[rng.below(STREETS.len())];
    let n = 1 + rng.below(20) as u32;
    let post = Post {
        title: format!("{thing}, {n} {unit}, near {street}"),
        category,
        details: format!(
            "Ground floor flooded since Tuesday night; {} people here including two \
             children. Ring the bell at the side gate, we are upstairs. Ref {i}.",
            1 + rng.below(8)
        ),
        quantity: Some(n),
        unit: unit.to_string(),
        urgency: Urgency::ALL[rng.below(Urgency::ALL.len())],
        place: Place {
            label: format!("{} {street}", 1 + rng.below(200)),
            coords: Coords::from_degrees(
                51.44 + rng.below(10_000) as f64 * 1e-5,
                -2.60 + rng.below(10_000) as f64 * 1e-5,
            ),
        },
        contact: format!(
            "Ask for {} at the {street} hub, 07700 {:06}",
            NAMES[rng.below(NAMES.len())],
            rng.below(1_000_000)
        ),
        expires_ms: None,
        related: None,
    };
    if rng.below(3) == 0 {
        Body::Offer(post)
    } else {
        Body::Need(post)
    }
}

/// `n` signed events by 50 authors, spread over the last 7 days, on two threads.
pub(crate) fn make_events(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let authors: Vec<Identity> = (1..=50u8).map(|i| Identity::from_seed([i; 32])).collect();
    // Dated over the past 7 days, but after the build floor: an event stamped before
    // it is the rare case of a writer with its clock in 1970, for which each node
    // also records the arrival time (a second write and an entry in the view).
    let end = wall_ms() - 60_000;
    let start = (end - 7 * 86_400_000).max(aidmesh_node::engine::BUILD_MS + 1);
    let span = end.saturating_sub(start).max(1);
    let step = span / n.max(1) as u64;
    let half = n / 2;
    let make = |range: std::ops::Range<usize>, seed: u64| {
        let mut rng = Rng(seed | 1);
        range
            .map(|i| {
                let b = body(&mut rng, i);
                let a = &authors[rng.below(authors.len())];
                let ts = Timestamp::from_millis(start + i as u64 * step);
                Event::create(a, ts, &b).into_bytes()
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let second = s.spawn(|| make(half..n, seed.rotate_left(17)));
        let mut out = make(0..half, seed);
        out.extend(second.join().expect("signing thread"));
        out
    })
}

/// Initialises a node directory of the test community and ingests `events` into its
/// store through the engine (validated, one flush per batch). Returns the ingest time.
pub(crate) fn prefill(dir: &Path, events: &[Vec<u8>], batch: usize) -> Duration {
    init_dir(dir);
    let engine = open_engine(dir);
    let took = ingest(&engine, events, batch);
    // The daily quota per author (aidmesh_protocol::quota) keeps at most 10,000 events
    // a UTC day from each of the 50 authors, and the events are dated after the
    // build: a node built today keeps 500,000 at most.
    assert_eq!(
        engine.len(),
        events.len(),
        "the store kept {} of {} events: past the daily quota per author. For a million \
         events build with SOURCE_DATE_EPOCH a week back (touch node/build.rs), e.g. \
         SOURCE_DATE_EPOCH=$(( $(date +%s) - 8*86400 )) cargo build --release ...",
        engine.len(),
        events.len()
    );
    took
}

/// Ingests events one at a time, each flushed before the next, for up to `budget`.
pub(crate) fn ingest_one_by_one(events: &[Vec<u8>], budget: Duration) -> (usize, f64) {
    let dir = tempdir("ingest-single");
    let engine = Engine::open(
        Store::open(dir.path()).expect("open store"),
        Identity::from_seed([200; 32]),
        "test".into(),
        0,
    )
    .expect("open engine");
    let t = Instant::now();
    let mut n = 0;
    for e in events {
        engine.ingest_durable(e, Origin::Sync).expect("ingest");
        n += 1;
        if t.elapsed() > budget {
            break;
        }
    }
    (n, n as f64 / t.elapsed().as_secs_f64())
}
