//! A LAN on one machine: Linux network namespaces joined by a bridge, as laptops on a
//! hub's Wi-Fi. Multicast snooping is off so mDNS keeps crossing the bridge. The test
//! process reaches each node's API through an address of its own on the bridge.
//!
//! Names are unique per run (they include the process id); everything is removed when
//! the [`Lan`] is dropped, also when a test panics. Needs root: [`Lan::new`] returns
//! `None` (after saying so loudly) when namespaces cannot be made, and panics instead
//! under CI, where they must work.

use std::process::Command;

use crate::LanHost;

fn ip(args: &[&str]) -> Result<(), String> {
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

/// A bridge with namespaces on it.
pub struct Lan {
    bridge: String,
    prefix: String,
    subnet: String,
    hosts: Vec<String>,
}

impl Lan {
    /// Creates an empty LAN, or `None` (loudly) where namespaces are not available.
    pub fn new(tag: &str) -> Option<Lan> {
        let pid = std::process::id();
        let n = pid % 100_000;
        let lan = Lan {
            bridge: format!("amb{tag}{n}").chars().take(15).collect(),
            prefix: format!("am{tag}{n}"),
            subnet: format!(
                "10.{}.{}",
                100 + pid % 100,
                tag.bytes().map(u32::from).sum::<u32>() % 250
            ),
            hosts: Vec::new(),
        };
        let made = ip(&["link", "add", &lan.bridge, "type", "bridge"])
            .and_then(|_| {
                ip(&[
                    "link",
                    "set",
                    &lan.bridge,
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ])
            })
            .and_then(|_| {
                ip(&[
                    "addr",
                    "add",
                    &format!("{}.254/24", lan.subnet),
                    "dev",
                    &lan.bridge,
                ])
            })
            .and_then(|_| ip(&["link", "set", &lan.bridge, "up"]));
        if let Err(e) = made {
            let msg = format!("network namespaces unavailable ({e}); run as root");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("\n*** SKIPPED: {msg} ***\n");
            return None;
        }
        Some(lan)
    }

    /// Adds host number `i` (1..=200) in its own namespace; returns where a node there
    /// should run.
    pub fn host(&mut self, i: u8) -> LanHost {
        let ns = format!("{}-{i}", self.prefix);
        let veth = format!("v{}{i}", self.prefix)
            .chars()
            .rev()
            .take(15)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>();
        let addr = format!("{}.{i}", self.subnet);
        let steps: [Vec<String>; 8] = [
            vec!["netns".into(), "add".into(), ns.clone()],
            vec![
                "link".into(),
                "add".into(),
                veth.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                "eth0".into(),
                "netns".into(),
                ns.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                veth.clone(),
                "master".into(),
                self.bridge.clone(),
            ],
            vec!["link".into(), "set".into(), veth.clone(), "up".into()],
            vec![
                "-n".into(),
                ns.clone(),
                "addr".into(),
                "add".into(),
                format!("{addr}/24"),
                "dev".into(),
                "eth0".into(),
            ],
            vec![
                "-n".into(),
                ns.clone(),
                "link".into(),
                "set".into(),
                "eth0".into(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.clone(),
                "route".into(),
                "add".into(),
                "224.0.0.0/4".into(),
                "dev".into(),
                "eth0".into(),
            ],
        ];
        self.hosts.push(ns.clone());
        for s in steps {
            let args: Vec<&str> = s.iter().map(String::as_str).collect();
            if let Err(e) = ip(&args) {
                panic!("building host {i} of the test LAN: {e}");
            }
        }
        LanHost {
            netns: ns,
            ip: addr,
        }
    }

    /// Cuts host `i` off the LAN (its link goes down) or brings it back.
    pub fn set_link(&self, host: &LanHost, up: bool) {
        let ns = &host.netns;
        if let Err(e) = ip(&[
            "-n",
            ns,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]) {
            panic!("{e}");
        }
        if up {
            let _ = ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.hosts {
            // Processes still inside would keep the namespace alive.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
