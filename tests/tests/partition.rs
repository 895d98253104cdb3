//! Honest delivery across a partition (issue 11), in the namespace test bed: four hosts
//! found by mDNS, split 2|2. An item posted on each side is known only at that side's
//! hubs (`known_at` never names a hub across the split) until the heal, then at all 4.
//! Needs root: `#[ignore = "needs root"]`, run with `--include-ignored` (CI does).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aidmesh_tests::lan::{Lan, Segment};
use aidmesh_tests::{poll, wait_for, LanHost, Node, Opts};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// How long the split side is watched for a false claim once its own side confirmed.
const WATCH: Duration = Duration::from_secs(10);

const EVERY: Duration = Duration::from_millis(200);

/// The short author id hubs are known by in `known_at` (and the roster's `node`).
fn short_author(n: &Node) -> String {
    n.status()["author"].as_str().expect("author")[..8].to_string()
}

/// The nodes (short ids) that `node` says hold the item `id`, and its `known` count.
fn known_at(node: &Node, id: &str) -> (BTreeSet<String>, Value) {
    let item = node.get(&format!("/api/v1/items/{id}"));
    let at = item["known_at"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no known_at in {item:#}", node.name))
        .iter()
        .map(|k| k["node"].as_str().unwrap_or("").to_string())
        .collect();
    (at, item["known"].clone())
}

/// The roster of `node` (`GET /api/v1/hubs`).
fn roster(node: &Node) -> Vec<Value> {
    let v = node.get("/api/v1/hubs");
    v.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{}: the roster is not an array: {v:#}", node.name))
}

#[test]
#[ignore = "needs root"]
fn each_side_of_a_partition_sees_only_its_own_hubs_until_the_heal() {
    let mut lan = Lan::new("p11");
    let hs: Vec<LanHost> = (1..=4).map(|i| lan.host(i)).collect();
    let nodes: Vec<Node> = hs
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Node::start(
                &format!("host{}", i + 1),
                Opts {
                    lan: Some(h.clone()),
                    ..Opts::default()
                },
            )
        })
        .collect();
    let ids: Vec<String> = nodes.iter().map(short_author).collect();
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    let west: BTreeSet<String> = ids[..2].iter().cloned().collect();
    let east: BTreeSet<String> = ids[2..].iter().cloned().collect();

    // Every hub hears of every other before the split.
    wait_for("every node to see 3 peers by mDNS", T, || {
        nodes
            .iter()
            .all(|n| n.status()["peers"].as_u64() == Some(3))
            .then_some(())
    });
    poll("every roster to list the 4 hubs", T, EVERY, || {
        nodes.iter().all(|n| roster(n).len() == 4).then_some(())
    });

    // Split: hosts 3 and 4 on their own LAN.
    lan.move_to(&hs[2], Segment::B);
    lan.move_to(&hs[3], Segment::B);
    let w = nodes[0].need("west: sandbags for Mill Lane");
    let e = nodes[3].need("east: water for the school");

    // Each side confirms its own pair within seconds...
    for (poster, id, side) in [(&nodes[0], &w, &west), (&nodes[3], &e, &east)] {
        poll(
            &format!("{}: the item known at both hubs of its side", poster.name),
            T,
            EVERY,
            || (known_at(poster, id).0 == *side).then_some(()),
        );
    }
    // ...and, watched a while, never claims a hub across the split.
    let start = Instant::now();
    while start.elapsed() < WATCH {
        for (node, id, side) in [
            (&nodes[0], &w, &west),
            (&nodes[1], &w, &west),
            (&nodes[2], &e, &east),
            (&nodes[3], &e, &east),
        ] {
            let (at, known) = known_at(node, id);
            assert!(
                at.is_subset(side),
                "{}: known_at names a hub across the split: {at:?} (this side: {side:?})",
                node.name
            );
            assert_eq!(known["of"], 4, "{}: the roster still has 4 hubs", node.name);
            assert_eq!(
                known["at"],
                at.len(),
                "{}: known.at counts known_at",
                node.name
            );
        }
        std::thread::sleep(EVERY); // pacing of the watch, not synchronisation
    }

    // Heal: both items become known at all 4, at every node.
    lan.move_to(&hs[2], Segment::A);
    lan.move_to(&hs[3], Segment::A);
    let healed = Instant::now();
    for node in &nodes {
        for id in [&w, &e] {
            poll(
                &format!("{}: {id} known at all 4 hubs after the heal", node.name),
                T,
                EVERY,
                || (known_at(node, id).0 == all).then_some(()),
            );
        }
    }
    eprintln!(
        "REPORT p11: 2|2 partition; each side's items known only at its 2 hubs for {} s; known at all 4 on every node {} ms after healing",
        WATCH.as_secs(),
        healed.elapsed().as_millis()
    );
}
