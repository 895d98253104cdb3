//! Welfare details and ending alerts with the real `aidmesh` binary against a real
//! node (issue 15): a later check-in that is not "needs help" closes the need the
//! "needs help" check-in posted; `--moved` changes where the person is; someone never
//! visited shows as "never visited"; alerts expire after a day by default and can be
//! cancelled, marked all clear and made active again.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Once;

use aidmesh_tests::{Node, Opts};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aidmesh");

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    what: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

fn finish(what: String, out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        what,
    }
}

/// A command for the binary with a clean environment for its options.
fn cmd() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("AIDMESH_DIR").env("NO_COLOR", "1");
    c
}

/// `aidmesh --data-dir DIR ARGS...`
fn run(dir: &Path, args: &[&str]) -> Run {
    let out = cmd()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run aidmesh");
    finish(format!("aidmesh {}", args.join(" ")), out)
}

/// Runs and expects exit code 0 with nothing on stderr; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let r = run(dir, args);
    assert!(r.code == 0, "expected success: {}", r.describe());
    assert!(r.stderr.is_empty(), "unexpected stderr: {}", r.describe());
    r.stdout
}

/// Runs with `--json` output and parses it.
fn json(dir: &Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("`{args:?}` printed bad JSON ({e}):\n{out}"))
}

/// Runs and expects failure with `code`, nothing on stdout, and an stderr that holds
/// every one of `needles`; returns stderr.
fn fails(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let r = run(dir, args);
    assert_eq!(r.code, code, "wrong exit code: {}", r.describe());
    assert!(r.stdout.is_empty(), "output on failure: {}", r.describe());
    assert!(
        r.stderr.starts_with("error: "),
        "stderr should start with 'error: ': {}",
        r.describe()
    );
    for n in needles {
        assert!(
            r.stderr.contains(n),
            "stderr should mention {n:?}: {}",
            r.describe()
        );
    }
    r.stderr
}

/// Starts a harness node running this very binary.
fn start_node(name: &str, opts: Opts) -> Node {
    static BIN_ENV: Once = Once::new();
    BIN_ENV.call_once(|| std::env::set_var("AIDMESH_BIN", BIN));
    Node::start(name, opts)
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array: {v}"))
}

fn person<'a>(people: &'a Value, name: &str) -> &'a Value {
    array(people)
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {people}"))
}

#[test]
fn welfare_details_against_a_real_node() {
    let node = start_node("welfare2-cli", Opts::default());
    let dir = node.dir();
    ok(
        dir,
        &[
            "welfare",
            "add",
            "Ada Okafor",
            "--where",
            "14 River Rd",
            "--every",
            "12h",
        ],
    );
    ok(
        dir,
        &[
            "welfare",
            "add",
            "Bo Lindqvist",
            "--where",
            "2 Mill Lane",
            "--every",
            "6h",
        ],
    );

    // Nobody has visited yet: "never visited", not "ok".
    let people = json(dir, &["welfare", "list", "--json"]);
    assert_eq!(person(&people, "Ada Okafor")["standing"], "never-visited");
    let human = ok(dir, &["welfare", "list"]);
    assert!(human.contains("never visited"), "{human}");
    assert!(!human.contains(" ok "), "{human}");

    // "Needs help" posts a need; a later "safe" closes it.
    let out = ok(
        dir,
        &[
            "welfare",
            "check",
            "ada",
            "--needs-help",
            "insulin",
            "--by",
            "Sam",
        ],
    );
    let need = out
        .split("posted need ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no need posted: {out}"))
        .to_string();
    assert_eq!(json(dir, &["show", &need, "--json"])["status"], "open");
    ok(dir, &["welfare", "check", "ada", "--safe", "--by", "Sam"]);
    let shown = json(dir, &["show", &need, "--json"]);
    assert_eq!(shown["status"], "fulfilled", "{shown}");
    let active = json(dir, &["list", "needs", "--json"]);
    assert!(
        array(&active).iter().all(|i| i["category"] != "welfare"),
        "a closed welfare need is not on the active board: {active}"
    );

    // `--moved PLACE` changes where the person is, in JSON and in the table.
    ok(dir, &["welfare", "check", "bo", "--moved", "school hall"]);
    let people = json(dir, &["welfare", "list", "--json"]);
    let bo = person(&people, "Bo Lindqvist");
    assert_eq!(bo["place"]["label"], "school hall", "{bo}");
    assert_eq!(bo["standing"], "ok");
    let human = ok(dir, &["welfare", "list"]);
    assert!(
        human.contains("school hall") && !human.contains("2 Mill Lane"),
        "{human}"
    );
    // A need raised after the move names the new place, not the old street.
    let out = ok(dir, &["welfare", "check", "bo", "--needs-help", "blankets"]);
    let need = out
        .split("posted need ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no need posted: {out}"))
        .to_string();
    let shown = json(dir, &["show", &need, "--json"]);
    assert_eq!(shown["place"]["label"], "school hall", "{shown}");
}

#[test]
fn alerts_expire_after_a_day_and_can_be_cancelled_or_cleared() {
    let node = start_node("welfare2-alerts", Opts::default());
    let dir = node.dir();
    let before = now_ms();
    let water = ok(
        dir,
        &["alert", "Water rising on River Rd", "--area", "River Rd"],
    );
    let water = water.trim().to_string();
    let gas = ok(dir, &["alert", "Gas leak on Elm St", "--expires", "3d"]);
    let gas = gas.trim().to_string();
    let alerts = json(dir, &["alerts", "--json"]);
    let find = |alerts: &Value, id: &str| -> Option<Value> {
        array(alerts).iter().find(|a| a["short_id"] == id).cloned()
    };
    let w = find(&alerts, &water).expect("water alert listed");
    assert_eq!(w["state"], "active");
    let day = 86_400_000;
    let exp = w["expires_at"].as_u64().expect("a default expiry");
    assert!(
        exp >= before + day && exp <= now_ms() + day,
        "expires a day after it was raised: {w}"
    );
    let g = find(&alerts, &gas).expect("gas alert listed");
    assert!(
        g["expires_at"].as_u64().unwrap_or(0) >= before + 3 * day,
        "{g}"
    );

    // All clear: still listed, marked so, with the note.
    let out = ok(
        dir,
        &[
            "alert",
            "clear",
            &water,
            "--note",
            "river back within its banks",
        ],
    );
    assert!(out.contains("all-clear"), "{out}");
    let alerts = json(dir, &["alerts", "--json"]);
    let w = find(&alerts, &water).expect("an all-clear alert is still listed");
    assert_eq!(w["state"], "all-clear");
    assert_eq!(w["ended"]["note"], "river back within its banks");
    let human = ok(dir, &["alerts"]);
    assert!(human.contains("ALL CLEAR"), "{human}");

    // Cancelled: gone; active again: back.
    ok(dir, &["alert", "cancel", &gas]);
    assert!(find(&json(dir, &["alerts", "--json"]), &gas).is_none());
    ok(dir, &["alert", "active", &gas]);
    let g = find(&json(dir, &["alerts", "--json"]), &gas).expect("gas alert back");
    assert_eq!(g["state"], "active");

    // Errors: an unknown alert, a bad id.
    fails(
        dir,
        &["alert", "cancel", "abcdef"],
        1,
        &["no alert has an id"],
    );
    fails(dir, &["alert", "clear", "xyz"], 1, &["not an id"]);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
