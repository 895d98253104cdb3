//! Our own summaries: when the next one is due, and making it (full or delta).

use aidmesh_protocol::delivery::{prefix, Summary, MAX_RECENT};
use aidmesh_protocol::{EventId, Identity};

use super::{Delivery, FULL_STAMPS_KEPT, LIST_MS};

impl Delivery {
    /// When our next summary is due (local wall ms): soon after a change, else the
    /// keep-alive.
    pub fn next_summary_ms(&self) -> u64 {
        let st = self.lock();
        match st.last_sent_ms {
            None => 0,
            Some(last) if st.dirty => last + st.gap_ms(),
            Some(last) => last + st.keepalive_ms(),
        }
    }

    /// Our signed summary if one is due at `now_ms` (local wall ms); `made_ms` is the
    /// mesh-corrected time it carries.
    pub fn summary_due(&self, identity: &Identity, now_ms: u64, made_ms: u64) -> Option<Vec<u8>> {
        let mut st = self.lock();
        let due = match st.last_sent_ms {
            None => true,
            Some(last) if st.dirty => now_ms >= last + st.gap_ms(),
            Some(last) => now_ms >= last + st.keepalive_ms(),
        };
        if !due || st.stale {
            return None;
        }
        // Two different full summaries with one `made_ms` would let a receiver
        // rebuild a delta on the wrong base (a false proof): after the clock went
        // back, step past the stamps of our recent full ones.
        let mut made_ms = made_ms;
        while st.full_stamps.contains(&made_ms) {
            made_ms += 1;
        }
        // What arrived since our last summary and in the last `LIST_MS` (newest first).
        // What came before our last summary was listed then, and a receiver
        // remembers it; what came earlier since has reached the hubs around us, and
        // our buckets prove it (listing every arrival cost each host 30 x 8 bytes per
        // event and copy at 30 hubs, three times the event's own gossip).
        let new = usize::try_from(st.arrived - st.listed).unwrap_or(usize::MAX);
        let recent: Vec<EventId> = st
            .arrivals
            .iter()
            .rev()
            .take(new.min(MAX_RECENT))
            .take_while(|(at, _)| at.saturating_add(LIST_MS) >= now_ms)
            .map(|(_, id)| *id)
            .collect();
        st.listed = st.arrived;
        let buckets = st.buckets(&self.held(), made_ms);
        let s = Summary {
            community: self.tag,
            hub: self.me,
            made_ms,
            count: buckets.iter().map(|b| u64::from(b.count)).sum(),
            base_ms: 0,
            buckets,
            recent: recent.iter().take(MAX_RECENT).map(prefix).collect(),
        };
        // A delta against our last full summary, unless a full one is due: a peer
        // connected, a keep-alive since the last full one passed (someone who
        // missed it gets a base at least that often), the clock went back, or the
        // delta would not save a third of the bytes.
        let keepalive = st.keepalive_ms();
        let delta = match &st.last_full {
            Some((base, at))
                if !st.want_full && now_ms < at + keepalive && base.made_ms < made_ms =>
            {
                Some(s.delta(base)).filter(|d| 3 * d.wire_len() <= 2 * s.wire_len())
            }
            _ => None,
        };
        let out = match delta {
            Some(d) => d,
            None => {
                st.want_full = false;
                st.last_full = Some((s.clone(), now_ms));
                if st.full_stamps.len() >= FULL_STAMPS_KEPT {
                    st.full_stamps.pop_front();
                }
                st.full_stamps.push_back(made_ms);
                s
            }
        };
        st.dirty = false;
        st.last_sent_ms = Some(now_ms);
        Some(out.sign(identity))
    }
}
