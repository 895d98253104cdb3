//! What the API asks: which hubs are known to hold an event, and the hub roster.

use std::collections::BTreeMap;

use aidmesh_protocol::{AuthorId, EventId, Timestamp};

use super::{
    author_of, peer_of, Delivery, KnownAt, RosterEntry, GONE_AFTER_MS, RETIRED_MAX, ROSTER_MAX,
    SILENT_AFTER_MS,
};

/// Where a hub other than this node stands on the roster (issue 29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Shown and counted.
    Active,
    /// Not heard from for longer than [`GONE_AFTER_MS`]: shown as "not seen for N
    /// days", not counted.
    Gone,
    /// Retired here by a coordinator and not heard from since: neither shown nor
    /// counted.
    Retired,
}

/// The rule: a hub connected now, or heard from after it was retired, is back (a
/// retirement is undone by the hub itself, never by time); a retired one is off the
/// list; one not heard from for longer than [`GONE_AFTER_MS`] (by `now_ms`, the same
/// clock as `last_heard_ms`) is gone. A hub never heard from (only connected once,
/// and not now) is not called gone: there is no date to count from.
pub fn standing(
    last_heard_ms: Option<u64>,
    reachable: bool,
    retired_ms: Option<u64>,
    now_ms: u64,
) -> Standing {
    if reachable {
        return Standing::Active;
    }
    if let Some(r) = retired_ms {
        if last_heard_ms.is_none_or(|h| h <= r) {
            return Standing::Retired;
        }
    }
    match last_heard_ms {
        Some(h) if now_ms.saturating_sub(h) > GONE_AFTER_MS => Standing::Gone,
        _ => Standing::Active,
    }
}

/// Why a hub cannot be retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireError {
    /// No node on the roster has that id.
    Unknown,
    /// More than one does (give more characters).
    Ambiguous,
    /// It is this node.
    Me,
    /// It is connected now (it would be back at once).
    Connected,
}

impl Delivery {
    /// The other hubs known to hold event `(ts, id)` (which this node holds), each
    /// with the time it was proven, ordered by node.
    ///
    /// An event stored after a hub's range matched (the API drew its card before the
    /// engine's broadcast reached [`Delivery::observe`], which drops the range) is
    /// proven by no range: the range no longer holds what it held when it matched
    /// (its count differs), and a range that matched before the event arrived says
    /// nothing about it.
    pub fn known(&self, ts: Timestamp, id: &EventId) -> Vec<KnownAt> {
        let st = self.lock();
        let held = self.held();
        let holds = held.contains(&(ts, *id));
        let ms = ts.millis();
        let mut out = Vec::new();
        for (node, hub) in &st.hubs {
            let in_range = holds
                && hub
                    .matched
                    .range(..=ms)
                    .next_back()
                    .is_some_and(|(start, (end, count))| {
                        ms < *end && held.count_ms(*start, *end) == *count as usize
                    });
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
            gone: false,
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
        let mut others: Vec<RosterEntry> = nodes
            .into_values()
            .filter_map(|mut e| {
                match standing(
                    e.last_heard_ms,
                    e.reachable,
                    st.retired.get(&e.node).copied(),
                    now_ms,
                ) {
                    Standing::Retired => return None,
                    Standing::Gone => e.gone = true,
                    Standing::Active => {}
                }
                Some(e)
            })
            .collect();
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
            gone: false,
        };
        std::iter::once(me).chain(others).collect()
    }

    /// Retires the hub whose key starts with the hex `prefix` (at least
    /// [`aidmesh_protocol::identity::AUTHOR_SHORT_LEN`] characters; the caller checks),
    /// found among `roster` (as [`Delivery::roster`] gave it), at local wall time
    /// `now_ms`. Returns the hub and the retired list to keep on disk.
    pub fn retire(
        &self,
        roster: &[RosterEntry],
        prefix: &str,
        now_ms: u64,
    ) -> Result<(RosterEntry, std::collections::HashMap<AuthorId, u64>), RetireError> {
        let prefix = prefix.to_ascii_lowercase();
        let mut found = roster
            .iter()
            .filter(|e| e.node.to_hex().starts_with(&prefix));
        let e = found.next().ok_or(RetireError::Unknown)?;
        if found.next().is_some() {
            return Err(RetireError::Ambiguous);
        }
        if e.me {
            return Err(RetireError::Me);
        }
        if e.reachable {
            return Err(RetireError::Connected);
        }
        let mut st = self.lock();
        // Heard from in this very millisecond would be "after": retire at the later.
        let at = now_ms.max(e.last_heard_ms.unwrap_or(0));
        st.retired.insert(e.node, at);
        while st.retired.len() > RETIRED_MAX {
            let oldest = st.retired.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a);
            if let Some(a) = oldest {
                st.retired.remove(&a);
            }
        }
        let kept = st.retired.clone();
        drop(st);
        self.changed();
        Ok((e.clone(), kept))
    }
}

/// Whether a roster entry is silent at `now_ms`: not heard from for longer than
/// [`SILENT_AFTER_MS`] (or never).
pub fn silent(e: &RosterEntry, now_ms: u64) -> bool {
    !e.me
        && e.last_heard_ms
            .is_none_or(|t| now_ms.saturating_sub(t) > SILENT_AFTER_MS)
}
