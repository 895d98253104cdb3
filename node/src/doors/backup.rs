//! Writing a hub backup (the format: [`aidmesh_protocol::backup`]; restoring one:
//! `crate::node::restore`). Used by `GET /api/v1/backup` while the node runs and by
//! `aidmesh backup` on a stopped node's directory.
//!
//! What goes in (docs/hub.md, "What a backup holds"): the hub's identity and
//! community (the `meta` tree's seed, key, name and passphrase), every held event,
//! every erasure the store remembers (so a peer's old copy of an erased event is not
//! taken back in), and the data directory's local files in [`LOCAL_FILES`].
//!
//! Consistency: the set of events is the store's time index taken at one instant
//! ([`Store::sync_items`]), so every write acknowledged before the backup started is
//! in it; an event erased while the backup is written is left out (its erasure is the
//! later state), and events that arrive meanwhile are not in it (the mesh gives them
//! back to the restored hub).

use std::io::Write;
use std::path::Path;

use aidmesh_protocol::backup::{Profile, Writer};
use thiserror::Error;

use crate::store::{Store, StoreError};

/// The data directory's files a backup carries: the peers file (addresses the
/// coordinator typed). Not the SMS gateway's records (`sms/`: phone numbers, which
/// expire by their own rules) nor run-time files (pid, API address, log).
pub const LOCAL_FILES: &[&str] = &["peers"];

/// Why a backup could not be written.
#[derive(Debug, Error)]
pub enum BackupIoError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The directory holds no node (no identity to back up).
    #[error("the database at {0} holds no hub identity: nothing to back up")]
    NoIdentity(std::path::PathBuf),
    /// Writing the file (or the download) failed.
    #[error("writing the backup: {0}")]
    Write(std::io::Error),
    /// Reading a local file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Events.
    pub events: u64,
    /// Erasures remembered.
    pub erasures: u64,
    /// Local files.
    pub files: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// The hub's identity and community from its database.
pub fn profile_of(store: &Store) -> Result<Profile, BackupIoError> {
    let key = |k: &str| -> Result<Option<[u8; 32]>, StoreError> {
        Ok(store
            .meta(k)?
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()))
    };
    let text = |k: &str| -> Result<String, StoreError> {
        Ok(store
            .meta(k)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default())
    };
    let (Some(seed), Some(psk)) = (key("seed")?, key("psk")?) else {
        return Err(BackupIoError::NoIdentity(store.path().to_path_buf()));
    };
    Ok(Profile {
        seed,
        psk,
        community: text("community")?,
        passphrase: text("passphrase")?,
    })
}

/// Writes a backup of the hub whose database is `store` and whose data directory is
/// `data_dir` to `out`.
pub fn write(
    store: &Store,
    data_dir: &Path,
    out: &mut dyn Write,
) -> Result<Written, BackupIoError> {
    let profile = profile_of(store)?;
    // The instant of the backup: the time index, then the erasures (an erasure made
    // after it is kept too: it only ever removes).
    let ids = store.sync_items()?;
    let erased = store.erasures()?;
    let mut done = Written::default();
    let mut put = |b: &[u8]| -> Result<(), BackupIoError> {
        out.write_all(b).map_err(BackupIoError::Write)?;
        done.bytes += b.len() as u64;
        Ok(())
    };
    let (mut w, header) = Writer::new();
    put(&header)?;
    let p = w
        .profile(&profile)
        .ok_or(BackupIoError::NoIdentity(store.path().to_path_buf()))?;
    put(&p)?;
    // Erasures first: a restore then knows them before the events they concern.
    for (id, kind) in &erased {
        put(&w.erased(id, *kind))?;
    }
    let mut events = 0;
    for (_, id) in &ids {
        // Erased since the index was read: left out.
        let Some(bytes) = store.get(id)? else {
            continue;
        };
        if let Some(r) = w.event(&bytes) {
            put(&r)?;
            events += 1;
        }
    }
    let mut files = 0;
    for name in LOCAL_FILES {
        let path = data_dir.join(name);
        let contents = match std::fs::read(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(BackupIoError::Read { path, source }),
        };
        if let Some(r) = w.file(name, &contents) {
            put(&r)?;
            files += 1;
        }
    }
    put(&w.finish())?;
    out.flush().map_err(BackupIoError::Write)?;
    done.events = events;
    done.erasures = erased.len() as u64;
    done.files = files;
    Ok(done)
}
