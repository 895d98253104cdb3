//! The running node itself: `status`, `peers` (and `peers add`), `flood` (and
//! `flood withdraw`).

use std::path::Path;

use clap::Subcommand;
use serde_json::{json, Value};

use super::{print_json, show_list};
use crate::client::Client;
use crate::error::CliError;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum FloodAction {
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
pub(crate) enum PeersAction {
    /// Connect to a node now, e.g. /ip4/192.168.1.20/tcp/4610 (the running node redials
    /// it with back-off; give it with --peer or in the peers file to keep it).
    Add {
        /// The other node's address.
        addr: String,
    },
}

/// `aidmesh status`.
pub(crate) fn status(dir: &Path, json: bool) -> Result<(), CliError> {
    let v = Client::for_dir(dir)?.get("/api/v1/status")?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let digest = v["digest"].as_str().unwrap_or("");
    println!("peer id    {}", v["peer_id"].as_str().unwrap_or(""));
    println!("community  {}", v["community"].as_str().unwrap_or(""));
    for l in v["listen"].as_array().into_iter().flatten() {
        println!("listening  {}", l.as_str().unwrap_or(""));
    }
    println!("events     {}", v["events"]);
    println!("digest     {}", &digest[..digest.len().min(16)]);
    println!("peers      {}", v["peers"]);
    // Hubs not heard from for days are not counted in "at X of Y hubs" (issue 29).
    if let Some(n) = v["hubs_counted"].as_u64() {
        let gone: Vec<String> = v["hubs_gone"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let who = match h["name"].as_str() {
                    Some(name) => format!("{} ({name})", h["node"].as_str().unwrap_or("")),
                    None => h["node"].as_str().unwrap_or("").to_string(),
                };
                format!(
                    "{who} {}",
                    output::not_seen(&json!({"gone": true, "not_seen_days": h["not_seen_days"]}))
                        .unwrap_or_default()
                )
            })
            .collect();
        if gone.is_empty() {
            println!("hubs       {n}");
        } else {
            println!(
                "hubs       {n} counted; {} (`aidmesh hub retire NODE` if gone for good)",
                gone.join("; ")
            );
        }
    }
    let now = v["now_ms"].as_u64().unwrap_or(0);
    print_refused(
        &v["refused"],
        now,
        "a node at {ip} tried to join with a different passphrase or community name",
    );
    print_refused(
        &v["refused_by"],
        now,
        "the node at {ip} belongs to another community: this node dialled it and it has a different passphrase or community name",
    );
    // Another community's hub nearby (mDNS), and what differs (issue 29): a mistake
    // (word order, name, words) loudly, a neighbour plainly.
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
    Ok(())
}

/// The `refused` lines of `status`: each address in `list` (`refused` or `refused_by`
/// of the status answer), said by `what` (its `{ip}` replaced), with the attempts.
fn print_refused(list: &Value, now: u64, what: &str) {
    for r in list.as_array().into_iter().flatten() {
        let what = what.replace("{ip}", r["ip"].as_str().unwrap_or("?"));
        println!(
            "refused    {}",
            output::alarm(&format!(
                "{what} ({} attempts, last {})",
                r["attempts"],
                output::ago(r["last_ms"].as_u64().unwrap_or(0), now)
            ))
        );
    }
}

/// `aidmesh peers` and `peers add ADDR`.
pub(crate) fn peers(dir: &Path, json: bool, action: Option<PeersAction>) -> Result<(), CliError> {
    match action {
        Some(PeersAction::Add { addr }) => {
            let v = Client::for_dir(dir)?.post("/api/v1/peers", &json!({ "addr": addr }))?;
            println!(
                "dialling {}; `aidmesh peers` shows it once connected",
                v["dialing"].as_str().unwrap_or(&addr)
            );
            Ok(())
        }
        None => show_list(
            dir,
            "/api/v1/peers",
            "peers",
            json,
            "No peers connected.",
            output::peers,
        ),
    }
}

/// `aidmesh flood` and `flood withdraw ADDR`.
pub(crate) fn flood(dir: &Path, json: bool, action: Option<FloodAction>) -> Result<(), CliError> {
    let Some(FloodAction::Withdraw { addr, since }) = action else {
        let v = Client::for_dir(dir)?.get("/api/v1/flood")?;
        if json {
            print_json(&v);
        } else {
            print!("{}", output::flood(&v));
        }
        return Ok(());
    };
    let mut body = json!({ "from": addr });
    if let Some(since) = since {
        let d = aidmesh_node::doors::input::parse_duration("--since", &since)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_millis() as u64);
        body["since_ms"] = json!(now.saturating_sub(d.as_millis() as u64));
    }
    let v = Client::for_dir(dir)?.post("/api/v1/flood/withdraw", &body)?;
    println!(
        "took back {} posts from {addr} (erased at every hub as the erasures spread); {} were gone already",
        v["withdrawn"].as_u64().unwrap_or(0),
        v["gone_already"].as_u64().unwrap_or(0)
    );
    Ok(())
}
