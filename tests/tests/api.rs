//! The HTTP API of a real node process, endpoint by endpoint: what each answers on good
//! input (field by field), and that every kind of bad input gets a 4xx with a JSON
//! `{"error", "detail"}` body and stores nothing. `docs/api.md` documents what is
//! checked here.
//!
//! One test per area, each on its own fresh node (plus a second one where the peers
//! endpoints need a peer to show), so that one failure does not hide the rest; each
//! node serves only its own test, so "nothing was stored" can compare the event count
//! before and after.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::{json, Value};

/// Bound on every wait.
const T: Duration = Duration::from_secs(15);

/// The request body limit of the API (64 KiB).
const MAX_BODY: usize = 64 * 1024;

/// The eleven categories, in the order the API lists them.
const CATEGORIES: [&str; 11] = [
    "water",
    "food",
    "medical",
    "shelter",
    "power",
    "transport",
    "rescue",
    "care",
    "welfare",
    "cleanup",
    "other",
];

/// An answer: status code, content type and body text.
struct Resp {
    code: u16,
    ctype: String,
    text: String,
}

impl Resp {
    fn json(&self, what: &str) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{what}: answered {} ({}) with a body that is not JSON ({e}): {:?}",
                self.code, self.ctype, self.text
            )
        })
    }
}

/// A client for one node.
struct Api<'a> {
    node: &'a Node,
    agent: ureq::Agent,
}

impl<'a> Api<'a> {
    fn new(node: &'a Node) -> Self {
        Api {
            node,
            agent: aidmesh_tests::http(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.api_url())
    }

    /// Any request; `ctype` and `body` only for methods with a body.
    fn send(&self, method: &str, path: &str, ctype: Option<&str>, body: Option<&[u8]>) -> Resp {
        let url = self.url(path);
        let res = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            "POST" | "PUT" | "PATCH" => {
                let mut rb = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                if let Some(ct) = ctype {
                    rb = rb.header("Content-Type", ct);
                }
                match body {
                    Some(b) => rb.send(b),
                    None => rb.send_empty(),
                }
            }
            other => panic!("method {other} not supported by this helper"),
        };
        let mut r = res.unwrap_or_else(|e| {
            panic!(
                "{method} {path}: no answer: {e}\nlog:\n{}",
                self.node.log_tail(20)
            )
        });
        let code = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        Resp { code, ctype, text }
    }

    /// GET expecting 200 and JSON.
    fn get(&self, path: &str) -> Value {
        let r = self.send("GET", path, None, None);
        assert_eq!(r.code, 200, "GET {path}: {}", r.text);
        assert!(
            r.ctype.starts_with("application/json"),
            "GET {path}: content type {}",
            r.ctype
        );
        r.json(path)
    }

    /// POST a JSON value; returns the status and the JSON answer.
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("serialise");
        let r = self.send("POST", path, Some("application/json"), Some(&bytes));
        (r.code, r.json(&format!("POST {path} {body}")))
    }

    /// POST expecting exactly `code`.
    fn post_expect(&self, path: &str, body: &Value, code: u16) -> Value {
        let (got, v) = self.post(path, body);
        assert_eq!(got, code, "POST {path} {body} answered {got}: {v}");
        v
    }

    /// (events, digest) of the node.
    fn snapshot(&self) -> (u64, String) {
        let s = self.get("/api/v1/status");
        (
            s["events"].as_u64().expect("events is a number"),
            s["digest"]
                .as_str()
                .expect("digest is a string")
                .to_string(),
        )
    }

    fn events(&self) -> u64 {
        self.snapshot().0
    }

    /// Sends a bad request and checks the answer: exactly `want` (a 4xx), a JSON object
    /// with a non-empty `error` equal to `error` and a non-empty `detail` containing every
    /// string of `detail_has`, and no event stored. Returns the detail.
    #[allow(clippy::too_many_arguments)]
    fn bad_raw(
        &self,
        case: &str,
        method: &str,
        path: &str,
        ctype: Option<&str>,
        body: Option<&[u8]>,
        want: u16,
        error: &str,
        detail_has: &[&str],
    ) -> String {
        let before = self.snapshot();
        let r = self.send(method, path, ctype, body);
        let what = format!("{case} ({method} {path})");
        assert!(
            (400..500).contains(&r.code),
            "{what}: answered {} (must be 4xx): {}",
            r.code,
            r.text
        );
        assert!(
            r.ctype.starts_with("application/json"),
            "{what}: content type {:?} (must be JSON); body {:?}",
            r.ctype,
            r.text
        );
        let v = r.json(&what);
        let err = v["error"].as_str().unwrap_or("");
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(!err.is_empty(), "{what}: no \"error\" in {v}");
        assert!(!detail.is_empty(), "{what}: no \"detail\" in {v}");
        assert_eq!(r.code, want, "{what}: wrong status; body {v}");
        assert_eq!(err, error, "{what}: wrong error code; body {v}");
        for s in detail_has {
            assert!(
                detail.contains(s),
                "{what}: detail {detail:?} should mention {s:?}"
            );
        }
        let after = self.snapshot();
        assert_eq!(
            before, after,
            "{what}: a refused request changed what the node holds"
        );
        detail.to_string()
    }

    /// A bad JSON POST (sent as `application/json`).
    fn bad(
        &self,
        case: &str,
        path: &str,
        body: &Value,
        want: u16,
        error: &str,
        detail_has: &[&str],
    ) -> String {
        let bytes = serde_json::to_vec(body).expect("serialise");
        self.bad_raw(
            case,
            "POST",
            path,
            Some("application/json"),
            Some(&bytes),
            want,
            error,
            detail_has,
        )
    }

    /// A bad GET.
    fn bad_get(&self, case: &str, path: &str, want: u16, error: &str, detail_has: &[&str]) {
        self.bad_raw(case, "GET", path, None, None, want, error, detail_has);
    }

    /// Bodies every JSON-writing endpoint must refuse: broken JSON, the wrong content
    /// type, JSON of the wrong shape, unknown and duplicate fields, and a body over
    /// 64 KiB. `valid` is a body the endpoint accepts; `pad` a string field of it.
    fn refuses_garbage(&self, path: &str, valid: &Value, pad: &str) {
        let good = serde_json::to_string(valid).expect("serialise");
        let json_ct = Some("application/json");
        let raw = |case: &str, ct: Option<&str>, body: &[u8], want: u16, has: &[&str]| {
            self.bad_raw(
                &format!("{path}: {case}"),
                "POST",
                path,
                ct,
                Some(body),
                want,
                "bad_json",
                has,
            );
        };
        raw(
            "truncated JSON",
            json_ct,
            &good.as_bytes()[..good.len() - 1],
            400,
            &["JSON"],
        );
        raw("not JSON at all", json_ct, b"title=water", 400, &["JSON"]);
        raw("empty body", json_ct, b"", 400, &[]);
        raw(
            "non-UTF-8 bytes",
            json_ct,
            b"{\"a\":\"\xff\xfe\"}",
            400,
            &[],
        );
        raw(
            "trailing garbage",
            json_ct,
            format!("{good} x").as_bytes(),
            400,
            &["trailing"],
        );
        raw("a JSON array", json_ct, b"[]", 400, &[]);
        raw("JSON null", json_ct, b"null", 400, &[]);
        raw("a JSON string", json_ct, b"\"water\"", 400, &[]);
        raw(
            "deeply nested JSON",
            json_ct,
            "[".repeat(50_000).as_bytes(),
            400,
            &[],
        );
        raw(
            "text/plain",
            Some("text/plain"),
            good.as_bytes(),
            415,
            &["application/json"],
        );
        raw(
            "form content type",
            Some("application/x-www-form-urlencoded"),
            good.as_bytes(),
            415,
            &["application/json"],
        );
        raw(
            "no content type",
            None,
            good.as_bytes(),
            415,
            &["application/json"],
        );
        let mut unknown = valid.clone();
        unknown["colour"] = json!("red");
        raw(
            "unknown field",
            json_ct,
            unknown.to_string().as_bytes(),
            400,
            &["unknown field", "colour"],
        );
        let inner = &good[1..good.len() - 1];
        let dup = format!("{{{inner},{inner}}}");
        raw(
            "duplicate field",
            json_ct,
            dup.as_bytes(),
            400,
            &["duplicate"],
        );
        let mut big = valid.clone();
        big[pad] = json!("x".repeat(MAX_BODY + 1024));
        raw(
            "body over 64 KiB",
            json_ct,
            big.to_string().as_bytes(),
            413,
            &["limit"],
        );
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase())
}

