//! Backups of a stopped node ([`backup_stopped`]) and restoring one into a new data
//! directory ([`restore`]). A running node serves its own (`GET /api/v1/backup`);
//! both write through [`crate::doors::backup::write`]. docs/hub.md, "Backing up and
//! upgrading a laptop hub", says what a backup holds and why.
//!
//! A restore reads the file twice: once to check that it is whole (its hash, its end),
//! so nothing of a damaged file is used, then to restore it. Every event goes through
//! the engine as a bundle's would (validated, and a redaction or a remembered erasure
//! keeps what it covers out); then the welfare records past retention are erased and
//! the database compacted, so a backup taken weeks ago brings no expired personal data
//! back, not even in sled's old log segments.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use aidmesh_protocol::backup::{self, BackupError, Reader, Record};
use aidmesh_protocol::community::derive_key;
use aidmesh_protocol::Identity;

use super::{profile, NodeError, Profile};
use crate::doors::backup::{write, BackupIoError, Written, LOCAL_FILES};
use crate::engine::{Engine, Origin};

/// Events handed to the engine at once while restoring.
const BATCH: usize = 512;

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// The community.
    pub community: String,
    /// The hub's peer id (the same as the backed-up hub's).
    pub peer_id: String,
    /// Events stored.
    pub events: usize,
    /// Events not stored: refused by validation (with the first reasons), or stamped
    /// ahead of this computer's clock (the mesh gives them back later).
    pub refused: Vec<String>,
    /// Events stamped ahead of this computer's clock, left out.
    pub deferred: usize,
    /// Welfare records past retention, erased at once.
    pub expired: usize,
    /// Local files restored.
    pub files: Vec<String>,
}

fn backup_err(file: &Path) -> impl Fn(BackupError) -> NodeError + '_ {
    move |source| NodeError::Backup {
        file: file.to_path_buf(),
        source,
    }
}

fn read_err(file: &Path) -> impl Fn(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        what: "cannot read",
        path: file.to_path_buf(),
        source,
    }
}

/// Reads `file` piece by piece, handing each record to `each`; then checks that the
/// file was whole.
fn read_records(
    file: &Path,
    mut each: impl FnMut(Record) -> Result<(), NodeError>,
) -> Result<u64, NodeError> {
    let mut f = std::fs::File::open(file).map_err(read_err(file))?;
    let mut r = Reader::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(read_err(file))?;
        if n == 0 {
            break;
        }
        r.feed(&buf[..n]);
        while let Some(rec) = r.next_record().map_err(backup_err(file))? {
            each(rec)?;
        }
    }
    r.finish().map_err(backup_err(file))
}

/// What a whole backup file holds (see [`check_backup`]).
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The community.
    pub community: String,
    /// Events in it.
    pub events: u64,
}

/// Checks that `file` is a whole backup; says what it holds.
pub fn check_backup(file: &Path) -> Result<Checked, NodeError> {
    let mut c = Checked::default();
    read_records(file, |rec| {
        match rec {
            Record::Profile(p) => {
                // A community key that its name and words do not make: not this
                // format's doing (an edited file, with its hash recomputed).
                if !p.passphrase.is_empty() && derive_key(&p.community, &p.passphrase) != p.psk {
                    return Err(NodeError::Backup {
                        file: file.to_path_buf(),
                        source: BackupError::Damaged {
                            at: backup::HEADER_LEN as u64,
                            what: "the community key does not belong to the community's passphrase",
                        },
                    });
                }
                c.community = p.community;
            }
            Record::Event(_) => c.events += 1,
            _ => {}
        }
        Ok(())
    })?;
    Ok(c)
}

/// Restores the backup `file` into `dir`, which must be empty or absent; erases the
/// welfare records whose last check-in is older than `retention`.
pub fn restore(file: &Path, dir: &Path, retention: Duration) -> Result<Restored, NodeError> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(NodeError::RestoreNotEmpty {
                dir: dir.to_path_buf(),
            });
        }
    } else if dir.exists() {
        return Err(NodeError::RestoreNotEmpty {
            dir: dir.to_path_buf(),
        });
    }
    // Nothing is made before the whole file is known to be good.
    check_backup(file)?;
    let existed = dir.exists();
    std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
        what: "cannot create the data directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let r = restore_checked(file, dir, retention);
    if r.is_err() {
        // A restore that failed half-way (a full disk...) leaves the directory as it
        // was: absent, or empty.
        let _ = std::fs::remove_dir_all(dir);
        if existed {
            let _ = std::fs::create_dir(dir);
        }
    }
    r
}

