//! Welfare details and ending alerts across two real nodes (issue 15): a "safe" at
//! one hub closes the need a "needs help" at the other hub posted, on both; a move
//! shows the new place on both; an alert is cancelled only by the hub that raised it,
//! marked all clear by anyone, and every node shows the same alerts.

use std::time::Duration;

use aidmesh_tests::{wait_converged, Node, Opts};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

fn pair() -> (Node, Node) {
    let a = Node::start("w2-hub-a", Opts::default());
    let b = Node::start(
        "w2-hub-b",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    (a, b)
}

fn check(n: &Node, person: &str, outcome: &str, detail: Option<&str>) -> Value {
    n.post(
        &format!("/api/v1/people/{person}/checkins"),
        &json!({ "outcome": outcome, "detail": detail, "by": n.name }),
    )
}

#[test]
fn a_later_check_in_closes_the_help_needed_item_on_every_node() {
    let (a, b) = pair();
    let ada = a.post(
        "/api/v1/people",
        &json!({ "name": "Ada Lovelace", "place": "14 River Rd", "every": "12h" }),
    );
    let ada = ada["id"].as_str().expect("id").to_string();
    wait_converged(&[&a, &b], 1, T);
    for n in [&a, &b] {
        let p = &n.get(&format!("/api/v1/people/{}", &ada[..8]));
        assert_eq!(p["standing"], "never-visited", "{}: {p}", n.name);
    }
    let v = check(&b, &ada[..8], "needs-help", Some("insulin"));
    let need = v["need_id"].as_str().expect("a linked need").to_string();
    wait_converged(&[&a, &b], 3, T);
    // A safe check at the other hub closes it, and a move changes the place.
    check(&a, &ada[..8], "safe", None);
    check(&a, &ada[..8], "moved", Some("school hall"));
    wait_converged(&[&a, &b], 5, T);
    for n in [&a, &b] {
        let item = n.get(&format!("/api/v1/items/{need}"));
        assert_eq!(item["status"], "fulfilled", "{}: {item}", n.name);
        let p = n.get(&format!("/api/v1/people/{}", &ada[..8]));
        assert_eq!(p["place"]["label"], "school hall", "{}: {p}", n.name);
        assert_eq!(p["standing"], "ok", "{}: {p}", n.name);
    }
    // Where an item is known (issue 11) is each hub's own knowledge; the fold is not.
    let folded = |n: &Node| {
        let mut item = n.get(&format!("/api/v1/items/{need}"));
        for k in ["known", "known_at", "not_yet"] {
            item.as_object_mut().expect("an item object").remove(k);
        }
        item
    };
    assert_eq!(
        folded(&a),
        folded(&b),
        "the two hubs fold the need differently"
    );
}

#[test]
fn alerts_end_the_same_way_on_every_node() {
    let (a, b) = pair();
    let raised = a.post("/api/v1/alerts", &json!({ "headline": "Water rising" }));
    let id = raised["id"].as_str().expect("id").to_string();
    wait_converged(&[&a, &b], 1, T);
    let path = format!("/api/v1/alerts/{}/status", &id[..8]);

    // Only the hub that raised it may cancel it.
    let (code, err) = b.post_raw(&path, &json!({ "status": "cancelled" }));
    assert_eq!(code, 422, "{err}");
    assert!(
        err["detail"]
            .as_str()
            .is_some_and(|d| d.contains("only allowed to its author")),
        "{err}"
    );
    let (code, err) = b.post_raw(&path, &json!({ "status": "claimed" }));
    assert_eq!(code, 400, "{err}");
    assert!(
        err["detail"]
            .as_str()
            .is_some_and(|d| d.contains("use cancelled, all-clear or active")),
        "{err}"
    );

    // Anyone may mark it all clear; every node shows it so.
    let v = b.post(
        &path,
        &json!({ "status": "all-clear", "note": "river down" }),
    );
    assert_eq!(v["state"], "all-clear", "{v}");
    wait_converged(&[&a, &b], 2, T);
    for n in [&a, &b] {
        let list = n.get("/api/v1/alerts");
        assert_eq!(
            list["alerts"][0]["state"], "all-clear",
            "{}: {list}",
            n.name
        );
        assert_eq!(list["alerts"][0]["ended"]["note"], "river down");
    }
    // Its author makes it active again, then cancels it: gone everywhere.
    a.post(&path, &json!({ "status": "active" }));
    let v = a.post(&path, &json!({ "status": "cancelled" }));
    assert_eq!(v["state"], "cancelled", "{v}");
    wait_converged(&[&a, &b], 4, T);
    for n in [&a, &b] {
        let list = n.get("/api/v1/alerts");
        assert_eq!(list["alerts"], json!([]), "{}: {list}", n.name);
    }
    let (code, err) = a.post_raw(
        "/api/v1/alerts/abcdef12/status",
        &json!({ "status": "cancelled" }),
    );
    assert_eq!(code, 404, "{err}");
}