/// The shortest prefix (at least 6 characters) of `id` that no other id shares.
fn unique_prefix(id: &str, all: &[String]) -> String {
    (6..=id.len())
        .map(|n| &id[..n])
        .find(|p| all.iter().filter(|o| o.starts_with(p)).count() == 1)
        .expect("a full id is unique")
        .to_string()
}

/// Every field of an item as documented, with its type.
fn check_item_shape(v: &Value) {
    let id = v["id"].as_str().unwrap_or_else(|| panic!("id in {v}"));
    assert!(is_hex(id, 64), "id {id}");
    assert_eq!(v["short_id"].as_str(), Some(&id[..10]), "{v}");
    assert!(
        matches!(v["kind"].as_str(), Some("need" | "offer")),
        "kind in {v}"
    );
    for f in [
        "title", "category", "urgency", "status", "author", "unit", "contact", "details",
    ] {
        assert!(v[f].is_string(), "{f} must be a string in {v}");
    }
    assert!(is_hex(v["author"].as_str().unwrap_or(""), 8), "author {v}");
    assert!(v["created_at"].is_u64(), "created_at in {v}");
    assert!(v["place"]["label"].is_string(), "place.label in {v}");
    for f in ["lat", "lon"] {
        assert!(
            v["place"][f].is_null() || v["place"][f].is_f64(),
            "place.{f} in {v}"
        );
    }
    assert!(v["qty"].is_null() || v["qty"].is_u64(), "qty in {v}");
    assert!(
        v["expires_at"].is_null() || v["expires_at"].is_u64(),
        "expires_at in {v}"
    );
    assert!(
        v["holder"].is_null() || v["holder"].is_string(),
        "holder in {v}"
    );
    let history = v["history"]
        .as_array()
        .unwrap_or_else(|| panic!("history in {v}"));
    for h in history {
        assert!(is_hex(h["id"].as_str().unwrap_or(""), 64), "history {h}");
        assert!(h["status"].is_string() && h["author"].is_string(), "{h}");
        assert!(h["at"].is_u64() && h["note"].is_string(), "{h}");
        assert!(h["applied"].is_boolean(), "{h}");
    }
}

fn ids_of(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} array in {list}"))
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

/// A fresh node for one test.
fn node(name: &str) -> Node {
    Node::start(name, Opts::default())
}

#[test]
fn status_and_categories() {
    let node = node("api-status");
    let api = Api::new(&node);
    let s = api.get("/api/v1/status");
    assert!(
        s["peer_id"].as_str().is_some_and(|p| p.starts_with("12D3")),
        "peer_id in {s}"
    );
    assert_eq!(s["community"], "test");
    assert!(is_hex(s["author"].as_str().unwrap_or(""), 64), "{s}");
    assert_eq!(s["events"], 0, "a fresh node holds nothing: {s}");
    assert!(is_hex(s["digest"].as_str().unwrap_or(""), 64), "{s}");
    assert_eq!(s["peers"], 0, "{s}");
    assert_eq!(s["peer_list"], json!([]), "{s}");
    let clock = &s["clock"];
    assert_eq!(
        clock["status"], "unknown",
        "no peer has told us the time: {s}"
    );
    assert!(
        clock["offset_ms"].is_null() && clock["warning"].is_null(),
        "{s}"
    );
    let listen = s["listen"].as_array().expect("listen array");
    assert!(
        listen.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with("/ip4/127.0.0.1/tcp/"))),
        "listen in {s}"
    );
    assert!(s["now_ms"].as_u64().is_some_and(|n| n > 1_700_000_000_000));
    assert!(s["sync_bytes_in"].is_u64() && s["sync_bytes_out"].is_u64());

    let c = api.get("/api/v1/categories");
    let cats = c["categories"].as_array().expect("categories array");
    let names: Vec<&str> = cats.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, CATEGORIES);
    for cat in cats {
        assert!(
            cat["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{cat}"
        );
        assert!(cat["cluster"].is_string() || cat["cluster"].is_null());
    }
    assert_eq!(cats[0]["cluster"], "WASH");
    assert_eq!(cats[6]["cluster"], Value::Null, "rescue has no cluster");
}

