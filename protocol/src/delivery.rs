//! Honest delivery (issue 11): the signed **hub summary** a node gossips about what it
//! holds, and the pure rules that say whether a summary proves that its hub holds a
//! given event.
//!
//! A summary is not a receipt per event. It is a handful of time buckets over the
//! hub's events (fine for recent times, coarse for old ones), each with the number of
//! events and a fingerprint of their ids, plus 8-byte prefixes of the ids the hub
//! received in the last few minutes. A node confirms its own event X at hub H only if
//! H's summary proves it:
//!
//! - X's id prefix is listed in H's recent ids, or
//! - the bucket of H's summary that covers X's time has the same count and the same
//!   fingerprint as the events *we* hold in that time range (then H holds what we hold
//!   there, X included).
//!
//! Anything else proves nothing, and nothing is claimed. A summary is signed by the
//! hub's identity key (the key that authors its events) and carries a keyed tag of the
//! community key, so nobody can make one for another hub, and another community's
//! summary is refused. The newest summary per hub wins, so replaying an old one
//! changes nothing. A summary is full (every bucket) or a delta against the hub's last
//! full one (only the buckets that changed). Byte layout: `docs/protocol.md` §12.3.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::DecodeError;
use crate::event::EventId;
use crate::identity::{AuthorId, Identity};
use crate::time::Timestamp;

/// Version byte in front of every summary.
pub const SUMMARY_VERSION: u8 = 2;

/// Largest encoded summary accepted (checked before decoding). A summary of a long
/// history is about 2 KB; gossip carries up to 16 KB.
pub const MAX_SUMMARY_BYTES: usize = 12 * 1024;

/// Most buckets in a summary (the layout below makes about 120 plus one per 30 days
/// of history older than 60 days).
pub const MAX_BUCKETS: usize = 400;

/// Most recent id prefixes in a summary.
pub const MAX_RECENT: usize = 256;

/// Bytes of an id listed in [`Summary::recent`].
pub const PREFIX_LEN: usize = 8;

/// Bytes of a bucket fingerprint.
pub const FINGERPRINT_LEN: usize = 8;

/// Prefix of the signed message: a summary signature can never pass for an event's.
const SIGN_CONTEXT: &[u8] = b"aidmesh delivery summary v2\0";

/// Domain of the bucket fingerprint hash.
const FINGERPRINT_CONTEXT: &[u8] = b"aidmesh delivery bucket v1\0";

/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The bucket grid: events younger than `span` (measured back from the top of the
/// current minute) fall in buckets `grid` ms wide; older ones use the next line; the
/// last grid covers everything older. Each grid divides the next, so the layout is
/// the same on every node that makes it at the same minute.
const LEVELS: [(u64, u64); 5] = [
    (10 * MINUTE, MINUTE),
    (2 * HOUR, 10 * MINUTE),
    (2 * DAY, 2 * HOUR),
    (60 * DAY, DAY),
    (u64::MAX, 30 * DAY),
];

/// One time bucket: the hub's events whose timestamp's milliseconds lie in
/// `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bucket {
    /// First millisecond covered.
    pub start_ms: u64,
    /// First millisecond not covered.
    pub end_ms: u64,
    /// Number of events.
    pub count: u32,
    /// [`fingerprint`] of their ids.
    pub fp: [u8; FINGERPRINT_LEN],
}

/// What a hub says it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// [`community_tag`] of the community key.
    pub community: [u8; 8],
    /// The hub: its identity key, which signs the summary.
    pub hub: AuthorId,
    /// The hub's (mesh-corrected) clock when it made the summary, ms since the epoch;
    /// the newest per hub wins.
    pub made_ms: u64,
    /// Events held (in a delta too: always the hub's total).
    pub count: u64,
    /// 0 for a full summary; otherwise this is a delta against the hub's full summary
    /// made at `base_ms` (see [`Summary::delta`] and [`Summary::apply`]).
    pub base_ms: u64,
    /// Buckets, ascending and disjoint. In a full summary: every non-empty bucket,
    /// their counts adding up to `count`. In a delta: the buckets that differ from the
    /// base, and tombstones (count 0, fingerprint zero) for base ranges now empty.
    pub buckets: Vec<Bucket>,
    /// Prefixes of ids the hub received in the last minutes, newest first.
    pub recent: Vec<[u8; PREFIX_LEN]>,
}

