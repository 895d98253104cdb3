//! The real `aidmesh` binary against a real node (started by the aidmesh-tests harness
//! with `aidmesh up` on loopback): every board command, its `--json` contract (see
//! docs/cli.md), its human output, and the errors a user may meet, with exit codes.
//!
//! One node is shared by the board checks so the whole file runs in a few seconds.

use std::path::PathBuf;
use std::time::Duration;

use aidmesh_tests::{wait_for, Opts};
use serde_json::Value;

mod common;

use common::*;

const CATEGORIES: &str =
    "water, food, medical, shelter, power, transport, rescue, care, welfare, cleanup, other";

/// A directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p =
            std::env::temp_dir().join(format!("aidmesh-cli-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k:?} should be a string in {v:#}"))
}

fn u64_of(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("field {k:?} should be an integer in {v:#}"))
}

fn has_keys(v: &Value, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("expected an object: {v:#}"));
    for k in keys {
        assert!(obj.contains_key(*k), "field {k:?} missing in {v:#}");
    }
}

/// The documented item object (docs/cli.md, "Item").
fn check_item(v: &Value) {
    has_keys(
        v,
        &[
            "id",
            "short_id",
            "kind",
            "title",
            "category",
            "urgency",
            "status",
            "author",
            "created_at",
            "place",
            "qty",
            "unit",
            "contact",
            "details",
            "expires_at",
            "holder",
            "history",
        ],
    );
    let id = str_of(v, "id");
    assert!(is_hex(id, 64), "id: {id}");
    let short = str_of(v, "short_id");
    assert!(
        is_hex(short, 10) && id.starts_with(short),
        "short_id: {short}"
    );
    assert!(["need", "offer"].contains(&str_of(v, "kind")));
    str_of(v, "title");
    assert!(CATEGORIES.contains(str_of(v, "category")));
    assert!(["low", "normal", "high", "life-threatening"].contains(&str_of(v, "urgency")));
    assert!([
        "open",
        "claimed",
        "in-progress",
        "fulfilled",
        "withdrawn",
        "expired"
    ]
    .contains(&str_of(v, "status")));
    assert!(is_hex(str_of(v, "author"), 8));
    u64_of(v, "created_at");
    check_place(&v["place"]);
    assert!(v["qty"].is_null() || v["qty"].is_u64());
    str_of(v, "unit");
    str_of(v, "contact");
    str_of(v, "details");
    assert!(v["expires_at"].is_null() || v["expires_at"].is_u64());
    assert!(v["holder"].is_null() || is_hex(str_of(v, "holder"), 8));
    for h in v["history"].as_array().expect("history is an array") {
        has_keys(h, &["id", "status", "author", "at", "note", "applied"]);
        assert!(is_hex(str_of(h, "id"), 64));
        assert!([
            "claimed",
            "in-progress",
            "fulfilled",
            "withdrawn",
            "reopened"
        ]
        .contains(&str_of(h, "status")));
        assert!(is_hex(str_of(h, "author"), 8));
        u64_of(h, "at");
        str_of(h, "note");
        assert!(h["applied"].is_boolean());
    }
}

fn check_place(p: &Value) {
    has_keys(p, &["label", "lat", "lon"]);
    str_of(p, "label");
    assert!(p["lat"].is_null() || p["lat"].is_f64() || p["lat"].is_i64());
    assert!(p["lon"].is_null() || p["lon"].is_f64() || p["lon"].is_i64());
}

