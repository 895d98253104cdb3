//! aidmesh against Syncthing on the same records, on one machine (issue 28: at least
//! 100 times faster on 10,000 records). Results and the fairness notes go to
//! docs/benchmarks.md ("Against Syncthing (issue 28)").
//!
//! ```text
//! tests/scripts/install-syncthing.sh      # once: Debian's syncthing (1.19 on bookworm)
//! cargo build --release -p aidmesh -p aidmesh-tests --bin aidmesh --bin bench_syncthing
//! target/release/bench_syncthing          # 10,000 records, 3 runs of each, a few minutes
//! target/release/bench_syncthing --quick  # 1,000 records
//! ```
//!
//! The records are the signed events the main bench makes (`bench/events.rs`,
//! about 400 bytes each). Runs alternate, aidmesh first, and each run starts afresh:
//! - aidmesh: the main bench's catch-up (`bench/catch_up.rs`, shared, not copied): a
//!   node holding every event, an empty node started; time from the empty node's dial
//!   until it holds every event.
//! - Syncthing: one file per record (the same bytes) in one folder; two instances on
//!   loopback, each with its own home, nothing but an explicit tcp://127.0.0.1 address
//!   to find the other; the receiver holds the sender paused until the sender has
//!   scanned its folder (not timed); time from the receiver's unpause until its
//!   `/rest/db/status` says it needs nothing and holds every file.
//!
//! Options: `--quick` (1,000 records), `--records N`, `--runs N` (3),
//! `--syncthing-no-fsync` (Syncthing's folders with `disableFsync`, to see how much of
//! its time the flush of each file is; not the comparison). `SYNCTHING` names the
//! Syncthing binary (default: `syncthing` on the PATH); `AIDMESH_BIN` the node's.

#[allow(dead_code)]
#[path = "../bench/catch_up.rs"]
mod catch_up;
#[allow(dead_code)]
#[path = "../bench/env.rs"]
mod env;
#[allow(dead_code)]
#[path = "../bench/events.rs"]
mod events;
mod syncthing;

use std::path::Path;
use std::time::{Duration, Instant};

use aidmesh_tests::poll;

use catch_up::catch_up;
use env::{locate_binary, median, tempdir, thousands};
use events::make_events;
use syncthing::{locate, Syncthing, INSTALL};

/// The shared folder's id on both instances.
const FOLDER: &str = "records";

/// One Syncthing run.
struct StRun {
    /// Until the receiver's database held every file and needed none.
    secs: Option<f64>,
    /// Until the two were connected.
    connect_secs: Option<f64>,
    /// Until every file was on the receiver's disk.
    disk_secs: Option<f64>,
    /// The sender's scan (not in `secs`).
    scan_secs: f64,
    /// In plus out on the receiver's connections.
    bytes: u64,
    /// CPU seconds of the receiver and of the sender from the unpause to the end.
    cpu: (f64, f64),
}

/// Files (not Syncthing's own dot files) in `dir`.
fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

fn record_name(i: usize) -> String {
    format!("{i:06}.event")
}

