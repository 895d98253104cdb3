//! Exports for responders from a real node process (issue 12): every format is read
//! back by an independent reader (the `csv` crate, libhxl's `hxlvalidate`, the
//! `geojson` crate, the `roxmltree` XML parser), says when and where it was made, and
//! leaves out forgotten people and what went with them. The PFIF export holds only
//! people who agreed to be shared, and only the hub computer or a PIN holder gets it.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use aidmesh_tests::{http, wait_for, Node, Opts};
use serde_json::{json, Value};

const PIN: &str = "246810";
const T: Duration = Duration::from_secs(20);

/// The file name the node suggests for an export (`Content-Disposition`).
fn file_name(n: &Node, format: &str) -> String {
    let r = http()
        .get(format!("{}/api/v1/export?format={format}", n.api_url()))
        .call()
        .expect("the node answers");
    let cd = r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    cd.split("filename=\"")
        .nth(1)
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{format}: no file name in {cd:?}"))
        .to_string()
}

/// Row 1 of a CSV as Python's csv module reads it (as spreadsheets and pandas do: no
/// row is skipped).
fn python_row_1(text: &str) -> Vec<String> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys; print(json.dumps(next(csv.reader(sys.stdin))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (tests/run.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("to python3");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(out.status.success(), "python3 could not read the CSV");
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

/// GET an export from `base`; (status, content type, body).
fn fetch(base: &str, format: &str, pin: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut req = http().get(format!("{base}/api/v1/export?format={format}"));
    if let Some(p) = pin {
        req = req.header("X-Volunteer-Pin", p);
    }
    let mut r = req.call().expect("the node answers");
    let code = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.body_mut().read_to_vec().expect("body");
    (code, ctype, body)
}

fn export(n: &Node, format: &str) -> String {
    let (code, _, body) = fetch(n.api_url(), format, None);
    let text = String::from_utf8(body).expect("UTF-8");
    assert_eq!(code, 200, "{format}: {text}");
    text
}

/// An address of this machine that is not loopback: to the node, a phone on its Wi-Fi.
fn stranger_ip() -> IpAddr {
    for (bind, probe) in [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")] {
        let ip = UdpSocket::bind(bind)
            .and_then(|s| s.connect(probe).map(|()| s))
            .and_then(|s| s.local_addr())
            .map(|a| a.ip());
        if let Ok(ip) = ip {
            if !ip.is_loopback() && !ip.is_unspecified() {
                return ip;
            }
        }
    }
    let out = Command::new("ip")
        .args(["-o", "addr", "show", "scope", "global"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| !w.starts_with("inet"))
                .nth(1)
        })
        .filter_map(|a| a.split('/').next()?.parse::<IpAddr>().ok())
        .find(|ip| !ip.is_loopback())
        .unwrap_or_else(|| {
            panic!("this test needs a non-loopback address; `ip addr` shows none:\n{out}")
        })
}

/// libhxl's validator: `$HXLVALIDATE`, the venv tests/run.sh makes under target/, or PATH.
/// Missing is a failure, not a skip.
fn hxlvalidate() -> PathBuf {
    if let Some(p) = std::env::var_os("HXLVALIDATE") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/hxl-venv/bin/hxlvalidate");
    if venv.exists() {
        return venv;
    }
    let on_path = Command::new("hxlvalidate").arg("--help").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return PathBuf::from("hxlvalidate");
    }
    panic!(
        "hxlvalidate (PyPI libhxl) is not installed: run tests/run.sh (it installs it), or \
         `python3 -m venv target/hxl-venv && target/hxl-venv/bin/pip install libhxl six`, \
         or set HXLVALIDATE"
    );
}

/// An HXL schema (libhxl's format) for what the export promises: ids present and
/// unique, names present, positions in range, dates as dates, and only the documented
/// urgencies, statuses, kinds and clusters.
const HXL_SCHEMA: &str = "\
#valid_tag,#valid_required,#valid_datatype,#valid_value+min,#valid_value+max,#valid_unique,#valid_value+list
#meta+id,true,,,,true,
#meta+kind,true,,,,,need|offer
#item+name,true,,,,,
#sector+cluster,,,,,,WASH|Food Security|Health|Shelter|Emergency Telecommunications|Logistics|Protection|Early Recovery
#severity,true,,,,,low|normal|high|life-threatening
#status,true,,,,,open|claimed|in-progress|fulfilled|withdrawn|expired
#geo+lat,,number,-90,90,,
#geo+lon,,number,-180,180,,
#date+reported,true,date,,,,
#date+updated,true,date,,,,
";

struct Board {
    node: Node,
    hub_id: String,
    formula_need: String,
    offer: String,
    di_need: String,
}

/// A hub with a named, placed announcement; a need with a formula for a title and
/// coordinates west of Greenwich; an offer without coordinates; four people: Ada
/// (shared, three check-ins), Bo (never asked: not shared), Cy (said yes, then no),
/// Di (shared, needed help, then forgotten).
fn board() -> Board {
    let node = Node::start(
        "export",
        Opts {
            api: Some("0.0.0.0:0".into()),
            args: vec!["--volunteer-pin".into(), PIN.into()],
            ..Opts::default()
        },
    );
    let hub = node.post(
        "/api/v1/hubs",
        &json!({ "name": "Elm St hub", "place": "Elm St school", "lat": 51.5074, "lon": -0.1278,
                 "services": ["water", "charging"] }),
    );
    let formula_need = node.post(
        "/api/v1/needs",
        &json!({ "title": "=HYPERLINK(\"http://evil.example\",\"click\")", "category": "water",
                 "urgency": "life-threatening", "qty": 20, "unit": "litres", "place": "12 Mill Lane",
                 "lat": 51.501, "lon": -0.142, "contact": "+44 7700 900123",
                 "details": "two households,\n\"no\" tap water" }),
    );
    let offer = node.post(
        "/api/v1/offers",
        &json!({ "title": "Generator, 2 kW", "category": "power", "place": "the garage" }),
    );
    let person = |body: Value| {
        node.post("/api/v1/people", &body)["id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let ada = person(
        json!({ "name": "Ada Okafor", "place": "14 River Rd", "every": "12h",
                             "risks": ["oxygen"], "share_with_responders": true }),
    );
    person(json!({ "name": "Bo Lindqvist", "place": "2 Mill Lane", "every": "12h" }));
    let cy = person(
        json!({ "name": "Cy Barker", "place": "3 Mill Lane", "every": "12h",
                            "share_with_responders": true }),
    );
    let di = person(
        json!({ "name": "Di Forgotten", "place": "9 Dock St", "every": "12h",
                            "lat": 51.49, "lon": -0.1, "share_with_responders": true }),
    );
    let check = |who: &str, outcome: &str, detail: Option<&str>, by: &str| {
        node.post(
            &format!("/api/v1/people/{who}/checkins"),
            &json!({ "outcome": outcome, "detail": detail, "by": by, "note": "knocked <twice> & left a card" }),
        )
    };
    check(&ada, "safe", None, "Sam");
    check(&ada, "no-answer", None, "Sam");
    check(&ada, "moved", Some("school hall"), "self");
    let v = node.post(
        &format!("/api/v1/people/{cy}/sharing"),
        &json!({ "share": false }),
    );
    assert_eq!(v["share_with_responders"], false, "{v}");
    let di_need = check(&di, "needs-help", Some("insulin"), "Sam")["need_id"]
        .as_str()
        .expect("a linked need")
        .to_string();
    node.post(
        &format!("/api/v1/people/{di}/forget"),
        &json!({ "confirm": di }),
    );
    let id = |v: &Value| v["id"].as_str().expect("id").to_string();
    Board {
        hub_id: id(&hub),
        formula_need: id(&formula_need),
        offer: id(&offer),
        di_need,
        node,
    }
}

/// What every export must say about where it came from.
fn says_when_and_where(what: &str, text: &str, node: &Node) {
    let status = node.status();
    let short = &status["author"].as_str().expect("author")[..8];
    assert!(text.contains("made 20"), "{what} does not say when: {text}");
    assert!(
        text.contains("Elm St hub"),
        "{what} does not name the hub: {text}"
    );
    assert!(
        text.contains(short),
        "{what} does not name the node {short}: {text}"
    );
}

fn no_forgotten(what: &str, text: &str, b: &Board) {
    for gone in ["Di Forgotten", "9 Dock St", "insulin", &b.di_need] {
        assert!(
            !text.contains(gone),
            "{what} still holds '{gone}' of a forgotten person"
        );
    }
}

#[test]
fn csv_and_hxl_hold_every_need_and_offer_safely_and_pass_hxlvalidate() {
    let b = board();
    let n = &b.node;
    for format in ["csv", "hxl"] {
        let text = export(n, format);
        // Row 1 is the header, for spreadsheets and pandas; the file name says when,
        // where and which node.
        let named = file_name(n, format);
        let status = n.status();
        let short = &status["author"].as_str().expect("author")[..8];
        let ext = if format == "hxl" { ".hxl.csv" } else { ".csv" };
        assert!(
            named.starts_with("aidmesh-elm-st-hub-")
                && named.contains(short)
                && named.contains("-20")
                && named.ends_with(ext),
            "{format}: the file name does not say when, where and which node: {named}"
        );
        let row_1 = python_row_1(&text);
        assert_eq!(
            row_1[..3],
            ["id", "kind", "title"],
            "{format}: row 1: {row_1:?}"
        );
        no_forgotten(format, &text, &b);
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.expect("a CSV record")).collect();
        let header = &rows[0];
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        let data = if format == "hxl" {
            assert!(
                rows[1].iter().all(|t| t.starts_with('#')),
                "hashtag row under the header: {:?}",
                &rows[1]
            );
            assert_eq!(&rows[1][col("title")], "#item+name");
            assert_eq!(&rows[1][col("cluster")], "#sector+cluster");
            assert_eq!(&rows[1][col("urgency")], "#severity");
            &rows[2..]
        } else {
            &rows[1..]
        };
        assert_eq!(
            data.len(),
            2,
            "{format}: one row per need and offer: {data:?}"
        );
        let row = |id: &str| {
            data.iter()
                .find(|r| &r[col("id")] == id)
                .unwrap_or_else(|| panic!("{id} not exported"))
        };
        let need = row(&b.formula_need);
        assert_eq!(
            &need[col("title")],
            "'=HYPERLINK(\"http://evil.example\",\"click\")",
            "formula escaped"
        );
        assert_eq!(&need[col("contact")], "'+44 7700 900123");
        assert_eq!(&need[col("details")], "two households,\n\"no\" tap water");
        assert_eq!(&need[col("cluster")], "WASH");
        assert_eq!(&need[col("urgency")], "life-threatening");
        assert_eq!(&need[col("quantity")], "20");
        assert_eq!(&need[col("status")], "open");
        assert_eq!(&need[col("author_hub")], "Elm St hub");
        let lon: f64 = need[col("lon")]
            .parse()
            .expect("a number, not escaped text");
        assert!((lon + 0.142).abs() < 1e-9, "{lon}");
        assert!(need[col("posted_at")].ends_with('Z'));
        let offer = row(&b.offer);
        assert_eq!(&offer[col("kind")], "offer");
        assert_eq!(&offer[col("cluster")], "Emergency Telecommunications");
        assert_eq!(&offer[col("lat")], "");
    }

    let file = tempfile::Builder::new()
        .suffix(".csv")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), export(n, "hxl")).expect("write");
    let schema = tempfile::Builder::new()
        .suffix(".csv")
        .tempfile()
        .expect("temp file");
    std::fs::write(schema.path(), HXL_SCHEMA).expect("write");
    // libhxl's core schema, then ours.
    for with_schema in [false, true] {
        let mut cmd = Command::new(hxlvalidate());
        cmd.args(["-e", "info"]);
        if with_schema {
            cmd.arg("-s").arg(schema.path());
        }
        let out = cmd.arg(file.path()).output().expect("run hxlvalidate");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !said.contains("[error]"),
            "hxlvalidate (schema: {with_schema}) refused the export:\n{said}"
        );
    }
    // The validator does fail: a row that breaks the schema is caught.
    let mut bad = export(n, "hxl");
    bad.push_str("x,need,,,,,,,meh,open,,95,0,,,,,,,,,not a date,2026-11-30T00:00:00Z\n");
    std::fs::write(file.path(), bad).expect("write");
    let out = Command::new(hxlvalidate())
        .arg("-s")
        .arg(schema.path())
        .arg(file.path())
        .output()
        .expect("run hxlvalidate");
    assert!(!out.status.success(), "hxlvalidate passed a broken row");
}

