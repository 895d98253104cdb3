//! `aidmesh sms ...` and the SMS options of `aidmesh up` (docs/sms.md).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::Client;
use crate::error::CliError;

/// The SMS gateway options of `aidmesh up`.
#[derive(Args)]
pub struct SmsUpArgs {
    /// Be this hub's SMS gateway: the configuration file of the gammu-smsd daemon
    /// (files backend) that runs the modem, e.g. /etc/gammu-smsdrc. See docs/sms.md.
    #[arg(long, value_name = "SMSDRC")]
    sms_gateway: Option<PathBuf>,
    /// Most replies texted a day (UTC), to bound the credit spent; past it replies wait
    /// in order for the next day.
    #[arg(long, value_name = "N", requires = "sms_gateway")]
    sms_daily_cap: Option<u32>,
    /// Texts a minute one number may send before the rest go to the review list.
    #[arg(long, value_name = "N", requires = "sms_gateway", default_value_t = aidmesh_node::sms::DEFAULT_PER_NUMBER_PER_MINUTE)]
    sms_per_number_per_minute: u32,
}

impl SmsUpArgs {
    /// The node's SMS options, if a gateway was asked for.
    pub fn options(&self) -> Option<aidmesh_node::sms::SmsOptions> {
        self.sms_gateway
            .as_ref()
            .map(|p| aidmesh_node::sms::SmsOptions {
                smsdrc: p.clone(),
                daily_cap: self.sms_daily_cap,
                per_number_per_minute: self.sms_per_number_per_minute.max(1),
            })
    }
}

/// `aidmesh sms ...`.
#[derive(Subcommand)]
pub enum Action {
    /// The gateway: daemon seen or not, texts in and out today, review list, credit cap.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Texts that could not be read with confidence, oldest first.
    Review {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Turn a text in the review list into a need (or, with --offer, an offer),
    /// taking what it says from the suggestion unless given here; the sender gets the
    /// reply.
    Accept {
        /// Its id in `aidmesh sms review`.
        id: String,
        /// An offer, not a need.
        #[arg(long)]
        offer: bool,
        /// What is needed or offered.
        #[arg(long)]
        title: Option<String>,
        /// Category (water, food, medical, ...).
        #[arg(long)]
        category: Option<String>,
        /// Where.
        #[arg(long = "where")]
        place: Option<String>,
        /// low, normal, high, life-threatening.
        #[arg(long)]
        urgency: Option<String>,
    },
    /// Take a text off the review list without posting anything.
    Dismiss {
        /// Its id in `aidmesh sms review`.
        id: String,
    },
    /// Text everyone on the welfare register who has a phone and is due a check-in:
    /// OK back records them safe, HELP a needs-help check-in.
    Round,
}

/// Runs `aidmesh sms ...` against the node in `dir`.
pub fn run(dir: &Path, action: Action) -> Result<(), CliError> {
    let c = Client::for_dir(dir)?;
    match action {
        Action::Status { json } => show(&c.get("/api/v1/sms/status")?, json, status_text),
        Action::Review { json } => show(&c.get("/api/v1/sms/review")?, json, review_text),
        Action::Accept {
            id,
            offer,
            title,
            category,
            place,
            urgency,
        } => {
            let v = c.post(
                &format!("/api/v1/sms/review/{id}"),
                &json!({
                    "action": if offer { "offer" } else { "need" },
                    "title": title, "category": category, "place": place, "urgency": urgency,
                }),
            )?;
            println!(
                "posted {} {}; the sender gets the reply",
                if offer { "offer" } else { "need" },
                v["short_id"].as_str().unwrap_or("")
            );
        }
        Action::Dismiss { id } => {
            c.post(
                &format!("/api/v1/sms/review/{id}"),
                &json!({ "action": "dismiss" }),
            )?;
            println!("dismissed {id}");
        }
        Action::Round => {
            let v = c.post("/api/v1/sms/round", &json!({}))?;
            println!(
                "texted {} people due a check-in; {} have a phone that is not a usable number",
                v["queued"].as_u64().unwrap_or(0),
                v["no_usable_number"].as_u64().unwrap_or(0)
            );
        }
    }
    Ok(())
}

/// Prints `v` as JSON (`--json`) or as `text` renders it.
fn show(v: &Value, json: bool, text: fn(&Value) -> String) {
    if json {
        super::print_json(v);
    } else {
        print!("{}", text(v));
    }
}

fn status_text(v: &Value) -> String {
    if v["gateway"] != json!(true) {
        return "This node runs no SMS gateway (aidmesh up --sms-gateway /etc/gammu-smsdrc; see docs/sms.md).\n".into();
    }
    let daemon = match v["daemon"]["seen"].as_bool() {
        Some(true) => format!(
            "running (signal {}%, battery {}%)",
            v["daemon"]["signal_percent"]
                .as_i64()
                .map_or("?".into(), |n| n.to_string()),
            v["daemon"]["battery_percent"]
                .as_i64()
                .map_or("?".into(), |n| n.to_string())
        ),
        _ => v["daemon"]["detail"]
            .as_str()
            .unwrap_or("not checked yet")
            .to_string(),
    };
    let cap = match v["daily_cap"].as_u64() {
        Some(c) if v["cap_reached"] == json!(true) => {
            format!("{c} a day: REACHED, replies wait for tomorrow (UTC)")
        }
        Some(c) => format!("{c} a day"),
        None => "none".into(),
    };
    format!(
        "daemon     {daemon}\nconfig     {}\ntoday      {} in, {} out\nwaiting    {} replies\nreview     {} texts (aidmesh sms review)\ncap        {cap}\n",
        v["config"].as_str().unwrap_or(""),
        v["today"]["in"],
        v["today"]["out"],
        v["waiting"],
        v["review"],
    )
}

fn review_text(v: &Value) -> String {
    let list = v["texts"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "No texts to review.\n".into();
    }
    let now = crate::output::now_ms();
    let mut out = String::new();
    for t in list {
        out.push_str(&format!(
            "{}  {}  from {}  ({})\n    \"{}\"\n",
            t["id"].as_str().unwrap_or(""),
            crate::output::ago(t["at_ms"].as_u64().unwrap_or(0), now),
            t["phone"].as_str().unwrap_or(""),
            t["reason"].as_str().unwrap_or(""),
            t["text"]
                .as_str()
                .unwrap_or("")
                .replace(|c: char| c.is_control(), " "),
        ));
        if let Some(s) = t["suggestion"].as_object() {
            out.push_str(&format!(
                "    suggested: {} \"{}\" ({}) at \"{}\": aidmesh sms accept {}\n",
                s["kind"].as_str().unwrap_or(""),
                s["title"].as_str().unwrap_or(""),
                s["category"].as_str().unwrap_or(""),
                s["place"].as_str().unwrap_or(""),
                t["id"].as_str().unwrap_or(""),
            ));
        }
    }
    out
}