/// [`restore`] of a file known to be whole into the empty directory `dir`.
fn restore_checked(file: &Path, dir: &Path, retention: Duration) -> Result<Restored, NodeError> {
    let mut store = Some(profile::open_store(dir)?);
    let mut engine: Option<Engine> = None;
    let mut out = Restored::default();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let flush = |engine: &Option<Engine>, batch: &mut Vec<Vec<u8>>, out: &mut Restored| {
        let Some(e) = engine else {
            return Ok::<(), NodeError>(());
        };
        if batch.is_empty() {
            return Ok(());
        }
        let r = e.ingest_batch(batch, Origin::Import)?;
        out.events += r.new;
        out.deferred += r.deferred.len();
        out.refused.extend(r.rejected);
        batch.clear();
        Ok(())
    };
    read_records(file, |rec| match rec {
        Record::Profile(p) => {
            let s = store.take().ok_or(NodeError::Backup {
                file: file.to_path_buf(),
                source: BackupError::Damaged {
                    at: 0,
                    what: "a second hub identity",
                },
            })?;
            let kept = Profile {
                seed: p.seed,
                psk: p.psk,
                community: p.community.clone(),
                passphrase: p.passphrase.clone(),
            };
            s.set_meta("community", kept.community.as_bytes())?;
            s.set_meta("passphrase", kept.passphrase.as_bytes())?;
            s.set_meta("psk", &kept.psk)?;
            // The seed last: its presence marks a complete initialisation.
            s.set_meta("seed", &kept.seed)?;
            let identity = Identity::from_seed(kept.seed);
            out.community = kept.community.clone();
            out.peer_id = libp2p::identity::Keypair::ed25519_from_bytes(kept.seed)
                .map_err(NodeError::Identity)?
                .public()
                .to_peer_id()
                .to_string();
            profile::write_card(dir, &kept)?;
            engine = Some(Engine::open(s, identity, kept.community, 0)?);
            Ok(())
        }
        Record::Erased(id, kind) => {
            if let Some(e) = &engine {
                e.store().erase(&id, kind)?;
            }
            Ok(())
        }
        Record::Event(bytes) => {
            batch.push(bytes);
            if batch.len() >= BATCH {
                flush(&engine, &mut batch, &mut out)?;
            }
            Ok(())
        }
        Record::File(name, contents) => {
            // Only the files a backup is meant to carry; never anything else.
            if LOCAL_FILES.contains(&name.as_str()) {
                let path = dir.join(&name);
                std::fs::write(&path, contents).map_err(|source| NodeError::Io {
                    what: "cannot write",
                    path,
                    source,
                })?;
                out.files.push(name);
            }
            Ok(())
        }
    })?;
    flush(&engine, &mut batch, &mut out)?;
    let Some(engine) = engine else {
        // check_backup saw the identity: not reached.
        return Err(NodeError::Backup {
            file: file.to_path_buf(),
            source: BackupError::Damaged {
                at: 0,
                what: "it holds no hub identity",
            },
        });
    };
    out.expired = engine.expire_welfare(retention.as_millis().try_into().unwrap_or(u64::MAX))?;
    // Erased bytes (expired records, redacted events) out of sled's log before anyone
    // starts this directory.
    engine.compact_now()?;
    engine.store().flush()?;
    out.refused.truncate(10);
    Ok(out)
}

/// Writes a backup of the stopped node in `dir` to `out` (a running node holds its
/// database: take it through its API then).
pub fn backup_stopped(dir: &Path, out: &mut dyn std::io::Write) -> Result<Written, NodeError> {
    if !dir.join("db").is_dir() {
        return Err(NodeError::NoNode {
            dir: dir.to_path_buf(),
        });
    }
    let store = profile::open_store(dir)?;
    write(&store, dir, out).map_err(|e| match e {
        BackupIoError::Store(e) => NodeError::Store(e),
        e => NodeError::BackupWrite(e),
    })
}