/// Why a summary was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SummaryError {
    /// Did not decode, or broke a size limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Made in another community (or with another passphrase).
    #[error("summary from another community")]
    OtherCommunity,
    /// The signature is not the hub's.
    #[error("summary signature is not the hub's")]
    BadSignature,
    /// Buckets overlap, are out of order, empty, or do not add up to the count; or a
    /// delta does not fit the base it was applied to.
    #[error("summary buckets are inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The community tag carried by summaries: a keyed hash of the community key, so a
/// summary made with another key is recognised and refused (and the key not revealed).
pub fn community_tag(key: &[u8; 32]) -> [u8; 8] {
    let h = blake3::keyed_hash(key, b"aidmesh delivery community v1");
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

/// Fingerprint of a bucket: the first [`FINGERPRINT_LEN`] bytes of BLAKE3 over
/// `"aidmesh delivery bucket v1\0"` and the ids in ascending order. Callers pass the
/// ids sorted and unique.
pub fn fingerprint<'a>(sorted_ids: impl IntoIterator<Item = &'a EventId>) -> [u8; FINGERPRINT_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(FINGERPRINT_CONTEXT);
    for id in sorted_ids {
        h.update(&id.0);
    }
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..FINGERPRINT_LEN]);
    out
}

/// The id prefix listed in [`Summary::recent`].
pub fn prefix(id: &EventId) -> [u8; PREFIX_LEN] {
    let mut out = [0u8; PREFIX_LEN];
    out.copy_from_slice(&id.0[..PREFIX_LEN]);
    out
}

/// The bucket `[start_ms, end_ms)` holding an event at `ms` in a summary made at
/// `made_ms` (see [`LEVELS`]). Events at or after the top of the current minute (a
/// clock ahead of ours) share one bucket reaching to the end of time.
pub fn bucket_of(ms: u64, made_ms: u64) -> (u64, u64) {
    let top = (made_ms / MINUTE).saturating_add(1).saturating_mul(MINUTE);
    if ms >= top {
        return (top, u64::MAX);
    }
    for (i, (span, grid)) in LEVELS.iter().enumerate() {
        // The level's lower edge, aligned to the next (coarser) grid so no bucket
        // straddles two levels.
        let coarser = LEVELS.get(i + 1).map_or(*grid, |l| l.1);
        let cutoff = top.saturating_sub(*span) / coarser * coarser;
        if ms >= cutoff || i + 1 == LEVELS.len() {
            let start = ms / grid * grid;
            return (start, start.saturating_add(*grid).min(top));
        }
    }
    unreachable!("the last level takes every time")
}

/// The buckets of a set of `(timestamp, id)` items (sorted by timestamp, as the store
/// keeps them) at `made_ms`: only non-empty buckets, ascending.
pub fn buckets(items: &[(Timestamp, EventId)], made_ms: u64) -> Vec<Bucket> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let (start, end) = bucket_of(items[i].0.millis(), made_ms);
        let j = i + items[i..].partition_point(|(t, _)| t.millis() < end);
        let mut ids: Vec<EventId> = items[i..j].iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        out.push(Bucket {
            start_ms: start,
            end_ms: end,
            count: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            fp: fingerprint(&ids),
        });
        i = j;
    }
    out
}

