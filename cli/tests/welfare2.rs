//! Welfare details and ending alerts with the real `aidmesh` binary against a real
//! node (issue 15): a later check-in that is not "needs help" closes the need the
//! "needs help" check-in posted; `--moved` changes where the person is; someone never
//! visited shows as "never visited"; alerts expire after a day by default and can be
//! cancelled, marked all clear and made active again.

use aidmesh_tests::Opts;
use serde_json::Value;

mod common;

use common::*;

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
        array(&active).iter().all(|i| i["welfare_help"].is_null()),
        "a closed welfare need is not on the active board: {active}"
    );

    // `--moved PLACE` changes where the person is, in JSON and in the table.
    ok(
        dir,
        &[
            "welfare",
            "check",
            "bo",
            "--moved",
            "school hall, 3 Church Road",
        ],
    );
    let people = json(dir, &["welfare", "list", "--json"]);
    let bo = person(&people, "Bo Lindqvist");
    assert_eq!(bo["place"]["label"], "school hall, 3 Church Road", "{bo}");
    assert_eq!(bo["standing"], "ok");
    let human = ok(dir, &["welfare", "list"]);
    assert!(
        human.contains("school hall") && !human.contains("2 Mill Lane"),
        "{human}"
    );
    // A need raised after the move names the new street (without the number), not
    // the old one.
    let out = ok(dir, &["welfare", "check", "bo", "--needs-help", "blankets"]);
    let need = out
        .split("posted need ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no need posted: {out}"))
        .to_string();
    let shown = json(dir, &["show", &need, "--json"]);
    assert_eq!(shown["place"]["label"], "Church Road", "{shown}");
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
