//! The store's directory on disk: generations of the database and the pointer naming
//! the one in service, the recovery of a compaction or an older swap that a crash
//! interrupted, and the migration of databases written before `log` and `ids`.

use std::path::{Path, PathBuf};

use aidmesh_protocol::Event;
use tracing::{info, warn};

use super::index::time_key;

/// A generation of the database: `0` is a sled database in the store's directory
/// itself (every database before generations, and a new one), `n > 0` one in its
/// subdirectory `gen-<n>`. The pointer file [`POINTER`] names the generation in
/// service; without it, generation 0 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gen(pub(super) u64);

/// The file naming the generation in service (`gen-<n>`), replaced atomically.
pub(super) const POINTER: &str = "CURRENT";

/// Where the next pointer is written before it is renamed over [`POINTER`].
pub(super) const POINTER_TMP: &str = "CURRENT.tmp";

/// Prefix of a generation's subdirectory.
pub(super) const GEN_PREFIX: &str = "gen-";

/// What sled keeps in a database directory: how generation 0 is told apart from the
/// rest of the store's directory, to remove it once a later generation serves.
pub(super) fn is_sled_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// The store's directory: generations and the pointer.
pub(super) struct Layout<'a>(pub(super) &'a Path);

impl Layout<'_> {
    pub(super) fn dir(&self, gen: Gen) -> PathBuf {
        match gen.0 {
            0 => self.0.to_path_buf(),
            n => self.0.join(format!("{GEN_PREFIX}{n}")),
        }
    }

    /// The generation the pointer names (0 without a pointer).
    pub(super) fn current(&self) -> std::io::Result<Gen> {
        let text = match std::fs::read_to_string(self.0.join(POINTER)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Gen(0)),
            Err(e) => return Err(e),
        };
        text.trim()
            .strip_prefix(GEN_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|&n| n > 0)
            .map(Gen)
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "{} names no generation ({text:?}; expected gen-<number>)",
                    self.0.join(POINTER).display()
                ))
            })
    }

    /// Puts `gen` in service: the pointer is written to a temporary file, synced,
    /// renamed over the old one and the directory synced, so that after a crash the
    /// pointer names either the old generation or `gen`, whole.
    pub(super) fn point_to(&self, gen: Gen) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = self.0.join(POINTER_TMP);
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{GEN_PREFIX}{}", gen.0)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.0.join(POINTER))?;
        sync_dir(self.0)
    }

    /// Removes what a generation other than `keep` left: a copy that a crash or a
    /// failure interrupted, an old generation not yet removed, a pointer never
    /// renamed into place.
    pub(super) fn remove_all_but(&self, keep: Gen) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self.0)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = if name == POINTER_TMP {
                true
            } else if let Some(n) = name.strip_prefix(GEN_PREFIX) {
                n.parse::<u64>().is_ok_and(|n| n != keep.0)
            } else {
                keep.0 != 0 && is_sled_file(&name)
            };
            if stale {
                let p = entry.path();
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
        Ok(())
    }

    /// Removes generation `gen` (not in service any more).
    pub(super) fn remove(&self, gen: Gen) -> std::io::Result<()> {
        if gen.0 == 0 {
            for entry in std::fs::read_dir(self.0)? {
                let entry = entry?;
                if is_sled_file(&entry.file_name().to_string_lossy()) {
                    let p = entry.path();
                    if entry.file_type()?.is_dir() {
                        std::fs::remove_dir_all(&p)?;
                    } else {
                        std::fs::remove_file(&p)?;
                    }
                }
            }
            Ok(())
        } else {
            std::fs::remove_dir_all(self.dir(gen))
        }
    }
}

/// Makes a directory's entries (a rename, a new file) durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Trees of the layout before `log` and `ids`.
pub(super) const OLD_EVENTS: &str = "events";
pub(super) const OLD_BY_TIME: &str = "by_time";

/// Moves a database of the layout before `log` and `ids` to it: every event of
/// `events` (id → bytes) is written to `log` and `ids`, then the old trees are dropped
/// (`by_time` is not read: `ids` is built from the events themselves). A crash before the drops leaves
/// the old trees whole and the migration runs again at the next open (its writes are
/// idempotent). An undecodable stored event is skipped with a warning, as the engine's
/// start would skip it.
pub(super) fn migrate(db: &sled::Db) -> Result<(), sled::Error> {
    let names = db.tree_names();
    let has = |n: &str| names.iter().any(|t| t.as_ref() == n.as_bytes());
    if !has(OLD_EVENTS) && !has(OLD_BY_TIME) {
        return Ok(());
    }
    if has(OLD_EVENTS) {
        let (old, log, ids) = (
            db.open_tree(OLD_EVENTS)?,
            db.open_tree("log")?,
            db.open_tree("ids")?,
        );
        let mut moved = 0usize;
        for kv in old.iter() {
            let (k, v) = kv?;
            let Ok(e) = Event::decode(&v) else {
                warn!(id = %hex::encode(&k), "skipping an undecodable stored event while migrating");
                continue;
            };
            let (ts, id) = (e.timestamp(), e.id());
            ids.insert(id.0, &ts.0.to_be_bytes())?;
            log.insert(time_key(ts, &id), v)?;
            moved += 1;
        }
        db.flush()?;
        db.drop_tree(OLD_EVENTS)?;
        info!(
            events = moved,
            "migrated the database to trees keyed by time"
        );
    }
    if has(OLD_BY_TIME) {
        db.drop_tree(OLD_BY_TIME)?;
    }
    db.flush()?;
    Ok(())
}

/// Suffixes of the sibling directories of the swap before generations (by renaming
/// the whole database directory): an older node may have left one.
pub(super) const LEGACY_SUFFIXES: [&str; 2] = ["compacting", "old"];

pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Finishes or undoes a swap by directory renames (the scheme before generations)
/// that a crash interrupted: with the database missing, the fresh copy (complete,
/// since it was only renamed into place after a flush) or the old directory takes its
/// place; leftovers are removed.
pub(super) fn recover_legacy_swap(path: &Path) -> std::io::Result<()> {
    let [fresh, old] = LEGACY_SUFFIXES.map(|s| sibling(path, s));
    if !path.exists() {
        if fresh.exists() {
            std::fs::rename(&fresh, path)?;
        } else if old.exists() {
            std::fs::rename(&old, path)?;
        }
    }
    for leftover in [fresh, old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover)?;
        }
    }
    Ok(())
}

/// Finds the generation in service and removes every other one (a compaction that a
/// crash interrupted, at any step).
pub(super) fn recover(path: &Path) -> std::io::Result<Gen> {
    recover_legacy_swap(path)?;
    std::fs::create_dir_all(path)?;
    let layout = Layout(path);
    let gen = layout.current()?;
    if !layout.dir(gen).join("conf").exists() && gen.0 != 0 {
        return Err(std::io::Error::other(format!(
            "{} names {}, which is missing or incomplete",
            path.join(POINTER).display(),
            layout.dir(gen).display()
        )));
    }
    layout.remove_all_but(gen)?;
    Ok(gen)
}
