//! `aidmesh backup FILE` and `aidmesh restore FILE`: a hub copied to one file, and
//! back into a new data directory (docs/hub.md, "Backing up and upgrading a laptop
//! hub").

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aidmesh_node::doors::input::parse_duration;
use aidmesh_node::node::{backup_stopped, check_backup, restore as restore_into, running_pid};

use crate::client::Client;
use crate::error::CliError;

/// `aidmesh backup FILE`: through the running node's API (hub computer only), or from
/// the data directory of a stopped one. Written beside FILE, readable by its owner
/// only, checked whole, then renamed into place.
pub(crate) fn backup(dir: &Path, file: &Path) -> Result<(), CliError> {
    let part = file.with_extension("part");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&part)
        .map_err(CliError::write(&part, ""))?;
    // `mode` applies to a new file only: a leftover one is narrowed too.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(CliError::write(&part, ""))?;
    let running = running_pid(dir).is_some();
    let result = (|| {
        if running {
            Client::for_dir(dir)?.download("/api/v1/backup", &[], &mut out)?;
        } else {
            let mut w = std::io::BufWriter::new(&mut out);
            backup_stopped(dir, &mut w)?;
            w.flush().map_err(CliError::write(&part, ""))?;
        }
        out.sync_all().map_err(CliError::write(&part, ""))?;
        // A download cut off by a failure on the node has no end: checked here, so a
        // file named FILE is always a whole backup.
        let checked = check_backup(&part)?;
        std::fs::rename(&part, file).map_err(CliError::write(file, ""))?;
        Ok(checked)
    })();
    let checked = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let bytes = std::fs::metadata(file).map_or(0, |m| m.len());
    println!(
        "wrote a backup of community '{}' ({} events, {}, {}) to {}",
        checked.community,
        checked.events,
        crate::output::human_size(bytes),
        if running {
            "taken from the running node"
        } else {
            "the node was stopped"
        },
        file.display()
    );
    println!(
        "it holds this hub's identity and the community key: keep it as safe as the hub \
         computer (the file is readable by you only)"
    );
    Ok(())
}

/// `aidmesh restore FILE`: into the (new, empty) data directory.
pub(crate) fn restore(dir: &Path, file: &Path, retention: &str) -> Result<(), CliError> {
    let retention = parse_duration("--welfare-retention", retention)?;
    let r = restore_into(file, dir, retention)?;
    println!(
        "restored the hub {} of community '{}' into {}",
        r.peer_id,
        r.community,
        dir.display()
    );
    let mut said = format!("{} events", r.events);
    if r.expired > 0 {
        said.push_str(&format!(
            ", {} welfare records past retention erased",
            r.expired
        ));
    }
    for f in &r.files {
        said.push_str(&format!(", the {f} file"));
    }
    println!("{said}");
    if r.deferred > 0 {
        println!(
            "{} events are stamped ahead of this computer's clock and were left out: set \
             the clock; the other hubs give them back once it runs",
            r.deferred
        );
    }
    for reason in &r.refused {
        println!("  refused: {reason}");
    }
    println!(
        "start it with: aidmesh --data-dir {} up (and never run the old copy of this hub \
         again: two nodes with one identity confuse the mesh)",
        dir.display()
    );
    Ok(())
}
