//! Harness for multi-node tests and the benchmark: real `aidmesh up` processes, each
//! with its own data directory, talking over real sockets; driven through their real
//! HTTP API. [`Node`] is the one place that starts a node process, waits for its
//! `api.addr` and API, and kills it.
//!
//! Waits are on conditions with a bounded timeout; when one expires the panic message
//! says what each node saw.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod bench_util;
pub mod field;
pub mod intruder;
pub mod lan;
pub mod map;
pub mod phones;
pub mod sim;
pub mod thin;

pub use map::test_town_pmtiles;

/// Path of the `aidmesh` binary (`AIDMESH_BIN`, or built once per test process).
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("AIDMESH_BIN") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "AIDMESH_BIN={} is not a file (a relative path is taken from the test's \
                 package directory; give an absolute one)",
                p.display()
            );
            p
        }
        None => cargo_bin("aidmesh", "aidmesh"),
    })
}

/// A command that runs the `aidmesh` binary: directly, or through `AIDMESH_RUNNER`
/// when set (words split on spaces, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`
/// with `AIDMESH_BIN` pointing at a cross-built binary, as .ci/run does). qemu-user
/// runs the program in its own process, so the child's pid and signals are the node's.
pub fn aidmesh_command() -> Command {
    match std::env::var("AIDMESH_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut c = Command::new(words.next().expect("a runner word"));
            c.args(words).arg(binary());
            c
        }
        _ => Command::new(binary()),
    }
}

/// The machine the `aidmesh` binary is built for, from its ELF header (`x86_64`,
/// `aarch64`, `arm`, or `other`), so a test run through `AIDMESH_RUNNER` can check that
/// it really runs a cross-built binary.
pub fn binary_arch() -> &'static str {
    let head = std::fs::read(binary()).map(|b| b[..20.min(b.len())].to_vec());
    match head.as_deref().ok().and_then(|h| h.get(18..20)) {
        Some([0x3e, 0]) => "x86_64",
        Some([0xb7, 0]) => "aarch64",
        Some([0x28, 0]) => "arm",
        _ => "other",
    }
}

/// Builds binary `bin` of `package` with the cargo running these tests, in the same
/// profile, and returns its path (`target/<profile>/<bin>`).
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    // A test runs from target/<profile>/deps/<test>, a bin (the bench) from
    // target/<profile>/<bin>.
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable directory");
    let profile_dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>")
    } else {
        dir
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", package, "--bin", bin]);
    // Cargo gives this process the test crate's variables; build scripts (ring's)
    // watch some of them, so passing them on would force rebuilds back and forth.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let crate_var = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|p| k.starts_with(p));
        if k == "OUT_DIR" || crate_var {
            cmd.env_remove(&key);
        }
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    profile_dir.join(bin)
}

/// A running (or stopped) node process.
pub struct Node {
    /// Short name for messages ("hub-a").
    pub name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    sync_every: String,
    log_filter: String,
    start_timeout: Duration,
    start_time: Duration,
    api: String,
    extra: Vec<String>,
    lan: Option<LanHost>,
    api_arg: String,
    env: Vec<(String, String)>,
    agent: ureq::Agent,
}

/// Options for a test node.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Community name (default "test").
    pub community: Option<String>,
    /// Passphrase (default a fixed test passphrase).
    pub passphrase: Option<String>,
    /// Static peers.
    pub peers: Vec<String>,
    /// `--sync-every` (default "2s", so that tests converge quickly).
    pub sync_every: Option<String>,
    /// `AIDMESH_LOG` (default: info, the node's own modules at debug).
    pub log: Option<String>,
    /// Bound on the wait until the API answers (default 30 s).
    pub start_timeout: Option<Duration>,
    /// Extra arguments to `up`.
    pub args: Vec<String>,
    /// Run inside this network namespace, listening on `host` with mDNS on (instead
    /// of loopback with static peers only).
    pub lan: Option<LanHost>,
    /// The API address (`--api`), instead of `127.0.0.1:0`.
    pub api: Option<String>,
    /// Extra environment variables of the node's process (e.g. `AIDMESH_GOSSIP_PROFILE`).
    pub env: Vec<(String, String)>,
}

/// A node's place on a namespace LAN (see [`lan`]).
#[derive(Debug, Clone)]
pub struct LanHost {
    /// Network namespace name.
    pub netns: String,
    /// The node's address on the bridge.
    pub ip: String,
}

