//! Bounded disk: how much the database takes, how much room its filesystem has left,
//! and the guard that refuses new writes before the disk is really full.
//!
//! A hub on a Raspberry Pi keeps its database on a small SD card. Running sled into a
//! full disk would fail writes half-way, so the node stops taking new events while
//! less than [`FLOOR_BYTES`] are free: local posts are refused with a clear error (HTTP
//! 507), events from peers are left with the peers (catch-up fetches them again once
//! there is room). Everything already stored stays, and reads keep working. Below
//! [`WARN_FREE_BYTES`] or [`WARN_FREE_PERCENT`] `status` warns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use tracing::warn;

/// Below this many free bytes new events are refused (the hard floor): room for sled's
/// log and compaction, and for the rest of the system.
pub const FLOOR_BYTES: u64 = 32_000_000;
/// Below this many free bytes even an erasure is refused. Erasures (forgetting a
/// person, taking back a flood) are small and free space once compacted, so they are
/// taken below [`FLOOR_BYTES`], where every other write is refused (issue 24: a flood
/// that filled the disk stopped `forget` mesh-wide); not below [`OPEN_FLOOR_BYTES`],
/// where a write cut short could damage the database.
pub const ERASE_FLOOR_BYTES: u64 = OPEN_FLOOR_BYTES;
/// Below this many free bytes the node does not open its database at all: opening
/// writes to it (sled's snapshot), and a write cut short by a full disk left a
/// database that no longer opened once space came back (issue 24). Far below
/// [`FLOOR_BYTES`], so a node already past the floor still restarts and serves.
pub const OPEN_FLOOR_BYTES: u64 = 8_000_000;
/// Below this many free bytes `status` warns.
pub const WARN_FREE_BYTES: u64 = 100_000_000;
/// Below this share of the filesystem free (in percent) `status` warns.
pub const WARN_FREE_PERCENT: u64 = 5;
/// How often events from peers re-read the free space (local posts always do).
const PEER_RECHECK_MS: u64 = 1_000;

/// How full the disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Room enough.
    Ok,
    /// Below a warning threshold; writes still work.
    Low,
    /// Below the floor: new events are refused.
    Full,
}

impl Level {
    /// The name shown in `status` (`ok`, `low`, `full`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Low => "low",
            Level::Full => "full",
        }
    }

    fn code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Low => 1,
            Level::Full => 2,
        }
    }
}

/// Free space of the filesystem holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged process may still write.
    pub free_bytes: u64,
    /// Size of the filesystem.
    pub total_bytes: u64,
}

impl Space {
    /// Reads the free space of the filesystem holding `path` (`statvfs`).
    pub fn of(path: &Path) -> std::io::Result<Space> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: an all-zero statvfs is a valid value of the plain C struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out pointer.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The field types differ between 32- and 64-bit targets (u32 on armv7, u64 on
        // aarch64 and x86-64): `from` is needed on the one, a no-op on the other.
        #[allow(clippy::useless_conversion)]
        let unit = u64::from(st.f_frsize);
        #[allow(clippy::useless_conversion)]
        Ok(Space {
            free_bytes: u64::from(st.f_bavail).saturating_mul(unit),
            total_bytes: u64::from(st.f_blocks).saturating_mul(unit),
        })
    }

    /// The level this much free space is at.
    pub fn level(&self) -> Level {
        if self.free_bytes < FLOOR_BYTES {
            Level::Full
        } else if self.free_bytes < WARN_FREE_BYTES
            || self.free_bytes.saturating_mul(100) < self.total_bytes * WARN_FREE_PERCENT
        {
            Level::Low
        } else {
            Level::Ok
        }
    }

    /// A sentence for people when the level is not `Ok`.
    pub fn warning(&self) -> Option<String> {
        match self.level() {
            Level::Ok => None,
            Level::Low => Some(format!(
                "the disk is nearly full ({} MB free): free some space; below {} MB new posts are refused",
                mb(self.free_bytes),
                mb(FLOOR_BYTES)
            )),
            Level::Full => Some(format!(
                "the disk is full ({} MB free, {} MB are kept free): new posts are refused until space is freed; everything already posted is kept",
                mb(self.free_bytes),
                mb(FLOOR_BYTES)
            )),
        }
    }
}

/// Whole megabytes (10^6 bytes), rounded down.
pub fn mb(bytes: u64) -> u64 {
    bytes / 1_000_000
}

/// Bytes taken by the files under `dir` (the database), counted recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What `status` shows about the disk: the database's size and its filesystem's room.
pub fn usage_json(db: &Path) -> serde_json::Value {
    let space = Space::of(db).ok();
    serde_json::json!({
        "db_bytes": dir_bytes(db),
        "free_bytes": space.map(|s| s.free_bytes),
        "total_bytes": space.map(|s| s.total_bytes),
        "level": space.map_or("unknown", |s| s.level().name()),
        "warning": space.and_then(|s| s.warning()),
        "floor_bytes": FLOOR_BYTES,
    })
}

