//! The commands, one module per group; each exposes the functions `main` dispatches
//! to, and the clap arguments of its subcommands.

pub(crate) mod alert;
pub(crate) mod backup;
pub(crate) mod bundle;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod hub;
pub(crate) mod items;
pub(crate) mod map;
pub(crate) mod print;
pub(crate) mod setup;
pub(crate) mod sms;
pub(crate) mod status;
pub(crate) mod up;
pub(crate) mod welfare;

use std::path::Path;

use serde_json::Value;

use crate::client::Client;
use crate::error::CliError;

/// Prints `v` as pretty JSON (the `--json` of every command).
pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// GETs `path`, then prints `key` as JSON, or `empty` when the list is empty, or the
/// human rendering: the shape every list-style command shares.
pub(crate) fn show_list(
    dir: &Path,
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
