//! The field: a hub's real Wi-Fi on one machine. N segments, each its own bridge and
//! its own IPv4 subnet (so nothing crosses between segments but what a host with an
//! interface on both carries); hosts with one interface or several; per-host packet
//! loss with nftables (`numgen random mod 100 < P drop` on what the host receives, so
//! each packet between two hosts is lost with probability P); mDNS (UDP 5353) filtered
//! as by an access point that drops multicast.
//!
//! The test process has the address `.254` on every segment, so it reaches every
//! node's API (on the host's first interface, port 4611; API traffic is exempt from
//! the loss, so that measuring does not measure the test's own polling). Hosts have no
//! default route: a host cannot reach a segment it has no interface on.
//!
//! Like [`crate::lan`], names are unique per run, everything is removed on drop and
//! listed in the shared registry so an interrupted run is swept by the next. Needs root
//! and nftables: [`Field::new`] panics, saying so, without them; tests using it are
//! `#[ignore = "needs root ..."]`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::lan::{ip, kill_inside, register, sweep_stale_runs};
use crate::LanHost;

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("building the test field: {e}");
    }
}

/// What a host's Wi-Fi does to its traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wifi {
    /// Percentage of received packets dropped (0..=100).
    pub loss_percent: u8,
    /// Drop mDNS (UDP 5353) both ways, as an access point that filters multicast.
    pub block_mdns: bool,
}

/// Segments (bridges, one subnet each) with hosts on them.
pub struct Field {
    bridges: Vec<String>,
    subnets: Vec<String>,
    prefix: String,
    hosts: Vec<String>,
}

impl Field {
    /// Creates `segments` empty segments; panics with what is missing where namespaces
    /// or nftables are not available.
    pub fn new(tag: u8, segments: usize) -> Field {
        assert!(
            (1..=8).contains(&segments) && tag < 30,
            "1..=8 segments, tag < 30"
        );
        sweep_stale_runs();
        let pid = std::process::id();
        let n = pid % 100_000;
        let prefix = format!("f{tag}{n}");
        let second = 16 + pid % 16;
        let field = Field {
            bridges: (0..segments).map(|s| format!("{prefix}s{s}")).collect(),
            subnets: (0..segments)
                .map(|s| format!("172.{second}.{}", u32::from(tag) * 8 + s as u32))
                .collect(),
            prefix,
            hosts: Vec::new(),
        };
        let nft = Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let mut made = if nft {
            Ok(())
        } else {
            Err("nft not found: install nftables".to_string())
        };
        for (br, subnet) in field.bridges.iter().zip(&field.subnets) {
            register(&format!("link {br}"));
            made = made
                .and_then(|_| ip(&["link", "add", br, "type", "bridge"]))
                .and_then(|_| ip(&["link", "set", br, "type", "bridge", "mcast_snooping", "0"]))
                .and_then(|_| ip(&["addr", "add", &format!("{subnet}.254/24"), "dev", br]))
                .and_then(|_| ip(&["link", "set", br, "up"]));
        }
        if let Err(e) = made {
            drop(field);
            panic!(
                "this test needs root and nftables: it builds segments of network \
                 namespaces ({e}). Run it as root, or leave it out (it is #[ignore]d \
                 unless --include-ignored is given)"
            );
        }
        field
    }

    /// The subnet of segment `s` (the first three octets).
    pub fn subnet(&self, s: usize) -> &str {
        &self.subnets[s]
    }

    /// Adds host number `i` (1..=200) in its own namespace with one interface on each
    /// of `segments` (eth0 on the first, eth1 on the second, ...), address `.i` on
    /// each, and `wifi` applied. A node there listens on every interface; its API is on
    /// the first.
    pub fn host(&mut self, i: u8, segments: &[usize], wifi: Wifi) -> LanHost {
        self.host_with(i, segments, wifi, true)
    }

    /// As [`Field::host`], but its addresses are added without `brd` (as `ip addr add
    /// 10.0.0.5/24 dev wlan0` does): the interface reports the broadcast address
    /// 0.0.0.0.
    pub fn host_without_brd(&mut self, i: u8, segments: &[usize], wifi: Wifi) -> LanHost {
        self.host_with(i, segments, wifi, false)
    }

