//! Clocks that lie, with real node processes (`--clock-offset`, `--clock-at`): one peer
//! 40 days ahead moves nothing on an honest node and nobody gets banned; a node holding
//! events from its own fast past still writes after its clock is fixed; a computer that
//! booted in 1970 (or any time before the binary was built) gets the right time from a
//! single laptop, and uses the build time while alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aidmesh_node::engine::{Engine, Origin};
use aidmesh_node::store::Store;
use aidmesh_protocol::time::MAX_FUTURE_MS;
use aidmesh_protocol::{
    Body, Category, Consent, Event, Identity, PersonRegistered, Place, Post, Timestamp, Urgency,
};
use aidmesh_tests::{wait_for, Node, Opts, TEST_PASSPHRASE};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);
const DAY: u64 = 86_400_000;
/// How far from the real time a node's clock may be and still count as right.
const CLOSE_MS: u64 = 60_000;

fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn created_at(n: &Node, id: &str) -> u64 {
    n.get(&format!("/api/v1/items/{id}"))["created_at"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: item {id} has no created_at", n.name))
}

fn has_item(n: &Node, title: &str) -> bool {
    n.get("/api/v1/items?status=all")["items"]
        .as_array()
        .is_some_and(|v| v.iter().any(|i| i["title"] == title))
}

/// Log lines that mean a node punished a peer.
fn punished(n: &Node) -> Vec<String> {
    n.log()
        .lines()
        .filter(|l| l.contains("peer broke the sync protocol") || l.contains("peer is penalised"))
        .map(str::to_string)
        .collect()
}

/// Retention sweeps the node has finished so far.
fn sweeps(n: &Node) -> usize {
    n.log().matches("retention sweep done").count()
}

#[test]
fn one_peer_40_days_ahead_moves_nothing_and_nobody_is_banned() {
    // Records are erased a day after their last check-in, looked for every second: a
    // clock believed 40 days ahead would erase Ada at the next sweep.
    let victim = Node::start(
        "victim",
        Opts {
            args: ["--welfare-retention", "1d", "--retention-sweep-every", "1s"]
                .map(String::from)
                .to_vec(),
            ..Opts::default()
        },
    );
    let ada = victim.post(
        "/api/v1/people",
        &json!({ "name": "Ada Lovelace", "place": "14 River Rd", "every": "12h" }),
    );
    let ada = ada["id"].as_str().expect("id").to_string();
    let fast = Node::start(
        "fast",
        Opts {
            peers: vec![victim.addr()],
            args: vec!["--clock-offset".into(), "40d".into()],
            ..Opts::default()
        },
    );
    fast.need("written 40 days ahead");
    // The victim has heard the fast clock ...
    let clock = wait_for("the victim to hear the fast clock", T, || {
        let c = victim.status()["clock"].clone();
        (c["status"] == "behind").then_some(c)
    });
    // ... and has been offered its future-dated event (by gossip or sync) and set it
    // aside, without blaming the sender.
    wait_for("the victim to set the future event aside", T, || {
        victim.log().contains("ahead of our clock").then_some(())
    });
    assert_eq!(
        clock["source"], "local",
        "one peer corrected the clock: {clock}"
    );
    assert_eq!(clock["correction_ms"], 0, "{clock}");
    assert!(
        clock["warning"]
            .as_str()
            .is_some_and(|w| w.contains("not corrected")),
        "{clock}"
    );
    let s = victim.status();
    let now = s["now_ms"].as_u64().unwrap_or(0);
    assert!(
        now.abs_diff(real_now()) < CLOSE_MS,
        "the victim's time moved by {} ms",
        now as i64 - real_now() as i64
    );
    // Nobody is overdue: Ada was registered minutes ago and is due in 12 h.
    let overdue = victim.get("/api/v1/people/overdue")["people"].clone();
    assert_eq!(overdue, json!([]), "listed as overdue: {overdue}");
    let people = victim.get("/api/v1/people")["people"].clone();
    assert_eq!(people[0]["id"], ada.as_str());
    assert_eq!(people[0]["standing"], "never-visited", "{people}");
    // The future event is not stored; local writes work and carry the real time.
    assert!(!has_item(&victim, "written 40 days ahead"));
    let mine = victim.need("written on an honest clock");
    let at = created_at(&victim, &mine);
    assert!(
        at.abs_diff(real_now()) < CLOSE_MS,
        "stamped {} ms from the real time",
        at as i64 - real_now() as i64
    );
    // The fast node accepts the honest write (it is in its past) and still talks to
    // the victim: neither punished the other.
    wait_for("the honest write to reach the fast node", T, || {
        has_item(&fast, "written on an honest clock").then_some(())
    });
    assert_eq!(victim.status()["peers"], 1, "the victim dropped its peer");
    assert_eq!(punished(&victim), Vec::<String>::new());
    assert_eq!(punished(&fast), Vec::<String>::new());
    // Two more retention sweeps with the fast clock heard: Ada's record stays.
    let done = sweeps(&victim);
    wait_for("two more retention sweeps", T, || {
        (sweeps(&victim) >= done + 2).then_some(())
    });
    assert_eq!(
        victim.status()["clock"]["status"],
        "behind",
        "the fast peer's clock is no longer counted; the sweeps proved nothing"
    );
    let people = victim.get("/api/v1/people")["people"].clone();
    assert_eq!(people[0]["id"], ada.as_str(), "erased early: {people}");
    assert!(!victim.log().contains("past retention erased"));
    eprintln!("REPORT clock a: one peer 40 days ahead: victim's time off by {} ms, nobody overdue, future event set aside, no ban", now.abs_diff(real_now()));
}

#[test]
fn a_node_whose_fast_clock_was_fixed_still_writes_and_is_not_banned() {
    let mut node = Node::start(
        "was-fast",
        Opts {
            args: vec!["--clock-offset".into(), "40d".into()],
            ..Opts::default()
        },
    );
    node.need("written while the clock was 40 days ahead");
    node.restart_without(&["--clock-offset", "40d"]);
    // It holds an event 40 days in its future; its own writes must still validate.
    let (code, v) = node.post_raw(
        "/api/v1/needs",
        &json!({ "title": "written after the clock was fixed", "category": "water" }),
    );
    assert_eq!(code, 201, "a local write was refused: {v}");
    let id = v["id"].as_str().expect("id").to_string();
    // Ordered after what it holds as far as the future bound allows, no further.
    let at = created_at(&node, &id);
    let real = real_now();
    assert!(
        at + CLOSE_MS > real && at <= real + MAX_FUTURE_MS,
        "stamped {} ms from the real time",
        at as i64 - real as i64
    );
    // An honest peer syncs from it: it takes the new event, sets the future one aside
    // and does not ban the node for having relayed it.
    let honest = Node::start(
        "honest",
        Opts {
            peers: vec![node.addr()],
            ..Opts::default()
        },
    );
    wait_for("the honest peer to set the future event aside", T, || {
        honest.log().contains("ahead of our clock").then_some(())
    });
    wait_for("the new event to reach the honest peer", T, || {
        has_item(&honest, "written after the clock was fixed").then_some(())
    });
    assert!(!has_item(
        &honest,
        "written while the clock was 40 days ahead"
    ));
    // Another full sync round later, still connected and still no punishment.
    let rounds = honest.log().matches("in sync").count() + honest.log().matches("synced").count();
    wait_for("another sync round", T, || {
        let n = honest.log().matches("in sync").count() + honest.log().matches("synced").count();
        (n > rounds).then_some(())
    });
    assert_eq!(punished(&honest), Vec::<String>::new());
    assert_eq!(
        honest.status()["peers"],
        1,
        "the honest peer dropped the node"
    );
}

fn clock(n: &Node) -> Value {
    n.status()["clock"].clone()
}

#[test]
fn a_computer_booted_in_1970_gets_the_time_from_one_laptop() {
    let laptop = Node::start("laptop", Opts::default());
    let pi = Node::start(
        "pi-1970",
        Opts {
            peers: vec![laptop.addr()],
            args: vec!["--clock-at".into(), "0".into()],
            ..Opts::default()
        },
    );
    let c = wait_for("the pi to take the laptop's time", T, || {
        let c = clock(&pi);
        (c["source"] == "mesh").then_some(c)
    });
    let now = pi.status()["now_ms"].as_u64().unwrap_or(0);
    assert!(
        now.abs_diff(real_now()) < CLOSE_MS,
        "the pi's time is {} ms from the real time: {c}",
        now as i64 - real_now() as i64
    );
    let id = pi.need("posted from the pi");
    let at = created_at(&pi, &id);
    assert!(
        at.abs_diff(real_now()) < CLOSE_MS,
        "stamped {} ms from the real time",
        at as i64 - real_now() as i64
    );
    // The laptop takes it (not from the future, not from 1970).
    wait_for("the pi's post to reach the laptop", T, || {
        has_item(&laptop, "posted from the pi").then_some(())
    });
    assert_eq!(created_at(&laptop, &id), at);
    eprintln!(
        "REPORT clock b: a node booted in 1970 next to one laptop uses time {} ms from the real time",
        now.abs_diff(real_now())
    );
}

#[test]
fn a_computer_set_before_the_build_uses_the_build_time_then_one_laptops() {
    let laptop = Node::start("laptop", Opts::default());
    let floor = laptop.status()["clock"]["floor_ms"]
        .as_u64()
        .expect("clock.floor_ms in status");
    assert!(floor > 1_700_000_000_000 && floor <= real_now(), "{floor}");
    // A day before the build: later than 1970, still impossible.
    let pi = Node::start(
        "pi-early",
        Opts {
            args: vec!["--clock-at".into(), (floor - DAY).to_string()],
            ..Opts::default()
        },
    );
    let alone = pi.status();
    let now = alone["now_ms"].as_u64().unwrap_or(0);
    assert_eq!(alone["clock"]["source"], "build_time", "{alone}");
    assert!(
        now >= floor && now < floor + CLOSE_MS,
        "alone, the time is {} ms from the build time",
        now as i64 - floor as i64
    );
    assert!(alone["clock"]["warning"].is_string(), "{alone}");
    assert!(
        pi.log().contains("before this program was built"),
        "no start-up warning:\n{}",
        pi.log_tail(10)
    );
    pi.connect(&laptop.addr());
    wait_for("the pi to take the laptop's time", T, || {
        (clock(&pi)["source"] == "mesh").then_some(())
    });
    let now = pi.status()["now_ms"].as_u64().unwrap_or(0);
    assert!(
        now.abs_diff(real_now()) < CLOSE_MS,
        "the pi's time is {} ms from the real time",
        now as i64 - real_now() as i64
    );
    let at = created_at(&pi, &pi.need("posted from the early pi"));
    assert!(at.abs_diff(real_now()) < CLOSE_MS);
}

/// Issue 15: a correct hub next to a Pi whose clock says 1970 never refuses its own
/// coordinator's posts ("timestamp ahead") and its clock warning does not flip.
#[test]
fn a_correct_hub_next_to_a_pi_in_1970_takes_every_post_and_keeps_one_clock_state() {
    let hub = Node::start("hub", Opts::default());
    let pi = Node::start(
        "pi-1970",
        Opts {
            peers: vec![hub.addr()],
            args: vec!["--clock-at".into(), "0".into()],
            ..Opts::default()
        },
    );
    wait_for("the pi to take the hub's time", T, || {
        (clock(&pi)["source"] == "mesh").then_some(())
    });
    let first = clock(&hub);
    let mut failed = Vec::new();
    let mut states = vec![(first["status"].clone(), first["warning"].clone())];
    for i in 0..35 {
        let out = std::process::Command::new(aidmesh_tests::binary())
            .arg("--data-dir")
            .arg(hub.dir())
            .args([
                "offer",
                "add",
                &format!("Blankets, box {i}"),
                "--category",
                "shelter",
            ])
            .output()
            .expect("run aidmesh offer add");
        if !out.status.success() {
            failed.push(format!("{i}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let c = clock(&hub);
        let s = (c["status"].clone(), c["warning"].clone());
        if states.last() != Some(&s) {
            states.push(s);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 35 offer add calls failed: {failed:?}",
        failed.len()
    );
    assert_eq!(
        states.len(),
        1,
        "the hub's clock state changed while it posted: {states:?}"
    );
    assert!(
        states[0].1.is_null(),
        "a correct hub warns about its clock: {states:?}"
    );
    // And the pi's posts reach the hub stamped with the hub's time.
    let id = pi.need("posted from the pi");
    wait_for("the pi's post to reach the hub", T, || {
        has_item(&hub, "posted from the pi").then_some(())
    });
    assert!(created_at(&hub, &id).abs_diff(real_now()) < CLOSE_MS);
}

/// A welfare registration signed by another node at `at_ms`.
fn person_at(name: &str, at_ms: u64) -> Vec<u8> {
    let body = Body::Person(PersonRegistered {
        name: name.into(),
        place: Place::default(),
        risks: Vec::new(),
        check_every_secs: 3600,
        consent: Consent::Own,
        phone: String::new(),
        note: String::new(),
    });
    Event::create(
        &Identity::from_seed([77; 32]),
        Timestamp::from_millis(at_ms),
        &body,
    )
    .into_bytes()
}

/// Issue 15: a welfare record an older node stamped in 1970 is not "30 days old": the
/// retention sweep keeps it, while a record really past retention goes.
#[test]
fn a_record_stamped_in_1970_by_an_older_node_survives_retention_sweeps() {
    let dir = tempfile::Builder::new()
        .prefix("aidmesh-retention-1970-")
        .tempdir()
        .expect("temp dir");
    // Filled before the node starts, as a peer's sync would (Origin::Sync): one record
    // from 1970 and one registered now, which the 1 s retention below makes stale.
    let profile =
        aidmesh_node::node::init(dir.path(), "test", Some(TEST_PASSPHRASE)).expect("init data dir");
    {
        let engine = Engine::open(
            Store::open(&dir.path().join("db")).expect("open store"),
            Identity::from_seed(profile.seed),
            profile.community.clone(),
            0,
        )
        .expect("open engine");
        for (name, at) in [("Stamped in 1970", 60_000), ("Really stale", real_now())] {
            engine
                .ingest_durable(&person_at(name, at), Origin::Sync)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    let node = Node::open(
        "retention-1970",
        dir,
        Opts {
            args: ["--welfare-retention", "1s", "--retention-sweep-every", "1s"]
                .map(String::from)
                .to_vec(),
            ..Opts::default()
        },
    );
    let names = |n: &Node| -> Vec<String> {
        n.get("/api/v1/people")["people"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the stale record to be erased", T, || {
        (!names(&node).iter().any(|n| n == "Really stale")).then_some(())
    });
    let done = sweeps(&node);
    wait_for("two more retention sweeps", T, || {
        (sweeps(&node) >= done + 2).then_some(())
    });
    assert_eq!(names(&node), vec!["Stamped in 1970".to_string()]);
}

/// Issue 15: a need an older node stamped in 1970 reaches a hub through a peer; the hub
/// keeps the stamp (it is part of the signed event) and shows when it arrived here,
/// in the API (`arrived_at`) and in `aidmesh list` / `show` ("just now", not 56 years).
#[test]
fn a_need_stamped_in_1970_is_shown_with_its_arrival_time() {
    let dir = tempfile::Builder::new()
        .prefix("aidmesh-old-node-")
        .tempdir()
        .expect("temp dir");
    let profile =
        aidmesh_node::node::init(dir.path(), "test", Some(TEST_PASSPHRASE)).expect("init data dir");
    let old = Event::create(
        &Identity::from_seed([78; 32]),
        Timestamp::from_millis(120_000),
        &Body::Need(Post {
            title: "Candles for the old people's home".into(),
            category: Category::Shelter,
            details: String::new(),
            quantity: None,
            unit: String::new(),
            urgency: Urgency::Normal,
            place: Place::default(),
            contact: String::new(),
            expires_ms: None,
            related: None,
        }),
    );
    let id = old.id().to_hex();
    {
        let engine = Engine::open(
            Store::open(&dir.path().join("db")).expect("open store"),
            Identity::from_seed(profile.seed),
            profile.community.clone(),
            0,
        )
        .expect("open engine");
        engine
            .ingest_durable(old.bytes(), Origin::Sync)
            .expect("ingest the 1970 need");
    }
    let hub = Node::start("hub", Opts::default());
    let older = Node::open(
        "older",
        dir,
        Opts {
            peers: vec![hub.addr()],
            ..Opts::default()
        },
    );
    wait_for("the 1970 need to reach the hub", T, || {
        has_item(&hub, "Candles for the old people's home").then_some(())
    });
    let item = hub.get(&format!("/api/v1/items/{id}"));
    assert_eq!(
        item["created_at"], 120_000,
        "the signed stamp is kept: {item}"
    );
    let arrived = item["arrived_at"].as_u64().unwrap_or(0);
    assert!(
        arrived.abs_diff(real_now()) < CLOSE_MS,
        "arrived_at {arrived} is not the time it reached the hub: {item}"
    );
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(aidmesh_tests::binary())
            .arg("--data-dir")
            .arg(hub.dir())
            .args(args)
            .output()
            .expect("run aidmesh");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let list = cli(&["list"]);
    let line = list
        .lines()
        .find(|l| l.contains("Candles"))
        .unwrap_or_else(|| panic!("not listed:\n{list}"));
    assert!(line.contains("just now"), "{line}");
    let show = cli(&["show", &id[..10]]);
    assert!(show.contains("when it arrived here"), "{show}");
    // The older node recorded its own arrival (when it stored it), kept over a restart.
    let item = older.get(&format!("/api/v1/items/{id}"));
    assert!(item["arrived_at"].is_u64(), "{item}");
}
