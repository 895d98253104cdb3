//! Official alerts in: real CAP files (tests/data/cap/, after published NWS and
//! MeteoAlarm messages) imported with `aidmesh alert import` on one real node, shown
//! on another in the reader's language; hostile files (XXE, billion laughs) and files
//! that are not CAP refused with a clear error, quickly, posting nothing.
//!
//! The samples are dated March 2027, so both nodes run with their clock set to
//! 2027-03-14T16:00Z (`--clock-at`, a test option), when the alerts are current.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::Value;

/// 2027-03-14T16:00Z in ms.
const AT: &str = "1805040000000";
const T: Duration = Duration::from_secs(30);

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/cap")
        .join(name)
}

fn node(name: &str) -> Node {
    Node::start(
        name,
        Opts {
            args: vec!["--clock-at".into(), AT.into()],
            ..Opts::default()
        },
    )
}

fn import(n: &Node, name: &str) -> (bool, String, String) {
    let p = sample(name);
    n.cli(&["alert", "import", p.to_str().expect("utf-8 path")])
}

fn alerts(n: &Node, lang: &str) -> Vec<Value> {
    n.get(&format!("/api/v1/alerts?lang={lang}"))["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_bilingual_cap_alert_is_one_alert_shown_in_each_readers_language_on_every_hub() {
    let a = node("cap-a");
    let b = node("cap-b");
    b.connect(&a.addr());
    let (ok, out, err) = import(&a, "nws-hurricane-en-es.xml");
    assert!(ok, "{err}");
    assert!(
        out.contains("EXTREME  Hurricane Warning issued March 14 at 11:00AM AST by NWS San Juan PR (NWS San Juan PR; en-US, es-US)"),
        "{out}"
    );
    let (ok, out, err) = import(&a, "nws-flood-warning.xml");
    assert!(
        ok && out.contains("SEVERE  Flood Warning issued March 14"),
        "{out}{err}"
    );
    let (ok, out, err) = import(&a, "meteoalarm-wind-1.1.xml");
    assert!(ok && out.contains("(KNMI; nl-NL, en-GB)"), "{out}{err}");

    // Hub B gets them by the mesh, and shows each in the reader's language.
    let es = wait_for("hub B to show the three official alerts", T, || {
        let list = alerts(&b, "es");
        (list.len() == 3).then_some(list)
    });
    let hurricane = &es[0];
    assert_eq!(hurricane["kind"], "official-alert");
    assert_eq!(hurricane["severity"], "extreme");
    assert_eq!(hurricane["official"]["event"], "Aviso de Huracán");
    assert_eq!(hurricane["area"], "San Juan y sus alrededores; Noreste");
    assert_eq!(hurricane["official"]["urgency"], "expected");
    assert_eq!(hurricane["official"]["sender"], "NWS San Juan PR");
    assert_eq!(
        alerts(&b, "en")[0]["official"]["event"],
        "Hurricane Warning"
    );
    let (ok, out, _) = b.cli(&["alerts", "--lang", "es"]);
    assert!(
        ok && out.contains("EXTREME  Aviso de Huracán emitido el 14 de marzo"),
        "{out}"
    );
    let (ok, out, _) = b.cli(&["alerts", "--lang", "en"]);
    assert!(
        ok && out.contains("Orange warning: severe wind gusts in Zeeland (Zeeland)"),
        "{out}"
    );
    let (ok, out, _) = b.cli(&["alerts", "--lang", "nl"]);
    assert!(
        ok && out.contains("Code oranje: zware windstoten in Zeeland"),
        "{out}"
    );

    // The same message again is not posted twice.
    let (ok, out, _) = import(&a, "nws-hurricane-en-es.xml");
    assert!(
        ok && out.contains("already posted from an earlier import"),
        "{out}"
    );
    assert_eq!(alerts(&a, "en").len(), 3);
    // An official alert ends as any alert does.
    let id = hurricane["short_id"].as_str().expect("id").to_string();
    let (ok, out, err) = b.cli(&["alert", "clear", &id]);
    assert!(ok && out.contains("all-clear"), "{out}{err}");
}

#[test]
fn hostile_and_wrong_cap_files_are_refused_quickly_and_post_nothing() {
    let a = node("cap-hostile");
    let cases = [
        ("hostile-xxe.xml", "has a DOCTYPE (a DTD)"),
        ("hostile-billion-laughs.xml", "has a DOCTYPE (a DTD)"),
        (
            "not-cap-atom.xml",
            "this is not a CAP alert: the root element is <feed>",
        ),
        (
            "missing-event.xml",
            "the CAP alert has no <event>, which CAP requires",
        ),
        (
            "exercise.xml",
            "not posted: this is an exercise (status Exercise), not a real alert",
        ),
    ];
    for (file, says) in cases {
        let t = Instant::now();
        let (ok, out, err) = import(&a, file);
        assert!(!ok, "{file}: accepted: {out}");
        assert!(err.contains(says), "{file}: {err}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{file}: took {:?}",
            t.elapsed()
        );
        // Nothing of /etc/passwd anywhere.
        assert!(!err.contains("root:"), "{file}: {err}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "water, bread").expect("write");
    let (ok, _, err) = a.cli(&["alert", "import", text.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("this is not XML"), "{err}");
    assert_eq!(a.events(), 0, "a refused file posted something");
}
