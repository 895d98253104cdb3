//! Real node processes on loopback, joined by static peers (loopback carries no
//! multicast; mDNS is exercised in the network-namespace test bed).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use aidmesh_tests::{wait_converged, wait_for, Node, Opts};
use serde_json::json;

const T: Duration = Duration::from_secs(30);

fn peer_opts(peers: &[&Node]) -> Opts {
    Opts {
        peers: peers.iter().map(|n| n.addr()).collect(),
        ..Opts::default()
    }
}

#[test]
fn three_nodes_converge_on_a_need_posted_at_one() {
    let a = Node::start("a", Opts::default());
    let b = Node::start("b", peer_opts(&[&a]));
    let c = Node::start("c", peer_opts(&[&b]));
    wait_for("c and a connected through b", T, || {
        (b.status()["peers"].as_u64() == Some(2)).then_some(())
    });
    let id = a.need("Drinking water for 12 Mill Lane");
    wait_converged(&[&a, &b, &c], 1, T);
    for n in [&b, &c] {
        let item = n.get(&format!("/api/v1/items/{}", &id[..10]));
        assert_eq!(
            item["title"], "Drinking water for 12 Mill Lane",
            "{}",
            n.name
        );
        assert_eq!(item["status"], "open");
    }
    // A status change made at the far end comes back.
    c.post(
        &format!("/api/v1/items/{}/status", &id[..8]),
        &json!({ "status": "claimed" }),
    );
    wait_for("the claim to reach a", T, || {
        (a.get(&format!("/api/v1/items/{id}"))["status"] == "claimed").then_some(())
    });
}

#[test]
fn a_late_node_catches_up_on_1000_events() {
    let a = Node::start("a", Opts::default());
    for i in 0..1000 {
        a.need(&format!("need {i}"));
    }
    assert_eq!(a.events(), 1000);
    let late = Node::start("late", peer_opts(&[&a]));
    let took = wait_converged(&[&a, &late], 1000, T);
    assert_eq!(late.events(), 1000);
    eprintln!("late node caught up on 1000 events in {took:?}");
}

#[test]
fn partitioned_groups_converge_when_joined() {
    let a1 = Node::start("a1", Opts::default());
    let a2 = Node::start("a2", peer_opts(&[&a1]));
    let b1 = Node::start("b1", Opts::default());
    let b2 = Node::start("b2", peer_opts(&[&b1]));
    for i in 0..20 {
        a1.need(&format!("west {i}"));
        b2.need(&format!("east {i}"));
    }
    wait_converged(&[&a1, &a2], 20, T);
    wait_converged(&[&b1, &b2], 20, T);
    assert_ne!(
        a1.digest(),
        b1.digest(),
        "the groups must differ before they are joined"
    );
    a2.connect(&b1.addr());
    wait_converged(&[&a1, &a2, &b1, &b2], 40, T);
    assert_eq!(a1.events(), 40);
}

#[test]
fn a_node_killed_with_sigkill_keeps_every_acknowledged_event() {
    let mut a = Node::start("a", Opts::default());
    let ids: Vec<String> = (0..50).map(|i| a.need(&format!("need {i}"))).collect();
    let digest = a.digest();
    a.kill();
    a.restart();
    assert_eq!(a.events(), 50);
    assert_eq!(a.digest(), digest);
    let held = a.item_ids();
    for id in &ids {
        assert!(
            held.contains(id),
            "acknowledged event {id} lost after kill -9"
        );
    }
}

#[test]
fn a_node_with_another_key_receives_nothing() {
    let a = Node::start("a", Opts::default());
    let intruder = Node::start(
        "intruder",
        Opts {
            passphrase: Some("wrong words entirely here".into()),
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    a.need("Insulin for the third floor");
    intruder.need("Intruder's post");
    // The intruder keeps dialling with back-off; give it several attempts.
    wait_for("a to log the failed handshake", T, || {
        a.log().contains("another community key").then_some(())
    });
    assert_eq!(intruder.status()["peers"], 0);
    assert_eq!(a.status()["peers"], 0);
    assert_eq!(
        intruder.events(),
        1,
        "the intruder must hold only its own post"
    );
    assert_eq!(a.events(), 1, "a must hold only its own post");
}

#[test]
fn garbage_on_the_peer_port_does_not_crash_the_node_or_spread() {
    let mut a = Node::start("a", Opts::default());
    let b = Node::start("b", peer_opts(&[&a]));
    a.need("before");
    wait_converged(&[&a, &b], 1, T);
    let port = a.status()["listen"][0]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("port");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..50 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let len = 1 + (round * 997) % 70_000;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = s.write_all(&junk);
        }
    }
    assert!(a.alive(), "node a died on garbage");
    a.need("after");
    wait_converged(&[&a, &b], 2, T);
    assert_eq!(b.events(), 2);
}

#[test]
fn ctrl_c_stops_a_node_cleanly_and_nothing_is_lost() {
    let mut a = Node::start("a", Opts::default());
    let id = a.need("Generator fuel");
    assert!(a.interrupt(), "the node must exit with success on Ctrl-C");
    assert!(
        !a.dir().join("api.addr").exists(),
        "a stopped node must remove its API address file"
    );
    assert!(a.log().contains("shutting down"));
    a.restart();
    assert!(a.item_ids().contains(&id));
}

#[test]
fn up_on_an_empty_directory_creates_a_node_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(aidmesh_tests::binary())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "up",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
            "--no-mdns",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api_file = dir.path().join("api.addr");
    wait_for("the new node to write its API address", T, || {
        api_file.exists().then_some(())
    });
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Community passphrase"), "{text}");
    assert!(text.contains("peer id"), "{text}");
    assert!(text.contains("web page   http://127.0.0.1:"), "{text}");
}
