//! The town's offline map (issue 27), on real nodes: the test town that tippecanoe
//! builds from tests/data/map is installed with `aidmesh map add`; `GET /api/v1/map`
//! says what it shows; `GET /map/tiles.pmtiles` serves it with range requests as the
//! pmtiles reader makes them (206, 416, 304, If-Range, the same bytes as the file); a
//! file that is not PMTiles, has the wrong version, is cut short or damaged is refused
//! saying which, and the old map stays; `kill -9` in the middle of an install leaves the
//! old map whole; with no map both answer 404 saying how to add one. The printed board
//! (`/print`) draws an overview of the positioned needs from the installed map, numbered
//! as their cards, and none without a map.

use std::path::Path;
use std::time::Duration;

use aidmesh_tests::map::{build_town, TOWN_BOUNDS, TOWN_NAME};
use aidmesh_tests::{aidmesh_command, poll, test_town_pmtiles, Node, Opts};
use serde_json::Value;

/// A GET with extra headers: (status, headers, body).
fn get(node: &Node, path: &str, headers: &[(&str, &str)]) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut req = aidmesh_tests::http().get(format!("{}{path}", node.api_url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.call().expect("an answer");
    let body = r.body_mut().read_to_vec().unwrap_or_default();
    (r.status().as_u16(), r.headers().clone(), body)
}

/// A request with the Host header of another name (ureq sets its own): the answer's
/// status line and headers.
fn raw_get(node: &Node, path: &str, host: &str) -> String {
    use std::io::{Read, Write};
    let addr = node.api_url().trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(h: &'a ureq::http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn map_json(node: &Node) -> (u16, Value) {
    let (status, _, body) = get(node, "/api/v1/map", &[]);
    (status, serde_json::from_slice(&body).expect("JSON"))
}

fn add(node: &Node, file: &Path) -> (bool, String, String) {
    node.cli(&["map", "add", file.to_str().expect("utf-8 path")])
}

fn installed_file(node: &Node) -> Vec<u8> {
    std::fs::read(node.dir().join("map/tiles.pmtiles")).expect("the installed map")
}

#[test]
fn an_installed_town_is_described_and_served_with_ranges() {
    let town = test_town_pmtiles();
    let bytes = std::fs::read(&town).expect("the town");
    let len = bytes.len();
    let node = Node::start("hub", Opts::default());

    // None yet: 404 saying how to add one, from both, and `map --json` says so.
    let (status, body) = map_json(&node);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "no_map", "{body}");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("aidmesh map add FILE") && detail.contains("docs/map.md"),
        "{detail}"
    );
    let (status, _, _) = get(&node, "/map/tiles.pmtiles", &[]);
    assert_eq!(status, 404);
    let (ok, out, err) = node.cli(&["map", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("map --json");
    assert_eq!(v["installed"], false, "{out}");

    // Installed while the node runs: served from the next request on.
    let (ok, out, err) = add(&node, &town);
    assert!(ok, "map add failed: {err}");
    assert!(out.contains(TOWN_NAME), "{out}");
    let (status, m) = map_json(&node);
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["url"], "/map/tiles.pmtiles");
    assert_eq!(m["name"], TOWN_NAME);
    assert_eq!(m["bounds"], serde_json::json!(TOWN_BOUNDS), "{m}");
    let [w, s, e, n] = TOWN_BOUNDS;
    let (clon, clat) = (m["center"][0].as_f64(), m["center"][1].as_f64());
    assert!(
        clon.is_some_and(|x| (w..=e).contains(&x)) && clat.is_some_and(|y| (s..=n).contains(&y)),
        "the centre is in the town: {m}"
    );
    assert_eq!(m["min_zoom"], 0);
    assert_eq!(m["max_zoom"], 16);
    assert!(m["center_zoom"].as_u64().is_some_and(|z| z <= 16), "{m}");
    assert_eq!(m["bytes"], len as u64);
    assert_eq!(m["tile_type"], "mvt");
    let etag = format!("\"{}\"", m["etag"].as_str().expect("an etag"));

    // `map --json` says the same.
    let (ok, out, err) = node.cli(&["map", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("map --json");
    for k in [
        "name",
        "bounds",
        "min_zoom",
        "max_zoom",
        "bytes",
        "tile_type",
        "center",
    ] {
        assert_eq!(v[k], m[k], "map --json and the API differ on {k}");
    }
    assert_eq!(v["installed"], true);

    // The whole file: 200, the same bytes, Accept-Ranges, the tag.
    let (status, h, body) = get(&node, "/map/tiles.pmtiles", &[]);
    assert_eq!(status, 200);
    assert!(body == bytes, "the served map is the file, byte for byte");
    assert_eq!(header(&h, "accept-ranges"), "bytes");
    assert_eq!(header(&h, "etag"), etag);
    assert_eq!(header(&h, "content-length"), len.to_string());
    assert!(!header(&h, "cache-control").is_empty());

    // HEAD: the same headers, no body.
    let r = aidmesh_tests::http()
        .head(format!("{}/map/tiles.pmtiles", node.api_url()))
        .call()
        .expect("HEAD");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(r.headers(), "content-length"), len.to_string());
    assert_eq!(header(r.headers(), "etag"), etag);

    // What the pmtiles reader asks first: the header and root directory.
    let (status, h, body) = get(&node, "/map/tiles.pmtiles", &[("Range", "bytes=0-16383")]);
    assert_eq!(status, 206);
    let end = 16_383.min(len - 1);
    assert_eq!(header(&h, "content-range"), format!("bytes 0-{end}/{len}"));
    assert!(body == bytes[..=end], "206 gives bytes 0..={end}");
    // A range in the middle, one open-ended, the last bytes.
    for (range, from, to) in [
        ("bytes=100-227", 100, 227),
        (&format!("bytes={}-", len - 10) as &str, len - 10, len - 1),
        ("bytes=-7", len - 7, len - 1),
    ] {
        let (status, h, body) = get(&node, "/map/tiles.pmtiles", &[("Range", range)]);
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            header(&h, "content-range"),
            format!("bytes {from}-{to}/{len}")
        );
        assert!(body == bytes[from..=to], "{range}: the file's bytes");
    }
    // Past the end: 416 saying how long the file is.
    let (status, h, _) = get(
        &node,
        "/map/tiles.pmtiles",
        &[("Range", &format!("bytes={len}-"))],
    );
    assert_eq!(status, 416);
    assert_eq!(header(&h, "content-range"), format!("bytes */{len}"));
    // Held already: 304, also for a range.
    for extra in [None, Some(("Range", "bytes=0-99"))] {
        let mut hs = vec![("If-None-Match", etag.as_str())];
        hs.extend(extra);
        let (status, h, body) = get(&node, "/map/tiles.pmtiles", &hs);
        assert_eq!((status, body.len()), (304, 0), "{extra:?}");
        assert_eq!(header(&h, "etag"), etag);
    }
    // If-Range: the range only of the same file; another tag gets the whole file.
    let (status, _, body) = get(
        &node,
        "/map/tiles.pmtiles",
        &[("Range", "bytes=0-99"), ("If-Range", &etag)],
    );
    assert_eq!((status, body.len()), (206, 100));
    let (status, _, body) = get(
        &node,
        "/map/tiles.pmtiles",
        &[("Range", "bytes=0-99"), ("If-Range", "\"older\"")],
    );
    assert_eq!((status, body.len()), (200, len));
    // The API's guards hold here too: a page under another name is refused.
    let answer = raw_get(&node, "/map/tiles.pmtiles", "attacker.example");
    assert!(
        answer.starts_with("HTTP/1.1 403"),
        "a DNS-rebinding page cannot read the map: {answer}"
    );

    // Replaced while running: the new map from the next request, a new tag, and the
    // old tag no longer answers 304.
    let z14 = build_town("town-z14", &["-Z0", "-z14"]);
    let (ok, out, err) = add(&node, &z14);
    assert!(ok, "{err}");
    assert!(out.contains("Replaced"), "{out}");
    let (_, m2) = map_json(&node);
    assert_eq!(m2["max_zoom"], 14, "{m2}");
    assert_ne!(m2["etag"], m["etag"]);
    let (status, _, body) = get(&node, "/map/tiles.pmtiles", &[("If-None-Match", &etag)]);
    assert_eq!(status, 200);
    assert!(body == std::fs::read(&z14).expect("z14"));

    // Removed: 404 again.
    let (ok, out, err) = node.cli(&["map", "remove"]);
    assert!(ok, "{err}");
    assert!(out.contains("Removed"), "{out}");
    assert_eq!(map_json(&node).0, 404);
}

#[test]
fn bad_files_are_refused_saying_why_and_the_old_map_stays() {
    let town = test_town_pmtiles();
    let good = std::fs::read(&town).expect("the town");
    let node = Node::start("hub", Opts::default());
    let (ok, _, err) = add(&node, &town);
    assert!(ok, "{err}");
    let (_, before) = map_json(&node);
    let scratch = tempfile::tempdir().expect("scratch");
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
    let root = (u64_at(&good, 8) as usize, u64_at(&good, 16) as usize);

    let mut v2 = good.clone();
    v2[7] = 2;
    let mut root_garbage = good.clone();
    root_garbage[root.0..root.0 + root.1].fill(0xff);
    let mut metadata_beyond = good.clone();
    metadata_beyond[24..32].copy_from_slice(&(good.len() as u64 * 2).to_le_bytes());
    let geojson =
        std::fs::read(aidmesh_tests::map::town_data_dir().join("roads.geojson")).expect("roads");
    let cases: [(&str, Vec<u8>, &[&str]); 6] = [
        ("roads.geojson", geojson, &["not a PMTiles file", "GeoJSON"]),
        ("empty.pmtiles", Vec::new(), &["not a PMTiles file"]),
        ("v2.pmtiles", v2, &["version 2", "version 3"]),
        (
            "half.pmtiles",
            good[..good.len() / 2].to_vec(),
            &["truncated", "tile data"],
        ),
        ("root.pmtiles", root_garbage, &["damaged", "root directory"]),
        (
            "meta.pmtiles",
            metadata_beyond,
            &["truncated or damaged", "metadata"],
        ),
    ];
    for (name, bytes, says) in cases {
        let path = scratch.path().join(name);
        std::fs::write(&path, &bytes).expect("write the bad file");
        let (ok, out, err) = add(&node, &path);
        assert!(!ok, "{name} was installed: {out}");
        for s in says {
            assert!(err.contains(s), "refusing {name} should say {s:?}: {err}");
        }
        assert!(err.contains("was not installed"), "{err}");
        assert!(
            installed_file(&node) == good,
            "{name}: the old map is kept, byte for byte"
        );
        let (status, now) = map_json(&node);
        assert_eq!(
            (status, &now),
            (200, &before),
            "{name}: the node serves the old map"
        );
    }
    let (ok, out, _) = node.cli(&["map", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["name"], TOWN_NAME);
    // Only the map is in the folder: no temporary file is left by a refusal.
    let names: Vec<String> = std::fs::read_dir(node.dir().join("map"))
        .expect("map dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tiles.pmtiles"]);

    // A map damaged after it was installed (a failing SD card): 503 saying to install
    // a good one, and `aidmesh map` says so too.
    let installed = node.dir().join("map/tiles.pmtiles");
    std::fs::write(&installed, &good[..good.len() / 2]).expect("damage the installed map");
    let (status, body) = map_json(&node);
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("map_unreadable")),
        "{body}"
    );
    let (ok, _, err) = node.cli(&["map"]);
    assert!(
        !ok && err.contains("unreadable") && err.contains("aidmesh map add"),
        "{err}"
    );
}