impl Summary {
    /// The summary of `items` (sorted by timestamp) made at `made_ms`; `recent` are
    /// the ids received lately, newest first (cut to [`MAX_RECENT`]).
    pub fn make(
        community: [u8; 8],
        hub: AuthorId,
        made_ms: u64,
        items: &[(Timestamp, EventId)],
        recent: impl IntoIterator<Item = EventId>,
    ) -> Summary {
        let buckets = buckets(items, made_ms);
        Summary {
            community,
            hub,
            made_ms,
            count: buckets.iter().map(|b| u64::from(b.count)).sum(),
            base_ms: 0,
            buckets,
            recent: recent
                .into_iter()
                .take(MAX_RECENT)
                .map(|i| prefix(&i))
                .collect(),
        }
    }

    fn body(&self) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Length of [`Summary::sign`]'s output, without signing.
    pub fn wire_len(&self) -> usize {
        1 + self.body().len() + SIGNATURE_LEN
    }

    /// Wire bytes, signed by `identity` (which must be the summary's hub): version
    /// byte, postcard of the summary, 64-byte Ed25519 signature over
    /// `"aidmesh delivery summary v2\0" || postcard`.
    pub fn sign(&self, identity: &Identity) -> Vec<u8> {
        let body = self.body();
        let mut msg = SIGN_CONTEXT.to_vec();
        msg.extend_from_slice(&body);
        let sig = identity.sign(&msg);
        let mut out = Vec::with_capacity(1 + body.len() + SIGNATURE_LEN);
        out.push(SUMMARY_VERSION);
        out.extend_from_slice(&body);
        out.extend_from_slice(&sig);
        out
    }

