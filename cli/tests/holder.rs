//! Who holds what, with the real binary against a real node (issue 15): a claim names
//! its holder (`--by` or `AIDMESH_BY` once per shell session), `list` and `show` show
//! the holder, and a second claim says who holds the item and since when.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Once;
use std::time::Duration;

use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aidmesh");

/// `aidmesh --data-dir DIR ARGS...` with a clean environment plus `env`.
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.env_remove("AIDMESH_DIR")
        .env_remove("AIDMESH_BY")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(dir)
        .args(args);
    c.output().expect("run aidmesh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and expects success; returns stdout.
fn ok(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let o = run(dir, env, args);
    assert!(
        o.status.success(),
        "`{args:?}` failed:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs and expects exit code 1; returns stderr.
fn fails(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let o = run(dir, env, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "`{args:?}` should fail with 1:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stderr)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = ok(dir, &[], args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?} ({e}):\n{out}"))
}

fn start_node(name: &str) -> Node {
    start_with(name, Opts::default())
}

fn start_with(name: &str, opts: Opts) -> Node {
    static BIN_ENV: Once = Once::new();
    BIN_ENV.call_once(|| std::env::set_var("AIDMESH_BIN", BIN));
    Node::start(name, opts)
}

const T: Duration = Duration::from_secs(30);

#[test]
fn a_claim_names_its_holder_and_a_second_claim_says_who_and_since_when() {
    let node = start_node("holder-cli");
    let dir = node.dir();
    let id = ok(
        dir,
        &[],
        &["need", "add", "Water for the school", "--category", "water"],
    )
    .trim()
    .to_string();

    // The name comes from AIDMESH_BY, typed once per shell session.
    let out = ok(
        dir,
        &[("AIDMESH_BY", "Ana")],
        &["claim", &id, "--note", "bringing 2 cases"],
    );
    assert_eq!(out.trim(), format!("{id} is now claimed, held by Ana"));

    let item = json(dir, &["show", &id, "--json"]);
    assert_eq!(item["holder_name"], "Ana", "{item:#}");
    let since = item["held_since"].as_u64().expect("held_since");
    assert_eq!(item["history"][0]["by"], "Ana");
    assert_eq!(item["history"][0]["note"], "bringing 2 cases");

    let shown = ok(dir, &[], &["show", &id]);
    assert!(shown.contains("held by  Ana (node "), "{shown}");
    assert!(shown.contains("- claimed by Ana ("), "{shown}");
    let listed = ok(dir, &[], &["list"]);
    assert!(listed.contains("claimed (Ana)"), "{listed}");

    // A second claim, by name on the command line: says who holds it and since when
    // (in UTC), not a pointer to the protocol spec.
    let mins = since / 60_000;
    let hhmm = format!("{:02}:{:02} UTC", (mins / 60) % 24, mins % 60);
    let err = fails(dir, &[], &["claim", &id, "--by", "Bo"]);
    assert!(
        err.contains(&format!("already claimed by Ana since {hhmm}")),
        "{err}"
    );
    assert!(!err.contains("protocol.md"), "{err}");
    // Bo's try is in the history, unapplied, with his name; Ana still holds it.
    let item = json(dir, &["show", &id, "--json"]);
    assert_eq!(item["holder_name"], "Ana");
    assert_eq!(item["history"][1]["by"], "Bo");
    assert_eq!(item["history"][1]["applied"], false);

    // Starting work keeps the first holder; reopening lets go.
    ok(dir, &[], &["progress", &id]);
    assert_eq!(json(dir, &["show", &id, "--json"])["holder_name"], "Ana");
    let err = fails(dir, &[], &["claim", &id, "--by", "Bo"]);
    assert!(err.contains("already in-progress by Ana since"), "{err}");
    ok(dir, &[], &["reopen", &id]);
    let item = json(dir, &["show", &id, "--json"]);
    assert!(item["holder_name"].is_null(), "{item:#}");
    assert!(item["held_since"].is_null(), "{item:#}");

    // A claim without a name still works and names the node instead.
    assert_eq!(
        ok(dir, &[], &["claim", &id]).trim(),
        format!("{id} is now claimed")
    );
    let err = fails(dir, &[], &["claim", &id, "--by", "Bo"]);
    assert!(err.contains("already claimed by node "), "{err}");

    // A name that is not one line is refused before anything is recorded.
    let err = fails(dir, &[], &["reopen", &id, "--by", "Ana\nBo"]);
    assert!(err.contains("by"), "{err}");
}

#[test]
fn peers_holders_and_refusals_name_the_hub_not_the_key() {
    let a = start_with("holder-hub-a", Opts::default());
    let b = start_with(
        "holder-hub-b",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    let (da, db) = (a.dir(), b.dir());
    ok(da, &[], &["hub", "announce", "Riverside hub"]);
    let id = ok(
        da,
        &[],
        &["need", "add", "Blankets", "--category", "shelter"],
    )
    .trim()
    .to_string();
    ok(da, &[("AIDMESH_BY", "Ana")], &["claim", &id]);
    wait_for("the claim and the hub to reach b", T, || {
        let item = b.get(&format!("/api/v1/items/{id}"));
        (item["holder_name"] == "Ana" && item["holder_hub"] == "Riverside hub").then_some(())
    });

    // b's peers show a's hub name; the key is cut to a short tail.
    let peers = ok(db, &[], &["peers"]);
    assert!(peers.contains("Riverside hub ("), "{peers}");
    assert!(!peers.contains("12D3KooW"), "{peers}");
    let listed = json(db, &["peers", "--json"]);
    assert_eq!(listed[0]["hub"], "Riverside hub", "{listed:#}");

    // b's show names the hub for the post and the claim.
    let shown = ok(db, &[], &["show", &id]);
    assert!(shown.contains("by Riverside hub"), "{shown}");
    assert!(
        shown.contains("- claimed by Ana (Riverside hub)"),
        "{shown}"
    );
    assert!(
        shown.contains("held by  Ana (Riverside hub), since"),
        "{shown}"
    );

    // A claim at b says who holds it at which hub.
    let err = fails(db, &[("AIDMESH_BY", "Bo")], &["claim", &id]);
    assert!(
        err.contains("already claimed by Ana at Riverside hub since"),
        "{err}"
    );
}
