//! Cost of honest delivery (issue 11): bytes of hub summaries per hub per minute, and
//! the CPU time to make one and to check one, at 30 hubs holding 100,000 events each.
//! Results go to `docs/benchmarks.md` ("Honest delivery"); this prints the same table.
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_delivery
//! ```
//!
//! It runs the node's own code (`aidmesh_node::delivery::Delivery`, which the network
//! task drives) in one process, without sockets: 30 hubs, each with the same 100,000
//! events spread over the last 30 days; then 3 simulated minutes in 100 ms steps,
//! during which new events arrive at every hub (as gossip delivers them) at a given
//! rate, every hub sends its summary whenever the node's cadence lets it
//! (`Delivery::summary_due`: full or delta, as the node decides), and every other
//! hub's summaries are received by every hub (so each hears of 29 others, which sets
//! the node's gap and keep-alive), and checked, timed at one hub, which stands for
//! every receiver (it holds every hub's last full summary, so it applies every
//! delta). "All full" is what the same summaries would have cost had each been full
//! (each delta applied to its base). Bytes are summary
//! payloads; gossipsub's framing adds about 50 bytes per message (topic name, protobuf
//! fields), counted separately below.

use std::time::Instant;

use aidmesh_node::delivery::Delivery;
use aidmesh_protocol::delivery::{community_tag, Summary};
use aidmesh_protocol::{Body, Category, Event, EventId, Identity, Post, Timestamp, Urgency};
use aidmesh_tests::bench_util::{median, wall_ms};

const HUBS: usize = 30;
const EVENTS: usize = 100_000;
/// Long enough for a few keep-alives (about 2 min at 30 hubs), each a full summary.
const MINUTES: u64 = 10;
const STEP_MS: u64 = 100;
/// Gossipsub's framing per message, beyond the payload (estimate: the topic string,
/// protobuf tags and lengths, no signature in anonymous mode).
const GOSSIP_OVERHEAD: usize = 50;

fn id(n: u64) -> EventId {
    let mut out = [0u8; 32];
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in out.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    EventId(out)
}

struct Run {
    per_minute: f64,
    all_full_per_minute: f64,
    messages_per_minute: f64,
    fulls_per_minute: f64,
    mean_size: f64,
    mean_full: f64,
    /// None when no delta was sent.
    mean_delta: Option<f64>,
    make_ms: f64,
    check_ms: f64,
}

