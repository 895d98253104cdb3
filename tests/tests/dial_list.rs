//! The dial list (addresses a node keeps dialling) must not be filled for good by
//! addresses that never answer: spoofed mDNS adverts or made-up `POST /api/v1/peers`.

use std::net::TcpListener;
use std::time::Duration;

use aidmesh_tests::{wait_for, Node, Opts};

const T: Duration = Duration::from_secs(30);

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

#[test]
fn a_real_peer_is_dialled_after_the_dial_list_filled_with_dead_addresses() {
    let a = Node::start("a", Opts::default());
    let b = Node::start("b", Opts::default());
    // More dead addresses than the list holds (64), each with a made-up peer id so
    // that none is mistaken for a connected peer.
    for _ in 0..80 {
        let fake = libp2p::PeerId::random();
        a.connect(&format!("/ip4/127.0.0.1/tcp/{}/p2p/{fake}", closed_port()));
    }
    a.connect(&b.addr());
    let b_id = b.status()["peer_id"].as_str().unwrap_or("").to_string();
    wait_for("a to connect to the real peer b", T, || {
        a.get("/api/v1/peers")["peers"]
            .as_array()?
            .iter()
            .any(|p| p["peer_id"].as_str() == Some(&b_id))
            .then_some(())
    });
}
