//! A Syncthing instance for the comparison: its own home, on loopback only, driven
//! through its REST API (the API key read from the `config.xml` that
//! `syncthing generate` wrote).

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aidmesh_tests::{http, wait_for};
use serde_json::{json, Value};

/// How to install Syncthing, said when it is missing.
pub(crate) const INSTALL: &str = "tests/scripts/install-syncthing.sh (Debian: apt-get install -y \
     syncthing), or set SYNCTHING=/path/to/syncthing";

/// The Syncthing binary (`SYNCTHING`, or `syncthing` on the PATH) and its version line.
pub(crate) fn locate() -> Result<(PathBuf, String), String> {
    let bin =
        std::env::var_os("SYNCTHING").map_or_else(|| PathBuf::from("syncthing"), PathBuf::from);
    let out = Command::new(&bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((bin, version))
}

/// A TCP port on 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sets the text of the first `<tag>…</tag>` in `xml`, which must hold one.
fn set_tag(xml: &mut String, tag: &str, value: &str) {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("config.xml has no <{tag}>"))
        + open.len();
    let end = start
        + xml[start..]
            .find(&close)
            .unwrap_or_else(|| panic!("config.xml has no </{tag}>"));
    xml.replace_range(start..end, value);
}

fn tag<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len());
    let end = start.and_then(|s| xml[s..].find(&format!("</{tag}>")).map(|e| s + e));
    match (start, end) {
        (Some(s), Some(e)) => &xml[s..e],
        _ => panic!("config.xml has no <{tag}>"),
    }
}

/// A running `syncthing serve`, killed when dropped.
pub(crate) struct Syncthing {
    pub(crate) name: String,
    home: PathBuf,
    child: Option<Child>,
    api: String,
    key: String,
    /// Its device ID.
    pub(crate) id: String,
    /// Its sync protocol port on 127.0.0.1.
    pub(crate) port: u16,
    agent: ureq::Agent,
}

