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
            for r in v["refused_reasons"].as_array().into_iter().flatten() {
                println!("  refused: {}", r.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}
