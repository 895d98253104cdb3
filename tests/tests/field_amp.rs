//! Gossip amplification counted in the node as well as on the wire (issue 10): the
//! status counters libp2p keeps (`gossip_msgs_in`, `gossip_bytes_in`,
//! `summary_bytes_in`, `stream_bytes_in`) checked on loopback, and thirty hosts on
//! one namespace segment measured under several gossipsub profiles in one run
//! (`AIDMESH_GOSSIP_PROFILE`), each host's bytes per event split into gossip
//! messages, hub summaries, the rest of the streams (gossip control, mostly) and the
//! wire. The thirty-host test needs root, so it is `#[ignore = "needs root"]`: run it
//! with `--include-ignored` (CI does). Figures: docs/reliability.md, "Thin link and
//! gossip amplification".

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidmesh_tests::lan::Lan;
use aidmesh_tests::thin::need_like;
use aidmesh_tests::{wait_for, LanHost, Node, Opts};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// 120 characters of details, as in the simulation's and thin_link's events.
const DETAILS: &str = "Water for the shelter on the hill: bring containers, we have a pump but no \
                       hoses. Ask for Ana at the back door, after six.";

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn count(s: &Value, key: &str) -> u64 {
    s[key]
        .as_u64()
        .unwrap_or_else(|| panic!("status has no number {key}: {s}"))
}

fn holds(node: &Node, id: &str) -> bool {
    aidmesh_tests::http()
        .get(&format!("{}/api/v1/items/{id}", node.api_url()))
        .call()
        .is_ok_and(|r| r.status().as_u16() == 200)
}

fn post_probe(node: &Node, title: &str) -> String {
    let v = node.post(
        "/api/v1/needs",
        &serde_json::json!({ "title": title, "category": "water", "details": DETAILS }),
    );
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn status_counts_gossip_copies_summaries_and_stream_bytes() {
    let a = Node::start("amp-a", Opts::default());
    let b = Node::start(
        "amp-b",
        Opts {
            peers: vec![a.addr()],
            // libp2p's defaults: the other profile must gossip too.
            env: vec![(
                "AIDMESH_GOSSIP_PROFILE".into(),
                "libp2p-default,idontwant=0".into(),
            )],
            ..Opts::default()
        },
    );
    wait_for("a and b connected", T, || {
        (a.status()["peers"].as_u64() == Some(1) && b.status()["peers"].as_u64() == Some(1))
            .then_some(())
    });
    let before = b.status();
    let title = "amplification counter probe";
    let id = post_probe(&a, title);
    wait_for("the probe to reach b", T, || holds(&b, &id).then_some(()));
    let size = need_like(title, DETAILS, wall_ms()).bytes().len() as u64;
    // A summary from a follows the event within seconds (issue 11).
    let after = wait_for("a's hub summary to reach b", T, || {
        let s = b.status();
        (count(&s, "summary_msgs_in") > count(&before, "summary_msgs_in")).then_some(s)
    });
    let d = |k: &str| count(&after, k) - count(&before, k);
    assert!(
        d("gossip_msgs_in") >= 1,
        "b received the event but counted no gossip message: {after}"
    );
    // The message is the event, the topic and protobuf framing: a little more than the
    // event, far less than two copies.
    let per_msg = d("gossip_bytes_in") / d("gossip_msgs_in");
    assert!(
        per_msg > size && per_msg < size + 100,
        "{per_msg} bytes per gossip message for a {size}-byte event"
    );
    assert!(d("summary_bytes_in") > 0, "summaries counted no bytes");
    // Every stream byte read: gossip messages and control, summaries, sync.
    let parts = count(&after, "gossip_bytes_in")
        + count(&after, "summary_bytes_in")
        + count(&after, "sync_bytes_in")
        + count(&after, "pex_bytes_in");
    assert!(
        count(&after, "pex_bytes_in") > 0,
        "no peer exchange counted"
    );
    assert!(
        count(&after, "stream_bytes_in") > parts,
        "stream bytes {} are not more than gossip, summaries, sync and peer exchange ({parts})",
        count(&after, "stream_bytes_in")
    );
    assert!(count(&after, "stream_bytes_out") > 0);
    // a sent what b read; a's own reads are b's writes.
    assert!(count(&a.status(), "stream_bytes_out") >= count(&before, "stream_bytes_in"));
}

#[test]
fn a_bad_gossip_profile_stops_the_node_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        aidmesh_tests::aidmesh_command()
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("AIDMESH_GOSSIP_PROFILE", "lan,mesh=3/4/2")
            .output()
            .expect("run aidmesh")
    };
    let init = run(&[
        "init",
        "--community",
        "test",
        "--passphrase",
        aidmesh_tests::TEST_PASSPHRASE,
    ]);
    assert!(init.status.success(), "{init:?}");
    let up = run(&[
        "up",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
        "--no-mdns",
        "--no-beacon",
    ]);
    let err = String::from_utf8_lossy(&up.stderr);
    assert!(!up.status.success(), "up started with a bad profile: {err}");
    assert!(
        err.contains("AIDMESH_GOSSIP_PROFILE") && err.contains("low <= target <= high"),
        "unclear error: {err}"
    );
}

