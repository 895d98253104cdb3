//! The start file on disk ([`aidmesh_protocol::start_file`] makes and reads its
//! bytes): written at a clean stop, read and deleted at the next start.
//!
//! The file is `start-file` in the store's directory, beside `CURRENT`. It is trusted
//! only if the database generation in service holds the same random token in `meta`
//! (key [`TOKEN_KEY`]). The token is stored after the file is durable (temporary
//! file, fsync, rename, fsync of the directory), and the node's start
//! ([`super::Store::open_with_start_file`]) removes it (and flushes) before anything
//! can be written, then deletes the file; any other opener ([`super::Store::open`]:
//! `aidmesh init`, a backup of a stopped node) leaves both, but removes the token
//! before its first write of an event or a compaction. So any write after
//! the file was read makes it unusable, an unclean stop (no file, or a file with no
//! token) gets the full read, and a file copied back later is refused. A compaction
//! pending at the start also refuses it (the view at the stop may still have held
//! content a redaction erased).

use std::io::Write;
use std::path::Path;

use aidmesh_protocol::start_file::{self, Counts, Token};
use aidmesh_protocol::View;
use tracing::warn;

use super::index::time_key;
use super::layout::sync_dir;
use super::{Trees, COMPACTION_PENDING};

/// The start file, in the store's directory.
pub(super) const FILE: &str = "start-file";

/// Where it is written before it is renamed into place.
pub(super) const FILE_TMP: &str = "start-file.tmp";

/// `meta` key of the token of the start file written at the last clean stop.
pub(super) const TOKEN_KEY: &str = "start_file_token";

/// What the engine takes from the start file: the view (without its post source) and
/// the counts beside it.
pub struct Saved {
    /// The view at the clean stop.
    pub view: View,
    /// The counts at the clean stop.
    pub counts: Counts,
}

/// What [`super::Store::open_with_start_file`] found: the state of the start file, or why it is not used
/// (the start then reads every stored event).
pub(super) type Found = Result<(Vec<aidmesh_protocol::sync::SyncItem>, Saved), String>;

/// At open, before anything is written: takes the token out of `meta` (flushed),
/// reads and deletes the start file, and keeps its state if it is the one this
/// database generation was stopped with. An error only if the token cannot be removed
/// (then the store does not open: a write after it would leave the file trusted).
pub(super) fn take(dir: &Path, trees: &Trees) -> Result<Found, sled::Error> {
    let token = trees.meta.get(TOKEN_KEY)?;
    if token.is_some() {
        trees.meta.remove(TOKEN_KEY)?;
        trees.db.flush()?;
    }
    let file = dir.join(FILE);
    let bytes = match std::fs::read(&file) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            warn!(error = %e, file = %file.display(), "could not read the start file");
            None
        }
    };
    for name in [FILE, FILE_TMP] {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // The token is gone already, so a file left behind is refused next time.
            Err(e) => {
                warn!(error = %e, file = %dir.join(name).display(), "could not delete the start file")
            }
        }
    }
    Ok(judge(bytes, token.as_deref(), trees))
}

/// Whether the file's state may be used, and if not why.
fn judge(bytes: Option<Vec<u8>>, token: Option<&[u8]>, trees: &Trees) -> Found {
    let (bytes, token) = match (bytes, token) {
        (None, None) => return Err("no start file (first start, or the last stop was not clean)".into()),
        (None, Some(_)) => return Err("the start file is missing".into()),
        (Some(_), None) => {
            return Err(
                "the database holds no start-file token (the last stop was not clean, or the file is older than the database)".into(),
            )
        }
        (Some(b), Some(t)) => (b, t),
    };
    let token: Token = token
        .try_into()
        .map_err(|_| format!("the stored token has {} bytes", token.len()))?;
    let file =
        start_file::decode(&bytes, &token).map_err(|e| format!("start file refused: {e}"))?;
    drop(bytes);
    if file.generation != trees.gen.0 {
        return Err(format!(
            "the start file is of database generation {}, the one in service is {}",
            file.generation, trees.gen.0
        ));
    }
    if trees
        .meta
        .contains_key(COMPACTION_PENDING)
        .map_err(|e| e.to_string())?
    {
        return Err("a compaction is pending".into());
    }
    // A cheap check against the database itself (defence in depth, e.g. an older
    // node that ignores the token ran in between): the newest stored event is the
    // file's.
    let last = trees.log.last().map_err(|e| e.to_string())?.map(|(k, _)| k);
    let want = file.time_index.last().map(|(ts, id)| time_key(*ts, id));
    if last.as_deref() != want.as_ref().map(|k| &k[..]) {
        return Err("the newest stored event is not the start file's".into());
    }
    Ok((
        file.time_index,
        Saved {
            view: file.view,
            counts: file.counts,
        },
    ))
}

/// Writes the start file for generation `gen` of the store in `dir` durably, then
/// stores `token` in `meta` and flushes: only then may the next start use it.
pub(super) fn write(dir: &Path, trees: &Trees, bytes: &[u8], token: &Token) -> Result<(), String> {
    let tmp = dir.join(FILE_TMP);
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", tmp.display());
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE)).map_err(|e| io("rename", e))?;
    sync_dir(dir).map_err(|e| io("sync the directory of", e))?;
    trees
        .meta
        .insert(TOKEN_KEY, &token[..])
        .and_then(|_| trees.db.flush())
        .map_err(|e| format!("store the token: {e}"))?;
    Ok(())
}