impl Syncthing {
    /// Generates a home in `home` (keys and config), configures it for loopback only
    /// (no discovery, relays, NAT, STUN, usage or crash reports, upgrades; normal
    /// process priority) and starts it; waits (bounded) until its REST API answers.
    pub(crate) fn start(name: &str, bin: &Path, home: &Path) -> Syncthing {
        let out = Command::new(bin)
            .args(["generate", "--no-default-folder", "--home"])
            .arg(home)
            .output()
            .expect("run syncthing generate");
        assert!(
            out.status.success(),
            "{name}: syncthing generate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = home.join("config.xml");
        let mut xml = std::fs::read_to_string(&config).expect("config.xml");
        let port = free_port();
        for (t, v) in [
            ("listenAddress", format!("tcp://127.0.0.1:{port}")),
            ("globalAnnounceEnabled", "false".into()),
            ("localAnnounceEnabled", "false".into()),
            ("relaysEnabled", "false".into()),
            ("natEnabled", "false".into()),
            // 0 turns STUN off.
            ("stunKeepaliveStartS", "0".into()),
            ("urAccepted", "-1".into()),
            ("crashReportingEnabled", "false".into()),
            ("autoUpgradeIntervalH", "0".into()),
            ("startBrowser", "false".into()),
            // Syncthing lowers its own priority by default; aidmesh runs at normal
            // priority: on a shared machine that alone would skew the comparison.
            ("setLowPriority", "false".into()),
        ] {
            set_tag(&mut xml, t, &v);
        }
        std::fs::write(&config, &xml).expect("write config.xml");
        let key = tag(&xml, "apikey").to_string();
        let gui = free_port();
        let log = File::create(home.join("syncthing.log")).expect("log file");
        let mut serve = Command::new(bin);
        // Syncthing runs as a monitor process and a child it starts (with
        // `--no-restart` too): STMONITORED makes it the one process, its own group so
        // that Drop kills whatever it started, and killed with the bench even when the
        // bench itself is killed.
        serve.env("STMONITORED", "yes").process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            serve.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = serve
            .args([
                "serve",
                "--no-browser",
                "--no-restart",
                "--no-upgrade",
                "--logflags=3",
            ])
            .arg("--home")
            .arg(home)
            .arg(format!("--gui-address=http://127.0.0.1:{gui}"))
            .env("STNODEFAULTFOLDER", "1")
            .env("STNOUPGRADE", "1")
            .env("STNORESTART", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start syncthing");
        let mut st = Syncthing {
            name: name.to_string(),
            home: home.to_path_buf(),
            child: Some(child),
            api: format!("http://127.0.0.1:{gui}"),
            key,
            id: String::new(),
            port,
            agent: http(),
        };
        wait_for(
            &format!("{name}'s REST API (Syncthing in {})", home.display()),
            Duration::from_secs(60),
            || {
                if let Some(status) = st.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    panic!("{name} exited ({status}) at start:\n{}", st.log_tail(30));
                }
                st.try_get("/rest/system/ping").ok()
            },
        );
        st.id = st.get("/rest/system/status")["myID"]
            .as_str()
            .expect("myID")
            .to_string();
        st
    }

    fn try_get(&self, path: &str) -> Result<Value, String> {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.api))
            .header("X-API-Key", &self.key)
            .call()
            .map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("status {}", r.status()));
        }
        r.body_mut().read_json().map_err(|e| e.to_string())
    }

    /// GET, expecting 200 and JSON.
    pub(crate) fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap_or_else(|e| {
            panic!(
                "{}: GET {path}: {e}\nlog:\n{}",
                self.name,
                self.log_tail(20)
            )
        })
    }

    fn send(&self, method: &str, path: &str, body: &Value) {
        let url = format!("{}{path}", self.api);
        let req = match method {
            "POST" => self.agent.post(url),
            "PATCH" => self.agent.patch(url),
            _ => self.agent.put(url),
        };
        let r = req
            .header("X-API-Key", &self.key)
            .send_json(body)
            .unwrap_or_else(|e| panic!("{}: {method} {path}: {e}", self.name));
        assert_eq!(
            r.status(),
            200,
            "{}: {method} {path} {body}\nlog:\n{}",
            self.name,
            self.log_tail(20)
        );
    }

    /// Adds device `id`, reached at tcp://127.0.0.1:`port` only, paused or not.
    pub(crate) fn add_device(&self, id: &str, port: u16, paused: bool) {
        self.send(
            "POST",
            "/rest/config/devices",
            &json!({
                "deviceID": id,
                "name": id[..7].to_string(),
                "addresses": [format!("tcp://127.0.0.1:{port}")],
                "paused": paused,
            }),
        );
    }

    /// Adds folder `folder` at `path`, shared with `peer`: send and receive (the
    /// default), no watcher and no rescan within the measurement (once an hour), each
    /// file flushed to disk as it is written (the default) if `fsync`.
    pub(crate) fn add_folder(&self, folder: &str, path: &Path, peer: &str, fsync: bool) {
        self.send(
            "POST",
            "/rest/config/folders",
            &json!({
                "id": folder,
                "label": folder,
                "path": path,
                "type": "sendreceive",
                "devices": [{"deviceID": self.id}, {"deviceID": peer}],
                "rescanIntervalS": 3600,
                "fsWatcherEnabled": false,
                "disableFsync": !fsync,
            }),
        );
    }

    /// Unpauses device `id`.
    pub(crate) fn resume(&self, id: &str) {
        self.send(
            "PATCH",
            &format!("/rest/config/devices/{id}"),
            &json!({"paused": false}),
        );
    }

    /// `/rest/db/status` of `folder` (Syncthing calls it expensive: poll it sparingly).
    pub(crate) fn db_status(&self, folder: &str) -> Value {
        self.get(&format!("/rest/db/status?folder={folder}"))
    }

    /// Whether it is connected to device `id`.
    pub(crate) fn connected(&self, id: &str) -> bool {
        self.get("/rest/system/connections")["connections"][id]["connected"]
            .as_bool()
            .unwrap_or(false)
    }

    /// Bytes in plus out over every connection since it started.
    pub(crate) fn wire_bytes(&self) -> u64 {
        let t = &self.get("/rest/system/connections")["total"];
        t["inBytesTotal"].as_u64().unwrap_or(0) + t["outBytesTotal"].as_u64().unwrap_or(0)
    }

    /// CPU time (user + system) it has used so far, in seconds.
    pub(crate) fn cpu_secs(&self) -> f64 {
        let pid = self.child.as_ref().map_or(0, Child::id);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the command name in brackets: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|w| w.parse().unwrap_or(0.0))
            .collect();
        let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
        // SAFETY: sysconf only reads a constant.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// The last `n` lines of its log.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.home.join("syncthing.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The whole group: a monitor's child too, were there one.
            // SAFETY: a plain syscall on the group this process started.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