/// One host's counters at a moment: its `eth0` receive counter and its status.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    wire: u64,
    packets: u64,
    acks: u64,
    stream: u64,
    gossip: u64,
    copies: u64,
    summary: u64,
    sync: u64,
    pex: u64,
}

impl std::ops::Sub for Reading {
    type Output = Reading;
    fn sub(self, o: Reading) -> Reading {
        Reading {
            wire: self.wire.saturating_sub(o.wire),
            packets: self.packets.saturating_sub(o.packets),
            acks: self.acks.saturating_sub(o.acks),
            stream: self.stream.saturating_sub(o.stream),
            gossip: self.gossip.saturating_sub(o.gossip),
            copies: self.copies.saturating_sub(o.copies),
            summary: self.summary.saturating_sub(o.summary),
            sync: self.sync.saturating_sub(o.sync),
            pex: self.pex.saturating_sub(o.pex),
        }
    }
}

/// Counts what a host receives from peer connections (TCP port 4610 at either end,
/// each packet once: nodes dial from their listening port, so often both ends are
/// 4610): not the API, mDNS or beacons, whose start-up bursts would swamp the events.
fn count_peer_traffic(host: &LanHost) {
    let rules = "table inet amp {\n\
                 chain in { type filter hook input priority 0; policy accept;\n\
                 tcp sport 4610 meta length 52 counter comment \"ack\"\n\
                 tcp sport 4610 counter\n\
                 tcp dport 4610 tcp sport != 4610 meta length 52 counter comment \"ack\"\n\
                 tcp dport 4610 tcp sport != 4610 counter\n\
                 }\n}\n";
    aidmesh_tests::field::nft(&host.netns, rules);
}

/// Peer traffic a host has received, as on the wire: bytes (the IP packets the
/// counters saw plus 14 bytes of Ethernet header each, as `/proc/net/dev` counts),
/// packets, and of those the bare ACKs (52-byte IP packets: no payload).
fn peer_wire(host: &LanHost) -> (u64, u64, u64) {
    let out = Command::new("ip")
        .args(["netns", "exec", &host.netns])
        .args(["nft", "list", "table", "inet", "amp"])
        .output()
        .expect("nft list");
    let (mut bytes, mut packets, mut acks) = (0, 0, 0);
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = l.split("counter packets ").nth(1) else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let p: u64 = w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let b: u64 = w.nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        if l.contains("\"ack\"") {
            acks += p;
        } else {
            bytes += b + 14 * p;
            packets += p;
        }
    }
    (bytes, packets, acks)
}

