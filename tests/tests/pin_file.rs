//! The volunteer PIN kept out of the process list (issue 24, item 9): `up` reads it
//! from `--volunteer-pin-file` (or `AIDMESH_VOLUNTEER_PIN`), so no other user of the
//! hub computer sees it with `ps`; the PIN from the file guards welfare records from
//! another machine as the option does; and a PIN typed on the command line draws a
//! warning that says what to use instead.

use std::io::{Read, Write};
use std::net::{IpAddr, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aidmesh_tests::{http, Node, Opts};

/// The PIN of these nodes.
const PIN: &str = "864209";

/// An address of this machine that is not loopback: a request from it looks, to the
/// node, like a phone on the hub's Wi-Fi (as in api_guard.rs).
fn stranger_ip() -> IpAddr {
    let ip = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip());
    match ip {
        Ok(ip) if !ip.is_loopback() && !ip.is_unspecified() => ip,
        other => panic!("this test needs a non-loopback IPv4 address with a route: {other:?}"),
    }
}

/// GET /api/v1/people from the stranger's address, with `pin` if given: the status.
fn people_from_outside(n: &Node, pin: Option<&str>) -> u16 {
    let port = n.api_url().rsplit(':').next().expect("a port");
    let mut req = http().get(format!("http://{}:{port}/api/v1/people", stranger_ip()));
    if let Some(p) = pin {
        req = req.header("X-Volunteer-Pin", p);
    }
    req.call().expect("request").status().as_u16()
}

/// The node process's command line, as `ps` shows it to every user.
fn cmdline(n: &Node) -> String {
    let pid = n.pid().expect("a running node");
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("read /proc/PID/cmdline");
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

const WARNING: &str = "visible to every user of this computer in the process list";

#[test]
fn the_pin_from_a_file_guards_welfare_and_stays_out_of_the_process_list() {
    let secret = tempfile::tempdir().expect("temp dir");
    let file = secret.path().join("pin");
    let mut f = std::fs::File::create(&file).expect("PIN file");
    writeln!(f, "{PIN}").expect("write the PIN");
    let n = Node::start(
        "pin-file",
        Opts {
            api: Some("0.0.0.0:0".into()),
            args: vec!["--volunteer-pin-file".into(), file.display().to_string()],
            ..Opts::default()
        },
    );
    let line = cmdline(&n);
    assert!(line.contains("--volunteer-pin-file"), "{line}");
    assert!(
        !line.contains(PIN),
        "the PIN shows in the process list: {line}"
    );
    assert_eq!(
        people_from_outside(&n, None),
        401,
        "no PIN from another machine"
    );
    assert_eq!(
        people_from_outside(&n, Some(PIN)),
        200,
        "the PIN read from the file (its line ending not part of it)"
    );
    assert!(!n.log().contains(WARNING), "{}", n.log_tail(20));

    // The same PIN typed on the command line works, is visible, and is warned about.
    let typed = Node::start(
        "pin-typed",
        Opts {
            args: vec!["--volunteer-pin".into(), PIN.into()],
            ..Opts::default()
        },
    );
    assert!(cmdline(&typed).contains(PIN));
    let log = typed.log();
    assert!(
        log.contains(WARNING) && log.contains("AIDMESH_VOLUNTEER_PIN"),
        "no warning for a PIN on the command line:\n{log}"
    );

    // In the environment: not in the process list, no warning.
    let env = Node::start(
        "pin-env",
        Opts {
            env: vec![("AIDMESH_VOLUNTEER_PIN".into(), PIN.into())],
            ..Opts::default()
        },
    );
    assert!(!cmdline(&env).contains(PIN));
    assert!(!env.log().contains(WARNING), "{}", env.log_tail(20));
}

#[test]
fn a_missing_weak_or_doubled_pin_file_is_refused_at_start_saying_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weak = dir.path().join("weak");
    std::fs::write(&weak, "12345\n").expect("write");
    let missing = dir.path().join("missing");
    for (args, env, want) in [
        (
            vec!["--volunteer-pin-file", weak.to_str().expect("utf-8")],
            None,
            "at least 6 characters",
        ),
        (
            vec!["--volunteer-pin-file", missing.to_str().expect("utf-8")],
            None,
            "cannot read the volunteer PIN from",
        ),
        (
            vec!["--volunteer-pin-file", weak.to_str().expect("utf-8")],
            Some(PIN),
            "given twice",
        ),
    ] {
        let data = tempfile::tempdir().expect("data dir");
        let mut cmd = aidmesh_tests::aidmesh_command();
        cmd.arg("--data-dir")
            .arg(data.path())
            .args([
                "up",
                "--api",
                "127.0.0.1:0",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .args(["--no-mdns", "--no-beacon"])
            .args(&args)
            .env_remove("AIDMESH_VOLUNTEER_PIN");
        if let Some(p) = env {
            cmd.env("AIDMESH_VOLUNTEER_PIN", p);
        }
        // Each is refused before the node starts, so the command ends by itself; one
        // that started instead is stopped after a bounded wait and reported.
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn aidmesh up");
        let started = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?}: the node started instead of refusing its PIN");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
        assert!(!status.success(), "{args:?}: exited successfully: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
