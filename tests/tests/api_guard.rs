//! Who may talk to a real node's HTTP API, tried as an attacker would, with raw
//! sockets: a DNS-rebinding page, a cross-site form, a stranger on the hub's Wi-Fi
//! (reached through this machine's own non-loopback address), idle and slow sockets
//! by the hundred. Each test fails on a node without the defence (docs/security.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aidmesh_tests::{binary, wait_for, Node, Opts};
use serde_json::{json, Value};

/// Bound on every wait.
const T: Duration = Duration::from_secs(20);
/// The PIN of the guarded nodes.
const PIN: &str = "246810";

/// An address of this machine that is not loopback: requests from it look, to the
/// node, like a phone on the hub's Wi-Fi.
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
    // No default route: any global address of an interface will do.
    let out = Command::new("ip")
        .args(["-o", "addr", "show", "scope", "global"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| !w.starts_with("inet")).nth(1))
        .filter_map(|a| a.split('/').next()?.parse::<IpAddr>().ok())
        .find(|ip| !ip.is_loopback())
        .unwrap_or_else(|| panic!("this test needs a non-loopback address on this machine; `ip addr` shows none:\n{out}"))
}

/// The port of a node's API.
fn port(n: &Node) -> u16 {
    n.api_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in the API URL")
}

/// An answer read from a raw socket.
#[derive(Debug)]
struct Answer {
    code: u16,
    body: Value,
}

/// Sends one HTTP/1.1 request by hand, so every header (Host, Origin, ...) is exactly
/// what a browser or an attacker would send.
fn raw(to: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect_timeout(&to, T).unwrap_or_else(|e| panic!("connect {to}: {e}"));
    s.set_read_timeout(Some(T)).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req += &format!("Host: {to}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{method} {path} to {to}: reading the answer: {e}"));
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {text:?}"));
    let body_text = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Answer {
        code,
        body: serde_json::from_str(body_text).unwrap_or(Value::Null),
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn loopback(n: &Node) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port(n)))
}

fn register(n: &Node, name: &str) -> String {
    let v = n.post(
        "/api/v1/people",
        &json!({ "name": name, "place": "14 River Rd, 3rd floor", "every": "12h" }),
    );
    v["id"].as_str().expect("id").to_string()
}

/// A node whose API listens on every address, with the test PIN.
fn hub(name: &str) -> Node {
    Node::start(
        name,
        Opts {
            api: Some("0.0.0.0:0".into()),
            args: vec!["--volunteer-pin".into(), PIN.into()],
            ..Opts::default()
        },
    )
}

#[test]
fn a_dns_rebinding_page_is_refused_and_own_names_are_served() {
    let n = Node::start("rebind", Opts::default());
    register(&n, "Ada Lovelace");
    let to = loopback(&n);
    let p = port(&n);
    // attacker.example resolves to 127.0.0.1: the browser sends its own name.
    for host in [
        format!("attacker.example:{p}"),
        format!("127.0.0.1.nip.io:{p}"),
    ] {
        for path in ["/api/v1/people", "/", "/api/v1/needs"] {
            let a = raw(to, "GET", path, &[("Host", &host)], "");
            assert_eq!(a.code, 403, "GET {path} with Host {host}: {a:?}");
            assert_eq!(a.body["error"], "unknown_host", "{a:?}");
        }
    }
    for host in [
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
        format!("[::1]:{p}"),
    ] {
        let a = raw(to, "GET", "/api/v1/people", &[("Host", &host)], "");
        assert_eq!(a.code, 200, "Host {host}: {a:?}");
        assert_eq!(a.body["people"][0]["name"], "Ada Lovelace");
    }
}

