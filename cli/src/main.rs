//! `aidmesh`: run a node, and act on the board of needs and offers.
//!
//! Every command but `init` and `up` talks to the node running on `--data-dir` through
//! its HTTP API, so the command line and the web page see the same thing. This file
//! holds the command tree and hands each command to its group in [`cmd`].

mod client;
mod cmd;
mod datadir;
mod error;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cmd::alert::{AlertAction, NewAlert};
use cmd::bundle::BundleAction;
use cmd::hub::HubAction;
use cmd::items::{PostAction, StatusArgs};
use cmd::status::{FloodAction, PeersAction};
use cmd::up::UpArgs;
use cmd::welfare::WelfareAction;
use cmd::{alert, backup, bundle, demo, export, hub, items, print, setup, status, up, welfare};
use error::CliError;

#[derive(Parser)]
#[command(
    name = "aidmesh",
    version,
    about = "Mutual aid that keeps working when the network is down"
)]
struct Cli {
    /// The node's data directory (default: the environment variable AIDMESH_DIR, else
    /// the platform's data directory).
    // AIDMESH_DIR is read in `main`, not by clap: clap counts a value from the
    // environment as given, and its usage lines then showed `--data-dir <DATA_DIR>` as
    // if it were required.
    #[arg(long, global = true)]
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
        /// Write to this file, or into this directory under a name that says which hub
        /// and node made it and when (default: standard output).
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
        /// The first hub's web page port, to open the pages at known addresses; the
        /// other two hubs take the next ones (default: any free ports).
        #[arg(long, value_name = "PORT")]
        api: Option<u16>,
        /// The first hub's peer port; the other two hubs take the next ones (default:
        /// any free ports).
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
    },
    /// Carry events between hubs that never share a network, on a USB stick: an
    /// encrypted file only this community can read.
    Bundle {
        #[command(subcommand)]
        action: BundleAction,
    },
    /// Copy this hub (its identity, every event, its peers file) into one file, while
    /// it runs or stopped. The file is secret: it holds the hub's identity.
    Backup {
        /// The file to write, e.g. /media/usb/elm-street.backup.
        file: PathBuf,
    },
    /// Make a new data directory (--data-dir, empty or new) from a backup file: the
    /// same hub, without the welfare records past retention.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Erase welfare records this long after their last check-in (as `up`'s).
        #[arg(long, default_value = "30d")]
        welfare_retention: String,
    },
    /// The SMS gateway: status, texts to review, welfare rounds by text (docs/sms.md).
    Sms {
        #[command(subcommand)]
        action: cmd::sms::Action,
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
    /// The town's offline map on this hub: what is installed (`map`, `map --json`),
    /// `map add FILE` to install or replace it, `map remove` (see docs/map.md).
    Map {
        /// Machine-readable output.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: Option<cmd::map::MapAction>,
    },
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
    let from_env = std::env::var_os("AIDMESH_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let (dir, system) = match cli.data_dir.clone().or(from_env) {
        Some(d) => (d, false),
        None => datadir::default_data_dir(),
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

/// Runs one command on the node of `dir` (`system`: the packaged hub's directory).
fn run(cmd: Command, dir: PathBuf, system: bool) -> Result<(), CliError> {
    let dir = dir.as_path();
    match cmd {
        Command::Init {
            community,
            passphrase,
        } => setup::init(dir, system, &community, passphrase.as_deref()),
        Command::Start { community } => setup::start(dir, system, &community),
        Command::Join {
            community,
            passphrase,
        } => setup::join(dir, community, passphrase, system),
        Command::Passphrase => setup::passphrase(dir),
        Command::Up(args) => up::up(args, dir.to_path_buf()),
        Command::Need {
            action: PostAction::Add(a),
        } => items::add(dir, "needs", a),
        Command::Offer {
            action: PostAction::Add(a),
        } => items::add(dir, "offers", a),
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
            items::list(dir, &what, &filters, json)
        }
        Command::Show { id, json } => items::show(dir, &id, json),
        Command::Claim(a) => items::change(dir, "claimed", a),
        Command::Progress(a) => items::change(dir, "in-progress", a),
        Command::Fulfil(a) => items::change(dir, "fulfilled", a),
        Command::Withdraw(a) => items::change(dir, "withdrawn", a),
        Command::Reopen(a) => items::change(dir, "reopened", a),
        Command::Match {
            limit,
            per_need,
            cursor,
            json,
        } => items::matches(dir, limit, per_need, cursor, json),
        Command::Hub { action } => hub::hub(dir, action),
        Command::Hubs { json } => hub::roster(dir, json),
        Command::Alert {
            action: Some(action),
            ..
        } => alert::act(dir, action),
        Command::Alert {
            action: None,
            headline,
            severity,
            details,
            area,
            expires,
        } => alert::raise(
            dir,
            NewAlert {
                headline,
                severity,
                details,
                area,
                expires,
            },
        ),
        Command::Alerts { lang, json } => alert::list(dir, lang, json),
        Command::Bundle { action } => bundle::run(dir, action),
        Command::Backup { file } => backup::backup(dir, &file),
        Command::Restore {
            file,
            welfare_retention,
        } => backup::restore(dir, &file, &welfare_retention),
        Command::Export { format, out } => export::run(dir, &format, out),
        Command::Print {
            out,
            round,
            lang,
            url,
        } => print::run(
            dir,
            print::PrintArgs {
                round,
                lang,
                url,
                out,
            },
        ),
        Command::Demo { keep, api, port } => demo::run(demo::DemoArgs {
            keep,
            api: api.unwrap_or(0),
            port: port.unwrap_or(0),
        }),
        Command::Welfare { action } => welfare::run(dir, action),
        Command::Sms { action } => cmd::sms::run(dir, action),
        Command::Flood { json, action } => status::flood(dir, json, action),
        Command::Peers { json, action } => status::peers(dir, json, action),
        Command::Status { json } => status::status(dir, json),
        Command::Map { json, action } => cmd::map::run(dir, json, action),
    }
}
