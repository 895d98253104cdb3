//! `aidmesh bundle export|import`: events carried between hubs on a USB stick.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::client::Client;
use crate::error::CliError;

/// Writing and reading bundle files.
#[derive(Subcommand)]
pub(crate) enum BundleAction {
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

/// `aidmesh bundle export|import`.
pub(crate) fn run(dir: &Path, action: BundleAction) -> Result<(), CliError> {
    let client = Client::for_dir(dir)?;
    match action {
        BundleAction::Export { file, since } => {
            // Written beside the target and renamed when complete, so a failed export
            // never leaves a file that looks like a bundle.
            let part = file.with_extension("part");
            let mut out = std::fs::File::create(&part).map_err(CliError::write(&part, ""))?;
            let query: Vec<(&str, String)> = since.map(|s| ("since", s)).into_iter().collect();
            let result = client
                .download("/api/v1/bundle", &query, &mut out)
                .and_then(|h| {
                    out.sync_all().map_err(CliError::write(&part, ""))?;
                    std::fs::rename(&part, &file).map_err(CliError::write(&file, ""))?;
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
                crate::output::human_size(bytes),
                file.display()
            );
        }
        BundleAction::Import { file } => {
            let mut f = std::fs::File::open(&file).map_err(CliError::read(&file))?;
            let v = client.post_file("/api/v1/bundle", "application/octet-stream", &mut f)?;
            println!(
                "{} new, {} already known, {} refused",
                v["new"], v["known"], v["refused"]
            );
            if let Some(said) = came_in(&v) {
                println!("{said}");
            }
            for r in v["refused_reasons"].as_array().into_iter().flatten() {
                println!("  refused: {}", r.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// "came in: 21 needs, 1 person, 1 alert, 1 hub\nfrom: Elm St hub (1a2b3c4d) 24 events":
/// what an import brought, by kind and by the hub that made it (the first five hubs,
/// then how many more). None when nothing new came in.
fn came_in(v: &serde_json::Value) -> Option<String> {
    let kinds = v["came_in"].as_object().filter(|k| !k.is_empty())?;
    let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    // In the order of the kinds' codes (docs/protocol.md), not the JSON's.
    const NAMES: [(&str, &str, &str); 10] = [
        ("need", "need", "needs"),
        ("offer", "offer", "offers"),
        ("status", "status change", "status changes"),
        ("person", "person", "people"),
        ("checkin", "check-in", "check-ins"),
        ("hub", "hub", "hubs"),
        ("alert", "alert", "alerts"),
        ("redaction", "erasure", "erasures"),
        ("official-alert", "official alert", "official alerts"),
        ("sharing", "sharing answer", "sharing answers"),
    ];
    let n = |k: &str| {
        kinds
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mut said: Vec<String> = NAMES
        .iter()
        .filter(|(k, _, _)| n(k) > 0)
        .map(|(k, one, many)| count(n(k), one, many))
        .collect();
    let other: u64 = kinds
        .iter()
        .filter(|(k, _)| !NAMES.iter().any(|(name, _, _)| name == k))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    if other > 0 {
        said.push(count(other, "other event", "other events"));
    }
    let hubs = v["from"].as_array().cloned().unwrap_or_default();
    let mut from: Vec<String> = hubs
        .iter()
        .take(5)
        .map(|h| {
            let short = h["author"].as_str().unwrap_or("?");
            let who = match h["hub"].as_str() {
                Some(name) => format!("{name} ({short})"),
                None => short.to_string(),
            };
            let n = h["events"].as_u64().unwrap_or(0);
            format!("{who} {}", count(n, "event", "events"))
        })
        .collect();
    if hubs.len() > 5 {
        from.push(format!("and {} more hubs", hubs.len() - 5));
    }
    Some(format!(
        "came in: {}\nfrom: {}",
        said.join(", "),
        from.join(", ")
    ))
}