/// The database is on a disk that has too little room left.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the disk holding {path} is full ({free_mb} MB free, {floor_mb} MB are kept free): new posts are refused until space is freed. Delete files there or move the data directory to a bigger disk; everything already posted is kept")]
pub struct DiskFull {
    /// The database directory.
    pub path: PathBuf,
    /// Free megabytes when refused.
    pub free_mb: u64,
    /// The floor, in megabytes.
    pub floor_mb: u64,
}

/// Admits or refuses new events by the free space of the database's filesystem.
#[derive(Debug)]
pub struct Guard {
    path: PathBuf,
    start: Instant,
    /// When the space was last read (ms after `start`, +1 so 0 means never).
    checked_at: AtomicU64,
    /// Free bytes at the last reading.
    free: AtomicU64,
    /// [`Level::code`] of the last reading.
    level: AtomicU8,
}

impl Guard {
    /// A guard for the database at `path`.
    pub fn new(path: &Path) -> Guard {
        Guard {
            path: path.to_path_buf(),
            start: Instant::now(),
            checked_at: AtomicU64::new(0),
            free: AtomicU64::new(u64::MAX),
            level: AtomicU8::new(Level::Ok.code()),
        }
    }

    /// Whether a new event may be stored: `local` posts read the free space each time,
    /// events from peers at most once a second (they come in bulk). A filesystem that
    /// cannot be read is not a reason to refuse.
    pub fn admit(&self, local: bool) -> Result<(), DiskFull> {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.checked_at.load(Ordering::Relaxed);
        if local || last == 0 || now.saturating_sub(last) >= PEER_RECHECK_MS {
            self.checked_at.store(now, Ordering::Relaxed);
            match Space::of(&self.path) {
                Ok(space) => self.record(space),
                Err(_) => self.level.store(Level::Ok.code(), Ordering::Relaxed),
            }
        }
        if self.level.load(Ordering::Relaxed) == Level::Full.code() {
            return Err(DiskFull {
                path: self.path.clone(),
                free_mb: mb(self.free.load(Ordering::Relaxed)),
                floor_mb: mb(FLOOR_BYTES),
            });
        }
        Ok(())
    }

    /// Whether an erasure may be stored: only a disk with less than
    /// [`ERASE_FLOOR_BYTES`] free refuses it (the space is read each time).
    pub fn admit_erasure(&self) -> Result<(), DiskFull> {
        match Space::of(&self.path) {
            Ok(space) if space.free_bytes < ERASE_FLOOR_BYTES => Err(DiskFull {
                path: self.path.clone(),
                free_mb: mb(space.free_bytes),
                floor_mb: mb(ERASE_FLOOR_BYTES),
            }),
            _ => Ok(()),
        }
    }

    /// Remembers a reading; logs when the level changes.
    fn record(&self, space: Space) {
        let level = space.level();
        self.free.store(space.free_bytes, Ordering::Relaxed);
        let before = self.level.swap(level.code(), Ordering::Relaxed);
        if before != level.code() {
            match space.warning() {
                Some(w) => warn!(path = %self.path.display(), "{w}"),
                None => warn!(
                    path = %self.path.display(),
                    free_mb = mb(space.free_bytes),
                    "the disk has room again: new posts are taken"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(free_mb: u64, total_mb: u64) -> Space {
        Space {
            free_bytes: free_mb * 1_000_000,
            total_bytes: total_mb * 1_000_000,
        }
    }

    #[test]
    fn levels_follow_the_thresholds() {
        assert_eq!(space(50_000, 60_000).level(), Level::Ok);
        // 5 % of 4 TB is 200 GB: 150 GB free is low although far above 100 MB.
        assert_eq!(space(150_000, 4_000_000).level(), Level::Low);
        assert_eq!(space(99, 60_000).level(), Level::Low);
        assert_eq!(space(100, 1_000).level(), Level::Ok);
        // At the floor is low, below it full.
        assert_eq!(space(32, 1_000).level(), Level::Low);
        assert_eq!(space(31, 1_000).level(), Level::Full);
        assert_eq!(space(0, 0).level(), Level::Full);
        assert!(space(50_000, 60_000).warning().is_none());
        assert!(space(10, 100)
            .warning()
            .is_some_and(|w| w.contains("new posts are refused")));
    }

    #[test]
    fn the_database_directory_is_measured_and_admitted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 234]).unwrap();
        assert_eq!(dir_bytes(dir.path()), 1234);
        let s = Space::of(dir.path()).unwrap();
        assert!(s.total_bytes >= s.free_bytes && s.total_bytes > 0);
        // The machine running the tests has more than the floor free.
        Guard::new(dir.path()).admit(true).unwrap();
        // A path that cannot be read is no reason to refuse.
        Guard::new(&dir.path().join("gone")).admit(true).unwrap();
    }
}
