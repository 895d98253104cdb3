//! A hub that comes back hands on what it caught up: on a chain A - B - C (A and C
//! never connect), events B fetches by sync from one side reach the other at once,
//! not at the other's next periodic sync.

use std::time::{Duration, Instant};

use aidmesh_tests::{wait_for, Node, Opts};

const T: Duration = Duration::from_secs(30);

/// Periodic anti-entropy far beyond the test: only the relay can deliver in time. No
/// peer exchange: on loopback a would learn c's address from b and make a triangle.
fn slow_sync(peers: &[&Node]) -> Opts {
    Opts {
        peers: peers.iter().map(|n| n.addr()).collect(),
        sync_every: Some("5m".into()),
        args: vec!["--no-peer-exchange".into()],
        ..Opts::default()
    }
}

fn has_all(n: &Node, ids: &[String]) -> bool {
    let held = n.item_ids();
    ids.iter().all(|id| held.contains(id))
}

#[test]
fn a_restarted_middle_hub_passes_on_what_it_caught_up_within_5_s() {
    let a = Node::start("a", slow_sync(&[]));
    let c = Node::start("c", slow_sync(&[]));
    let mut b = Node::start("b", slow_sync(&[&a, &c]));
    wait_for("b connected to a and c", T, || {
        (b.status()["peers"].as_u64() == Some(2)).then_some(())
    });
    let first = vec![c.need("Sandbags for the school gate")];
    wait_for("a to get c's first need through b (gossip)", T, || {
        has_all(&a, &first).then_some(())
    });

    b.kill();
    let from_c: Vec<String> = (0..3)
        .map(|i| c.need(&format!("Drinking water for {i} Mill Lane")))
        .collect();
    let from_a: Vec<String> = (0..2)
        .map(|i| a.need(&format!("Blankets for {i} Quay Street")))
        .collect();

    let started = Instant::now();
    b.restart();
    wait_for("a to get c's needs through the restarted b", T, || {
        has_all(&a, &from_c).then_some(())
    });
    let to_a = started.elapsed();
    wait_for("c to get a's needs through the restarted b", T, || {
        has_all(&c, &from_a).then_some(())
    });
    let to_c = started.elapsed();
    eprintln!(
        "relay after restart: c's needs at a {} ms, a's needs at c {} ms after b was started",
        to_a.as_millis(),
        to_c.as_millis()
    );
    assert!(
        to_a < Duration::from_secs(5) && to_c < Duration::from_secs(5),
        "caught-up events took {to_a:?} (to a) and {to_c:?} (to c) after b was started; want < 5 s"
    );
}
