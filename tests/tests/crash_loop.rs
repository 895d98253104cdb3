//! sled 0.34 has open reports of databases that no longer open after an abrupt stop.
//! This test kills a node with SIGKILL in the middle of a write storm, 50 times, and
//! after every restart checks that the database opens and that every write the node
//! acknowledged (HTTP 201) is still there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aidmesh_tests::{http, try_post_need, wait_for, Node, Opts, WriteStorm};

const CYCLES: usize = 50;

#[test]
fn fifty_kill_9_cycles_during_a_write_storm_lose_no_acknowledged_write() {
    let mut node = Node::start("crashy", Opts::default());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for cycle in 0..CYCLES {
        let storm = WriteStorm::start(
            node.api_url().to_string(),
            format!("cycle {cycle}"),
            acked.clone(),
        );
        // Kill after a varying number of acknowledged writes in this cycle.
        let before = acked.lock().unwrap().len();
        let want = before + 3 + (cycle * 7) % 25;
        wait_for(
            &format!("{want} acknowledged writes in cycle {cycle}"),
            Duration::from_secs(30),
            || (acked.lock().unwrap().len() >= want).then_some(()),
        );
        node.kill();
        storm.stop();
        // Reopen: the harness panics with the log if the database does not open.
        node.restart();
        let lost = node.lost_writes(&acked.lock().unwrap());
        assert!(
            lost.is_empty(),
            "cycle {cycle}: {} acknowledged writes lost after kill -9, e.g. {:?}",
            lost.len(),
            lost.first()
        );
    }
    // Nothing appears that was not written: besides the acknowledged writes, the node
    // may hold at most the one write per cycle that was in flight (stored, but not yet
    // answered) when it was killed.
    let total = acked.lock().unwrap().len();
    let held = node.item_ids().len();
    eprintln!(
        "{CYCLES} kill -9 cycles, {total} acknowledged writes, none lost; {held} held \
         ({} stored but unacknowledged when killed)",
        held.saturating_sub(total)
    );
    assert!(
        (total..=total + CYCLES).contains(&held),
        "{held} items held after {total} acknowledged writes in {CYCLES} cycles"
    );
}

/// The start file (issue 28): clean stops (Ctrl-C, which writes it) and kill -9 in
/// turn, during a write storm. A start after a clean stop takes the file, one after a
/// kill reads every event; either way every acknowledged write is still there.
#[test]
fn clean_stops_and_kill_9s_in_turn_lose_no_acknowledged_write() {
    const TURNS: usize = 12;
    let mut node = Node::start("stopper", Opts::default());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut from_file = 0;
    for turn in 0..TURNS {
        let storm = WriteStorm::start(
            node.api_url().to_string(),
            format!("turn {turn}"),
            acked.clone(),
        );
        let want = acked.lock().unwrap().len() + 3 + (turn * 5) % 17;
        wait_for(
            &format!("{want} acknowledged writes in turn {turn}"),
            Duration::from_secs(30),
            || (acked.lock().unwrap().len() >= want).then_some(()),
        );
        // Two clean stops, then a kill -9.
        let clean = turn % 3 != 2;
        if clean {
            assert!(node.interrupt(), "a clean stop:\n{}", node.log_tail(20));
        } else {
            node.kill();
        }
        storm.stop();
        let logged = node.log().matches("started from the start file").count();
        node.restart();
        let now = node.log().matches("started from the start file").count();
        let took_file = now > logged;
        assert_eq!(
            took_file,
            clean,
            "turn {turn}: a start after a {} should {}take the start file",
            if clean { "clean stop" } else { "kill -9" },
            if clean { "" } else { "not " }
        );
        from_file += usize::from(took_file);
        let lost = node.lost_writes(&acked.lock().unwrap());
        assert!(
            lost.is_empty(),
            "turn {turn}: {} acknowledged writes lost after a {}, e.g. {:?}",
            lost.len(),
            if clean { "clean stop" } else { "kill -9" },
            lost.first()
        );
    }
    eprintln!(
        "{TURNS} stops, {from_file} starts from the start file, {} acknowledged writes, none lost",
        acked.lock().unwrap().len()
    );
}

/// SIGTERM (systemd without our unit's `KillSignal`, a plain `kill`, a Pi's shutdown)
/// is a clean stop too: the node exits with success and the next start takes the
/// start file, holding every acknowledged write.
#[test]
fn sigterm_is_a_clean_stop_that_writes_the_start_file() {
    let mut node = Node::start("termed", Opts::default());
    let agent = http();
    let ids: Vec<String> = (0..5)
        .map(|n| try_post_need(&agent, node.api_url(), &format!("before SIGTERM {n}")).unwrap())
        .collect();
    let pid = node.pid().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    wait_for(
        "the node to exit after SIGTERM",
        Duration::from_secs(15),
        || (!node.alive()).then_some(()),
    );
    assert!(
        node.log().contains("wrote the start file"),
        "SIGTERM did not write the start file:\n{}",
        node.log_tail(20)
    );
    node.restart();
    assert!(
        node.log().contains("started from the start file"),
        "{}",
        node.log_tail(20)
    );
    let lost = node.lost_writes(&ids);
    assert!(lost.is_empty(), "lost after SIGTERM: {lost:?}");
}
