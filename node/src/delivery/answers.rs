//! What the API asks: which hubs are known to hold an event, and the hub roster.

use std::collections::BTreeMap;

use aidmesh_protocol::{AuthorId, EventId, Timestamp};

use super::{author_of, peer_of, Delivery, KnownAt, RosterEntry, ROSTER_MAX, SILENT_AFTER_MS};

impl Delivery {
    /// The other hubs known to hold event `(ts, id)` (which this node holds), each
    /// with the time it was proven, ordered by node.
    ///
    /// An event this node's set does not hold yet (the API drew its card before the
    /// engine's broadcast reached [`Delivery::observe`]) is proven by no range: a
    /// range that matched before it arrived says nothing about it.
    pub fn known(&self, ts: Timestamp, id: &EventId) -> Vec<KnownAt> {
        let st = self.lock();
        // No merge here: a page's stream asks for every new card, and merging the
        // pending arrivals into 100,000 items then cost each event milliseconds.
        let held = st.items.binary_search(&(ts, *id)).is_ok() || st.pending.contains(&(ts, *id));
        let ms = ts.millis();
        let mut out = Vec::new();
        for (node, hub) in &st.hubs {
            let in_range = held
                && hub
                    .matched
                    .range(..=ms)
                    .next_back()
                    .is_some_and(|(_, end)| ms < *end);
            let at = if in_range || hub.summary.lists(id) {
                Some(hub.summary.made_ms)
            } else {
                st.sticky
                    .get(id)
                    .and_then(|v| v.iter().find(|(h, _)| h == node).map(|(_, at)| *at))
            };
            if let Some(at_ms) = at {
                out.push(KnownAt { node: *node, at_ms });
            }
        }
        out
    }

    /// The hubs of the mesh: this node, the hubs whose summaries we hold, the peers
    /// connected now and `announced` (authors of hub announcements), each with when
    /// it was last heard from (its summary, or the newest event it made). An author of
    /// events that did none of these is not a hub: a bundle of events under a
    /// thousand throwaway keys adds no one (issue 24). At most [`ROSTER_MAX`]: this
    /// node first, then the others by key; beyond the bound, those connected and
    /// heard from most recently are kept.
    pub fn roster(&self, announced: &[AuthorId], now_ms: u64) -> Vec<RosterEntry> {
        let st = self.lock();
        let mut nodes: BTreeMap<AuthorId, RosterEntry> = BTreeMap::new();
        let entry = |node: AuthorId| RosterEntry {
            node,
            me: false,
            last_heard_ms: st.authors.get(&node).copied(),
            via: None,
            behind: None,
            reachable: peer_of(&node).is_some_and(|p| st.connected.contains(&p)),
        };
        for a in announced {
            nodes.entry(*a).or_insert_with(|| entry(*a));
        }
        for a in st.connected.iter().filter_map(author_of) {
            nodes.entry(a).or_insert_with(|| entry(a));
        }
        for (a, h) in &st.hubs {
            let e = nodes.entry(*a).or_insert_with(|| entry(*a));
            e.last_heard_ms = Some(e.last_heard_ms.unwrap_or(0).max(h.heard_ms));
            e.via = Some(h.via);
            e.behind = h.behind;
        }
        nodes.remove(&self.me);
        let mut others: Vec<RosterEntry> = nodes.into_values().collect();
        if others.len() >= ROSTER_MAX {
            others.sort_by_key(|e| {
                (
                    std::cmp::Reverse(e.reachable),
                    std::cmp::Reverse(e.last_heard_ms),
                    e.node,
                )
            });
            others.truncate(ROSTER_MAX - 1);
            others.sort_by_key(|e| e.node);
        }
        let me = RosterEntry {
            node: self.me,
            me: true,
            last_heard_ms: Some(now_ms),
            via: None,
            behind: Some(0),
            reachable: true,
        };
        std::iter::once(me).chain(others).collect()
    }
}

/// Whether a roster entry is silent at `now_ms`: not heard from for longer than
/// [`SILENT_AFTER_MS`] (or never).
pub fn silent(e: &RosterEntry, now_ms: u64) -> bool {
    !e.me
        && e.last_heard_ms
            .is_none_or(|t| now_ms.saturating_sub(t) > SILENT_AFTER_MS)
}