#[test]
fn kill_9_in_the_middle_of_an_install_leaves_the_old_map_whole() {
    let town = test_town_pmtiles();
    let good = std::fs::read(&town).expect("the town");
    let node = Node::start("hub", Opts::default());
    let (ok, _, err) = add(&node, &town);
    assert!(ok, "{err}");
    // A valid map that takes a while to copy and flush: the z14 town followed by
    // 32 MB that no section points to (a reader never asks for them).
    let scratch = tempfile::tempdir().expect("scratch");
    let big = scratch.path().join("big.pmtiles");
    let mut bytes = std::fs::read(build_town("town-z14", &["-Z0", "-z14"])).expect("z14");
    bytes.resize(bytes.len() + 32 * 1024 * 1024, 0);
    std::fs::write(&big, &bytes).expect("write the big map");
    drop(bytes);
    let map_dir = node.dir().join("map");
    let incoming = || {
        std::fs::read_dir(&map_dir)
            .expect("map dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(".incoming-"))
    };
    let mut child = aidmesh_command()
        .arg("--data-dir")
        .arg(node.dir())
        .args(["map", "add"])
        .arg(&big)
        .spawn()
        .expect("start map add");
    poll(
        "map add to start writing its temporary copy",
        Duration::from_secs(60),
        Duration::from_millis(1),
        incoming,
    );
    child.kill().expect("kill -9 map add");
    let status = child.wait().expect("wait");
    assert!(
        incoming().is_some(),
        "the install ({status}) had finished before the kill: this test needs a bigger file"
    );
    assert!(installed_file(&node) == good, "the old map is whole");
    let (status, m) = map_json(&node);
    assert_eq!((status, m["name"].as_str()), (200, Some(TOWN_NAME)));
    let (_, _, body) = get(&node, "/map/tiles.pmtiles", &[]);
    assert!(body == good, "the node serves the old map whole");
    // The next install clears what the killed one left.
    let (ok, _, err) = add(&node, &town);
    assert!(ok, "{err}");
    assert!(
        incoming().is_none(),
        "the leftover temporary file is removed"
    );
}

/// The attribute `name="..."` of the first tag in `s` that has it, as a number.
fn attr(s: &str, name: &str) -> f64 {
    let key = format!("{name}=\"");
    let at = s.find(&key).unwrap_or_else(|| panic!("no {name} in {s}")) + key.len();
    let end = at + s[at..].find('"').expect("closing quote");
    s[at..end].parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Web Mercator, as the test computes it: world pixels at zoom `z`.
fn mercator(lat: f64, lon: f64, z: u32) -> (f64, f64) {
    let size = 256.0 * 2f64.powi(z as i32);
    let x = (lon + 180.0) / 360.0 * size;
    let s = lat.to_radians().sin();
    let y = (0.5 - ((1.0 + s) / (1.0 - s)).ln() / (4.0 * std::f64::consts::PI)) * size;
    (x, y)
}

#[test]
fn the_printed_board_has_an_overview_of_the_positioned_needs() {
    let node = Node::start("hub", Opts::default());
    let posted: Vec<(String, Option<(f64, f64)>)> = [
        ("Water at the bridge", Some((40.4075, -3.6900))),
        ("Insulin, ground floor", Some((40.4050, -3.6950))),
        ("Blankets for six", None),
        ("Generator fuel", Some((40.4100, -3.6850))),
        ("Far away", Some((41.5, -3.69))),
    ]
    .into_iter()
    .map(|(title, at)| {
        let mut body = serde_json::json!({ "title": title, "category": "water" });
        if let Some((lat, lon)) = at {
            body["lat"] = lat.into();
            body["lon"] = lon.into();
        }
        let v = node.post("/api/v1/needs", &body);
        (v["id"].as_str().expect("id").to_string(), at)
    })
    .collect();
    let board = |node: &Node| {
        let (status, _, body) = get(node, "/print", &[]);
        assert_eq!(status, 200);
        String::from_utf8(body).expect("utf-8")
    };

    // No map: the board as before, no overview and no numbers on the cards.
    let html = board(&node);
    assert!(html.contains("Water at the bridge"), "{html}");
    assert!(
        !html.contains("class=\"overview\"") && !html.contains("class=\"pin\""),
        "{html}"
    );

    let (ok, _, err) = add(&node, &test_town_pmtiles());
    assert!(ok, "map add: {err}");
    let html = board(&node);
    let start = html
        .find("<figure class=\"overview\">")
        .expect("an overview map");
    let svg = &html[start..start + html[start..].find("</figure>").expect("its end")];
    let z = attr(svg, "data-zoom") as u32;
    let (x0, y0) = (attr(svg, "data-x0"), attr(svg, "data-y0"));
    assert!(
        (14..=16).contains(&z),
        "zoom {z}: the town's needs fit at its high zooms"
    );
    // The streets are drawn: major roads (wider) and minor ones, and a street name.
    for want in [
        "class=\"road major\"",
        "class=\"road minor\"",
        "class=\"water\"",
    ] {
        assert!(svg.contains(want), "the overview lacks {want}: {svg}");
    }
    assert!(svg.contains(">Calle Mayor</text>"), "no street name: {svg}");
    let markers = svg.matches("<g class=\"pin\"").count();
    assert_eq!(
        markers, 3,
        "one marker per need positioned inside the map: {svg}"
    );

    for (id, at) in &posted {
        // The card of this need, and the number on it (if any).
        let card_at = html
            .find(&format!("<span class=\"id\">{}", &id[..8]))
            .unwrap_or_else(|| panic!("no card for {id}"));
        let li = html[..card_at].rfind("<li>").expect("the card's start");
        let head = &html[li..card_at];
        let number = head
            .strip_prefix("<li><span class=\"pin\">")
            .map(|r| r[..r.find('<').expect("end")].to_string());
        match at {
            Some((lat, lon)) if (40.40..=40.415).contains(lat) => {
                let n = number.unwrap_or_else(|| panic!("no number on the card of {id}: {head}"));
                let g = svg
                    .find(&format!("<g class=\"pin\" data-n=\"{n}\">"))
                    .unwrap_or_else(|| panic!("no marker {n} on the map: {svg}"));
                let (cx, cy) = (attr(&svg[g..], "cx"), attr(&svg[g..], "cy"));
                let (x, y) = mercator(*lat, *lon, z);
                assert!(
                    (cx - (x - x0)).abs() < 3.0 && (cy - (y - y0)).abs() < 3.0,
                    "marker {n} at ({cx}, {cy}), expected ({}, {})",
                    x - x0,
                    y - y0
                );
                assert!((0.0..512.0).contains(&cx) && (0.0..512.0).contains(&cy));
                assert!(
                    svg[g..].contains(&format!(">{n}</text>")),
                    "marker {n} unlabelled"
                );
            }
            _ => assert!(number.is_none(), "{id} has no position on the map: {head}"),
        }
    }
}
