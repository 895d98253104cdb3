//! A hub full of phones (issue 17): N simulated pages (`aidmesh_tests::phones`, which
//! behave as the web page does) on a board of 1,000 needs and 500 offers, while the
//! coordinator posts one need a second from the hub computer.
//!
//! ```text
//! cargo run --release -p aidmesh-tests --bin bench_phones -- [PAGES] [SECONDS] [hard]
//! ```
//! (defaults 300 pages, 60 s of posting; `hard` sets the hard open-file limit to
//! 1,024 too, so that the node cannot raise it: a hub whose system allows no more). Needs root: it runs in its own network
//! namespace (it re-executes itself under `unshare --net`), where every phone has its
//! own address (10.201.x.y, an AnyIP route on `lo`), so that the node sees 300 other
//! machines, as on a hub's Wi-Fi, and not its own computer. The node is started with
//! a soft open-file limit of 1,024 (set on this process before the node is spawned;
//! the node raises it itself, as it does on a real hub).
//!
//! Reports: pages served, a new need on every page (p50/p99 from the post being sent
//! to the page drawing it), the coordinator's post (p50/p99), the node's CPU (share of
//! one core over the posting) and resident memory (peak), bytes one page read per
//! posted need (median and largest over the pages, timer refreshes included).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use aidmesh_tests::phones::{PagePlan, Phone, Target};
use aidmesh_tests::{Node, Opts};
use serde_json::json;

const NEEDS: usize = 1000;
const OFFERS: usize = 500;
const SOFT_NOFILE: u64 = 1024;
const NETNS_ENV: &str = "AIDMESH_BENCH_IN_NETNS";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(60);
    let hard = args.get(3).is_some_and(|a| a == "hard");
    if std::env::var_os(NETNS_ENV).is_none() {
        // SAFETY: geteuid has no preconditions.
        assert!(
            unsafe { libc::geteuid() } == 0,
            "bench_phones needs root: it gives every simulated phone its own address in a \
             network namespace of its own"
        );
        let st = Command::new("unshare")
            .arg("--net")
            .arg("--")
            .args(&args)
            .env(NETNS_ENV, "1")
            .status()
            .expect("run unshare --net");
        std::process::exit(st.code().unwrap_or(1));
    }
    for cmd in [
        &["link", "set", "lo", "up"][..],
        &["route", "add", "local", "10.201.0.0/16", "dev", "lo"][..],
    ] {
        let ok = Command::new("ip")
            .args(cmd)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {cmd:?} failed");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench(pages, seconds, hard));
}

/// Sets this process's soft open-file limit (the node inherits it); returns the old one.
fn set_soft_nofile(soft: u64, hard: bool) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: if hard {
                soft as libc::rlim_t
            } else {
                old.rlim_max
            },
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &new), 0);
    }
    old
}

fn restore_nofile(old: libc::rlimit) {
    // SAFETY: as above.
    unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &old);
    }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// A `/proc/<pid>/status` field in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The phone's own address: 10.201.(n / 250).(n % 250 + 2); the node is 10.201.0.1.
fn phone_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        201,
        (n / 250) as u8 + 1,
        (n % 250) as u8 + 2,
    ))
}

