//! Lists stay bounded at any size (issue 28), with a real node on loopback: a list
//! asked for without `limit` answers at most 500 items, then `total` and
//! `next_cursor`, with or without a search; `aidmesh list` follows the cursor to the
//! end; the printed board shows the first 500 and says how many more there are.

use std::collections::HashSet;
use std::process::Command;

use aidmesh_tests::{binary, Node, Opts};
use serde_json::{json, Value};

/// The most items an answer without `limit` holds.
const UNPAGED_MAX: usize = 500;

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {v}"))
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn a_list_without_a_limit_is_the_first_500_with_a_cursor_and_the_cli_reads_them_all() {
    let n = Node::start("lists", Opts::default());
    let posted = UNPAGED_MAX + 7;
    for i in 0..posted {
        n.post(
            "/api/v1/needs",
            &json!({ "title": format!("Sandbags for {i} Mill Lane"), "category": "shelter" }),
        );
    }
    for path in ["/api/v1/needs", "/api/v1/items", "/api/v1/needs?q=sandbags"] {
        let first = n.get(path);
        assert_eq!(ids(&first).len(), UNPAGED_MAX, "{path}");
        assert_eq!(first["total"], posted, "{path}");
        let cursor = first["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no next_cursor"));
        let sep = if path.contains('?') { '&' } else { '?' };
        let rest = n.get(&format!("{path}{sep}cursor={cursor}&limit=500"));
        assert_eq!(ids(&rest).len(), posted - UNPAGED_MAX, "{path}");
        assert!(
            rest["next_cursor"].is_null(),
            "{path}: {}",
            rest["next_cursor"]
        );
        let all: HashSet<String> = ids(&first).into_iter().chain(ids(&rest)).collect();
        assert_eq!(all.len(), posted, "{path}: pages overlap");
    }
    // A short list is answered as it always was.
    let short = n.get("/api/v1/offers");
    assert_eq!(short, json!({ "items": [] }));

    let out = Command::new(binary())
        .arg("--data-dir")
        .arg(n.dir())
        .args(["list", "needs", "--json"])
        .output()
        .expect("run aidmesh list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(posted));

    let mut r = aidmesh_tests::http()
        .get(format!("{}/print?lang=en", n.api_url()))
        .call()
        .expect("GET /print");
    let page = r.body_mut().read_to_string().expect("print page");
    assert!(
        page.contains("and 7 more, less urgent, not printed"),
        "the printout does not say what it left out"
    );
}