    /// Decodes, checks limits, the community tag, the hub's signature and the bucket
    /// layout: the one way a summary from outside is accepted.
    pub fn open(bytes: &[u8], community: &[u8; 8]) -> Result<Summary, SummaryError> {
        let what = "delivery summary";
        if bytes.len() > MAX_SUMMARY_BYTES {
            return Err(DecodeError::TooLarge {
                what,
                len: bytes.len(),
                max: MAX_SUMMARY_BYTES,
            }
            .into());
        }
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(DecodeError::Truncated { what, len: 0 }.into());
        };
        if version != SUMMARY_VERSION {
            return Err(DecodeError::Version {
                what,
                version,
                supported: "2",
            }
            .into());
        }
        if rest.len() < SIGNATURE_LEN {
            return Err(DecodeError::Truncated {
                what,
                len: bytes.len(),
            }
            .into());
        }
        let (body, sig) = rest.split_at(rest.len() - SIGNATURE_LEN);
        let (s, tail): (Summary, _) =
            postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed {
                what,
                reason: e.to_string(),
            })?;
        if !tail.is_empty() {
            return Err(DecodeError::TrailingBytes {
                what,
                extra: tail.len(),
            }
            .into());
        }
        if s.buckets.len() > MAX_BUCKETS {
            return Err(DecodeError::TooLarge {
                what: "summary buckets",
                len: s.buckets.len(),
                max: MAX_BUCKETS,
            }
            .into());
        }
        if s.recent.len() > MAX_RECENT {
            return Err(DecodeError::TooLarge {
                what: "summary recent ids",
                len: s.recent.len(),
                max: MAX_RECENT,
            }
            .into());
        }
        if s.community != *community {
            return Err(SummaryError::OtherCommunity);
        }
        let mut msg = SIGN_CONTEXT.to_vec();
        msg.extend_from_slice(body);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(sig);
        if !s.hub.verify(&msg, &signature) {
            return Err(SummaryError::BadSignature);
        }
        let delta = s.is_delta();
        if delta && s.base_ms >= s.made_ms {
            return Err(SummaryError::Inconsistent(
                "a delta is not newer than its base",
            ));
        }
        let mut last_end = 0u64;
        let mut total = 0u64;
        for b in &s.buckets {
            if b.start_ms >= b.end_ms {
                return Err(SummaryError::Inconsistent("a bucket ends before it starts"));
            }
            if b.start_ms < last_end {
                return Err(SummaryError::Inconsistent(
                    "buckets overlap or are out of order",
                ));
            }
            if b.count == 0 && !delta {
                return Err(SummaryError::Inconsistent("an empty bucket is listed"));
            }
            if b.count == 0 && b.fp != [0; FINGERPRINT_LEN] {
                return Err(SummaryError::Inconsistent("a tombstone has a fingerprint"));
            }
            last_end = b.end_ms;
            total += u64::from(b.count);
        }
        // A delta lists some of the hub's buckets: their sum is checked by `apply`.
        if (!delta && total != s.count) || (delta && total > s.count) {
            return Err(SummaryError::Inconsistent(
                "bucket counts do not add up to the count",
            ));
        }
        Ok(s)
    }

    /// Whether this is a delta against an earlier full summary (`base_ms` not 0).
    pub fn is_delta(&self) -> bool {
        self.base_ms != 0
    }

    /// The delta of this full summary against `base`, an older full summary of the
    /// same hub: every bucket of ours not identical to one of the base, and a tombstone
    /// for every base bucket that matches none of ours and overlaps none listed (its
    /// range holds nothing now). `recent` is ours.
    ///
    /// Bucket grids nest (docs/protocol.md §12.2), so each of our buckets equals,
    /// contains, lies within, or is disjoint from each base bucket, and a base bucket
    /// not dropped by an overlapping listed bucket is either kept as it is or
    /// tombstoned: [`Summary::apply`] gets our buckets back.
    pub fn delta(&self, base: &Summary) -> Summary {
        let same: std::collections::HashSet<&Bucket> = base.buckets.iter().collect();
        let changed: Vec<Bucket> = self
            .buckets
            .iter()
            .filter(|b| !same.contains(b))
            .copied()
            .collect();
        let mine: std::collections::HashSet<&Bucket> = self.buckets.iter().collect();
        let tombstones = base
            .buckets
            .iter()
            .filter(|b| !mine.contains(b) && !overlaps(&changed, b.start_ms, b.end_ms))
            .map(|b| Bucket {
                count: 0,
                fp: [0; FINGERPRINT_LEN],
                ..*b
            });
        let mut buckets: Vec<Bucket> = changed.iter().copied().chain(tombstones).collect();
        buckets.sort_unstable_by_key(|b| b.start_ms);
        Summary {
            base_ms: base.made_ms,
            buckets,
            ..self.clone()
        }
    }

    /// The full summary this delta stands for, given `base` (the hub's full summary
    /// made at `base_ms`): the base buckets that overlap no listed bucket, plus the
    /// listed non-empty ones. Refused if this is not a delta of that base, or the
    /// buckets do not add up to `count`.
    pub fn apply(&self, base: &Summary) -> Result<Summary, SummaryError> {
        if !self.is_delta() {
            return Err(SummaryError::Inconsistent("not a delta"));
        }
        if base.is_delta() {
            return Err(SummaryError::Inconsistent("the base is itself a delta"));
        }
        if base.hub != self.hub || base.community != self.community {
            return Err(SummaryError::Inconsistent("the base is another hub's"));
        }
        if self.base_ms != base.made_ms {
            return Err(SummaryError::Inconsistent(
                "the delta is against another base",
            ));
        }
        let mut buckets: Vec<Bucket> = base
            .buckets
            .iter()
            .filter(|b| !overlaps(&self.buckets, b.start_ms, b.end_ms))
            .chain(self.buckets.iter().filter(|b| b.count > 0))
            .copied()
            .collect();
        buckets.sort_unstable_by_key(|b| b.start_ms);
        let total: u64 = buckets.iter().map(|b| u64::from(b.count)).sum();
        if total != self.count {
            return Err(SummaryError::Inconsistent(
                "the delta and its base do not add up to the count",
            ));
        }
        Ok(Summary {
            base_ms: 0,
            buckets,
            ..self.clone()
        })
    }

    /// The bucket covering millisecond `ms`, if the hub has events there.
    pub fn bucket_at(&self, ms: u64) -> Option<&Bucket> {
        let i = self.buckets.partition_point(|b| b.end_ms <= ms);
        self.buckets.get(i).filter(|b| b.start_ms <= ms)
    }

    /// Whether `id` is among the recently received ids.
    pub fn lists(&self, id: &EventId) -> bool {
        let p = prefix(id);
        self.recent.contains(&p)
    }

    /// Checks each bucket against what *we* hold (`ours`, sorted by timestamp): for
    /// each, whether it matches (same count and fingerprint) and how many events we
    /// hold in its range.
    pub fn check(&self, ours: &[(Timestamp, EventId)]) -> Vec<BucketCheck> {
        self.buckets
            .iter()
            .map(|b| {
                let lo = ours.partition_point(|(t, _)| t.millis() < b.start_ms);
                let hi = lo + ours[lo..].partition_point(|(t, _)| t.millis() < b.end_ms);
                let mut ids: Vec<EventId> = ours[lo..hi].iter().map(|(_, i)| *i).collect();
                ids.sort_unstable();
                ids.dedup();
                BucketCheck {
                    bucket: *b,
                    ours: ids.len() as u64,
                    matched: ids.len() as u64 == u64::from(b.count) && fingerprint(&ids) == b.fp,
                }
            })
            .collect()
    }

    /// Whether this summary proves its hub holds our event `(ts, id)`, given what we
    /// hold (`ours`, sorted by timestamp, containing the event).
    pub fn confirms(&self, ours: &[(Timestamp, EventId)], ts: Timestamp, id: &EventId) -> bool {
        if self.lists(id) {
            return true;
        }
        let Some(b) = self.bucket_at(ts.millis()) else {
            return false;
        };
        let one = Summary {
            buckets: vec![*b],
            recent: Vec::new(),
            ..self.clone()
        };
        one.check(ours).first().is_some_and(|c| c.matched)
    }

    /// A lower bound of the events we hold that the hub lacked when it made this
    /// summary: over mismatched buckets, how many more we hold than it, plus ours in
    /// ranges where it has none.
    pub fn behind(&self, checks: &[BucketCheck], ours_total: u64) -> u64 {
        let covered: u64 = checks.iter().map(|c| c.ours).sum();
        let short: u64 = checks
            .iter()
            .filter(|c| !c.matched)
            .map(|c| c.ours.saturating_sub(u64::from(c.bucket.count)))
            .sum();
        short + ours_total.saturating_sub(covered)
    }
}

