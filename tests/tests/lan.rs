//! Nodes in network namespaces on a bridge, found by mDNS only (no --peer), as laptops
//! on a hub's Wi-Fi. Skips loudly without root; required under CI.

use std::time::{Duration, Instant};

use aidmesh_tests::lan::Lan;
use aidmesh_tests::{wait_converged, wait_for, Node, Opts};

const T: Duration = Duration::from_secs(30);

fn on_lan(lan: &mut Lan, i: u8, passphrase: Option<&str>) -> Node {
    Node::start(
        &format!("host{i}"),
        Opts {
            lan: Some(lan.host(i)),
            passphrase: passphrase.map(str::to_string),
            ..Opts::default()
        },
    )
}

#[test]
fn nodes_on_a_lan_find_each_other_by_mdns_and_share_events() {
    let Some(mut lan) = Lan::new("d") else { return };
    let nodes: Vec<Node> = (1..=3).map(|i| on_lan(&mut lan, i, None)).collect();
    let start = Instant::now();
    wait_for("every node to see the other two by mDNS", T, || {
        nodes
            .iter()
            .all(|n| n.status()["peers"].as_u64() == Some(2))
            .then_some(())
    });
    eprintln!("mDNS: full mesh of 3 after {:?}", start.elapsed());
    nodes[2].need("Water for the school gym");
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_converged(&refs, 1, T);
}

#[test]
fn a_node_of_another_community_on_the_same_lan_connects_to_nobody() {
    let Some(mut lan) = Lan::new("w") else { return };
    let a = on_lan(&mut lan, 1, None);
    let b = on_lan(&mut lan, 2, None);
    let stranger = on_lan(&mut lan, 3, Some("some other words entirely"));
    wait_for("a and b to connect", T, || {
        (a.status()["peers"].as_u64() == Some(1)).then_some(())
    });
    wait_for("the stranger to notice the other community", T, || {
        stranger.log().contains("another community").then_some(())
    });
    a.need("Insulin");
    stranger.need("Stranger's post");
    wait_converged(&[&a, &b], 1, T);
    assert_eq!(stranger.status()["peers"], 0);
    assert_eq!(stranger.events(), 1);
    assert_eq!(a.events(), 1);
}