#[test]
fn init_creates_or_joins_a_community_once() {
    let scratch = Scratch::new("init");
    let dir = scratch.0.join("new");
    let out = ok(&dir, &["init", "--community", "Elm Street"]);
    assert!(
        out.contains(&format!("Node created in {}", dir.display())),
        "{out}"
    );
    assert!(out.contains("Community: Elm Street"), "{out}");
    assert!(out.contains("New community passphrase"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("New community passphrase"))
        .expect("passphrase heading");
    let phrase = lines[at + 2].trim();
    let words: Vec<&str> = phrase.split_whitespace().collect();
    assert_eq!(words.len(), 6, "a 6-word passphrase, got {phrase:?}\n{out}");
    assert!(words
        .iter()
        .all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
    let qr_rows = lines.iter().filter(|l| l.contains('█')).count();
    assert!(qr_rows > 10, "a QR code of the passphrase:\n{out}");
    assert!(
        out.contains(&format!("aidmesh --data-dir {} up", dir.display())),
        "init says how to start the node:\n{out}"
    );

    // Twice on the same directory: refused, and the message says what to do.
    fails(
        &dir,
        &["init", "--community", "Elm Street"],
        1,
        &[
            "already holds a node of community 'Elm Street'",
            "--data-dir",
        ],
    );

    // Joining with the passphrase: no new passphrase, no QR code.
    let joined = scratch.0.join("joined");
    let out = ok(
        &joined,
        &["init", "--community", "Elm Street", "--passphrase", phrase],
    );
    assert!(out.contains("Community: Elm Street"), "{out}");
    assert!(!out.contains("passphrase"), "{out}");
    assert!(!out.contains('█'), "{out}");

    // A two-word passphrase is refused.
    fails(
        &scratch.0.join("short"),
        &[
            "init",
            "--community",
            "Elm Street",
            "--passphrase",
            "two words",
        ],
        1,
        &["at least 3 words"],
    );
}

#[test]
fn usage_errors_and_no_node() {
    let scratch = Scratch::new("nonode");
    let dir = scratch.0.as_path();
    let d = dir.display().to_string();
    for args in [
        &["list"][..],
        &["status"],
        &["need", "add", "Water", "--category", "water"],
        &["claim", "abcdef"],
    ] {
        fails(
            dir,
            args,
            1,
            &[
                &format!("no node is running for {d}"),
                &format!("aidmesh --data-dir {d} up"),
            ],
        );
    }

    // Without --data-dir: AIDMESH_DIR, else $XDG_DATA_HOME/aidmesh, else ~/.local/share.
    let r = finish(
        "AIDMESH_DIR=... aidmesh status".into(),
        cmd()
            .env("AIDMESH_DIR", dir)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr.contains(&format!("aidmesh --data-dir {d} up")),
        "{}",
        r.describe()
    );
    let r = finish(
        "HOME=... aidmesh status".into(),
        cmd()
            .env_remove("XDG_DATA_HOME")
            .env("HOME", dir)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr.contains(&format!("{d}/.local/share/aidmesh")),
        "{}",
        r.describe()
    );

    // Argument errors are clap's: exit code 2 and a usage line.
    for (args, needle) in [
        (&["list", "--bogus"][..], "unexpected argument '--bogus'"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["need", "add", "Water"], "--category <CATEGORY>"),
        (&["claim"], "<ID>"),
        (
            &[
                "need",
                "add",
                "W",
                "--category",
                "water",
                "--lat",
                "north",
                "--lon",
                "1",
            ],
            "invalid value 'north' for '--lat <LAT>'",
        ),
    ] {
        let stderr = fails(dir, args, 2, &[needle]);
        assert!(
            stderr.contains("Usage:") || stderr.contains("--help"),
            "{stderr}"
        );
    }
    // Nothing was created by any of this.
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

#[test]
fn demo_runs_three_hubs_and_reports_arrival() {
    let r = finish("aidmesh demo".into(), cmd().arg("demo").output().unwrap());
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout.matches("arrived at").count(),
        2,
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("hubs connected"), "{}", r.describe());
    assert!(r.stdout.contains("Demo finished"), "{}", r.describe());
}

/// A port where this one and the next two are free (for a moment) on loopback.
fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        if first < 65_000
            && (1..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok())
        {
            return first;
        }
    }
    panic!("no three free ports in a row");
}