#[test]
fn peers() {
    let node = node("api-peers");
    let api = &Api::new(&node);
    let p = "/api/v1/peers";
    assert_eq!(api.get(p), json!({ "peers": [] }));
    let other = Node::start("api-peer", Opts::default());
    let other_id = other.status()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let addr = other.addr();
    let before = api.events();
    let v = api.post_expect(p, &json!({ "addr": format!("  {addr} ") }), 202);
    assert_eq!(v, json!({ "dialing": addr }), "the address is trimmed");
    let listed = wait_for("the peer to be listed", T, || {
        let l = api.get(p);
        (l["peers"].as_array()?.len() == 1).then_some(l)
    });
    let peer = &listed["peers"][0];
    assert_eq!(peer["peer_id"], other_id.as_str());
    assert!(peer["addr"].is_string(), "{peer}");
    assert!(
        peer["last_sync_ms"].is_null() || peer["last_sync_ms"].is_u64(),
        "{peer}"
    );
    let s = api.get("/api/v1/status");
    assert_eq!(s["peers"], 1, "{s}");
    assert_eq!(s["peer_list"][0]["peer_id"], other_id.as_str());
    assert!(
        matches!(
            s["clock"]["status"].as_str(),
            Some("unknown" | "ok" | "behind" | "ahead")
        ),
        "{s}"
    );
    assert_eq!(api.events(), before, "connecting stores nothing");

    // A post by another author (the other node): anyone may claim it, only its author
    // may withdraw it or revive it once withdrawn.
    let theirs = other.post(
        "/api/v1/needs",
        &json!({ "title": "Someone else's need", "category": "food" }),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let item_path = format!("/api/v1/items/{theirs}");
    wait_for("the other node's need to arrive", T, || {
        (api.send("GET", &item_path, None, None).code == 200).then_some(())
    });
    let status_path = format!("{item_path}/status");
    api.bad(
        "withdrawing someone else's post",
        &status_path,
        &json!({ "status": "withdrawn" }),
        422,
        "rejected",
        &["withdrawal", "only allowed to its author"],
    );
    let mine = api.get("/api/v1/status")["author"]
        .as_str()
        .expect("author")
        .to_string();
    let v = api.post_expect(&status_path, &json!({ "status": "claimed" }), 200);
    assert_eq!(v["status"], "claimed");
    assert_ne!(
        v["author"], v["holder"],
        "claimed by this node, not the poster"
    );
    assert!(
        mine.starts_with(v["holder"].as_str().expect("holder")),
        "{v}"
    );
    other.post(&status_path, &json!({ "status": "withdrawn" }));
    wait_for("the withdrawal to arrive", T, || {
        (api.get(&item_path)["status"] == "withdrawn").then_some(())
    });
    let v = api.post_expect(&status_path, &json!({ "status": "reopened" }), 409);
    assert_eq!(v["error"], "not_applied", "only the author may revive it");
    assert_eq!(v["status"], "withdrawn");

    // Dialling an address where nobody listens is accepted (the node keeps trying).
    api.post_expect(p, &json!({ "addr": "/ip4/127.0.0.1/tcp/9" }), 202);
    drop(other);

    api.refuses_garbage(p, &json!({ "addr": "/ip4/127.0.0.1/tcp/9" }), "addr");
    api.bad(
        "not a multiaddr",
        p,
        &json!({ "addr": "192.168.1.20:4610" }),
        400,
        "invalid_input",
        &["addr", "multiaddr", "/ip4/"],
    );
    api.bad(
        "unknown protocol",
        p,
        &json!({ "addr": "/ipx/1/tcp/1" }),
        400,
        "invalid_input",
        &["multiaddr"],
    );
    api.bad(
        "addr missing",
        p,
        &json!({}),
        400,
        "bad_json",
        &["missing field", "addr"],
    );
    api.bad(
        "addr as a number",
        p,
        &json!({ "addr": 4610 }),
        400,
        "bad_json",
        &["addr", "invalid type"],
    );
    api.bad(
        "misspelt field",
        p,
        &json!({ "address": "/ip4/127.0.0.1/tcp/9" }),
        400,
        "bad_json",
        &["unknown field", "address"],
    );
}

/// A full need, a minimal need, offers; returns their ids by name.
struct Ids {
    full: String,
    minimal: String,
    offer: String,
    urgent: String,
    all: Vec<String>,
}

/// Posts the board every board test starts from (checking each answer); returns the
/// ids.
fn post_board(api: &Api) -> Ids {
    let status = api.get("/api/v1/status");
    let author = status["author"].as_str().expect("author").to_string();
    let n = "/api/v1/needs";
    let o = "/api/v1/offers";

    // Every field.
    let full = api.post_expect(
        n,
        &json!({
            "title": "  Drinking water for 12 Mill Lane  ",
            "category": "water",
            "urgency": "high",
            "qty": 20,
            "unit": "litres",
            "place": "12 Mill Lane",
            "lat": 51.5007,
            "lon": -0.1246,
            "contact": "knock, flat 3",
            "details": "Two adults, one infant.\n\tBottles, not a tank.",
            "expires": "2d"
        }),
        201,
    );
    check_item_shape(&full);
    assert_eq!(full["kind"], "need");
    assert_eq!(
        full["title"], "Drinking water for 12 Mill Lane",
        "title trimmed"
    );
    assert_eq!(full["category"], "water");
    assert_eq!(full["urgency"], "high");
    assert_eq!(full["status"], "open");
    assert!(
        author.starts_with(full["author"].as_str().expect("author")),
        "the item's author is this node: {full}"
    );
    assert_eq!(
        full["place"],
        json!({ "label": "12 Mill Lane", "lat": 51.5007, "lon": -0.1246 })
    );
    assert_eq!(full["qty"], 20);
    assert_eq!(full["unit"], "litres");
    assert_eq!(full["contact"], "knock, flat 3");
    assert_eq!(
        full["details"],
        "Two adults, one infant.\n\tBottles, not a tank."
    );
    let created = full["created_at"].as_u64().expect("created_at");
    let expires = full["expires_at"].as_u64().expect("expires_at");
    let two_days = 2 * 86_400_000;
    assert!(
        expires.abs_diff(created + two_days) < 60_000,
        "expires_at {expires} should be created_at {created} + 2 days"
    );
    assert_eq!(full["holder"], Value::Null);
    assert_eq!(full["history"], json!([]));

    // Only the required fields: documented defaults.
    let minimal = api.post_expect(
        n,
        &json!({ "title": "Insulin", "category": "medical" }),
        201,
    );
    check_item_shape(&minimal);
    assert_eq!(minimal["urgency"], "normal");
    assert_eq!(
        minimal["place"],
        json!({ "label": "", "lat": null, "lon": null })
    );
    for (f, empty) in [
        ("qty", Value::Null),
        ("unit", json!("")),
        ("contact", json!("")),
        ("details", json!("")),
        ("expires_at", Value::Null),
    ] {
        assert_eq!(minimal[f], empty, "default of {f}");
    }

    // Synonyms, case, the "critical" alias and limits counted in characters.
    let title: String = "é".repeat(120);
    let urgent = api.post_expect(
        n,
        &json!({ "title": title, "category": "Medication", "urgency": "CRITICAL",
                 "lat": -90.0, "lon": 180.0, "details": "ü".repeat(2000),
                 "unit": "u".repeat(24), "contact": "c".repeat(120), "place": "p".repeat(120),
                 "qty": 1_000_000, "expires": "1w" }),
        201,
    );
    assert_eq!(urgent["category"], "medical");
    assert_eq!(urgent["urgency"], "life-threatening");
    assert_eq!(urgent["title"], title.as_str());
    assert_eq!(urgent["qty"], 1_000_000);

    let offer = api.post_expect(
        o,
        &json!({ "title": "Bottled water, 30 litres", "category": "wash", "qty": 30,
                 "unit": "Litres", "place": "Elm St hub", "lat": 51.501, "lon": -0.125 }),
        201,
    );
    check_item_shape(&offer);
    assert_eq!(offer["kind"], "offer");
    assert_eq!(offer["category"], "water");
    assert_eq!(offer["status"], "open");

    let all = api
        .get("/api/v1/items?status=all")
        .get("items")
        .and_then(Value::as_array)
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    let id = |v: &Value| v["id"].as_str().expect("id").to_string();
    Ids {
        full: id(&full),
        minimal: id(&minimal),
        offer: id(&offer),
        urgent: id(&urgent),
        all,
    }
}

#[test]
fn needs_and_offers_good_input() {
    let node = node("api-post");
    post_board(&Api::new(&node));
}

#[test]
fn needs_and_offers_bad_input() {
    let node = node("api-post-bad");
    let api = &Api::new(&node);
    let n = "/api/v1/needs";
    let o = "/api/v1/offers";
    // Bad input, for needs and (same code path) offers.
    for path in [n, o] {
        api.refuses_garbage(
            path,
            &json!({ "title": "x", "category": "water" }),
            "details",
        );
        api.bad(
            "missing title",
            path,
            &json!({ "category": "water" }),
            400,
            "bad_json",
            &["missing field", "title"],
        );
        api.bad(
            "missing category",
            path,
            &json!({ "title": "x" }),
            400,
            "bad_json",
            &["missing field", "category"],
        );
        let d = api.bad(
            "unknown category",
            path,
            &json!({ "title": "x", "category": "blankets" }),
            400,
            "invalid_input",
            &["category", "'blankets'"],
        );
        for c in CATEGORIES {
            assert!(d.contains(c), "{d:?} should list {c}");
        }
        api.bad(
            "qty as a string",
            path,
            &json!({ "title": "x", "category": "water", "qty": "3" }),
            400,
            "bad_json",
            &["qty", "invalid type"],
        );
    }
    let bad = |case: &str, body: Value, want: u16, error: &str, has: &[&str]| {
        api.bad(case, n, &body, want, error, has);
    };
    let with = |extra: Value| {
        let mut b = json!({ "title": "x", "category": "water" });
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    // Wrong JSON types.
    for (field, value) in [
        ("title", json!(7)),
        ("category", json!(["water"])),
        ("urgency", json!(3)),
        ("qty", json!(-1)),
        ("qty", json!(1.5)),
        ("qty", json!(4_294_967_296u64)),
        ("lat", json!("51.5")),
        ("lon", json!(true)),
        ("unit", json!({})),
        ("place", json!({ "label": "x" })),
        ("contact", json!(1)),
        ("details", json!(["a"])),
        ("expires", json!(3600)),
    ] {
        bad(
            &format!("{field} = {value}"),
            with(json!({ field: value })),
            400,
            "bad_json",
            &[field],
        );
    }
    // Values the input rules refuse (400) and the protocol limits refuse (422).
    let d = api.bad(
        "unknown urgency",
        n,
        &with(json!({ "urgency": "meh" })),
        400,
        "invalid_input",
        &["urgency", "'meh'"],
    );
    for u in ["low", "normal", "high", "life-threatening"] {
        assert!(d.contains(u), "{d:?} should list {u}");
    }
    bad(
        "empty category",
        with(json!({ "category": "" })),
        400,
        "invalid_input",
        &["category"],
    );
    bad(
        "lat without lon",
        with(json!({ "lat": 51.5 })),
        400,
        "invalid_input",
        &["lat"],
    );
    bad(
        "lon without lat",
        with(json!({ "lon": -0.12 })),
        400,
        "invalid_input",
        &["lon"],
    );
    for (lat, lon) in [(90.000_001, 0.0), (-91.0, 0.0), (0.0, 180.5), (0.0, -181.0)] {
        bad(
            &format!("position ({lat}, {lon})"),
            with(json!({ "lat": lat, "lon": lon })),
            400,
            "invalid_input",
            &["lat/lon", "±90", "±180"],
        );
    }
    for (e, has) in [
        ("soon", "not a duration"),
        ("", "not a duration"),
        ("-5m", "not a duration"),
        ("5y", "unknown unit"),
        ("2 fortnights", "unknown unit"),
        ("0s", "longer than zero"),
        ("0", "longer than zero"),
        ("400d", "longer than a year"),
        ("99999999999999999999d", "expires"),
    ] {
        bad(
            &format!("expires {e:?}"),
            with(json!({ "expires": e })),
            400,
            "invalid_input",
            &["expires", has],
        );
    }
    let long = |n: usize| "x".repeat(n);
    for (case, extra, has) in [
        (
            "title of 121 characters",
            json!({ "title": long(121) }),
            vec!["title", "121", "120"],
        ),
        (
            "title of 121 two-byte characters",
            json!({ "title": "é".repeat(121) }),
            vec!["title", "120"],
        ),
        (
            "empty title",
            json!({ "title": "" }),
            vec!["title", "empty"],
        ),
        (
            "blank title",
            json!({ "title": " \t " }),
            vec!["title", "empty"],
        ),
        (
            "escape sequence in the title",
            json!({ "title": "a\u{1b}[2Jb" }),
            vec!["title", "U+001B"],
        ),
        (
            "newline in the title",
            json!({ "title": "a\nb" }),
            vec!["title", "U+000A"],
        ),
        (
            "NUL in the title",
            json!({ "title": "a\u{0}b" }),
            vec!["title", "U+0000"],
        ),
        (
            "details of 2001 characters",
            json!({ "details": long(2001) }),
            vec!["details", "2000"],
        ),
        (
            "bell in the details",
            json!({ "details": "ring\u{7}" }),
            vec!["details", "U+0007"],
        ),
        (
            "unit of 25 characters",
            json!({ "unit": long(25) }),
            vec!["unit", "24"],
        ),
        (
            "contact of 121 characters",
            json!({ "contact": long(121) }),
            vec!["contact", "120"],
        ),
        (
            "tab in the contact",
            json!({ "contact": "a\tb" }),
            vec!["contact", "U+0009"],
        ),
        (
            "place of 121 characters",
            json!({ "place": long(121) }),
            vec!["place", "120"],
        ),
        ("qty 0", json!({ "qty": 0 }), vec!["qty", "1000000"]),
        (
            "qty over a million",
            json!({ "qty": 1_000_001 }),
            vec!["qty", "1000000"],
        ),
    ] {
        bad(case, with(extra), 422, "invalid_input", &has);
    }
}

#[test]
fn lists() {
    let node = node("api-lists");
    let api = &Api::new(&node);
    let ids = &post_board(api);
    let needs = api.get("/api/v1/needs");
    let need_ids = ids_of(&needs, "items");
    for i in needs["items"].as_array().expect("items") {
        check_item_shape(i);
        assert_eq!(i["kind"], "need", "{i}");
    }
    for id in [&ids.full, &ids.minimal, &ids.urgent] {
        assert!(need_ids.contains(id), "need {id} in {need_ids:?}");
    }
    assert!(!need_ids.contains(&ids.offer));
    assert_eq!(need_ids[0], ids.urgent, "most urgent first: {need_ids:?}");
    let offers = ids_of(&api.get("/api/v1/offers"), "items");
    assert_eq!(offers, vec![ids.offer.clone()]);
    let items = ids_of(&api.get("/api/v1/items"), "items");
    assert!(items.contains(&ids.offer) && items.contains(&ids.full));
    let water = ids_of(&api.get("/api/v1/items?category=WASH"), "items");
    assert_eq!(water.len(), 2, "the water need and offer: {water:?}");
    assert!(water.contains(&ids.full) && water.contains(&ids.offer));
    let medical = ids_of(
        &api.get("/api/v1/needs?category=medical&status=ALL"),
        "items",
    );
    assert_eq!(medical.len(), 2, "{medical:?}");
    for s in [
        "open",
        "claimed",
        "in-progress",
        "fulfilled",
        "withdrawn",
        "expired",
        "active",
        "all",
    ] {
        api.get(&format!("/api/v1/items?status={s}"));
    }
    assert!(ids_of(&api.get("/api/v1/items?status=fulfilled"), "items").is_empty());

    for path in ["/api/v1/needs", "/api/v1/offers", "/api/v1/items"] {
        let d = api.bad_raw(
            "unknown status filter",
            "GET",
            &format!("{path}?status=reopened"),
            None,
            None,
            400,
            "invalid_input",
            &["status", "'reopened'"],
        );
        for s in ["open", "in-progress", "expired", "active", "all"] {
            assert!(d.contains(s), "{d:?} should list {s}");
        }
        api.bad_get(
            "unknown category filter",
            &format!("{path}?category=blankets"),
            400,
            "invalid_input",
            &["category", "water", "other"],
        );
        api.bad_get(
            "empty category filter",
            &format!("{path}?category="),
            400,
            "invalid_input",
            &["category"],
        );
        api.bad_get(
            "unknown query key",
            &format!("{path}?colour=red"),
            400,
            "invalid_query",
            &["colour"],
        );
        api.bad_get(
            "status given twice",
            &format!("{path}?status=open&status=all"),
            400,
            "invalid_query",
            &["duplicate"],
        );
    }
}

#[test]
fn items_by_id() {
    let node = node("api-items");
    let api = &Api::new(&node);
    let ids = &post_board(api);
    let full = &ids.full;
    let v = api.get(&format!("/api/v1/items/{full}"));
    check_item_shape(&v);
    assert_eq!(v["id"], full.as_str());
    assert_eq!(v["title"], "Drinking water for 12 Mill Lane");
    let by_short = api.get(&format!("/api/v1/items/{}", &full[..10]));
    assert_eq!(by_short, v);
    let p6 = unique_prefix(full, &ids.all);
    assert_eq!(api.get(&format!("/api/v1/items/{p6}")), v, "prefix {p6}");
    assert_eq!(
        api.get(&format!("/api/v1/items/{}", p6.to_uppercase())),
        v,
        "prefixes are case-insensitive"
    );
    let offer = api.get(&format!(
        "/api/v1/items/{}",
        unique_prefix(&ids.offer, &ids.all)
    ));
    assert_eq!(offer["kind"], "offer");

    let bad = |case: &str, id: &str, want: u16, error: &str, has: &[&str]| {
        api.bad_get(case, &format!("/api/v1/items/{id}"), want, error, has);
    };
    bad(
        "5 characters",
        &full[..5],
        400,
        "invalid_id",
        &["at least 6 hex"],
    );
    bad("1 character", "a", 400, "invalid_id", &["at least 6 hex"]);
    bad("not hex", "zzzzzz", 400, "invalid_id", &["'zzzzzz'"]);
    bad(
        "hex then not hex",
        &format!("{}g", &full[..6]),
        400,
        "invalid_id",
        &["hex"],
    );
    let absent = (0..16u8)
        .map(|d| format!("{:x}", d).repeat(8))
        .find(|p| !ids.all.iter().any(|i| i.starts_with(p.as_str())))
        .expect("some 8-char prefix is unused");
    bad(
        "unknown prefix",
        &absent,
        404,
        "not_found",
        &[absent.as_str()],
    );
    bad(
        "full id plus one character",
        &format!("{full}0"),
        404,
        "not_found",
        &[],
    );
    // A hub is not a need or offer.
    let hub = api.post_expect("/api/v1/hubs", &json!({ "name": "Id test hub" }), 201);
    let hub_id = hub["id"].as_str().expect("hub id");
    bad("a hub's id", hub_id, 404, "not_found", &[]);
}

fn change(api: &Api, id: &str, status: &str, code: u16) -> Value {
    api.post_expect(
        &format!("/api/v1/items/{}/status", &id[..8]),
        &json!({ "status": status }),
        code,
    )
}

#[test]
fn status_changes() {
    let node = node("api-changes");
    let api = &Api::new(&node);
    let ids = &post_board(api);
    let me = api.get(&format!("/api/v1/items/{}", ids.full))["author"].clone();
    let path = format!("/api/v1/items/{}/status", &ids.full[..8]);

    // open → claimed → in-progress → fulfilled, with aliases of the status names.
    let before = api.events();
    let v = api.post_expect(
        &path,
        &json!({ "status": "claim", "note": "on my way\nwith a trolley" }),
        200,
    );
    check_item_shape(&v);
    assert_eq!(v["status"], "claimed");
    assert_eq!(v["holder"], me);
    assert_eq!(v["change"]["applied"], true);
    assert!(is_hex(v["change"]["id"].as_str().unwrap_or(""), 64), "{v}");
    assert!(v.get("error").is_none(), "an applied change has no error");
    let h = &v["history"][0];
    assert_eq!(h["status"], "claimed");
    assert_eq!(h["note"], "on my way\nwith a trolley");
    assert_eq!(h["applied"], true);
    assert_eq!(h["id"], v["change"]["id"]);
    assert_eq!(api.events(), before + 1);
    let v = change(api, &ids.full, "in_progress", 200);
    assert_eq!(v["status"], "in-progress");
    assert_eq!(v["holder"], me, "the holder is kept");
    let v = change(api, &ids.full, "Done", 200);
    assert_eq!(v["status"], "fulfilled");
    assert_eq!(v["holder"], Value::Null);
    assert!(ids_of(&api.get("/api/v1/needs"), "items")
        .iter()
        .all(|i| i != &ids.full));
    assert!(ids_of(&api.get("/api/v1/needs?status=fulfilled"), "items").contains(&ids.full));

    // A claim after fulfilment is recorded but not applied: 409, and stored.
    let before = api.events();
    let (code, v) = api.post(&path, &json!({ "status": "claimed" }));
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["error"], "not_applied");
    let detail = v["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("fulfilled") && detail.contains("claimed"),
        "{detail}"
    );
    assert_eq!(v["status"], "fulfilled");
    assert_eq!(v["change"]["applied"], false);
    let last = v["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("history");
    assert_eq!(last["applied"], false);
    assert_eq!(last["id"], v["change"]["id"]);
    assert_eq!(
        api.events(),
        before + 1,
        "a change not applied is still recorded"
    );
    let v = change(api, &ids.full, "reopen", 200);
    assert_eq!(v["status"], "open");
    assert_eq!(v["history"].as_array().map(Vec::len), Some(5));

    // The author withdraws and reopens their own post; nothing else revives it.
    let v = change(api, &ids.minimal, "withdraw", 200);
    assert_eq!(v["status"], "withdrawn");
    assert!(!ids_of(&api.get("/api/v1/items"), "items").contains(&ids.minimal));
    assert!(ids_of(&api.get("/api/v1/items?status=withdrawn"), "items").contains(&ids.minimal));
    let v = change(api, &ids.minimal, "claimed", 409);
    assert_eq!(v["error"], "not_applied");
    assert_eq!(v["status"], "withdrawn");
    let v = change(api, &ids.minimal, "fulfilled", 409);
    assert_eq!(v["status"], "withdrawn");
    let v = change(api, &ids.minimal, "REOPENED", 200);
    assert_eq!(v["status"], "open");
    let v = change(api, &ids.minimal, "reopened", 409);
    assert_eq!(v["error"], "not_applied", "an open item cannot be reopened");

    // Bad input.
    let valid = json!({ "status": "claimed", "note": "x" });
    api.refuses_garbage(&path, &valid, "note");
    let bad = |case: &str, p: &str, body: Value, want: u16, error: &str, has: &[&str]| {
        api.bad(case, p, &body, want, error, has);
    };
    let d = api.bad(
        "unknown status",
        &path,
        &json!({ "status": "teleported" }),
        400,
        "invalid_input",
        &["status", "'teleported'"],
    );
    for s in [
        "claimed",
        "in-progress",
        "fulfilled",
        "withdrawn",
        "reopened",
    ] {
        assert!(d.contains(s), "{d:?} should list {s}");
    }
    bad(
        "status open",
        &path,
        json!({ "status": "open" }),
        400,
        "invalid_input",
        &["status"],
    );
    bad(
        "missing status",
        &path,
        json!({ "note": "x" }),
        400,
        "bad_json",
        &["missing field", "status"],
    );
    bad(
        "status as a number",
        &path,
        json!({ "status": 1 }),
        400,
        "bad_json",
        &["status"],
    );
    bad(
        "note as a number",
        &path,
        json!({ "status": "claimed", "note": 1 }),
        400,
        "bad_json",
        &["note"],
    );
    bad(
        "note of 501 characters",
        &path,
        json!({ "status": "claimed", "note": "n".repeat(501) }),
        422,
        "invalid_input",
        &["note", "500"],
    );
    bad(
        "bell in the note",
        &path,
        json!({ "status": "claimed", "note": "a\u{7}b" }),
        422,
        "invalid_input",
        &["note", "U+0007"],
    );
    let absent = (0..16u8)
        .map(|d| format!("{:x}", d).repeat(8))
        .find(|p| !ids.all.iter().any(|i| i.starts_with(p.as_str())))
        .expect("an unused prefix");
    bad(
        "unknown id",
        &format!("/api/v1/items/{absent}/status"),
        json!({ "status": "claimed" }),
        404,
        "not_found",
        &[absent.as_str()],
    );
    bad(
        "id too short",
        &format!("/api/v1/items/{}/status", &ids.full[..5]),
        json!({ "status": "claimed" }),
        400,
        "invalid_id",
        &["at least 6 hex"],
    );
    bad(
        "id not hex",
        "/api/v1/items/qwerty/status",
        json!({ "status": "claimed" }),
        400,
        "invalid_id",
        &["'qwerty'"],
    );
}

#[test]
fn matching() {
    let node = node("api-match");
    let api = &Api::new(&node);
    let need = api.post_expect(
        "/api/v1/needs",
        &json!({ "title": "Blankets for 4", "category": "shelter", "qty": 4,
                 "unit": "blankets", "lat": 51.5, "lon": -0.12 }),
        201,
    );
    let near = api.post_expect(
        "/api/v1/offers",
        &json!({ "title": "10 blankets", "category": "bedding", "qty": 10,
                 "unit": "blankets", "lat": 51.501, "lon": -0.12 }),
        201,
    );
    let too_few = api.post_expect(
        "/api/v1/offers",
        &json!({ "title": "2 blankets", "category": "shelter", "qty": 2, "unit": "blankets" }),
        201,
    );
    let far = api.post_expect(
        "/api/v1/offers",
        &json!({ "title": "Blankets in Paris", "category": "shelter",
                 "lat": 48.85, "lon": 2.35 }),
        201,
    );
    let m = api.get("/api/v1/match");
    let matches = m["matches"].as_array().expect("matches array");
    let entry = matches
        .iter()
        .find(|e| e["need"]["id"] == need["id"])
        .unwrap_or_else(|| panic!("the blanket need in {m}"));
    check_item_shape(&entry["need"]);
    let offers = entry["offers"].as_array().expect("offers array");
    let offer_ids: Vec<&Value> = offers.iter().map(|o| &o["id"]).collect();
    assert_eq!(offer_ids, vec![&near["id"]], "{entry}");
    check_item_shape(&offers[0]);
    let d = offers[0]["distance_m"].as_f64().expect("distance_m");
    assert!((100.0..125.0).contains(&d), "about 111 m: {d}");
    assert!(!offer_ids.contains(&&too_few["id"]) && !offer_ids.contains(&&far["id"]));
    for e in matches {
        assert_eq!(e["need"]["kind"], "need");
        assert!(matches!(
            e["need"]["status"].as_str(),
            Some("open" | "claimed" | "in-progress")
        ));
    }
}

#[test]
fn hubs() {
    let node = node("api-hubs");
    let api = &Api::new(&node);
    let p = "/api/v1/hubs";
    let before = api.events();
    let v = api.post_expect(
        p,
        &json!({ "name": "Elm St hub", "place": " Elm St community centre ",
                 "lat": 51.501, "lon": -0.125, "services": ["water", "Charging, first aid", " "] }),
        201,
    );
    let id = v["id"].as_str().expect("id").to_string();
    assert!(is_hex(&id, 64));
    assert_eq!(v["short_id"].as_str(), Some(&id[..10]));
    assert_eq!(api.events(), before + 1);
    let hubs = api.get(p);
    // The roster (issue 11): one entry per node, with its hub announcement's fields.
    let h = hubs
        .as_array()
        .expect("hubs array")
        .iter()
        .find(|h| h["id"] == id.as_str())
        .unwrap_or_else(|| panic!("hub {id} in {hubs}"))
        .clone();
    assert_eq!(h["kind"], "hub");
    assert_eq!(h["name"], "Elm St hub");
    assert_eq!(h["short_id"].as_str(), Some(&id[..10]));
    assert_eq!(
        h["place"],
        json!({ "label": "Elm St community centre", "lat": 51.501, "lon": -0.125 })
    );
    assert_eq!(h["services"], json!(["water", "charging", "first aid"]));
    assert!(is_hex(h["author"].as_str().unwrap_or(""), 8), "{h}");
    assert!(h["created_at"].is_u64());
    // Announcing again under the same name replaces it.
    let again = api.post_expect(
        p,
        &json!({ "name": "ELM ST HUB", "services": ["beds"] }),
        201,
    );
    let hubs = api.get(p);
    let same: Vec<&Value> = hubs
        .as_array()
        .expect("hubs")
        .iter()
        .filter(|h| {
            h["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("elm st hub"))
        })
        .collect();
    assert_eq!(same.len(), 1, "{hubs}");
    assert_eq!(same[0]["id"], again["id"]);
    assert_eq!(same[0]["services"], json!(["beds"]));
    assert_eq!(same[0]["place"]["lat"], Value::Null);

    api.refuses_garbage(p, &json!({ "name": "x" }), "place");
    let bad = |case: &str, body: Value, want: u16, error: &str, has: &[&str]| {
        api.bad(case, p, &body, want, error, has);
    };
    bad(
        "missing name",
        json!({ "place": "x" }),
        400,
        "bad_json",
        &["missing field", "name"],
    );
    bad(
        "services as a string",
        json!({ "name": "x", "services": "water" }),
        400,
        "bad_json",
        &["services"],
    );
    bad(
        "lat as a string",
        json!({ "name": "x", "lat": "1", "lon": 1 }),
        400,
        "bad_json",
        &["lat"],
    );
    bad(
        "lat without lon",
        json!({ "name": "x", "lat": 1.0 }),
        400,
        "invalid_input",
        &["lat"],
    );
    bad(
        "longitude 181",
        json!({ "name": "x", "lat": 0, "lon": 181 }),
        400,
        "invalid_input",
        &["±180"],
    );
    let many: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
    bad(
        "17 services",
        json!({ "name": "x", "services": many }),
        422,
        "invalid_input",
        &["services", "17", "16"],
    );
    bad(
        "a service of 41 characters",
        json!({ "name": "x", "services": ["s".repeat(41)] }),
        422,
        "invalid_input",
        &["services", "40"],
    );
    bad(
        "empty name",
        json!({ "name": " " }),
        422,
        "invalid_input",
        &["name", "empty"],
    );
    bad(
        "name of 121 characters",
        json!({ "name": "n".repeat(121) }),
        422,
        "invalid_input",
        &["name", "120"],
    );
    bad(
        "newline in the name",
        json!({ "name": "a\nb" }),
        422,
        "invalid_input",
        &["name", "U+000A"],
    );
    bad(
        "escape in the place",
        json!({ "name": "x", "place": "a\u{1b}b" }),
        422,
        "invalid_input",
        &["place", "U+001B"],
    );
}

#[test]
fn alerts() {
    let node = node("api-alerts");
    let api = &Api::new(&node);
    let p = "/api/v1/alerts";
    let full = api.post_expect(
        p,
        &json!({ "headline": "Water rising on River Road", "severity": "Extreme",
                 "details": "Move cars to high ground.\nAvoid the ford.",
                 "area": "River Road", "expires": "6h" }),
        201,
    );
    let plain = api.post_expect(p, &json!({ "headline": "Power cut until evening" }), 201);
    let minor = api.post_expect(
        p,
        &json!({ "headline": "Bins not collected", "severity": "minor" }),
        201,
    );
    for v in [&full, &plain, &minor] {
        let id = v["id"].as_str().expect("id");
        assert!(is_hex(id, 64));
        assert_eq!(v["short_id"].as_str(), Some(&id[..10]));
    }
    let list = api.get(p);
    let alerts = list["alerts"].as_array().expect("alerts array");
    let pos = |v: &Value| {
        alerts
            .iter()
            .position(|a| a["id"] == v["id"])
            .unwrap_or_else(|| panic!("alert {} in {list}", v["id"]))
    };
    assert!(
        pos(&full) < pos(&plain) && pos(&plain) < pos(&minor),
        "most severe first: {list}"
    );
    let a = &alerts[pos(&full)];
    assert_eq!(a["kind"], "alert");
    assert_eq!(a["severity"], "extreme");
    assert_eq!(a["headline"], "Water rising on River Road");
    assert_eq!(a["details"], "Move cars to high ground.\nAvoid the ford.");
    assert_eq!(a["area"], "River Road");
    assert!(is_hex(a["author"].as_str().unwrap_or(""), 8), "{a}");
    let created = a["created_at"].as_u64().expect("created_at");
    let expires = a["expires_at"].as_u64().expect("expires_at");
    assert!(expires.abs_diff(created + 6 * 3_600_000) < 60_000, "{a}");
    let b = &alerts[pos(&plain)];
    assert_eq!(b["severity"], "severe", "the default severity");
    // No expiry given: a day (issue 15).
    let (created, expires) = (b["created_at"].as_u64(), b["expires_at"].as_u64());
    assert!(
        expires
            .zip(created)
            .is_some_and(|(e, c)| e.abs_diff(c + 86_400_000) < 60_000),
        "{b}"
    );
    assert_eq!(b["area"], "");
    assert_eq!(b["details"], "");

    api.refuses_garbage(p, &json!({ "headline": "x" }), "details");
    let bad = |case: &str, body: Value, want: u16, error: &str, has: &[&str]| {
        api.bad(case, p, &body, want, error, has);
    };
    bad(
        "missing headline",
        json!({ "severity": "minor" }),
        400,
        "bad_json",
        &["missing field", "headline"],
    );
    bad(
        "headline as a number",
        json!({ "headline": 1 }),
        400,
        "bad_json",
        &["headline"],
    );
    bad(
        "text instead of details",
        json!({ "headline": "x", "text": "y" }),
        400,
        "bad_json",
        &["unknown field", "text"],
    );
    let d = api.bad(
        "unknown severity",
        p,
        &json!({ "headline": "x", "severity": "apocalyptic" }),
        400,
        "invalid_input",
        &["severity", "'apocalyptic'"],
    );
    for s in ["minor", "moderate", "severe", "extreme"] {
        assert!(d.contains(s), "{d:?} should list {s}");
    }
    for e in ["1y", "tomorrow", "0m", "53w"] {
        bad(
            &format!("expires {e:?}"),
            json!({ "headline": "x", "expires": e }),
            400,
            "invalid_input",
            &["expires"],
        );
    }
    bad(
        "empty headline",
        json!({ "headline": "" }),
        422,
        "invalid_input",
        &["headline", "empty"],
    );
    bad(
        "headline of 121 characters",
        json!({ "headline": "h".repeat(121) }),
        422,
        "invalid_input",
        &["headline", "120"],
    );
    bad(
        "escape in the headline",
        json!({ "headline": "\u{1b}]0;pwned\u{7}" }),
        422,
        "invalid_input",
        &["headline", "U+001B"],
    );
    bad(
        "details of 2001 characters",
        json!({ "headline": "x", "details": "d".repeat(2001) }),
        422,
        "invalid_input",
        &["details", "2000"],
    );
    bad(
        "tab in the area",
        json!({ "headline": "x", "area": "a\tb" }),
        422,
        "invalid_input",
        &["area", "U+0009"],
    );
}

/// Reads the event stream on a thread; lines come back on a channel.
fn open_stream(api: &Api) -> mpsc::Receiver<Result<String, String>> {
    let (tx, rx) = mpsc::channel();
    let url = api.url("/api/v1/stream");
    let agent = aidmesh_tests::http();
    std::thread::spawn(move || {
        let r = match agent.get(&url).header("Accept", "text/event-stream").call() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if tx
            .send(Ok(format!("HTTP {} {ctype}", r.status().as_u16())))
            .is_err()
        {
            return;
        }
        for line in BufReader::new(r.into_body().into_reader()).lines() {
            let msg = line.map_err(|e| e.to_string());
            let stop = msg.is_err();
            if tx.send(msg).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// Waits for `event: new` followed by a data line about `id`; returns the data.
fn next_event_about(rx: &mpsc::Receiver<Result<String, String>>, id: &str) -> Value {
    let deadline = Instant::now() + T;
    let mut prev = String::new();
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => panic!("the stream failed: {e}; lines so far: {seen:?}"),
            Err(_) => panic!("no event about {id} within {T:?}; lines so far: {seen:?}"),
        };
        if prev == "event: new" {
            if let Some(data) = line.strip_prefix("data:") {
                if data.contains(id) {
                    return serde_json::from_str(data.trim())
                        .unwrap_or_else(|e| panic!("data line is not JSON ({e}): {line}"));
                }
            }
        }
        seen.push(line.clone());
        prev = line;
    }
}

#[test]
fn stream() {
    let node = node("api-stream");
    let api = &Api::new(&node);
    let rx = open_stream(api);
    let head = rx
        .recv_timeout(T)
        .expect("the stream answers")
        .expect("the stream opens");
    assert!(
        head.starts_with("HTTP 200 text/event-stream"),
        "stream answered {head}"
    );
    // The subscription exists once the headers are sent.
    let need = api.post_expect(
        "/api/v1/needs",
        &json!({ "title": "Stream test", "category": "food" }),
        201,
    );
    let id = need["id"].as_str().expect("id");
    let ev = next_event_about(&rx, id);
    assert_eq!(ev["id"], id);
    assert_eq!(ev["kind"], "need");
    assert_eq!(ev["origin"], "local");
    assert_eq!(ev["at"], need["created_at"], "{ev}");
    let changed = change(api, id, "claimed", 200);
    let change_id = changed["change"]["id"].as_str().expect("change id");
    let ev = next_event_about(&rx, change_id);
    assert_eq!(ev["kind"], "status");
    let hub = api.post_expect("/api/v1/hubs", &json!({ "name": "Stream hub" }), 201);
    let ev = next_event_about(&rx, hub["id"].as_str().expect("id"));
    assert_eq!(ev["kind"], "hub");
}

#[test]
fn routes() {
    let node = node("api-routes");
    let api = &Api::new(&node);
    for path in [
        "/api/v1/nothing",
        "/api/v2/status",
        "/api/v1/needs/",
        "/api/v1/items/abcdef/history",
        "/api",
        "/favicon.ico",
    ] {
        api.bad_get(
            "unknown route",
            path,
            404,
            "not_found",
            &["no such endpoint"],
        );
    }
    api.bad(
        "POST to an unknown route",
        "/api/v1/nothing",
        &json!({ "name": "x" }),
        404,
        "not_found",
        &["no such endpoint"],
    );
    // The web page is served at the root.
    let r = api.send("GET", "/", None, None);
    assert_eq!(r.code, 200);
    assert!(r.ctype.starts_with("text/html"), "{}", r.ctype);
}

#[test]
fn expiry() {
    let node = node("api-expiry");
    let api = &Api::new(&node);
    let need = api.post_expect(
        "/api/v1/needs",
        &json!({ "title": "Sandbags before the tide", "category": "other", "expires": "1s" }),
        201,
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let alert = api.post_expect(
        "/api/v1/alerts",
        &json!({ "headline": "Short-lived alert", "expires": "1s" }),
        201,
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait_for("the 1 s need to expire", T, || {
        ids_of(&api.get("/api/v1/items?status=expired"), "items")
            .contains(&need)
            .then_some(())
    });
    let v = api.get(&format!("/api/v1/items/{need}"));
    assert_eq!(v["status"], "expired");
    assert!(!ids_of(&api.get("/api/v1/needs"), "items").contains(&need));
    assert!(ids_of(&api.get("/api/v1/needs?status=all"), "items").contains(&need));
    wait_for("the 1 s alert to expire", T, || {
        let a = api.get("/api/v1/alerts");
        (!a["alerts"]
            .as_array()?
            .iter()
            .any(|x| x["id"] == alert.as_str()))
        .then_some(())
    });
}

/// Bugs found by the first version of these tests, kept as regression tests.
mod regressions {
    use super::*;

    /// A method a route does not have gets 405 with an empty body, not JSON.
    #[test]
    fn wrong_method_answers_json() {
        let node = Node::start("api-405", Opts::default());
        let api = Api::new(&node);
        for (method, path) in [
            ("DELETE", "/api/v1/needs"),
            ("PUT", "/api/v1/items/abcdef"),
            ("POST", "/api/v1/status"),
            ("GET", "/api/v1/items/abcdef/status"),
        ] {
            let body = (method != "GET" && method != "DELETE").then_some(&b"{}"[..]);
            api.bad_raw(
                "wrong method",
                method,
                path,
                Some("application/json"),
                body,
                405,
                "method_not_allowed",
                &[],
            );
        }
    }

    /// An id that is not valid UTF-8 once percent-decoded gets a text/plain 400.
    #[test]
    fn undecodable_id_answers_json() {
        let node = Node::start("api-path", Opts::default());
        let api = Api::new(&node);
        api.bad_get(
            "id not UTF-8",
            "/api/v1/items/%FF%FE%FD%FC%FB%FA",
            400,
            "invalid_id",
            &[],
        );
        api.bad(
            "id not UTF-8",
            "/api/v1/items/%FF%FE%FD%FC%FB%FA/status",
            &json!({ "status": "claimed" }),
            400,
            "invalid_id",
            &[],
        );
    }

    /// An empty or transport-less address is accepted with 202 and dialled forever.
    #[test]
    fn undialable_peer_address_is_refused() {
        let node = Node::start("api-peer-addr", Opts::default());
        let api = Api::new(&node);
        for addr in ["", "   ", "/ip4/127.0.0.1"] {
            api.bad(
                &format!("addr {addr:?}"),
                "/api/v1/peers",
                &json!({ "addr": addr }),
                400,
                "invalid_input",
                &["addr"],
            );
        }
    }
}

/// Issue 29: every refusal of one field names it (`field`) and says what is wrong as a
/// stable `code`, beside the English `detail`, for needs, offers, hubs, alerts, people
/// and check-ins, so a page can say it in its own language at that field.
#[test]
fn every_field_refusal_names_its_field_and_a_code() {
    let node = node("api-codes");
    let person = node.post(
        "/api/v1/people",
        &json!({ "name": "Ada", "place": "9 Canal St", "every": "12h" }),
    )["id"]
        .as_str()
        .expect("person id")
        .to_string();
    let cases = [
        (
            "/api/v1/needs",
            json!({ "title": " ", "category": "water" }),
            "title",
            "required",
        ),
        (
            "/api/v1/offers",
            json!({ "title": "x".repeat(121), "category": "water" }),
            "title",
            "too_long",
        ),
        (
            "/api/v1/needs",
            json!({ "title": "Water", "category": "bread" }),
            "category",
            "unknown",
        ),
        (
            "/api/v1/needs",
            json!({ "title": "Water", "category": "water", "urgency": "asap" }),
            "urgency",
            "unknown",
        ),
        (
            "/api/v1/needs",
            json!({ "title": "Water", "category": "water", "expires": "soon" }),
            "expires",
            "not_a_duration",
        ),
        (
            "/api/v1/needs",
            json!({ "title": "Water", "category": "water", "qty": "ten" }),
            "qty",
            "wrong_type",
        ),
        (
            "/api/v1/needs",
            json!({ "category": "water" }),
            "title",
            "required",
        ),
        (
            "/api/v1/needs",
            json!({ "title": "Water\u{202E}", "category": "water" }),
            "title",
            "bad_character",
        ),
        (
            "/api/v1/hubs",
            json!({ "name": "Elm", "lat": 1.0 }),
            "lat/lon",
            "both_or_neither",
        ),
        ("/api/v1/hubs", json!({ "name": "" }), "name", "required"),
        (
            "/api/v1/alerts",
            json!({ "headline": "Flood", "severity": "huge" }),
            "severity",
            "unknown",
        ),
        (
            "/api/v1/people",
            json!({ "name": "Bo", "place": "Mill Ln", "every": "1m" }),
            "every",
            "out_of_range",
        ),
        (
            "/api/v1/people",
            json!({ "name": "Bo", "place": "Mill Ln", "every": "often" }),
            "every",
            "not_a_duration",
        ),
        (
            &*format!("/api/v1/people/{person}/checkins"),
            json!({ "outcome": "fine" }),
            "outcome",
            "unknown",
        ),
        (
            &*format!("/api/v1/people/{person}/checkins"),
            json!({ "outcome": "moved" }),
            "detail",
            "required",
        ),
    ];
    for (path, body, field, code) in cases {
        let (status, v) = node.post_raw(path, &body);
        assert!((400..500).contains(&status), "{path} {body}: {status} {v}");
        assert_eq!(
            (v["field"].as_str(), v["code"].as_str()),
            (Some(field), Some(code)),
            "{path} {body}: {v}"
        );
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    }
}
