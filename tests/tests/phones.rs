//! Phones that walk away: a phone that leaves the hub's Wi-Fi (or whose access point
//! loses power) sends no FIN and no RST; the node must still let its sockets go, within
//! 2 minutes. Phones are network namespaces on the test LAN ([`aidmesh_tests::lan`])
//! holding the live stream and kept-alive connections open; their link is then cut.
//! Needs root: `#[ignore = "needs root"]`, run with `cargo test -- --include-ignored`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aidmesh_tests::lan::Lan;
use aidmesh_tests::{poll, wait_for, LanHost, Node, Opts};

/// A phone's page: two live streams (the page's and a second tab's) and two
/// kept-alive requests, held open and never read from again.
const PHONE: &str = r#"
import socket, sys, time
host = sys.argv[1]
socks = []
for path in ["/api/v1/stream", "/api/v1/stream", "/api/v1/status", "/api/v1/needs"]:
    s = socket.create_connection((host, 4611), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:4611\r\nConnection: keep-alive\r\n\r\n".encode())
    socks.append(s)
print("open", flush=True)
time.sleep(3600)
"#;

/// Sockets the node process holds whose other end is `ip`.
fn held_sockets(hub: &LanHost, pid: u32, ip: &str) -> usize {
    let out = Command::new("ip")
        .args([
            "netns", "exec", &hub.netns, "ss", "-tnpH", "state", "all", "dst", ip,
        ])
        .output()
        .expect("run ss");
    let me = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me))
        .count()
}

fn phone(host: &LanHost, hub_ip: &str) -> Child {
    let mut c = Command::new("ip")
        .args(["netns", "exec", &host.netns, "python3", "-c", PHONE, hub_ip])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a phone (python3)");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(c.stdout.take().expect("phone stdout"))
        .read_line(&mut line)
        .expect("read the phone's output");
    assert_eq!(
        line.trim(),
        "open",
        "the phone could not open its connections"
    );
    c
}

#[test]
#[ignore = "needs root"]
fn phones_that_vanish_are_let_go_within_2_minutes() {
    let mut lan = Lan::new("ph");
    let hub_host = lan.host(1);
    let hub = Node::start(
        "hub",
        Opts {
            lan: Some(hub_host.clone()),
            ..Opts::default()
        },
    );
    let pid = hub.pid().expect("hub pid");
    let phones: Vec<LanHost> = (2..=6).map(|i| lan.host(i)).collect();
    let mut clients: Vec<Child> = phones.iter().map(|p| phone(p, &hub_host.ip)).collect();
    for p in &phones {
        wait_for(
            &format!("the hub to hold the streams of phone {}", p.ip),
            Duration::from_secs(10),
            || (held_sockets(&hub_host, pid, &p.ip) >= 2).then_some(()),
        );
    }

    // They walk away: the link goes, then the page with it (its FIN goes nowhere).
    for p in &phones {
        let st = Command::new("ip")
            .args(["-n", &p.netns, "link", "set", "eth0", "down"])
            .status()
            .expect("ip link");
        assert!(st.success(), "could not take {}'s link down", p.netns);
    }
    for c in &mut clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    let cut = Instant::now();
    poll(
        "the hub to let go of every vanished phone",
        Duration::from_secs(150),
        Duration::from_millis(500),
        || {
            phones
                .iter()
                .all(|p| held_sockets(&hub_host, pid, &p.ip) == 0)
                .then_some(())
        },
    );
    let took = cut.elapsed();
    eprintln!(
        "REPORT vanished phones: {} phones (2 streams + 2 kept-alive each) let go {:.1} s after their link was cut",
        phones.len(),
        took.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(120),
        "the hub held sockets of vanished phones for {took:?}; want < 2 min"
    );
    // The hub still serves.
    assert!(hub.status()["events"].is_u64());
}