/// The passphrase of the test community.
pub const TEST_PASSPHRASE: &str = "river lantern otter maple candle harbor";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Runs `aidmesh --data-dir DIR init` for `community` and `passphrase` (the binary under
/// test, as a user would), panicking with its stderr if it fails.
pub fn init_with(dir: &Path, community: &str, passphrase: &str) {
    let out = aidmesh_command()
        .arg("--data-dir")
        .arg(dir)
        .args(["init", "--community", community, "--passphrase", passphrase])
        .output()
        .expect("run aidmesh init");
    assert!(
        out.status.success(),
        "init of {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`init_with`] the test community and [`TEST_PASSPHRASE`].
pub fn init(dir: &Path) {
    init_with(dir, "test", TEST_PASSPHRASE);
}

impl Node {
    /// Initialises a data directory and starts `aidmesh up` on loopback with OS-chosen
    /// ports and no mDNS. Waits (bounded) until its API answers.
    pub fn start(name: &str, opts: Opts) -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&format!("aidmesh-{name}-"))
            .tempdir()
            .expect("temp dir");
        init_with(
            dir.path(),
            opts.community.as_deref().unwrap_or("test"),
            opts.passphrase.as_deref().unwrap_or(TEST_PASSPHRASE),
        );
        Node::open(name, dir, opts)
    }

    /// Starts `aidmesh up` on a data directory that is already initialised (e.g. one
    /// the benchmark filled in-process); the node owns the directory from now on.
    /// Waits (bounded) until its API answers. `community` and `passphrase` of `opts`
    /// are not used: the directory has its own.
    pub fn open(name: &str, dir: tempfile::TempDir, opts: Opts) -> Node {
        let mut extra = Vec::new();
        for p in &opts.peers {
            extra.push("--peer".to_string());
            extra.push(p.clone());
        }
        extra.extend(opts.args.iter().cloned());
        let mut node = Node {
            name: name.to_string(),
            dir,
            child: None,
            sync_every: opts.sync_every.unwrap_or_else(|| "2s".into()),
            log_filter: opts
                .log
                .unwrap_or_else(|| "info,aidmesh_node=debug,libp2p_gossipsub=warn".into()),
            start_timeout: opts.start_timeout.unwrap_or(Duration::from_secs(30)),
            start_time: Duration::ZERO,
            api: String::new(),
            extra,
            lan: opts.lan.clone(),
            api_arg: opts.api.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
            env: opts.env.clone(),
            agent: agent(),
        };
        node.restart();
        node
    }

    /// Base URL of the node's API, e.g. `http://127.0.0.1:40123`.
    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `aidmesh --data-dir DIR ARGS` against this node, in English (`LANG`
    /// removed): whether it succeeded, its stdout and its stderr.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = aidmesh_command()
            .arg("--data-dir")
            .arg(self.dir())
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

    /// Starts the process again on the same data directory (after [`Node::kill`] or
    /// [`Node::interrupt`]). Returns the time from spawning the process until its API
    /// answered `/api/v1/status` (the start time the benchmark reports).
    pub fn restart(&mut self) -> Duration {
        let api_file = self.dir.path().join("api.addr");
        let _ = std::fs::remove_file(&api_file);
        self.api.clear();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("node.log"))
            .expect("log file");
        let mut cmd = match &self.lan {
            None => {
                let mut c = aidmesh_command();
                c.arg("--data-dir").arg(self.dir.path()).args([
                    "up",
                    "--listen",
                    "/ip4/127.0.0.1/tcp/0",
                    "--api",
                    &self.api_arg,
                    "--no-mdns",
                    "--no-beacon",
                ]);
                c
            }
            Some(h) => {
                // `ip netns exec` execs the node, so the child pid is the node's.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &h.netns])
                    .arg(binary())
                    .arg("--data-dir")
                    .arg(self.dir.path())
                    .args(["up", "--listen", "/ip4/0.0.0.0/tcp/4610", "--api"])
                    .arg(format!("{}:4611", h.ip))
                    // The test process posts from another address, as a phone would,
                    // and faster: not limited unless a test sets its own (`Opts::env`).
                    .env("AIDMESH_POSTS_PER_MINUTE", "1000000");
                c
            }
        };
        let started = Instant::now();
        let child = cmd
            .args(["--sync-every", &self.sync_every])
            .args(&self.extra)
            .env("AIDMESH_LOG", &self.log_filter)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn aidmesh up");
        self.child = Some(child);
        let name = self.name.clone();
        // Each probe gives up after 3 s and is tried again: one request lost or stuck
        // (a namespace's link still settling while thirty others start) must not use
        // up the whole start timeout. The last failure is said when it expires.
        let probe: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(3)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut last = String::from("api.addr not written yet");
        let deadline = Instant::now() + self.start_timeout;
        // Polled often: the benchmark reports this wait as the start time.
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("{name} exited at start ({st}); log:\n{}", self.log_tail(30));
                }
            }
            if self.api.is_empty() {
                if let Some(addr) = std::fs::read_to_string(&api_file)
                    .ok()
                    .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
                {
                    self.api = format!("http://{addr}");
                }
            }
            if !self.api.is_empty() {
                match probe.get(format!("{}/api/v1/status", self.api)).call() {
                    Ok(r) if r.status().is_success() => break,
                    Ok(r) => last = format!("status answered {}", r.status()),
                    Err(e) => last = format!("status: {e}"),
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {:?} waiting for {name} to start and its API to answer \
                     (last: {last}); log:\n{}",
                    self.start_timeout,
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.start_time = started.elapsed();
        self.start_time
    }

    /// How long the last start took, from spawning the process until its API answered.
    pub fn start_time(&self) -> Duration {
        self.start_time
    }

    /// Restarts with extra arguments to `up` added (e.g. a clock offset).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.kill();
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self.restart();
    }

    /// Restarts with the extra arguments `args` (given together, in this order) taken
    /// away again (e.g. a clock offset once the clock is "fixed").
    pub fn restart_without(&mut self, args: &[&str]) {
        self.kill();
        if let Some(at) = self
            .extra
            .windows(args.len())
            .position(|w| w.iter().zip(args).all(|(a, b)| a == b))
        {
            self.extra.drain(at..at + args.len());
        }
        self.restart();
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Ctrl-C: sends SIGINT and waits (bounded) for the process to exit; returns
    /// whether it exited successfully.
    pub fn interrupt(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let status = wait_for(
            &format!("{} to stop after Ctrl-C", self.name),
            Duration::from_secs(15),
            || c.try_wait().ok().flatten(),
        );
        status.success()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    fn try_get(&self, path: &str) -> Result<Value, String> {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.api))
            .call()
            .map_err(|e| e.to_string())?;
        r.body_mut().read_json().map_err(|e| e.to_string())
    }

    /// GET, expecting success.
    pub fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap_or_else(|e| {
            panic!(
                "{}: GET {path}: {e}\nlog:\n{}",
                self.name,
                self.log_tail(20)
            )
        })
    }

    /// POST JSON; returns (status code, body).
    pub fn post_raw(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.api))
            .send_json(body)
            .unwrap_or_else(|e| panic!("{}: POST {path}: {e}", self.name));
        let code = r.status().as_u16();
        (code, r.body_mut().read_json().unwrap_or(Value::Null))
    }

    /// POST JSON, expecting 2xx.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (code, v) = self.post_raw(path, body);
        assert!(
            (200..300).contains(&code),
            "{}: POST {path} answered {code}: {v}",
            self.name
        );
        v
    }

    /// Posts a need; returns its full id.
    pub fn need(&self, title: &str) -> String {
        let v = self.post(
            "/api/v1/needs",
            &json!({ "title": title, "category": "water" }),
        );
        v["id"].as_str().expect("id in answer").to_string()
    }

    /// The node's status.
    pub fn status(&self) -> Value {
        self.get("/api/v1/status")
    }

    /// Number of events held.
    pub fn events(&self) -> u64 {
        self.status()["events"].as_u64().unwrap_or(0)
    }

    /// Digest of the event set.
    pub fn digest(&self) -> String {
        self.status()["digest"].as_str().unwrap_or("").to_string()
    }

    /// A peer address of this node (`/ip4/127.0.0.1/tcp/PORT/p2p/ID`).
    pub fn addr(&self) -> String {
        let s = self.status();
        let listen = s["listen"][0]
            .as_str()
            .expect("a listen address")
            .to_string();
        format!("{listen}/p2p/{}", s["peer_id"].as_str().unwrap_or(""))
    }

    /// Asks the node to connect to `addr`.
    pub fn connect(&self, addr: &str) {
        self.post("/api/v1/peers", &json!({ "addr": addr }));
    }

    /// The ids of `acked` (writes the node acknowledged) it no longer holds.
    pub fn lost_writes(&self, acked: &[String]) -> Vec<String> {
        let held: std::collections::HashSet<String> = self.item_ids().into_iter().collect();
        acked
            .iter()
            .filter(|id| !held.contains(*id))
            .cloned()
            .collect()
    }

    /// Ids of every item on the board, any status.
    pub fn item_ids(&self) -> Vec<String> {
        // A list answers at most 500 items; the rest follow `next_cursor`.
        let mut ids = Vec::new();
        let mut path = "/api/v1/items?status=all&limit=500".to_string();
        loop {
            let v = self.get(&path);
            ids.extend(
                v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["id"].as_str().map(str::to_string)),
            );
            match v["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/items?status=all&limit=500&cursor={c}"),
                None => return ids,
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log (last 40 lines) ---\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }
}

