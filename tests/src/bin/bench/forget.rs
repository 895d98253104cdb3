//! Forget latency, the compaction in the background and, for comparison, in the same
//! call (benchmark 7); propagation through a node while it forgets people (8).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidmesh_node::engine::Engine;
use aidmesh_node::store::Store;
use aidmesh_protocol::{Body, Identity, Place};
use aidmesh_tests::bench_util::Latency;
use aidmesh_tests::field::arrivals::watch;
use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::{json, Value};

use crate::env::{bench_opts, median, tempdir};
use crate::events::prefill;

pub(crate) struct Forget {
    pub(crate) forgets: usize,
    pub(crate) median_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) gone_s: f64,
    pub(crate) compactions: u64,
    pub(crate) inline: usize,
    pub(crate) inline_median_ms: f64,
}

/// An engine holding `events` forgets people one after the other: the time each
/// forget takes to return, and until the names are gone from the database files.
/// Then the old way for comparison: each forget followed by the compaction in the
/// same call.
pub(crate) fn forget(events: &[Vec<u8>]) -> Forget {
    let dir = tempdir("forget");
    prefill(dir.path(), events, 1_000);
    let store = Store::open(&dir.path().join("db")).expect("open store");
    let profile = aidmesh_node::node::load_profile(&store)
        .expect("load profile")
        .expect("a profile");
    let engine = Engine::open(
        store,
        Identity::from_seed(profile.seed),
        profile.community,
        0,
    )
    .expect("open engine");
    let person = |i: usize| {
        Body::Person(aidmesh_protocol::PersonRegistered {
            name: format!("Forgettable Person {i}"),
            place: Place::default(),
            risks: vec![],
            check_every_secs: 3600,
            consent: aidmesh_protocol::Consent::Own,
            phone: String::new(),
            note: String::new(),
        })
    };
    let redact = |target| {
        Body::Redaction(aidmesh_protocol::Redaction {
            target,
            reason: String::new(),
        })
    };
    let ids: Vec<_> = (0..15)
        .map(|i| engine.post(person(i)).expect("register").id())
        .collect();
    let before = engine.store().compactions();
    let mut ms = Vec::new();
    for id in &ids[..10] {
        let t = Instant::now();
        engine.post(redact(*id)).expect("forget");
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let t = Instant::now();
    wait_for("the background compaction", Duration::from_secs(60), || {
        (!engine.store().compaction_pending().expect("store")).then_some(())
    });
    let gone_s = t.elapsed().as_secs_f64();
    let compactions = engine.store().compactions() - before;
    let mut inline = Vec::new();
    for id in &ids[10..] {
        let t = Instant::now();
        engine.post(redact(*id)).expect("forget");
        engine.compact_now().expect("compact");
        inline.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let max_ms = ms.iter().copied().fold(0.0, f64::max);
    Forget {
        forgets: ms.len(),
        median_ms: median(&mut ms),
        max_ms,
        gone_s,
        compactions,
        inline: inline.len(),
        inline_median_ms: median(&mut inline),
    }
}

pub(crate) struct ThroughCompaction {
    pub(crate) idle: Latency,
    pub(crate) forgetting: Latency,
    pub(crate) forget_median_ms: f64,
    pub(crate) forget_max_ms: f64,
}

/// B — A — C in a line, A a process on a pre-filled directory. B posts a need every
/// 25 ms for 4 s; arrival is timed on C's stream. Once with A idle, once while A's API
/// forgets 10 people one after the other.
pub(crate) fn through_compaction(events: &[Vec<u8>]) -> ThroughCompaction {
    let dir = tempdir("compacting-a");
    prefill(dir.path(), events, 1_000);
    let a = Node::open("compacting-a", dir, bench_opts());
    // No peer exchange: b and c stay a line through a instead of learning each other.
    let line = || Opts {
        args: vec!["--no-peer-exchange".into()],
        ..Opts::default()
    };
    let b = Node::start("b", line());
    let c = Node::start("c", line());
    b.connect(&a.addr());
    c.connect(&a.addr());
    let want = events.len() as u64;
    wait_for(
        "b and c to catch up with a",
        Duration::from_secs(120),
        || (b.events() >= want && c.events() >= want).then_some(()),
    );
    let agent = aidmesh_tests::http();
    let names: Vec<String> = (0..10).map(|i| format!("Compaction Person {i}")).collect();
    let people: Vec<String> = names
        .iter()
        .map(|n| {
            let mut r = agent
                .post(format!("{}/api/v1/people", a.api_url()))
                .send_json(json!({"name": n, "place": "1 Bench Road", "every": "12h"}))
                .expect("register");
            let v: Value = r.body_mut().read_json().expect("json");
            v["id"].as_str().expect("person id").to_string()
        })
        .collect();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    watch(0, c.api_url().to_string(), seen.clone());
    std::thread::sleep(Duration::from_secs(3)); // gossipsub meshes (700 ms heartbeats)
    let run = |tag: &str, forget: bool| -> (Latency, Vec<f64>) {
        let forgetter =
            forget.then(|| aidmesh_tests::forget_in_background(a.api_url(), people.clone()));
        let mut sent = Vec::new();
        let t = Instant::now();
        for k in 0..160u32 {
            let slot = t + Duration::from_millis(25) * k;
            if let Some(d) = slot.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let t0 = Instant::now();
            let id = b.need(&format!("Sandbags for the {tag} test ({k})"));
            sent.push((id, t0));
        }
        let forgets = forgetter
            .map(|h| h.join().expect("forgetter"))
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(15);
        let arrived = |s: &HashMap<(usize, String), Instant>| {
            sent.iter().all(|(id, _)| s.contains_key(&(0, id.clone())))
        };
        while !arrived(&seen.lock().expect("arrivals")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = seen.lock().expect("arrivals");
        let ms: Vec<f64> = sent
            .iter()
            .filter_map(|(id, t0)| {
                s.get(&(0, id.clone()))
                    .map(|at| at.duration_since(*t0).as_secs_f64() * 1e3)
            })
            .collect();
        let lat = Latency::of(ms, sent.len());
        (lat, forgets)
    };
    let (idle, _) = run("idle", false);
    let (forgetting, mut forgets) = run("forget", true);
    let forget_max_ms = forgets.iter().copied().fold(0.0, f64::max);
    ThroughCompaction {
        idle,
        forgetting,
        forget_median_ms: median(&mut forgets),
        forget_max_ms,
    }
}
