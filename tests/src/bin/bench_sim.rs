//! The simulated town of 300 hubs (issue 10): propagation time, bytes per hub per
//! event, and catch-up traffic against the number of hubs. Deterministic: the same
//! seed prints the same figures. Results go to `docs/reliability.md` ("Simulated town
//! of 300 hubs").
//!
//! ```text
//! cargo run -p aidmesh-tests --bin bench_sim [seed]
//! cargo run -p aidmesh-tests --bin bench_sim [seed] wire       # mesh 3 vs 4, hub summaries
//! cargo run -p aidmesh-tests --bin bench_sim [seed] city [N]   # 3,000 hubs, N events
//! cargo run -p aidmesh-tests --bin bench_sim [seed] history    # catch-up over 10M events
//! ```
//!
//! The figures are in simulated time, so the build profile changes only how long the
//! run takes (about a minute in the dev profile on 2 busy cores), not what it prints.

use std::time::Instant;

use aidmesh_tests::sim::{self, Churn, Config, GossipParams, SummaryParams};

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let t0 = Instant::now();
    let mode = std::env::args().nth(2);
    let arg3 = std::env::args()
        .nth(3)
        .and_then(|s| s.parse::<usize>().ok());
    match mode.as_deref() {
        Some("wire") => {
            wire(seed);
            eprintln!("(took {:.1} s)", t0.elapsed().as_secs_f64());
            return;
        }
        Some("city") => {
            city(seed, arg3.unwrap_or(100));
            eprintln!("(took {:.1} s)", t0.elapsed().as_secs_f64());
            return;
        }
        Some("history") => {
            history(seed, arg3);
            eprintln!("(took {:.1} s)", t0.elapsed().as_secs_f64());
            return;
        }
        _ => {}
    }
    let only_lan = std::env::args().nth(2).is_some();

    println!("== one LAN of 30 hubs (every hub connected to every other), no loss, no churn,");
    println!("== 200 events one every 500 ms: gossip variants (the node's is the first)");
    for (name, g) in lan_variants() {
        let mut cfg = Config::town(30, seed);
        cfg.cluster_size = (30, 30);
        cfg.lan.loss = 0.0;
        cfg.gossip = g;
        println!("-- {name}");
        print!("{}", sim::propagation(&cfg, 200, 500, 30));
    }
    if std::env::args().nth(2).as_deref() == Some("town") {
        for (name, g) in lan_variants() {
            let mut cfg = Config::town(300, seed);
            cfg.churn = Some(Churn {
                mean_up_s: 7_200.0,
                mean_down_s: 600.0,
            });
            cfg.gossip = g;
            println!("-- town: {name}");
            print!("{}", sim::propagation(&cfg, 200, 2_000, 60));
        }
    }
    if only_lan {
        eprintln!("(took {:.1} s)", t0.elapsed().as_secs_f64());
        return;
    }

    println!(
        "== propagation, 300 hubs, churn (mean up 2 h, down 10 min), 200 events one every 2 s"
    );
    let mut cfg = Config::town(300, seed);
    cfg.churn = Some(Churn {
        mean_up_s: 7_200.0,
        mean_down_s: 600.0,
    });
    print!("{}", sim::propagation(&cfg, 200, 2_000, 60));

    println!("\n== the same without loss (perfect links)");
    let mut clean = cfg.clone();
    clean.lan.loss = 0.0;
    clean.long.loss = 0.0;
    print!("{}", sim::propagation(&clean, 200, 2_000, 60));

    println!("\n== the same with 30% loss on the LANs");
    let mut lossy = cfg.clone();
    lossy.lan.loss = 0.30;
    print!("{}", sim::propagation(&lossy, 200, 2_000, 60));

    println!("\n== libp2p's gossipsub defaults, the node before (D=6, 5-12, IHAVE of 3 windows to max(6, 1/4 of the others), flood publish, long links not explicit)");
    let mut before = cfg.clone();
    before.gossip = lan_variants()[2].1.clone();
    print!("{}", sim::propagation(&before, 200, 2_000, 60));

    println!("\n== event size: 1,000 characters of details");
    let mut big = cfg.clone();
    big.details_chars = 1_000;
    print!("{}", sim::propagation(&big, 200, 2_000, 60));

    println!("\n== partition of the town into two halves for 10 min, 1 event per hub meanwhile, then heal");
    for n in [30, 100, 300] {
        print!("{}", sim::partition(&Config::town(n, seed), 600, 1, 300));
    }

    println!("\n== one hub back after 4 h away, 2 events per hub per hour meanwhile");
    for n in [30, 100, 300] {
        print!(
            "{}",
            sim::returning_hub(&Config::town(n, seed), 4.0, 2.0, 300)
        );
    }
    println!("\n== the same, the old way: every session fetches what the hub lacks (no claims)");
    for n in [30, 100, 300] {
        let mut c = Config::town(n, seed);
        c.fetch_once = false;
        print!("{}", sim::returning_hub(&c, 4.0, 2.0, 300));
    }
    eprintln!("(took {:.1} s)", t0.elapsed().as_secs_f64());
}