/// Whether any of `sorted` (ascending, disjoint buckets) overlaps `[start_ms, end_ms)`.
fn overlaps(sorted: &[Bucket], start_ms: u64, end_ms: u64) -> bool {
    let i = sorted.partition_point(|b| b.end_ms <= start_ms);
    sorted.get(i).is_some_and(|b| b.start_ms < end_ms)
}

/// One bucket of a summary checked against what we hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCheck {
    /// The hub's bucket.
    pub bucket: Bucket,
    /// Events we hold in its range.
    pub ours: u64,
    /// Whether the hub holds exactly what we hold there.
    pub matched: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const NOW: u64 = 1_795_000_000_000;

    fn id(n: u32) -> EventId {
        EventId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    /// Event `n`, `age_ms` before NOW.
    fn item(n: u32, age_ms: u64) -> (Timestamp, EventId) {
        (Timestamp::from_millis(NOW - age_ms), id(n))
    }

    fn sorted(mut v: Vec<(Timestamp, EventId)>) -> Vec<(Timestamp, EventId)> {
        v.sort();
        v.dedup();
        v
    }

    const TAG: [u8; 8] = [9; 8];

    fn hub() -> Identity {
        Identity::from_seed([3; 32])
    }

    #[test]
    fn a_signed_summary_opens_and_a_forged_or_foreign_one_does_not() {
        let items = sorted((0..50).map(|n| item(n, u64::from(n) * 97_000)).collect());
        let s = Summary::make(TAG, hub().author(), NOW, &items, [id(1), id(2)]);
        let bytes = s.sign(&hub());
        assert_eq!(Summary::open(&bytes, &TAG).unwrap(), s);
        // Another community.
        assert_eq!(
            Summary::open(&bytes, &[1; 8]),
            Err(SummaryError::OtherCommunity)
        );
        // Signed by another key for this hub.
        let forged = s.sign(&Identity::from_seed([4; 32]));
        assert_eq!(
            Summary::open(&forged, &TAG),
            Err(SummaryError::BadSignature)
        );
        // Any flipped byte is refused (never a panic).
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Summary::open(&b, &TAG).is_err(), "byte {i}");
        }
        assert!(Summary::open(&[], &TAG).is_err());
        assert!(Summary::open(&vec![1; MAX_SUMMARY_BYTES + 1], &TAG).is_err());
    }

    #[test]
    fn inconsistent_buckets_are_refused_even_when_signed() {
        let items = sorted((0..5).map(|n| item(n, u64::from(n) * 1000)).collect());
        let mut s = Summary::make(TAG, hub().author(), NOW, &items, []);
        s.count += 1;
        assert!(matches!(
            Summary::open(&s.sign(&hub()), &TAG),
            Err(SummaryError::Inconsistent(_))
        ));
    }

    #[test]
    fn buckets_are_fine_for_recent_times_and_coarse_for_old_ones() {
        assert_eq!(
            bucket_of(NOW - 30_000, NOW).1 - bucket_of(NOW - 30_000, NOW).0,
            MINUTE
        );
        let (s, e) = bucket_of(NOW - 5 * HOUR, NOW);
        assert_eq!(e - s, 2 * HOUR);
        let (s, e) = bucket_of(NOW - 10 * DAY, NOW);
        assert_eq!(e - s, DAY);
        let (s, e) = bucket_of(NOW - 400 * DAY, NOW);
        assert_eq!(e - s, 30 * DAY);
        assert_eq!(bucket_of(NOW + HOUR, NOW).1, u64::MAX);
        assert_eq!(bucket_of(0, 0), (0, MINUTE));
        // 100,000 events over a year make about 130 buckets.
        let items = sorted(
            (0..100_000u32)
                .map(|n| item(n, u64::from(n) * 315_000))
                .collect(),
        );
        let b = buckets(&items, NOW);
        assert!(b.len() <= 140, "{} buckets", b.len());
        let s = Summary::make(
            TAG,
            hub().author(),
            NOW,
            &items,
            (0..MAX_RECENT as u32).map(id),
        );
        let bytes = s.sign(&hub());
        assert!(bytes.len() < 6_000, "{} bytes", bytes.len());
        assert_eq!(Summary::open(&bytes, &TAG).unwrap().count, 100_000);
    }

    #[test]
    fn a_version_1_summary_is_refused_naming_version_2() {
        let s = Summary::make(TAG, hub().author(), NOW, &[], []);
        let mut bytes = s.sign(&hub());
        bytes[0] = 1;
        match Summary::open(&bytes, &TAG) {
            Err(SummaryError::Decode(DecodeError::Version {
                version: 1,
                supported,
                ..
            })) => assert_eq!(supported, "2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tombstones_open_only_in_a_delta_and_a_delta_only_on_its_own_base() {
        let old = sorted((0..6).map(|n| item(n, u64::from(n) * 3 * HOUR)).collect());
        // Event 5 (15 hours old) is deleted; event 9 arrives.
        let new = sorted(old[1..].iter().copied().chain([item(9, 20_000)]).collect());
        let base = Summary::make(TAG, hub().author(), NOW, &old, []);
        let full = Summary::make(TAG, hub().author(), NOW + 30_000, &new, [id(9)]);
        let d = full.delta(&base);
        assert!(d.is_delta() && d.base_ms == NOW);
        assert!(d.buckets.iter().any(|b| b.count == 0), "a tombstone: {d:?}");
        let opened = Summary::open(&d.sign(&hub()), &TAG).unwrap();
        assert_eq!(opened.apply(&base).unwrap(), full);
        // A tombstone in a full summary is refused; so is one with a fingerprint.
        let mut bad = full.clone();
        bad.buckets.insert(
            0,
            Bucket {
                start_ms: 0,
                end_ms: 1,
                count: 0,
                fp: [0; 8],
            },
        );
        assert_eq!(
            Summary::open(&bad.sign(&hub()), &TAG),
            Err(SummaryError::Inconsistent("an empty bucket is listed"))
        );
        let mut bad = d.clone();
        bad.buckets.insert(
            0,
            Bucket {
                start_ms: 0,
                end_ms: 1,
                count: 0,
                fp: [1; 8],
            },
        );
        assert_eq!(
            Summary::open(&bad.sign(&hub()), &TAG),
            Err(SummaryError::Inconsistent("a tombstone has a fingerprint"))
        );
        // A delta not newer than its base.
        let mut bad = d.clone();
        bad.base_ms = bad.made_ms;
        assert!(matches!(
            Summary::open(&bad.sign(&hub()), &TAG),
            Err(SummaryError::Inconsistent(_))
        ));
        // Applied to another base, to a delta, or not adding up: refused.
        let other = Summary::make(TAG, hub().author(), NOW - 1, &old, []);
        assert!(d.apply(&other).is_err());
        assert!(d.apply(&d).is_err());
        assert!(full.apply(&base).is_err(), "a full summary is not a delta");
        let mut short = d.clone();
        short.count += 1;
        assert_eq!(
            short.apply(&base),
            Err(SummaryError::Inconsistent(
                "the delta and its base do not add up to the count"
            ))
        );
        let foreign = Summary::make(TAG, Identity::from_seed([4; 32]).author(), NOW, &old, []);
        assert!(d.apply(&foreign).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Buckets tile time: every time falls in the bucket that contains it, and
        /// two times in one bucket get the same bucket.
        #[test]
        fn every_time_falls_in_its_own_bucket(age in 0u64..900 * DAY, made in 0u64..2 * DAY) {
            let made_ms = NOW + made;
            let ms = made_ms.saturating_sub(age);
            let (s, e) = bucket_of(ms, made_ms);
            prop_assert!(s <= ms && ms < e);
            prop_assert_eq!(bucket_of(s, made_ms), (s, e));
            prop_assert_eq!(bucket_of(e - 1, made_ms), (s, e));
        }

        /// Never a false claim: whatever the two sets, an event the summary confirms
        /// is held by the hub. And a hub holding all we hold confirms all of it.
        #[test]
        fn a_summary_confirms_only_what_its_hub_holds(
            common in prop::collection::vec(0u32..5000, 0..60),
            only_ours in prop::collection::vec(5000u32..10_000, 0..10),
            only_hub in prop::collection::vec(10_000u32..15_000, 0..10),
            recent in prop::collection::vec(10_000u32..15_000, 0..5),
        ) {
            // An id fixes its time; times cluster in 6 hours so buckets are shared.
            let at = |n: &u32| item(*n, u64::from(*n) * 7919 % (6 * HOUR));
            let c: Vec<_> = common.iter().map(at).collect();
            let ours = sorted(c.iter().copied().chain(only_ours.iter().map(at)).collect());
            let theirs = sorted(c.iter().copied().chain(only_hub.iter().map(at)).collect());
            let held: BTreeSet<EventId> = theirs.iter().map(|(_, i)| *i).collect();
            let recent_ids: Vec<EventId> = recent.iter().map(|n| id(*n)).filter(|i| held.contains(i)).collect();
            let s = Summary::make(TAG, hub().author(), NOW, &theirs, recent_ids);
            let s = Summary::open(&s.sign(&hub()), &TAG).unwrap();
            for (ts, i) in &ours {
                if s.confirms(&ours, *ts, i) {
                    prop_assert!(held.contains(i), "claimed an event the hub lacks");
                }
                if only_hub.is_empty() && only_ours.is_empty() {
                    prop_assert!(s.confirms(&ours, *ts, i), "missed an event of an equal set");
                }
            }
            let ours_only: BTreeSet<EventId> = ours.iter().map(|(_, i)| *i).filter(|i| !held.contains(i)).collect();
            let behind = s.behind(&s.check(&ours), ours.len() as u64);
            prop_assert!(behind <= ours_only.len() as u64);
        }
        /// A delta against an older full summary gives the newer full one back,
        /// whatever was added or deleted and however far the grid moved; and when
        /// only a few recent buckets changed it is smaller than the full one.
        #[test]
        fn a_delta_applied_to_its_base_is_the_full_summary(
            kept in prop::collection::vec(0u32..4000, 0..80),
            deleted in prop::collection::vec(4000u32..6000, 0..20),
            added in prop::collection::vec(6000u32..8000, 0..20),
            spread in prop::sample::select(vec![10 * MINUTE, 6 * HOUR, 3 * DAY, 90 * DAY, 400 * DAY]),
            later in prop::sample::select(vec![1_000u64, 40_000, 11 * MINUTE, 3 * HOUR, 2 * DAY + 1, 45 * DAY]),
        ) {
            let t0 = NOW;
            let t1 = NOW + later;
            // An id fixes its time; some of the added ones are younger than the base.
            let at = |n: &u32, now: u64| {
                let age = u64::from(*n).wrapping_mul(7_919_333) % spread;
                (Timestamp::from_millis(now - age), id(*n))
            };
            let a = sorted(kept.iter().chain(&deleted).map(|n| at(n, t0)).collect());
            let b = sorted(
                kept.iter().map(|n| at(n, t0)).chain(added.iter().map(|n| at(n, t1))).collect(),
            );
            let base = Summary::make(TAG, hub().author(), t0, &a, []);
            let full = Summary::make(TAG, hub().author(), t1, &b, added.iter().map(|n| id(*n)));
            let d = full.delta(&base);
            let opened = Summary::open(&d.sign(&hub()), &TAG).unwrap();
            prop_assert_eq!(opened.apply(&base).unwrap(), full.clone());
            if deleted.is_empty() {
                // No tombstones: at most the 5 bytes of `base_ms` more.
                prop_assert!(d.body().len() <= full.body().len() + 5);
            }
        }

        /// A long history and a few new events: the delta is a small part of the full.
        #[test]
        fn a_delta_of_a_few_new_events_is_small(
            old in prop::collection::vec(0u32..100_000, 30..200),
            added in prop::collection::vec(100_000u32..101_000, 0..4),
            later in 1_000u64..5 * MINUTE,
        ) {
            // History 3 to 50 days old (day buckets that do not move in 5 minutes).
            let at_age = |n: &u32| item(*n, 3 * DAY + u64::from(*n) * 7_919_333 % (47 * DAY));
            let a = sorted(old.iter().map(at_age).collect());
            let recent = |n: &u32| (Timestamp::from_millis(NOW + later - u64::from(*n) % 60_000), id(*n));
            let b = sorted(a.iter().copied().chain(added.iter().map(recent)).collect());
            let base = Summary::make(TAG, hub().author(), NOW, &a, []);
            let full = Summary::make(TAG, hub().author(), NOW + later, &b, []);
            let d = full.delta(&base);
            prop_assert!(d.buckets.len() <= added.len());
            prop_assert!(d.body().len() < full.body().len(), "{} >= {}", d.body().len(), full.body().len());
            prop_assert_eq!(d.apply(&base).unwrap(), full);
        }
    }
}
