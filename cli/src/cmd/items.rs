//! Needs and offers: `need add`, `offer add`, `list`, `show`, the status changes
//! (`claim`, `progress`, `fulfil`, `withdraw`, `reopen`) and `match`.

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::print_json;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum PostAction {
    /// Post a new one; prints its id.
    Add(PostArgs),
}

#[derive(Args)]
pub(crate) struct PostArgs {
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
pub(crate) struct StatusArgs {
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

/// `aidmesh need add` (`path` "needs") and `aidmesh offer add` ("offers").
pub(crate) fn add(dir: &Path, path: &str, a: PostArgs) -> Result<(), CliError> {
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
pub(crate) fn list(
    dir: &Path,
    what: &str,
    filters: &[(&'static str, Option<String>)],
    json: bool,
) -> Result<(), CliError> {
    let path = match what {
        "needs" | "need" => "/api/v1/needs",
        "offers" | "offer" => "/api/v1/offers",
        "all" => "/api/v1/items",
        other => return Err(CliError::NotAList(other.to_string())),
    };
    let query: Vec<(&str, String)> = filters
        .iter()
        .filter_map(|(k, v)| Some((*k, v.clone()?)))
        .collect();
    // The node answers a long list a page at a time (`next_cursor`): follow it.
    let client = Client::for_dir(dir)?;
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push((
                "limit",
                aidmesh_node::doors::input::MAX_LIST_LIMIT.to_string(),
            ));
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
        print_json(&Value::Array(items));
        return Ok(());
    }
    if items.is_empty() {
        println!("Nothing to show.");
    } else {
        println!("{}", output::items(&items));
    }
    Ok(())
}

/// `aidmesh show`: one need or offer with its history.
pub(crate) fn show(dir: &Path, id: &str, json: bool) -> Result<(), CliError> {
    let item = Client::for_dir(dir)?.get(&format!("/api/v1/items/{}", id.trim()))?;
    if json {
        print_json(&item);
    } else {
        print!("{}", output::item(&item));
    }
    Ok(())
}

/// `aidmesh claim|progress|fulfil|withdraw|reopen`: sets the status to `status`.
pub(crate) fn change(dir: &Path, status: &str, a: StatusArgs) -> Result<(), CliError> {
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

/// One page of `GET /api/v1/match`, and how to get the next.
pub(crate) fn matches(
    dir: &Path,
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
