//! Joining and finding each other, as a coordinator lives it (issue 29): a second node
//! on a port already taken is refused, and a node serving phones on every interface
//! prints (and puts in the printed board's QR code) an address a phone can open.
//! Real `aidmesh` processes on this machine.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aidmesh_tests::{aidmesh_command, http, init, wait_for, Node, Opts, TEST_PASSPHRASE};

const T: Duration = Duration::from_secs(30);

/// Kills the process when dropped, so a failed test leaves no node behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `aidmesh up` on `dir` with `args`, its stdout and stderr in files of `dir`.
fn up(dir: &Path, args: &[&str]) -> Running {
    let out = std::fs::File::create(dir.join("up.out")).expect("stdout file");
    let err = std::fs::File::create(dir.join("up.err")).expect("stderr file");
    let child = aidmesh_command()
        .arg("--data-dir")
        .arg(dir)
        .arg("up")
        .args(args)
        .env("AIDMESH_LOG", "info")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn aidmesh up");
    Running(child)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

#[test]
fn a_second_node_on_a_peer_port_in_use_is_refused() {
    let a = Node::start("a", Opts::default());
    let taken = a.status()["listen"][0]
        .as_str()
        .expect("a listen address")
        .to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    init(dir.path());
    let mut second = up(
        dir.path(),
        &[
            "--listen",
            &taken,
            "--api",
            "127.0.0.1:0",
            "--no-mdns",
            "--no-beacon",
        ],
    );
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(st) = second.0.try_wait().expect("wait for the second node") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "a second node (another data directory) was started on {taken}, a's peer port, \
             and was still running after {T:?}: two nodes on one port must be refused. \
             Its output:\n{}\n{}",
            read(dir.path(), "up.out"),
            read(dir.path(), "up.err")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = read(dir.path(), "up.err");
    let port = taken.rsplit('/').next().unwrap_or_default();
    assert!(!status.success(), "refused, but exit status {status}");
    assert!(
        err.contains(&format!("TCP port {port} is already in use")) && err.contains("--listen"),
        "the refusal must name the port and what to do; it said:\n{err}"
    );
    // a is untouched.
    assert_eq!(a.status()["listen"][0].as_str(), Some(taken.as_str()));
}

#[test]
fn a_node_on_every_interface_prints_and_encodes_an_address_a_phone_can_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    init(dir.path());
    let _node = up(
        dir.path(),
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "0.0.0.0:0",
            "--no-mdns",
            "--no-beacon",
        ],
    );
    let out = wait_for("up to print its web page address", T, || {
        let out = read(dir.path(), "up.out");
        out.contains("  api ").then_some(out)
    });
    let pages: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("web page"))
        .map(str::trim)
        .collect();
    assert!(!pages.is_empty(), "no web page line in:\n{out}");
    assert!(
        !out.contains("0.0.0.0"),
        "`up --api 0.0.0.0:PORT` printed an address no phone can open:\n{out}"
    );
    // Each printed address answers.
    for page in &pages {
        let url = page.split_whitespace().next().unwrap_or_default();
        let r = http().get(url).call();
        assert!(
            r.as_ref().is_ok_and(|r| r.status().is_success()),
            "the printed web page {url} does not answer: {:?}",
            r.map(|r| r.status())
        );
    }
    // The printed board, as `aidmesh print` fetches it from this node.
    let board = dir.path().join("board.html");
    let st = aidmesh_command()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["print", "--out"])
        .arg(&board)
        .status()
        .expect("run aidmesh print");
    assert!(st.success(), "aidmesh print failed: {st}");
    let html = std::fs::read_to_string(&board).expect("the board");
    assert!(
        !html.contains("0.0.0.0"),
        "the printed board's link and QR code say 0.0.0.0, which no phone can open"
    );
    let first = pages[0].split_whitespace().next().unwrap_or_default();
    if !first.contains("127.0.0.1") {
        assert!(
            html.contains(first),
            "the printed board does not give the address `up` printed ({first})"
        );
    }
}

/// `aidmesh join` typed at the keyboard: its answers on stdin, its exit bounded.
fn join_typing(dir: &Path, typed: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = aidmesh_command()
        .arg("--data-dir")
        .arg(dir)
        .arg("join")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aidmesh join");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(typed.as_bytes())
        .expect("type the answers");
    let mut child = Running(child);
    let status = wait_for("aidmesh join to finish once its input ended", T, || {
        child.0.try_wait().expect("wait for join")
    });
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    let _ = child
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out);
    let _ = child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    (status.success(), out, err)
}

