//! A thin link in the namespace test bed (issue 10): a 1 Mbit/s link between two
//! segments carrying a catch-up of 10,000 events while an urgent event must still
//! cross at once. It prints a `REPORT` line (figures in docs/reliability.md, "Thin
//! link and gossip amplification"; the amplification scenario is `field_amp.rs`). It
//! needs root, so it is `#[ignore = "needs root"]`: run it with `--include-ignored`
//! (CI does).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_tests::lan::{Lan, Segment};
use aidmesh_tests::thin::{make_events, prefill, ThinLink};
use aidmesh_tests::{http, poll, wait_for, Node, Opts};

/// How soon an urgent event must cross the thin link while the catch-up fills it.
const URGENT_BOUND: Duration = Duration::from_secs(10);

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lan_opts(host: aidmesh_tests::LanHost, sync_every: &str) -> Opts {
    Opts {
        lan: Some(host),
        sync_every: Some(sync_every.into()),
        ..Opts::default()
    }
}

fn holds(node: &Node, id: &str) -> bool {
    let (code, _) = http_get(node, &format!("/api/v1/items/{id}"));
    code == 200
}

fn http_get(node: &Node, path: &str) -> (u16, ()) {
    let code = http()
        .get(&format!("{}{path}", node.api_url()))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (code, ())
}

#[test]
#[ignore = "needs root"]
fn thin_link_carries_a_catch_up_and_urgent_events_still_cross() {
    const N: usize = 10_000;
    let mut lan = Lan::new("t");
    let link = ThinLink::new(&lan, "t", "1mbit");
    let events = make_events(N, wall_ms());
    let event_bytes: usize = events.iter().map(Vec::len).sum();
    let dir = tempfile::Builder::new()
        .prefix("thin-full")
        .tempdir()
        .expect("tempdir");
    prefill(dir.path(), &events);
    let far = lan.host(2);
    lan.move_to(&far, Segment::B);
    let full = Node::open("thin-full", dir, lan_opts(lan.host(1), "10m"));
    let before = link.bytes();
    let t = Instant::now();
    let empty = Node::start("thin-empty", lan_opts(far, "10m"));
    // The catch-up is under way once some events have crossed.
    wait_for(
        "the catch-up to start across the link",
        Duration::from_secs(120),
        || (empty.events() >= 300).then_some(()),
    );
    let posted = Instant::now();
    let id = full.need("URGENT: the bridge on Mill Road is down");
    let urgent = wait_for(
        "the urgent event to cross during the catch-up",
        Duration::from_secs(120),
        || holds(&empty, &id).then(|| posted.elapsed()),
    );
    let held_then = empty.events();
    wait_for("the catch-up to finish", Duration::from_secs(600), || {
        (empty.events() > N as u64).then_some(())
    });
    let took = t.elapsed();
    // The closing sync rounds are over once the link falls quiet: no byte crossed it
    // between two readings half a second apart.
    let mut last = link.bytes();
    let crossed = poll(
        "the link to fall quiet after the catch-up (no byte across it for 500 ms)",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            let now = link.bytes();
            let quiet = now == last;
            last = now;
            quiet.then_some(now - before)
        },
    );
    eprintln!(
        "REPORT thin link: {N} events ({event_bytes} bytes) caught up across 1 Mbit/s in {:.1} s \
         (the wire alone: {:.1} s); {crossed} bytes crossed the link ({:.2}x the events' bytes); \
         an urgent event posted with {held_then} of {N} across crossed in {} ms",
        took.as_secs_f64(),
        event_bytes as f64 * 8.0 / 1e6,
        crossed as f64 / event_bytes as f64,
        urgent.as_millis()
    );
    assert!(
        urgent < URGENT_BOUND,
        "the urgent event took {} ms to cross behind the catch-up (bound {} s)",
        urgent.as_millis(),
        URGENT_BOUND.as_secs()
    );
    assert!(
        (crossed as f64) < event_bytes as f64 * 2.0,
        "{crossed} bytes crossed for {event_bytes} bytes of events"
    );
}