fn syncthing_run(bin: &Path, records: &[Vec<u8>], fsync: bool, timeout: Duration) -> StRun {
    let n = records.len();
    let root = tempdir("syncthing");
    let (send_dir, recv_dir) = (root.path().join("send"), root.path().join("receive"));
    std::fs::create_dir(&send_dir).expect("sender's folder");
    std::fs::create_dir(&recv_dir).expect("receiver's folder");
    for (i, r) in records.iter().enumerate() {
        std::fs::write(send_dir.join(record_name(i)), r).expect("write a record");
    }
    let (send_home, recv_home) = (
        root.path().join("send-home"),
        root.path().join("receive-home"),
    );
    let a = Syncthing::start("syncthing-sender", bin, &send_home);
    let b = Syncthing::start("syncthing-receiver", bin, &recv_home);
    a.add_device(&b.id, b.port, false);
    a.add_folder(FOLDER, &send_dir, &b.id, fsync);
    // The receiver knows the sender, paused: nothing moves until the clock starts.
    b.add_device(&a.id, a.port, true);
    b.add_folder(FOLDER, &recv_dir, &a.id, fsync);
    let t = Instant::now();
    poll(
        &format!("the sender to scan its {n} files"),
        timeout,
        Duration::from_millis(200),
        || {
            let s = a.db_status(FOLDER);
            (s["state"] == "idle" && s["localFiles"].as_u64() == Some(n as u64)).then_some(())
        },
    );
    let scan_secs = t.elapsed().as_secs_f64();
    poll(
        "the receiver's empty folder to be idle",
        timeout,
        Duration::from_millis(200),
        || (b.db_status(FOLDER)["state"] == "idle").then_some(()),
    );
    let before = b.wire_bytes();
    let cpu_before = (b.cpu_secs(), a.cpu_secs());

    let t = Instant::now();
    b.resume(&a.id);
    let (mut connect_secs, mut disk_secs, mut secs) = (None, None, None);
    let mut on_disk = 0;
    while t.elapsed() < timeout {
        if connect_secs.is_none() && b.connected(&a.id) {
            connect_secs = Some(t.elapsed().as_secs_f64());
        }
        if disk_secs.is_none() {
            on_disk = files_in(&recv_dir);
            if on_disk == n {
                disk_secs = Some(t.elapsed().as_secs_f64());
            }
        }
        // The database once every file is on disk (the call is not free for the
        // receiver; the directory listing costs it nothing).
        if disk_secs.is_some() {
            let s = b.db_status(FOLDER);
            if s["needFiles"].as_u64() == Some(0) && s["localFiles"].as_u64() == Some(n as u64) {
                secs = Some(t.elapsed().as_secs_f64());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if secs.is_none() {
        eprintln!(
            "Syncthing not done after {:.0} s ({on_disk} of {n} files on disk, connected: {}; \
             receiver's folder: {})\n--- {} log ---\n{}\n--- {} log ---\n{}",
            t.elapsed().as_secs_f64(),
            b.connected(&a.id),
            b.db_status(FOLDER),
            b.name,
            b.log_tail(20),
            a.name,
            a.log_tail(20)
        );
    } else {
        // The same bytes, every one.
        for (i, r) in records.iter().enumerate() {
            let got = std::fs::read(recv_dir.join(record_name(i))).expect("a received record");
            assert!(got == *r, "record {i} arrived altered");
        }
    }
    let cpu = (b.cpu_secs() - cpu_before.0, a.cpu_secs() - cpu_before.1);
    let bytes = b.wire_bytes().saturating_sub(before);
    StRun {
        secs,
        connect_secs,
        disk_secs,
        scan_secs,
        bytes,
        cpu,
    }
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "not done".into(), |s| format!("{s:.2} s"))
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args.get(i + 1).and_then(|v| v.parse::<usize>().ok()))
            .map(|v| v.unwrap_or_else(|| panic!("{flag} takes a number")))
    };
    let quick = args.iter().any(|a| a == "--quick");
    let n = value("--records").unwrap_or(if quick { 1_000 } else { 10_000 });
    let runs = value("--runs").unwrap_or(3).max(1);
    // Syncthing flushes each file it writes (its default, kept for the comparison);
    // --syncthing-no-fsync shows how much of its time that is.
    let fsync = !args.iter().any(|a| a == "--syncthing-no-fsync");
    let (bin, version) = match locate() {
        Ok(found) => found,
        Err(e) => {
            eprintln!("Syncthing is needed for this benchmark ({e}).\nInstall it with {INSTALL}.");
            std::process::exit(2);
        }
    };
    locate_binary();
    let timeout = Duration::from_secs(600);
    println!(
        "aidmesh vs {version}: {} records, runs of each: {runs}, alternately; {} CPUs, load \
         average at start {}",
        thousands(n),
        std::thread::available_parallelism().map_or(0, |c| c.get()),
        aidmesh_tests::bench_util::load_average()
    );
    let records = make_events(n, 0x00a1_d0e5);
    let record_bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "records: {} signed events, {record_bytes} bytes ({:.0} bytes each on average)",
        thousands(n),
        record_bytes as f64 / n as f64
    );

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_bytes, mut their_bytes) = (Vec::new(), Vec::new());
    let mut failed = false;
    for run in 1..=runs {
        let cu = catch_up(&records, timeout);
        println!(
            "run {run}: aidmesh {} ({} of {} held, {} bytes on the wire; the caught-up \
             node's session: {}), load {}",
            secs(cu.secs),
            cu.held,
            n,
            cu.bytes,
            cu.phases.join("; "),
            aidmesh_tests::bench_util::load_average()
        );
        match cu.secs {
            Some(s) => ours.push(s),
            None => failed = true,
        }
        our_bytes.push(cu.bytes as f64);
        let st = syncthing_run(&bin, &records, fsync, timeout);
        println!(
            "run {run}: Syncthing{} {} (connected at {}, every file on disk at {}; sender's \
             scan before the clock {:.2} s; {} bytes on the wire; CPU receiver {:.1} s, \
             sender {:.1} s), load {}",
            if fsync { "" } else { " without fsync" },
            secs(st.secs),
            secs(st.connect_secs),
            secs(st.disk_secs),
            st.scan_secs,
            st.bytes,
            st.cpu.0,
            st.cpu.1,
            aidmesh_tests::bench_util::load_average()
        );
        match st.secs {
            Some(s) => theirs.push(s),
            None => failed = true,
        }
        their_bytes.push(st.bytes as f64);
    }
    if failed || ours.is_empty() || theirs.is_empty() {
        eprintln!("a run did not finish: no ratio");
        std::process::exit(1);
    }
    let (lo_a, hi_a) = min_max(&ours);
    let (lo_s, hi_s) = min_max(&theirs);
    let (ma, ms) = (median(&mut ours), median(&mut theirs));
    let ratio = ms / ma;
    println!(
        "median of {runs}: aidmesh {ma:.3} s (min {lo_a:.3}, max {hi_a:.3}), Syncthing \
         {ms:.2} s (min {lo_s:.2}, max {hi_s:.2})"
    );
    println!(
        "ratio of medians: aidmesh {ratio:.1}x faster (goal >= 100x: {})",
        if ratio >= 100.0 {
            "met".to_string()
        } else {
            format!("missed, {:.2}x short", 100.0 / ratio)
        }
    );
    let (wa, ws) = (median(&mut our_bytes), median(&mut their_bytes));
    println!(
        "bytes on the wire (median, both directions): aidmesh {wa:.0} ({:.2}x the records), \
         Syncthing {ws:.0} ({:.2}x the records); load average at the end {}",
        wa / record_bytes as f64,
        ws / record_bytes as f64,
        aidmesh_tests::bench_util::load_average()
    );
}
