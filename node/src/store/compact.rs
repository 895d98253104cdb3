//! Compaction: copying the database into a new generation while reads and writes go
//! on, so the bytes of erased events leave the files (see the module doc of
//! [`super`]).

use std::path::Path;
use std::sync::atomic::Ordering;

use tracing::{info, warn};

#[cfg(test)]
use super::layout::GEN_PREFIX;
use super::layout::{sync_dir, Gen, Layout, POINTER, POINTER_TMP};
#[cfg(test)]
use super::{crash, FailAt, CRASH};
use super::{open_db, Store, StoreError, Trees, CACHE_BYTES, COMPACTION_PENDING};

/// Copies the current value (or absence) of each `(tree, key)` from `old` to `new`.
pub(super) fn replay(
    old: &sled::Db,
    new: &sled::Db,
    mut keys: Vec<(&'static str, sled::IVec)>,
) -> Result<(), sled::Error> {
    keys.sort_unstable();
    keys.dedup();
    for (tree, key) in keys {
        let (from, to) = (old.open_tree(tree)?, new.open_tree(tree)?);
        match from.get(&key)? {
            Some(v) => to.insert(key, v)?,
            None => to.remove(key)?,
        };
    }
    Ok(())
}

impl Store {
    /// Whether an erasure still waits for its compaction.
    pub fn compaction_pending(&self) -> Result<bool, StoreError> {
        self.with(|t| t.meta.contains_key(COMPACTION_PENDING))
    }

    /// How many compactions finished since the store was opened.
    pub fn compactions(&self) -> u64 {
        self.compactions.load(Ordering::Relaxed)
    }

    /// How long the last finished compaction held the store exclusively, in µs.
    pub fn last_exclusive_us(&self) -> u64 {
        self.last_exclusive_us.load(Ordering::Relaxed)
    }

    /// Rewrites the database into a new generation and puts it in service, so that
    /// bytes of erased events, which sled keeps in old log segments until it happens
    /// to reclaim them, are really gone (about a second per 100,000 events).
    ///
    /// Reads and writes go on during the copy. Only the replay of writes made
    /// meanwhile, a flush of those, the pointer's write and the exchange of handles
    /// hold the store exclusively: the copy is already open, so nothing is closed or
    /// reopened under the lock. The old generation is closed and removed after. On any
    /// failure the old generation stays in service and the pending flag stays set. A
    /// crash at any step leaves the pointer naming a complete generation holding
    /// every acknowledged write ([`Store::open`] removes the other).
    pub fn compact(&self) -> Result<(), StoreError> {
        let _one = self.compacting.lock().unwrap_or_else(|p| p.into_inner());
        // A start file's token is not copied into the new generation.
        self.with(|t| self.drop_start_token(t))?;
        let started = self.erasures.load(Ordering::SeqCst);
        let layout = Layout(&self.path);
        let (old_db, old_gen) = self.with(|t| Ok((t.db.clone(), t.gen)))?;
        let gen = Gen(old_gen.0 + 1);
        let fresh = layout.dir(gen);
        *self.dirty.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let take_dirty = |last: bool| {
            let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            let keys = if last {
                d.take()
            } else {
                d.replace(Vec::new())
            };
            keys.unwrap_or_default()
        };
        let copied = self.copy_into(&old_db, &fresh).and_then(|new| {
            // Catch up with the writes made during the copy while writes go on (each is
            // recorded again if written again), so that the exclusive phase replays and
            // flushes only the last few.
            for _ in 0..4 {
                let keys = take_dirty(false);
                let n = keys.len();
                replay(&old_db, &new, keys)?;
                new.flush()?;
                if n < 16 {
                    break;
                }
            }
            Ok(new)
        });
        let mut guard = self.trees.write().unwrap_or_else(|p| p.into_inner());
        let exclusive = std::time::Instant::now();
        let dirty = take_dirty(true);
        let mut steps = [0u64; 3];
        let replayed = copied.and_then(|new| {
            // Nothing writes now: bring the copy up to date and make it durable.
            replay(&old_db, &new, dirty)?;
            if self.erasures.load(Ordering::SeqCst) == started {
                new.open_tree("meta")?.remove(COMPACTION_PENDING)?;
            }
            steps[0] = exclusive.elapsed().as_micros() as u64;
            new.flush()?;
            steps[1] = exclusive.elapsed().as_micros() as u64;
            #[cfg(test)]
            if self.take_failure(FailAt::CrashAfterCopy) {
                return Err(crash());
            }
            Trees::of(new, gen)
        });
        let new_trees = match replayed {
            Ok(t) => t,
            Err(e) => {
                drop(guard);
                drop(old_db);
                #[cfg(test)]
                if matches!(&e, sled::Error::Io(io) if io.to_string() == CRASH) {
                    return Err(self.io(e));
                }
                let _ = std::fs::remove_dir_all(&fresh);
                return Err(self.io(e));
            }
        };
        // The switch: once the pointer names the copy, a restart opens it.
        if let Err(e) = self.point_to(&layout, gen) {
            drop(guard);
            #[cfg(test)]
            if e.to_string() == CRASH {
                return Err(self.io(sled::Error::Io(e)));
            }
            // The rename may or may not have happened: name the old generation again
            // (it is complete: nothing wrote to the copy only), then drop the copy.
            let back = if old_gen.0 == 0 {
                std::fs::remove_file(self.path.join(POINTER)).or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
            } else {
                layout.point_to(old_gen)
            };
            match back {
                Ok(()) => {
                    drop(new_trees);
                    let _ = std::fs::remove_dir_all(&fresh);
                }
                Err(b) => {
                    warn!(error = %b, "could not restore the database pointer after a failed compaction; the next start picks a complete generation")
                }
            }
            let _ = std::fs::remove_file(self.path.join(POINTER_TMP));
            return Err(self.io(sled::Error::Io(e)));
        }
        steps[2] = exclusive.elapsed().as_micros() as u64;
        let old_trees = std::mem::replace(&mut *guard, new_trees);
        drop(guard);
        let held_us = exclusive.elapsed().as_micros() as u64;
        self.last_exclusive_us.store(held_us, Ordering::Relaxed);
        #[cfg(test)]
        if self.take_failure(FailAt::CrashAfterPointer) {
            return Err(self.io(crash()));
        }
        // Off the lock: closing the old generation (sled joins its flusher) and
        // removing its files take most of the time the swap used to hold the store.
        let closing = std::time::Instant::now();
        drop(old_trees);
        drop(old_db);
        if let Err(e) = layout.remove(old_gen) {
            warn!(error = %e, "could not remove the old database generation; the next start does");
        }
        info!(
            exclusive_us = held_us,
            replay_us = steps[0],
            flush_us = steps[1] - steps[0],
            pointer_us = steps[2] - steps[1],
            close_and_remove_ms = closing.elapsed().as_millis() as u64,
            "compaction put the new database generation in service"
        );
        self.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the pointer (with the test hooks of its steps).
    pub(super) fn point_to(&self, layout: &Layout<'_>, gen: Gen) -> std::io::Result<()> {
        #[cfg(test)]
        {
            if self.take_failure(FailAt::Pointer) {
                return Err(std::io::Error::other("test: the pointer cannot be written"));
            }
            if self.take_failure(FailAt::CrashAfterPointerTmp) {
                std::fs::write(
                    self.path.join(POINTER_TMP),
                    format!("{GEN_PREFIX}{}\n", gen.0),
                )?;
                return Err(std::io::Error::other(CRASH));
            }
        }
        layout.point_to(gen)
    }

    /// Copies every tree of `old` into a new database at `fresh` (left open).
    pub(super) fn copy_into(&self, old: &sled::Db, fresh: &Path) -> Result<sled::Db, sled::Error> {
        #[cfg(test)]
        if self.take_failure(FailAt::Copy) {
            return Err(sled::Error::Io(std::io::Error::other("test: copy fails")));
        }
        old.flush()?;
        if fresh.exists() {
            std::fs::remove_dir_all(fresh)?;
        }
        // sled's own export/import panics on I/O errors; copy tree by tree instead.
        let new = open_db(sled::Config::new().path(fresh).cache_capacity(CACHE_BYTES))?;
        for name in old.tree_names() {
            let from = old.open_tree(&name)?;
            let to = new.open_tree(&name)?;
            for kv in from.iter() {
                let (k, v) = kv?;
                to.insert(k, v)?;
            }
        }
        // Written out now, while reads and writes go on: the exclusive phase that
        // follows then only flushes the few writes it replays (issue 14).
        new.flush()?;
        // The new generation's entries in the store's directory, before a pointer can
        // name it.
        sync_dir(fresh)?;
        if let Some(parent) = fresh.parent() {
            sync_dir(parent)?;
        }
        Ok(new)
    }

    /// Test hook: blocks every access to the store until the guard is dropped, as a
    /// slow disk or the swap of a compaction would.
    #[cfg(test)]
    pub(crate) fn stall(&self) -> std::sync::RwLockWriteGuard<'_, Trees> {
        self.trees.write().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub(super) fn take_failure(&self, at: FailAt) -> bool {
        let mut f = self.fail_next.lock().unwrap_or_else(|p| p.into_inner());
        if *f == Some(at) {
            *f = None;
            return true;
        }
        false
    }
}
