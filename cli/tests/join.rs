//! Starting and joining a community with the real binary (issue 15): `start`, `join`
//! (typed words checked against the list), `passphrase`, `up`'s first run, and the
//! messages around them (a node already running, a busy port, a bad `--peer`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::Once;
use std::time::Duration;

use aidmesh_tests::{wait_for, Node, Opts};

const BIN: &str = env!("CARGO_BIN_EXE_aidmesh");

/// A command for the binary with a clean environment.
fn cmd(dir: &Path) -> Command {
    static BIN_ENV: Once = Once::new();
    BIN_ENV.call_once(|| std::env::set_var("AIDMESH_BIN", BIN));
    let mut c = Command::new(BIN);
    c.env_remove("AIDMESH_DIR")
        .env("NO_COLOR", "1")
        .arg("--data-dir")
        .arg(dir);
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cmd(dir).args(args).output().expect("run aidmesh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and expects success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(
        o.status.success(),
        "`{args:?}` failed:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs and expects failure; returns stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(
        !o.status.success(),
        "`{args:?}` should fail:\n{}",
        text(&o.stdout)
    );
    text(&o.stderr)
}

/// The six words on the card printed by `start`, `up` or `passphrase`.
fn card_words(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("passphrase (give it"))
        .unwrap_or_else(|| panic!("no passphrase card in:\n{out}"));
    lines[at + 2].trim().to_string()
}

/// `aidmesh up` on `dir` with loopback ports; stdout lines arrive on the channel.
fn spawn_up(dir: &Path, api: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd(dir)
        .args([
            "up",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            api,
            "--no-mdns",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn aidmesh up");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Collects stdout lines until one contains `until` (bounded) or the output ends.
fn read_until(rx: &mpsc::Receiver<String>, until: &str) -> String {
    let mut out = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(30)) {
        out.push_str(&l);
        out.push('\n');
        if l.contains(until) {
            return out;
        }
    }
    out
}

#[test]
fn start_and_join_from_fresh_directories_then_the_hubs_connect() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out = ok(a.path(), &["start", "--community", "Elm Street"]);
    let words = card_words(&out);
    assert_eq!(words.split(' ').count(), 6, "{out}");
    // The card carries everything a phone needs: the name and the words, as one command.
    let join_line = format!("aidmesh join --community \"Elm Street\" --passphrase \"{words}\"");
    assert!(out.contains(&join_line), "{out}");
    assert!(
        out.lines().filter(|l| l.contains('█')).count() > 10,
        "a QR code:\n{out}"
    );

    // Typos are named before anything is written.
    let mut typo: Vec<String> = words.split(' ').map(String::from).collect();
    typo[3].pop();
    typo[3].push_str("qq");
    let e = fails(
        b.path(),
        &[
            "join",
            "--community",
            "Elm Street",
            "--passphrase",
            &typo.join(" "),
        ],
    );
    assert!(
        e.contains(&format!("word 4 '{}' is not in the list", typo[3])),
        "{e}"
    );
    let e = fails(
        b.path(),
        &[
            "join",
            "--community",
            "Elm Street",
            "--passphrase",
            "abandon ability able",
        ],
    );
    assert!(
        e.contains("has 3 words, a community passphrase has 6"),
        "{e}"
    );
    assert!(
        !b.path().join("db").exists(),
        "a refused join writes nothing"
    );

    // Joining by answering the prompts (as typed from the card, in capitals).
    let mut child = cmd(b.path())
        .arg("join")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("Elm Street\n{}\n", words.to_uppercase()).as_bytes(),
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Joined community 'Elm Street'"));

    // Both hubs run; the joined one connects to the first with --peer.
    let opts = |peers: Vec<String>| Opts {
        peers,
        ..Opts::default()
    };
    let hub_a = Node::open("start-a", a, opts(vec![]));
    let hub_b = Node::open("join-b", b, opts(vec![hub_a.addr()]));
    wait_for("the joined hub to connect", Duration::from_secs(30), || {
        (hub_b.status()["peers"].as_u64() == Some(1)).then_some(())
    });
    // Members of the community are never reported as strangers.
    for hub in [&hub_a, &hub_b] {
        assert_eq!(
            hub.status()["refused"],
            serde_json::json!([]),
            "{}",
            hub.log()
        );
    }
    // `passphrase` shows the card again while the node runs (it holds the database).
    let again = ok(hub_a.dir(), &["passphrase"]);
    assert_eq!(card_words(&again), words);
    assert!(again.contains(&join_line), "{again}");
}

#[test]
fn up_first_run_shows_both_ways_and_join_still_works_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = spawn_up(dir.path(), "127.0.0.1:0");
    let out = read_until(&rx, "aidmesh node running");
    assert!(out.contains("aidmesh node running"), "{out}");
    assert!(!card_words(&out).is_empty());
    assert!(out.contains("start --community"), "{out}");
    assert!(out.contains("join"), "{out}");

    // A second up, or an init, on the running node's directory names the running node.
    let pid = child.id();
    for args in [
        &[
            "up",
            "--api",
            "127.0.0.1:0",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ][..],
        &["init", "--community", "x"][..],
    ] {
        let e = fails(dir.path(), args);
        assert!(
            e.contains(&format!(
                "a node is already running for this directory (pid {pid})"
            )),
            "{args:?}: {e}"
        );
        assert!(!e.contains("damaged"), "{e}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The community up made by itself, with nothing in it yet, can still be swapped for
    // the one the coordinator meant to join.
    let words = "maple harbor ozone river ozone harbor";
    let out = ok(
        dir.path(),
        &["join", "--community", "Elm Street", "--passphrase", words],
    );
    assert!(out.contains("Joined community 'Elm Street'"), "{out}");
    let again = ok(dir.path(), &["passphrase"]);
    assert_eq!(card_words(&again), words);
    // ... but only once: a deliberate community is never replaced.
    let e = fails(dir.path(), &["start", "--community", "Other"]);
    assert!(
        e.contains("already holds a node of community 'Elm Street'"),
        "{e}"
    );
}

#[test]
fn up_on_a_busy_port_still_prints_the_new_passphrase() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = spawn_up(dir.path(), &addr);
    let out = read_until(&rx, "aidmesh node running");
    let status = child.wait().unwrap();
    assert!(!status.success(), "up on a busy port must fail:\n{out}");
    let words = card_words(&out);
    assert_eq!(words.split(' ').count(), 6, "{out}");
    assert_eq!(card_words(&ok(dir.path(), &["passphrase"])), words);
}

#[test]
fn a_bad_peer_address_error_shows_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let e = fails(dir.path(), &["up", "--peer", "192.168.1.20:4610"]);
    assert!(e.contains("--peer '192.168.1.20:4610' is not valid"), "{e}");
    assert!(e.contains("/ip4/192.168.1.20/tcp/4610"), "{e}");
}

