//! Official alerts as the services send them (issue 29): real CAP files from
//! Environment Canada, USGS and NSW RFS (tests/data/cap/SOURCES.md), and messages
//! derived from real ones where a real one of that shape is not at hand (an Update and
//! a Cancel of the NWS flood warning; the DWD-style eight languages; the RFS alert with
//! a second `<info>` for another geocode). Each test runs `aidmesh alert import` on real
//! nodes, whose clock is set to 2027-03-14T16:00Z (`--clock-at`); a node takes no
//! clock before its build time, so the dates of older files are moved to that day
//! ([`current`]), the rest of each file left as published.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
/// 2027-03-14T16:00Z: the NWS samples are current.
const NWS_AT: &str = "1805040000000";

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/cap")
        .join(name)
}

fn read(name: &str) -> String {
    String::from_utf8(current(name)).expect("UTF-8 sample")
}

/// The sample's bytes with its dates moved to 2027-03-14 (and the next days), so
/// that the alert is current on the test nodes.
fn current(name: &str) -> Vec<u8> {
    let mut b = std::fs::read(sample(name)).expect("sample");
    let moves: &[(&str, &str)] = match name {
        "ec-thunderstorm-allclear-update.xml" => &[
            ("2012-05-02T", "2027-03-14T"),
            ("2012-05-03T", "2027-03-15T"),
        ],
        "usgs-earthquake-iso-8859-1.xml" => &[
            ("2012-10-14T", "2027-03-14T"),
            ("2012-10-21T", "2027-03-21T"),
        ],
        "nsw-rfs-mva-gwandalan.xml" => &[
            ("2014-05-08T", "2027-03-14T"),
            ("2014-05-09T", "2027-03-15T"),
        ],
        _ => &[],
    };
    for (from, to) in moves {
        // Byte-wise: the USGS file is ISO-8859-1, not UTF-8.
        let (from, to) = (from.as_bytes(), to.as_bytes());
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        b = out;
    }
    b
}

fn node(name: &str, at: &str) -> Node {
    Node::start(
        name,
        Opts {
            args: vec!["--clock-at".into(), at.into()],
            ..Opts::default()
        },
    )
}

fn import_path(n: &Node, p: &Path) -> (bool, String, String) {
    n.cli(&["alert", "import", p.to_str().expect("utf-8 path")])
}

/// Imports `bytes` written to a file named `name` in the node's directory.
fn import_bytes(n: &Node, name: &str, bytes: &[u8]) -> (bool, String, String) {
    let p = n.dir().join(name);
    std::fs::write(&p, bytes).expect("write");
    import_path(n, &p)
}

fn alerts(n: &Node, lang: &str) -> Vec<Value> {
    n.get(&format!("/api/v1/alerts?lang={lang}"))["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_usgs_file_in_iso_8859_1_is_read_in_the_encoding_it_declares() {
    let a = node("cap-usgs", NWS_AT);
    let file = current("usgs-earthquake-iso-8859-1.xml");
    assert!(
        std::str::from_utf8(&file).is_err(),
        "the file is ISO-8859-1"
    );
    let (ok, out, err) = import_bytes(&a, "usgs.xml", &file);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("EQ 4.6 Usulután, Usulután, El Salvador - PRELIMINARY REPORT"),
        "{out}"
    );
    let list = alerts(&a, "en");
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0]["details"]
        .as_str()
        .unwrap_or("")
        .contains("near Usulután"));
}

#[test]
fn an_environment_canada_all_clear_update_ends_the_watch_it_references() {
    let a = node("cap-ec-a", NWS_AT);
    let b = node("cap-ec-b", NWS_AT);
    b.connect(&a.addr());
    // The watch the real update references (2.49.0.1.124.a3f342a4.2012), as it was
    // first issued: derived from the update itself.
    let update = read("ec-thunderstorm-allclear-update.xml");
    let watch = update
        .replace(
            "<identifier>2.49.0.1.124.6bddbc91.2012</identifier>",
            "<identifier>2.49.0.1.124.a3f342a4.2012</identifier>",
        )
        .replace("<msgType>Update</msgType>", "<msgType>Alert</msgType>")
        .replace(
            "<responseType>AllClear</responseType>",
            "<responseType>Monitor</responseType>",
        )
        .replace("<urgency>Past</urgency>", "<urgency>Future</urgency>")
        .replace(
            "<severity>Minor</severity>",
            "<severity>Moderate</severity>",
        )
        .replace(
            "<certainty>Observed</certainty>",
            "<certainty>Possible</certainty>",
        );
    let (ok, out, err) = import_bytes(&a, "ec-watch.xml", watch.as_bytes());
    assert!(
        ok && out.contains("MODERATE  severe thunderstorm watch"),
        "{out}{err}"
    );
    let watch_id = out.split_whitespace().next().expect("id").to_string();
    wait_for("hub B to hold the watch", T, || {
        (alerts(&b, "en").len() == 1).then_some(())
    });

    let (ok, out, err) = import_bytes(&b, "ec-update.xml", update.as_bytes());
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ALL CLEAR  severe thunderstorm watch (Environment Canada; en-CA, fr-CA)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{watch_id}  all-clear  all clear from the issuer")),
        "{out}"
    );
    // Both hubs show both as ended, not as a live watch.
    let list = wait_for("hub A to show the watch ended", T, || {
        let l = alerts(&a, "fr");
        (l.len() == 2 && l.iter().all(|x| x["state"] == "all-clear")).then_some(l)
    });
    assert!(list
        .iter()
        .any(|x| x["headline"] == "veille d'orages violents"));
    let (ok, out, _) = a.cli(&["alerts", "--lang", "en"]);
    assert!(
        ok && out.matches("ALL CLEAR  severe thunderstorm watch").count() == 2,
        "{out}"
    );
}

