//! Someone on the hub's Wi-Fi means harm (issue 24, items 1 to 3), tried against real
//! nodes from other hosts: network namespaces on the test LAN ([`aidmesh_tests::lan`]),
//! an attacker with many addresses of its own, as a machine on a /24 Wi-Fi can have.
//! Python scripts play the attacker and the phones. Needs root:
//! `#[ignore = "needs root"]`, run with `cargo test -- --include-ignored`.

use std::process::{Command, Stdio};
use std::time::Duration;

use aidmesh_tests::lan::Lan;
use aidmesh_tests::{wait_for, LanHost, Node, Opts};
use serde_json::{json, Value};

const PIN: &str = "4321-flood";

/// Adds `n` addresses (`.first` on) of the LAN's subnet to `host`'s interface.
fn add_addresses(host: &LanHost, first: u8, n: u8) -> Vec<String> {
    let subnet = host.ip.rsplit_once('.').expect("an IPv4 address").0;
    let addrs: Vec<String> = (first..first + n)
        .map(|i| format!("{subnet}.{i}"))
        .collect();
    let batch: String = addrs
        .iter()
        .map(|a| format!("addr add {a}/24 dev eth0\n"))
        .collect();
    let mut c = Command::new("ip")
        .args(["-n", &host.netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("ip -batch");
    use std::io::Write;
    c.stdin
        .take()
        .expect("stdin")
        .write_all(batch.as_bytes())
        .expect("write the batch");
    assert!(c.wait().expect("ip").success(), "could not add addresses");
    addrs
}

/// Runs a Python script inside `host`'s namespace with `args`; returns its stdout.
fn python(host: &LanHost, script: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &host.netns, "python3", "-c", script])
        .args(args)
        .output()
        .expect("run python3 in the namespace");
    assert!(
        out.status.success(),
        "the script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a Python script inside `host`'s namespace that prints `ready` once set up
/// and then holds its sockets until killed.
fn python_holding(host: &LanHost, script: &str, args: &[&str]) -> std::process::Child {
    let mut c = Command::new("ip")
        .args(["netns", "exec", &host.netns, "python3", "-c", script])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python3 in the namespace");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(c.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the script's output");
    assert_eq!(line.trim(), "ready", "the attacker script did not start");
    c
}

/// One phone posting needs as fast as it can: prints each answer's status and
/// Retry-After.
const FLOODER: &str = r#"
import http.client, json, sys
hub, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    c = http.client.HTTPConnection(hub, 4611, timeout=10)
    body = json.dumps({"title": f"flood {i}", "category": "water"})
    c.request("POST", "/api/v1/needs", body, {"content-type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read() or b"{}")
    print(r.status, r.getheader("retry-after") or "-", data.get("error", "-"))
    c.close()
"#;

fn lan_node(name: &str, host: &LanHost, env: &[(&str, &str)], args: &[&str]) -> Node {
    Node::start(
        name,
        Opts {
            lan: Some(host.clone()),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Opts::default()
        },
    )
}

/// A request with extra headers; returns (status, body). Never panics on a 4xx.
fn ask(
    n: &Node,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{}{path}", n.api_url());
    let mut r = if method == "POST" {
        let mut req = agent.post(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send_json(body.cloned().unwrap_or(Value::Null))
    } else {
        let mut req = agent.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.call()
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let code = r.status().as_u16();
    (code, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn titles(n: &Node) -> Vec<String> {
    n.get("/api/v1/needs")["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["title"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root"]
fn a_phone_flooding_posts_is_slowed_and_the_hub_takes_the_flood_back_everywhere() {
    let mut lan = Lan::new("fl");
    let (h1, phone, h2) = (lan.host(1), lan.host(2), lan.host(3));
    // The default limit (the test harness lifts it for LAN nodes).
    let limit = [("AIDMESH_POSTS_PER_MINUTE", "10")];
    let hub = lan_node("hub", &h1, &limit, &["--volunteer-pin", PIN]);
    let other = lan_node("other", &h2, &limit, &[]);

    let out = python(&phone, FLOODER, &[&h1.ip, "200"]);
    let answers: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let created = answers.iter().filter(|a| a[0] == "201").count();
    let refused: Vec<_> = answers.iter().filter(|a| a[0] == "429").collect();
    eprintln!(
        "REPORT flood: one phone address asked 200 posts: {created} created, {} refused with 429",
        refused.len()
    );
    assert!(
        (10..=12).contains(&created),
        "a phone posted {created} of 200 in one go; want its minute's 10"
    );
    assert_eq!(created + refused.len(), 200, "{out}");
    assert!(
        refused
            .iter()
            .all(|a| a[1] != "-" && a[2] == "too_many_posts"),
        "every refusal says when to come back: {out}"
    );
    // Another machine (the test process) is not touched by the phone's limit.
    let (code, v) = other.post_raw(
        "/api/v1/needs",
        &json!({ "title": "insulin for a neighbour", "category": "medical" }),
    );
    assert_eq!(code, 201, "{v}");

    // The flood reached the other hub; the coordinator sees who and takes it back.
    wait_for(
        "the flood to reach the other hub",
        Duration::from_secs(60),
        || {
            (titles(&other)
                .iter()
                .filter(|t| t.starts_with("flood "))
                .count()
                == created)
                .then_some(())
        },
    );
    let pin = [("x-volunteer-pin", PIN)];
    let (code, list) = ask(&hub, "GET", "/api/v1/flood", None, &pin);
    assert_eq!(code, 200, "{list}");
    let row = list["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["address"] == phone.ip.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(row["posts"].as_u64(), Some(created as u64), "{list}");
    // Without the PIN, another machine is not told who posted.
    assert_eq!(ask(&hub, "GET", "/api/v1/flood", None, &[]).0, 401);
    let (code, v) = ask(
        &hub,
        "POST",
        "/api/v1/flood/withdraw",
        Some(&json!({ "from": phone.ip })),
        &pin,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["withdrawn"].as_u64(), Some(created as u64), "{v}");
    for n in [&hub, &other] {
        wait_for(
            "the flood to leave the board at both hubs",
            Duration::from_secs(60),
            || (!titles(n).iter().any(|t| t.starts_with("flood "))).then_some(()),
        );
    }
    assert!(titles(&other).contains(&"insulin for a neighbour".to_string()));
}

/// Holds `per` live streams from each of the given source addresses.
const STREAM_HOG: &str = r#"
import socket, sys, time, resource
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
hub, per = sys.argv[1], int(sys.argv[2])
socks = []
for src in sys.argv[3:]:
    for _ in range(per):
        try:
            s = socket.create_connection((hub, 4611), timeout=10, source_address=(src, 0))
            s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: {hub}:4611\r\n\r\n".encode())
            socks.append(s)
        except OSError:
            pass
print("ready", flush=True)
time.sleep(3600)
"#;

/// A phone opening the page and the board: prints both statuses.
const PHONE: &str = r#"
import http.client, sys
hub = sys.argv[1]
for path in ["/", "/api/v1/board"]:
    try:
        c = http.client.HTTPConnection(hub, 4611, timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        print(r.status)
    except OSError as e:
        print("failed:", e)
"#;

#[test]
#[ignore = "needs root"]
fn many_addresses_holding_streams_cannot_shut_a_phone_out() {
    // A small open-file limit gives the node the smallest budget for other machines
    // (512 connections), so one attacker fills it with 130 addresses.
    let lim = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: setrlimit reads the struct passed; children inherit the limit.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) },
        0,
        "lower the open-file limit"
    );
    let mut lan = Lan::new("hg");
    let (h1, attacker, phone) = (lan.host(1), lan.host(2), lan.host(3));
    let hub = lan_node("hub", &h1, &[], &[]);
    let addrs = add_addresses(&attacker, 60, 130);
    let mut args = vec![h1.ip.as_str(), "8"];
    args.extend(addrs.iter().map(String::as_str));
    let mut hog = python_holding(&attacker, STREAM_HOG, &args);
    // The hub holds what it can of them (its budget is full).
    let pid = hub.pid().expect("hub pid");
    wait_for(
        "the attacker to hold the hub's connection budget",
        Duration::from_secs(60),
        || (held_from_subnet(&h1, pid) >= 500).then_some(()),
    );
    let seen = python(&phone, PHONE, &[&h1.ip]);
    let _ = hog.kill();
    let _ = hog.wait();
    eprintln!(
        "REPORT stream hog: 130 addresses × 8 streams; a phone's page and board answered {seen:?}"
    );
    assert_eq!(
        seen.split_whitespace().collect::<Vec<_>>(),
        ["200", "200"],
        "a phone was shut out by another machine's held streams"
    );
}

/// Sockets the node holds with other machines of the LAN's subnet.
fn held_from_subnet(hub: &LanHost, pid: u32) -> usize {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &hub.netns,
            "ss",
            "-tnpH",
            "state",
            "established",
        ])
        .output()
        .expect("run ss");
    let me = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me) && l.contains(":4611 "))
        .count()
}

/// Opens `per` connections from each source address, sends `kb` KB of one header
/// (never ending the head), and holds them.
const SLOW_HEADS: &str = r#"
import socket, sys, time, resource
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
hub, per, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pad = b"a" * 1024
socks = []
for src in sys.argv[4:]:
    for _ in range(per):
        try:
            s = socket.create_connection((hub, 4611), timeout=10, source_address=(src, 0))
            s.setblocking(False)
            s.send(f"GET / HTTP/1.1\r\nHost: {hub}:4611\r\nX-Pad: ".encode())
            socks.append(s)
        except OSError:
            pass
for _ in range(kb):
    for s in socks:
        try:
            s.send(pad)
        except OSError:
            pass
print("ready", flush=True)
time.sleep(3600)
"#;

/// Resident memory of a process, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
#[ignore = "needs root"]
fn unfinished_request_heads_cannot_take_the_node_s_memory() {
    let mut lan = Lan::new("hd");
    let (h1, attacker) = (lan.host(1), lan.host(2));
    let hub = lan_node("hub", &h1, &[], &[]);
    let pid = hub.pid().expect("hub pid");
    let before = rss_mb(pid);
    let addrs = add_addresses(&attacker, 60, 32);
    let mut args = vec![h1.ip.as_str(), "16", "390"];
    args.extend(addrs.iter().map(String::as_str));
    let mut heads = python_holding(&attacker, SLOW_HEADS, &args);
    let during = rss_mb(pid);
    // A phone is still served meanwhile.
    let status = hub.status();
    let _ = heads.kill();
    let _ = heads.wait();
    eprintln!(
        "REPORT slow heads: 32 addresses × 16 connections × 390 KB of header: node {before:.0} MB -> {during:.0} MB"
    );
    assert!(status["events"].is_u64());
    assert!(
        during - before < 64.0,
        "unfinished heads took the node from {before:.0} MB to {during:.0} MB"
    );
}
