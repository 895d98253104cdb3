//! Which data directory a command works on when `--data-dir` names none (the user's
//! own, or the packaged hub's from /etc/default/aidmesh), and what making a node in
//! the packaged hub's directory needs.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Written by the Debian package: `AIDMESH_DIR=` names the data directory of the hub
/// node its systemd unit runs, so `aidmesh init`, `status` and the rest find that node.
pub(crate) const SYSTEM_DEFAULTS: &str = "/etc/default/aidmesh";

/// The data directory when neither `--data-dir` nor `AIDMESH_DIR` names one: the
/// user's own (`$XDG_DATA_HOME/aidmesh` or `~/.local/share/aidmesh`) if it exists,
/// else the packaged hub's (see [`SYSTEM_DEFAULTS`]) if one is installed, else the
/// user's own. The flag says whether it is the packaged hub's.
pub(crate) fn default_data_dir() -> (PathBuf, bool) {
    let own = if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        PathBuf::from(x).join("aidmesh")
    } else {
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".local/share/aidmesh"),
            None => PathBuf::from("aidmesh-data"),
        }
    };
    if !own.exists() {
        if let Some(dir) = std::fs::read_to_string(SYSTEM_DEFAULTS)
            .ok()
            .and_then(|t| system_data_dir(&t))
        {
            return (dir, true);
        }
    }
    (own, false)
}

/// `AIDMESH_DIR` from the text of an `/etc/default/aidmesh` (shell `KEY=value` lines,
/// `#` comments, optional quotes and `export`).
fn system_data_dir(text: &str) -> Option<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
            l.strip_prefix("AIDMESH_DIR=")
        })
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
        .rfind(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// How to start the node on `dir` once it is made: the packaged hub's systemd unit
/// (`system`), or `up`.
pub(crate) fn start_hint(dir: &Path, system: bool) -> String {
    if system {
        "Start the hub (and at every boot) with:  sudo systemctl enable --now aidmesh".into()
    } else {
        format!(
            "Start the node with:  aidmesh --data-dir {} up",
            dir.display()
        )
    }
}

/// The packaged hub's directory belongs to the `aidmesh` user: making a node there
/// needs root (the unit hands the files to that user when it starts).
pub(crate) fn check_system_dir(dir: &Path, system: bool) -> Result<(), CliError> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return Ok(());
    };
    // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
    let writable = unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0;
    if system && !writable {
        return Err(CliError::SystemDirReadOnly {
            dir: dir.to_path_buf(),
            named_in: SYSTEM_DEFAULTS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_hubs_directory_is_read_from_etc_default() {
        let text =
            "# aidmesh hub\nAIDMESH_DIR=/var/lib/aidmesh\nAIDMESH_UP_ARGS=\"--api 0.0.0.0:4611\"\n";
        assert_eq!(
            system_data_dir(text),
            Some(PathBuf::from("/var/lib/aidmesh"))
        );
        assert_eq!(
            system_data_dir("export AIDMESH_DIR=\"/srv/aid\"\n"),
            Some(PathBuf::from("/srv/aid"))
        );
        assert_eq!(system_data_dir("#AIDMESH_DIR=/x\nAIDMESH_DIR=\n"), None);
    }
}
