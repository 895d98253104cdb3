//! Who holds what over the HTTP API of a real node (issue 15): `by` on a status change,
//! `holder_name` / `held_since` / `holder_hub` on the item, each history entry's `by` and
//! `hub`, the 409 that says who holds the item and since when, and a bad `by` refused
//! with nothing stored. See docs/api.md ("Who holds what").

use aidmesh_tests::{Node, Opts};
use serde_json::json;

#[test]
fn status_changes_carry_who_and_a_refused_claim_names_the_holder() {
    let n = Node::start("holder-api", Opts::default());
    n.post("/api/v1/hubs", &json!({ "name": "Elm St hall" }));
    let id = n.need("Sandbags for the bakery");
    let path = format!("/api/v1/items/{id}/status");

    let v = n.post(
        &path,
        &json!({ "status": "claimed", "by": "  Ana ", "note": "van at 3pm" }),
    );
    assert_eq!(v["holder_name"], "Ana", "{v:#}");
    assert_eq!(v["holder_hub"], "Elm St hall", "{v:#}");
    assert_eq!(v["author_hub"], "Elm St hall", "{v:#}");
    let since = v["held_since"].as_u64().expect("held_since");
    assert_eq!(v["history"][0]["by"], "Ana");
    assert_eq!(v["history"][0]["note"], "van at 3pm");
    assert_eq!(v["history"][0]["hub"], "Elm St hall");
    assert_eq!(v["history"][0]["at"].as_u64(), Some(since));

    // A second claim: 409, recorded, with who holds it and since when.
    let (code, v) = n.post_raw(&path, &json!({ "status": "claimed", "by": "Bo" }));
    assert_eq!(code, 409, "{v:#}");
    assert_eq!(v["error"], "not_applied");
    let mins = since / 60_000;
    let hhmm = format!("{:02}:{:02} UTC", (mins / 60) % 24, mins % 60);
    let detail = v["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with(&format!(
            "already claimed by Ana at Elm St hall since {hhmm}"
        )),
        "{detail}"
    );
    assert_eq!(v["history"][1]["by"], "Bo");
    assert_eq!(v["holder_name"], "Ana");

    // A change the rules refuse for another reason says what to do, not where the spec is.
    n.post(&path, &json!({ "status": "fulfilled" }));
    let (code, v) = n.post_raw(&path, &json!({ "status": "claimed" }));
    assert_eq!(code, 409);
    let detail = v["detail"].as_str().unwrap_or("");
    assert!(detail.contains("reopen it first"), "{detail}");
    assert!(!detail.contains("protocol.md"), "{detail}");
    assert!(v["holder_name"].is_null(), "{v:#}");

    // A bad name is refused with 400 and nothing is stored.
    let before = n.events();
    for by in ["Ana\nBo".to_string(), "x".repeat(81)] {
        let (code, v) = n.post_raw(&path, &json!({ "status": "reopened", "by": by }));
        assert_eq!(code, 400, "{v:#}");
        assert!(v["detail"].as_str().unwrap_or("").contains("by"), "{v:#}");
    }
    assert_eq!(n.events(), before);
}
