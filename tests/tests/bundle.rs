//! Sneakernet bundles between real nodes that never connect: `aidmesh bundle export`
//! writes a real file, `aidmesh bundle import` reads it at another hub. Damaged files
//! (cut short, altered, another community's, not a bundle at all) are refused naming
//! what is wrong, and nothing from a chunk that fails authentication is stored. Erased
//! content is not exported, and an old bundle does not bring it back.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use aidmesh_tests::{wait_converged, wait_for, Node, Opts};
use serde_json::{json, Value};

/// Bound on every wait.
const T: Duration = Duration::from_secs(30);
/// Header length of the bundle format (docs/protocol.md section 11).
const HEADER: usize = 56;

/// Runs the CLI against `n`; returns (success, stdout, stderr).
fn export(n: &Node, file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["bundle", "export", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let (ok, out, err) = n.cli(&args);
    assert!(ok, "{}: export failed: {err}", n.name);
    out
}

fn import(n: &Node, file: &Path) -> (bool, String, String) {
    n.cli(&["bundle", "import", file.to_str().expect("utf-8 path")])
}

fn import_ok(n: &Node, file: &Path) -> String {
    let (ok, out, err) = import(n, file);
    assert!(ok, "{}: import failed: {err}", n.name);
    out
}

/// The chunks of a bundle file: (offset, length with its 4-byte length field).
fn chunks(file: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at + 4 <= file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push((at, 4 + len));
        at += 4 + len;
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn people(n: &Node) -> Vec<Value> {
    n.get("/api/v1/people")["people"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_bundle_carries_a_hubs_board_to_a_hub_it_never_met_and_twice_changes_nothing() {
    let a = Node::start("hub-a", Opts::default());
    let b = Node::start("hub-b", Opts::default());
    let other = Node::start(
        "other",
        Opts {
            community: Some("Oak Street".into()),
            ..Opts::default()
        },
    );
    let insulin = a.need("Insulin for Mrs Okafor");
    for i in 0..20 {
        a.need(&format!("bottled water {i}"));
    }
    a.post(
        "/api/v1/people",
        &json!({ "name": "Theodora Blackwood", "place": "9 Canal St", "every": "12h" }),
    );
    a.post(
        "/api/v1/alerts",
        &json!({ "headline": "Water rising on River Road", "severity": "severe" }),
    );
    a.post("/api/v1/hubs", &json!({ "name": "Elm St hub" }));
    let held = a.events();
    let usb = tempfile::tempdir().expect("temp dir");
    let file = usb.path().join("elm-street.bundle");
    let out = export(&a, &file, &[]);
    assert!(out.starts_with(&format!("wrote {held} events (")), "{out}");
    // A lost USB stick reveals no name, address or need.
    let bytes = std::fs::read(&file).expect("the bundle file");
    for secret in ["Theodora", "Canal St", "Okafor", "River Road"] {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "'{secret}' is readable in the file"
        );
    }
    assert!(!usb.path().join("elm-street.part").exists());

    // Hub B never connected to A: the file is its only link.
    assert_eq!(b.status()["peers"], 0);
    let out = import_ok(&b, &file);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("{held} new, 0 already known, 0 refused"),
        "{out}"
    );
    // What came in, and from which hub.
    assert!(
        lines.len() == 3
            && lines[1].starts_with("came in: 21 needs, 1 person")
            && lines[1].contains("1 alert")
            && lines[1].contains("1 hub"),
        "{out}"
    );
    let a_status = a.status();
    let a_short = &a_status["author"].as_str().expect("author")[..8];
    assert_eq!(
        lines[2],
        format!("from: Elm St hub ({a_short}) {held} events"),
        "{out}"
    );
    assert_eq!(b.digest(), a.digest());
    assert!(b.item_ids().contains(&insulin));
    assert_eq!(people(&b).len(), 1);
    // Twice changes nothing.
    let out = import_ok(&b, &file);
    assert_eq!(
        out.trim(),
        format!("0 new, {held} already known, 0 refused"),
        "nothing new, nothing more said"
    );
    assert_eq!(b.events(), held);

    // Imported events take the peer path on: B hands them to a hub it then meets.
    let c = Node::start("hub-c", Opts::default());
    c.connect(&b.addr());
    wait_converged(&[&b, &c], held, T);

    // Another community's node refuses the file whole, saying so.
    let (ok, _, err) = import(&other, &file);
    assert!(!ok);
    assert!(err.contains("written by another community"), "{err}");
    assert_eq!(other.events(), 0);
}

#[test]
fn since_exports_only_recent_events() {
    let a = Node::start("since-a", Opts::default());
    let b = Node::start("since-b", Opts::default());
    a.need("old need");
    let usb = tempfile::tempdir().expect("temp dir");
    let all = usb.path().join("all.bundle");
    assert!(export(&a, &all, &["--since", "1h"]).starts_with("wrote 1 events"));
    let x = usb.path().join("x.bundle");
    let x = x.to_str().expect("utf-8 path");
    let (ok, _, err) = a.cli(&["bundle", "export", x, "--since", "soon"]);
    assert!(!ok && err.contains("'soon' is not a duration"), "{err}");
    // Which events fall within the duration is tested with old stamps in
    // node/src/doors/bundle.rs (a node cannot be made to stamp before its build time).
    let recent = usb.path().join("recent.bundle");
    assert!(export(&a, &recent, &["--since", "1d"]).starts_with("wrote 1 events"));
    let out = import_ok(&b, &recent);
    assert!(
        out.starts_with("1 new, 0 already known, 0 refused\ncame in: 1 need\n"),
        "{out}"
    );
}

#[test]
fn a_damaged_bundle_names_what_is_wrong_and_stores_nothing_it_cannot_authenticate() {
    let a = Node::start("damage-a", Opts::default());
    // Enough text for several 64 KiB chunks.
    let details = "sandbags and pumps needed at the lower end of the street ".repeat(17);
    for i in 0..240 {
        a.post(
            "/api/v1/needs",
            &json!({ "title": format!("sandbags {i}"), "category": "other", "details": details }),
        );
    }
    let usb = tempfile::tempdir().expect("temp dir");
    let file = usb.path().join("a.bundle");
    export(&a, &file, &[]);
    let good = std::fs::read(&file).expect("bundle");
    let cs = chunks(&good);
    assert!(cs.len() >= 4, "{} chunks", cs.len());
    let write = |name: &str, bytes: &[u8]| {
        let p = usb.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    // The number of new events a partial import reports.
    let reported_new = |err: &str| -> u64 {
        let tail = err
            .split("Imported from chunks")
            .nth(1)
            .unwrap_or_else(|| panic!("{err}"));
        let n = tail.split(": ").nth(1).and_then(|t| t.split(' ').next());
        n.and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{err}"))
    };

    // Cut short inside chunk 2: chunks 0 and 1 are imported, and the message says so.
    let b = Node::start("damage-b", Opts::default());
    let (at, len) = cs[2];
    let cut = write("cut.bundle", &good[..at + len / 2]);
    let (ok, _, err) = import(&b, &cut);
    assert!(!ok);
    assert!(err.contains("cut short inside chunk 2"), "{err}");
    assert!(err.contains("Imported from chunks 0 to 1"), "{err}");
    let n = reported_new(&err);
    assert!(n > 0 && n < 240, "{err}");
    assert_eq!(b.events(), n);

    // One byte altered in chunk 1: chunk 0 only, and chunk 1 is named.
    let c = Node::start("damage-c", Opts::default());
    let mut bad = good.clone();
    bad[cs[1].0 + 100] ^= 0x20;
    let (ok, _, err) = import(&c, &write("bad.bundle", &bad));
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "chunk 1 (at byte {}) failed authentication",
            cs[1].0
        )),
        "{err}"
    );
    assert!(err.contains("Imported from chunks 0 to 0"), "{err}");
    let first = reported_new(&err);
    assert_eq!(c.events(), first);
    assert!(first < n, "chunk 1 was not stored");

    // Cut at a chunk boundary: the final chunk is missing.
    let (ok, _, err) = import(&c, &write("short.bundle", &good[..cs[3].0]));
    assert!(!ok);
    assert!(
        err.contains("after chunk 2: its final chunk is missing"),
        "{err}"
    );

    // Altered header (creation time): chunk 0 fails, nothing is stored.
    let d = Node::start("damage-d", Opts::default());
    let mut hdr = good.clone();
    hdr[20] ^= 1;
    let (ok, _, err) = import(&d, &write("hdr.bundle", &hdr));
    assert!(
        !ok && err.contains("chunk 0 (at byte 56) failed authentication"),
        "{err}"
    );
    // Not a bundle at all; an empty file.
    let (ok, _, err) = import(&d, &write("notes.txt", b"shopping list: water, bread\n"));
    assert!(!ok && err.contains("not an aidmesh bundle"), "{err}");
    let (ok, _, err) = import(&d, &write("empty.bundle", b""));
    assert!(!ok && err.contains("not an aidmesh bundle"), "{err}");
    let (ok, _, err) = import(&d, Path::new("/nonexistent/x.bundle"));
    assert!(
        !ok && err.contains("cannot read /nonexistent/x.bundle"),
        "{err}"
    );
    assert_eq!(d.events(), 0);

    // The whole file still imports everything afterwards.
    let out = import_ok(&c, &file);
    assert!(out.contains("already known"), "{out}");
    assert_eq!(c.digest(), a.digest());
}

