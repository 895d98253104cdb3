//! Other hubs' summaries: checking each against what we hold, and remembering what it
//! proves.

use std::collections::{BTreeMap, HashSet};

use aidmesh_protocol::delivery::{prefix, Summary};
use aidmesh_protocol::time::MAX_FUTURE_MS;
use aidmesh_protocol::EventId;
use libp2p::PeerId;

use super::{peer_of, Delivery, Hub, Received, Via, HUBS_KEPT, UNFOUND_MAX};

impl Delivery {
    /// A summary from gossip, passed on by `source`, at local wall time `now_ms` and
    /// mesh-corrected time `made_now_ms` (the clock summaries are stamped with).
    pub fn receive(
        &self,
        bytes: &[u8],
        source: Option<PeerId>,
        now_ms: u64,
        made_now_ms: u64,
    ) -> Received {
        let s = match Summary::open(bytes, &self.tag) {
            Ok(s) => s,
            Err(e) => return Received::Refused(e),
        };
        if s.hub == self.me {
            return Received::Stale;
        }
        let mut st = self.lock();
        // Newest wins; but a held summary stamped beyond the clock rules' future limit
        // (the hub's clock was ahead, then corrected) does not lock its later ones out.
        if st.hubs.get(&s.hub).is_some_and(|h| {
            h.summary.made_ms >= s.made_ms
                && h.summary.made_ms <= made_now_ms.saturating_add(MAX_FUTURE_MS)
        }) {
            return Received::Stale;
        }
        // A delta is read through the hub's last full summary; one whose base we
        // lack (we missed it) proves nothing by range.
        let held_base = st.hubs.get(&s.hub).and_then(|h| h.base.as_ref());
        let (full, base) = if !s.is_delta() {
            (Some(s.clone()), Some(s.clone()))
        } else {
            match held_base {
                Some(b) if b.made_ms == s.base_ms => match s.apply(b) {
                    Ok(f) => (Some(f), Some(b.clone())),
                    // Signed by the hub, against the base we hold, and wrong.
                    Err(e) => return Received::Refused(e),
                },
                other => (None, other.cloned()),
            }
        };
        let held = self.held();
        let direct = source.is_some() && source == peer_of(&s.hub);
        let mut matched = BTreeMap::new();
        let mut behind = None;
        if let Some(full) = &full {
            let (mut covered, mut short) = (0u64, 0u64);
            let stale = st.stale;
            for b in &full.buckets {
                let (count, fp) = st.fp(&held, b.start_ms, b.end_ms);
                let n = u64::from(count);
                covered += n;
                if n == u64::from(b.count) && fp == b.fp {
                    if !stale {
                        matched.insert(b.start_ms, (b.end_ms, count));
                    }
                } else {
                    short += n.saturating_sub(u64::from(b.count));
                }
            }
            behind = Some(short + (held.len() as u64).saturating_sub(covered));
        }
        drop(held);
        // Recently received ids: find ours among them (most are our recent arrivals).
        let listed: HashSet<[u8; 8]> = s.recent.iter().copied().collect();
        let found: Vec<EventId> = st
            .arrivals
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| listed.contains(&prefix(id)))
            .collect();
        let found_prefixes: HashSet<[u8; 8]> = found.iter().map(prefix).collect();
        for id in found {
            st.stick(id, s.hub, s.made_ms);
        }
        // Listed but not here yet (the hub got it first): proven when it arrives.
        // A prefix listed is listed once, so it is remembered, not looked up again.
        for p in listed.difference(&found_prefixes) {
            if st.unfound.len() >= UNFOUND_MAX {
                st.unfound.clear();
            }
            let v = st.unfound.entry(*p).or_default();
            if !v.iter().any(|(h, _)| *h == s.hub) {
                v.push((s.hub, s.made_ms));
            }
        }
        // Bounded: a new hub beyond the bound takes the place of the one heard from
        // longest ago (a real hub's keep-alives keep it heard from).
        if st.hubs.len() >= HUBS_KEPT && !st.hubs.contains_key(&s.hub) {
            if let Some(oldest) = st
                .hubs
                .iter()
                .min_by_key(|(_, h)| h.heard_ms)
                .map(|(a, _)| *a)
            {
                st.hubs.remove(&oldest);
            }
        }
        st.hubs.insert(
            s.hub,
            Hub {
                heard_ms: now_ms,
                via: if direct { Via::Direct } else { Via::Relayed },
                behind,
                matched,
                summary: full.unwrap_or(s),
                base,
            },
        );
        drop(st);
        self.changed();
        Received::Newer
    }
}