    fn host_with(&mut self, i: u8, segments: &[usize], wifi: Wifi, brd: bool) -> LanHost {
        assert!(!segments.is_empty(), "a host needs an interface");
        let ns = format!("{}-{i}", self.prefix);
        self.hosts.push(ns.clone());
        register(&format!("netns {ns}"));
        must(&["netns", "add", &ns]);
        must(&["-n", &ns, "link", "set", "lo", "up"]);
        for (k, &s) in segments.iter().enumerate() {
            self.interface(&ns, i, k, s, brd);
        }
        must(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        self.wifi(&ns, wifi);
        LanHost {
            netns: ns,
            ip: format!("{}.{i}", self.subnets[segments[0]]),
        }
    }

    /// Plugs host number `i` (`host`) into segment `segment` with a new interface
    /// `eth<k>` (as a laptop given a cable while it runs); `k` must be the next unused.
    pub fn plug(&mut self, host: &LanHost, i: u8, k: usize, segment: usize) {
        self.interface(&host.netns, i, k, segment, true);
    }

    fn interface(&self, ns: &str, i: u8, k: usize, s: usize, brd: bool) {
        let veth = format!("{}h{i}e{k}", self.prefix);
        let eth = format!("eth{k}");
        let addr = format!("{}.{i}", self.subnets[s]);
        register(&format!("link {veth}"));
        must(&[
            "link", "add", &veth, "type", "veth", "peer", "name", &eth, "netns", ns,
        ]);
        must(&["link", "set", &veth, "master", &self.bridges[s]]);
        must(&["link", "set", &veth, "up"]);
        let cidr = format!("{addr}/24");
        if brd {
            must(&["-n", ns, "addr", "add", &cidr, "brd", "+", "dev", &eth]);
        } else {
            must(&["-n", ns, "addr", "add", &cidr, "dev", &eth]);
        }
        must(&["-n", ns, "link", "set", &eth, "up"]);
    }

    fn wifi(&self, ns: &str, wifi: Wifi) {
        let mut rules = String::from(
            "table inet field {\n\
             chain in { type filter hook input priority 0; policy accept;\n\
             iifname \"lo\" accept\n\
             tcp dport 4611 accept\n",
        );
        if wifi.block_mdns {
            rules.push_str("udp dport 5353 drop\n");
        }
        if wifi.loss_percent > 0 {
            rules.push_str(&format!(
                "numgen random mod 100 < {} counter drop\n",
                wifi.loss_percent
            ));
        }
        rules.push_str("}\nchain out { type filter hook output priority 0; policy accept;\n");
        if wifi.block_mdns {
            rules.push_str("udp dport 5353 drop\n");
        }
        rules.push_str("}\n}\n");
        nft(ns, &rules);
    }
}

impl Field {
    /// Packets the host's loss rule has dropped so far (proof that the loss applies).
    pub fn dropped(&self, host: &LanHost) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &host.netns, "nft", "list", "ruleset"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        out.lines()
            .filter(|l| l.contains("numgen"))
            .filter_map(|l| {
                let rest = l.split("packets ").nth(1)?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for Field {
    fn drop(&mut self) {
        for ns in &self.hosts {
            kill_inside(ns);
            let _ = ip(&["netns", "del", ns]);
        }
        for br in &self.bridges {
            let _ = ip(&["link", "del", br]);
        }
    }
}

/// A node's arrivals, timed from its `/api/v1/stream`: a thread per node records when
/// each event id first appears there.
pub mod arrivals {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Node index and event id → when it arrived (the benches look up by these keys
    /// too).
    pub type Seen = Arc<Mutex<HashMap<(usize, String), Instant>>>;

    /// Starts watching the node with API `api` as number `idx`.
    pub fn watch(idx: usize, api: String, seen: Seen) {
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
            let Ok(resp) = agent.get(format!("{api}/api/v1/stream")).call() else {
                return;
            };
            let reader = BufReader::new(resp.into_body().into_reader());
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let now = Instant::now();
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                    if let Some(id) = v["id"].as_str() {
                        seen.lock()
                            .expect("arrivals")
                            .entry((idx, id.to_string()))
                            .or_insert(now);
                    }
                }
            }
        });
    }

    /// How many nodes have seen `id`.
    pub fn count(seen: &Seen, id: &str) -> usize {
        seen.lock()
            .expect("arrivals")
            .keys()
            .filter(|(_, i)| i == id)
            .count()
    }

    /// When node `idx` saw `id`.
    pub fn at(seen: &Seen, id: &str, idx: usize) -> Option<Instant> {
        seen.lock()
            .expect("arrivals")
            .get(&(idx, id.to_string()))
            .copied()
    }
}

/// The `q` quantile (0..=1) of sorted `v`, by nearest rank.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Loads nftables `rules` into namespace `ns`; panics with nft's complaint and the
/// rules if it refuses them.
pub fn nft(ns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft (the field test bed needs nftables)");
    child
        .stdin
        .take()
        .expect("nft stdin")
        .write_all(rules.as_bytes())
        .expect("write nft rules");
    let out = child.wait_with_output().expect("nft");
    assert!(
        out.status.success(),
        "nft rules for {ns} refused: {}\n{rules}",
        String::from_utf8_lossy(&out.stderr)
    );
}