#[test]
fn erased_content_is_not_exported_and_an_old_bundle_does_not_bring_it_back() {
    let a = Node::start("erase-a", Opts::default());
    let b = Node::start("erase-b", Opts::default());
    let v = a.post(
        "/api/v1/people",
        &json!({ "name": "Zebulon Fairweather", "place": "3 Mill Lane", "every": "12h" }),
    );
    let id = v["id"].as_str().expect("id").to_string();
    a.need("candles");
    let usb = tempfile::tempdir().expect("temp dir");
    let before = usb.path().join("before.bundle");
    export(&a, &before, &[]);
    a.post(
        &format!("/api/v1/people/{id}/forget"),
        &json!({ "confirm": id }),
    );
    assert!(people(&a).is_empty());
    let after = usb.path().join("after.bundle");
    export(&a, &after, &[]);

    // The bundle written after the forget does not carry the person.
    import_ok(&b, &after);
    assert!(people(&b).is_empty());
    assert_eq!(b.digest(), a.digest());
    // The old bundle, written before, brings nothing back: not to the hub that
    // forgot, nor to one that learnt of the forget from a bundle.
    for n in [&a, &b] {
        let out = import_ok(n, &before);
        assert!(out.starts_with("0 new"), "{}: {out}", n.name);
        assert!(
            people(n).is_empty(),
            "{}: the forgotten person is back",
            n.name
        );
    }
    assert_eq!(b.digest(), a.digest());
    wait_for("hub B to keep no byte of the forgotten name", T, || {
        (!dir_contains(b.dir(), b"Zebulon F")).then_some(())
    });
}

fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_contains(&p, needle)
            } else {
                p.file_name().is_some_and(|n| n != "node.log")
                    && std::fs::read(&p).is_ok_and(|b| contains(&b, needle))
            }
        })
}

/// An address of this machine that is not loopback: requests from it look, to the
/// node, like a phone on the hub's Wi-Fi (as in api_guard.rs).
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
    panic!("this test needs a non-loopback address on this machine");
}

#[test]
fn the_page_downloads_a_bundle_and_uploads_one_only_with_the_pin() {
    const PIN: &str = "246810";
    let a = Node::start("page-a", Opts::default());
    a.need("tarpaulins");
    let b = Node::start(
        "page-b",
        Opts {
            api: Some("0.0.0.0:0".into()),
            args: vec!["--volunteer-pin".into(), PIN.into()],
            ..Opts::default()
        },
    );
    let agent = aidmesh_tests::http();
    // Download, as the page's link does.
    let mut r = agent
        .get(format!("{}/api/v1/bundle", a.api_url()))
        .call()
        .expect("download");
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"aidmesh-test-"),
        "{disposition}"
    );
    let file = r
        .body_mut()
        .with_config()
        .limit(10_000_000)
        .read_to_vec()
        .expect("bundle bytes");
    assert_eq!(&file[..8], b"AIDMBUND");

    // Upload from a phone on the hub's Wi-Fi: refused without the PIN, taken with it.
    let port = b.api_url().rsplit(':').next().expect("port");
    let phone = format!(
        "http://{}",
        SocketAddr::new(stranger_ip(), port.parse().expect("port"))
    );
    let upload = |pin: Option<&str>| {
        let mut req = agent
            .post(format!("{phone}/api/v1/bundle"))
            .content_type("application/octet-stream");
        if let Some(p) = pin {
            req = req.header("X-Volunteer-Pin", p);
        }
        let mut r = req.send(&file[..]).expect("upload");
        let code = r.status().as_u16();
        (
            code,
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (code, v) = upload(None);
    assert_eq!(
        (code, v["error"].as_str()),
        (401, Some("pin_required")),
        "{v}"
    );
    assert_eq!(b.events(), 0);
    let (code, v) = upload(Some(PIN));
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["new"].as_u64(), v["refused"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(b.digest(), a.digest());
    // A bundle is a file, not JSON: other content types stay refused.
    let mut r = agent
        .post(format!("{}/api/v1/bundle", b.api_url()))
        .content_type("text/plain")
        .send(&file[..])
        .expect("upload");
    assert_eq!(
        r.status().as_u16(),
        415,
        "{:?}",
        r.body_mut().read_to_string()
    );
}

/// Runs `aidmesh --data-dir DIR ARGS` on a directory no node runs on (a restore).
fn cli_at(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = aidmesh_tests::aidmesh_command()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("LANG")
        .output()
        .expect("run aidmesh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[test]
fn a_backup_taken_while_the_hub_takes_writes_restores_the_same_hub_after_kill_9() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let mut a = Node::start("hub-a", Opts::default());
    let b = Node::start(
        "hub-b",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    std::fs::write(a.dir().join("peers"), format!("{}\n", b.addr())).expect("peers file");
    // Welfare: one person forgotten (erased) before the backup, one kept.
    let gone = a.post(
        "/api/v1/people",
        &json!({ "name": "Theodora Blackwood", "place": "9 Canal St", "every": "12h" }),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    a.post(
        &format!("/api/v1/people/{gone}/forget"),
        &json!({ "confirm": gone }),
    );
    let ada_registered = std::time::Instant::now();
    a.post(
        "/api/v1/people",
        &json!({ "name": "Ada Okafor", "place": "12 Mill Lane", "every": "12h" }),
    );

    // A volunteer keeps posting while the coordinator takes the backup.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, base) = (acked.clone(), stop.clone(), a.api_url().to_string());
        std::thread::spawn(move || {
            let agent = aidmesh_tests::http();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(id) = aidmesh_tests::try_post_need(&agent, &base, &format!("water {i}")) {
                    acked.lock().expect("lock").push(id);
                }
                i += 1;
            }
        })
    };
    let count = || acked.lock().expect("lock").len();
    wait_for("20 acknowledged writes", T, || {
        (count() >= 20).then_some(())
    });
    let before: Vec<String> = acked.lock().expect("lock").clone();
    let usb = tempfile::tempdir().expect("temp dir");
    let file = usb.path().join("elm-street.backup");
    let (ok, out, err) = a.cli(&["backup", file.to_str().expect("utf-8")]);
    assert!(ok, "backup failed: {err}");
    assert!(
        out.contains("taken from the running node") && out.contains("keep it as safe"),
        "{out}"
    );
    let after_backup = count();
    wait_for("writes after the backup", T, || {
        (count() >= after_backup + 20).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    let all: Vec<String> = acked.lock().expect("lock").clone();
    assert!(
        all.len() > before.len(),
        "the writer went on during the backup"
    );
    // The file is secret: owner only; the forgotten person is not in it.
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backup file mode {mode:o}");
    let bytes = std::fs::read(&file).expect("backup");
    assert!(
        !contains(&bytes, b"Theodora"),
        "an erased person is in the backup"
    );
    assert!(!usb.path().join("elm-street.part").exists());
    // Hub B holds every write A acknowledged; then A dies without a word.
    wait_for("hub B to hold every acknowledged write", T, || {
        let ids = b.item_ids();
        all.iter().all(|id| ids.contains(id)).then_some(())
    });
    let a_status = a.status();
    a.kill();

    // Damaged copies are refused by name, and make nothing.
    let refused = |name: &str, content: &[u8], want: &str| {
        let f = usb.path().join(name);
        std::fs::write(&f, content).expect("write");
        let dir = usb.path().join(format!("{name}.dir"));
        let (ok, _, err) = cli_at(&dir, &["restore", f.to_str().expect("utf-8")]);
        assert!(!ok && err.contains(want), "{name}: {err}");
        assert!(
            !dir.exists(),
            "{name}: a refused restore made {}",
            dir.display()
        );
    };
    refused("cut.backup", &bytes[..bytes.len() / 2], "cut short after");
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    refused("flipped.backup", &flipped, "is damaged at byte");
    refused("not.backup", b"hello, world", "not an aidmesh backup");
    // A's own directory is not empty: never overwritten.
    let (ok, _, err) = cli_at(a.dir(), &["restore", file.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("not empty"), "{err}");

    // Restored on a new laptop: the same hub, with every write it acknowledged before
    // the backup, before it meets anyone.
    let fresh = tempfile::tempdir().expect("temp dir");
    let (ok, out, err) = cli_at(fresh.path(), &["restore", file.to_str().expect("utf-8")]);
    assert!(ok, "restore failed: {err}");
    assert!(
        out.contains(a_status["peer_id"].as_str().expect("peer id"))
            && out.contains("the peers file"),
        "{out}"
    );
    // The peers file came back (it names B): moved aside so the restored hub starts alone.
    let peers = std::fs::read_to_string(fresh.path().join("peers")).expect("peers file");
    assert!(
        peers.contains(b.status()["peer_id"].as_str().expect("id")),
        "{peers}"
    );
    std::fs::rename(fresh.path().join("peers"), usb.path().join("peers")).expect("move");
    let restored = Node::open("hub-a-restored", fresh, Opts::default());
    let s = restored.status();
    assert_eq!(s["peer_id"], a_status["peer_id"], "the same hub");
    assert_eq!(s["author"], a_status["author"]);
    assert_eq!(s["community"], a_status["community"]);
    let ids = restored.item_ids();
    let missing: Vec<&String> = before.iter().filter(|id| !ids.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not restored: {missing:?}"
    );
    let names: Vec<String> = restored.get("/api/v1/people")["people"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, ["Ada Okafor"]);

    // It meets the mesh as the same hub: B gives back what came after the backup, and
    // what it posts now is A's.
    restored.connect(&b.addr());
    wait_for(
        "the restored hub to hold every acknowledged write",
        T,
        || {
            let ids = restored.item_ids();
            all.iter().all(|id| ids.contains(id)).then_some(())
        },
    );
    let new = restored.need("Blankets for the school");
    wait_for("hub B to get the restored hub's post", T, || {
        b.item_ids().contains(&new).then_some(())
    });
    let item = b.get(&format!("/api/v1/items/{new}"));
    let short = item["author"].as_str().expect("author");
    assert!(
        a_status["author"]
            .as_str()
            .expect("author")
            .starts_with(short),
        "posted as hub A: {item}"
    );

    // Welfare past retention does not come back: restored with a one-second retention,
    // Ada's record is erased, down to the database's files.
    // Her record must be older than that second first: on a quiet machine the test
    // gets here sooner (the wait is for time to pass, not for an event).
    if let Some(rest) = Duration::from_millis(1500).checked_sub(ada_registered.elapsed()) {
        std::thread::sleep(rest);
    }
    let brief = tempfile::tempdir().expect("temp dir");
    let (ok, out, err) = cli_at(
        brief.path(),
        &[
            "restore",
            file.to_str().expect("utf-8"),
            "--welfare-retention",
            "1s",
        ],
    );
    assert!(ok, "restore failed: {err}");
    assert!(
        out.contains("1 welfare records past retention erased"),
        "{out}"
    );
    for (path, content) in files_under(brief.path()) {
        assert!(
            !contains(&content, b"Ada Okafor") && !contains(&content, b"Mill Lane"),
            "an expired welfare record is in {}",
            path.display()
        );
    }
}
