//! `aidmesh up`: runs the node in the foreground until Ctrl-C, from its command-line
//! options, the volunteer PIN (given, or from a file), and the first-run card.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aidmesh_node::doors::input::parse_duration;
use aidmesh_node::node::{self, NodeConfig, NodeError};
use clap::Args;

use crate::error::CliError;
use crate::output;

#[derive(Args)]
pub(crate) struct UpArgs {
    /// Peer listen address (multiaddr), e.g. /ip4/0.0.0.0/tcp/4610. Repeatable.
    #[arg(long)]
    listen: Vec<String>,
    /// API and web page address.
    #[arg(long, default_value = node::DEFAULT_API)]
    api: String,
    /// A peer to connect to, e.g. /ip4/192.168.1.20/tcp/4610. Repeatable.
    #[arg(long)]
    peer: Vec<String>,
    /// Do not use mDNS discovery.
    #[arg(long)]
    no_mdns: bool,
    /// Do not use the broadcast beacon (UDP 4612) to discover peers.
    #[arg(long)]
    no_beacon: bool,
    /// Do not learn other members' addresses from peers, nor tell peers ours (peer
    /// exchange): only --peer, mDNS and the beacon make connections.
    #[arg(long)]
    no_peer_exchange: bool,
    /// PIN that volunteers enter to see welfare records from other machines: at least
    /// 6 characters (a shorter one is refused at start). Prefer AIDMESH_VOLUNTEER_PIN
    /// or --volunteer-pin-file: a PIN on the command line is visible to every user of
    /// this computer in the process list (ps).
    #[arg(long, env = "AIDMESH_VOLUNTEER_PIN", hide_env_values = true)]
    volunteer_pin: Option<String>,
    /// Read the volunteer PIN (at least 6 characters) from this file (its first line;
    /// keep it readable only by the node's user, e.g. chmod 600), so it never shows in
    /// the process list.
    #[arg(
        long,
        env = "AIDMESH_VOLUNTEER_PIN_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    volunteer_pin_file: Option<PathBuf>,
    /// Re-run catch-up sync with each peer this often.
    #[arg(long, default_value = "30s")]
    sync_every: String,
    /// Erase welfare records this long after their last check-in.
    #[arg(long, default_value = "30d")]
    welfare_retention: String,
    /// Testing: shift this node's clock, e.g. -3d or 10m.
    #[arg(long, allow_hyphen_values = true, hide = true)]
    clock_offset: Option<String>,
    /// Testing: start this node's clock at this time, in ms since the Unix epoch (0: a
    /// computer without a real-time clock that booted in 1970).
    #[arg(long, hide = true, conflicts_with = "clock_offset")]
    clock_at: Option<u64>,
    /// Testing: look for welfare records past retention this often (default 10m).
    #[arg(long, hide = true)]
    retention_sweep_every: Option<String>,
    /// Testing: flag an urgent need known at no other hub after this long (default 1m).
    #[arg(long, hide = true)]
    unreached_after: Option<String>,
    /// Posts a minute one phone (or any other machine) may make through this hub's page
    /// or API; the hub computer itself is not limited.
    #[arg(long, env = "AIDMESH_POSTS_PER_MINUTE", default_value_t = aidmesh_node::api::posting_default_per_minute())]
    posts_per_minute: u32,
    /// A desk computer at the hub where volunteers enter many items (its IP address):
    /// it may post --desk-posts-per-minute. Repeatable.
    #[arg(long)]
    desk: Vec<String>,
    /// Posts a minute a --desk computer may make.
    #[arg(long, default_value_t = aidmesh_node::api::posting_default_desk_per_minute())]
    desk_posts_per_minute: u32,
    #[command(flatten)]
    sms: super::sms::SmsUpArgs,
}

