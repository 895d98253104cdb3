//! `aidmesh list --search/--urgency/--hub` with the real binary against a real node
//! (issue 15, a busy board): the same filters as the list API, and a bad value named.

use std::path::Path;
use std::process::{Command, Output};

use aidmesh_tests::{Node, Opts};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aidmesh");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .env_remove("AIDMESH_DIR")
        .env("NO_COLOR", "1")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run aidmesh")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "`{args:?}` failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Titles listed by `aidmesh list ARGS --json`.
fn titles(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = ok(dir, &[args, &["--json"]].concat());
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {out}"))
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn list_searches_and_filters_by_urgency_and_hub() {
    std::env::set_var("AIDMESH_BIN", BIN);
    let node = Node::start("list-filters", Opts::default());
    let dir = node.dir();
    ok(dir, &["hub", "announce", "Elm St hall"]);
    for (title, urgency, place) in [
        ("Insulin pens", "life-threatening", "14 River Rd"),
        ("Drinking water", "high", "7 Oak Ave"),
        ("Blankets", "normal", "School hall, River Rd"),
    ] {
        ok(
            dir,
            &[
                "need",
                "add",
                title,
                "--category",
                "other",
                "--urgency",
                urgency,
                "--where",
                place,
            ],
        );
    }
    assert_eq!(titles(dir, &["list"]).len(), 3);
    assert_eq!(
        titles(dir, &["list", "needs", "--search", "RIVER rd"]),
        ["Insulin pens", "Blankets"]
    );
    assert_eq!(
        titles(dir, &["list", "--urgency", "high"]),
        ["Drinking water"]
    );
    assert_eq!(
        titles(dir, &["list", "--hub", "elm st hall", "--search", "pens"]),
        ["Insulin pens"]
    );
    assert!(titles(dir, &["list", "--hub", "Riverside"]).is_empty());
    let o = run(dir, &["list", "--urgency", "urgent"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("urgency: unknown urgency 'urgent'"), "{err}");
}