/// Gossipsub variants compared on one LAN: the node's settings first.
fn lan_variants() -> Vec<(&'static str, GossipParams)> {
    let node = GossipParams::default();
    let libp2p = GossipParams {
        mesh_n: 6,
        mesh_n_low: 5,
        mesh_n_high: 12,
        gossip_lazy: 6,
        gossip_factor: 0.25,
        history_gossip: 3,
        flood_publish: true,
        explicit_long: false,
        ..node.clone()
    };
    let d4_flood = GossipParams {
        mesh_n: 4,
        mesh_n_low: 3,
        mesh_n_high: 6,
        gossip_lazy: 3,
        gossip_factor: 0.25,
        history_gossip: 3,
        flood_publish: true,
        ..node.clone()
    };
    let d4 = GossipParams {
        flood_publish: false,
        ..d4_flood.clone()
    };
    let d3 = GossipParams {
        mesh_n: 3,
        mesh_n_low: 2,
        mesh_n_high: 5,
        gossip_lazy: 3,
        gossip_factor: 0.25,
        history_gossip: 3,
        flood_publish: false,
        ..node.clone()
    };
    vec![
        ("the node's settings", node.clone()),
        (
            "the node's settings, long links not explicit peers",
            GossipParams {
                explicit_long: false,
                ..node.clone()
            },
        ),
        ("libp2p defaults (D=6, 5-12, lazy 6, flood publish)", libp2p),
        ("D=4 (3-6), lazy 3, flood publish", d4_flood),
        ("D=4 (3-6), lazy 3, no flood publish", d4.clone()),
        ("D=3 (2-5), lazy 3, no flood publish", d3),
        (
            "D=4 (3-6), IHAVE to 2 peers of the last window, no flood publish",
            GossipParams {
                gossip_lazy: 2,
                gossip_factor: 0.0,
                history_gossip: 1,
                ..d4.clone()
            },
        ),
        (
            "D=3 (2-4), IHAVE to 2 peers of the last window, no flood publish (the test bed's mesh=3/2/4)",
            GossipParams {
                mesh_n: 3,
                mesh_n_low: 2,
                mesh_n_high: 4,
                gossip_lazy: 2,
                gossip_factor: 0.0,
                history_gossip: 1,
                ..d4.clone()
            },
        ),
        (
            "D=4 (3-6), IHAVE to 3 peers of the last 2 windows, no flood publish",
            GossipParams {
                gossip_lazy: 3,
                gossip_factor: 0.0,
                history_gossip: 2,
                ..d4.clone()
            },
        ),
        (
            "D=5 (4-8), IHAVE to 2 peers of the last window, no flood publish",
            GossipParams {
                mesh_n: 5,
                mesh_n_low: 4,
                mesh_n_high: 8,
                gossip_lazy: 2,
                gossip_factor: 0.0,
                history_gossip: 1,
                ..d4.clone()
            },
        ),
    ]
}

/// The churning town of `hubs` (mean up 2 h, down 10 min).
fn churning(hubs: usize, seed: u64) -> Config {
    let mut cfg = Config::town(hubs, seed);
    cfg.churn = Some(Churn {
        mean_up_s: 7_200.0,
        mean_down_s: 600.0,
    });
    cfg
}

/// Event mesh, summaries' mesh and heartbeat variants: the node before issue 28
/// first, then the node now.
type Variant = (
    &'static str,
    (usize, usize, usize),
    (usize, usize, usize),
    u64,
);

fn mesh_variants() -> Vec<Variant> {
    vec![
        (
            "before: events mesh 4 (3-6), summaries mesh 4 (3-6), heartbeat 700 ms",
            (4, 3, 6),
            (4, 3, 6),
            700,
        ),
        (
            "the node now: events mesh 4 (3-6), summaries mesh 3 (2-4), heartbeat 1 s",
            (4, 3, 6),
            (3, 2, 4),
            1_000,
        ),
        (
            "events mesh 3 (2-4), summaries mesh 3 (2-4), heartbeat 1 s",
            (3, 2, 4),
            (3, 2, 4),
            1_000,
        ),
        (
            "events mesh 3 (2-4), summaries mesh 3 (2-4), heartbeat 700 ms",
            (3, 2, 4),
            (3, 2, 4),
            700,
        ),
        (
            "events mesh 4 (3-6), summaries mesh 2 (1-3), heartbeat 1 s",
            (4, 3, 6),
            (2, 1, 3),
            1_000,
        ),
    ]
}

fn with_mesh(mut cfg: Config, v: &Variant) -> Config {
    let (_, ev, su, beat) = *v;
    cfg.gossip.mesh_n = ev.0;
    cfg.gossip.mesh_n_low = ev.1;
    cfg.gossip.mesh_n_high = ev.2;
    cfg.gossip.heartbeat_ms = beat;
    cfg.summaries = Some(SummaryParams {
        mesh: su,
        ..SummaryParams::default()
    });
    cfg
}