/// Needs posted to a node one after another from a thread of their own until
/// [`WriteStorm::stop`] (or until the node stops answering), each acknowledged id
/// pushed to `acked`: the load of the kill -9 and clean-stop tests.
pub struct WriteStorm {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writer: std::thread::JoinHandle<()>,
}

impl WriteStorm {
    /// Starts posting needs titled `"{label} write {n}"` to the node at `base`.
    pub fn start(
        base: String,
        label: String,
        acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) -> WriteStorm {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let writer = std::thread::spawn(move || {
            let agent = http();
            let mut n = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match try_post_need(&agent, &base, &format!("{label} write {n}")) {
                    Ok(id) => acked.lock().unwrap_or_else(|p| p.into_inner()).push(id),
                    Err(_) => break, // the node is stopping or gone
                }
                n += 1;
            }
        });
        WriteStorm { stop, writer }
    }

    /// Stops posting and waits for the thread.
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.writer.join().expect("writer thread");
    }
}

/// Posts a need to the API at `base` without panicking: `Ok(id)` only when the node
/// acknowledged the write (201), `Err` when it is unreachable or refused.
pub fn try_post_need(agent: &ureq::Agent, base: &str, title: &str) -> Result<String, String> {
    let mut r = agent
        .post(format!("{base}/api/v1/needs"))
        .send_json(json!({ "title": title, "category": "water" }))
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() != 201 {
        return Err(format!("answered {}", r.status()));
    }
    let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "no id".into())
}

