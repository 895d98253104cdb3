//! A node dials from a port of its own, not from its listening port (issue 10): two
//! nodes dialling each other at once from their listening ports would make one TCP
//! connection by simultaneous open, on which both act as dialer and the handshake
//! fails. That crossing needs lost SYNs to happen often (the 30 % loss scenario of
//! `field_scale.rs`); what is checked here is its precondition, on loopback.

use std::time::Duration;

use aidmesh_tests::{wait_for, Node, Opts};

fn port(addr: &str) -> u16 {
    let mut parts = addr.split('/');
    parts
        .by_ref()
        .find(|p| *p == "tcp")
        .and_then(|_| parts.next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no TCP port in {addr}"))
}

#[test]
fn a_dial_comes_from_another_port_than_the_listening_one() {
    let a = Node::start("port-a", Opts::default());
    let b = Node::start(
        "port-b",
        Opts {
            peers: vec![a.addr()],
            args: vec!["--no-peer-exchange".into()],
            ..Opts::default()
        },
    );
    let b_listens = port(b.status()["listen"][0].as_str().expect("b listens"));
    // a sees b's connection coming from the port b dialled from.
    let from = wait_for("b to connect to a", Duration::from_secs(30), || {
        let s = a.status();
        s["peer_list"][0]["addr"].as_str().map(port)
    });
    assert_ne!(
        from, b_listens,
        "b dialled a from its listening port {b_listens}"
    );
}
