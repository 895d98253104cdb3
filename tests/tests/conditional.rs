//! Conditional requests (issue 17): the lists, the board and the page's files carry an
//! `ETag`; asked again with `If-None-Match`, a real node answers 304 with no body until
//! something is stored, and then a full answer with a new tag.

use aidmesh_tests::{Node, Opts};

/// GET `path` with an optional `If-None-Match`: (status, ETag, body length).
fn get(node: &Node, path: &str, tag: Option<&str>) -> (u16, Option<String>, usize) {
    let mut req = aidmesh_tests::http().get(format!("{}{path}", node.api_url()));
    if let Some(t) = tag {
        req = req.header("If-None-Match", t);
    }
    let mut r = req.call().expect("an answer");
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = r.body_mut().read_to_vec().unwrap_or_default();
    (r.status().as_u16(), etag, body.len())
}

#[test]
fn lists_board_and_page_files_answer_304_until_something_changes() {
    let node = Node::start("hub", Opts::default());
    node.need("Sandbags for 3 Elm St");
    let paths = [
        "/api/v1/needs?limit=5",
        "/api/v1/offers",
        "/api/v1/hubs",
        "/api/v1/alerts",
        "/api/v1/board?limit=5",
        "/api/v1/board?limit=5&category=water",
    ];
    let mut tags = Vec::new();
    for p in paths {
        let (status, tag, len) = get(&node, p, None);
        assert_eq!(status, 200, "{p}");
        assert!(len > 0, "{p}");
        let tag = tag.unwrap_or_else(|| panic!("{p} has an ETag"));
        let (again, same, empty) = get(&node, p, Some(&tag));
        assert_eq!((again, empty), (304, 0), "{p} unchanged: 304 with no body");
        assert_eq!(same.as_deref(), Some(tag.as_str()), "{p}");
        let (other, _, _) = get(&node, p, Some("\"not-this-one\""));
        assert_eq!(other, 200, "{p}: another tag is a full answer");
        tags.push(tag);
    }
    assert_ne!(tags[4], tags[5], "the query is part of the tag");
    node.need("Drinking water for 4 people");
    let mut newer = Vec::new();
    for (p, tag) in paths.iter().zip(&tags) {
        let (status, new, _) = get(&node, p, Some(tag));
        assert_eq!(status, 200, "{p} after a new need: a full answer");
        assert_ne!(new.as_deref(), Some(tag.as_str()), "{p}: a new tag");
        newer.push(new.unwrap_or_default());
    }
    // The tag counts changes since the start: a restarted node (whose count starts
    // again) must not take a tag of before for its own.
    let mut node = node;
    node.kill();
    node.restart();
    for (p, tag) in paths.iter().zip(&newer) {
        let (status, _, _) = get(&node, p, Some(tag));
        assert_eq!(status, 200, "{p} after a restart: a full answer");
    }
    for f in ["/", "/app.js", "/style.css"] {
        let (status, tag, _) = get(&node, f, None);
        assert_eq!(status, 200);
        let (again, _, empty) = get(&node, f, tag.as_deref());
        assert_eq!(
            (again, empty),
            (304, 0),
            "{f}: the page's files are not sent again"
        );
    }
}
