//! Discovery on a Wi-Fi that drops multicast, and a host with two interfaces joining
//! two segments (tests/src/field.rs). Each prints a `REPORT` line (figures in
//! docs/reliability.md). Needs root and nftables: `#[ignore]`d unless
//! `--include-ignored` (CI).

use std::time::{Duration, Instant};

use aidmesh_tests::field::{Field, Wifi};
use aidmesh_tests::{wait_converged, wait_for, LanHost, Node, Opts};

const T: Duration = Duration::from_secs(90);

fn on(host: LanHost, name: &str) -> Node {
    Node::start(
        name,
        Opts {
            lan: Some(host),
            ..Opts::default()
        },
    )
}

fn peers(n: &Node) -> u64 {
    n.status()["peers"].as_u64().unwrap_or(0)
}

const NO_MULTICAST: Wifi = Wifi {
    loss_percent: 0,
    block_mdns: true,
};

#[test]
#[ignore = "needs root and nftables"]
fn the_beacon_finds_peers_where_mdns_is_filtered_and_no_beacon_turns_it_off() {
    let mut field = Field::new(1, 1);
    let a = on(field.host(1, &[0], NO_MULTICAST), "a");
    let b = on(field.host(2, &[0], NO_MULTICAST), "b");
    let started = Instant::now();
    wait_for("a and b to find each other by beacon", T, || {
        (peers(&a) == 1 && peers(&b) == 1).then_some(())
    });
    let found = started.elapsed();
    assert!(
        a.log().contains("beacon: found a peer") || b.log().contains("beacon: found a peer"),
        "connected, but not through the beacon"
    );
    assert!(
        !a.log().contains("mDNS: found") && !b.log().contains("mDNS: found"),
        "mDNS was meant to be filtered"
    );
    // With the beacon off (and mDNS filtered) two nodes never find each other.
    let mut lone = Field::new(2, 1);
    let c = Node::start(
        "c",
        Opts {
            lan: Some(lone.host(1, &[0], NO_MULTICAST)),
            args: vec!["--no-beacon".into()],
            ..Opts::default()
        },
    );
    let d = Node::start(
        "d",
        Opts {
            lan: Some(lone.host(2, &[0], NO_MULTICAST)),
            args: vec!["--no-beacon".into()],
            ..Opts::default()
        },
    );
    // Both beacon-less nodes run a whole start burst and more with nothing found.
    std::thread::sleep(Duration::from_secs(5)); // an absence: there is no event to await
    assert_eq!(
        (peers(&c), peers(&d)),
        (0, 0),
        "found without beacon or mDNS"
    );
    assert!(!c.log().contains("beacon: broadcasting"));
    eprintln!(
        "REPORT field-beacon: 2 hosts, mDNS dropped: connected by beacon in {:.1} s; with --no-beacon: 0 peers after 5 s",
        found.as_secs_f64()
    );
}

#[test]
#[ignore = "needs root and nftables"]
fn a_two_interface_host_joins_two_segments_for_gossip_and_catch_up() {
    let mut field = Field::new(3, 2);
    let h_host = field.host(5, &[0, 1], NO_MULTICAST);
    let mut h = on(h_host, "bridge-host");
    let a1 = on(field.host(1, &[0], NO_MULTICAST), "a1");
    let a2 = on(field.host(2, &[0], NO_MULTICAST), "a2");
    let b1 = on(field.host(11, &[1], NO_MULTICAST), "b1");
    let b2 = on(field.host(12, &[1], NO_MULTICAST), "b2");
    let started = Instant::now();
    wait_for("the two-interface host to reach both segments", T, || {
        (peers(&h) == 4 && [&a1, &a2, &b1, &b2].iter().all(|n| peers(n) == 2)).then_some(())
    });
    let meshed = started.elapsed();
    // Segment A only sees B through h: a1's peers are a2 and h.
    let a1_peers = a1.get("/api/v1/peers").to_string();
    assert!(
        !a1_peers.contains(field.subnet(1)),
        "a1 reached segment B directly: {a1_peers}"
    );

    // Gossip crosses h (posting until the gossip meshes have formed).
    let mut n = 0;
    let crossed = wait_for("an event from a1 to reach b2 across h", T, || {
        n += 1;
        let t = Instant::now();
        let id = a1.need(&format!("across {n}"));
        while t.elapsed() < Duration::from_secs(3) {
            if b2.item_ids().contains(&id) {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    });

    // Catch-up crosses too: while h is away, both sides post; when it is back,
    // everyone gets everything, through h alone.
    h.kill();
    for i in 0..5 {
        a2.need(&format!("west while apart {i}"));
        b1.need(&format!("east while apart {i}"));
    }
    let all = n as u64 + 10;
    wait_converged(&[&a1, &a2], n as u64 + 5, T);
    wait_converged(&[&b1, &b2], 5, T);
    assert_eq!(
        b1.events(),
        n as u64 + 5,
        "the east saw the west while apart"
    );
    let back = Instant::now();
    h.restart();
    let took = wait_converged(&[&a1, &a2, &h, &b1, &b2], all, T).max(back.elapsed());
    eprintln!(
        "REPORT field-two-interfaces: 2+2 hosts on two segments joined only by one host with two interfaces (mDNS dropped): all connected in {:.1} s; an event crossed by gossip in {} ms; after 5+5 posts on either side while it was away, all 5 hosts held all {all} events {:.1} s after it came back",
        meshed.as_secs_f64(),
        crossed.as_millis(),
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "needs root and nftables"]
fn a_new_interface_gets_a_beacon_at_once_not_at_the_next_period() {
    let mut field = Field::new(4, 2);
    let b = on(field.host(11, &[1], NO_MULTICAST), "b");
    let a_host = field.host(1, &[0], NO_MULTICAST);
    let a = on(a_host.clone(), "a");
    // Both start bursts (beacons at 0, 1 and 3 s) are over: the next periodic beacons
    // are 24 to 36 s away. a is plugged into b's segment now: only a's beacon on its
    // new interface (interfaces are looked at every 5 s) can connect them within 10 s.
    for n in [&a, &b] {
        wait_for(
            &format!("{}'s start burst to end", n.name),
            Duration::from_secs(30),
            || n.log().contains("beacon: sent sent=3").then_some(()),
        );
    }
    assert_eq!(peers(&a), 0);
    let plugged = Instant::now();
    field.plug(&a_host, 1, 1, 1);
    wait_for(
        "a's beacon on its new interface to connect a and b",
        Duration::from_secs(10),
        || (peers(&a) == 1 && peers(&b) == 1).then_some(()),
    );
    eprintln!(
        "REPORT field-new-interface: a host plugged into a second segment was found there {:.1} s later (interfaces looked at every 5 s; the period is 30 s)",
        plugged.elapsed().as_secs_f64()
    );
}
