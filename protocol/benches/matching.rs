//! Matching on a crowded board (issue 9): time and peak extra heap of
//! `aidmesh_protocol::matching`, on boards built in memory (no signing, no I/O).
//!
//! ```text
//! cargo bench -p aidmesh-protocol --bench matching
//! ```
//!
//! Each case is run several times; the table gives the median time and the largest
//! peak of heap bytes allocated beyond what was live before the call (a counting
//! global allocator), so the board itself is not counted, only the matching.
//! "all-pairs" is the code before the fix (every need × every offer, cloned), kept
//! here only to show the difference on the same machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::fixture::{mill_lane_post, Xorshift};
use aidmesh_protocol::matching::{match_offers, Matcher, NEARBY_M};
use aidmesh_protocol::view::{Item, ItemState};
use aidmesh_protocol::{AuthorId, Category, EventId, Timestamp};

/// The system allocator, counting live bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`; returns its time and the peak of heap bytes above those live at the start.
fn measure<R>(f: impl FnOnce() -> R) -> (Duration, usize, R) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let t = Instant::now();
    let r = f();
    let took = t.elapsed();
    (took, PEAK.load(Relaxed) - base, r)
}

/// `needs` needs and `offers` offers of realistic size, in `categories` categories,
/// all within about 11 km × 7 km (so nearly every pair in a category is within 10 km:
/// the worst case for the latitude index).
fn board(needs: usize, offers: usize, categories: usize, seed: u64) -> Vec<Item> {
    let mut rng = Xorshift(seed | 1);
    let categories = &Category::ALL[..categories];
    (0..needs + offers)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            Item {
                id: EventId(id),
                kind: if i < needs {
                    BodyKind::Need
                } else {
                    BodyKind::Offer
                },
                author: AuthorId([(i % 50) as u8; 32]),
                created: Timestamp::from_millis(1_790_000_000_000 + i as u64 * 1_000),
                post: mill_lane_post(&mut rng, i, Some(categories)),
                state: ItemState::Open,
                holder: None,
                expired: false,
                history: Vec::new(),
                arrived: None,
            }
        })
        .collect()
}

/// A need with its candidate offers (cloned) and distances, as before issue 9.
type NeedWithCandidates = (Item, Vec<(Item, Option<f64>)>);

/// The matching before issue 9: every need against every offer, each candidate a
/// clone of the offer, unbounded. Returns how many candidates it listed.
fn all_pairs(items: &[Item]) -> usize {
    let active = |i: &&Item| i.state.is_active() && !i.expired;
    let offers: Vec<&Item> = items
        .iter()
        .filter(active)
        .filter(|i| i.kind == BodyKind::Offer)
        .collect();
    let needs: Vec<&Item> = items
        .iter()
        .filter(active)
        .filter(|i| i.kind == BodyKind::Need)
        .collect();
    let all: Vec<NeedWithCandidates> = needs
        .into_iter()
        .map(|need| {
            let mut cands: Vec<(Item, Option<f64>)> = offers
                .iter()
                .filter(|o| o.post.category == need.post.category)
                .filter(|o| match (need.post.quantity, o.post.quantity) {
                    (Some(n), Some(q)) if need.post.unit.eq_ignore_ascii_case(&o.post.unit) => {
                        q >= n
                    }
                    _ => true,
                })
                .filter_map(|o| {
                    let d = match (need.post.place.coords, o.post.place.coords) {
                        (Some(a), Some(b)) => Some(a.distance_m(b)),
                        _ => None,
                    };
                    (!d.is_some_and(|d| d > NEARBY_M)).then(|| ((*o).clone(), d))
                })
                .collect();
            cands.sort_by(|a, b| {
                a.1.unwrap_or(f64::INFINITY)
                    .total_cmp(&b.1.unwrap_or(f64::INFINITY))
                    .then(b.0.post.quantity.cmp(&a.0.post.quantity))
                    .then(a.0.created.cmp(&b.0.created))
                    .then(a.0.id.cmp(&b.0.id))
            });
            (need.clone(), cands)
        })
        .collect();
    all.iter().map(|(_, c)| c.len()).sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `f` `runs` times; prints one table row: median time, largest peak.
fn row(case: &str, what: &str, runs: usize, mut f: impl FnMut() -> String) {
    let mut times = Vec::new();
    let mut peak = 0;
    let mut note = String::new();
    for _ in 0..runs {
        let (t, p, n) = measure(&mut f);
        times.push(t);
        peak = peak.max(p);
        note = n;
    }
    println!(
        "| {case} | {what} | {:.1} ms | {:.2} MB | {note} |",
        median(times).as_secs_f64() * 1e3,
        peak as f64 / 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!("| board | work | median time | peak extra heap | result |");
    println!("|---|---|---|---|---|");
    for (needs, offers, cats, label) in [
        (1_000, 1_000, 1, "1,000 needs × 1,000 offers, one category"),
        (
            1_000,
            1_000,
            11,
            "1,000 needs × 1,000 offers, 11 categories",
        ),
        (500, 500, 1, "500 needs × 500 offers, one category"),
    ] {
        let items = board(needs, offers, cats, 42);
        row(label, "index + first page (20 needs × 5)", 21, || {
            let m = Matcher::new(&items);
            let p = m.page(None, 20, 5);
            format!("{} needs on the page", p.matches.len())
        });
        row(label, "index + every need × best 5", 11, || {
            let all = match_offers(&items, 5);
            let shown: usize = all.iter().map(|m| m.offers.len()).sum();
            let total: usize = all.iter().map(|m| m.total).sum();
            format!("{shown} of {total} candidates listed")
        });
        if needs == 500 && cats == 1 {
            row(label, "all-pairs, unbounded (before)", 3, || {
                format!("{} candidates cloned", all_pairs(&items))
            });
        }
    }
}
