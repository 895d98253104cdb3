//! Bounded disk: a real node whose data directory is on a small tmpfs, filled with a
//! file. `status` reports the database size and the free space, warns when it runs
//! low; below the floor new local posts are refused (HTTP 507, and the CLI says why)
//! while the board is still served, a restart on the full disk keeps everything, and
//! once space comes back posts work again and peers' events arrive. With no byte free
//! at all, `up` says what is true (free space, or move the whole directory: its files
//! hold the identity and community) and, where the directory was then moved aside,
//! never makes a new community by itself (issue 24, item 8).
//!
//! Mounting a tmpfs needs root, so the test is `#[ignore = "needs root ..."]`: run it
//! with `cargo test -p aidmesh-tests --test disk -- --include-ignored` (CI does).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aidmesh_tests::{binary, wait_for, Node, Opts, TEST_PASSPHRASE};
use serde_json::{json, Value};

/// Size of the tmpfs the node's data lives on.
const TMPFS_MB: u64 = 160;

/// A tmpfs mounted on a fresh directory, unmounted (and the directory removed) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mb: u64) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("aidmesh-disk-")
            .tempdir()
            .expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs root: `mount -t tmpfs` failed (it is #[ignore]d unless run \
             with --include-ignored, as CI does as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a node process killed just before may still hold files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Free bytes on the filesystem holding `p`, as the node computes them.
fn free(p: &Path) -> u64 {
    aidmesh_node::disk::Space::of(p)
        .expect("statvfs")
        .free_bytes
}

/// Grows the filler file `f` until at most `leave` bytes are free on its filesystem.
fn fill_until(f: &Path, leave: u64) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(f)
        .expect("filler file");
    let chunk = vec![0x5au8; 1 << 20];
    while free(f) > leave {
        let n = (free(f) - leave).min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n.max(4096)])
            .expect("write the filler");
        file.sync_all().expect("sync the filler");
    }
}

/// The `disk` object of the node's status.
fn disk(n: &Node) -> Value {
    n.status()["disk"].clone()
}

/// Runs the CLI against the node's directory; returns (success, stdout + stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run aidmesh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts a node whose data directory is inside `root`.
fn start_in(root: &Path, name: &str, opts: Opts) -> Node {
    let dir = tempfile::Builder::new()
        .prefix(&format!("aidmesh-{name}-"))
        .tempdir_in(root)
        .expect("data dir on the tmpfs");
    aidmesh_tests::init(dir.path());
    Node::open(name, dir, opts)
}

