//! Honest delivery in the command line (issue 11), with the real binary against real
//! nodes: `aidmesh hubs` lists the roster, `show` says at which hubs an item is known
//! and which not yet, `list` has a compact "2/2" column, `status` flags an urgent need
//! no other hub holds after a minute, the printed board says "known at N of M hubs",
//! and a hub not heard from for 15 minutes is flagged silent.

mod common;

use std::time::Duration;

use aidmesh_tests::{http, poll, Node, Opts};
use common::{array, json, ok, start_node};
use serde_json::Value;

/// Bound on each wait for the mesh to tell the other hub about something.
const T: Duration = Duration::from_secs(30);

/// How often a wait asks again (each ask runs the binary).
const EVERY: Duration = Duration::from_millis(300);

/// The line of `aidmesh list` for the item `short`.
fn list_row(node: &Node, short: &str) -> String {
    ok(node.dir(), &["list"])
        .lines()
        .find(|l| l.contains(short))
        .unwrap_or_else(|| panic!("{short} not in `aidmesh list`"))
        .trim_end()
        .to_string()
}

/// The printed board (`GET /print`) as HTML.
fn printed(node: &Node) -> String {
    let mut r = http()
        .get(format!("{}/print", node.api_url()))
        .call()
        .expect("GET /print");
    r.body_mut().read_to_string().expect("the printed board")
}

/// The `<li>` of the printed board that holds `short`.
fn printed_entry(node: &Node, short: &str) -> String {
    let html = printed(node);
    let at = html
        .find(short)
        .unwrap_or_else(|| panic!("{short} not on the printed board:\n{html}"));
    let end = html[at..].find("</li>").map_or(html.len(), |e| at + e);
    html[at..end].to_string()
}

/// The roster entry of the hub named `name`, as `aidmesh hubs --json` has it.
fn roster_entry(node: &Node, name: &str) -> Option<Value> {
    let hubs = json(node.dir(), &["hubs", "--json"]);
    array(&hubs)
        .iter()
        .find(|h| h["name"].as_str() == Some(name))
        .cloned()
}

