//! Limits checked before an event is built, through the real node's HTTP API: a field
//! far over its limit (but inside the 64 KiB request limit) is a 4xx naming the field,
//! never a panic, and the node keeps serving.

use aidmesh_tests::{Node, Opts};
use serde_json::json;

#[test]
fn oversized_fields_are_refused_naming_the_field_and_the_node_keeps_serving() {
    let n = Node::start("limits", Opts::default());
    let huge = "x".repeat(20_000);
    let cases = [
        (
            "/api/v1/needs",
            json!({ "title": "water", "category": "water", "details": huge }),
            "details",
        ),
        (
            "/api/v1/offers",
            json!({ "title": huge, "category": "water" }),
            "title",
        ),
        (
            "/api/v1/people",
            json!({ "name": "Ada Lovelace", "place": "14 River Rd", "every": "12h", "note": huge }),
            "note",
        ),
    ];
    for (path, body, field) in cases {
        let (code, v) = n.post_raw(path, &body);
        assert!(
            (400..500).contains(&code),
            "POST {path} with 20,000 characters of {field} answered {code}: {v}"
        );
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(
            detail.starts_with(field) && detail.contains("limit"),
            "POST {path}: the error does not name {field}: {v}"
        );
        assert!(!detail.contains("panic"), "{v}");
    }
    // Nothing was stored, and the node still takes writes (no poisoned state).
    assert_eq!(n.events(), 0);
    n.need("a normal need");
    assert_eq!(n.events(), 1);
    assert!(!n.log().contains("panicked"), "{}", n.log_tail(20));
}

#[test]
fn names_that_display_as_someone_else_are_refused() {
    let n = Node::start("text", Opts::default());
    // "Ada " + RIGHT-TO-LEFT OVERRIDE + "ecalevoL": shows as "Ada Lovelace".
    let (code, v) = n.post_raw(
        "/api/v1/people",
        &json!({ "name": "Ada \u{202E}ecalevoL", "place": "14 River Rd", "every": "12h" }),
    );
    assert_eq!(code, 422, "{v}");
    let detail = v["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with("name") && detail.contains("U+202E"),
        "{v}"
    );
    // A zero-width space inside a need's title.
    let (code, v) = n.post_raw(
        "/api/v1/needs",
        &json!({ "title": "wa\u{200B}ter", "category": "water" }),
    );
    assert_eq!(code, 422, "{v}");
    assert!(
        v["detail"].as_str().unwrap_or("").starts_with("title"),
        "{v}"
    );
    assert_eq!(n.events(), 0);
}
