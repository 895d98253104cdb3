//! A thin link for the namespace test bed (issue 10): the two segments of a
//! [`Lan`] joined through a "router" namespace that bridges them at 1 Mbit/s (`tc tbf`
//! on both of its ends), as a long Wi-Fi link across the street; and the helpers the
//! thin-link and amplification scenarios share (events made and filed ahead, byte
//! counters read from `/proc/net/dev` inside a namespace).
//!
//! The router namespace is a layer-2 bridge, so mDNS crosses it and the two segments
//! stay one subnet; every byte between them enters one of its two ends.

use std::path::Path;
use std::process::Command;

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::{Body, Category, Event, Identity, Place, Post, Timestamp, Urgency};

use crate::lan::{Lan, Segment};
use crate::TEST_PASSPHRASE;

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "building the thin link: {cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The segments A and B of a [`Lan`] joined by a rate-limited bridge namespace.
pub struct ThinLink {
    ns: String,
}

impl ThinLink {
    /// Joins `lan`'s two segments through a namespace whose two ends each send at
    /// `rate` (tc syntax, e.g. `"1mbit"`), with a short queue (50 ms at that rate).
    pub fn new(lan: &Lan, tag: &str, rate: &str) -> ThinLink {
        let n = std::process::id() % 100_000;
        let ns = format!("amthin{tag}{n}");
        let link = ThinLink { ns: ns.clone() };
        crate::lan::register_netns(&ns);
        run("ip", &["netns", "add", &ns]);
        for (end, seg) in [("a0", Segment::A), ("b0", Segment::B)] {
            let outside: String = format!("t{end}{tag}{n}").chars().take(15).collect();
            run(
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", end, "netns", &ns,
                ],
            );
            run(
                "ip",
                &["link", "set", &outside, "master", &lan.bridge_name(seg)],
            );
            run("ip", &["link", "set", &outside, "up"]);
        }
        run("ip", &["-n", &ns, "link", "add", "br0", "type", "bridge"]);
        run(
            "ip",
            &[
                "-n",
                &ns,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        );
        for end in ["a0", "b0"] {
            run("ip", &["-n", &ns, "link", "set", end, "master", "br0"]);
            run("ip", &["-n", &ns, "link", "set", end, "up"]);
            run(
                "tc",
                &[
                    "-n", &ns, "qdisc", "add", "dev", end, "root", "tbf", "rate", rate, "burst",
                    "8kb", "latency", "50ms",
                ],
            );
        }
        run("ip", &["-n", &ns, "link", "set", "br0", "up"]);
        link
    }

    /// Bytes that have crossed the link so far, both ways (each enters one end).
    pub fn bytes(&self) -> u64 {
        rx_bytes(&self.ns, "a0") + rx_bytes(&self.ns, "b0")
    }
}

impl Drop for ThinLink {
    fn drop(&mut self) {
        // The veth pairs go with the namespace.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Bytes received on `dev` inside namespace `ns` (from its `/proc/net/dev`).
pub fn rx_bytes(ns: &str, dev: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/dev"])
        .output()
        .expect("ip netns exec");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == dev).then(|| rest.split_whitespace().next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no counters for {dev} in namespace {ns}:\n{text}"))
}

/// A need as the API makes it for `title` and `details` (category water), signed by
/// a fixed author: to learn an event's size on the wire without asking a node.
pub fn need_like(title: &str, details: &str, ts_ms: u64) -> Event {
    let body = Body::Need(Post {
        title: title.into(),
        category: Category::Water,
        details: details.into(),
        quantity: None,
        unit: String::new(),
        urgency: Urgency::Normal,
        place: Place::default(),
        contact: String::new(),
        expires_ms: None,
        related: None,
    });
    Event::create(
        &Identity::from_seed([7; 32]),
        Timestamp::from_millis(ts_ms),
        &body,
    )
}

/// `n` signed needs with 120 characters of details (about 300 bytes each), stamped
/// 10 ms apart before `now_ms` (and after the node's build floor).
pub fn make_events(n: usize, now_ms: u64) -> Vec<Vec<u8>> {
    let who = Identity::from_seed([8; 32]);
    let details: String = "water for the shelter on the hill, bring containers; ".repeat(3);
    (0..n)
        .map(|i| {
            let body = Body::Need(Post {
                title: format!("need number {i}"),
                category: Category::Water,
                details: details.chars().take(120).collect(),
                quantity: None,
                unit: String::new(),
                urgency: Urgency::Normal,
                place: Place::default(),
                contact: String::new(),
                expires_ms: None,
                related: None,
            });
            let ts =
                (now_ms - (n - i) as u64 * 10).max(aidmesh_node::engine::BUILD_MS + 1 + i as u64);
            Event::create(&who, Timestamp::from_millis(ts), &body).into_bytes()
        })
        .collect()
}

/// Initialises a node directory of the test community and files `events` into its
/// store through the engine (validated), as the bench does.
pub fn prefill(dir: &Path, events: &[Vec<u8>]) {
    let profile =
        aidmesh_node::node::init(dir, "test", Some(TEST_PASSPHRASE)).expect("init data dir");
    let store = Store::open(&dir.join("db")).expect("open store");
    let engine = Engine::open(
        store,
        Identity::from_seed(profile.seed),
        profile.community.clone(),
        0,
    )
    .expect("open engine");
    for chunk in events.chunks(1_000) {
        let r = engine.ingest_batch(chunk, Origin::Sync).expect("ingest");
        assert!(r.rejected.is_empty(), "rejected: {:?}", r.rejected.first());
    }
}