/// Starts forgetting `people` (full ids) at the node whose API is `api`, half a second
/// from now, one after the other, on a thread of its own; the thread answers how long
/// each `forget` took, in milliseconds. The benches use it to run a compaction while
/// they measure something else.
pub fn forget_in_background(api: &str, people: Vec<String>) -> std::thread::JoinHandle<Vec<f64>> {
    let api = api.to_string();
    std::thread::spawn(move || {
        let agent = http();
        // Not a wait for anything: the schedule this function promises, so that the
        // caller's measurement is under way when the compaction starts.
        std::thread::sleep(Duration::from_millis(500));
        people
            .iter()
            .map(|id| {
                let t = Instant::now();
                let r = agent
                    .post(format!("{api}/api/v1/people/{id}/forget"))
                    .send_json(json!({ "confirm": id }))
                    .expect("forget");
                assert!(r.status().is_success(), "forget refused: {}", r.status());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect()
    })
}

/// An HTTP client with the harness's timeouts.
pub fn http() -> ureq::Agent {
    agent()
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` saying what
/// was awaited.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll(what, timeout, Duration::from_millis(50), f)
}

/// [`wait_for`] with a chosen polling interval.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}

/// [`wait_for`] in async code: polls `f` every 20 ms until it returns `Some`, or panics
/// after `timeout` saying what was awaited.
pub async fn wait_for_async<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node has the same digest and at least `min_events` events; the
/// panic on timeout lists each node's count and digest.
pub fn wait_converged(nodes: &[&Node], min_events: u64, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let seen: Vec<(String, u64, String)> = nodes
            .iter()
            .map(|n| (n.name.clone(), n.events(), n.digest()))
            .collect();
        let same = seen.windows(2).all(|w| w[0].2 == w[1].2);
        if same && seen.iter().all(|(_, e, _)| *e >= min_events) {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            let table: Vec<String> = seen
                .iter()
                .map(|(n, e, d)| format!("  {n}: {e} events, digest {}", &d[..12.min(d.len())]))
                .collect();
            panic!(
                "nodes did not converge on {min_events}+ events within {timeout:?}:\n{}",
                table.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `node --test <script>` (playwright-core driving Debian's Chromium against real
/// nodes started by the script with `AIDMESH_BIN`) and fails naming what is missing
/// when Node.js, Chromium or `npm ci` in tests/web is. `script` is relative to
/// tests/web (a file, or "" for every `*.test.mjs` there). Expects `passes` tests to
/// pass; returns the runner's output.
pub fn run_browser_test(script: &str, passes: usize) -> String {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!node_ok).then_some("node"),
        (!Path::new(&chromium).exists()).then_some("chromium"),
        (!web.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci in tests/web)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "the browser test {script:?} cannot run: missing {}. Install Chromium (or point \
         CHROMIUM at it) and Node.js, and run `npm ci` in tests/web (tests/run.sh does all three)",
        missing.join(", ")
    );
    let out = Command::new("node")
        .arg("--test")
        .arg(web.join(script))
        .env("AIDMESH_BIN", binary())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node --test");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "browser test {script:?} failed:\n{text}"
    );
    assert!(
        text.contains(&format!("# pass {passes}")),
        "browser test {script:?} did not run {passes} test(s):\n{text}"
    );
    text
}