pub(crate) fn up(args: UpArgs, dir: PathBuf) -> Result<(), CliError> {
    let bad = |flag: &'static str, v: &str, e: &dyn std::fmt::Display| CliError::BadArg {
        flag,
        value: v.to_string(),
        reason: e.to_string(),
        hint: "",
    };
    let mut cfg = NodeConfig::new(dir.clone());
    if !args.listen.is_empty() {
        cfg.listen = args
            .listen
            .iter()
            .map(|a| a.parse().map_err(|e| bad("--listen", a, &e)))
            .collect::<Result<_, _>>()?;
    }
    cfg.peers = args
        .peer
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|e: libp2p::multiaddr::Error| CliError::BadArg {
                    flag: "--peer",
                    value: a.clone(),
                    reason: e.to_string(),
                    hint: "; give the other hub's address like /ip4/192.168.1.20/tcp/4610",
                })
        })
        .collect::<Result<_, _>>()?;
    cfg.api = args.api.parse().map_err(|e| bad("--api", &args.api, &e))?;
    cfg.mdns = !args.no_mdns;
    cfg.beacon = !args.no_beacon;
    cfg.peer_exchange = !args.no_peer_exchange;
    cfg.volunteer_pin = volunteer_pin(args.volunteer_pin, args.volunteer_pin_file.as_deref())?;
    cfg.posting = aidmesh_node::api::PostingLimits {
        per_minute: args.posts_per_minute,
        desk_per_minute: args.desk_posts_per_minute,
        desks: args
            .desk
            .iter()
            .map(|a| {
                a.parse::<std::net::IpAddr>()
                    .map(|ip| ip.to_canonical())
                    .map_err(|e| bad("--desk", a, &e))
            })
            .collect::<Result<_, _>>()?,
    };
    cfg.sms = args.sms.options();

    cfg.sync_every = parse_duration("--sync-every", &args.sync_every)?;
    cfg.welfare_retention = parse_duration("--welfare-retention", &args.welfare_retention)?;
    if let Some(off) = &args.clock_offset {
        let (neg, rest) = off
            .strip_prefix('-')
            .map_or((false, off.as_str()), |r| (true, r));
        let d = parse_duration("--clock-offset", rest)?;
        let ms = d.as_millis() as i64;
        cfg.clock_offset_ms = if neg { -ms } else { ms };
    }
    if let Some(every) = &args.retention_sweep_every {
        cfg.retention_sweep = parse_duration("--retention-sweep-every", every)?;
    }
    if let Some(after) = &args.unreached_after {
        cfg.unreached_after = parse_duration("--unreached-after", after)?;
    }
    if let Some(at) = args.clock_at {
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        cfg.clock_offset_ms = (at as i64).saturating_sub(sys);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIDMESH_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A refused PIN should not leave a community behind: checked before one is made.
    aidmesh_node::api::pin::check_pin(cfg.volunteer_pin.as_deref()).map_err(NodeError::from)?;
    // A PIN typed on the command line shows in every user's process list: said once
    // it is accepted, with what to use instead.
    if pin_on_command_line(std::env::args_os()) {
        eprintln!(
            "warning: --volunteer-pin on the command line is visible to every user of this \
             computer in the process list (ps); set AIDMESH_VOLUNTEER_PIN in the \
             environment or use --volunteer-pin-file PATH instead"
        );
    }
    // Made (and its card printed) before anything can fail to bind, so a busy port
    // never hides the passphrase of a community just created.
    let created = node::prepare(&dir)?;
    if let Some(p) = &created {
        print_first_run(&dir, p);
    }
    let rt = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
    rt.block_on(node::run(cfg, stop_signal(), |s| {
        println!("aidmesh node running. Ctrl-C stops it.");
        println!("  peer id    {}", s.peer_id);
        println!("  community  {}", s.community);
        for l in &s.listen {
            println!("  listening  {l}");
        }
        let pages = aidmesh_node::net::lan::page_addrs(s.api);
        for page in &pages {
            println!("  web page   http://{page}/");
        }
        if pages.is_empty() {
            // Every interface, but no network yet: only this computer can open it.
            let here = std::net::SocketAddr::new([127, 0, 0, 1].into(), s.api.port());
            println!("  web page   http://{here}/ (no network yet: phones cannot reach it)");
        }
        let api = pages.first().copied().unwrap_or(s.api);
        println!("  api        http://{api}/api/v1/");
    }))?;
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// Resolves at the first Ctrl-C (SIGINT) or SIGTERM: both are the node's clean stop
/// (systemd's unit sends SIGINT; a plain `kill`, `systemctl` with another unit, or a
/// Pi's shutdown, SIGTERM), which flushes and writes the start file (docs/hub.md).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            // Without a SIGTERM handler, SIGTERM stops the process as before (no
            // start file; the next start reads every event).
            Err(e) => {
                eprintln!("warning: cannot catch SIGTERM ({e}); only Ctrl-C stops the node cleanly")
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The volunteer PIN of `up`, from `--volunteer-pin` / `AIDMESH_VOLUNTEER_PIN` or from
/// the first line of `--volunteer-pin-file` (one of them).
fn volunteer_pin(pin: Option<String>, file: Option<&Path>) -> Result<Option<String>, CliError> {
    let Some(path) = file else {
        return Ok(pin);
    };
    if pin.is_some() {
        return Err(CliError::PinTwice {
            file: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| CliError::PinFile {
        file: path.to_path_buf(),
        source,
    })?;
    // The first line, without its line ending; spaces are the PIN's own (a PIN of
    // spaces is refused at start like any other weak PIN).
    let first = text.lines().next().unwrap_or("");
    Ok(Some(first.to_string()))
}

/// Whether these arguments hold `--volunteer-pin` itself (not the environment variable
/// nor `--volunteer-pin-file`).
fn pin_on_command_line(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .take_while(|a| a != "--")
        .any(|a| a == "--volunteer-pin" || a.to_string_lossy().starts_with("--volunteer-pin="))
}

/// What `up` prints when it made a node on an empty directory: the new community's
/// card, and the two deliberate ways (start under a name, join an existing one).
fn print_first_run(dir: &Path, p: &node::Profile) {
    let d = dir.display();
    println!("New node and community '{}' created.", p.community);
    print!(
        "{}",
        output::passphrase("Community passphrase", &p.community, &p.passphrase)
    );
    println!("Not what you meant? Stop this node (Ctrl-C), then, while it holds nothing yet:");
    println!("  start a community under its own name:  aidmesh --data-dir {d} start --community \"NAME\"");
    println!("  join an existing community:            aidmesh --data-dir {d} join");
    println!("                                         (asks for the name and the six words on the hub's card)");
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_on_the_command_line_is_noticed_and_the_others_are_not() {
        let on = |args: &[&str]| pin_on_command_line(args.iter().map(Into::into));
        assert!(on(&["aidmesh", "up", "--volunteer-pin", "471147"]));
        assert!(on(&["aidmesh", "up", "--volunteer-pin=471147"]));
        assert!(!on(&[
            "aidmesh",
            "up",
            "--volunteer-pin-file",
            "/etc/aidmesh/pin"
        ]));
        assert!(!on(&[
            "aidmesh",
            "up",
            "--volunteer-pin-file=/etc/aidmesh/pin"
        ]));
        assert!(!on(&["aidmesh", "up"]));
    }
}