#[test]
fn a_node_with_another_passphrase_is_named_in_status() {
    let a = Node::start("refuses", Opts::default());
    let b = Node::start(
        "other-key",
        Opts {
            passphrase: Some("maple harbor ozone river ozone harbor".into()),
            peers: vec![a.addr()],
            ..Opts::default()
        },
    );
    let refused = wait_for(
        "the node to record the attempt of the other community",
        Duration::from_secs(30),
        || {
            let r = a.status()["refused"].clone();
            r.as_array().filter(|l| !l.is_empty()).cloned()
        },
    );
    assert_eq!(refused[0]["ip"], "127.0.0.1", "{refused:?}");
    assert!(refused[0]["attempts"].as_u64() >= Some(1), "{refused:?}");
    assert_eq!(a.status()["peers"], 0);
    let out = ok(a.dir(), &["status"]);
    assert!(
        out.contains("a node at 127.0.0.1 tried to join with a different passphrase"),
        "{out}"
    );
    // The node that dialed is not blamed for its own attempts.
    assert_eq!(b.status()["refused"].as_array().map(Vec::len), Some(0));
}

/// The demo's printed web addresses: they close when it exits, and it says so; with
/// `--keep` they still answer after the tour, until Ctrl-C.
#[test]
fn demo_addresses_answer_or_the_demo_says_they_close() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["demo"]);
    assert!(out.contains("close when it exits"), "{out}");

    let mut child = cmd(dir.path())
        .args(["demo", "--keep"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let out = read_until(&rx, "Ctrl-C stops them");
    assert!(out.contains("Ctrl-C stops them"), "{out}");
    let pages: Vec<String> = out
        .lines()
        .filter(|l| l.contains("started hub"))
        .filter_map(|l| l.split(" web ").nth(1))
        .map(|u| u.trim().to_string())
        .collect();
    assert_eq!(pages.len(), 3, "{out}");
    let agent = aidmesh_tests::http();
    for p in &pages {
        let r = agent
            .get(&format!("{p}api/v1/status"))
            .call()
            .unwrap_or_else(|e| panic!("{p} does not answer after the tour: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{p}");
    }
    // SAFETY: sends SIGINT to the child this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
    let rest = read_until(&rx, "Demo finished");
    assert!(rest.contains("Demo finished"), "{rest}");
    assert!(child.wait().unwrap().success());
}
