//! `aidmesh`: run a node, and act on the board of needs and offers.
//!
//! Every command but `init` and `up` talks to the node running on `--data-dir` through
//! its HTTP API, so the command line and the web page see the same thing.

mod client;
mod demo;
mod output;
mod print;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use aidmesh_node::node::{self, NodeConfig};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{json, Value};

use client::{CliError, Client};

#[derive(Parser)]
#[command(
    name = "aidmesh",
    version,
    about = "Mutual aid that keeps working when the network is down"
)]
struct Cli {
    /// The node's data directory (default: the platform's data directory).
    #[arg(long, global = true, env = "AIDMESH_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a new community from an empty directory; prints its passphrase card.
    Start {
        /// Community name, e.g. "Elm Street".
        #[arg(long)]
        community: String,
    },
    /// Join an existing community from an empty directory, with the name and the six
    /// words from the hub's card (asked for if not given).
    Join {
        /// Community name, as on the card.
        #[arg(long)]
        community: Option<String>,
        /// The six words from the card.
        #[arg(long)]
        passphrase: Option<String>,
    },
    /// Show this node's community name and passphrase again, with the QR code.
    Passphrase,
    /// For scripts: create this node's identity and join (with --passphrase, not
    /// checked against the word list) or create a community. People use start / join.
    Init {
        /// Community name, e.g. "Elm Street".
        #[arg(long)]
        community: String,
        /// The community's passphrase, from a coordinator. Without it a new community
        /// is created and its passphrase printed.
        #[arg(long)]
        passphrase: Option<String>,
    },
    /// Run the node in the foreground until Ctrl-C.
    Up(UpArgs),
    /// Needs: things someone is missing.
    Need {
        #[command(subcommand)]
        action: PostAction,
    },
    /// Offers: things someone can give.
    Offer {
        #[command(subcommand)]
        action: PostAction,
    },
    /// List needs and offers.
    List {
        /// needs, offers or all.
        #[arg(default_value = "all")]
        what: String,
        /// Only this category.
        #[arg(long)]
        category: Option<String>,
        /// Only this status (open, claimed, in-progress, fulfilled, withdrawn, expired,
        /// active, all; default active).
        #[arg(long)]
        status: Option<String>,
        /// Only items whose title, details, place, contact or unit contain every one
        /// of these words (any case).
        #[arg(long, value_name = "WORDS")]
        search: Option<String>,
        /// Only this urgency (low, normal, high, life-threatening).
        #[arg(long)]
        urgency: Option<String>,
        /// Only items posted at this hub (its announced name or short author id).
        #[arg(long)]
        hub: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one need or offer with its history.
    Show {
        /// Id or unique prefix (at least 6 characters).
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Claim a need or offer: you will take care of it.
    Claim(StatusArgs),
    /// Mark work on it as started.
    Progress(StatusArgs),
    /// Mark it done.
    Fulfil(StatusArgs),
    /// Take back your own need or offer.
    Withdraw(StatusArgs),
    /// Open it again.
    Reopen(StatusArgs),
    /// Offers that could meet open needs, most urgent needs first, a page at a time.
    Match {
        /// Needs per page, 1 to 100 (default 20).
        #[arg(long)]
        limit: Option<String>,
        /// Offers listed per need, best first, 0 to 20 (default 5).
        #[arg(long)]
        per_need: Option<String>,
        /// Start after the previous page (the cursor it printed).
        #[arg(long)]
        cursor: Option<String>,
        /// Machine-readable output: the whole page, with `next_cursor`.
        #[arg(long)]
        json: bool,
    },
    /// The hub roster: every hub heard of in this community, when it was last heard
    /// from, how far behind it was, whether it is connected now; silent ones flagged.
    Hubs {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Hubs: places where help is organised.
    Hub {
        #[command(subcommand)]
        action: HubAction,
    },
    /// Raise an alert for everyone, e.g. "Water rising on River Road"; or end one:
    /// `alert cancel ID`, `alert clear ID` (all clear), `alert active ID` (undo).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Alert {
        #[command(subcommand)]
        action: Option<AlertAction>,
        /// Headline.
        #[arg(required = true)]
        headline: Option<String>,
        /// minor, moderate, severe (default) or extreme.
        #[arg(long)]
        severity: Option<String>,
        /// More details.
        #[arg(long)]
        details: Option<String>,
        /// Area concerned, e.g. "River Road".
        #[arg(long)]
        area: Option<String>,
        /// Expires after this long, e.g. 6h or 3d (default 1d: a day).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Active alerts.
    Alerts {
        /// Show official alerts in this language where they have it (e.g. es, fr-CA;
        /// default: the LANG of this shell, else the alert's first language).
        #[arg(long)]
        lang: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Welfare checks on people at risk: register, check in, see who is overdue.
    Welfare {
        #[command(subcommand)]
        action: WelfareAction,
    },
    /// Export for responders: needs and offers (csv, hxl), a map (geojson), or the
    /// welfare register of people who agreed to be shared (pfif).
    Export {
        /// csv, hxl, geojson or pfif.
        #[arg(long)]
        format: String,
        /// Write to this file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A printable board (open needs and offers by category) or, with --round, the
    /// welfare volunteers' street round sheet, as HTML (or PDF through Chromium).
    Print {
        /// Write to this file: .html, or .pdf (needs Chromium).
        #[arg(long)]
        out: PathBuf,
        /// The street round sheet of people due a visit, instead of the board.
        #[arg(long)]
        round: bool,
        /// Language: en or es.
        #[arg(long, default_value = "en")]
        lang: String,
        /// The hub page address phones use, for the QR code (e.g. http://192.168.1.5:8080/).
        #[arg(long)]
        url: Option<String>,
    },
    /// Start a small flooded neighbourhood on this machine and watch it work.
    Demo {
        /// Keep the three hubs (and their web pages) running after the tour, until
        /// Ctrl-C; without it they close when the demo exits.
        #[arg(long)]
        keep: bool,
    },
    /// Carry events between hubs that never share a network, on a USB stick: an
    /// encrypted file only this community can read.
    Bundle {
        #[command(subcommand)]
        action: BundleAction,
    },
    /// Who posted through this hub from other machines in the last days (most posts
    /// first); `flood withdraw ADDR` takes back everything one address posted.
    Flood {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<FloodAction>,
    },
    /// Connected peers; `peers add ADDR` connects to another node now.
    Peers {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<PeersAction>,
    },
    /// This node: peer id, community, events, digest, peers, clock.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct UpArgs {
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
    /// PIN that volunteers enter to see welfare records from other machines. Prefer
    /// AIDMESH_VOLUNTEER_PIN or --volunteer-pin-file: a PIN on the command line is
    /// visible to every user of this computer in the process list (ps).
    #[arg(long, env = "AIDMESH_VOLUNTEER_PIN", hide_env_values = true)]
    volunteer_pin: Option<String>,
    /// Read the volunteer PIN from this file (its first line; keep it readable only by
    /// the node's user, e.g. chmod 600), so it never shows in the process list.
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
}

#[derive(Subcommand)]
enum FloodAction {
    /// Erase every post this hub took from one address (from the board and from every
    /// hub's disk), e.g. `aidmesh flood withdraw 192.168.1.57 --since 2h`.
    Withdraw {
        /// The address, as `aidmesh flood` lists it.
        addr: String,
        /// Only posts made in this last stretch of time, e.g. 30m or 2h (default: all
        /// kept, the last 3 days).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Subcommand)]
enum PeersAction {
    /// Connect to a node now, e.g. /ip4/192.168.1.20/tcp/4610 (the running node redials
    /// it with back-off; give it with --peer or in the peers file to keep it).
    Add {
        /// The other node's address.
        addr: String,
    },
}

#[derive(Subcommand)]
enum PostAction {
    /// Post a new one; prints its id.
    Add(PostArgs),
}

#[derive(Subcommand)]
enum WelfareAction {
    /// Register someone to check on.
    Add {
        /// Their name.
        name: String,
        /// Where they are (address or description).
        #[arg(long = "where")]
        place: String,
        /// How often to check, e.g. 12h.
        #[arg(long)]
        every: String,
        /// What puts them at risk (oxygen, wheelchair, lives alone, insulin). Repeatable.
        #[arg(long = "risk")]
        risks: Vec<String>,
        /// Phone number.
        #[arg(long)]
        phone: Option<String>,
        /// Who agreed: self, relative or neighbour.
        #[arg(long)]
        consent: Option<String>,
        /// Latitude in degrees.
        #[arg(long, allow_hyphen_values = true)]
        lat: Option<f64>,
        /// Longitude in degrees.
        #[arg(long, allow_hyphen_values = true)]
        lon: Option<f64>,
        /// They agree that responders (Red Cross, council) may be given their name,
        /// place, risks and check-ins (the PFIF export). Ask them; the default is no.
        #[arg(long)]
        share_with_responders: bool,
    },
    /// Record whether a person agrees to be shared with responders (yes or no); only
    /// the hub that registered them can.
    Share {
        /// Id prefix or unambiguous name.
        person: String,
        /// yes or no.
        answer: YesNo,
    },
    /// Record a check-in on a person (id prefix or name).
    Check {
        /// Id prefix or unambiguous name.
        person: String,
        #[command(flatten)]
        outcome: Outcome,
        /// A note for the next volunteer.
        #[arg(long)]
        note: Option<String>,
        /// Who checked (your name, or "self").
        #[arg(long)]
        by: Option<String>,
    },
    /// Everyone registered, most urgent first.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Who needs a visit now: needs help, no answer, overdue.
    Overdue {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Erase a person's record and check-ins on every node (only the hub that
    /// registered them can).
    Forget {
        /// Id prefix or unambiguous name.
        person: String,
    },
}

/// A person's answer.
#[derive(Clone, Copy, clap::ValueEnum)]
enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Outcome {
    /// Safe and well.
    #[arg(long)]
    safe: bool,
    /// Needs help, with what (also posts a need on the board).
    #[arg(long, value_name = "TEXT")]
    needs_help: Option<String>,
    /// Nobody answered.
    #[arg(long)]
    no_answer: bool,
    /// Not at home.
    #[arg(long)]
    not_home: bool,
    /// Moved to this place, e.g. "school hall".
    #[arg(long, value_name = "TEXT")]
    moved: Option<String>,
}

/// Writing and reading bundle files.
#[derive(Subcommand)]
enum BundleAction {
    /// Write every event this node holds (or only recent ones) to FILE.
    Export {
        /// The file to write, e.g. /media/usb/elm-street.bundle.
        file: PathBuf,
        /// Only events of the last DURATION, e.g. 3d or 12h.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
    },
    /// Read FILE (written by `bundle export` at any hub of this community) and take in
    /// its events; prints how many were new, already known and refused.
    Import {
        /// The bundle file.
        file: PathBuf,
    },
}

/// Ending (or reviving) an alert.
#[derive(Subcommand)]
enum AlertAction {
    /// Take back your own alert (raised by mistake): it disappears everywhere.
    Cancel {
        /// Alert id (at least 6 characters of it, as `aidmesh alerts` shows).
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
    /// Mark an alert all clear: the threat is over. Anyone may.
    Clear {
        /// Alert id (at least 6 characters of it).
        id: String,
        /// What changed, e.g. "river back within its banks".
        #[arg(long)]
        note: Option<String>,
    },
    /// Post the alerts of an official CAP file (CAP 1.2 or 1.1, as weather and
    /// civil-protection services publish them), in all its languages.
    Import {
        /// The CAP XML file.
        file: PathBuf,
    },
    /// Make a cancelled or all-clear alert active again.
    Active {
        /// Alert id (at least 6 characters of it).
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand)]
enum HubAction {
    /// Announce (or update) a hub.
    Announce {
        /// Hub name, e.g. "Elm St church hall".
        name: String,
        /// Where.
        #[arg(long = "where")]
        place: Option<String>,
        /// Latitude in degrees.
        #[arg(long, allow_hyphen_values = true)]
        lat: Option<f64>,
        /// Longitude in degrees.
        #[arg(long, allow_hyphen_values = true)]
        lon: Option<f64>,
        /// What it offers, comma-separated: water,charging,first aid,beds.
        #[arg(long)]
        services: Option<String>,
    },
    /// List hubs.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct PostArgs {
    /// Short title, e.g. "Insulin for a diabetic neighbour".
    title: String,
    /// Category (water, food, medical, shelter, power, transport, rescue, care,
    /// welfare, cleanup, other).
    #[arg(long)]
    category: String,
    /// low, normal, high or life-threatening.
    #[arg(long)]
    urgency: Option<String>,
    /// Quantity.
    #[arg(long, allow_hyphen_values = true)]
    qty: Option<u32>,
    /// Unit of the quantity.
    #[arg(long)]
    unit: Option<String>,
    /// Where, e.g. "12 Mill Lane".
    #[arg(long = "where")]
    place: Option<String>,
    /// Latitude in degrees.
    #[arg(long, allow_hyphen_values = true)]
    lat: Option<f64>,
    /// Longitude in degrees.
    #[arg(long, allow_hyphen_values = true)]
    lon: Option<f64>,
    /// How to reach you.
    #[arg(long)]
    contact: Option<String>,
    /// More details.
    #[arg(long)]
    details: Option<String>,
    /// Expires after this long, e.g. 6h or 3d.
    #[arg(long)]
    expires: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    /// Id or unique prefix (at least 6 characters).
    id: String,
    /// A note for everyone, e.g. "bringing 2 cases at 3pm".
    #[arg(long)]
    note: Option<String>,
    /// Your name or handle, shown as the holder ("Ana"). Set AIDMESH_BY once per
    /// shell session instead of typing it every time.
    #[arg(long, env = "AIDMESH_BY")]
    by: Option<String>,
}

/// Written by the Debian package: `AIDMESH_DIR=` names the data directory of the hub
/// node its systemd unit runs, so `aidmesh init`, `status` and the rest find that node.
const SYSTEM_DEFAULTS: &str = "/etc/default/aidmesh";

/// The data directory when neither `--data-dir` nor `AIDMESH_DIR` names one: the
/// user's own (`$XDG_DATA_HOME/aidmesh` or `~/.local/share/aidmesh`) if it exists,
/// else the packaged hub's (see [`SYSTEM_DEFAULTS`]) if one is installed, else the
/// user's own. The flag says whether it is the packaged hub's.
fn default_data_dir() -> (PathBuf, bool) {
    let own = if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        PathBuf::from(x).join("aidmesh")
    } else {
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".local/share/aidmesh"),
            None => PathBuf::from("aidmesh-data"),
        }
    };
    if !own.exists() {
        if let Some(dir) = std::fs::read_to_string(SYSTEM_DEFAULTS)
            .ok()
            .and_then(|t| system_data_dir(&t))
        {
            return (dir, true);
        }
    }
    (own, false)
}

/// `AIDMESH_DIR` from the text of an `/etc/default/aidmesh` (shell `KEY=value` lines,
/// `#` comments, optional quotes and `export`).
fn system_data_dir(text: &str) -> Option<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
            l.strip_prefix("AIDMESH_DIR=")
        })
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
        .rfind(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `aidmesh list | head` would panic on the closed pipe;
    // a command-line tool should just stop, as `ls | head` does.
    #[cfg(unix)]
    // SAFETY: called before any thread starts; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    aidmesh_node::engine::limit_malloc_arenas();
    let cli = parse_args();
    let (dir, system) = match cli.data_dir.clone() {
        Some(d) => (d, false),
        None => default_data_dir(),
    };
    match run(cli.command, dir, system) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line. `--data-dir` is global, but `demo` runs its own temporary
/// hubs and never reads it: a hidden `--data-dir` of its own keeps the global one out
/// of `demo --help` (and one given anyway is ignored, as it always was).
fn parse_args() -> Cli {
    let command = Cli::command().mut_subcommand("demo", |s| {
        s.arg(
            clap::Arg::new("data_dir")
                .long("data-dir")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .hide(true),
        )
    });
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// How to start the node on `dir` once it is made: the packaged hub's systemd unit
/// (`system`), or `up`.
fn start_hint(dir: &std::path::Path, system: bool) -> String {
    if system {
        "Start the hub (and at every boot) with:  sudo systemctl enable --now aidmesh".into()
    } else {
        format!(
            "Start the node with:  aidmesh --data-dir {} up",
            dir.display()
        )
    }
}

/// The packaged hub's directory belongs to the `aidmesh` user: making a node there
/// needs root (the unit hands the files to that user when it starts).
fn check_system_dir(dir: &std::path::Path, system: bool) -> Result<(), CliError> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return Ok(());
    };
    // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
    let writable = unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0;
    if system && !writable {
        return Err(CliError(format!(
            "cannot write to {}, the hub's data directory (from {SYSTEM_DEFAULTS}): run this with sudo",
            dir.display()
        )));
    }
    Ok(())
}

fn run(cmd: Command, dir: PathBuf, system: bool) -> Result<(), CliError> {
    if matches!(
        cmd,
        Command::Init { .. } | Command::Start { .. } | Command::Join { .. }
    ) {
        check_system_dir(&dir, system)?;
    }
    match cmd {
        Command::Init {
            community,
            passphrase,
        } => {
            let p = node::init(&dir, &community, passphrase.as_deref())
                .map_err(|e| CliError(e.to_string()))?;
            println!("Node created in {}", dir.display());
            println!("Community: {}", p.community);
            if passphrase.is_none() {
                print!(
                    "{}",
                    output::passphrase("New community passphrase", &p.community, &p.passphrase)
                );
            }
            println!("{}", start_hint(&dir, system));
            Ok(())
        }
        Command::Start { community } => {
            let p = node::init(&dir, &community, None).map_err(|e| CliError(e.to_string()))?;
            println!(
                "New community '{}' started in {}",
                p.community,
                dir.display()
            );
            print!(
                "{}",
                output::passphrase("Community passphrase", &p.community, &p.passphrase)
            );
            println!("{}", start_hint(&dir, system));
            println!(
                "Show this card again: aidmesh --data-dir {} passphrase",
                dir.display()
            );
            Ok(())
        }
        Command::Join {
            community,
            passphrase,
        } => join(&dir, community, passphrase, system),
        Command::Passphrase => {
            let Some((community, words)) =
                node::community_card(&dir).map_err(|e| CliError(e.to_string()))?
            else {
                return Err(CliError(format!(
                    "no node in {}; start a community with `aidmesh start --community NAME` or join one with `aidmesh join`",
                    dir.display()
                )));
            };
            print!(
                "{}",
                output::passphrase("Community passphrase", &community, &words)
            );
            Ok(())
        }
        Command::Up(args) => up(args, dir),
        Command::Need {
            action: PostAction::Add(a),
        } => add(&dir, "needs", a),
        Command::Offer {
            action: PostAction::Add(a),
        } => add(&dir, "offers", a),
        Command::List {
            what,
            category,
            status,
            search,
            urgency,
            hub,
            json,
        } => {
            let filters = [
                ("category", category),
                ("status", status),
                ("q", search),
                ("urgency", urgency),
                ("hub", hub),
            ];
            list(&dir, &what, &filters, json)
        }
        Command::Show { id, json } => {
            let item = Client::for_dir(&dir)?.get(&format!("/api/v1/items/{}", id.trim()))?;
            if json {
                print_json(&item);
            } else {
                print!("{}", output::item(&item));
            }
            Ok(())
        }
        Command::Claim(a) => change(&dir, "claimed", a),
        Command::Progress(a) => change(&dir, "in-progress", a),
        Command::Fulfil(a) => change(&dir, "fulfilled", a),
        Command::Withdraw(a) => change(&dir, "withdrawn", a),
        Command::Reopen(a) => change(&dir, "reopened", a),
        Command::Match {
            limit,
            per_need,
            cursor,
            json,
        } => show_matches(&dir, limit, per_need, cursor, json),
        Command::Hub {
            action:
                HubAction::Announce {
                    name,
                    place,
                    lat,
                    lon,
                    services,
                },
        } => {
            let services: Vec<String> = services.map(|s| vec![s]).unwrap_or_default();
            let v = Client::for_dir(&dir)?.post(
                "/api/v1/hubs",
                &json!({ "name": name, "place": place, "lat": lat, "lon": lon, "services": services }),
            )?;
            println!("{}", v["short_id"].as_str().unwrap_or(""));
            Ok(())
        }
        Command::Hubs { json } => {
            let v = Client::for_dir(&dir)?.get("/api/v1/hubs")?;
            let roster = roster_of(&v);
            if json {
                print_json(&Value::Array(roster));
            } else {
                print!("{}", output::roster(&roster));
            }
            Ok(())
        }
        Command::Hub {
            action: HubAction::List { json },
        } => {
            let v = Client::for_dir(&dir)?.get("/api/v1/hubs")?;
            // The roster (issue 11) lists every node; announced hubs are the entries
            // with an announcement, by name.
            let mut hubs: Vec<Value> = roster_of(&v)
                .into_iter()
                .filter(|h| h["id"].is_string())
                .collect();
            hubs.sort_by_key(|h| h["name"].as_str().unwrap_or("").to_lowercase());
            if json {
                print_json(&Value::Array(hubs));
            } else {
                if hubs.is_empty() {
                    println!("No hubs announced yet.");
                }
                for h in &hubs {
                    let services: Vec<&str> = h["services"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    println!(
                        "{}  {}  {}  [{}]",
                        h["short_id"].as_str().unwrap_or(""),
                        h["name"].as_str().unwrap_or(""),
                        h["place"]["label"].as_str().unwrap_or(""),
                        services.join(", ")
                    );
                }
            }
            Ok(())
        }
        Command::Alert {
            action: Some(action),
            ..
        } => {
            let (id, status, note) = match action {
                AlertAction::Import { file } => return import_cap(&dir, &file),
                AlertAction::Cancel { id, note } => (id, "cancelled", note),
                AlertAction::Clear { id, note } => (id, "all-clear", note),
                AlertAction::Active { id, note } => (id, "active", note),
            };
            let v = Client::for_dir(&dir)?.post(
                &format!("/api/v1/alerts/{id}/status"),
                &json!({ "status": status, "note": note }),
            )?;
            println!(
                "{}  {}",
                v["short_id"].as_str().unwrap_or(""),
                v["state"].as_str().unwrap_or("")
            );
            Ok(())
        }
        Command::Alert {
            action: None,
            headline,
            severity,
            details,
            area,
            expires,
        } => {
            let v = Client::for_dir(&dir)?.post(
                "/api/v1/alerts",
                &json!({ "headline": headline, "severity": severity, "details": details, "area": area, "expires": expires }),
            )?;
            println!("{}", v["short_id"].as_str().unwrap_or(""));
            Ok(())
        }
        Command::Bundle { action } => bundle(&dir, action),
        Command::Alerts { lang, json } => {
            // LANG=es_MX.UTF-8 → es-MX.
            let lang = lang.or_else(|| {
                std::env::var("LANG")
                    .ok()
                    .map(|l| l.split('.').next().unwrap_or("").replace('_', "-"))
                    .filter(|l| !l.is_empty() && l != "C" && l != "POSIX")
            });
            let query: Vec<(&str, String)> = lang.map(|l| ("lang", l)).into_iter().collect();
            let v = Client::for_dir(&dir)?.get_query("/api/v1/alerts", &query)?;
            if json {
                print_json(&v["alerts"]);
            } else {
                let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
                if alerts.is_empty() {
                    println!("No active alerts.");
                }
                for a in alerts {
                    let label = match a["state"].as_str() {
                        Some("all-clear") => "ALL CLEAR".to_string(),
                        _ => output::alarm(&a["severity"].as_str().unwrap_or("").to_uppercase()),
                    };
                    println!(
                        "{}  {}  {}{}",
                        a["short_id"].as_str().unwrap_or(""),
                        label,
                        a["headline"].as_str().unwrap_or(""),
                        a["area"]
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .map(|s| format!(" ({s})"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Command::Export { format, out } => export(&dir, &format, out),
        Command::Print {
            out,
            round,
            lang,
            url,
        } => print::run(
            &dir,
            print::PrintArgs {
                round,
                lang,
                url,
                out,
            },
        ),
        Command::Demo { keep } => demo::run(keep),
        Command::Welfare { action } => welfare(&dir, action),
        Command::Flood {
            action: Some(FloodAction::Withdraw { addr, since }),
            ..
        } => {
            let mut body = json!({ "from": addr });
            if let Some(since) = since {
                let d = aidmesh_node::input::parse_duration("--since", &since)
                    .map_err(|e| CliError(e.to_string()))?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |t| t.as_millis() as u64);
                body["since_ms"] = json!(now.saturating_sub(d.as_millis() as u64));
            }
            let v = Client::for_dir(&dir)?.post("/api/v1/flood/withdraw", &body)?;
            println!(
                "took back {} posts from {addr} (erased at every hub as the erasures spread); {} were gone already",
                v["withdrawn"].as_u64().unwrap_or(0),
                v["gone_already"].as_u64().unwrap_or(0)
            );
            Ok(())
        }
        Command::Flood { json, .. } => {
            let v = Client::for_dir(&dir)?.get("/api/v1/flood")?;
            if json {
                print_json(&v);
            } else {
                print!("{}", output::flood(&v));
            }
            Ok(())
        }
        Command::Peers {
            action: Some(PeersAction::Add { addr }),
            ..
        } => {
            let v = Client::for_dir(&dir)?.post("/api/v1/peers", &json!({ "addr": addr }))?;
            println!(
                "dialling {}; `aidmesh peers` shows it once connected",
                v["dialing"].as_str().unwrap_or(&addr)
            );
            Ok(())
        }
        Command::Peers { json, .. } => show_list(
            &dir,
            "/api/v1/peers",
            "peers",
            json,
            "No peers connected.",
            output::peers,
        ),
        Command::Status { json } => {
            let v = Client::for_dir(&dir)?.get("/api/v1/status")?;
            if json {
                print_json(&v);
            } else {
                let digest = v["digest"].as_str().unwrap_or("");
                println!("peer id    {}", v["peer_id"].as_str().unwrap_or(""));
                println!("community  {}", v["community"].as_str().unwrap_or(""));
                for l in v["listen"].as_array().into_iter().flatten() {
                    println!("listening  {}", l.as_str().unwrap_or(""));
                }
                println!("events     {}", v["events"]);
                println!("digest     {}", &digest[..digest.len().min(16)]);
                println!("peers      {}", v["peers"]);
                let now = v["now_ms"].as_u64().unwrap_or(0);
                for r in v["refused"].as_array().into_iter().flatten() {
                    println!(
                        "refused    {}",
                        output::alarm(&format!(
                            "a node at {} tried to join with a different passphrase or community name ({} attempts, last {})",
                            r["ip"].as_str().unwrap_or("?"),
                            r["attempts"],
                            output::ago(r["last_ms"].as_u64().unwrap_or(0), now)
                        ))
                    );
                }
                for r in v["refused_by"].as_array().into_iter().flatten() {
                    println!(
                        "refused    {}",
                        output::alarm(&format!(
                            "the node at {} belongs to another community: this node dialled it and it has a different passphrase or community name ({} attempts, last {})",
                            r["ip"].as_str().unwrap_or("?"),
                            r["attempts"],
                            output::ago(r["last_ms"].as_u64().unwrap_or(0), now)
                        ))
                    );
                }
                // Another community's hub nearby (mDNS), and what differs (issue 29):
                // a mistake (word order, name, words) loudly, a neighbour plainly.
                for o in v["other_communities"].as_array().into_iter().flatten() {
                    let says = o["says"].as_str().unwrap_or("");
                    match o["differs"].as_str() {
                        Some("community") => println!("nearby     {says}"),
                        _ => println!("MISMATCH   {}", output::alarm(says)),
                    }
                }
                match v["clock"]["warning"].as_str() {
                    Some(w) => println!("clock      {}", output::alarm(w)),
                    None => println!("clock      {}", v["clock"]["status"].as_str().unwrap_or("")),
                }
                if let Some(line) = output::disk(&v["disk"]) {
                    println!("disk       {line}");
                }
                let unreached = v["unreached"].as_array().map_or(&[][..], Vec::as_slice);
                for line in output::unreached(unreached, now) {
                    println!("unreached  {line}");
                }
                let total = v["unreached_total"].as_u64().unwrap_or(0);
                if let Some(line) = output::unreached_more(unreached.len(), total) {
                    println!("unreached  {line}");
                }
            }
            Ok(())
        }
    }
}

/// `aidmesh bundle export|import`.
fn bundle(dir: &std::path::Path, action: BundleAction) -> Result<(), CliError> {
    let client = Client::for_dir(dir)?;
    match action {
        BundleAction::Export { file, since } => {
            // Written beside the target and renamed when complete, so a failed export
            // never leaves a file that looks like a bundle.
            let part = file.with_extension("part");
            let mut out = std::fs::File::create(&part)
                .map_err(|e| CliError(format!("cannot write {}: {e}", part.display())))?;
            let query: Vec<(&str, String)> = since.map(|s| ("since", s)).into_iter().collect();
            let result = client
                .download("/api/v1/bundle", &query, &mut out)
                .and_then(|h| {
                    out.sync_all()
                        .map_err(|e| CliError(format!("cannot write {}: {e}", part.display())))?;
                    std::fs::rename(&part, &file)
                        .map_err(|e| CliError(format!("cannot write {}: {e}", file.display())))?;
                    Ok(h)
                });
            let headers = match result {
                Ok(h) => h,
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
            };
            let events = headers
                .get("x-aidmesh-events")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
            println!(
                "wrote {events} events ({}) to {}",
                human_size(bytes),
                file.display()
            );
        }
        BundleAction::Import { file } => {
            let mut f = std::fs::File::open(&file)
                .map_err(|e| CliError(format!("cannot read {}: {e}", file.display())))?;
            let v = client.post_file("/api/v1/bundle", "application/octet-stream", &mut f)?;
            println!(
                "{} new, {} already known, {} refused",
                v["new"], v["known"], v["refused"]
            );
            for r in v["refused_reasons"].as_array().into_iter().flatten() {
                println!("  refused: {}", r.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// `aidmesh alert import FILE`: prints each alert posted, and those posted before.
fn import_cap(dir: &std::path::Path, file: &std::path::Path) -> Result<(), CliError> {
    let client = Client::for_dir(dir)?;
    let mut f = std::fs::File::open(file)
        .map_err(|e| CliError(format!("cannot read {}: {e}", file.display())))?;
    // The hub stops reading past its limit, which the sender would see as a broken pipe.
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let max = aidmesh_node::cap::MAX_CAP_BYTES as u64;
    if size > max {
        return Err(CliError(format!(
            "{} is {}; a CAP alert is at most {} ({max} bytes): give one alert's file, not a feed or an archive",
            file.display(),
            human_size(size),
            human_size(max)
        )));
    }
    let v = client.post_file("/api/v1/alerts/import", "application/xml", &mut f)?;
    for a in v["posted"].as_array().into_iter().flatten() {
        let langs: Vec<&str> = a["official"]["languages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["language"].as_str())
            .collect();
        println!(
            "{}  {}  {} ({}; {})",
            a["short_id"].as_str().unwrap_or(""),
            if a["state"] == "all-clear" {
                "ALL CLEAR".to_string()
            } else {
                a["severity"].as_str().unwrap_or("").to_uppercase()
            },
            a["headline"].as_str().unwrap_or(""),
            a["official"]["sender"].as_str().unwrap_or(""),
            langs.join(", ")
        );
    }
    for id in v["already_posted"].as_array().into_iter().flatten() {
        println!(
            "{}  already posted from an earlier import",
            id.as_str().unwrap_or("")
        );
    }
    for e in v["ended"].as_array().into_iter().flatten() {
        println!(
            "{}  {}  {}",
            e["short_id"].as_str().unwrap_or(""),
            e["state"].as_str().unwrap_or(""),
            e["note"].as_str().unwrap_or("")
        );
    }
    let none = |k: &str| v[k].as_array().is_none_or(|a| a.is_empty());
    if none("posted") && none("already_posted") && none("ended") {
        println!("nothing changed: the alerts this message names have already ended");
    }
    let left: Vec<&str> = v["languages_left_out"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .collect();
    if !left.is_empty() {
        println!(
            "not carried (an alert holds at most 4 languages): {}",
            left.join(", ")
        );
    }
    Ok(())
}

/// "840 bytes", "12.4 KB", "3.1 MB" (powers of 1000, as file managers show).
fn human_size(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} bytes"),
        1_000..=999_999 => format!("{:.1} KB", bytes as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

/// Asks until `check` takes the answer, saying on stderr why it did not (issue 29: one
/// typo used to end `join`, and everything had to be typed again). At the end of the
/// input (Ctrl-D, or a script's last line) it gives up with the last reason.
fn ask_again<T>(
    prompt: &str,
    check: impl Fn(&str) -> Result<T, &'static str>,
) -> Result<T, CliError> {
    loop {
        let Some(answer) = ask_line(prompt)? else {
            return Err(CliError(format!(
                "no answer to '{}'",
                prompt.trim_end_matches([' ', ':'])
            )));
        };
        match check(&answer) {
            Ok(v) => return Ok(v),
            Err(why) => eprintln!("{why}; type it again (Ctrl-C to stop)"),
        }
    }
}

/// One line of standard input after printing `prompt`; `None` at the end of the input.
fn ask_line(prompt: &str) -> Result<Option<String>, CliError> {
    use std::io::Write;
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError(format!("cannot read the answer: {e}")))?;
    Ok((n > 0).then(|| line.trim().to_string()))
}

/// Asks for the six words until they pass the word list: a mistyped word is asked for
/// alone (the others are kept), a wrong count asks for all six again.
fn ask_words() -> Result<String, CliError> {
    use aidmesh_protocol::community::{check_passphrase, PassphraseProblem};
    const ALL: &str = "Passphrase (the six words from the card): ";
    let eof =
        || CliError("no passphrase typed: run `aidmesh join` again with the card at hand".into());
    let mut typed = ask_line(ALL)?.ok_or_else(eof)?;
    loop {
        match check_passphrase(&typed) {
            Ok(words) => return Ok(words),
            Err(problem @ PassphraseProblem::UnknownWord { position, .. }) => {
                eprintln!("{problem}");
                let fix = ask_line(&format!(
                    "Word {position} again (or press Enter to type all six again): "
                ))?
                .ok_or_else(eof)?;
                let mut words: Vec<String> = typed.split_whitespace().map(str::to_string).collect();
                match fix.split_whitespace().count() {
                    0 => typed = ask_line(ALL)?.ok_or_else(eof)?,
                    1 => {
                        words[position - 1] = fix;
                        typed = words.join(" ");
                    }
                    _ => typed = fix,
                }
            }
            Err(problem) => {
                eprintln!("{problem}; type the six words again (Ctrl-C to stop)");
                typed = ask_line(ALL)?.ok_or_else(eof)?;
            }
        }
    }
}

/// `aidmesh join`: checks the typed words against the list before anything is written,
/// so a typo is named at once rather than found as peers that never connect.
fn join(
    dir: &std::path::Path,
    community: Option<String>,
    passphrase: Option<String>,
    system: bool,
) -> Result<(), CliError> {
    let community = match community {
        Some(c) => c,
        None => ask_again("Community name (from the card): ", |c| {
            (!c.is_empty())
                .then(|| c.to_string())
                .ok_or("the community name is empty")
        })?,
    };
    let words = match passphrase {
        Some(p) => aidmesh_protocol::community::check_passphrase(&p)
            .map_err(|e| CliError(e.to_string()))?,
        None => ask_words()?,
    };
    let p = node::init(dir, &community, Some(&words)).map_err(|e| CliError(e.to_string()))?;
    println!("Joined community '{}' in {}", p.community, dir.display());
    println!("{}", start_hint(dir, system));
    println!(
        "It finds hubs on the same network by itself; for others add --peer /ip4/ADDRESS/tcp/4610"
    );
    Ok(())
}

fn up(args: UpArgs, dir: PathBuf) -> Result<(), CliError> {
    let bad = |what: &str, v: &str, e: &dyn std::fmt::Display| {
        CliError(format!("{what} '{v}' is not valid: {e}"))
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
            a.parse().map_err(|e| {
                CliError(format!(
                    "--peer '{a}' is not valid: {e}; give the other hub's address like /ip4/192.168.1.20/tcp/4610"
                ))
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
    cfg.sync_every = aidmesh_node::input::parse_duration("--sync-every", &args.sync_every)
        .map_err(|e| CliError(e.to_string()))?;
    cfg.welfare_retention =
        aidmesh_node::input::parse_duration("--welfare-retention", &args.welfare_retention)
            .map_err(|e| CliError(e.to_string()))?;
    if let Some(off) = &args.clock_offset {
        let (neg, rest) = off
            .strip_prefix('-')
            .map_or((false, off.as_str()), |r| (true, r));
        let d = aidmesh_node::input::parse_duration("--clock-offset", rest)
            .map_err(|e| CliError(e.to_string()))?;
        let ms = d.as_millis() as i64;
        cfg.clock_offset_ms = if neg { -ms } else { ms };
    }
    if let Some(every) = &args.retention_sweep_every {
        cfg.retention_sweep = aidmesh_node::input::parse_duration("--retention-sweep-every", every)
            .map_err(|e| CliError(e.to_string()))?;
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
    aidmesh_node::api::welfare::check_pin(cfg.volunteer_pin.as_deref())
        .map_err(|e| CliError(e.to_string()))?;
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
    let created = node::prepare(&dir).map_err(|e| CliError(e.to_string()))?;
    if let Some(p) = &created {
        print_first_run(&dir, p);
    }
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError(format!("cannot start: {e}")))?;
    rt.block_on(node::run(
        cfg,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        |s| {
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
        },
    ))
    .map_err(|e| CliError(e.to_string()))?;
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// The volunteer PIN of `up`, from `--volunteer-pin` / `AIDMESH_VOLUNTEER_PIN` or from
/// the first line of `--volunteer-pin-file` (one of them).
fn volunteer_pin(pin: Option<String>, file: Option<&Path>) -> Result<Option<String>, CliError> {
    let Some(path) = file else {
        return Ok(pin);
    };
    if pin.is_some() {
        return Err(CliError(format!(
            "the volunteer PIN is given twice (--volunteer-pin or AIDMESH_VOLUNTEER_PIN, and \
             --volunteer-pin-file {}): give it once",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError(format!(
            "cannot read the volunteer PIN from {}: {e}; write the PIN on the first line of \
             that file, readable by this user only (chmod 600)",
            path.display()
        ))
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
fn print_first_run(dir: &std::path::Path, p: &node::Profile) {
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

fn add(dir: &std::path::Path, path: &str, a: PostArgs) -> Result<(), CliError> {
    let body = json!({
        "title": a.title, "category": a.category, "urgency": a.urgency, "qty": a.qty,
        "unit": a.unit, "place": a.place, "lat": a.lat, "lon": a.lon, "contact": a.contact,
        "details": a.details, "expires": a.expires,
    });
    let item = Client::for_dir(dir)?.post(&format!("/api/v1/{path}"), &body)?;
    println!("{}", item["short_id"].as_str().unwrap_or(""));
    Ok(())
}

/// `aidmesh list`: `filters` are the list API's query parameters, each if given.
fn list(
    dir: &std::path::Path,
    what: &str,
    filters: &[(&'static str, Option<String>)],
    json: bool,
) -> Result<(), CliError> {
    let path = match what {
        "needs" | "need" => "/api/v1/needs",
        "offers" | "offer" => "/api/v1/offers",
        "all" => "/api/v1/items",
        other => {
            return Err(CliError(format!(
                "'{other}' is not a list; use needs, offers or all"
            )))
        }
    };
    let query: Vec<(&str, String)> = filters
        .iter()
        .filter_map(|(k, v)| Some((*k, v.clone()?)))
        .collect();
    // The node answers a long list a page at a time (`next_cursor`): follow it.
    let client = Client::for_dir(dir)?;
    let mut items: Vec<serde_json::Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("limit", aidmesh_node::input::MAX_LIST_LIMIT.to_string()));
            q.push(("cursor", c.clone()));
        }
        let v = client.get_query(path, &q)?;
        items.extend(v["items"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    if json {
        print_json(&serde_json::Value::Array(items));
        return Ok(());
    }
    if items.is_empty() {
        println!("Nothing to show.");
    } else {
        println!("{}", output::items(&items));
    }
    Ok(())
}

fn change(dir: &std::path::Path, status: &str, a: StatusArgs) -> Result<(), CliError> {
    let v = Client::for_dir(dir)?.post(
        &format!("/api/v1/items/{}/status", a.id.trim()),
        &json!({ "status": status, "note": a.note, "by": a.by }),
    )?;
    let holder = v["holder_name"]
        .as_str()
        .map(|n| format!(", held by {n}"))
        .unwrap_or_default();
    println!(
        "{} is now {}{holder}",
        v["short_id"].as_str().unwrap_or(""),
        v["status"].as_str().unwrap_or("")
    );
    Ok(())
}

/// `aidmesh export`: fetches the export and writes it to `out` (whole or not at all:
/// a temporary file renamed into place) or to standard output.
fn export(dir: &std::path::Path, format: &str, out: Option<PathBuf>) -> Result<(), CliError> {
    use std::io::Write;
    let bytes =
        Client::for_dir(dir)?.get_bytes("/api/v1/export", &[("format", format.to_string())])?;
    let Some(path) = out else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError(format!("cannot write the export: {e}")));
    };
    let cannot = |e: std::io::Error| {
        CliError(format!(
            "cannot write {}: {e}. Is the directory there and writable (a USB stick still mounted)?",
            path.display()
        ))
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(CliError(format!(
            "cannot write {}: there is no directory {}; is the USB stick mounted?",
            path.display(),
            parent.display()
        )));
    }
    let mut tmp = tempfile::NamedTempFile::new_in(&parent).map_err(cannot)?;
    tmp.write_all(&bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(cannot)?;
    tmp.persist(&path).map_err(|e| cannot(e.error))?;
    println!(
        "wrote {} ({} bytes, {})",
        path.display(),
        bytes.len(),
        format.trim().to_ascii_lowercase()
    );
    Ok(())
}

fn person_path(p: &str) -> String {
    // Names may contain spaces and other characters that must be escaped in a path.
    let enc: String = p
        .trim()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("/api/v1/people/{enc}")
}

fn welfare(dir: &std::path::Path, action: WelfareAction) -> Result<(), CliError> {
    match action {
        WelfareAction::Add {
            name,
            place,
            every,
            risks,
            phone,
            consent,
            lat,
            lon,
            share_with_responders,
        } => {
            let v = Client::for_dir(dir)?.post(
                "/api/v1/people",
                &json!({ "name": name, "place": place, "every": every, "risks": risks,
                         "phone": phone, "consent": consent, "lat": lat, "lon": lon,
                         "share_with_responders": share_with_responders }),
            )?;
            println!("{}", v["short_id"].as_str().unwrap_or(""));
        }
        WelfareAction::Share { person, answer } => {
            let share = matches!(answer, YesNo::Yes);
            let v = Client::for_dir(dir)?.post(
                &format!("{}/sharing", person_path(&person)),
                &json!({ "share": share }),
            )?;
            let name = v["name"].as_str().unwrap_or("");
            if share {
                println!("{name} will be shared with responders (pfif export)");
            } else {
                println!("{name} will not be shared with responders");
            }
        }
        WelfareAction::Check {
            person,
            outcome,
            note,
            by,
        } => {
            let (name, detail) = match outcome {
                Outcome { safe: true, .. } => ("safe", None),
                Outcome { needs_help: Some(w), .. } => ("needs-help", Some(w)),
                Outcome { no_answer: true, .. } => ("no-answer", None),
                Outcome { not_home: true, .. } => ("not-home", None),
                Outcome { moved: Some(to), .. } => ("moved", Some(to)),
                _ => return Err(CliError("say what you found: --safe, --needs-help TEXT, --no-answer, --not-home or --moved TEXT".into())),
            };
            let v = Client::for_dir(dir)?.post(
                &format!("{}/checkins", person_path(&person)),
                &json!({ "outcome": name, "detail": detail, "note": note, "by": by }),
            )?;
            println!("{}: {} recorded", v["name"].as_str().unwrap_or(""), name);
            if let Some(n) = v["need_id"].as_str() {
                println!(
                    "posted need {} so the board shows the help needed",
                    &n[..10.min(n.len())]
                );
            }
        }
        WelfareAction::List { json } => show_list(
            dir,
            "/api/v1/people",
            "people",
            json,
            "Nobody is registered for welfare checks.",
            output::people,
        )?,
        WelfareAction::Overdue { json } => show_list(
            dir,
            "/api/v1/people/overdue",
            "people",
            json,
            "Nobody is overdue.",
            output::people,
        )?,
        WelfareAction::Forget { person } => {
            // The node wants the full id as confirmation: resolve the name or prefix
            // first, so exactly the person shown is erased.
            let client = Client::for_dir(dir)?;
            let p = client.get(&person_path(&person))?;
            let id = p["id"].as_str().unwrap_or("").to_string();
            let v = client.post(
                &format!("/api/v1/people/{id}/forget"),
                &json!({ "confirm": id }),
            )?;
            let id = v["forgotten"].as_str().unwrap_or("");
            println!(
                "forgot {} {}: their record and check-ins are being erased on every node",
                &id[..10.min(id.len())],
                p["name"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// GETs `path`, then prints `key` as JSON, or `empty` when the list is empty, or the
/// human rendering: the shape every list-style command shares.
/// One page of `GET /api/v1/match`, and how to get the next.
fn show_matches(
    dir: &std::path::Path,
    limit: Option<String>,
    per_need: Option<String>,
    cursor: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let query: Vec<(&str, String)> = [("limit", limit), ("per_need", per_need), ("cursor", cursor)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let v = Client::for_dir(dir)?.get_query("/api/v1/match", &query)?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let list = v["matches"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("No open needs.");
    } else {
        print!("{}", output::matches(&list));
    }
    if let Some(next) = v["next_cursor"].as_str() {
        println!(
            "{} of {} open needs shown. Next page: aidmesh match --cursor {next}",
            list.len(),
            v["needs_total"]
        );
    }
    Ok(())
}

/// The entries of GET /api/v1/hubs: the roster array (issue 11), or the `hubs` list
/// of an older node's `{"hubs": [...]}` answer.
fn roster_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        _ => v["hubs"].as_array().cloned().unwrap_or_default(),
    }
}

fn show_list(
    dir: &std::path::Path,
    path: &str,
    key: &str,
    json: bool,
    empty: &str,
    render: fn(&[Value]) -> String,
) -> Result<(), CliError> {
    let v = Client::for_dir(dir)?.get(path)?;
    if json {
        print_json(&v[key]);
        return Ok(());
    }
    let list = v[key].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("{empty}");
    } else {
        print!("{}", render(&list));
    }
    Ok(())
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

    #[test]
    fn the_packaged_hubs_directory_is_read_from_etc_default() {
        let text =
            "# aidmesh hub\nAIDMESH_DIR=/var/lib/aidmesh\nAIDMESH_UP_ARGS=\"--api 0.0.0.0:4611\"\n";
        assert_eq!(
            system_data_dir(text),
            Some(PathBuf::from("/var/lib/aidmesh"))
        );
        assert_eq!(
            system_data_dir("export AIDMESH_DIR=\"/srv/aid\"\n"),
            Some(PathBuf::from("/srv/aid"))
        );
        assert_eq!(system_data_dir("#AIDMESH_DIR=/x\nAIDMESH_DIR=\n"), None);
    }
}