#[test]
fn a_cross_site_form_cannot_write_and_forget_needs_a_confirmation() {
    let n = Node::start("csrf", Opts::default());
    let id = register(&n, "Ada Lovelace");
    let to = loopback(&n);
    let forget = format!("/api/v1/people/{}/forget", &id[..8]);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let evil = ("Origin", "http://evil.example");
    // What a hostile page's <form method=post> sends, with and without the headers
    // a modern browser adds.
    let tries: [(&[(&str, &str)], u16); 5] = [
        (&[form, evil, ("Sec-Fetch-Site", "cross-site")], 403),
        (&[form, evil], 403),
        (&[form], 415),
        (
            &[
                ("Content-Type", "text/plain"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
        (&[JSON, ("Sec-Fetch-Site", "same-site")], 403),
    ];
    for (headers, want) in tries {
        let a = raw(to, "POST", &forget, headers, "confirm=yes");
        assert_eq!(a.code, want, "{headers:?}: {a:?}");
        let a = raw(
            to,
            "POST",
            "/api/v1/needs",
            headers,
            r#"{"title":"x","category":"water"}"#,
        );
        assert_eq!(a.code, want, "POST /needs {headers:?}: {a:?}");
    }
    assert_eq!(n.get("/api/v1/people")["people"][0]["id"], id.as_str());
    assert!(n.item_ids().is_empty(), "no need was posted");
    // The node's own page (same origin) may write.
    let own = format!("http://{to}");
    let page = [JSON, ("Origin", &own), ("Sec-Fetch-Site", "same-origin")];
    let a = raw(
        to,
        "POST",
        "/api/v1/needs",
        &page,
        r#"{"title":"water","category":"water"}"#,
    );
    assert_eq!(a.code, 201, "{a:?}");
    // Forgetting needs the person's full id in the body.
    for body in [
        "{}",
        r#"{"confirm":"yes"}"#,
        &format!(r#"{{"confirm":"{}"}}"#, &id[..8]),
    ] {
        let a = raw(to, "POST", &forget, &page, body);
        assert_eq!(a.code, 400, "{body}: {a:?}");
        assert!(
            a.body["detail"].as_str().unwrap_or("").contains("confirm"),
            "{a:?}"
        );
    }
    assert_eq!(
        n.get("/api/v1/people")["people"].as_array().map(Vec::len),
        Some(1)
    );
    let a = raw(
        to,
        "POST",
        &forget,
        &page,
        &format!(r#"{{"confirm":"{id}"}}"#),
    );
    assert_eq!(a.code, 200, "{a:?}");
    assert_eq!(n.get("/api/v1/people")["people"], json!([]));
}

#[test]
fn the_page_on_a_phone_at_the_hub_still_works_but_cannot_add_peers_without_the_pin() {
    let n = hub("phone");
    let phone = SocketAddr::new(stranger_ip(), port(&n));
    let own = format!("http://{phone}");
    let page = [
        JSON,
        ("Origin", own.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    assert_eq!(raw(phone, "GET", "/", &[], "").code, 200);
    let a = raw(
        phone,
        "POST",
        "/api/v1/needs",
        &page,
        r#"{"title":"water","category":"water"}"#,
    );
    assert_eq!(a.code, 201, "{a:?}");
    let pin = ("X-Volunteer-Pin", PIN);
    assert_eq!(raw(phone, "GET", "/api/v1/people", &[pin], "").code, 200);
    // The dial list is not for strangers: hub computer or PIN only.
    let peer = r#"{"addr":"/ip4/192.0.2.200/tcp/4610"}"#;
    let a = raw(phone, "POST", "/api/v1/peers", &page, peer);
    assert_eq!(a.code, 401, "{a:?}");
    assert_eq!(a.body["error"], "pin_required");
    let with_pin = [JSON, ("Origin", own.as_str()), pin];
    assert_eq!(
        raw(phone, "POST", "/api/v1/peers", &with_pin, peer).code,
        202
    );
    assert_eq!(
        raw(loopback(&n), "POST", "/api/v1/peers", &[JSON], peer).code,
        202
    );
    // Without a PIN configured, only the hub computer adds peers.
    let open = Node::start(
        "no-pin",
        Opts {
            api: Some("0.0.0.0:0".into()),
            ..Opts::default()
        },
    );
    let to = SocketAddr::new(stranger_ip(), port(&open));
    let a = raw(to, "POST", "/api/v1/peers", &[JSON], peer);
    assert_eq!(a.code, 403, "{a:?}");
}

#[test]
fn an_ipv4_client_of_an_ipv6_listener_is_still_the_hub_computer() {
    let n = Node::start(
        "dual",
        Opts {
            api: Some("[::]:0".into()),
            ..Opts::default()
        },
    );
    register(&n, "Ada Lovelace");
    // 127.0.0.1 arrives as ::ffff:127.0.0.1.
    let a = raw(loopback(&n), "GET", "/api/v1/people", &[], "");
    assert_eq!(a.code, 200, "{a:?}");
}

/// Runs `aidmesh up` with `pin` given as an option or in the environment, and returns
/// its stderr once it exited (bounded: a node that starts is killed and reported).
fn up_with_pin(pin: &str, in_env: bool) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(binary());
    cmd.arg("--data-dir").arg(dir.path()).args([
        "up",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
        "--no-mdns",
    ]);
    if in_env {
        cmd.env("AIDMESH_VOLUNTEER_PIN", pin);
    } else {
        cmd.args(["--volunteer-pin", pin]);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aidmesh up");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > T {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node started with the PIN {pin:?} (env: {in_env}) instead of refusing it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(!status.success(), "PIN {pin:?}: exited successfully: {err}");
    err
}

#[test]
fn empty_and_short_pins_are_refused_at_start() {
    for (pin, in_env) in [("", false), ("", true), ("12345", false), ("      ", true)] {
        let err = up_with_pin(pin, in_env);
        assert!(err.contains("at least 6 characters"), "PIN {pin:?}: {err}");
    }
}

/// Reads server-sent events from a raw socket into a channel, line by line.
fn open_stream(to: SocketAddr, headers: &[(&str, &str)]) -> mpsc::Receiver<String> {
    let mut s = TcpStream::connect_timeout(&to, T).expect("connect");
    let mut req = format!("GET /api/v1/stream HTTP/1.1\r\nHost: {to}\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).expect("send");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines of `rx` up to the first that contains `id` (panics after `T`).
fn lines_until(rx: &mpsc::Receiver<String>, id: &str) -> Vec<String> {
    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(id) => return seen,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no stream event about {id} within {T:?}; saw {seen:?}"),
        }
    }
}

#[test]
fn the_live_stream_shows_welfare_events_only_to_volunteers() {
    let n = hub("stream");
    let stranger = open_stream(SocketAddr::new(stranger_ip(), port(&n)), &[]);
    let volunteer = open_stream(
        SocketAddr::new(stranger_ip(), port(&n)),
        &[("X-Volunteer-Pin", PIN)],
    );
    let hub_pc = open_stream(loopback(&n), &[]);
    // The streams are open once the first keep-alive or headers arrived.
    for rx in [&stranger, &volunteer, &hub_pc] {
        rx.recv_timeout(T).expect("stream answered");
    }
    let person = register(&n, "Ada Lovelace");
    let need = n.need("water");
    let before_need = lines_until(&stranger, &need);
    assert!(
        !before_need
            .iter()
            .any(|l| l.contains(&person) || l.contains("person")),
        "a stranger saw the welfare event: {before_need:?}"
    );
    for rx in [&volunteer, &hub_pc] {
        lines_until(rx, &person);
        lines_until(rx, &need);
    }
}

/// Whether the node closed `s` (read gives end of file or an error) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer, then the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn strangers_holding_sockets_do_not_lock_out_the_hub_computer() {
    let n = hub("sockets");
    let pid = n.pid().expect("running");
    // The node runs out of descriptors at 256, as a small machine's default would.
    let out = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=256:256"])
        .output()
        .expect("run prlimit");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stranger = SocketAddr::new(stranger_ip(), port(&n));
    // A slow client: sends a request head that never ends.
    let mut slow = TcpStream::connect_timeout(&stranger, T).expect("connect");
    slow.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    // 300 idle sockets, more than the node's descriptors.
    let mut held: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect_timeout(&stranger, T).expect("connect"))
        .collect();
    // The hub computer is still served, promptly.
    let t = Instant::now();
    let a = raw(loopback(&n), "GET", "/api/v1/status", &[], "");
    let took = t.elapsed();
    assert_eq!(a.code, 200, "{a:?}");
    assert!(
        took < Duration::from_secs(3),
        "/status took {took:?} with strangers holding sockets"
    );
    eprintln!("/status from the hub computer with 300 stranger sockets held: {took:?}");
    // So is a phone: the over-budget sockets were closed, idle ones time out.
    let closed_now = held
        .iter_mut()
        .filter_map(|s| closed_within(s, Duration::from_millis(200)).then_some(()))
        .count();
    assert!(
        closed_now >= 300 - 32,
        "only {closed_now} of 300 sockets were closed at once (budget: 32 per address)"
    );
    let t = Instant::now();
    assert!(
        closed_within(&mut slow, T),
        "a never-ending request head was not cut off"
    );
    eprintln!("slow request head cut off after {:?}", t.elapsed());
    for s in &mut held {
        assert!(closed_within(s, T), "an idle socket was kept open");
    }
    let a = raw(stranger, "GET", "/api/v1/status", &[], "");
    assert_eq!(
        a.code, 200,
        "a phone is served once the idle sockets went: {a:?}"
    );
    wait_for("the node to stay up", T, || n.status()["events"].as_u64());
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    // prlimit execs the node, so the child's pid is the node's.
    let mut child = Command::new("prlimit")
        .arg("--nofile=256:4096")
        .arg(binary())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "up",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
            "--no-mdns",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prlimit aidmesh up");
    let limits = format!("/proc/{}/limits", child.id());
    let api = dir.path().join("api.addr");
    let line = wait_for("the node to start", T, || {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the node exited at start: {st}");
        }
        std::fs::read_to_string(&api).ok()?;
        std::fs::read_to_string(&limits)
            .ok()?
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .map(str::to_string)
    });
    let _ = child.kill();
    let _ = child.wait();
    let soft: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(soft.get(3..5), Some(&["4096", "4096"][..]), "{line}");
}

/// Issue 24 item 9: a stranger on the hub's Wi-Fi polling `/status` (or the board,
/// or the bundle's event count) saw the count rise with every registration and
/// check-in: when someone is being visited. Strangers are told the count of the other
/// events; the hub computer and PIN holders the whole count.
#[test]
fn strangers_are_not_told_how_many_welfare_records_are_held() {
    let mut n = hub("counts");
    let phone = SocketAddr::new(stranger_ip(), port(&n));
    let pin = ("X-Volunteer-Pin", PIN);
    let status = |to: SocketAddr, headers: &[(&str, &str)]| {
        let a = raw(to, "GET", "/api/v1/status", headers, "");
        a.body["events"]
            .as_u64()
            .unwrap_or_else(|| panic!("no events count in {a:?}"))
    };
    let board = || {
        let a = raw(phone, "GET", "/api/v1/board", &[], "");
        a.body["status"]["events"]
            .as_u64()
            .unwrap_or_else(|| panic!("no events count in the board's status: {a:?}"))
    };
    let bundle_count = |headers: &[(&str, &str)]| {
        let mut req = aidmesh_tests::http().get(format!("http://{phone}/api/v1/bundle"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.call().expect("GET /bundle");
        assert_eq!(r.status().as_u16(), 200);
        r.headers()
            .get("x-aidmesh-events")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    n.need("Sandbags for Mill Lane");
    let (public, board_before) = (status(phone, &[]), board());
    let all = status(loopback(&n), &[]);
    let person = register(&n, "Ada Lovelace");
    n.post(
        &format!("/api/v1/people/{person}/checkins"),
        &json!({ "outcome": "safe", "detail": "fine, has water", "by": "Sam" }),
    );
    assert_eq!(
        status(phone, &[]),
        public,
        "a stranger's count rose with welfare writes"
    );
    assert_eq!(
        board(),
        board_before,
        "the board's count rose with welfare writes"
    );
    assert_eq!(
        bundle_count(&[]),
        None,
        "a stranger was told the bundle's count"
    );
    assert_eq!(
        status(loopback(&n), &[]),
        all + 2,
        "the hub computer counts all"
    );
    assert_eq!(status(phone, &[pin]), all + 2, "a PIN holder counts all");
    assert_eq!(bundle_count(&[pin]), Some(all + 2));
    // Events of the open board still count for everyone.
    n.need("Drinking water");
    assert_eq!(status(phone, &[]), public + 1);
    // Counted again from the store at start.
    assert!(n.interrupt(), "the node stops cleanly");
    n.restart();
    let phone = SocketAddr::new(stranger_ip(), port(&n));
    let a = raw(phone, "GET", "/api/v1/status", &[], "");
    assert_eq!(a.body["events"], public + 1, "after a restart: {a:?}");
    assert_eq!(status(loopback(&n), &[]), all + 3);
}