#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn a_full_disk_refuses_new_posts_keeps_the_board_and_recovers() {
    let fs = Tmpfs::mount(TMPFS_MB);
    let filler: PathBuf = fs.path().join("filler");
    let peer = Node::start("disk-peer", Opts::default());
    let mut hub = start_in(
        fs.path(),
        "disk-hub",
        Opts {
            peers: vec![peer.addr()],
            ..Opts::default()
        },
    );

    // Room: status says so, posts are taken.
    let d = disk(&hub);
    assert_eq!(d["level"], "ok", "{d}");
    assert!(d["db_bytes"].as_u64().unwrap() > 0, "{d}");
    assert!(
        d["total_bytes"].as_u64().unwrap() <= TMPFS_MB * 1024 * 1024,
        "{d}"
    );
    let mut acked: Vec<String> = (0..5).map(|i| hub.need(&format!("water {i}"))).collect();
    let ada = hub.post(
        "/api/v1/people",
        &json!({ "name": "Ada Lovelace", "place": "14 River Rd", "every": "12h" }),
    )["id"]
        .as_str()
        .expect("person id")
        .to_string();

    // Low (60 MB free of 160, under the 100 MB warning): a warning, posts still taken.
    fill_until(&filler, 60_000_000);
    let d = disk(&hub);
    assert_eq!(d["level"], "low", "{d}");
    assert!(
        d["warning"].as_str().unwrap().contains("nearly full"),
        "{d}"
    );
    let (ok, text) = cli(hub.dir(), &["status"]);
    assert!(ok && text.contains("disk       database"), "{text}");
    assert!(text.contains("the disk is nearly full"), "{text}");
    acked.push(hub.need("water while low"));

    // Below the floor: local posts refused with 507 and a sentence, by the API and CLI.
    fill_until(&filler, 10_000_000);
    let (code, body) = hub.post_raw(
        "/api/v1/needs",
        &json!({ "title": "refused", "category": "water" }),
    );
    assert_eq!(code, 507, "{body}");
    assert_eq!(body["error"], "disk_full", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("is full") && detail.contains("everything already posted is kept"),
        "{detail}"
    );
    let (ok, text) = cli(
        hub.dir(),
        &["need", "add", "from the cli", "--category", "food"],
    );
    assert!(!ok, "{text}");
    assert!(
        text.starts_with("error: the disk holding") && text.contains("new posts are refused"),
        "{text}"
    );
    assert_eq!(disk(&hub)["level"], "full");
    // Forgetting a person still works at the reserve (issue 24: a flood that filled
    // the disk stopped erasure mesh-wide).
    let (code, body) = hub.post_raw(
        &format!("/api/v1/people/{ada}/forget"),
        &json!({ "confirm": ada }),
    );
    assert_eq!(code, 200, "forget on a full disk: {body}");
    // A bundle import is refused as the disk being full (507), not as a storage fault.
    peer.need("only at the peer, on a stick");
    let agent = aidmesh_tests::http();
    let stick = agent
        .get(format!("{}/api/v1/bundle", peer.api_url()))
        .call()
        .expect("download a bundle")
        .body_mut()
        .with_config()
        .limit(10_000_000)
        .read_to_vec()
        .expect("bundle bytes");
    let mut r = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(format!("{}/api/v1/bundle", hub.api_url()))
        .content_type("application/octet-stream")
        .send(&stick[..])
        .expect("upload");
    let code = r.status().as_u16();
    let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
    assert_eq!(
        (code, body["error"].as_str()),
        (507, Some("disk_full")),
        "{body}"
    );
    let (ok, text) = cli(hub.dir(), &["status"]);
    assert!(ok && text.contains("the disk is full"), "{text}");

    // Reads and the page keep working; every acknowledged post is there.
    let held = hub.item_ids();
    for id in &acked {
        assert!(held.contains(id), "acknowledged {id} missing: {held:?}");
    }
    assert_eq!(
        held.len(),
        acked.len(),
        "a refused post was stored: {held:?}"
    );
    let page = aidmesh_tests::http()
        .get(format!("{}/", hub.api_url()))
        .call()
        .expect("GET /");
    assert_eq!(page.status().as_u16(), 200);

    // A peer's post made while the hub is full waits with the peer.
    let from_peer = peer.need("posted at the peer while the hub is full");

    // A restart on the full disk: the node comes up with everything, still refusing.
    hub.kill();
    hub.restart();
    let held = hub.item_ids();
    for id in &acked {
        assert!(held.contains(id), "acknowledged {id} lost in a restart");
    }
    assert_eq!(
        hub.post_raw(
            "/api/v1/needs",
            &json!({ "title": "still refused", "category": "water" }),
        )
        .0,
        507
    );

    // Space comes back: posts work at once, and the peer's event arrives.
    std::fs::remove_file(&filler).expect("remove the filler");
    acked.push(hub.need("water after space came back"));
    assert_eq!(disk(&hub)["level"], "ok");
    wait_for(
        "the peer's post to reach the hub once it has room",
        Duration::from_secs(30),
        || hub.item_ids().contains(&from_peer).then_some(()),
    );

    // Nothing acknowledged is lost across another restart.
    hub.kill();
    hub.restart();
    let held = hub.item_ids();
    for id in &acked {
        assert!(held.contains(id), "acknowledged {id} lost");
    }
    drop(hub);
}