/// Sums over every host: the wire counters first, all of them, then the statuses.
fn read_all(hosts: &[LanHost], nodes: &[Node]) -> Reading {
    let mut r = Reading::default();
    for h in hosts {
        let (bytes, packets, acks) = peer_wire(h);
        r.wire += bytes;
        r.packets += packets;
        r.acks += acks;
    }
    for n in nodes {
        let s = n.status();
        r.stream += count(&s, "stream_bytes_in");
        r.gossip += count(&s, "gossip_bytes_in");
        r.copies += count(&s, "gossip_msgs_in");
        r.summary += count(&s, "summary_bytes_in");
        r.sync += count(&s, "sync_bytes_in");
        r.pex += count(&s, "pex_bytes_in");
    }
    r
}

/// The profiles compared: `AIDMESH_AMP_PROFILES` (`;`-separated, each as
/// `AIDMESH_GOSSIP_PROFILE` takes it), else libp2p's defaults against the node's,
/// both on event gossip alone (summaries off), then the node as it runs.
fn profiles() -> Vec<String> {
    std::env::var("AIDMESH_AMP_PROFILES")
        .unwrap_or_else(|_| "libp2p-default,summaries=off;lan,summaries=off;lan".into())
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
#[ignore = "needs root"]
fn thirty_hosts_gossip_bytes_per_event_by_profile() {
    const HOSTS: u8 = 30;
    // `AIDMESH_AMP_EVENTS` lengthens the windows (one event every 250 ms): hub
    // summaries go out every 30 s at 30 hubs, so 40 events (13 s) catch some hubs'
    // and not others'; 240 (63 s) show their steady cost.
    let events: usize = std::env::var("AIDMESH_AMP_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut lan = Lan::new("m");
    let hosts: Vec<LanHost> = (1..=HOSTS).map(|i| lan.host(i)).collect();
    for h in &hosts {
        count_peer_traffic(h);
    }
    let size = need_like("amplification probe 000", DETAILS, wall_ms())
        .bytes()
        .len() as f64;
    let peers = u64::from(HOSTS) - 1;
    let mut rows = Vec::new();
    // (profile, gossip messages + control, wire), per host per event.
    let mut costs: Vec<(String, f64, f64)> = Vec::new();
    for profile in profiles() {
        // Periodic sync out of the way (10 min): what is measured is what gossip costs.
        let nodes: Vec<Node> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                Node::start(
                    &format!("m{}", i + 1),
                    Opts {
                        lan: Some(h.clone()),
                        sync_every: Some("10m".into()),
                        // Peer exchange asks every peer every 30 s, all in step here
                        // (every connection is made in the same few seconds), so one
                        // window would carry a round and the other not.
                        args: vec!["--no-peer-exchange".into()],
                        env: vec![("AIDMESH_GOSSIP_PROFILE".into(), profile.clone())],
                        ..Opts::default()
                    },
                )
            })
            .collect();
        let t = Instant::now();
        wait_for(
            &format!("every node to see {peers} peers by mDNS ({profile})"),
            Duration::from_secs(180),
            || {
                nodes
                    .iter()
                    .all(|n| n.status()["peers"].as_u64() == Some(peers))
                    .then_some(())
            },
        );
        let mesh = t.elapsed();
        // The sessions started on connection end: every node has finished one with
        // each of its peers.
        wait_for(
            &format!("every node to finish its first sync with each peer ({profile})"),
            T,
            || {
                nodes
                    .iter()
                    .all(|n| {
                        let list = n.status()["peer_list"].as_array().cloned();
                        list.is_some_and(|l| {
                            l.len() as u64 == peers && l.iter().all(|p| p["last_sync_ms"].is_u64())
                        })
                    })
                    .then_some(())
            },
        );
        // Gossipsub builds its mesh at its heartbeats (every 700 ms) after the
        // connections; the mesh is not in status, so the only handle on it is its period:
        // two heartbeats.
        std::thread::sleep(Duration::from_millis(1400));
        let window = Duration::from_millis(250) * events as u32 + Duration::from_secs(3);
        let r0 = read_all(&hosts, &nodes);
        // The idle window: a measurement, as long as the busy one below.
        std::thread::sleep(window);
        let t = Instant::now();
        let r1 = read_all(&hosts, &nodes);
        let mut ids = Vec::new();
        for i in 0..events {
            let n = &nodes[i * 7 % nodes.len()];
            ids.push(post_probe(n, &format!("amplification probe {i:03}")));
            // The load's pace: one event every 250 ms.
            std::thread::sleep(Duration::from_millis(250));
        }
        // The rest of the busy window (a measurement, as long as the idle one).
        std::thread::sleep(window.saturating_sub(t.elapsed()));
        let r2 = read_all(&hosts, &nodes);
        wait_for(
            &format!("every host to hold every probe ({profile})"),
            T,
            || {
                nodes
                    .iter()
                    .all(|n| ids.iter().all(|id| holds(n, id)))
                    .then_some(())
            },
        );
        let (idle, busy) = (r1 - r0, r2 - r1);
        let per = |busy: u64, idle: u64| {
            busy.saturating_sub(idle) as f64 / f64::from(HOSTS) / events as f64
        };
        let wire = per(busy.wire, idle.wire);
        let packets = per(busy.packets, idle.packets);
        let acks = per(busy.acks, idle.acks);
        let stream = per(busy.stream, idle.stream);
        let gossip = per(busy.gossip, idle.gossip);
        let copies = per(busy.copies, idle.copies);
        let summary = per(busy.summary, idle.summary);
        let sync = per(busy.sync, idle.sync);
        let pex = per(busy.pex, idle.pex);
        // What else the streams carried: gossip's control (IHAVE, IWANT, IDONTWANT,
        // GRAFT, PRUNE, subscriptions) and protocol negotiation.
        let control = stream - gossip - summary - sync - pex;
        let row = format!(
            "REPORT amplification [{profile}]: {HOSTS} hosts (full mesh by mDNS in {:.1} s), \
             {events} events of {size} bytes in {:.1} s, per host per event: \
             gossip messages {gossip:.0} B ({copies:.2} copies, {:.2}x), \
             gossip messages + control {:.0} B ({:.2}x), \
             hub summaries {summary:.0} B, sync {sync:.0} B, peer exchange {pex:.0} B, \
             all streams {stream:.0} B ({:.2}x), peer traffic on the wire {wire:.0} B ({:.2}x) in {packets:.1} packets \
             ({acks:.1} of them bare ACKs); \
             idle window per host: wire {:.0} B, streams {:.0} B",
            mesh.as_secs_f64(),
            window.as_secs_f64(),
            gossip / size,
            gossip + control,
            (gossip + control) / size,
            stream / size,
            wire / size,
            idle.wire as f64 / f64::from(HOSTS),
            idle.stream as f64 / f64::from(HOSTS),
        );
        eprintln!("{row}");
        rows.push(row);
        costs.push((profile.clone(), gossip + control, wire));
        drop(nodes);
    }
    eprintln!(
        "SUMMARY (load {})",
        aidmesh_tests::bench_util::load_average()
    );
    for r in rows {
        eprintln!("{r}");
    }
    // The node's settings must cost well under libp2p's defaults (measured 3.2-3.8x
    // against 9.8x for gossip, 6.0-6.8x against 16.7x on the wire). The ratio, not the
    // 4x goal itself, is asserted: the absolute figures move with the machine's load.
    let cost = |name: &str| costs.iter().find(|c| c.0 == name).map(|c| (c.1, c.2));
    if let (Some(old), Some(new)) = (
        cost("libp2p-default,summaries=off"),
        cost("lan,summaries=off"),
    ) {
        assert!(
            new.0 < old.0 * 0.6 && new.1 < old.1 * 0.75,
            "the node's gossip settings cost {:.0} B of gossip and {:.0} B on the wire per \
             host per event, libp2p's defaults {:.0} B and {:.0} B",
            new.0,
            new.1,
            old.0,
            old.1
        );
    }
}
