//! Roster inflation by an insider (issue 24 item 5), with real nodes on loopback: a
//! bundle of events of an unknown kind under thousands of throwaway keys, imported
//! into a running hub through the CLI, and the same events stored before a hub
//! starts, add no hub to the roster (`GET /api/v1/hubs`, the `of` of every `known`
//! count) and leave the board's size where it was. A hub earns its place by a
//! hub announcement, a summary or a connection: a real peer still appears.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::{Event, Identity, Timestamp, PROTOCOL_VERSION};
use aidmesh_tests::{binary, wait_for, Node, Opts, TEST_PASSPHRASE};
use serde_json::json;

/// Throwaway authors, one unknown-kind event each.
const JUNK: usize = 2_000;

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One event of kind 900 (unknown to this version) under each of `n` new keys.
fn junk_events(n: usize) -> Vec<Vec<u8>> {
    let now = wall_ms();
    (0..n)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let who = Identity::from_seed(seed);
            Event::create_raw(
                &who,
                PROTOCOL_VERSION,
                Timestamp::from_millis(now - 60_000 + i as u64),
                900,
                &[0u8; 64],
            )
            .into_bytes()
        })
        .collect()
}

/// A data directory of the test community holding `events`, stored through the
/// engine's one path (as a sync would).
fn filled_dir(events: &[Vec<u8>]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("aidmesh-junk-")
        .tempdir()
        .expect("temp dir");
    let profile =
        aidmesh_node::node::init(dir.path(), "test", Some(TEST_PASSPHRASE)).expect("init data dir");
    let store = Store::open(&dir.path().join("db")).expect("open store");
    let engine = Engine::open(store, Identity::from_seed(profile.seed), "test".into(), 0)
        .expect("open engine");
    for chunk in events.chunks(1_000) {
        let r = engine.ingest_batch(chunk, Origin::Sync).expect("ingest");
        assert!(r.rejected.is_empty(), "rejected: {:?}", r.rejected.first());
    }
    dir
}

fn cli(node: &Node, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("--data-dir")
        .arg(node.dir())
        .args(args)
        .output()
        .expect("run aidmesh");
    assert!(
        out.status.success(),
        "aidmesh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn roster_len(n: &Node) -> usize {
    n.get("/api/v1/hubs").as_array().expect("roster").len()
}

fn board_bytes(n: &Node) -> usize {
    n.get("/api/v1/board").to_string().len()
}

#[test]
fn events_under_throwaway_keys_add_no_hub_to_the_roster() {
    let opts = || Opts {
        start_timeout: Some(Duration::from_secs(60)),
        ..Opts::default()
    };
    // Stored before the hub starts (the roster is built from the store at start).
    let junk = junk_events(JUNK);
    let b = Node::open("junk-holder", filled_dir(&junk), opts());
    assert!(b.events() >= JUNK as u64, "the junk is stored");
    assert_eq!(
        roster_len(&b),
        1,
        "only the hub itself: {}",
        b.get("/api/v1/hubs")
    );

    // Imported into a running hub from a bundle (the attack of issue 24).
    let a = Node::start("a", opts());
    let id = a.need("Sandbags for Mill Lane");
    let before = board_bytes(&a);
    let file = b.dir().join("junk.bundle");
    let file = file.to_str().expect("path");
    cli(&b, &["bundle", "export", file]);
    cli(&a, &["bundle", "import", file]);
    assert!(a.events() > JUNK as u64, "the bundle was imported");
    assert_eq!(roster_len(&a), 1, "{}", a.get("/api/v1/hubs"));
    let item = a.get(&format!("/api/v1/items/{id}"));
    assert_eq!(item["known"], json!({ "at": 1, "of": 1 }), "{item}");
    let after = board_bytes(&a);
    assert!(
        after < before + 1_024,
        "the board grew from {before} to {after} bytes"
    );

    // A real hub still earns its place: connected, then by its summaries.
    let c = Node::start(
        "c",
        Opts {
            peers: vec![a.addr()],
            ..opts()
        },
    );
    wait_for("a to list c on its roster", Duration::from_secs(30), || {
        (roster_len(&a) == 2).then_some(())
    });
    drop(c);
}