/// Fills the filesystem holding `f` until not one more byte can be written.
fn fill_completely(f: &Path) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(f)
        .expect("filler file");
    for size in [1usize << 20, 4096, 1] {
        let chunk = vec![0x5au8; size];
        while file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
    }
    assert_eq!(free(f), 0, "the filesystem still has room");
}

/// Runs `aidmesh up` on `dir` until it exits by itself, or 30 s (then it is stopped):
/// (whether it exited by itself, and with success; stdout + stderr).
fn up_once(dir: &Path) -> (Option<bool>, String) {
    let out_file = tempfile::NamedTempFile::new().expect("output file");
    let mut child = Command::new(binary())
        .arg("--data-dir")
        .arg(dir)
        .args([
            "up",
            "--api",
            "127.0.0.1:0",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .args(["--no-mdns", "--no-beacon"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(out_file.reopen().expect("reopen")))
        .stderr(Stdio::from(out_file.reopen().expect("reopen")))
        .spawn()
        .expect("spawn aidmesh up");
    let started = Instant::now();
    let exited = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st.success());
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(out_file.path()).unwrap_or_default();
    (exited, text)
}

#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn a_full_disk_says_keep_the_directory_and_a_moved_aside_hub_is_not_replaced() {
    let fs = Tmpfs::mount(64);
    let filler = fs.path().join("filler");
    // The hub's data directory is called "aidmesh", as the default one is.
    let dir = tempfile::Builder::new()
        .prefix("aidmesh")
        .rand_bytes(0)
        .tempdir_in(fs.path())
        .expect("data dir");
    let path = dir.path().to_path_buf();
    let (ok, out) = cli(
        &path,
        &[
            "init",
            "--community",
            "test",
            "--passphrase",
            TEST_PASSPHRASE,
        ],
    );
    assert!(ok, "init: {out}");
    let mut hub = Node::open("full-hub", dir, Opts::default());
    let before = hub.status();
    let ada = hub.post(
        "/api/v1/people",
        &json!({ "name": "Ada Lovelace", "place": "14 River Rd", "every": "12h" }),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(hub.interrupt(), "the hub did not stop cleanly");

    // Not one byte free: `up` says to free space or move the whole directory, and
    // names the files that hold the identity and the community.
    fill_completely(&filler);
    let (exited, out) = up_once(&path);
    assert_eq!(exited, Some(false), "up on a full disk: {out}");
    for says in [
        "disk is full",
        "Free space",
        "move the WHOLE directory",
        "db/",
        "community.card",
        "identity",
    ] {
        assert!(
            out.contains(says),
            "up on a full disk does not say {says:?}:\n{out}"
        );
    }
    assert!(
        !out.contains("catch up"),
        "up on a full disk says it will catch up:\n{out}"
    );

    // Someone moves it aside anyway, makes room and runs `up` again: refused, naming
    // the moved directory, and nothing is made in its place.
    let aside = fs.path().join("aidmesh.full");
    std::fs::rename(&path, &aside).expect("move aside");
    std::fs::remove_file(&filler).expect("remove the filler");
    let (exited, out) = up_once(&path);
    assert_eq!(exited, Some(false), "up where a hub was moved aside: {out}");
    assert!(
        out.contains("not creating a new community") && out.contains("aidmesh.full"),
        "{out}"
    );
    assert!(!out.contains("New node and community"), "{out}");
    assert!(
        !path.join("db").exists(),
        "a database was made in {}",
        path.display()
    );

    // Moved back, the hub is itself again: same identity, community and people.
    if path.exists() {
        std::fs::remove_dir_all(&path).expect("clear the new directory");
    }
    std::fs::rename(&aside, &path).expect("move back");
    hub.restart();
    let after = hub.status();
    assert_eq!(after["peer_id"], before["peer_id"], "{after}");
    assert_eq!(after["community"], before["community"], "{after}");
    let person = hub.get(&format!("/api/v1/people/{ada}"));
    assert_eq!(person["name"], "Ada Lovelace", "{person}");
}
