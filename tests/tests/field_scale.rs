//! The issue-10 scenarios at scale in the field test bed (tests/src/field.rs): thirty
//! hosts on one lossy segment with multicast filtered, and a chain of four segments
//! joined only by two-interface hosts. Each prints a `REPORT` line (figures in
//! docs/reliability.md). Needs root and nftables: `#[ignore]`d unless
//! `--include-ignored` (CI).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidmesh_tests::field::{arrivals, quantile, Field, Wifi};
use aidmesh_tests::{wait_for, LanHost, Node, Opts};

const T: Duration = Duration::from_secs(120);

/// The scenarios run one at a time: two fields of thirty debug nodes at once on a
/// two-core machine measure the machine, not the network (and once starved a node's
/// start past its timeout in CI).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Nodes run with the production sync period (30 s), so what is measured is gossip.
fn on(host: LanHost, name: &str) -> Node {
    Node::start(
        name,
        Opts {
            lan: Some(host),
            sync_every: Some("30s".into()),
            log: Some("info,aidmesh_node=debug,libp2p_gossipsub=warn".into()),
            ..Opts::default()
        },
    )
}

fn peers(n: &Node) -> u64 {
    n.status()["peers"].as_u64().unwrap_or(0)
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds (user + system) a process has used.
fn cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Posts `title` at `nodes[at]` until one post reaches every watched node (the streams
/// and gossip meshes are forming); bounded.
fn warm_up(nodes: &[Node], seen: &arrivals::Seen) {
    let mut k = 0;
    wait_for("a warm-up event to reach every node's stream", T, || {
        k += 1;
        let id = nodes[k % nodes.len()].need(&format!("warm-up {k}"));
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if arrivals::count(seen, &id) == nodes.len() {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    });
}

fn thirty_hosts(tag: u8, loss: u8, require_full_mesh: bool) {
    const N: usize = 30;
    let _alone = alone();
    let mut field = Field::new(tag, 1);
    let wifi = Wifi {
        loss_percent: loss,
        block_mdns: true,
    };
    let hosts: Vec<LanHost> = (1..=N as u8).map(|i| field.host(i, &[0], wifi)).collect();
    let nodes: Vec<Node> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| on(h.clone(), &format!("h{}", i + 1)))
        .collect();
    // Every host connected to all 29 others at one moment. Under 30 % loss (and this
    // machine's load) a connection now and then drops and is redialled, so there the
    // figure is reported as not reached rather than failing the test: what that
    // scenario must show is that every event arrives.
    let all_up = Instant::now();
    let mut counts: Vec<u64> = Vec::new();
    let mut mesh = None;
    while all_up.elapsed() < T {
        counts = nodes.iter().map(peers).collect();
        if counts.iter().all(|c| *c == N as u64 - 1) {
            mesh = Some(all_up.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    counts.sort();
    let mesh_text = match mesh {
        Some(d) => format!(
            "full mesh (29 peers each) {:.1} s after the last start",
            d.as_secs_f64()
        ),
        None => format!(
            "no moment of full mesh within {} s (peers per host at the end: min {}, median {})",
            T.as_secs(),
            counts[0],
            counts[N / 2]
        ),
    };
    assert!(
        mesh.is_some() || !require_full_mesh,
        "not every host connected to the {} others within {T:?}: {mesh_text}",
        N - 1
    );
    let cpu0: f64 = nodes.iter().filter_map(Node::pid).map(cpu_s).sum();
    let seen: arrivals::Seen = Arc::new(Mutex::new(Default::default()));
    for (i, n) in nodes.iter().enumerate() {
        arrivals::watch(i, n.api_url().to_string(), seen.clone());
    }
    warm_up(&nodes, &seen);
    let measured = Instant::now();
    let mut lat = Vec::new();
    const EVENTS: usize = 10;
    for k in 0..EVENTS {
        let from = (k * 7) % N;
        let t0 = Instant::now();
        let id = nodes[from].need(&format!("posted at h{} ({loss}% loss)", from + 1));
        wait_for(
            &format!("event {k} from h{} to reach all {N}", from + 1),
            T,
            || (arrivals::count(&seen, &id) == N).then_some(()),
        );
        for i in (0..N).filter(|i| *i != from) {
            let at = arrivals::at(&seen, &id, i).expect("arrival");
            lat.push(at.saturating_duration_since(t0).as_secs_f64() * 1e3);
        }
    }
    let cpu = nodes.iter().filter_map(Node::pid).map(cpu_s).sum::<f64>() - cpu0;
    let wall = measured.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let dropped: u64 = hosts.iter().map(|h| field.dropped(h)).sum();
    assert!(dropped > 0, "the loss rules dropped nothing");
    let mut rss: Vec<f64> = nodes.iter().filter_map(Node::pid).map(rss_mib).collect();
    rss.sort_by(f64::total_cmp);
    eprintln!(
        "REPORT field-30-hosts {loss}% loss, mDNS dropped: {mesh_text}; {} arrivals of {EVENTS} events at all 30: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; RSS per node median {:.0} MiB max {:.0} MiB; CPU of all 30 while measuring {:.1} s in {:.1} s; {dropped} packets dropped by the loss rules; load {}",
        lat.len(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.99),
        lat[lat.len() - 1],
        quantile(&rss, 0.5),
        rss[rss.len() - 1],
        cpu,
        wall,
        load()
    );
    assert_eq!(
        lat.len(),
        EVENTS * (N - 1),
        "an event did not reach every host"
    );
}

#[test]
#[ignore = "needs root and nftables"]
fn thirty_hosts_with_15_percent_loss_and_no_multicast_find_each_other_and_get_every_event() {
    thirty_hosts(10, 15, true);
}

#[test]
#[ignore = "needs root and nftables"]
fn thirty_hosts_with_30_percent_loss_and_no_multicast_get_every_event() {
    thirty_hosts(11, 30, false);
}

#[test]
#[ignore = "needs root and nftables"]
fn an_event_crosses_a_chain_of_four_segments_joined_by_two_interface_hosts() {
    let _alone = alone();
    let mut field = Field::new(12, 4);
    let wifi = Wifi {
        loss_percent: 0,
        block_mdns: true,
    };
    // Segment s has hosts 10s+1 and 10s+2; host 10(s+1)+5 joins segments s and s+1.
    let mut nodes: Vec<Node> = Vec::new();
    for s in 0..4u8 {
        for j in 1..=2u8 {
            let i = 10 * s + j;
            nodes.push(on(field.host(i, &[s as usize], wifi), &format!("s{s}-{j}")));
        }
    }
    let bridges: Vec<Node> = (0..3u8)
        .map(|s| {
            let i = 10 * (s + 1) + 5;
            on(
                field.host(i, &[s as usize, s as usize + 1], wifi),
                &format!("join{s}{}", s + 1),
            )
        })
        .collect();
    // The path: s0-1 → join01 → join12 → join23 → s3-1.
    let path: Vec<&Node> = vec![&nodes[0], &bridges[0], &bridges[1], &bridges[2], &nodes[6]];
    wait_for("each joining host to see both its segments", T, || {
        // join01: 2 + 2 + join12; join12: 2 + 2 + join01 + join23; join23: like join01.
        (peers(&bridges[0]) == 5 && peers(&bridges[1]) == 6 && peers(&bridges[2]) == 5)
            .then_some(())
    });
    let seen: arrivals::Seen = Arc::new(Mutex::new(Default::default()));
    for (i, n) in path.iter().enumerate() {
        arrivals::watch(i, n.api_url().to_string(), seen.clone());
    }
    let all: Vec<&Node> = nodes.iter().chain(bridges.iter()).collect();
    // Warm up along the path only (the other hosts are not watched).
    let mut k = 0;
    wait_for("a warm-up event to cross all four segments", T, || {
        k += 1;
        let id = path[0].need(&format!("warm-up {k}"));
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if arrivals::count(&seen, &id) == path.len() {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    });
    let mut hops: Vec<Vec<f64>> = vec![Vec::new(); path.len() - 1];
    for k in 0..10 {
        let t0 = Instant::now();
        let id = path[0].need(&format!("down the chain {k}"));
        wait_for("the event to reach segment 4", T, || {
            (arrivals::count(&seen, &id) == path.len()).then_some(())
        });
        let mut prev = t0;
        for (h, hop) in hops.iter_mut().enumerate() {
            let at = arrivals::at(&seen, &id, h + 1).expect("arrival");
            hop.push(at.saturating_duration_since(prev).as_secs_f64() * 1e3);
            prev = at;
        }
    }
    // Every host, not only the path, ends with every event.
    let events = path[0].events();
    aidmesh_tests::wait_converged(&all, events, T);
    let mut total: Vec<f64> = (0..10).map(|k| hops.iter().map(|h| h[k]).sum()).collect();
    total.sort_by(f64::total_cmp);
    let med: Vec<String> = hops
        .iter_mut()
        .map(|h| {
            h.sort_by(f64::total_cmp);
            format!("{:.0}", quantile(h, 0.5))
        })
        .collect();
    eprintln!(
        "REPORT field-chain: 4 segments joined by 3 two-interface hosts (mDNS dropped): median per hop (s0 host → join01 → join12 → join23 → s3 host) {} ms; end to end median {:.0} ms max {:.0} ms; all 11 hosts converged; load {}",
        med.join(" / "),
        quantile(&total, 0.5),
        total[total.len() - 1],
        load()
    );
}
