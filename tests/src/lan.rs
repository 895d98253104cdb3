//! A LAN on one machine: Linux network namespaces joined by bridges, as laptops on a
//! hub's Wi-Fi. Multicast snooping is off so mDNS keeps crossing the bridges.
//!
//! There are two segments (bridges A and B) with one subnet. A host lives on one
//! segment and can be moved to the other ([`Lan::move_to`]): that is how a test
//! partitions the network, heals it, or carries a volunteer's laptop from one hub to
//! another. The test process has an address on both bridges and a host route to each
//! host, so it reaches every node's API wherever the host is.
//!
//! Names are unique per run (they include the process id); everything is removed when
//! the [`Lan`] is dropped, also when a test panics. A run that is interrupted (Ctrl-C,
//! `kill -9`) cannot clean up, so each run also lists what it creates in a registry
//! file, and the next run removes whatever runs that are no longer alive left behind.
//! Needs root: [`Lan::new`] panics, saying so, when namespaces cannot be made. Tests
//! that use it are marked `#[ignore = "needs root"]`, so a plain `cargo test` lists
//! them as ignored; `cargo test -- --include-ignored` (CI) runs them and they fail
//! without root rather than pass having done nothing.

use std::process::Command;

use crate::LanHost;

pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("building the test LAN: {e}");
    }
}

/// One of the two segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Bridge A, where hosts start.
    A,
    /// Bridge B.
    B,
}

/// Where runs list what they created: one file per run, named after its process id.
const REGISTRY: &str = "/tmp/aidmesh-testbed";

/// Appends a created resource ("netns NAME", "link NAME", "route ADDR") to this run's
/// registry file.
pub(crate) fn register(line: &str) {
    use std::io::Write;
    let _ = std::fs::create_dir_all(REGISTRY);
    let path = format!("{REGISTRY}/{}", std::process::id());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Removes what earlier, interrupted runs left behind.
pub(crate) fn sweep_stale_runs() {
    let Ok(entries) = std::fs::read_dir(REGISTRY) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let alive = name
            .parse::<u32>()
            .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            continue;
        }
        let list = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in list.lines() {
            match line.split_once(' ') {
                Some(("netns", ns)) => {
                    kill_inside(ns);
                    let _ = ip(&["netns", "del", ns]);
                }
                Some(("link", l)) => {
                    let _ = ip(&["link", "del", l]);
                }
                Some(("route", r)) => {
                    let _ = ip(&["route", "del", r]);
                }
                _ => {}
            }
        }
        eprintln!("test LAN: removed what an interrupted run (pid {name}) left behind");
        let _ = std::fs::remove_file(e.path());
    }
}

/// Kills the processes left inside a namespace (they would keep it alive).
pub(crate) fn kill_inside(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

/// Two bridges with namespaces on them.
pub struct Lan {
    bridges: [String; 2],
    prefix: String,
    subnet: String,
    hosts: Vec<(String, String, Segment)>,
}

impl Lan {
    /// Creates an empty LAN; panics with what is missing where namespaces are not
    /// available (not root, no `ip`).
    pub fn new(tag: &str) -> Lan {
        sweep_stale_runs();
        let pid = std::process::id();
        let n = pid % 100_000;
        let name = |s: &str| {
            format!("am{s}{tag}{n}")
                .chars()
                .take(15)
                .collect::<String>()
        };
        let lan = Lan {
            bridges: [name("a"), name("b")],
            prefix: format!("am{tag}{n}"),
            subnet: format!(
                "10.{}.{}",
                100 + pid % 100,
                tag.bytes().map(u32::from).sum::<u32>() % 250
            ),
            hosts: Vec::new(),
        };
        let mut made = Ok(());
        for br in &lan.bridges {
            register(&format!("link {br}"));
            made = made
                .and_then(|_| ip(&["link", "add", br, "type", "bridge"]))
                .and_then(|_| ip(&["link", "set", br, "type", "bridge", "mcast_snooping", "0"]))
                .and_then(|_| ip(&["addr", "add", &format!("{}.254/32", lan.subnet), "dev", br]))
                .and_then(|_| ip(&["link", "set", br, "up"]));
        }
        if let Err(e) = made {
            drop(lan);
            panic!(
                "this test needs root: it builds a LAN of network namespaces ({e}). \
                 Run it as root, or leave it out (it is #[ignore]d unless \
                 --include-ignored is given)"
            );
        }
        lan
    }

    fn bridge(&self, s: Segment) -> &str {
        match s {
            Segment::A => &self.bridges[0],
            Segment::B => &self.bridges[1],
        }
    }

    fn veth(&self, i: u8) -> String {
        let v = format!("v{}{i}", self.prefix);
        v.chars()
            .skip(v.chars().count().saturating_sub(15))
            .collect()
    }

    /// Adds host number `i` (1..=200) in its own namespace on segment A; returns where
    /// a node there should run.
    pub fn host(&mut self, i: u8) -> LanHost {
        let ns = format!("{}-{i}", self.prefix);
        let veth = self.veth(i);
        let addr = format!("{}.{i}", self.subnet);
        self.hosts.push((ns.clone(), addr.clone(), Segment::A));
        register(&format!("netns {ns}"));
        register(&format!("route {addr}/32"));
        must(&["netns", "add", &ns]);
        must(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        must(&["link", "set", &veth, "master", &self.bridges[0]]);
        must(&["link", "set", &veth, "up"]);
        must(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        must(&["-n", &ns, "link", "set", "eth0", "up"]);
        must(&["-n", &ns, "link", "set", "lo", "up"]);
        must(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        must(&[
            "route",
            "replace",
            &format!("{addr}/32"),
            "dev",
            &self.bridges[0],
        ]);
        LanHost {
            netns: ns,
            ip: addr,
        }
    }

    /// Moves a host to segment `to`, as a laptop that leaves one Wi-Fi and joins
    /// another: its link goes down, is re-homed, and comes back up.
    pub fn move_to(&mut self, host: &LanHost, to: Segment) {
        let i: u8 = host
            .ip
            .rsplit('.')
            .next()
            .and_then(|x| x.parse().ok())
            .expect("host address");
        let veth = self.veth(i);
        let br = self.bridge(to).to_string();
        must(&["-n", &host.netns, "link", "set", "eth0", "down"]);
        must(&["link", "set", &veth, "master", &br]);
        must(&["route", "replace", &format!("{}/32", host.ip), "dev", &br]);
        must(&["-n", &host.netns, "link", "set", "eth0", "up"]);
        let _ = ip(&[
            "-n",
            &host.netns,
            "route",
            "add",
            "224.0.0.0/4",
            "dev",
            "eth0",
        ]);
        if let Some(h) = self.hosts.iter_mut().find(|h| h.0 == host.netns) {
            h.2 = to;
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for (ns, addr, _) in &self.hosts {
            kill_inside(ns);
            let _ = ip(&["netns", "del", ns]);
            let _ = ip(&["route", "del", &format!("{addr}/32")]);
        }
        for br in &self.bridges {
            let _ = ip(&["link", "del", br]);
        }
    }
}

impl Lan {
    /// The name of a segment's bridge, for test beds that attach more to it
    /// ([`crate::thin`]).
    pub fn bridge_name(&self, s: Segment) -> String {
        self.bridge(s).to_string()
    }
}

/// Lists a namespace a test bed made outside [`Lan`] (e.g. [`crate::thin`]) in this
/// run's registry, so that a later run removes it if this one is interrupted.
pub fn register_netns(ns: &str) {
    register(&format!("netns {ns}"));
}
