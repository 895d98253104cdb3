//! Peer exchange on loopback (no discovery at all: `--no-mdns --no-beacon`): nodes
//! given only one `--peer` find each other through it.

use std::time::Duration;

use aidmesh_tests::{wait_converged, wait_for, Node, Opts};

const T: Duration = Duration::from_secs(60);

#[test]
fn one_peer_is_enough_for_the_whole_group() {
    let hub = Node::start("hub", Opts::default());
    let addr = hub.addr();
    let others: Vec<Node> = (1..=3)
        .map(|i| {
            Node::start(
                &format!("n{i}"),
                Opts {
                    peers: vec![addr.clone()],
                    ..Opts::default()
                },
            )
        })
        .collect();
    let mut all: Vec<&Node> = others.iter().collect();
    all.push(&hub);
    // Each of n1..n3 knows only the hub; peer exchange gives them each other.
    wait_for("every node to be connected to the 3 others", T, || {
        all.iter()
            .all(|n| n.status()["peers"].as_u64() == Some(3))
            .then_some(())
    });
    // The direct links carry events even with the hub gone.
    drop(hub);
    let id = others[0].need("after the hub left");
    wait_converged(&others.iter().collect::<Vec<_>>(), 1, T);
    for n in &others {
        assert!(n.item_ids().contains(&id), "{} lacks the event", n.name);
    }
}
