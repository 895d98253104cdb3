//! A loopback mesh of three nodes, small enough to run under qemu-user: with
//! `AIDMESH_BIN` pointing at a cross-built binary and `AIDMESH_RUNNER` at qemu (what
//! .ci/run does for aarch64, a Raspberry Pi's build), it shows the Pi build syncing
//! and gossiping on real sockets. Without them it runs the native build, like any test.
//!
//! ```sh
//! AIDMESH_BIN=$PWD/target/aarch64-unknown-linux-gnu/release/aidmesh \
//! AIDMESH_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu" \
//!   cargo test -p aidmesh-tests --test cross
//! ```

use std::time::Duration;

use aidmesh_tests::{binary_arch, wait_converged, wait_for, Node, Opts};

#[test]
fn three_nodes_catch_up_and_gossip_a_need() {
    let arch = binary_arch();
    if std::env::var("AIDMESH_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        assert_ne!(
            arch, "x86_64",
            "AIDMESH_RUNNER is set but AIDMESH_BIN is a native binary: point it at the cross build"
        );
    }
    eprintln!("running the {arch} build of aidmesh");
    // Under emulation a node starts and syncs several times slower.
    let slow = Opts {
        start_timeout: Some(Duration::from_secs(60)),
        ..Opts::default()
    };
    let a = Node::start("pi-a", slow.clone());
    // Written before b exists: b gets it by catch-up sync, not gossip.
    let early = a.need("water before b started");
    let b = Node::start(
        "pi-b",
        Opts {
            peers: vec![a.addr()],
            ..slow.clone()
        },
    );
    let c = Node::start(
        "pi-c",
        Opts {
            peers: vec![b.addr()],
            ..slow
        },
    );
    wait_converged(&[&a, &b, &c], 1, Duration::from_secs(60));
    assert!(c.item_ids().contains(&early), "catch-up over two hops");

    // A need posted at c reaches a through b.
    wait_for("b to see both peers", Duration::from_secs(60), || {
        (b.status()["peers"].as_u64() == Some(2)).then_some(())
    });
    let late = c.need("blankets, posted at the end of the line");
    wait_for(
        "the need posted at c to reach a",
        Duration::from_secs(60),
        || a.item_ids().contains(&late).then_some(()),
    );
    wait_converged(&[&a, &b, &c], 2, Duration::from_secs(60));
}