#[test]
fn geojson_is_a_feature_collection_of_what_has_coordinates() {
    let b = board();
    let n = &b.node;
    let (code, ctype, body) = fetch(n.api_url(), "geojson", None);
    assert_eq!(code, 200);
    assert_eq!(ctype, "application/geo+json");
    let text = String::from_utf8(body).expect("UTF-8");
    no_forgotten("geojson", &text, &b);
    let gj = geojson::GeoJson::from_str(&text).expect("the geojson crate reads it");
    let geojson::GeoJson::FeatureCollection(fc) = gj else {
        panic!("not a FeatureCollection: {text}");
    };
    let about = fc
        .foreign_members
        .as_ref()
        .and_then(|m| m.get("aidmesh"))
        .expect("the aidmesh member says when and where");
    let made = about["made_at"].as_str().unwrap_or("");
    says_when_and_where("geojson", &format!("made {made} {about}"), n);
    assert!(
        about["made_at"].as_str().is_some_and(|d| d.ends_with('Z')),
        "{about}"
    );
    // The need and the hub have coordinates; the offer has none; Di's need is gone.
    let ids: Vec<String> = fc
        .features
        .iter()
        .map(|f| match &f.id {
            Some(geojson::feature::Id::String(s)) => s.clone(),
            other => panic!("feature id {other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for (id, kind, lat, lon) in [
        (&b.formula_need, "need", 51.501, -0.142),
        (&b.hub_id, "hub", 51.5074, -0.1278),
    ] {
        let f = fc
            .features
            .iter()
            .find(|f| f.id == Some(geojson::feature::Id::String(id.clone())))
            .unwrap_or_else(|| panic!("{kind} {id} not on the map"));
        assert_eq!(f.property("kind"), Some(&json!(kind)));
        let geom = f.geometry.as_ref().expect("a geometry");
        match &geom.value {
            geojson::Value::Point(p) => {
                // RFC 7946: longitude, then latitude.
                assert!(
                    (p[0] - lon).abs() < 1e-7 && (p[1] - lat).abs() < 1e-7,
                    "{p:?}"
                );
            }
            other => panic!("{kind}: not a point: {other:?}"),
        }
    }
}

#[test]
fn pfif_holds_only_people_who_agreed_and_only_for_the_hub_or_a_pin() {
    let b = board();
    let n = &b.node;
    let (code, ctype, body) = fetch(n.api_url(), "pfif", None);
    assert_eq!(code, 200, "the hub computer gets it without a PIN");
    assert!(ctype.starts_with("application/xml"), "{ctype}");
    let text = String::from_utf8(body).expect("UTF-8");
    no_forgotten("pfif", &text, &b);
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let ns = "http://zesty.ca/pfif/1.4";
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().namespace(), root.tag_name().name()),
        (Some(ns), "pfif")
    );
    let comment = doc
        .root()
        .children()
        .find(|c| c.is_comment())
        .and_then(|c| c.text())
        .expect("a comment saying when and where");
    says_when_and_where("pfif", comment, n);

    let child = |node: roxmltree::Node, name: &str| -> Option<String> {
        node.children()
            .find(|c| c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name)
            .map(|c| c.text().unwrap_or("").to_string())
    };
    let required = |node: roxmltree::Node, name: &str| -> String {
        let v = child(node, name)
            .unwrap_or_else(|| panic!("{} without {name}", node.tag_name().name()));
        assert!(!v.trim().is_empty(), "{name} is empty");
        v
    };
    let is_date = |d: &str| {
        d.len() == 20 && d.as_bytes()[4] == b'-' && d.as_bytes()[10] == b'T' && d.ends_with('Z')
    };
    let persons: Vec<roxmltree::Node> = root
        .children()
        .filter(|c| c.tag_name().namespace() == Some(ns) && c.tag_name().name() == "person")
        .collect();
    let names: Vec<String> = persons.iter().map(|p| required(*p, "full_name")).collect();
    // Bo was never asked, Cy said no after yes, Di was forgotten.
    assert_eq!(names, ["Ada Okafor"], "only people who agreed");
    let ada = persons[0];
    let pid = required(ada, "person_record_id");
    let (domain, local) = pid.split_once('/').expect("domain/local id");
    assert!(domain.contains('.') && !local.is_empty(), "{pid}");
    assert!(is_date(&required(ada, "entry_date")));
    assert!(is_date(&required(ada, "source_date")));
    required(ada, "author_name");
    required(ada, "source_name");
    assert_eq!(
        child(ada, "description").as_deref(),
        Some("At risk: oxygen.")
    );
    assert_eq!(
        child(ada, "home_street").as_deref(),
        Some("14 River Rd"),
        "their home; where they went is the note's last_known_location"
    );

    let notes: Vec<roxmltree::Node> = ada
        .children()
        .filter(|c| c.tag_name().name() == "note")
        .collect();
    let mut seen = Vec::new();
    for note in &notes {
        let nid = required(*note, "note_record_id");
        assert!(
            nid.split_once('/')
                .is_some_and(|(d, l)| d.contains('.') && !l.is_empty()),
            "{nid}"
        );
        assert_eq!(required(*note, "person_record_id"), pid);
        assert!(is_date(&required(*note, "entry_date")));
        assert!(is_date(&required(*note, "source_date")));
        let text = required(*note, "text");
        assert!(text.contains("knocked <twice> & left a card"), "{text}");
        seen.push((
            required(*note, "author_name"),
            required(*note, "status"),
            required(*note, "author_made_contact"),
            child(*note, "last_known_location"),
        ));
    }
    assert_eq!(
        seen,
        [
            ("Sam".into(), "believed_alive".into(), "true".into(), None),
            (
                "Sam".into(),
                "information_sought".into(),
                "false".into(),
                None
            ),
            (
                "Ada Okafor".into(),
                "is_note_author".into(),
                "true".into(),
                Some("school hall".into())
            ),
        ]
    );

    // From another machine: the PIN, or nothing.
    let port = n.api_url().rsplit(':').next().expect("port").to_string();
    let phone = match stranger_ip() {
        IpAddr::V4(ip) => format!("http://{ip}:{port}"),
        IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
    };
    let (code, _, body) = fetch(&phone, "pfif", None);
    let err: Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(
        (code, err["error"].as_str()),
        (401, Some("pin_required")),
        "{err}"
    );
    let (code, _, body) = fetch(&phone, "pfif", Some(PIN));
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("Ada Okafor"));
    let (code, _, _) = fetch(&phone, "csv", None);
    assert_eq!(code, 200, "the board's export is as open as the board");
}

#[test]
fn a_wrong_format_is_refused_naming_the_formats() {
    let n = Node::start("export-bad", Opts::default());
    for (query, says) in [
        (
            "?format=xls",
            "unknown format 'xls'; formats: csv, hxl, geojson, pfif",
        ),
        ("", "say which format: csv, hxl, geojson, pfif"),
        ("?format=csv&x=1", "unknown field"),
    ] {
        let mut r = http()
            .get(format!("{}/api/v1/export{query}", n.api_url()))
            .call()
            .expect("answer");
        let code = r.status().as_u16();
        let v: Value = r.body_mut().read_json().expect("JSON error");
        assert_eq!(code, 400, "{query}: {v}");
        assert!(
            v["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{query}: {v}"
        );
    }
    // An empty board still exports: the header alone.
    let text = wait_for("an export", T, || Some(export(&n, "csv")));
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("id,kind,"), "{text}");
}
