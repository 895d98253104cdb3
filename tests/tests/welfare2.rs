//! Welfare details and ending alerts across two real nodes (issue 15): a "safe" at
//! one hub closes the need a "needs help" at the other hub posted, on both; a move
//! shows the new place on both; an alert is cancelled only by the hub that raised it,
//! marked all clear by anyone, and every node shows the same alerts; and a "needs
//! help" check-in puts no name, health detail or door on any open page (issue 24).

use std::time::Duration;

use aidmesh_tests::{http, wait_converged, Node, Opts};
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

/// An open page of `n` (no PIN header), as text, expecting 200.
fn open_text(n: &Node, path: &str) -> String {
    let mut r = http()
        .get(format!("{}{path}", n.api_url()))
        .call()
        .unwrap_or_else(|e| panic!("{}: GET {path}: {e}", n.name));
    let code = r.status().as_u16();
    let body = r.body_mut().read_to_string().expect("a text body");
    assert_eq!(code, 200, "{}: GET {path}: {body}", n.name);
    body
}

#[test]
fn a_needs_help_check_in_puts_no_name_health_or_door_on_the_open_board() {
    let a = Node::start(
        "w2-guarded",
        Opts {
            args: vec!["--volunteer-pin".into(), "471147".into()],
            ..Opts::default()
        },
    );
    let b = Node::start(
        "w2-synced",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    let zeb = a.post(
        "/api/v1/people",
        &json!({
            "name": "Zebulon Quartermaine",
            "place": "c/o Mrs Jones, 57 Elm St, Flat 9",
            "every": "12h",
            "risks": ["oxygen"],
        }),
    );
    let zeb = zeb["short_id"].as_str().expect("short id").to_string();
    let v = check(
        &a,
        &zeb,
        "needs-help",
        Some("oxygen running low for Zebulon Quartermaine"),
    );
    let need = v["need_id"].as_str().expect("a linked need").to_string();
    wait_converged(&[&a, &b], 3, T);
    let secrets = [
        "Zebulon",
        "Quartermaine",
        "oxygen",
        "Jones",
        "c/o",
        "57 Elm",
        "Flat 9",
    ];
    for n in [&a, &b] {
        let pages = [
            "/api/v1/needs",
            "/api/v1/board",
            "/api/v1/items",
            "/api/v1/needs?q=oxygen",
            "/api/v1/needs?q=Zebulon",
            "/api/v1/needs?q=Jones",
            "/api/v1/export?format=csv",
            "/api/v1/export?format=hxl",
            "/api/v1/export?format=geojson",
            "/print",
            "/print?lang=es",
        ];
        for path in pages {
            let text = open_text(n, path);
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "{}: {path} shows {s:?} without the PIN:\n{text}",
                    n.name
                );
            }
        }
        // A search for the words of the check-in finds nothing; the board has the need.
        for q in ["oxygen", "Zebulon", "Jones"] {
            let found = n.get(&format!("/api/v1/needs?q={q}"));
            assert_eq!(
                found["items"].as_array().map(Vec::len),
                Some(0),
                "{q}: {found}"
            );
        }
        // The need is there, saying the kind of help at the street, on every node.
        let item = n.get(&format!("/api/v1/items/{need}"));
        assert_eq!(item["welfare_help"], "medical", "{}: {item}", n.name);
        assert_eq!(item["category"], "medical", "{}: {item}", n.name);
        assert_eq!(item["place"]["label"], "Elm St", "{}: {item}", n.name);
        assert!(open_text(n, "/api/v1/needs").contains(&need), "{}", n.name);
        assert!(open_text(n, "/print").contains("Welfare visit: help needed"));
        let es = open_text(n, "/print?lang=es");
        assert!(
            es.contains("Visita de bienestar: necesita ayuda (atención médica"),
            "{}: the Spanish sheet words the kind of help:\n{es}",
            n.name
        );
    }
}
