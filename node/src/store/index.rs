//! The time index: the `(timestamp, id)` of every held event, kept in memory (see the
//! module doc of [`super`]) as one sorted vector ([`SyncIndex`], 40 bytes an event);
//! what the reconciliation set, the digest and the duplicate check read instead of
//! sled's `ids` tree. A sync session's set is a snapshot of it, not a copy; once a
//! digest has been asked for, the index also keeps the ids' order (4 bytes an event),
//! so the digest after a change merges what changed instead of sorting every id, and
//! hashes outside the index's lock (issue 28).

use std::path::Path;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use aidmesh_protocol::sync::{DigestView, SyncIndex, SyncSet};
use aidmesh_protocol::{Event, EventId, Timestamp};
use tracing::warn;

use super::id_filter::IdFilter;
use super::{Store, StoreError};

/// A stamp stored in `ids` (8 bytes BE).
pub(super) fn stamp(v: &[u8]) -> Option<Timestamp> {
    <[u8; 8]>::try_from(v)
        .ok()
        .map(|b| Timestamp(u64::from_be_bytes(b)))
}

pub(super) fn time_key(ts: Timestamp, id: &EventId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&ts.0.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

/// The time index of a database (see the module doc): every `ids` entry as
/// `(timestamp, id)`.
pub(super) fn read_time_index(path: &Path, ids: &sled::Tree) -> Result<SyncIndex, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        tree: "ids",
        detail,
    };
    let mut out = Vec::new();
    for kv in ids.iter() {
        let (k, v) = kv.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let id = <[u8; 32]>::try_from(k.as_ref())
            .map_err(|_| corrupt(format!("key of {} bytes", k.len())))?;
        let ts = stamp(&v).ok_or_else(|| corrupt(format!("stamp of {} bytes", v.len())))?;
        out.push((ts, EventId(id)));
    }
    Ok(SyncIndex::new(out))
}

impl Store {
    /// The time index, locked.
    pub(super) fn held(&self) -> std::sync::MutexGuard<'_, SyncIndex> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The filter of ids seen, locked.
    pub(super) fn seen(&self) -> std::sync::MutexGuard<'_, IdFilter> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `ids` hold exactly the events of `log`, after an unclean stop (see
    /// [`Store::insert_new`]); `held` is the number of events in `log`, which the
    /// caller has just counted. Cheap when nothing is wrong: it compares counts.
    /// Returns how many stray entries it removed.
    pub fn repair_time_index(&self, held: usize) -> Result<usize, StoreError> {
        if held == self.len() {
            return Ok(0);
        }
        let mut stray = Vec::new();
        let (log, ids) = self.with(|t| Ok((t.log.clone(), t.ids.clone())))?;
        for kv in ids.iter() {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let held = match (<[u8; 32]>::try_from(k.as_ref()), stamp(&v)) {
                (Ok(id), Some(ts)) => log
                    .contains_key(time_key(ts, &EventId(id)))
                    .map_err(|e| self.io(e))?,
                _ => false,
            };
            if !held {
                stray.push(k);
            }
        }
        for k in &stray {
            self.write(&[("ids", k)], |t| t.ids.remove(k).map(|_| ()))?;
        }
        // Should the log ever keep an event but lose its earlier `ids` write, put the
        // entry back.
        let mut count = self.with(|t| Ok(t.ids.len()))?;
        if count != held {
            for kv in log.iter() {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                let Ok(e) = Event::decode(&v) else { continue };
                let id = e.id();
                if !ids.contains_key(id.0).map_err(|e| self.io(e))? {
                    let ts = e.timestamp().0.to_be_bytes();
                    self.write(&[("ids", &id.0)], |t| t.ids.insert(id.0, &ts).map(|_| ()))?;
                    warn!(key = %hex::encode(&k), "restored a missing id-index entry");
                }
            }
            count = self.with(|t| Ok(t.ids.len()))?;
        }
        let mut held = read_time_index(&self.path, &ids)?;
        // Entries put back above were not in the index the filter was made from.
        let seen = self.with(|t| Ok(IdFilter::of(&self.path, t, &mut held)))??;
        *self.seen() = seen;
        *self.held() = held;
        self.count.store(count, Ordering::Relaxed);
        if !stray.is_empty() {
            warn!(
                removed = stray.len(),
                "removed id-index entries of events not stored (an unclean stop)"
            );
        }
        Ok(stray.len())
    }

    /// The time index itself, shared: what delivery reads its counts from (by time,
    /// without folding it: [`SyncIndex::range_ms`]), instead of a copy of its own.
    /// Whoever holds both takes delivery's lock first, then this one; the store takes
    /// this one alone.
    pub fn time_index(&self) -> Arc<Mutex<SyncIndex>> {
        self.held.clone()
    }

    /// The reconciliation set: a snapshot of the time index, sharing its items (no
    /// copy; see [`SyncIndex`]).
    pub fn sync_set(&self) -> SyncSet {
        self.held().snapshot()
    }

    /// Every held event's `(timestamp, id)`, in time order: a copy of the time index
    /// (see the module doc); [`Store::sync_set`] reads it without copying.
    pub fn sync_items(&self) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
        // Copied from a snapshot, outside the index's lock.
        let set = self.sync_set();
        Ok(set.items().to_vec())
    }

    /// [`aidmesh_protocol::sync::digest`] of every held id (BLAKE3 over the ids in
    /// ascending order), from the ids' order the index keeps. Under the index's lock
    /// only a [`DigestView`] is taken (shared items and order, the few pending
    /// changes copied; no fold, so no copy of the items while a session's snapshot
    /// shares them); the pass of hashing runs after the lock is let go, so ingest
    /// (every insert takes the lock) does not wait for it (issue 28).
    pub fn digest(&self) -> Result<[u8; 32], StoreError> {
        let view = self.digest_view();
        Ok(view.digest())
    }

    /// Every held id, ascending (read outside the index's lock, as [`Store::digest`]).
    pub fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        let view = self.digest_view();
        Ok(view.ids())
    }

    /// What the digest reads, taken under the index's lock, which is let go on return.
    fn digest_view(&self) -> DigestView {
        self.held().digest_view()
    }
}