#[test]
fn an_update_replaces_the_alert_it_references_and_a_cancel_ends_it_on_every_hub() {
    let a = node("cap-upd-a", NWS_AT);
    let b = node("cap-upd-b", NWS_AT);
    b.connect(&a.addr());
    let first = read("nws-flood-warning.xml");
    let (ok, out, err) = import_bytes(&a, "first.xml", first.as_bytes());
    assert!(
        ok && out.contains("SEVERE  Flood Warning issued March 14"),
        "{out}{err}"
    );
    let first_id = out.split_whitespace().next().expect("id").to_string();
    let old_ident = "urn:oid:2.49.0.1.840.0.7c1e2b9f4d1a6e0c3b8a5d2f9e4c7b1a0d3e6f29.001.1";
    // The issuer's update of it: a new identifier, msgType Update, <references>.
    let update = first
        .replace(old_ident, "urn:oid:2.49.0.1.840.0.update.001.1")
        .replace(
            "<msgType>Alert</msgType>",
            &format!(
                "<msgType>Update</msgType>\n    <references>w-nws.webmaster@noaa.gov,{old_ident},2027-03-14T09:51:00-06:00</references>"
            ),
        )
        .replace("<severity>Severe</severity>", "<severity>Extreme</severity>");
    assert_ne!(update, first);
    let (ok, out, err) = import_bytes(&a, "update.xml", update.as_bytes());
    assert!(
        ok && out.contains("EXTREME  Flood Warning issued March 14"),
        "{out}{err}"
    );
    assert!(
        out.contains(&format!(
            "{first_id}  cancelled  replaced by the issuer's update"
        )),
        "{out}"
    );
    let update_id = out.split_whitespace().next().expect("id").to_string();
    // Hub B shows the update alone.
    let list = wait_for("hub B to show the update alone", T, || {
        let l = alerts(&b, "en");
        (l.len() == 1 && l[0]["short_id"] == update_id.as_str()).then_some(l)
    });
    assert_eq!(list[0]["severity"], "extreme");

    // The issuer cancels the update: the alert ends, everywhere, imported on hub B.
    let cancel = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>urn:oid:2.49.0.1.840.0.cancel.001.1</identifier>
  <sender>w-nws.webmaster@noaa.gov</sender>
  <sent>2027-03-14T10:30:00-06:00</sent>
  <status>Actual</status>
  <msgType>Cancel</msgType>
  <scope>Public</scope>
  <references>w-nws.webmaster@noaa.gov,urn:oid:2.49.0.1.840.0.update.001.1,2027-03-14T09:51:00-06:00</references>
</alert>
"#;
    let (ok, out, err) = import_bytes(&b, "cancel.xml", cancel.as_bytes());
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("{update_id}  all-clear  cancelled by the issuer")),
        "{out}"
    );
    wait_for("hub A to show the update ended", T, || {
        let l = alerts(&a, "en");
        (l.len() == 1 && l[0]["state"] == "all-clear").then_some(())
    });
    // The same Cancel again: nothing left to end, and it says so.
    let (ok, out, err) = import_bytes(&b, "cancel.xml", cancel.as_bytes());
    assert!(
        ok && out.contains("nothing changed: the alerts this message names have already ended"),
        "{out}{err}"
    );
    // A Cancel of an alert this board never held says so.
    let (ok, _, err) = import_bytes(
        &b,
        "cancel-other.xml",
        cancel.replace("update.001.1", "unknown.9").as_bytes(),
    );
    assert!(
        !ok && err.contains("which this board does not hold"),
        "{err}"
    );
}

