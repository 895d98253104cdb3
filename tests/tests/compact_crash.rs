//! Compaction by generations (issue 14): a node killed with SIGKILL around and during
//! the background compaction that follows a forget opens again with every write it
//! acknowledged, without the forgotten person's bytes in its database files, and with
//! one generation of the database left. The kills land at varying moments after the
//! forget (the compaction starts 0.5 s after it), while writes go on; the unit test
//! `store::tests::a_compaction_cut_short_at_any_step_loses_nothing_acknowledged` stops
//! a compaction after each of its steps exactly.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aidmesh_tests::{http, try_post_need, Node, Opts, WriteStorm};
use serde_json::json;

const CYCLES: u64 = 12;

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The database directory holds one generation: sled's own files (generation 0), or
/// the pointer and the one `gen-<n>` it names.
fn one_generation(db: &Path) -> Result<(), String> {
    let mut names: Vec<String> = std::fs::read_dir(db)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let gens: Vec<&String> = names.iter().filter(|n| n.starts_with("gen-")).collect();
    let ok = match std::fs::read_to_string(db.join("CURRENT")) {
        Ok(p) => gens.len() == 1 && *gens[0] == p.trim() && names.len() == 2,
        Err(_) => gens.is_empty() && !names.iter().any(|n| n.starts_with("CURRENT")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{}: {names:?}", db.display()))
    }
}

#[test]
fn kill_9_around_compactions_loses_nothing_acknowledged_and_no_erased_bytes_survive() {
    let mut node = Node::start("compact-crash", Opts::default());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        // Enough events that a copy takes a moment.
        let agent = http();
        for i in 0..300 {
            let id = try_post_need(&agent, node.api_url(), &format!("seed {i}")).expect("post");
            acked.lock().unwrap().push(id);
        }
    }
    for cycle in 0..CYCLES {
        let name = format!("Zebulon Crashtest{cycle:02}");
        let v = node.post(
            "/api/v1/people",
            &json!({ "name": name, "place": "14 River Rd", "every": "12h" }),
        );
        let person = v["id"].as_str().expect("person id").to_string();
        node.post(
            &format!("/api/v1/people/{}/forget", &person[..8]),
            &json!({ "confirm": person }),
        );
        let storm = WriteStorm::start(
            node.api_url().to_string(),
            format!("cycle {cycle}"),
            acked.clone(),
        );
        // Not a synchronisation: the kill is meant to land at a different moment of
        // the compaction each cycle (before it, during the copy, around the swap, after).
        std::thread::sleep(Duration::from_millis(350 + (cycle * 53) % 500));
        node.kill();
        storm.stop();
        // The harness panics with the log if the database does not open. A compaction
        // owed is finished by `Store::open`, before the node serves anything.
        node.restart();
        let lost = node.lost_writes(&acked.lock().unwrap());
        assert!(
            lost.is_empty(),
            "cycle {cycle}: {} acknowledged writes lost, e.g. {:?}",
            lost.len(),
            lost.first()
        );
        let db = node.dir().join("db");
        let left = files_containing(&db, name.as_bytes());
        assert!(
            left.is_empty(),
            "cycle {cycle}: {name} is still in {left:?}"
        );
        if let Err(e) = one_generation(&db) {
            panic!("cycle {cycle}: more than one generation left: {e}");
        }
    }
    // Some kills must have cut a compaction short (before or during it), or the test
    // proved nothing about recovery.
    let log = node.log();
    let finished_at_start = log.matches("finished a pending compaction").count();
    eprintln!("{CYCLES} kills; {finished_at_start} restarts finished a compaction cut short");
    assert!(
        finished_at_start >= 1,
        "no kill landed before a compaction finished; the test needs other timings"
    );
}
