//! A busy board over the HTTP API of a real node (issue 15): `GET /api/v1/needs|offers|items`
//! take `q` (search), `urgency`, `hub` and `limit`/`cursor` paging; without them the
//! answer is what it always was; a bad value is a 400 naming the parameter. See
//! docs/api.md ("Lists: search, filters and pages").

use std::collections::HashSet;

use aidmesh_tests::{http, Node, Opts};
use serde_json::{json, Value};

/// GET `path`; (status, body).
fn get_raw(node: &Node, path: &str) -> (u16, Value) {
    let mut r = http()
        .get(format!("{}{path}", node.api_url()))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn titles(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {v:#}"))
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn lists_search_filter_by_urgency_and_hub_and_page_with_a_cursor() {
    let n = Node::start("board-filters", Opts::default());
    n.post("/api/v1/hubs", &json!({ "name": "Elm St hall" }));
    let post = |title: &str, category: &str, urgency: &str, place: &str| {
        n.post(
            "/api/v1/needs",
            &json!({ "title": title, "category": category, "urgency": urgency, "place": place }),
        );
    };
    post("Insulin pens", "medical", "life-threatening", "14 River Rd");
    post("Drinking water", "water", "high", "7 Oak Ave");
    post("Blankets", "shelter", "normal", "School hall, River Rd");
    for k in 0..7 {
        post(&format!("Sandbags {k}"), "cleanup", "low", "Mill Lane");
    }
    n.post(
        "/api/v1/offers",
        &json!({ "title": "Boat on River Rd", "category": "rescue" }),
    );

    // No new parameter: the whole list, in the old order and shape.
    let all = n.get("/api/v1/needs");
    assert_eq!(titles(&all).len(), 10);
    assert_eq!(
        titles(&all)[..3],
        ["Insulin pens", "Drinking water", "Blankets"]
    );
    assert!(
        all.get("next_cursor").is_none() && all.get("total").is_none(),
        "{all:#}"
    );

    // Search: every word, any case, in the title, details or place.
    assert_eq!(
        titles(&n.get("/api/v1/needs?q=river%20RD")),
        ["Insulin pens", "Blankets"]
    );
    assert_eq!(
        titles(&n.get("/api/v1/needs?q=river+pens")),
        ["Insulin pens"]
    );
    assert!(titles(&n.get("/api/v1/needs?q=helicopter")).is_empty());
    assert_eq!(titles(&n.get("/api/v1/items?q=river")).len(), 3);
    // Urgency, alone and with category and search.
    assert_eq!(titles(&n.get("/api/v1/needs?urgency=low")).len(), 7);
    assert_eq!(
        titles(&n.get("/api/v1/needs?urgency=high&category=water&q=water")),
        ["Drinking water"]
    );
    // Hub: by its announced name (any case) or the poster's short id.
    assert_eq!(
        titles(&n.get("/api/v1/needs?hub=elm%20st%20HALL")).len(),
        10
    );
    let author = all["items"][0]["author"]
        .as_str()
        .expect("author")
        .to_string();
    assert_eq!(
        titles(&n.get(&format!("/api/v1/needs?hub={author}"))).len(),
        10
    );
    assert!(titles(&n.get("/api/v1/needs?hub=Riverside")).is_empty());

    // Pages: limit, then the cursor, cover the list once, in order, with the total.
    let mut seen = Vec::new();
    let mut path = "/api/v1/needs?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = n.get(&path);
        // The total counts the need posted after the second page.
        let total = if pages < 2 { 10 } else { 11 };
        assert_eq!(page["total"], total, "{page:#}");
        assert_eq!(page["limit"], 3);
        let t = titles(&page);
        assert!(t.len() <= 3, "{page:#}");
        seen.extend(t);
        pages += 1;
        assert!(pages <= 4, "more pages than expected: {page:#}");
        // A need posted between pages (it sorts before the cursor) does not shift or
        // repeat the rest.
        if pages == 2 {
            post("Sandbags 99", "cleanup", "low", "Mill Lane");
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/needs?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 10, "{seen:?}");
    let mut in_order = titles(&n.get("/api/v1/needs"));
    in_order.retain(|t| t != "Sandbags 99");
    assert_eq!(seen, in_order);
    // Filters and pages together.
    let page = n.get("/api/v1/needs?urgency=low&limit=5");
    assert_eq!((page["total"].as_u64(), titles(&page).len()), (Some(8), 5));
    assert!(page["next_cursor"].is_string());
    // A search in pages (the posts are read outside the engine's lock, the page's
    // items folded after): the total counts every match on each page, the pages
    // cover the matches once, in list order, and nothing else.
    let (mut seen, mut path, mut pages) = (
        Vec::new(),
        "/api/v1/needs?q=sandbags&limit=3".to_string(),
        0,
    );
    loop {
        let page = n.get(&path);
        assert_eq!(page["total"], 8, "{page:#}");
        seen.extend(titles(&page));
        pages += 1;
        assert!(pages <= 3, "more pages than expected: {page:#}");
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/needs?q=sandbags&limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut want = titles(&n.get("/api/v1/needs"));
    want.retain(|t| t.starts_with("Sandbags"));
    assert_eq!((pages, seen), (3, want));

    // Bad values: 400, naming the parameter.
    let long = "x".repeat(201);
    for (query, field) in [
        ("urgency=urgent".to_string(), "urgency"),
        ("limit=0".into(), "limit"),
        ("limit=501".into(), "limit"),
        ("limit=%2B5".into(), "limit"),
        ("limit=".into(), "limit"),
        ("cursor=abc".into(), "cursor"),
        ("cursor=9.1.00".into(), "cursor"),
        (format!("q={long}"), "q"),
        ("q=a%0Ab".into(), "q"),
        (format!("hub={long}"), "hub"),
    ] {
        let (code, v) = get_raw(&n, &format!("/api/v1/needs?{query}"));
        assert_eq!(code, 400, "{query}: {v:#}");
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(detail.starts_with(&format!("{field}:")), "{query}: {v:#}");
    }
}

/// A word search of a list longer than one answer reads (`AIDMESH_SEARCH_READS`, 10,000
/// unless set; issue 28: a search read every candidate's post, 13 s at a million
/// items) looks at that many posts from the cursor on, says how far it looked, has no
/// total, and its cursors lead through every match once, in list order.
#[test]
fn a_search_of_a_long_list_reads_a_part_at_a_time_and_its_pages_find_every_match() {
    let n = Node::start(
        "search-reads",
        Opts {
            env: vec![("AIDMESH_SEARCH_READS".into(), "4".into())],
            ..Opts::default()
        },
    );
    // 13 needs, newest first in the list: sandbags at 1, 2, 7, 8, 9 and 13 of them,
    // counted from the newest.
    for k in 0..13 {
        let title = if [0, 4, 5, 6, 11, 12].contains(&k) {
            format!("Sandbags {k}")
        } else {
            format!("Water {k}")
        };
        n.post(
            "/api/v1/needs",
            &json!({ "title": title, "category": "cleanup" }),
        );
    }
    let mut want = titles(&n.get("/api/v1/needs"));
    assert_eq!(want.len(), 13);
    want.retain(|t| t.starts_with("Sandbags"));

    // The first page: the first 4 of 13 looked through; the 2 matches among them.
    let page = n.get("/api/v1/needs?q=sandbags&limit=3");
    assert_eq!(titles(&page), want[..2], "{page:#}");
    assert_eq!(
        page["searched"],
        json!({ "through": 4, "of": 13 }),
        "{page:#}"
    );
    assert!(page["total"].is_null(), "{page:#}");
    assert!(page["next_cursor"].is_string(), "{page:#}");

    // Followed to the end: every match once, in order; no answer looks at more than 4.
    let (mut seen, mut path, mut through, mut answers) = (
        Vec::new(),
        "/api/v1/needs?q=sandbags&limit=3".to_string(),
        0,
        0,
    );
    loop {
        let page = n.get(&path);
        answers += 1;
        assert!(
            answers <= 6,
            "more answers than 13 needs at 4 a time: {page:#}"
        );
        let t = titles(&page);
        assert!(t.len() <= 3, "{page:#}");
        seen.extend(t);
        let now = page["searched"]["through"]
            .as_u64()
            .expect("searched.through");
        assert!(
            now > through && now - through <= 4,
            "{through} → {now}: {page:#}"
        );
        through = now;
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/needs?q=sandbags&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(through, 13);
    assert_eq!(seen, want);

    // A full page before the budget is spent: the next page starts after its last card.
    let page = n.get("/api/v1/needs?q=sandbags&limit=1");
    assert_eq!(titles(&page), want[..1], "{page:#}");
    assert_eq!(page["searched"]["through"], 1, "{page:#}");
    // No page asked for: the first part, with a cursor for the rest.
    let page = n.get("/api/v1/needs?q=sandbags");
    assert_eq!(titles(&page), want[..2], "{page:#}");
    assert!(page["next_cursor"].is_string(), "{page:#}");
    // Without a search nothing changes: totals as before.
    let page = n.get("/api/v1/needs?limit=3");
    assert_eq!(page["total"], 13, "{page:#}");
    assert!(page.get("searched").is_none(), "{page:#}");
    // A short filtered list is searched whole, with its total.
    let page = n.get("/api/v1/needs?q=water&urgency=high");
    assert_eq!(titles(&page).len(), 0, "{page:#}");
}
