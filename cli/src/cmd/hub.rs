//! Hubs: `hub announce`, `hub list` (announced hubs by name), `hub retire` (a hub gone
//! for good off this hub's list) and `hubs` (the roster of every node heard of).

use std::path::Path;

use clap::Subcommand;
use serde_json::{json, Value};

use super::print_json;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum HubAction {
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
    /// Take a hub that is gone for good (a laptop that joined once) off this hub's
    /// list and its "at X of Y hubs" counts, e.g. `aidmesh hub retire 83fbddd9`. Only
    /// here, not at other hubs; it comes back if it is heard from again.
    Retire {
        /// The hub's node id as `aidmesh hubs` shows it (8 or more hex characters).
        node: String,
    },
}

/// `aidmesh hub announce|list`.
pub(crate) fn hub(dir: &Path, action: HubAction) -> Result<(), CliError> {
    match action {
        HubAction::Announce {
            name,
            place,
            lat,
            lon,
            services,
        } => {
            let services: Vec<String> = services.map(|s| vec![s]).unwrap_or_default();
            let v = Client::for_dir(dir)?.post(
                "/api/v1/hubs",
                &json!({ "name": name, "place": place, "lat": lat, "lon": lon, "services": services }),
            )?;
            println!("{}", v["short_id"].as_str().unwrap_or(""));
            Ok(())
        }
        HubAction::List { json } => list(dir, json),
        HubAction::Retire { node } => {
            let v = Client::for_dir(dir)?
                .post(&format!("/api/v1/hubs/{}/retire", node.trim()), &json!({}))?;
            let short = v["retired"].as_str().unwrap_or("");
            let name = v["name"]
                .as_str()
                .map_or(String::new(), |n| format!(" ({n})"));
            println!(
                "retired {short}{name}: off this hub's list and counts; it comes back if it is heard from again"
            );
            Ok(())
        }
    }
}

/// `aidmesh hub list`: the announced hubs, by name.
fn list(dir: &Path, json: bool) -> Result<(), CliError> {
    let v = Client::for_dir(dir)?.get("/api/v1/hubs")?;
    // The roster (issue 11) lists every node; announced hubs are the entries
    // with an announcement, by name.
    let mut hubs: Vec<Value> = roster_of(&v)
        .into_iter()
        .filter(|h| h["id"].is_string())
        .collect();
    hubs.sort_by_key(|h| h["name"].as_str().unwrap_or("").to_lowercase());
    if json {
        print_json(&Value::Array(hubs));
        return Ok(());
    }
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
            "{}  {}  {}  [{}]{}",
            h["short_id"].as_str().unwrap_or(""),
            h["name"].as_str().unwrap_or(""),
            h["place"]["label"].as_str().unwrap_or(""),
            services.join(", "),
            output::not_seen(h).map_or(String::new(), |g| format!("  {g}"))
        );
    }
    Ok(())
}

/// `aidmesh hubs`: the roster.
pub(crate) fn roster(dir: &Path, json: bool) -> Result<(), CliError> {
    let v = Client::for_dir(dir)?.get("/api/v1/hubs")?;
    let roster = roster_of(&v);
    if json {
        print_json(&Value::Array(roster));
    } else {
        print!("{}", output::roster(&roster));
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
