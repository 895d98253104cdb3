//! Welfare checks: `welfare add|share|check|list|overdue|forget`.

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::json;

use super::show_list;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum WelfareAction {
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
pub(crate) enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Outcome {
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

/// `aidmesh welfare ...`.
pub(crate) fn run(dir: &Path, action: WelfareAction) -> Result<(), CliError> {
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
                Outcome {
                    needs_help: Some(w),
                    ..
                } => ("needs-help", Some(w)),
                Outcome {
                    no_answer: true, ..
                } => ("no-answer", None),
                Outcome { not_home: true, .. } => ("not-home", None),
                Outcome {
                    moved: Some(to), ..
                } => ("moved", Some(to)),
                _ => return Err(CliError::NoOutcome),
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
