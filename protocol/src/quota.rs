//! The per-author bound on events a node keeps without understanding them.
//!
//! An event of a kind (or protocol version) this node does not know is valid and kept,
//! so that newer nodes can talk through older ones. But it can never be redacted, so
//! without a bound one member could make every node keep any amount of opaque data.
//! Each node therefore keeps, per author, only the [`MAX_UNKNOWN_PER_AUTHOR`] earliest
//! such events by `(timestamp, id)`; the rest are dropped and remembered as erased.
//!
//! The rule depends only on the events, never on the order they arrive in: whatever
//! a node has seen, it holds the earliest ones of what it has seen, so once the same
//! events have reached two nodes they hold the same of them, and the sets converge.
//!
//! # The daily quota
//! A second bound covers every kind: an author (a hub's key) signs at most
//! [`DAILY_EVENTS_PER_AUTHOR`] events a UTC day (by the event's own stamp, see
//! [`day_of`]) that hubs keep and forward, erasures and withdrawals apart
//! ([`counts_toward_daily`]), so that an author can always take back what it posted.
//! A hub refuses its own writes past it (so honest hubs never send more, and their
//! sets converge), and drops and does not forward a peer's: a flood signed by one
//! key stops at the first hub that has counted its day full (issue 24: one phone
//! posted 10,000 needs in 4 s through a hub, and they reached every hub). Which of
//! a misbehaving author's excess events a hub keeps depends on what reached it
//! first; the quota bounds what that author costs, not which of its events survive.

use std::collections::BTreeSet;

use crate::body::{Body, Status};
use crate::event::EventId;
use crate::time::Timestamp;

/// Most events one author may sign in one UTC day that hubs keep and forward (a busy
/// hub signs a few thousand on its worst day: every post, claim and check-in its
/// phones and desk make).
pub const DAILY_EVENTS_PER_AUTHOR: u32 = 10_000;

/// The day an event counts in: whole days since the Unix epoch of its stamp (UTC).
pub fn day_of(ts: Timestamp) -> u64 {
    ts.millis() / 86_400_000
}

/// Whether an event with this body (`None`: a kind this node cannot read) counts
/// toward its author's daily quota: everything but an erasure (redaction) and a
/// withdrawal, so that forgetting a person and taking back a flood always work.
pub fn counts_toward_daily(body: Option<&Body>) -> bool {
    !matches!(
        body,
        Some(Body::Redaction(_))
            | Some(Body::Status(crate::body::StatusChange {
                status: Status::Withdrawn,
                ..
            }))
    )
}

/// Most events of unknown kinds kept per author (with events of at most
/// [`crate::MAX_EVENT_BYTES`], 512 KiB per author).
pub const MAX_UNKNOWN_PER_AUTHOR: usize = 32;

/// What to do with a new unknown-kind event of an author who already has `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Keep it.
    Keep,
    /// Keep it and drop this later one of the author's, which falls out of the quota.
    KeepDropping(EventId),
    /// Do not keep it: the author's quota holds earlier events.
    Drop,
}

/// Applies the quota to `new`, given the author's unknown-kind events already held.
pub fn admit_unknown(held: &BTreeSet<(Timestamp, EventId)>, new: (Timestamp, EventId)) -> Admit {
    if held.len() < MAX_UNKNOWN_PER_AUTHOR {
        return Admit::Keep;
    }
    match held.last() {
        Some(&(ts, id)) if new < (ts, id) => Admit::KeepDropping(id),
        _ => Admit::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> (Timestamp, EventId) {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        (Timestamp(n / 3), EventId(id))
    }

    /// Feeds `items` in order through the rule, as a node's store would.
    fn held_after(items: &[(Timestamp, EventId)]) -> BTreeSet<(Timestamp, EventId)> {
        let mut held = BTreeSet::new();
        for &it in items {
            if held.contains(&it) {
                continue;
            }
            match admit_unknown(&held, it) {
                Admit::Keep => {
                    held.insert(it);
                }
                Admit::KeepDropping(drop) => {
                    held.retain(|x| x.1 != drop);
                    held.insert(it);
                }
                Admit::Drop => {}
            }
        }
        held
    }

    #[test]
    fn any_arrival_order_keeps_the_same_earliest_events() {
        let all: Vec<_> = (0..100).map(item).collect();
        let mut expected: Vec<_> = all.clone();
        expected.sort();
        expected.truncate(MAX_UNKNOWN_PER_AUTHOR);
        let expected: BTreeSet<_> = expected.into_iter().collect();
        let mut order = all.clone();
        let mut seed = 0x1234_5678_u64;
        for round in 0..20 {
            // A different arrival order each round (xorshift shuffle), once reversed.
            if round == 1 {
                order.reverse();
            } else {
                for i in (1..order.len()).rev() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    order.swap(i, (seed % (i as u64 + 1)) as usize);
                }
            }
            assert_eq!(held_after(&order), expected, "round {round}");
        }
    }

    #[test]
    fn erasures_and_withdrawals_never_count_toward_the_daily_quota() {
        use crate::body::{Post, Redaction, StatusChange, Urgency};
        use crate::category::Category;
        let need = Body::Need(Post::new("water", Category::Water, Urgency::Normal));
        assert!(counts_toward_daily(Some(&need)));
        assert!(counts_toward_daily(None), "unknown kinds count");
        let change = |status| {
            Body::Status(StatusChange {
                target: EventId([1; 32]),
                status,
                note: String::new(),
            })
        };
        assert!(counts_toward_daily(Some(&change(Status::Claimed))));
        assert!(!counts_toward_daily(Some(&change(Status::Withdrawn))));
        let forget = Body::Redaction(Redaction {
            target: EventId([1; 32]),
            reason: String::new(),
        });
        assert!(!counts_toward_daily(Some(&forget)));
        assert_eq!(day_of(Timestamp::from_millis(86_400_000 - 1)), 0);
        assert_eq!(day_of(Timestamp::from_millis(86_400_000)), 1);
    }

    #[test]
    fn under_the_quota_everything_is_kept() {
        let some: Vec<_> = (0..MAX_UNKNOWN_PER_AUTHOR as u64).map(item).collect();
        assert_eq!(held_after(&some).len(), MAX_UNKNOWN_PER_AUTHOR);
        let full = held_after(&some);
        let late = (Timestamp(u64::MAX), EventId([0xff; 32]));
        assert_eq!(admit_unknown(&full, late), Admit::Drop);
    }
}