#[test]
fn join_asks_again_for_a_mistyped_word_instead_of_exiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Word 6 mistyped, then only that word typed again; the name is not asked twice.
    let (ok, out, err) = join_typing(
        dir.path(),
        "Test\nriver ocean garden lemon rocket harbr\nharbor\n",
    );
    assert!(
        ok,
        "join exited at the first typo instead of asking again.\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        err.contains("word 6 'harbr' is not in the list; did you mean 'harbor'?"),
        "the typo was not named: {err}"
    );
    assert!(
        out.contains("Word 6 again"),
        "word 6 was not asked for again: {out}"
    );
    assert!(out.contains("Joined community 'Test'"), "{out}");
    // Joined with the right words: the card shows them.
    let card = aidmesh_command()
        .arg("--data-dir")
        .arg(dir.path())
        .arg("passphrase")
        .output()
        .expect("run aidmesh passphrase");
    let card = String::from_utf8_lossy(&card.stdout);
    assert!(
        card.contains("river ocean garden lemon rocket harbor"),
        "the card: {card}"
    );

    // A wrong count asks for all six again; the end of the input ends it, saying so.
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, out, err) = join_typing(dir.path(), "Test\nriver ocean garden\n");
    assert!(!ok, "join succeeded with three words: {out}");
    assert!(
        err.contains("has 3 words") && err.contains("no passphrase typed"),
        "the count and the end of input were not said: {err}"
    );
    assert!(
        out.matches("Passphrase (the six words from the card)")
            .count()
            == 2,
        "the six words were not asked for again: {out}"
    );
}

/// The right words in the wrong order, or the community name spelt another way, make
/// another community: the hub stays alone. `status` (JSON and text) says so, naming
/// what differs, from the other hub's mDNS advert. Network namespaces: needs root.
#[test]
#[ignore = "needs root"]
fn status_names_a_hub_with_the_words_in_another_order_or_another_name() {
    use aidmesh_tests::lan::Lan;
    let mut lan = Lan::new("j");
    let words: Vec<&str> = TEST_PASSPHRASE.split(' ').collect();
    let mut swapped = words.clone();
    swapped.swap(0, 1);
    let on = |host, name: &str, community: &str, passphrase: String| {
        Node::start(
            name,
            Opts {
                lan: Some(host),
                community: Some(community.into()),
                passphrase: Some(passphrase),
                ..Opts::default()
            },
        )
    };
    let a = on(lan.host(1), "a", "test", TEST_PASSPHRASE.into());
    let b_host = lan.host(2);
    let c_host = lan.host(3);
    let (b_ip, c_ip) = (b_host.ip.clone(), c_host.ip.clone());
    let _b = on(b_host, "b", "test", swapped.join(" "));
    let _c = on(c_host, "c", "Test Hub", TEST_PASSPHRASE.into());
    let differs_at = |ip: &str| {
        a.status()["other_communities"]
            .as_array()
            .into_iter()
            .flatten()
            // Its beacon may be heard first ("unknown": a beacon says no more); its
            // mDNS advert then says what differs, and that line replaces it.
            .find(|o| o["ip"] == ip && o["differs"] != "unknown")
            .and_then(|o| o["differs"].as_str().map(str::to_string))
    };
    let found = wait_for(
        "a's status to name b (same words, other order) and c (same words, other name)",
        Duration::from_secs(60),
        || match (differs_at(&b_ip), differs_at(&c_ip)) {
            (Some(b), Some(c)) => Some((b, c)),
            _ => None,
        },
    );
    assert_eq!(found, ("word_order".to_string(), "name".to_string()));
    assert_eq!(a.status()["peers"], 0, "a hub of another key connected");
    let text = aidmesh_command()
        .arg("--data-dir")
        .arg(a.dir())
        .arg("status")
        .output()
        .expect("run aidmesh status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "a hub at {b_ip} has this community's name and the same six words in another order"
        )) && text.contains(&format!(
            "a hub at {c_ip} has the same six words but another community name"
        )),
        "`aidmesh status` does not say what differs:\n{text}"
    );
}

/// A hub heard only by its UDP beacon (its mDNS is off, or the access point drops
/// multicast) whose beacons fail this community's MAC (issue 29): a beacon carries no
/// name or words tag, so `status` names it by address and says what can be known:
/// another community, or other words. Network namespaces: needs root.
#[test]
#[ignore = "needs root"]
fn status_names_by_address_a_hub_heard_only_by_a_beacon_of_another_key() {
    use aidmesh_tests::lan::Lan;
    let mut lan = Lan::new("k");
    let a = Node::start(
        "a",
        Opts {
            lan: Some(lan.host(1)),
            ..Opts::default()
        },
    );
    let b_host = lan.host(2);
    let b_ip = b_host.ip.clone();
    let words: Vec<&str> = TEST_PASSPHRASE.split(' ').collect();
    let mut swapped = words.clone();
    swapped.swap(0, 1);
    let _b = Node::start(
        "b",
        Opts {
            lan: Some(b_host),
            passphrase: Some(swapped.join(" ")),
            args: vec!["--no-mdns".into()],
            ..Opts::default()
        },
    );
    let found = wait_for(
        "a's status to name b, heard only by its beacon",
        Duration::from_secs(60),
        || {
            a.status()["other_communities"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["ip"] == b_ip.as_str())
                .cloned()
        },
    );
    assert_eq!(found["differs"], "unknown", "{found}");
    assert_eq!(a.status()["peers"], 0, "a hub of another key connected");
    let (_, text, _) = a.cli(&["status"]);
    assert!(
        text.contains(&format!(
            "a hub at {b_ip} is in another community, or has other words"
        )) && text.contains("MISMATCH"),
        "`aidmesh status` does not name the beacon's hub:\n{text}"
    );
}