/// The NWS flood warning with `extra` more `<info>` blocks, each a copy of its own
/// with the language (and a word of the text) changed.
fn with_languages(langs: &[&str]) -> String {
    let base = read("nws-flood-warning.xml");
    let start = base.find("<info>").expect("info");
    let end = base.find("</info>").expect("/info") + "</info>".len();
    let info = &base[start..end];
    let mut more = String::new();
    for l in langs {
        more.push_str("\n    ");
        more.push_str(
            &info
                .replace(
                    "<language>en-US</language>",
                    &format!("<language>{l}</language>"),
                )
                .replace(
                    "Flood Warning issued",
                    &format!("[{l}] Flood Warning issued"),
                ),
        );
    }
    format!("{}{more}{}", &base[..end], &base[end..])
}

#[test]
fn a_warning_in_eight_languages_is_one_alert_and_the_english_reader_reads_english() {
    let a = node("cap-dwd", NWS_AT);
    let file = with_languages(&["de-DE", "es-ES", "fr-FR", "ar", "tr-TR", "pl-PL", "ru-RU"]);
    let (ok, out, err) = import_bytes(&a, "eight.xml", file.as_bytes());
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("Flood Warning issued").count(), 1, "{out}");
    assert!(
        out.contains("(NWS Houston/Galveston TX; en-US, de-DE, es-ES, fr-FR)"),
        "{out}"
    );
    assert!(
        out.contains("not carried (an alert holds at most 4 languages): ar, tr-TR, pl-PL, ru-RU"),
        "{out}"
    );
    let list = alerts(&a, "en");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["official"]["language"], "en-US");
    assert_eq!(alerts(&a, "fr")[0]["official"]["language"], "fr-FR");
}

#[test]
fn an_nsw_rfs_alert_whose_blocks_differ_only_in_geocode_posts_once() {
    let a = node("cap-rfs", NWS_AT);
    let base = read("nsw-rfs-mva-gwandalan.xml");
    let start = base.find("<cap:info>").expect("info");
    let end = base.find("</cap:info>").expect("/info") + "</cap:info>".len();
    let second = base[start..end].replace("AU-NSW", "AU-ACT");
    let file = format!("{}\n  {second}{}", &base[..end], &base[end..]);
    let (ok, out, err) = import_bytes(&a, "rfs-two.xml", file.as_bytes());
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("MINOR  MVA Gwandalan (NSW Rural Fire Service; en-AU)"),
        "{out}"
    );
    let list = alerts(&a, "en");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["area"], "86 Kullaroo Rd Gwandalan, Wyong");
    // The real file as published posts the same alert.
    let (ok, out, _) = import_bytes(&a, "rfs.xml", base.as_bytes());
    assert!(ok && out.contains("already posted"), "{out}");
}

#[test]
fn big_files_many_blocks_and_far_expiries_are_bounded() {
    let a = node("cap-bounds", NWS_AT);
    // Over the limit: the size is named, not a broken pipe.
    let base = read("nws-flood-warning.xml");
    let padded = base.replace(
        "<description>",
        &format!("<description>{}", "x".repeat(3_700_000)),
    );
    let (ok, out, err) = import_bytes(&a, "big.xml", padded.as_bytes());
    assert!(!ok, "{out}");
    assert!(
        err.contains("is 3.7 MB; a CAP alert is at most 1.0 MB (1048576 bytes)"),
        "{err}"
    );
    // 1,000 <info> blocks (about 380 KB): one message, one alert.
    let end = base.find("</info>").expect("/info") + "</info>".len();
    let mut many = base[..end].to_string();
    for i in 1..1000 {
        many.push_str(&format!(
            "\n    <info><category>Met</category><event>Flood Warning</event>\
             <urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>\
             <expires>2027-03-15T03:00:00-06:00</expires><headline>Flood Warning {i}</headline>\
             <description>River flooding along the reach {i}; move to higher ground.</description>\
             <area><areaDesc>Wharton {i}, TX</areaDesc></area></info>"
        ));
    }
    many.push_str(&base[end..]);
    assert!(
        many.len() > 300_000 && many.len() < 1_048_576,
        "{}",
        many.len()
    );
    let (ok, out, err) = import_bytes(&a, "many.xml", many.as_bytes());
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{}", &out[..out.len().min(2000)]);
    assert_eq!(alerts(&a, "en").len(), 1);
    // An expiry in year 9999 is brought back to a year from now.
    let far = base
        .replace("urn:oid:2.49.0.1.840.0.7c1e", "urn:oid:2.49.0.1.840.0.far")
        .replace(
            "<expires>2027-03-15T03:00:00-06:00</expires>",
            "<expires>9999-12-31T23:59:59-00:00</expires>",
        );
    let (ok, out, err) = import_bytes(&a, "far.xml", far.as_bytes());
    assert!(ok, "{out}{err}");
    let year = 365 * 86_400_000u64;
    let now: u64 = NWS_AT.parse().expect("ms");
    let list = alerts(&a, "en");
    assert_eq!(list.len(), 2);
    for x in &list {
        let exp = x["expires_at"].as_u64().expect("expires_at");
        // The node's clock has run on a little since it started.
        assert!(exp <= now + year + 600_000, "{exp}");
    }
}