async fn bench(pages: usize, seconds: u64, hard: bool) {
    eprintln!("starting the node (soft open-file limit {SOFT_NOFILE}, hard too: {hard}) ...");
    let old = set_soft_nofile(SOFT_NOFILE, hard);
    let node = tokio::task::spawn_blocking(|| {
        Node::start(
            "hub",
            Opts {
                api: Some("0.0.0.0:0".into()),
                log: Some("info".into()),
                ..Opts::default()
            },
        )
    })
    .await
    .expect("node started");
    restore_nofile(old);
    let pid = node.pid().expect("node pid");
    let base = node.api_url().to_string();
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("API port");
    let log = node.log();
    let limit_line = log
        .lines()
        .find(|l| l.contains("open-file limit"))
        .unwrap_or("")
        .to_string();
    eprintln!("node: {limit_line}");

    eprintln!("posting {NEEDS} needs and {OFFERS} offers ...");
    let seed_base = base.clone();
    tokio::task::spawn_blocking(move || {
        let agent = aidmesh_tests::http();
        const CATS: [&str; 4] = ["water", "food", "medical", "shelter"];
        const URG: [&str; 4] = ["low", "normal", "high", "life-threatening"];
        for i in 0..NEEDS + OFFERS {
            let (path, kind) = if i < NEEDS {
                ("needs", "need")
            } else {
                ("offers", "offer")
            };
            let r = agent.post(format!("{seed_base}/api/v1/{path}")).send_json(json!({
                "title": format!("{kind} {i}: {} for the family at number {}", CATS[i % 4], i % 97),
                "category": CATS[i % 4], "urgency": URG[i % 4], "qty": 1 + i % 9,
                "place": format!("{} River Road", i % 120),
                "details": "Ground floor, ring twice; the stairs are flooded.",
            }));
            assert!(r.is_ok_and(|r| r.status().as_u16() == 201), "seed post {i}");
        }
    })
    .await
    .expect("seeded");

    let target = Target {
        api: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 201, 0, 1)), port),
        host: format!("10.201.0.1:{port}"),
    };
    let plan = PagePlan::from_page();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    eprintln!("opening {pages} pages ...");
    let opened = Instant::now();
    let mut phones = Vec::with_capacity(pages);
    for n in 0..pages {
        phones.push(Phone::open(
            n,
            plan.clone(),
            target.clone(),
            Some(phone_ip(n)),
            Some(seen_tx.clone()),
        ));
        // Phones arrive over a few seconds, not in one instant.
        if n % 25 == 24 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && phones.iter().any(|p| !p.stats().served) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let served = phones.iter().filter(|p| p.stats().served).count();
    let start_secs = opened.elapsed().as_secs_f64();
    eprintln!(
        "{served} of {pages} pages served after {start_secs:.1} s; fds {}",
        open_fds(pid)
    );
    // Drain what the streams reported during start-up.
    while seen_rx.try_recv().is_ok() {}

    let bytes_before: Vec<u64> = phones.iter().map(|p| p.stats().bytes).collect();
    let cpu_before = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut posted: HashMap<String, Instant> = HashMap::new();
    let mut post_ms = Vec::new();
    let mut arrivals: Vec<(String, usize, Instant)> = Vec::new();
    let mut peak_rss = 0;
    let mut peak_fds = 0;
    let agent = aidmesh_tests::http();
    for i in 0..seconds {
        let at = t0 + Duration::from_secs(i);
        tokio::time::sleep_until(at.into()).await;
        let (b, a) = (base.clone(), agent.clone());
        let sent = Instant::now();
        let id = tokio::task::spawn_blocking(move || {
            aidmesh_tests::try_post_need(&a, &b, &format!("new need {i} posted by the coordinator"))
        })
        .await
        .expect("post task")
        .unwrap_or_else(|e| panic!("the coordinator's post {i} failed: {e}"));
        post_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        posted.insert(id, sent);
        while let Ok(s) = seen_rx.try_recv() {
            arrivals.push((s.id, s.phone, s.at));
        }
        peak_rss = peak_rss.max(status_kb(pid, "VmRSS:"));
        peak_fds = peak_fds.max(open_fds(pid));
    }
    // The last post's arrivals, bounded.
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(500), seen_rx.recv()).await {
            Ok(Some(s)) => arrivals.push((s.id, s.phone, s.at)),
            _ => break,
        }
    }
    let busy_secs = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu_before) as f64
        // SAFETY: sysconf has no preconditions.
        / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let hwm = status_kb(pid, "VmHWM:");

    let mut lat: Vec<f64> = Vec::new();
    let mut per_post: HashMap<&str, usize> = HashMap::new();
    for (id, _, at) in &arrivals {
        if let Some(sent) = posted.get(id) {
            lat.push(at.duration_since(*sent).as_secs_f64() * 1000.0);
            *per_post.entry(id.as_str()).or_default() += 1;
        }
    }
    let expected = posted.len() * served;
    let mut sorted_lat = lat.clone();
    sorted_lat.sort_by(f64::total_cmp);
    post_ms.sort_by(f64::total_cmp);
    let mut per_page: Vec<f64> = phones
        .iter()
        .zip(&bytes_before)
        .filter(|(p, _)| p.stats().served)
        .map(|(p, b)| (p.stats().bytes - b) as f64 / posted.len() as f64)
        .collect();
    per_page.sort_by(f64::total_cmp);
    let stats: Vec<_> = phones.iter().map(Phone::stats).collect();
    let busy: u64 = stats.iter().map(|s| s.busy).sum();
    let errors: usize = stats.iter().map(|s| s.errors.len()).sum();
    let full: u64 = stats.iter().map(|s| s.board_full).sum();
    let not_modified: u64 = stats.iter().map(|s| s.board_not_modified).sum();

    println!(
        "## bench_phones: {pages} pages, {NEEDS} needs + {OFFERS} offers, 1 post/s for {seconds} s"
    );
    println!();
    println!("| Metric | Goal | Measured |");
    println!("|---|---|---|");
    let which = if hard { "soft and hard" } else { "soft" };
    println!("| Pages served ({which} limit {SOFT_NOFILE} at start; node: `{}`) | all {pages} | {served} (in {start_secs:.1} s; {busy} busy answers, {errors} errors) |",
        limit_line.split("open-file limit").nth(1).unwrap_or("").trim());
    println!("| New need on every page, p50 / p99 (post sent → card drawn) | p99 < 1 s | {:.0} / {:.0} ms ({} of {expected} arrivals) |",
        pct(&sorted_lat, 0.5), pct(&sorted_lat, 0.99), lat.len());
    println!(
        "| Coordinator's post, p50 / p99 | p99 < 200 ms | {:.1} / {:.1} ms |",
        pct(&post_ms, 0.5),
        pct(&post_ms, 0.99)
    );
    println!(
        "| Node CPU over the posting | < 50 % of a core | {:.1} % |",
        100.0 * cpu / busy_secs
    );
    println!(
        "| Node resident memory, peak (VmHWM) / during posting | < 100 MB | {:.1} / {:.1} MB |",
        hwm as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!(
        "| Bytes one page read per posted need, median / largest | < 20 KB | {:.0} / {:.0} B |",
        pct(&per_page, 0.5),
        pct(&per_page, 1.0)
    );
    println!("| Node's open descriptors, peak | | {peak_fds} |");
    println!("| Board loads by the pages (timer): full / 304 | | {full} / {not_modified} |");
    drop(phones);
    drop(node);
}