#[test]
fn hubs_show_list_status_and_print_say_where_an_item_is_known() {
    let mut a = start_node(
        "delivery-cli-a",
        Opts {
            // Flagged after 10 s rather than a minute: the test waits for it.
            args: vec!["--unreached-after".into(), "10s".into()],
            ..Opts::default()
        },
    );
    ok(a.dir(), &["hub", "announce", "Elm St"]);
    let first = ok(
        a.dir(),
        &[
            "need",
            "add",
            "Insulin for Mrs Ada",
            "--category",
            "medical",
            "--urgency",
            "life-threatening",
        ],
    )
    .trim()
    .to_string();

    // Alone: this hub is the whole roster and holds it.
    let hubs = json(a.dir(), &["hubs", "--json"]);
    let me: Vec<&Value> = array(&hubs).iter().filter(|h| h["me"] == true).collect();
    assert_eq!(
        me.len(),
        1,
        "exactly one roster entry is this hub: {hubs:#}"
    );
    assert!(
        ok(a.dir(), &["hubs"]).contains("this hub"),
        "`aidmesh hubs` marks this hub"
    );
    assert!(
        list_row(&a, &first).ends_with("1/1"),
        "the KNOWN column of a lone hub: {}",
        list_row(&a, &first)
    );
    assert!(
        ok(a.dir(), &["show", &first]).contains("known at 1 of 1 hub (Elm St)"),
        "{}",
        ok(a.dir(), &["show", &first])
    );

    // A second hub connects: within seconds it is known at both.
    let b = start_node(
        "delivery-cli-b",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    ok(b.dir(), &["hub", "announce", "Oak Rd"]);
    let shown = poll(
        "the need to be known at Elm St and Oak Rd",
        T,
        EVERY,
        || {
            let out = ok(a.dir(), &["show", &first]);
            out.contains("known at 2 of 2 hubs (Elm St, Oak Rd)")
                .then_some(out)
        },
    );
    assert!(!shown.contains("not yet"), "{shown}");
    let item = json(a.dir(), &["show", &first, "--json"]);
    let known_at = array(&item["known_at"]);
    assert_eq!(known_at.len(), 2, "{item:#}");
    assert_eq!(known_at[0]["name"], "Elm St", "this hub first: {item:#}");
    assert!(known_at.iter().all(|k| k["at_ms"].is_u64()), "{item:#}");
    assert!(
        list_row(&a, &first).ends_with("2/2"),
        "{}",
        list_row(&a, &first)
    );
    assert!(
        printed_entry(&a, &first).contains("known at 2 of 2 hubs"),
        "{}",
        printed_entry(&a, &first)
    );
    let oak = roster_entry(&a, "Oak Rd").expect("Oak Rd on the roster");
    assert_eq!(oak["reachable"], true, "{oak:#}");
    assert_eq!(oak["silent"], false, "{oak:#}");
    let table = ok(a.dir(), &["hubs"]);
    let oak_row = table
        .lines()
        .find(|l| l.contains("Oak Rd"))
        .unwrap_or_else(|| panic!("Oak Rd not in `aidmesh hubs`:\n{table}"));
    assert!(oak_row.contains("connected"), "{table}");

    // Oak Rd goes away: a need posted now is never claimed to be there.
    drop(b);
    poll("Oak Rd to be not connected", T, EVERY, || {
        roster_entry(&a, "Oak Rd").filter(|h| h["reachable"] == false)
    });
    let second = ok(
        a.dir(),
        &[
            "need",
            "add",
            "Boat to 14 River Rd",
            "--category",
            "rescue",
            "--urgency",
            "life-threatening",
        ],
    )
    .trim()
    .to_string();
    let out = ok(a.dir(), &["show", &second]);
    assert!(
        out.contains("known at 1 of 2 hubs (Elm St; not yet: Oak Rd, last heard "),
        "{out}"
    );
    assert!(
        list_row(&a, &second).ends_with("1/2"),
        "{}",
        list_row(&a, &second)
    );
    assert!(
        printed_entry(&a, &second).contains("known at 1 of 2 hubs"),
        "{}",
        printed_entry(&a, &second)
    );
    let table = ok(a.dir(), &["hubs"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("Oak Rd") && l.contains("not connected")),
        "{table}"
    );

    // After a minute known only here, `status` says what to do about it; the first
    // need, known at Oak Rd, is not flagged.
    let status = poll(
        "status to flag the need no other hub holds",
        Duration::from_secs(120),
        Duration::from_secs(1),
        || {
            let out = ok(a.dir(), &["status"]);
            out.lines()
                .any(|l| l.starts_with("unreached") && l.contains(&second))
                .then_some(out)
        },
    );
    let line = status
        .lines()
        .find(|l| l.contains(&second))
        .expect("the unreached line");
    assert!(
        line.ends_with("not reached any other hub yet: carry it or link the networks"),
        "{status}"
    );
    assert!(!status.contains(&first), "{status}");
    let st = json(a.dir(), &["status", "--json"]);
    assert_eq!(array(&st["unreached"]).len(), 1, "{st:#}");

    // Sixteen minutes on (the clock moved by an offset, across a restart), Oak Rd has
    // been silent for longer than the 15-minute threshold: flagged, in JSON and table.
    a.restart_with(&["--clock-offset", "16m"]);
    let oak = poll("Oak Rd to be flagged silent", T, EVERY, || {
        roster_entry(&a, "Oak Rd").filter(|h| h["silent"] == true)
    });
    assert_eq!(oak["reachable"], false, "{oak:#}");
    let table = ok(a.dir(), &["hubs"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("Oak Rd") && l.contains("SILENT")),
        "{table}"
    );
    assert!(
        !table
            .lines()
            .any(|l| l.contains("Elm St") && l.contains("SILENT")),
        "this hub is never silent: {table}"
    );
    a.kill();
}