/// Mesh 3 against 4, with the hub summaries (delta version) modelled: one LAN of 30
/// (the namespace test bed's shape) at 4 events a second, and the town of 300.
fn wire(seed: u64) {
    println!("== one LAN of 30 hubs, no loss, no churn, 240 events one every 250 ms (the test bed's load)");
    let lan30 = || {
        let mut cfg = Config::town(30, seed);
        cfg.cluster_size = (30, 30);
        cfg.lan.loss = 0.0;
        cfg
    };
    for v in mesh_variants() {
        println!("-- {}", v.0);
        print!(
            "{}",
            sim::propagation(&with_mesh(lan30(), &v), 240, 250, 30)
        );
    }
    println!("-- summaries off (the node now)");
    print!("{}", sim::propagation(&lan30(), 240, 250, 30));
    println!("\n== 300 hubs, churn, 10% LAN loss, 200 events one every 2 s, hub summaries on");
    for v in mesh_variants() {
        println!("-- {}", v.0);
        print!(
            "{}",
            sim::propagation(&with_mesh(churning(300, seed), &v), 200, 2_000, 60)
        );
    }
    println!("-- the node now, the summaries' gap growing 1 s per hub up to 5 min (not 30 s)");
    let mut cfg = with_mesh(churning(300, seed), &mesh_variants()[1]);
    if let Some(p) = cfg.summaries.as_mut() {
        p.max_gap_ms = 300_000;
    }
    print!("{}", sim::propagation(&cfg, 200, 2_000, 60));
    println!("-- the node now, IHAVE to 1 non-mesh peer instead of 2");
    let mut cfg = with_mesh(churning(300, seed), &mesh_variants()[1]);
    cfg.gossip.gossip_lazy = 1;
    print!("{}", sim::propagation(&cfg, 200, 2_000, 60));
    println!("-- the node now, summaries off");
    print!("{}", sim::propagation(&churning(300, seed), 200, 2_000, 60));
    for v in mesh_variants().into_iter().take(2) {
        let mut cfg = with_mesh(churning(300, seed), &v);
        cfg.lan.loss = 0.30;
        println!("-- 30% LAN loss: {}", v.0);
        print!("{}", sim::propagation(&cfg, 200, 2_000, 60));
    }
}

/// A city: 3,000 hubs, churn, the node's settings and summaries; `events` posted one
/// every 2 s; then a hub back after 4 h.
fn city(seed: u64, events: usize) {
    // `AIDMESH_SIM_CITY` picks parts, comma-separated: towns, gap, off, back (all).
    let parts = std::env::var("AIDMESH_SIM_CITY").unwrap_or_else(|_| "towns,gap,off,back".into());
    let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    let node = |hubs| with_mesh(churning(hubs, seed), &mesh_variants()[1]);
    if part("towns") {
        for hubs in [300, 1_000, 3_000] {
            println!("== {hubs} hubs, churn, 10% LAN loss, {events} events one every 2 s, the node's settings, hub summaries on");
            let t = Instant::now();
            print!("{}", sim::propagation(&node(hubs), events, 2_000, 60));
            eprintln!("({hubs} hubs: {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    if part("gap") {
        println!("\n== the same at 3,000 hubs with the summaries' gap growing 1 s per hub heard of up to 5 min (not 30 s)");
        let mut slow = node(3_000);
        if let Some(p) = slow.summaries.as_mut() {
            p.max_gap_ms = 300_000;
        }
        print!("{}", sim::propagation(&slow, events, 2_000, 60));
    }
    if part("off") {
        println!("\n== {events} events at 3,000 hubs, summaries off (what the summaries add)");
        print!(
            "{}",
            sim::propagation(&churning(3_000, seed), events, 2_000, 60)
        );
    }
    if !part("back") {
        return;
    }
    let rate: f64 = std::env::var("AIDMESH_SIM_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.5);
    println!("\n== one hub back after 4 h away, {rate} events per hub per hour meanwhile, no churn, summaries off");
    for hubs in [300, 1_000, 3_000] {
        let t = Instant::now();
        print!(
            "{}",
            sim::returning_hub(&Config::town(hubs, seed), 4.0, rate, 300)
        );
        eprintln!(
            "(returning hub, {hubs} hubs: {:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
}

/// The catch-up over a long history: 100,000, 1,000,000 and 10,000,000 events held
/// by both, `missing` written in the 4 h away (default: a city of 3,000 hubs writing
/// 10,000,000 events in 4 weeks, 59,524 in 4 h).
fn history(seed: u64, missing: Option<usize>) {
    let missing = missing.unwrap_or(59_524);
    for base in [100_000, 1_000_000, 10_000_000] {
        print!("{}", sim::history(base, missing, 28, 4.0, seed));
    }
}