#[test]
fn demo_takes_its_ports_and_names_a_busy_one() {
    let api = three_free_ports();
    let port = three_free_ports();
    let r = finish(
        format!("aidmesh demo --api {api} --port {port}"),
        cmd()
            .args([
                "demo",
                "--api",
                &api.to_string(),
                "--port",
                &port.to_string(),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    for i in 0..3 {
        let web = format!("web http://127.0.0.1:{}/", api + i);
        assert!(r.stdout.contains(&web), "{web}: {}", r.describe());
    }
    assert!(r.stdout.contains("Demo finished"), "{}", r.describe());

    // A port in use (a real node's, say) is named at once, not after a wait.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let r = finish(
        format!("aidmesh demo --api {taken}"),
        cmd()
            .args(["demo", "--api", &taken.to_string()])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr.contains(&taken.to_string()) && r.stderr.contains("--api"),
        "{}",
        r.describe()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{}",
        r.describe()
    );
}

#[test]
fn board_commands_against_a_real_node() {
    let mut node = start_node("cli", Opts::default());
    let dir = node.dir().to_path_buf();
    let dir = dir.as_path();

    // An empty board.
    assert_eq!(ok(dir, &["list"]).trim(), "Nothing to show.");
    assert!(array(&json(dir, &["list", "--json"])).is_empty());
    assert_eq!(ok(dir, &["match"]).trim(), "No open needs.");
    assert!(array(&json(dir, &["match", "--json"])["matches"]).is_empty());
    assert_eq!(ok(dir, &["alerts"]).trim(), "No active alerts.");
    assert!(array(&json(dir, &["alerts", "--json"])).is_empty());
    assert!(array(&json(dir, &["hub", "list", "--json"])).is_empty());
    assert_eq!(ok(dir, &["peers"]).trim(), "No peers connected.");
    assert!(array(&json(dir, &["peers", "--json"])).is_empty());

    // Post a need and an offer that matches it; each prints its short id.
    let need = ok(
        dir,
        &[
            "need",
            "add",
            "Insulin for Mrs Ada, 3rd floor",
            "--category",
            "medical",
            "--urgency",
            "life-threatening",
            "--qty",
            "2",
            "--unit",
            "pens",
            "--where",
            "14 River Rd",
            "--lat",
            "29.952",
            "--lon",
            "-90.072",
            "--contact",
            "knock twice",
            "--details",
            "Type 1 diabetic",
            "--expires",
            "2d",
        ],
    )
    .trim()
    .to_string();
    assert!(
        is_hex(&need, 10),
        "need add prints a short id, got {need:?}"
    );
    let offer = ok(
        dir,
        &[
            "offer",
            "add",
            "Fridge with insulin pens",
            "--category",
            "health",
            "--qty",
            "5",
            "--unit",
            "pens",
            "--where",
            "Elm St pharmacy",
            "--lat",
            "29.9515",
            "--lon",
            "-90.0712",
        ],
    )
    .trim()
    .to_string();
    assert!(
        is_hex(&offer, 10),
        "offer add prints a short id, got {offer:?}"
    );
    let other = ok(dir, &["need", "add", "Sandbags", "--category", "cleanup"])
        .trim()
        .to_string();

    // list: human and JSON, filtered by kind and category.
    let table = ok(dir, &["list"]);
    for s in [&need, &offer, &other] {
        assert!(table.contains(s.as_str()), "{table}");
    }
    assert!(table.contains("Insulin for Mrs Ada, 3rd floor"), "{table}");
    assert!(table.contains("LIFE-THREATENING"), "{table}");
    assert!(
        table.contains("2 pens") && table.contains("14 River Rd"),
        "{table}"
    );
    let needs = json(dir, &["list", "needs", "--json"]);
    assert_eq!(array(&needs).len(), 2);
    array(&needs).iter().for_each(check_item);
    assert!(array(&needs).iter().all(|i| i["kind"] == "need"));
    // Most urgent first.
    assert_eq!(needs[0]["short_id"], need.as_str());
    let offers = json(dir, &["list", "offers", "--category", "medical", "--json"]);
    assert_eq!(array(&offers).len(), 1);
    assert_eq!(offers[0]["short_id"], offer.as_str());
    assert_eq!(offers[0]["category"], "medical");
    let all = json(dir, &["list", "all", "--status", "open", "--json"]);
    assert_eq!(array(&all).len(), 3);
    assert!(array(&json(dir, &["list", "--category", "power", "--json"])).is_empty());

    // show: JSON fields, and any unique prefix of 6+ characters, any case.
    let item = json(dir, &["show", &need, "--json"]);
    check_item(&item);
    let full = str_of(&item, "id").to_string();
    assert_eq!(item["short_id"], need.as_str());
    assert_eq!(item["kind"], "need");
    assert_eq!(item["title"], "Insulin for Mrs Ada, 3rd floor");
    assert_eq!(item["category"], "medical");
    assert_eq!(item["urgency"], "life-threatening");
    assert_eq!(item["status"], "open");
    assert_eq!(item["place"]["label"], "14 River Rd");
    assert_eq!(item["place"]["lat"].as_f64(), Some(29.952));
    assert_eq!(item["place"]["lon"].as_f64(), Some(-90.072));
    assert_eq!(item["qty"], 2);
    assert_eq!(item["unit"], "pens");
    assert_eq!(item["contact"], "knock twice");
    assert_eq!(item["details"], "Type 1 diabetic");
    // Expiry and creation are read from the clock a moment apart.
    let lifetime = u64_of(&item, "expires_at").abs_diff(u64_of(&item, "created_at"));
    assert!(lifetime.abs_diff(2 * 86_400_000) < 1_000, "{lifetime}");
    assert!(item["holder"].is_null());
    assert!(array(&item["history"]).is_empty());
    for prefix in [&need[..6], &need.to_uppercase()[..8], full.as_str()] {
        assert_eq!(json(dir, &["show", prefix, "--json"])["id"], full.as_str());
    }
    let shown = ok(dir, &["show", &need[..6]]);
    assert!(
        shown.starts_with(&format!("need {need}  [open]")),
        "{shown}"
    );
    assert!(
        shown.contains(&full) && shown.contains("knock twice"),
        "{shown}"
    );

    // match: the offer is a candidate for the need, with a distance.
    let page = json(dir, &["match", "--json"]);
    has_keys(&page, &["matches", "needs_total", "next_cursor"]);
    assert!(
        page["next_cursor"].is_null(),
        "one page holds both needs: {page}"
    );
    let m = &page["matches"];
    let first = &m[0];
    has_keys(first, &["need", "offers", "offers_total"]);
    check_item(&first["need"]);
    assert_eq!(first["need"]["short_id"], need.as_str());
    let cand = &first["offers"][0];
    check_item(cand);
    assert_eq!(cand["short_id"], offer.as_str());
    let dist = cand["distance_m"].as_f64().expect("distance_m is a number");
    assert!((50.0..150.0).contains(&dist), "distance {dist}");
    let sandbags = array(m)
        .iter()
        .find(|x| x["need"]["short_id"] == other.as_str())
        .expect("every open need is listed");
    assert!(array(&sandbags["offers"]).is_empty());
    let text = ok(dir, &["match"]);
    assert!(text.contains(&format!("<- {offer}")), "{text}");
    assert!(text.contains("no offer matches yet"), "{text}");
    // A page at a time: the first page says how to get the next, which ends the list.
    let text = ok(dir, &["match", "--limit", "1"]);
    assert!(!text.contains("no offer matches yet"), "{text}");
    let cursor = text
        .split("aidmesh match --cursor ")
        .nth(1)
        .unwrap_or_else(|| panic!("a next-page hint in {text}"))
        .trim();
    let rest = ok(dir, &["match", "--limit", "1", "--cursor", cursor]);
    assert!(
        rest.contains("no offer matches yet") && !rest.contains("--cursor"),
        "{rest}"
    );
    fails(dir, &["match", "--limit", "0"], 1, &["limit", "1 to 100"]);
    fails(dir, &["match", "--cursor", "nonsense"], 1, &["cursor"]);

    // Status changes, with notes, and the history they leave.
    let author = str_of(&item, "author").to_string();
    assert_eq!(
        ok(dir, &["claim", &need, "--note", "Sam is bringing 2 pens"]).trim(),
        format!("{need} is now claimed")
    );
    let claimed = json(dir, &["show", &need, "--json"]);
    assert_eq!(claimed["status"], "claimed");
    assert_eq!(claimed["holder"], author.as_str());
    assert_eq!(claimed["history"][0]["status"], "claimed");
    assert_eq!(claimed["history"][0]["note"], "Sam is bringing 2 pens");
    assert_eq!(claimed["history"][0]["applied"], true);
    assert_eq!(
        ok(dir, &["progress", &need[..6]]).trim(),
        format!("{need} is now in-progress")
    );
    assert_eq!(
        ok(dir, &["fulfil", &need, "--note", "delivered"]).trim(),
        format!("{need} is now fulfilled")
    );
    let active = json(dir, &["list", "--json"]);
    assert!(array(&active)
        .iter()
        .all(|i| i["short_id"] != need.as_str()));
    let done = json(dir, &["list", "needs", "--status", "fulfilled", "--json"]);
    assert_eq!(array(&done).len(), 1);
    assert_eq!(done[0]["short_id"], need.as_str());
    // A change that the status rules do not allow: refused, exit 1, says why.
    fails(
        dir,
        &["fulfil", &need],
        1,
        &["fulfilled item cannot become fulfilled"],
    );
    assert_eq!(
        ok(dir, &["reopen", &need, "--note", "wrong pens"]).trim(),
        format!("{need} is now open")
    );
    let shown = ok(dir, &["show", &need]);
    for line in [
        format!("- claimed by {author}"),
        "Sam is bringing 2 pens".to_string(),
        "- in-progress by".to_string(),
        "- fulfilled by".to_string(),
        "(not applied)".to_string(),
        "- reopened by".to_string(),
        "wrong pens".to_string(),
    ] {
        assert!(shown.contains(&line), "show should have {line:?}:\n{shown}");
    }
    let reopened = json(dir, &["show", &need, "--json"]);
    assert_eq!(reopened["status"], "open");
    let hist: Vec<(&str, bool)> = array(&reopened["history"])
        .iter()
        .map(|h| (str_of(h, "status"), h["applied"] == true))
        .collect();
    assert_eq!(
        hist,
        [
            ("claimed", true),
            ("in-progress", true),
            ("fulfilled", true),
            ("fulfilled", false),
            ("reopened", true)
        ]
    );
    assert_eq!(
        ok(dir, &["withdraw", &offer, "--note", "fridge emptied"]).trim(),
        format!("{offer} is now withdrawn")
    );
    let withdrawn = json(dir, &["list", "offers", "--status", "withdrawn", "--json"]);
    assert_eq!(withdrawn[0]["short_id"], offer.as_str());

    // Hubs.
    let hub = ok(
        dir,
        &[
            "hub",
            "announce",
            "Elm St church hall",
            "--where",
            "Elm St",
            "--lat",
            "29.95",
            "--lon",
            "-90.07",
            "--services",
            "water,charging, first aid",
        ],
    )
    .trim()
    .to_string();
    assert!(is_hex(&hub, 10), "{hub:?}");
    let text = ok(dir, &["hub", "list"]);
    assert!(
        text.contains(&format!(
            "{hub}  Elm St church hall  Elm St  [water, charging, first aid]"
        )),
        "{text}"
    );
    let hubs = json(dir, &["hub", "list", "--json"]);
    let h = &hubs[0];
    has_keys(
        h,
        &[
            "id",
            "short_id",
            "kind",
            "name",
            "place",
            "services",
            "author",
            "created_at",
        ],
    );
    assert!(is_hex(str_of(h, "id"), 64));
    assert_eq!(h["short_id"], hub.as_str());
    assert_eq!(h["kind"], "hub");
    assert_eq!(h["name"], "Elm St church hall");
    check_place(&h["place"]);
    assert_eq!(h["place"]["lat"].as_f64(), Some(29.95));
    assert_eq!(
        h["services"],
        serde_json::json!(["water", "charging", "first aid"])
    );
    assert_eq!(h["author"], author.as_str());
    u64_of(h, "created_at");

    // Alerts.
    let alert = ok(
        dir,
        &[
            "alert",
            "Water rising on River Road",
            "--severity",
            "extreme",
            "--details",
            "Move cars to Oak Ave",
            "--area",
            "River Road",
            "--expires",
            "12h",
        ],
    )
    .trim()
    .to_string();
    assert!(is_hex(&alert, 10), "{alert:?}");
    let text = ok(dir, &["alerts"]);
    assert!(
        text.contains(&format!(
            "{alert}  EXTREME  Water rising on River Road (River Road)"
        )),
        "{text}"
    );
    let alerts = json(dir, &["alerts", "--json"]);
    let a = &alerts[0];
    has_keys(
        a,
        &[
            "id",
            "short_id",
            "kind",
            "severity",
            "headline",
            "details",
            "area",
            "expires_at",
            "author",
            "created_at",
        ],
    );
    assert_eq!(a["short_id"], alert.as_str());
    assert_eq!(a["kind"], "alert");
    assert_eq!(a["severity"], "extreme");
    assert_eq!(a["headline"], "Water rising on River Road");
    assert_eq!(a["details"], "Move cars to Oak Ave");
    assert_eq!(a["area"], "River Road");
    // Expiry and creation are read from the clock a moment apart.
    let lifetime = u64_of(a, "expires_at").abs_diff(u64_of(a, "created_at"));
    assert!(lifetime.abs_diff(12 * 3_600_000) < 1_000, "{lifetime}");
    // Default severity is severe; no expiry given is a day.
    ok(dir, &["alert", "Bridge closed"]);
    let alerts = json(dir, &["alerts", "--json"]);
    let b = array(&alerts)
        .iter()
        .find(|a| a["headline"] == "Bridge closed")
        .expect("second alert");
    assert_eq!(b["severity"], "severe");
    let lifetime = u64_of(b, "expires_at").abs_diff(u64_of(b, "created_at"));
    assert!(lifetime.abs_diff(86_400_000) < 1_000, "{lifetime}");

    // Status.
    let text = ok(dir, &["status"]);
    assert!(text.contains("community  test"), "{text}");
    assert!(text.contains("listening  /ip4/127.0.0.1/tcp/"), "{text}");
    let st = json(dir, &["status", "--json"]);
    has_keys(
        &st,
        &[
            "peer_id",
            "community",
            "author",
            "listen",
            "events",
            "digest",
            "peers",
            "peer_list",
            "clock",
            "now_ms",
            "sync_bytes_in",
            "sync_bytes_out",
        ],
    );
    assert!(str_of(&st, "peer_id").starts_with("12D3KooW"));
    assert_eq!(st["community"], "test");
    assert!(is_hex(str_of(&st, "author"), 64));
    assert!(str_of(&st, "author").starts_with(&author));
    assert!(st["listen"][0]
        .as_str()
        .is_some_and(|l| l.starts_with("/ip4/127.0.0.1/tcp/")));
    let events = u64_of(&st, "events");
    // 3 posts, 6 status changes, 1 hub, 2 alerts.
    assert_eq!(events, 12);
    assert!(is_hex(str_of(&st, "digest"), 64));
    assert_eq!(st["peers"], 0);
    assert!(array(&st["peer_list"]).is_empty());
    has_keys(&st["clock"], &["status", "offset_ms", "warning"]);
    assert!(["unknown", "ok", "behind", "ahead"].contains(&str_of(&st["clock"], "status")));
    u64_of(&st, "now_ms");
    u64_of(&st, "sync_bytes_in");
    u64_of(&st, "sync_bytes_out");
    assert!(text.contains(&format!("events     {events}")), "{text}");

    // The data directory can come from AIDMESH_DIR instead of --data-dir.
    let r = finish(
        "AIDMESH_DIR=... aidmesh alerts".into(),
        cmd()
            .env("AIDMESH_DIR", dir)
            .arg("alerts")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(r.stdout.contains("Bridge closed"), "{}", r.describe());

    // Errors against a running node: exit 1, nothing on stdout, and what is valid.
    let add = |extra: &[&str]| {
        let mut v = vec!["need", "add", "Water for 4"];
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            add(&["--category", "blankets"]),
            vec!["unknown category 'blankets'", CATEGORIES],
        ),
        (
            add(&["--category", "water", "--expires", "soon"]),
            vec![
                "expires",
                "'soon' is not a duration",
                "e.g. 90s, 30m, 2h, 3d",
            ],
        ),
        (
            add(&["--category", "water", "--expires", "5y"]),
            vec!["unknown unit 'y'", "use s, m, h, d or w"],
        ),
        (
            add(&["--category", "water", "--lat", "123", "--lon", "0"]),
            vec!["(123, 0) is not a position", "latitude must be within ±90"],
        ),
        (
            add(&["--category", "water", "--lat", "12"]),
            vec!["give both latitude and longitude, or neither"],
        ),
        (
            add(&["--category", "water", "--urgency", "meh"]),
            vec![
                "unknown urgency 'meh'",
                "low, normal, high, life-threatening",
            ],
        ),
        (
            vec!["list".into(), "stuff".into()],
            vec!["'stuff' is not a list; use needs, offers or all"],
        ),
        (
            vec!["list".into(), "--category".into(), "blankets".into()],
            vec![CATEGORIES],
        ),
        (
            vec!["list".into(), "--status".into(), "done".into()],
            vec![
                "unknown status 'done'",
                "open, claimed, in-progress, fulfilled",
            ],
        ),
        (
            vec!["show".into(), need[..5].to_string()],
            vec!["is not an id: give at least 6 hex characters"],
        ),
        (
            vec!["claim".into(), "zzzzzz".into()],
            vec!["'zzzzzz' is not an id"],
        ),
        (
            vec![
                "alert".into(),
                "x".into(),
                "--severity".into(),
                "huge".into(),
            ],
            vec!["valid: minor, moderate, severe, extreme"],
        ),
        (
            vec![
                "alert".into(),
                "x".into(),
                "--expires".into(),
                "soon".into(),
            ],
            vec!["'soon' is not a duration"],
        ),
        (
            vec![
                "hub".into(),
                "announce".into(),
                "H".into(),
                "--lat".into(),
                "100".into(),
                "--lon".into(),
                "0".into(),
            ],
            vec!["latitude must be within ±90"],
        ),
    ];
    for (args, needles) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(dir, &args, 1, needles);
    }
    // An id that matches nothing (chosen so that it is no prefix of a real id).
    let ids: Vec<String> = array(&json(dir, &["list", "--status", "all", "--json"]))
        .iter()
        .map(|i| str_of(i, "id").to_string())
        .collect();
    let unknown = ["000000", "123456", "fedcba"]
        .into_iter()
        .find(|p| !ids.iter().any(|i| i.starts_with(p)))
        .expect("an unused prefix");
    for verb in ["show", "claim", "fulfil"] {
        fails(
            dir,
            &[verb, unknown],
            1,
            &[&format!(
                "no need or offer has an id starting with '{unknown}'"
            )],
        );
    }
    // None of the refused commands wrote anything.
    assert_eq!(u64_of(&json(dir, &["status", "--json"]), "events"), events);

    // Peers: a second node of the same community connects to this one.
    let peer = start_node(
        "cli-peer",
        Opts {
            peers: vec![node.addr()],
            ..Opts::default()
        },
    );
    let peer_id = str_of(&peer.status(), "peer_id").to_string();
    let peers = wait_for("the CLI to list the peer", Duration::from_secs(20), || {
        let v = json(dir, &["peers", "--json"]);
        (!array(&v).is_empty()).then_some(v)
    });
    let p = &peers[0];
    has_keys(p, &["peer_id", "addr", "last_sync_ms"]);
    assert_eq!(p["peer_id"], peer_id.as_str());
    assert!(str_of(p, "addr").starts_with("/ip4/127.0.0.1/tcp/"));
    assert!(p["last_sync_ms"].is_null() || p["last_sync_ms"].is_u64());
    let text = ok(dir, &["peers"]);
    assert!(text.contains("PEER") && text.contains(&peer_id), "{text}");
    drop(peer);

    // A node killed with -9 leaves its api.addr behind: still "no node is running".
    node.kill();
    assert!(dir.join("api.addr").exists());
    let d = dir.display().to_string();
    fails(
        dir,
        &["list"],
        1,
        &[
            &format!("no node is running for {d}"),
            &format!("aidmesh --data-dir {d} up"),
        ],
    );
}

#[test]
fn welfare_commands_against_a_real_node() {
    let node = start_node("welfare-cli", Opts::default());
    let dir = node.dir();
    let id = ok(
        dir,
        &[
            "welfare",
            "add",
            "Ada Okafor",
            "--where",
            "14 River Rd, 3rd floor",
            "--every",
            "12h",
            "--risk",
            "oxygen",
            "--risk",
            "lives alone",
            "--consent",
            "self",
            "--phone",
            "555-0101",
        ],
    );
    let id = id.trim().to_string();
    assert!(is_hex(&id, 10), "welfare add prints the short id: {id:?}");
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

    // A check-in by name; "needs help" also posts a need on the board.
    let out = ok(
        dir,
        &[
            "welfare",
            "check",
            "ada",
            "--needs-help",
            "oxygen concentrator needs power",
            "--by",
            "Sam",
        ],
    );
    assert!(
        out.contains("needs-help recorded") && out.contains("posted need"),
        "{out}"
    );
    let needs = json(dir, &["list", "needs", "--json"]);
    assert!(
        array(&needs).iter().any(|i| i["welfare_help"] == "medical"),
        "{needs}"
    );
    ok(
        dir,
        &[
            "welfare",
            "check",
            &id[..6],
            "--moved",
            "school hall",
            "--note",
            "with her daughter",
        ],
    );

    let people = json(dir, &["welfare", "list", "--json"]);
    let ada = array(&people)
        .iter()
        .find(|p| p["name"] == "Ada Okafor")
        .cloned()
        .expect("Ada listed");
    has_keys(
        &ada,
        &[
            "id",
            "short_id",
            "name",
            "place",
            "risks",
            "every_secs",
            "consent",
            "phone",
            "standing",
            "due_at",
            "overdue_ms",
            "latest",
            "checks",
        ],
    );
    assert_eq!(ada["latest"]["outcome"], "moved");
    assert_eq!(ada["latest"]["detail"], "school hall");
    assert_eq!(ada["standing"], "ok");
    assert_eq!(array(&ada["checks"]).len(), 2);
    ok(dir, &["welfare", "check", "Bo Lindqvist", "--no-answer"]);
    let overdue = json(dir, &["welfare", "overdue", "--json"]);
    assert_eq!(array(&overdue).len(), 1);
    assert_eq!(overdue[0]["standing"], "no-answer");
    let human = ok(dir, &["welfare", "overdue"]);
    assert!(
        human.contains("NO ANSWER") && human.contains("Bo Lindqvist"),
        "{human}"
    );

    // Errors: no outcome or two outcomes (usage, exit 2), nobody by that name, bad interval.
    fails(dir, &["welfare", "check", "ada"], 2, &["--safe"]);
    fails(
        dir,
        &["welfare", "check", "ada", "--safe", "--no-answer"],
        2,
        &["cannot be used with"],
    );
    fails(
        dir,
        &["welfare", "check", "Zed", "--safe"],
        1,
        &["nobody registered matches 'Zed'"],
    );
    fails(
        dir,
        &[
            "welfare",
            "add",
            "Cy",
            "--where",
            "7 Oak Ave",
            "--every",
            "5m",
        ],
        1,
        // The field as the command line and the API name it (was the event's
        // `check_every_secs` until refusals named their field, issue 29).
        &["every: must be between 600 s (10 min)"],
    );

    let out = ok(dir, &["welfare", "forget", "ada"]);
    assert!(out.contains("forgot"), "{out}");
    let people = json(dir, &["welfare", "list", "--json"]);
    assert!(
        array(&people).iter().all(|p| p["name"] != "Ada Okafor"),
        "{people}"
    );
    let needs = json(dir, &["list", "needs", "--json"]);
    assert!(
        array(&needs).iter().all(|i| i["category"] != "welfare"),
        "the linked need goes too: {needs}"
    );
}

#[test]
fn up_help_says_the_volunteer_pin_minimum() {
    let r = finish(
        "aidmesh up --help".into(),
        cmd().args(["up", "--help"]).output().unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    let help = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let pin = help
        .split("--volunteer-pin <")
        .nth(1)
        .and_then(|s| s.split("--volunteer-pin-file").next())
        .unwrap_or_else(|| panic!("no --volunteer-pin in: {help}"));
    assert!(pin.contains("at least 6 characters"), "{pin}");
}

#[test]
fn usage_lines_do_not_ask_for_data_dir_when_aidmesh_dir_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let r = finish(
        "AIDMESH_DIR=… aidmesh need add".into(),
        cmd()
            .env("AIDMESH_DIR", dir.path())
            .args(["need", "add"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.describe());
    assert!(
        r.stderr
            .contains("Usage: aidmesh need add --category <CATEGORY> <TITLE>\n"),
        "{}",
        r.describe()
    );
    assert!(!r.stderr.contains("--data-dir"), "{}", r.describe());
}