/// One simulation with a new event every `every_ms` mesh-wide (`None`: no new events).
fn run(every_ms: Option<u64>) -> Run {
    let psk = [7u8; 32];
    let start = wall_ms();
    let span = 30 * 24 * 3_600_000u64;
    let mut base: Vec<(Timestamp, EventId)> = (0..EVENTS as u64)
        .map(|n| {
            (
                Timestamp::from_millis(start - span + n * span / EVENTS as u64),
                id(n),
            )
        })
        .collect();
    base.sort();
    let ids: Vec<Identity> = (0..HUBS)
        .map(|i| Identity::from_seed([i as u8 + 1; 32]))
        .collect();
    let hubs: Vec<Delivery> = ids
        .iter()
        .map(|i| {
            let d = Delivery::new(i.author(), &psk);
            d.hold(base.clone());
            d
        })
        .collect();
    let author = Identity::from_seed([200; 32]);
    let (mut bytes, mut messages) = (0usize, 0usize);
    // Full summaries among them: count and bytes.
    let (mut full_bytes, mut fulls) = (0usize, 0usize);
    // Each hub's last full summary, and the bytes had every summary been full.
    let mut bases: Vec<Option<Summary>> = vec![None; HUBS];
    let mut all_full_bytes = 0usize;
    let tag = community_tag(&psk);
    let (mut make, mut check) = (Vec::new(), Vec::new());
    let mut next_event = every_ms.map(|e| start + e);
    let mut n = 0u64;
    let mut now = start;
    // The first half minute (every hub's first summary) is start-up, not steady state.
    let warm = start + 30_000;
    while now < warm + MINUTES * 60_000 {
        if let (Some(at), Some(every)) = (next_event, every_ms) {
            if now >= at {
                n += 1;
                let e = Event::create(
                    &author,
                    Timestamp::from_millis(now - 500),
                    &Body::Need(Post::new(
                        format!("need {n}"),
                        Category::Water,
                        Urgency::Normal,
                    )),
                );
                for h in &hubs {
                    h.observe(&e, now);
                }
                next_event = Some(at + every);
            }
        }
        for (i, h) in hubs.iter().enumerate() {
            let t = Instant::now();
            let Some(s) = h.summary_due(&ids[i], now, now) else {
                continue;
            };
            let made = t.elapsed().as_secs_f64() * 1e3;
            let Ok(opened) = Summary::open(&s, &tag) else {
                panic!("hub {i} made a summary that does not open");
            };
            let full_len = if opened.is_delta() {
                let base = bases[i].as_ref().expect("a delta follows a full summary");
                opened.apply(base).map_or(0, |f| f.wire_len())
            } else {
                bases[i] = Some(opened.clone());
                s.len()
            };
            if now >= warm {
                make.push(made);
                bytes += s.len();
                messages += 1;
                all_full_bytes += full_len;
                if !opened.is_delta() {
                    full_bytes += s.len();
                    fulls += 1;
                }
            }
            // Every other hub receives it; hub 0's checks are timed.
            for (j, h) in hubs.iter().enumerate() {
                if j == i {
                    continue;
                }
                let t = Instant::now();
                h.receive(&s, None, now, now);
                if j == 0 && now >= warm {
                    check.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        now += STEP_MS;
    }
    let per_hub = bytes as f64 / HUBS as f64 / MINUTES as f64;
    Run {
        per_minute: per_hub,
        all_full_per_minute: all_full_bytes as f64 / HUBS as f64 / MINUTES as f64,
        messages_per_minute: messages as f64 / HUBS as f64 / MINUTES as f64,
        fulls_per_minute: fulls as f64 / HUBS as f64 / MINUTES as f64,
        mean_size: bytes as f64 / messages.max(1) as f64,
        mean_full: full_bytes as f64 / fulls.max(1) as f64,
        mean_delta: (messages > fulls)
            .then(|| (bytes - full_bytes) as f64 / (messages - fulls) as f64),
        make_ms: median(make),
        check_ms: median(check),
    }
}

fn main() {
    println!("Honest delivery: {HUBS} hubs, {EVENTS} events each over 30 days, {MINUTES} simulated minutes");
    println!();
    println!("| new events, mesh-wide | summaries / hub / min (of them full) | mean summary (full / delta) | bytes / hub / min (payload) | all full | with gossip framing | received by each node / min | make one (median) | check one (median) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, every) in [
        ("none (quiet)", None),
        ("1 every 10 s", Some(10_000)),
        ("1 a second (busy)", Some(1_000)),
    ] {
        let t = Instant::now();
        let r = run(every);
        let framed = r.per_minute + r.messages_per_minute * GOSSIP_OVERHEAD as f64;
        println!(
            "| {label} | {:.2} ({:.2}) | {:.0} B ({:.0} / {}) | {:.0} B | {:.0} B | {:.0} B | {:.1} KB | {:.2} ms | {:.2} ms |",
            r.messages_per_minute,
            r.fulls_per_minute,
            r.mean_size,
            r.mean_full,
            r.mean_delta.map_or("–".to_string(), |d| format!("{d:.0}")),
            r.per_minute,
            r.all_full_per_minute,
            framed,
            framed * (HUBS - 1) as f64 / 1000.0,
            r.make_ms,
            r.check_ms,
        );
        eprintln!("({label}: {:?})", t.elapsed());
    }
}
