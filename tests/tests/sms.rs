//! The SMS gateway (issue 26) with the real gammu-smsd and Gammu's dummy phone: a
//! test "receives" a text by saving it in the dummy phone's inbox (`gammu savesms`),
//! the daemon files it in its inbox folder, the node posts it and queues the reply in
//! the daemon's outbox, and what the daemon transmitted lands in its `sentsmspath`.
//!
//! Needs `gammu` and `gammu-smsd` (Debian packages of those names; tests/run.sh
//! installs them), hence `#[ignore]`: run with `-- --include-ignored`.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use aidmesh_tests::{wait_for, Node, Opts};
use serde_json::{json, Value};

/// A running gammu-smsd with the dummy phone, files backend, in a temp directory.
struct Smsd {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Smsd {
    fn start(name: &str) -> Smsd {
        for tool in ["gammu", "gammu-smsd", "gammu-smsd-monitor"] {
            let ok = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                ok,
                "{tool} is not installed: apt-get install -y gammu gammu-smsd (tests/run.sh does)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("aidmesh-smsd-{name}-"))
            .tempdir()
            .unwrap();
        let d = dir.path().display();
        for f in ["phone", "inbox", "outbox", "sent", "error"] {
            std::fs::create_dir(dir.path().join(f)).unwrap();
        }
        std::fs::write(
            dir.path().join("smsdrc"),
            format!(
                "[gammu]\nmodel = dummy\nconnection = none\ndevice = {d}/phone/\n\n\
                 [smsd]\nservice = files\nlogfile = {d}/smsd.log\ninboxpath = {d}/inbox/\n\
                 outboxpath = {d}/outbox/\nsentsmspath = {d}/sent/\nerrorsmspath = {d}/error/\n\
                 inboxformat = unicode\ncheckSecurity = 0\ncommtimeout = 1\nreceivefrequency = 1\n\
                 statusfrequency = 0\nloopsleep = 1\n"
            ),
        )
        .unwrap();
        let mut s = Smsd { dir, child: None };
        s.run();
        s
    }

    fn run(&mut self) {
        // No locale, as under systemd: the node's outbox files must not depend on one.
        let child = Command::new("gammu-smsd")
            .env_clear()
            .arg("-c")
            .arg(self.config())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start gammu-smsd");
        self.child = Some(child);
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("smsdrc")
    }

    fn folder(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// The phone receives a text (the daemon files it in its inbox within a second or
    /// two).
    fn receive(&self, from: &str, text: &str) {
        let out = Command::new("gammu")
            .arg("-c")
            .arg(self.config())
            .args([
                "savesms", "TEXT", "-folder", "1", "-sender", from, "-text", text,
            ])
            .output()
            .expect("run gammu savesms");
        assert!(
            out.status.success(),
            "gammu savesms failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The phone receives a long text, which it stores in parts of one segment each
    /// (the daemon files each part as a file of its own).
    fn receive_long(&self, from: &str, text: &str) {
        let out = Command::new("gammu")
            .arg("-c")
            .arg(self.config())
            .args([
                "savesms", "TEXT", "-folder", "1", "-sender", from, "-len", "1000", "-text", text,
            ])
            .output()
            .expect("run gammu savesms");
        assert!(
            out.status.success(),
            "gammu savesms failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Texts the daemon transmitted: (recipient, text), in file-name order.
    fn sent(&self) -> Vec<(String, String)> {
        let mut names: Vec<String> = std::fs::read_dir(self.folder("sent"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let to = n.split('_').nth(3).unwrap_or("").to_string();
                let bytes = std::fs::read(self.folder("sent").join(&n)).unwrap();
                (to, aidmesh_node::sms::decode(&bytes))
            })
            .collect()
    }

    fn sent_to(&self, number: &str) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|(to, _)| to == number)
            .map(|(_, t)| t)
            .collect()
    }

    /// Waits until `n` texts went to `number`; returns them.
    fn wait_sent_to(&self, number: &str, n: usize, timeout: Duration) -> Vec<String> {
        wait_for(
            &format!("{n} texts to {number} in the daemon's sent folder"),
            timeout,
            || {
                let s = self.sent_to(number);
                (s.len() >= n).then_some(s)
            },
        )
    }

    /// Inbox files not yet handled by the node.
    fn inbox_waiting(&self) -> usize {
        std::fs::read_dir(self.folder("inbox"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("IN"))
            .count()
    }

    /// Files a text in the inbox directly, as the daemon names it (for bursts larger
    /// than `gammu savesms` can make quickly, and for kinds the dummy phone cannot
    /// receive: binary, empty).
    fn file_directly(&self, serial: usize, from: &str, ext: &str, bytes: &[u8]) {
        let name = format!("IN20261207_120000_{serial:02}_{from}_00.{ext}");
        let tmp = self.dir.path().join(format!("tmp-{serial}-{ext}"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, self.folder("inbox").join(name)).unwrap();
    }
}

impl Drop for Smsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unicode(text: &str) -> Vec<u8> {
    [0xfe, 0xff]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect()
}

fn gateway(name: &str, smsd: &Smsd, more: &[&str], peers: Vec<String>) -> Node {
    let mut args = vec![
        "--sms-gateway".to_string(),
        smsd.config().display().to_string(),
    ];
    args.extend(more.iter().map(|s| s.to_string()));
    Node::start(
        name,
        Opts {
            args,
            peers,
            ..Opts::default()
        },
    )
}

/// Items whose contact says they came by text with `reference`.
fn items_with_ref(node: &Node, reference: &str) -> Vec<Value> {
    node.get("/api/v1/items?status=all&limit=500")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["contact"].as_str().unwrap_or("") == format!("by SMS, ref {reference}"))
        .cloned()
        .collect()
}

fn reference_in(reply: &str) -> String {
    let i = reply
        .find("ref ")
        .unwrap_or_else(|| panic!("no ref in {reply:?}"));
    reply[i + 4..i + 10].to_string()
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn a_texted_need_reaches_a_second_hub_and_the_sender_is_told_once_per_change() {
    let smsd = Smsd::start("a");
    let a = gateway("sms-a", &smsd, &[], vec![]);
    let b = Node::start(
        "sms-b",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    a.post("/api/v1/hubs", &json!({ "name": "Elm St hub" }));
    b.post("/api/v1/hubs", &json!({ "name": "Oak Rd hub" }));
    // A hub without a gateway says so.
    assert_eq!(b.get("/api/v1/sms/status")["gateway"], json!(false));

    let start = Instant::now();
    smsd.receive("+15551234", "NEED water 4 people 12 Mill Lane");
    let item = wait_for(
        "the texted need on the second hub",
        Duration::from_secs(20),
        || {
            b.get("/api/v1/needs?q=water")["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["title"] == "water 4 people")
                .cloned()
        },
    );
    let on_b = start.elapsed();
    assert_eq!(item["place"]["label"], "12 Mill Lane");
    assert_eq!(item["category"], "water");
    let contact = item["contact"].as_str().unwrap();
    assert!(contact.starts_with("by SMS, ref "), "{contact}");
    // The number is on no board, in no event.
    for node in [&a, &b] {
        let board = node.get("/api/v1/items?status=all").to_string();
        assert!(
            !board.contains("5551234"),
            "{}: the number is on the board: {board}",
            node.name
        );
    }
    let got = smsd.wait_sent_to("+15551234", 1, Duration::from_secs(20));
    let reference = reference_in(&got[0]);
    assert_eq!(
        got[0],
        format!("Got it: need water 4 people for 12 Mill Lane, ref {reference}, Elm St hub.")
    );
    assert_eq!(contact, format!("by SMS, ref {reference}"));
    eprintln!("texted need on the second hub after {on_b:?} (from gammu savesms; includes the daemon's receive poll)");

    // Claimed at the other hub: the gateway texts the sender.
    let id = item["id"].as_str().unwrap();
    b.post(
        &format!("/api/v1/items/{id}/status"),
        &json!({ "status": "claimed", "by": "Sam" }),
    );
    let texts = smsd.wait_sent_to("+15551234", 2, Duration::from_secs(20));
    assert_eq!(
        texts[1],
        format!("Sam from Oak Rd hub is bringing water 4 people, ref {reference}.")
    );
    b.post(
        &format!("/api/v1/items/{id}/status"),
        &json!({ "status": "fulfilled" }),
    );
    let texts = smsd.wait_sent_to("+15551234", 3, Duration::from_secs(20));
    assert!(
        texts[2].starts_with("Marked done: water 4 people"),
        "{}",
        texts[2]
    );

    // Once per change, also across a restart: another text is the marker that the
    // gateway has been round its loop since.
    let mut a = a;
    a.kill();
    a.restart();
    smsd.receive("+15550002", "OFFER generator Elm St");
    smsd.wait_sent_to("+15550002", 1, Duration::from_secs(20));
    assert_eq!(smsd.sent_to("+15551234").len(), 3, "{:?}", smsd.sent());
    let status = a.get("/api/v1/sms/status");
    assert_eq!(status["daemon"]["seen"], json!(true), "{status}");
    assert_eq!(status["today"]["in"], json!(2), "{status}");
    assert_eq!(status["review"], json!(0), "{status}");
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn unreadable_texts_go_to_review_and_one_becomes_a_need() {
    let smsd = Smsd::start("review");
    let a = gateway("sms-review", &smsd, &[], vec![]);
    smsd.receive("+15557777", "is anyone there? water needed at 5 Elm St");
    smsd.file_directly(1, "+15557778", "bin", &[0x00, 0x01, 0xff, 0x80]);
    smsd.file_directly(2, "+15557779", "txt", &unicode(""));
    smsd.file_directly(3, "Vodafone", "txt", &unicode("Your credit is low"));
    let list = wait_for("4 texts in review", Duration::from_secs(20), || {
        let v = a.get("/api/v1/sms/review");
        let l = v["texts"].as_array().unwrap().clone();
        (l.len() >= 4).then_some(l)
    });
    // A text is kept for review first, then moved out of the inbox (so a crash between
    // the two loses nothing): the move may come a moment after the review list shows it.
    wait_for(
        "every text moved out of the inbox",
        Duration::from_secs(20),
        || (smsd.inbox_waiting() == 0).then_some(()),
    );
    let reasons: Vec<&str> = list.iter().map(|t| t["reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.contains("binary")), "{reasons:?}");
    assert!(reasons.contains(&"empty text"), "{reasons:?}");
    let unclear = list
        .iter()
        .find(|t| t["phone"] == "+15557777")
        .expect("the unclear text in review");
    assert_eq!(unclear["suggestion"]["category"], "water", "{unclear}");
    // The CLI shows it with the one action that accepts it.
    let id = unclear["id"].as_str().unwrap();
    let out = aidmesh_tests::aidmesh_command()
        .arg("--data-dir")
        .arg(a.dir())
        .args(["sms", "review"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&format!("aidmesh sms accept {id}")),
        "{shown}"
    );
    // The panel for the hub computer and PIN holders is served, with the page's CSP.
    for (path, has) in [("/sms", "/sms.js"), ("/sms.js", "/api/v1/sms/review")] {
        let mut r = aidmesh_tests::http()
            .get(format!("{}{path}", a.api_url()))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let csp = r
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            csp.as_deref(),
            Some("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        );
        assert!(
            r.body_mut().read_to_string().unwrap().contains(has),
            "{path}"
        );
    }
    // A bad action says what is valid; nothing changes.
    let (code, v) = a.post_raw(
        &format!("/api/v1/sms/review/{id}"),
        &json!({ "action": "burn" }),
    );
    assert_eq!(code, 400, "{v}");
    let out = aidmesh_tests::aidmesh_command()
        .arg("--data-dir")
        .arg(a.dir())
        .args([
            "sms",
            "accept",
            id,
            "--title",
            "Drinking water",
            "--where",
            "5 Elm St",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = a.get("/api/v1/needs?q=drinking")["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["place"]["label"], "5 Elm St");
    let reply = smsd.wait_sent_to("+15557777", 1, Duration::from_secs(20));
    assert!(
        reply[0].starts_with("Got it: need Drinking water for 5 Elm St"),
        "{reply:?}"
    );
    // Dismissed: off the list. No reply goes to a name that is not a number.
    let vodafone = list.iter().find(|t| t["phone"] == "Vodafone").unwrap();
    a.post(
        &format!("/api/v1/sms/review/{}", vodafone["id"].as_str().unwrap()),
        &json!({ "action": "dismiss" }),
    );
    assert_eq!(
        a.get("/api/v1/sms/review")["texts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(a.get("/api/v1/sms/status")["review"], json!(2));
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn a_crash_between_the_event_and_the_inbox_move_loses_nothing_and_duplicates_nothing() {
    let smsd = Smsd::start("crash");
    let abort = smsd.dir.path().join("abort-after-post");
    std::fs::write(&abort, b"").unwrap();
    let mut a = Node::start(
        "sms-crash",
        Opts {
            args: vec!["--sms-gateway".into(), smsd.config().display().to_string()],
            env: vec![(
                aidmesh_node::sms::ABORT_AFTER_POST.into(),
                abort.display().to_string(),
            )],
            ..Opts::default()
        },
    );
    smsd.receive("+15553333", "NEED insulin, 3 River Rd");
    wait_for(
        "the node to abort after the event",
        Duration::from_secs(20),
        || (!a.alive()).then_some(()),
    );
    assert_eq!(smsd.inbox_waiting(), 1, "the text is still in the inbox");
    std::fs::remove_file(&abort).unwrap();
    a.kill();
    a.restart();
    let reply = smsd.wait_sent_to("+15553333", 1, Duration::from_secs(20));
    let reference = reference_in(&reply[0]);
    let items = items_with_ref(&a, &reference);
    assert_eq!(items.len(), 1, "exactly one need: {items:?}");
    assert_eq!(items[0]["title"], "insulin");
    wait_for("the inbox emptied", Duration::from_secs(10), || {
        (smsd.inbox_waiting() == 0).then_some(())
    });
    // A marker text: the gateway went round again; still one reply, one need.
    smsd.receive("+15550003", "OFFER blankets, church hall");
    smsd.wait_sent_to("+15550003", 1, Duration::from_secs(20));
    assert_eq!(smsd.sent_to("+15553333").len(), 1);
    assert_eq!(items_with_ref(&a, &reference).len(), 1);
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn a_burst_is_all_posted_and_one_number_past_its_share_goes_to_review() {
    let smsd = Smsd::start("burst");
    let a = gateway("sms-burst", &smsd, &["--sms-daily-cap", "250"], vec![]);
    const N: usize = 300;
    let start = Instant::now();
    for i in 0..N {
        let from = format!("+1555{i:07}");
        smsd.file_directly(
            i % 100,
            &from,
            "txt",
            &unicode(&format!("NEED water bottle {i}, {i} Mill Lane")),
        );
    }
    // One number, 8 texts in a minute: 5 posted, 3 to review (default share 5).
    for i in 0..8 {
        smsd.file_directly(
            i,
            "+15559990000",
            "txt",
            &unicode(&format!("NEED sandbags {i}, Elm St")),
        );
    }
    let posted = wait_for(
        "every burst text on the board",
        Duration::from_secs(60),
        || {
            let n = a.get("/api/v1/needs?limit=1&status=all")["total"]
                .as_u64()
                .unwrap_or(0);
            (n as usize >= N + 5).then_some(n)
        },
    );
    let took = start.elapsed();
    eprintln!("{N} + 8 texts filed at once: {posted} on the board after {took:?}");
    assert_eq!(posted as usize, N + 5);
    let review = wait_for(
        "3 throttled texts in review",
        Duration::from_secs(10),
        || {
            let l = a.get("/api/v1/sms/review")["texts"]
                .as_array()
                .unwrap()
                .clone();
            (l.len() >= 3).then_some(l)
        },
    );
    assert_eq!(review.len(), 3);
    assert!(
        review
            .iter()
            .all(|t| t["reason"].as_str().unwrap().contains("texts a minute")),
        "{review:?}"
    );
    assert!(review.iter().all(|t| t["suggestion"]["kind"] == "need"));
    // The cap: 250 replies today, the rest wait in order.
    let status = wait_for("the daily cap reached", Duration::from_secs(30), || {
        let s = a.get("/api/v1/sms/status");
        (s["cap_reached"] == json!(true)).then_some(s)
    });
    assert_eq!(status["today"]["out"], json!(250), "{status}");
    assert_eq!(status["waiting"], json!(N + 5 - 250), "{status}");
    wait_for("the inbox emptied", Duration::from_secs(20), || {
        (smsd.inbox_waiting() == 0).then_some(())
    });
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn two_gateways_each_reply_only_to_their_own_senders_exactly_once() {
    let sa = Smsd::start("two-a");
    let sb = Smsd::start("two-b");
    let a = gateway("sms-two-a", &sa, &[], vec![]);
    let b = gateway("sms-two-b", &sb, &[], vec![a.addr()]);
    sa.receive("+15551111", "NEED torch, 1 Elm St");
    sb.receive("+15552222", "NEED radio, 2 Oak Rd");
    let ra = reference_in(&sa.wait_sent_to("+15551111", 1, Duration::from_secs(20))[0]);
    let rb = reference_in(&sb.wait_sent_to("+15552222", 1, Duration::from_secs(20))[0]);
    let ia = wait_for("A's texted need on B", Duration::from_secs(20), || {
        items_with_ref(&b, &ra).pop()
    });
    let ib = wait_for("B's texted need on A", Duration::from_secs(20), || {
        items_with_ref(&a, &rb).pop()
    });
    // Each claimed at the other hub.
    b.post(
        &format!("/api/v1/items/{}/status", ia["id"].as_str().unwrap()),
        &json!({ "status": "claimed" }),
    );
    a.post(
        &format!("/api/v1/items/{}/status", ib["id"].as_str().unwrap()),
        &json!({ "status": "claimed" }),
    );
    sa.wait_sent_to("+15551111", 2, Duration::from_secs(20));
    sb.wait_sent_to("+15552222", 2, Duration::from_secs(20));
    // Markers through both gateways, then: no text went out twice or from the wrong hub.
    sa.receive("+15550004", "OFFER rope, Elm St");
    sb.receive("+15550005", "OFFER tarp, Oak Rd");
    sa.wait_sent_to("+15550004", 1, Duration::from_secs(20));
    sb.wait_sent_to("+15550005", 1, Duration::from_secs(20));
    assert_eq!(sa.sent_to("+15551111").len(), 2);
    assert_eq!(sb.sent_to("+15552222").len(), 2);
    assert!(sa.sent_to("+15552222").is_empty() && sb.sent_to("+15551111").is_empty());
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn welfare_round_by_text_ok_and_help_from_registered_numbers() {
    let smsd = Smsd::start("round");
    let a = gateway("sms-round", &smsd, &[], vec![]);
    let ada = a.post(
        "/api/v1/people",
        &json!({ "name": "Ada", "place": "14 River Rd, 3rd floor", "every": "12h", "phone": "+1 555 010 1001" }),
    );
    a.post(
        "/api/v1/people",
        &json!({ "name": "Bo", "place": "9 Elm St", "every": "12h", "phone": "555-010-1002" }),
    );
    let round = a.post("/api/v1/sms/round", &json!({}));
    assert_eq!(round["queued"], json!(2), "{round}");
    let q = smsd.wait_sent_to("+15550101001", 1, Duration::from_secs(20));
    assert!(q[0].contains("reply OK"), "{q:?}");
    // The round is texted once a day each.
    assert_eq!(a.post("/api/v1/sms/round", &json!({}))["queued"], json!(0));
    smsd.receive("+15550101001", "ok");
    smsd.receive("5550101002", "HELP no power for oxygen");
    let id = ada["id"].as_str().unwrap();
    wait_for(
        "Ada checked in safe by text",
        Duration::from_secs(20),
        || {
            let p = a.get(&format!("/api/v1/people/{id}"));
            (p["standing"] == "ok").then_some(())
        },
    );
    let bo = wait_for("Bo's needs-help check-in", Duration::from_secs(20), || {
        let p = a.get("/api/v1/people/Bo");
        (p["standing"] == "needs-help").then_some(p)
    });
    assert_eq!(bo["latest"]["by"], "self");
    // The linked need is at the street, never the door.
    let needs = a.get("/api/v1/needs?status=all")["items"]
        .as_array()
        .unwrap()
        .clone();
    let linked = needs
        .iter()
        .find(|n| n["urgency"] == "high")
        .expect("linked need");
    assert_eq!(linked["place"]["label"], "Elm St");
    assert!(!linked.to_string().contains("oxygen"), "{linked}");
    smsd.wait_sent_to("5550101002", 1, Duration::from_secs(20));
}

#[test]
fn an_unusable_daemon_config_is_refused_at_start_saying_which() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("smsdrc");
    std::fs::write(&conf, "[smsd]\nservice = sql\n").unwrap();
    for (path, says) in [
        (dir.path().join("missing"), "cannot read"),
        (conf.clone(), "Service = sql"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = aidmesh_tests::aidmesh_command()
            .arg("--data-dir")
            .arg(data.path())
            .args([
                "up",
                "--api",
                "127.0.0.1:0",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-mdns",
                "--no-beacon",
                "--sms-gateway",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {}", path.display());
        assert!(err.contains(says) && err.contains("--sms-gateway"), "{err}");
    }
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn a_long_text_in_parts_is_one_need_and_stop_ends_the_texts() {
    let smsd = Smsd::start("long");
    let a = gateway("sms-long", &smsd, &[], vec![]);
    let title = "water for the families in the flats above the bakery, no supply since the river rose on Monday";
    let title = title.replace(',', "");
    let place = "12 Mill Lane, the blue door beside the bakery, ring twice and wait for an answer";
    let text = format!("NEED {title}, {place}");
    assert!(
        text.chars().count() > 160,
        "a text of more than one segment"
    );
    smsd.receive_long("+15556666", &text);
    smsd.wait_sent_to("+15556666", 1, Duration::from_secs(20));
    let items = a.get("/api/v1/needs?q=bakery")["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0]["title"],
        title.as_str(),
        "the parts joined without a seam"
    );
    assert_eq!(items[0]["place"]["label"], place);
    // STOP: no more texts to that number, even when its need is claimed.
    smsd.receive("+15556666", "STOP");
    wait_for("the STOP handled", Duration::from_secs(20), || {
        (a.get("/api/v1/sms/status")["today"]["in"] == json!(2) && smsd.inbox_waiting() == 0)
            .then_some(())
    });
    let id = items[0]["id"].as_str().unwrap();
    a.post(
        &format!("/api/v1/items/{id}/status"),
        &json!({ "status": "claimed", "by": "Sam" }),
    );
    smsd.receive("+15550006", "OFFER rope, Elm St");
    smsd.wait_sent_to("+15550006", 1, Duration::from_secs(20));
    assert_eq!(smsd.sent_to("+15556666").len(), 1, "{:?}", smsd.sent());
}

#[test]
#[ignore = "needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn kill_9_during_a_burst_loses_no_text_and_posts_and_replies_each_once() {
    let smsd = Smsd::start("kill9");
    let mut a = gateway("sms-kill9", &smsd, &[], vec![]);
    const N: usize = 200;
    for i in 0..N {
        smsd.file_directly(
            i % 100,
            &format!("+1666{i:07}"),
            "txt",
            &unicode(&format!("NEED kill test {i}, {i} Elm St")),
        );
    }
    let total = |a: &Node| {
        a.get("/api/v1/needs?limit=1&status=all")["total"]
            .as_u64()
            .unwrap_or(0) as usize
    };
    wait_for(
        "a quarter of the burst on the board",
        Duration::from_secs(30),
        || (total(&a) >= N / 4).then_some(()),
    );
    a.kill();
    let waiting_at_kill = smsd.inbox_waiting();
    eprintln!("killed with {waiting_at_kill} texts in the inbox");
    a.restart();
    wait_for(
        "the whole burst on the board",
        Duration::from_secs(60),
        || (total(&a) >= N).then_some(()),
    );
    // Replies handed to the daemon (in its outbox, or sent already): one per number.
    let handed = || {
        let mut per_number = std::collections::HashMap::new();
        for f in ["outbox", "sent"] {
            for e in std::fs::read_dir(smsd.folder(f)).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(to) = name.strip_prefix("OUT").and_then(|n| n.split('_').nth(3)) {
                    *per_number.entry(to.to_string()).or_insert(0usize) += 1;
                }
            }
        }
        per_number
    };
    wait_for(
        "a reply to every number handed to the daemon",
        Duration::from_secs(30),
        || (handed().len() >= N).then_some(()),
    );
    // A marker: the gateway went round again after the last reply.
    smsd.file_directly(0, "+15550007", "txt", &unicode("OFFER rope, Elm St"));
    wait_for("the marker's reply", Duration::from_secs(20), || {
        handed().contains_key("+15550007").then_some(())
    });
    assert_eq!(
        total(&a),
        N,
        "no text posted twice (killed with {waiting_at_kill} texts in the inbox)"
    );
    let twice: Vec<_> = handed().into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "numbers texted more than once: {twice:?}");
    // The marker is moved out of the inbox just after its reply is written.
    wait_for("the inbox emptied", Duration::from_secs(20), || {
        (smsd.inbox_waiting() == 0).then_some(())
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The figures of docs/benchmarks.md ("SMS gateway"): a texted need on every hub of a
/// 3-hub mesh after the daemon files it, the reply in the daemon's outbox (or already
/// sent) after that, and 1,000 texts from 1,000 numbers filed at once. Texts are filed
/// in the inbox as the daemon names them, so the clock starts when the daemon would
/// have filed them; the daemon runs and transmits the replies.
#[test]
#[ignore = "benchmark; needs gammu and gammu-smsd (tests/run.sh installs them)"]
fn bench_sms_gateway() {
    let smsd = Smsd::start("bench");
    let a = gateway("sms-bench-a", &smsd, &[], vec![]);
    let b = Node::start(
        "sms-bench-b",
        Opts {
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    let c = Node::start(
        "sms-bench-c",
        Opts {
            peers: vec![b.addr()],
            ..Opts::default()
        },
    );
    aidmesh_tests::wait_converged(&[&a, &b, &c], 0, Duration::from_secs(20));
    let texts: usize = std::env::var("AIDMESH_BENCH_TEXTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let (mut mesh, mut reply) = (Vec::new(), Vec::new());
    for i in 0..texts {
        let word = format!("bench{i:04}x");
        let from = format!("+1444{i:07}");
        let start = Instant::now();
        smsd.file_directly(
            i % 100,
            &from,
            "txt",
            &unicode(&format!("NEED {word} water, {i} Mill Lane")),
        );
        let mut seen = [false; 3];
        let mut replied: Option<Duration> = None;
        let mut on_all: Option<Duration> = None;
        while on_all.is_none() || replied.is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "text {i} not through after 30 s: hubs {seen:?}, reply {replied:?}"
            );
            for (k, n) in [&a, &b, &c].iter().enumerate() {
                if !seen[k] {
                    seen[k] = n.get(&format!("/api/v1/needs?q={word}&limit=1"))["total"].as_u64()
                        == Some(1);
                }
            }
            if on_all.is_none() && seen.iter().all(|s| *s) {
                on_all = Some(start.elapsed());
            }
            if replied.is_none() {
                let there = ["outbox", "sent"].iter().any(|f| {
                    std::fs::read_dir(smsd.folder(f))
                        .unwrap()
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().contains(&from))
                });
                if there {
                    replied = Some(start.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        mesh.push(on_all.unwrap());
        reply.push(replied.unwrap());
    }
    mesh.sort();
    reply.sort();
    eprintln!(
        "BENCH sms: {texts} texts one at a time: on all 3 hubs p50 {:?} p99 {:?} max {:?}; reply in the outbox p50 {:?} p99 {:?} max {:?}",
        percentile(&mesh, 0.5), percentile(&mesh, 0.99), mesh[texts - 1],
        percentile(&reply, 0.5), percentile(&reply, 0.99), reply[texts - 1]
    );
    // 1,000 texts from 1,000 numbers filed at once.
    let before = a.get("/api/v1/needs?limit=1&status=all")["total"]
        .as_u64()
        .unwrap();
    let start = Instant::now();
    for i in 0..1000 {
        smsd.file_directly(
            i % 100,
            &format!("+1333{i:07}"),
            "txt",
            &unicode(&format!("NEED burst water {i}, {i} Elm St")),
        );
    }
    let filed = start.elapsed();
    wait_for(
        "1,000 texts on the gateway's board",
        Duration::from_secs(120),
        || {
            let n = a.get("/api/v1/needs?limit=1&status=all")["total"]
                .as_u64()
                .unwrap();
            (n >= before + 1000).then_some(())
        },
    );
    let on_a = start.elapsed();
    wait_for(
        "1,000 texts on the third hub",
        Duration::from_secs(120),
        || {
            let n = c.get("/api/v1/needs?limit=1&status=all")["total"]
                .as_u64()
                .unwrap();
            (n >= before + 1000).then_some(())
        },
    );
    let on_c = start.elapsed();
    eprintln!("BENCH sms: 1,000 texts filed in {filed:?}: all on the gateway's board after {on_a:?}, on the third hub after {on_c:?}");
    assert!(on_a < Duration::from_secs(30), "{on_a:?}");
}
