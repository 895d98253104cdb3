//! The town's map on disk: one PMTiles file at `<data-dir>/map/tiles.pmtiles`
//! ([`MAP_DIR`], [`MAP_FILE`]), installed by `aidmesh map add` and served by the API
//! (`GET /api/v1/map`, `GET /map/tiles.pmtiles`).
//!
//! Installing is atomic: the new map is copied to a temporary file in the same folder,
//! checked again there (a disk that filled up mid-copy is caught), flushed to disk,
//! then renamed over the old one and the folder flushed. A crash or `kill -9` at any
//! point leaves either the old map or the new one, whole; a leftover temporary file is
//! removed by the next install. The node needs no word of it: it looks at the file
//! (its inode, size and time) on each request and re-reads the header when it changed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::doors::pmtiles::{inspect_file, MapError, MapInfo};

/// The folder of the map in a data directory.
pub const MAP_DIR: &str = "map";
/// The map's file name in [`MAP_DIR`] (and in its URL, `/map/tiles.pmtiles`).
pub const MAP_FILE: &str = "tiles.pmtiles";
/// Temporary files of an install in progress start with this.
const TMP_PREFIX: &str = ".incoming-";

/// The installed map's path in data directory `dir`.
pub fn map_path(dir: &Path) -> PathBuf {
    dir.join(MAP_DIR).join(MAP_FILE)
}

/// Why a map could not be installed, read or removed.
#[derive(Debug, Error)]
pub enum MapFileError {
    /// The file is not a map this node can serve (says what is wrong).
    #[error("{file} was not installed: {source}")]
    Refused {
        /// The file offered.
        file: PathBuf,
        /// What is wrong with it.
        source: MapError,
    },
    /// The installed map is damaged.
    #[error("the installed map {file} is unreadable: {source}; install a good one with `aidmesh map add FILE`")]
    Damaged {
        /// The installed file.
        file: PathBuf,
        /// What is wrong with it.
        source: MapError,
    },
    /// The data directory holds no node (a mistyped `--data-dir`?).
    #[error("no node in {0}; give the hub's data directory with --data-dir (or start one with `aidmesh start`)")]
    NoNode(PathBuf),
    /// Reading or writing failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> MapFileError + 'a {
    move |source| MapFileError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks `file` and installs it as data directory `dir`'s map, replacing any map
/// there atomically. Returns what the installed map shows.
pub fn install(dir: &Path, file: &Path) -> Result<MapInfo, MapFileError> {
    if !super::profile::is_data_dir(dir) {
        return Err(MapFileError::NoNode(dir.to_path_buf()));
    }
    let src = File::open(file).map_err(io("cannot open", file))?;
    inspect_file(&src).map_err(|source| MapFileError::Refused {
        file: file.to_path_buf(),
        source,
    })?;
    let map_dir = dir.join(MAP_DIR);
    std::fs::create_dir_all(&map_dir).map_err(io("cannot make the map folder", &map_dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&map_dir, std::fs::Permissions::from_mode(0o755));
    }
    remove_leftovers(&map_dir);
    let tmp = map_dir.join(format!("{TMP_PREFIX}{}.pmtiles", std::process::id()));
    let result = copy_checked(&src, file, &tmp);
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let dest = map_dir.join(MAP_FILE);
    std::fs::rename(&tmp, &dest).map_err(io("cannot move the new map into place at", &dest))?;
    File::open(&map_dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot flush the map folder", &map_dir))?;
    Ok(info)
}

/// Copies `src` to `tmp`, flushes it and checks the copy.
fn copy_checked(mut src: &File, file: &Path, tmp: &Path) -> Result<MapInfo, MapFileError> {
    let mut out = File::create(tmp).map_err(io("cannot write", tmp))?;
    // Readable by the node whatever the installer's umask (`sudo aidmesh map add` on a
    // packaged hub, whose node runs as the `aidmesh` user): a map is no secret.
    {
        use std::os::unix::fs::PermissionsExt;
        out.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io("cannot set the permissions of", tmp))?;
    }
    std::io::copy(&mut src, &mut out).map_err(io("cannot copy the map to", tmp))?;
    out.flush().map_err(io("cannot write", tmp))?;
    out.sync_all().map_err(io("cannot flush", tmp))?;
    let copy = File::open(tmp).map_err(io("cannot read back", tmp))?;
    inspect_file(&copy).map_err(|source| MapFileError::Refused {
        file: file.to_path_buf(),
        source,
    })
}

/// Removes temporary files an interrupted install left (those of a process that no
/// longer runs; another install under way keeps its own).
fn remove_leftovers(map_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(map_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(TMP_PREFIX)
            .and_then(|r| r.strip_suffix(".pmtiles"))
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// What data directory `dir`'s map shows; `None` if no map is installed.
pub fn installed(dir: &Path) -> Result<Option<MapInfo>, MapFileError> {
    let path = map_path(dir);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot open", &path)(e)),
    };
    inspect_file(&f)
        .map(Some)
        .map_err(|source| MapFileError::Damaged { file: path, source })
}

/// Removes data directory `dir`'s map; whether there was one.
pub fn remove(dir: &Path) -> Result<bool, MapFileError> {
    let path = map_path(dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("cannot remove", &path)(e)),
    }
}
