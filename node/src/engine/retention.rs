//! What the engine erases, and when: events a redaction covers, and welfare records
//! past retention. The decisions are the protocol's ([`aidmesh_protocol::retention`],
//! [`aidmesh_protocol::View::welfare_expired`]); this file applies them to the store.

use std::collections::BTreeSet;

use aidmesh_protocol::retention;
use aidmesh_protocol::{Body, Event, EventId, View};
use tracing::info;

use super::{load_view, release_freed_memory, Engine, State, BUILD_MS};
use crate::store::StoreError;

impl Engine {
    /// Whether `event`'s content is covered by a redaction or an erasure, as
    /// [`retention::covered_by_redaction`] decides; the store answers which ids were
    /// erased.
    pub(super) fn covered_by_redaction(
        &self,
        view: &View,
        event: &Event,
        body: &Body,
    ) -> Result<bool, StoreError> {
        retention::covered_by_redaction(view, &event.id(), &event.author(), body)
            .decide(|id| self.store.erased_kind(id))
    }

    /// Erases welfare records past retention (see
    /// [`aidmesh_protocol::View::welfare_expired`]); returns how many events went.
    /// Uses [`aidmesh_protocol::ClockReading::erase_ms`]: a corrected clock ahead of ours never hastens an
    /// erasure.
    pub fn expire_welfare(&self, retention_ms: u64) -> Result<usize, StoreError> {
        let now = self.clock().erase_ms;
        let mut st = self.lock();
        let targets = st.view.welfare_expired(now, retention_ms, BUILD_MS);
        if targets.is_empty() {
            return Ok(0);
        }
        let n = self.erase(&mut st, &targets)?;
        if n > 0 {
            // Expired records are not hidden by any event, so the view is rebuilt
            // now (rare: one sweep every few minutes, on a blocking thread).
            let mut view = load_view(&self.store, 1)?.view;
            // Heads kept by the lists name authors by the old view's numbers.
            view.number_authors_as(&st.view);
            // The old view is dropped after the lock is let go: freeing a big view
            // took the lock from every peer's ingest for milliseconds.
            let old = std::mem::replace(&mut st.view, view);
            drop(st);
            drop(old);
            release_freed_memory();
            info!(erased = n, "welfare records past retention erased");
        }
        Ok(n)
    }

    /// Erases every event a redaction now covers from the store. The board already
    /// hides them (the redaction is filed); the background thread then rebuilds the
    /// view, so no erased text stays in memory, and compacts the database.
    pub(super) fn purge(&self, st: &mut State) -> Result<(), StoreError> {
        let targets = st.view.purgeable();
        let erased = self.erase(st, &targets)?;
        if erased > 0 {
            self.compactor.request(true);
            info!(
                erased,
                "redaction applied: content erased from the database"
            );
        }
        Ok(())
    }

    /// Erases the held events among `targets` from the store (durably) and asks the
    /// background thread to compact the database (sled keeps removed values in old log
    /// segments until then). Returns how many went. The caller sees to the view.
    fn erase(&self, st: &mut State, targets: &BTreeSet<EventId>) -> Result<usize, StoreError> {
        let mut erased = 0;
        for id in targets {
            if let Some(bytes) = self.store.get(id)? {
                let kind = Event::decode(&bytes).map_or(0, |e| e.kind());
                self.store.erase(id, kind)?;
                erased += 1;
            }
        }
        if erased == 0 {
            return Ok(0);
        }
        st.digest = None;
        st.generation += 1;
        st.head_changes.note(st.generation, None);
        // Durable before the compaction is asked for: the erasure and its pending flag.
        self.store.flush()?;
        self.compactor.request(false);
        Ok(erased)
    }
}
