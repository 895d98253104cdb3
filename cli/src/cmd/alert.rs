//! Alerts: raising one, ending or reviving it (`alert cancel|clear|active`), importing
//! an official CAP file (`alert import`), and listing the active ones (`alerts`).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::print_json;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

/// Ending (or reviving) an alert.
#[derive(Subcommand)]
pub(crate) enum AlertAction {
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

/// What `aidmesh alert HEADLINE` posts.
pub(crate) struct NewAlert {
    pub(crate) headline: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) details: Option<String>,
    pub(crate) area: Option<String>,
    pub(crate) expires: Option<String>,
}

/// `aidmesh alert HEADLINE`: raises an alert; prints its id.
pub(crate) fn raise(dir: &Path, a: NewAlert) -> Result<(), CliError> {
    let NewAlert {
        headline,
        severity,
        details,
        area,
        expires,
    } = a;
    let v = Client::for_dir(dir)?.post(
        "/api/v1/alerts",
        &json!({ "headline": headline, "severity": severity, "details": details, "area": area, "expires": expires }),
    )?;
    println!("{}", v["short_id"].as_str().unwrap_or(""));
    Ok(())
}

/// `aidmesh alert cancel|clear|active|import`.
pub(crate) fn act(dir: &Path, action: AlertAction) -> Result<(), CliError> {
    let (id, status, note) = match action {
        AlertAction::Import { file } => return import_cap(dir, &file),
        AlertAction::Cancel { id, note } => (id, "cancelled", note),
        AlertAction::Clear { id, note } => (id, "all-clear", note),
        AlertAction::Active { id, note } => (id, "active", note),
    };
    let v = Client::for_dir(dir)?.post(
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

/// `aidmesh alerts`: the active alerts, official ones in `lang` (else this shell's
/// LANG) where they have it.
pub(crate) fn list(dir: &Path, lang: Option<String>, json: bool) -> Result<(), CliError> {
    // LANG=es_MX.UTF-8 → es-MX.
    let lang = lang.or_else(|| {
        std::env::var("LANG")
            .ok()
            .map(|l| l.split('.').next().unwrap_or("").replace('_', "-"))
            .filter(|l| !l.is_empty() && l != "C" && l != "POSIX")
    });
    let query: Vec<(&str, String)> = lang.map(|l| ("lang", l)).into_iter().collect();
    let v = Client::for_dir(dir)?.get_query("/api/v1/alerts", &query)?;
    if json {
        print_json(&v["alerts"]);
        return Ok(());
    }
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
    Ok(())
}

/// `aidmesh alert import FILE`: prints each alert posted, and those posted before.
fn import_cap(dir: &Path, file: &Path) -> Result<(), CliError> {
    let client = Client::for_dir(dir)?;
    let mut f = std::fs::File::open(file).map_err(CliError::read(file))?;
    // The hub stops reading past its limit, which the sender would see as a broken pipe.
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if size > aidmesh_node::doors::cap::MAX_CAP_BYTES as u64 {
        return Err(CliError::CapTooBig {
            path: file.to_path_buf(),
            size,
        });
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
