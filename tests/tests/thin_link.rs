//! Thin links and gossip amplification in the namespace test bed (issue 10): a
//! 1 Mbit/s link between two segments carrying a catch-up of 10,000 events while an
//! urgent event must still cross at once; and the bytes each of 30 hosts on one
//! segment receives per event. Each prints a `REPORT` line (figures in
//! docs/reliability.md, "Thin link and gossip amplification"). They need root, so
//! they are `#[ignore = "needs root"]`: run them with `--include-ignored` (CI does).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_tests::lan::{Lan, Segment};
use aidmesh_tests::thin::{make_events, need_like, prefill, rx_bytes, ThinLink};
use aidmesh_tests::{http, wait_for, Node, Opts};

/// 120 characters of details, as in the simulation's events.
const DETAILS: &str = "Water for the shelter on the hill: bring containers, we have a pump but no \
                       hoses. Ask for Ana at the back door, after six.";

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
    // Let the closing sync rounds finish before reading the counters.
    std::thread::sleep(Duration::from_millis(500));
    let crossed = link.bytes() - before;
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

#[test]
#[ignore = "needs root"]
fn thirty_hosts_gossip_amplification() {
    const HOSTS: u8 = 30;
    const EVENTS: usize = 40;
    let mut lan = Lan::new("g");
    let hosts: Vec<_> = (1..=HOSTS).map(|i| lan.host(i)).collect();
    // Periodic sync out of the way (10 min): what is measured is what gossip costs.
    // (With the default 30 s, sessions with 29 peers each way are about 16 KB per host
    // per second on the wire, and their jitter swamps the events' share.)
    let nodes: Vec<Node> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Node::start(&format!("g{}", i + 1), lan_opts(h.clone(), "10m")))
        .collect();
    let peers = u64::from(HOSTS) - 1;
    let t = Instant::now();
    wait_for(
        &format!("every node to see {peers} peers by mDNS"),
        Duration::from_secs(300),
        || {
            nodes
                .iter()
                .all(|n| n.status()["peers"].as_u64() == Some(peers))
                .then_some(())
        },
    );
    let mesh = t.elapsed();
    // Gossipsub builds its mesh at its first heartbeats; first syncs settle.
    std::thread::sleep(Duration::from_secs(5));
    let rx = |h: &aidmesh_tests::LanHost| rx_bytes(&h.netns, "eth0");
    let total = |hosts: &[aidmesh_tests::LanHost]| -> u64 { hosts.iter().map(rx).sum() };
    // An idle window first (periodic sync, mDNS, keep-alives), then a window of the
    // same length with the events: the difference is what the events cost. Nothing
    // polls the nodes during either window.
    let window = Duration::from_millis(250) * EVENTS as u32 + Duration::from_secs(3);
    let idle0 = total(&hosts);
    std::thread::sleep(window);
    let idle = total(&hosts) - idle0;
    let t = Instant::now();
    let busy0 = total(&hosts);
    let mut ids = Vec::new();
    for i in 0..EVENTS {
        let n = &nodes[i * 7 % nodes.len()];
        let title = format!("amplification probe {i:03}");
        let v = n.post(
            "/api/v1/needs",
            &serde_json::json!({ "title": title, "category": "water", "details": DETAILS }),
        );
        ids.push(v["id"].as_str().expect("id").to_string());
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(window.saturating_sub(t.elapsed()));
    let busy = total(&hosts) - busy0;
    let last = ids.last().expect("posted").clone();
    wait_for(
        "every host to hold every probe",
        Duration::from_secs(120),
        || nodes.iter().all(|n| holds(n, &last)).then_some(()),
    );
    let size = need_like("amplification probe 000", DETAILS, wall_ms())
        .bytes()
        .len();
    let per = busy.saturating_sub(idle) as f64 / f64::from(HOSTS) / EVENTS as f64;
    eprintln!(
        "REPORT amplification: {HOSTS} hosts (full mesh by mDNS in {:.1} s), {EVENTS} events of \
         {size} bytes in {:.1} s: {per:.0} bytes received per host per event on eth0 \
         ({:.1}x the event; every byte on the wire, IP and TCP headers and ACKs included; \
         an idle window of the same length, {:.0} bytes per host, subtracted)",
        mesh.as_secs_f64(),
        window.as_secs_f64(),
        per / size as f64,
        idle as f64 / f64::from(HOSTS)
    );
    for n in &nodes {
        for id in &ids {
            assert!(holds(n, id), "an event did not reach every host");
        }
    }
}
