//! `GET /api/v1/match` against a real node process: a crowded category answers a
//! bounded page (a handful of offers per need, best first, with the full count), the
//! pages follow a cursor that survives new posts, and bad parameters are a 400 that
//! names the parameter (issue 9: the old answer was every need × every offer).

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

/// What a failure message shows of a page: its counts and cursor, not every item.
fn brief(page: &Value) -> String {
    let n = page["matches"].as_array().map(Vec::len);
    format!(
        "needs_total {}, next_cursor {}, {n:?} matches, error {}",
        page["needs_total"], page["next_cursor"], page["detail"]
    )
}

fn need_ids(page: &Value) -> Vec<String> {
    page["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("matches array in {}", brief(page)))
        .iter()
        .map(|m| m["need"]["id"].as_str().expect("need id").to_string())
        .collect()
}

fn offer_ids(m: &Value) -> Vec<String> {
    m["offers"]
        .as_array()
        .unwrap_or_else(|| panic!("offers array in {}", m["need"]["title"]))
        .iter()
        .map(|o| o["id"].as_str().expect("offer id").to_string())
        .collect()
}

/// Follows `next_cursor` from the first page to the last with `limit` needs a page;
/// returns every need id in order. Bounded: more pages than needs is a failure.
fn all_pages(node: &Node, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = format!("/api/v1/match?limit={limit}");
    for _ in 0..100 {
        let page = node.get(&path);
        assert!(need_ids(&page).len() <= limit, "{}", brief(&page));
        ids.extend(need_ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/match?limit={limit}&cursor={c}"),
            None => return ids,
        }
    }
    panic!("the cursor never reached the last page");
}

#[test]
fn match_answers_a_bounded_page_follows_a_cursor_and_refuses_bad_parameters() {
    let node = Node::start("match", Opts::default());
    // 30 offers of water within a few hundred metres, farther as i grows.
    for i in 0..30 {
        node.post(
            "/api/v1/offers",
            &json!({ "title": format!("water offer {i}"), "category": "water",
                     "lat": 51.5 + f64::from(i) * 0.0005, "lon": -0.12 }),
        );
    }
    // 24 water needs at the same spot, and one need nobody offers anything for.
    for i in 0..24 {
        node.post(
            "/api/v1/needs",
            &json!({ "title": format!("water need {i}"), "category": "water",
                     "lat": 51.5, "lon": -0.12 }),
        );
    }
    node.post(
        "/api/v1/needs",
        &json!({ "title": "Insulin", "category": "medical", "urgency": "life-threatening" }),
    );

    // The default page: 20 needs, 5 offers each (the nearest), with the full counts.
    let page = node.get("/api/v1/match");
    assert_eq!(page["needs_total"], 25, "{}", brief(&page));
    assert_eq!(
        (page["limit"].as_u64(), page["per_need"].as_u64()),
        (Some(20), Some(5))
    );
    let matches = page["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 20);
    assert!(
        page["next_cursor"].is_string(),
        "a second page: {}",
        brief(&page)
    );
    assert_eq!(matches[0]["need"]["title"], "Insulin", "most urgent first");
    assert_eq!(matches[0]["offers_total"], 0);
    let water = &matches[1];
    let titles: Vec<&str> = water["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .map(|o| o["title"].as_str().expect("title"))
        .collect();
    assert_eq!(
        titles,
        [
            "water offer 0",
            "water offer 1",
            "water offer 2",
            "water offer 3",
            "water offer 4"
        ]
    );
    assert_eq!(water["offers_total"], 30);
    // The bounded list is the start of the longer one.
    let more = node.get("/api/v1/match?limit=2&per_need=20");
    let longer = &more["matches"][1];
    assert_eq!(longer["need"]["id"], water["need"]["id"]);
    assert_eq!(offer_ids(longer).len(), 20);
    assert_eq!(offer_ids(longer)[..5], offer_ids(water)[..]);
    let counts_only = node.get("/api/v1/match?limit=2&per_need=0");
    assert!(offer_ids(&counts_only["matches"][1]).is_empty());
    assert_eq!(counts_only["matches"][1]["offers_total"], 30);

    // Pages of 7 list every need once, in the order of one big page.
    let whole = need_ids(&node.get("/api/v1/match?limit=100"));
    assert_eq!(whole.len(), 25);
    assert_eq!(all_pages(&node, 7), whole);

    // A page boundary does not move when a more urgent need arrives in between.
    let first = node.get("/api/v1/match?limit=10");
    let cursor = first["next_cursor"].as_str().expect("cursor").to_string();
    node.post(
        "/api/v1/needs",
        &json!({ "title": "Oxygen", "category": "medical", "urgency": "life-threatening" }),
    );
    let second = node.get(&format!("/api/v1/match?limit=10&cursor={cursor}"));
    assert_eq!(need_ids(&second), whole[10..20], "{}", brief(&second));
    assert_eq!(second["needs_total"], 26);

    // Bad parameters: 400, naming the parameter and what is valid.
    for (query, field, hint) in [
        ("limit=0", "limit", "1 to 100"),
        ("limit=101", "limit", "1 to 100"),
        ("limit=ten", "limit", "1 to 100"),
        ("limit=-1", "limit", "1 to 100"),
        ("per_need=21", "per_need", "0 to 20"),
        ("cursor=zzz", "cursor", "next_cursor"),
        ("offset=5", "offset", "unknown field"),
    ] {
        let (code, body) = get_raw(&node, &format!("/api/v1/match?{query}"));
        assert_eq!(code, 400, "{query}: {body}");
        let detail = body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(field) && detail.contains(hint),
            "{query}: {body}"
        );
    }
    // Nothing else on the node was disturbed.
    let seen: HashSet<String> = all_pages(&node, 100).into_iter().collect();
    assert_eq!(seen.len(), 26);
}

/// Issue 15: an offer with a quantity is not promised to more needs than it covers,
/// and the API and `aidmesh match` show what is left of it for each need.
#[test]
fn an_offer_is_promised_only_as_far_as_its_quantity_goes() {
    let node = Node::start("allocate", Opts::default());
    let rice = node.post(
        "/api/v1/offers",
        &json!({ "title": "Rice from the school kitchen", "category": "food", "qty": 10, "unit": "kg" }),
    )["id"]
        .as_str()
        .expect("offer id")
        .to_string();
    for (title, urgency) in [("first", "high"), ("second", "normal"), ("third", "normal")] {
        node.post(
            "/api/v1/needs",
            &json!({ "title": format!("Rice for the {title} family"), "category": "food",
                     "qty": 4, "unit": "kg", "urgency": urgency }),
        );
    }
    let page = node.get("/api/v1/match");
    let matches = page["matches"].as_array().expect("matches");
    let seen: Vec<(String, Vec<Value>, Value)> = matches
        .iter()
        .map(|m| {
            let left = m["offers"]
                .as_array()
                .expect("offers")
                .iter()
                .map(|o| o["left"].clone())
                .collect();
            (
                m["need"]["title"].as_str().unwrap_or("").to_string(),
                left,
                m["promised"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "Rice for the first family".into(),
                vec![json!(10)],
                json!(rice)
            ),
            (
                "Rice for the second family".into(),
                vec![json!(6)],
                json!(rice)
            ),
            ("Rice for the third family".into(), vec![], Value::Null),
        ],
        "10 kg covers two needs of 4 kg, not three"
    );
    let out = std::process::Command::new(aidmesh_tests::binary())
        .arg("--data-dir")
        .arg(node.dir())
        .arg("match")
        .output()
        .expect("run aidmesh match");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("Rice from the school kitchen, 10 kg (6 left after more urgent needs)"),
        "{out}"
    );
    assert!(out.contains("no offer matches yet"), "{out}");
}
