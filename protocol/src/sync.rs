//! Catch-up sync: range-based set reconciliation over `(timestamp, id)` items, then
//! fetching missing events by id in bounded batches.
//!
//! Gossip only reaches nodes that are online; whatever a node missed while away is found
//! here. The initiator sends [`SyncRequest::Reconcile`] with a negentropy message; the
//! responder answers statelessly from its own set; after a few rounds the initiator
//! knows which ids each side lacks. It then sends [`SyncRequest::Fetch`] for what it
//! needs (the responder runs its own round the other way for what it lacks). Bytes on
//! the wire grow with the size of the difference, not of the set.
//!
//! Every sync message carries a version byte and is size-checked before decoding.
//! Reconcile messages in both directions also carry the sender's *uncorrected* wall
//! clock (corrected values would feed the median back into itself); it feeds
//! [`crate::MeshClock`].

use std::sync::Arc;

use negentropy::{Bound, Id, Item, Negentropy, NegentropyStorageBase, NegentropyStorageVector};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::DecodeError;
use crate::event::{EventId, MAX_EVENT_BYTES};
use crate::time::Timestamp;

/// Version byte in front of every sync message.
pub const SYNC_VERSION: u8 = 1;

/// Largest negentropy message either side produces (negentropy's frame size limit).
pub const RECONCILE_FRAME_LIMIT: usize = 60_000;

/// Most ids in one fetch request.
pub const MAX_FETCH_IDS: usize = 256;

/// Most bytes of events in one fetch response; the responder stops adding events
/// before this (a 256-event batch of typical 300-byte events is about 80 KB).
pub const MAX_EVENTS_RESPONSE_BYTES: usize = 1024 * 1024;

/// Hard limit on any encoded sync message, checked before decoding.
pub const MAX_SYNC_MESSAGE: usize = MAX_EVENTS_RESPONSE_BYTES + MAX_EVENT_BYTES + 4096;

/// Why a sync step failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SyncError {
    /// The message did not decode or broke a limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// negentropy rejected the reconciliation message.
    #[error("set reconciliation failed: {0}")]
    Reconcile(String),
}

fn reconcile_err(e: negentropy::Error) -> SyncError {
    SyncError::Reconcile(e.to_string())
}

/// A request from the initiating node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// One round of set reconciliation.
    Reconcile {
        /// Sender's wall clock, ms since the epoch.
        wall_ms: u64,
        /// negentropy message, at most [`RECONCILE_FRAME_LIMIT`] bytes.
        message: Vec<u8>,
    },
    /// Send me these events (at most [`MAX_FETCH_IDS`]).
    Fetch {
        /// Wanted ids.
        ids: Vec<EventId>,
    },
}

/// The answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's negentropy message for this round.
    Reconcile {
        /// Responder's wall clock, ms since the epoch.
        wall_ms: u64,
        /// negentropy message, at most [`RECONCILE_FRAME_LIMIT`] bytes.
        message: Vec<u8>,
    },
    /// Wire bytes of the requested events the responder holds, in request order, up to
    /// [`MAX_EVENTS_RESPONSE_BYTES`]. Ids it lacks (or has erased by redaction) are
    /// left out; the requester asks again for any it still wants.
    Events {
        /// Each entry is one event's wire bytes.
        events: Vec<Vec<u8>>,
    },
    /// The responder will not serve this request (busy, or the request broke a rule).
    Refused {
        /// Why, for the log.
        reason: String,
    },
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![SYNC_VERSION];
    // Serialising plain enums into a Vec cannot fail.
    out.extend(postcard::to_stdvec(v).unwrap_or_default());
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, DecodeError> {
    if bytes.len() > MAX_SYNC_MESSAGE {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max: MAX_SYNC_MESSAGE,
        });
    }
    let Some((&version, rest)) = bytes.split_first() else {
        return Err(DecodeError::Truncated { what, len: 0 });
    };
    if version != SYNC_VERSION {
        return Err(DecodeError::Version {
            what,
            version,
            supported: "1",
        });
    }
    let (v, tail) = postcard::take_from_bytes(rest).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !tail.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: tail.len(),
        });
    }
    Ok(v)
}

fn limit(what: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::TooLarge { what, len, max });
    }
    Ok(())
}

impl SyncRequest {
    /// Wire bytes: version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses and bounds-checks a request.
    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, DecodeError> {
        let r: SyncRequest = decode(bytes, "sync request")?;
        match &r {
            SyncRequest::Reconcile { message, .. } => {
                limit("reconcile message", message.len(), RECONCILE_FRAME_LIMIT)?
            }
            SyncRequest::Fetch { ids } => limit("fetch id list", ids.len(), MAX_FETCH_IDS)?,
        }
        Ok(r)
    }
}

impl SyncResponse {
    /// Wire bytes: version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses and bounds-checks a response. Events inside are *not* validated here;
    /// each goes through [`crate::validate()`].
    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, DecodeError> {
        let r: SyncResponse = decode(bytes, "sync response")?;
        match &r {
            SyncResponse::Reconcile { message, .. } => {
                limit("reconcile message", message.len(), RECONCILE_FRAME_LIMIT)?
            }
            SyncResponse::Events { events } => {
                limit("events in response", events.len(), MAX_FETCH_IDS)?;
                for e in events {
                    limit("event", e.len(), MAX_EVENT_BYTES)?;
                }
            }
            SyncResponse::Refused { reason } => limit("refusal reason", reason.len(), 1024)?,
        }
        Ok(r)
    }
}

/// A node's set of `(timestamp, id)` items, sorted and sealed for reconciliation.
///
/// Immutable once built and shared: cloning a `SyncSet` clones a pointer, so any
/// number of concurrent sessions (initiating or responding) read one copy of the
/// items rather than one each.
#[derive(Debug, Clone)]
pub struct SyncSet {
    storage: Shared,
}

/// The sealed items behind an [`Arc`]: negentropy's storage trait delegated, so an
/// [`Initiator`] can own a handle to the set without copying it.
#[derive(Debug, Clone)]
struct Shared(Arc<NegentropyStorageVector>);

impl NegentropyStorageBase for Shared {
    fn size(&self) -> Result<usize, negentropy::Error> {
        self.0.size()
    }

    fn get_item(&self, i: usize) -> Result<Option<Item>, negentropy::Error> {
        self.0.get_item(i)
    }

    fn iterate(
        &self,
        begin: usize,
        end: usize,
        cb: &mut dyn FnMut(Item, usize) -> Result<bool, negentropy::Error>,
    ) -> Result<(), negentropy::Error> {
        self.0.iterate(begin, end, cb)
    }

    fn find_lower_bound(&self, first: usize, last: usize, value: &Bound) -> usize {
        self.0.find_lower_bound(first, last, value)
    }
}

impl SyncSet {
    /// Builds the set. Duplicates are harmless.
    pub fn new(items: impl IntoIterator<Item = (Timestamp, EventId)>) -> Result<Self, SyncError> {
        let items = items.into_iter();
        // Sized from the iterator (exact for a vector): a set grown by doubling kept up
        // to a third more than its 40 bytes an item. `seal` sorts and drops duplicates.
        let mut storage = NegentropyStorageVector::with_capacity(items.size_hint().0);
        for (ts, id) in items {
            storage
                .insert(ts.0, Id::from_byte_array(id.0))
                .map_err(reconcile_err)?;
        }
        storage.seal().map_err(reconcile_err)?;
        Ok(SyncSet {
            storage: Shared(Arc::new(storage)),
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.storage.size().unwrap_or(0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers one reconciliation round as the responder. Stateless: every round
    /// carries all the context negentropy needs.
    pub fn respond(&self, query: &[u8]) -> Result<Vec<u8>, SyncError> {
        let mut neg = Negentropy::borrowed(&self.storage, RECONCILE_FRAME_LIMIT as u64)
            .map_err(reconcile_err)?;
        neg.reconcile(query).map_err(reconcile_err)
    }
}

/// What one initiator round found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Ids we hold that the peer lacks.
    pub have: Vec<EventId>,
    /// Ids the peer holds that we lack.
    pub need: Vec<EventId>,
    /// The next message to send, or `None` when reconciliation is complete.
    pub next: Option<Vec<u8>>,
}

/// The initiating side of one reconciliation.
pub struct Initiator {
    neg: Negentropy<'static, Shared>,
}

impl Initiator {
    /// Starts a reconciliation of `set`; returns the first message to send. The
    /// initiator keeps a handle to the shared set, not a copy of it.
    pub fn start(set: SyncSet) -> Result<(Initiator, Vec<u8>), SyncError> {
        let mut neg =
            Negentropy::owned(set.storage, RECONCILE_FRAME_LIMIT as u64).map_err(reconcile_err)?;
        let first = neg.initiate().map_err(reconcile_err)?;
        Ok((Initiator { neg }, first))
    }

    /// Feeds the responder's answer; returns the ids found and the next message.
    pub fn step(&mut self, response: &[u8]) -> Result<Round, SyncError> {
        let mut have = Vec::new();
        let mut need = Vec::new();
        let next = self
            .neg
            .reconcile_with_ids(response, &mut have, &mut need)
            .map_err(reconcile_err)?;
        Ok(Round {
            have: have.into_iter().map(|i| EventId(*i)).collect(),
            need: need.into_iter().map(|i| EventId(*i)).collect(),
            next,
        })
    }
}

/// Digest of a set of ids: BLAKE3 over the ids in ascending order. Two nodes holding
/// the same events show the same digest. The caller passes ids sorted and unique.
pub fn digest<'a>(sorted_ids: impl IntoIterator<Item = &'a EventId>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for id in sorted_ids {
        h.update(&id.0);
    }
    *h.finalize().as_bytes()
}

/// The held ids in ascending order, kept as events come and go, so that [`digest`]
/// after a change costs one pass over the ids (merging the few that changed, then
/// hashing) instead of a sort of every id: at a million events the sort made the first
/// status after each new event take 685 ms (issue 28). [`SortedIds::digest`] is
/// byte-identical to [`digest`] over the same set (docs/protocol.md §8.7), whatever
/// the order of the changes.
///
/// Changes since the last fold wait in a log (in the order they were made) and are
/// folded in by the next [`SortedIds::digest`], or once the log grows past a quarter
/// of the ids, so a long ingest with no one asking keeps the log bounded.
#[derive(Debug, Clone, Default)]
pub struct SortedIds {
    /// Ascending, unique.
    sorted: Vec<EventId>,
    /// Changes not yet in `sorted`, oldest first: `true` inserts, `false` removes.
    log: Vec<(EventId, bool)>,
}

impl SortedIds {
    /// The set of `ids`, given in any order (repeats count once).
    pub fn new(ids: impl IntoIterator<Item = EventId>) -> SortedIds {
        let mut sorted: Vec<EventId> = ids.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        SortedIds {
            sorted,
            log: Vec::new(),
        }
    }

    /// Adds `id` (no change if it is there already).
    pub fn insert(&mut self, id: EventId) {
        self.note(id, true);
    }

    /// Removes `id` (no change if it is not there).
    pub fn remove(&mut self, id: EventId) {
        self.note(id, false);
    }

    fn note(&mut self, id: EventId, present: bool) {
        self.log.push((id, present));
        if self.log.len() > (self.sorted.len() / 4).max(4096) {
            self.fold();
        }
    }

    /// Number of ids.
    pub fn len(&mut self) -> usize {
        self.fold();
        self.sorted.len()
    }

    /// Whether there is none.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The ids, ascending.
    pub fn ids(&mut self) -> &[EventId] {
        self.fold();
        &self.sorted
    }

    /// [`digest`] of the set.
    pub fn digest(&mut self) -> [u8; 32] {
        self.fold();
        // Hashed in blocks of 16 KB, so BLAKE3 hashes several chunks at once.
        const BLOCK: usize = 512;
        let mut h = blake3::Hasher::new();
        let mut buf = Vec::with_capacity(BLOCK * 32);
        for ids in self.sorted.chunks(BLOCK) {
            buf.clear();
            for id in ids {
                buf.extend_from_slice(&id.0);
            }
            h.update(&buf);
        }
        *h.finalize().as_bytes()
    }

    /// Applies the log to `sorted`, in place: removals by one pass, insertions by one
    /// merge from the back.
    fn fold(&mut self) {
        if self.log.is_empty() {
            return;
        }
        let mut log = std::mem::take(&mut self.log);
        // Stable: for each id, its changes stay in the order they were made; the last
        // one decides.
        log.sort_by_key(|(id, _)| *id);
        let mut last: Vec<(EventId, bool)> = Vec::with_capacity(log.len());
        for (id, present) in log {
            match last.last_mut() {
                Some((l, p)) if *l == id => *p = present,
                _ => last.push((id, present)),
            }
        }
        let held = |sorted: &[EventId], id: &EventId| sorted.binary_search(id).is_ok();
        let gone: Vec<EventId> = last
            .iter()
            .filter(|(id, present)| !present && held(&self.sorted, id))
            .map(|(id, _)| *id)
            .collect();
        if !gone.is_empty() {
            self.sorted.retain(|id| gone.binary_search(id).is_err());
        }
        let new: Vec<EventId> = last
            .iter()
            .filter(|(id, present)| *present && !held(&self.sorted, id))
            .map(|(id, _)| *id)
            .collect();
        if new.is_empty() {
            return;
        }
        // Merge from the back into the grown vector: each old id moves once.
        let old = self.sorted.len();
        if self.sorted.capacity() < old + new.len() {
            // Room for a few more folds, not double (a million ids are 32 MB).
            self.sorted.reserve_exact(new.len() + old / 32 + 64);
        }
        self.sorted.resize(old + new.len(), EventId([0; 32]));
        let (mut i, mut j, mut k) = (old, new.len(), old + new.len());
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > new[j - 1] {
                self.sorted[k - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k - 1] = new[j - 1];
                j -= 1;
            }
            k -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn id(n: u32) -> EventId {
        EventId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    /// Runs a full reconciliation in memory; returns (have, need, bytes exchanged).
    fn reconcile(
        a: &[(Timestamp, EventId)],
        b: &[(Timestamp, EventId)],
    ) -> (BTreeSet<EventId>, BTreeSet<EventId>, usize) {
        let set_b = SyncSet::new(b.iter().copied()).unwrap();
        let (mut init, mut msg) =
            Initiator::start(SyncSet::new(a.iter().copied()).unwrap()).unwrap();
        let (mut have, mut need, mut bytes) = (BTreeSet::new(), BTreeSet::new(), 0);
        loop {
            let req = SyncRequest::Reconcile {
                wall_ms: 0,
                message: msg,
            }
            .encode();
            bytes += req.len();
            let SyncRequest::Reconcile { message, .. } = SyncRequest::decode(&req).unwrap() else {
                unreachable!()
            };
            let resp = SyncResponse::Reconcile {
                wall_ms: 0,
                message: set_b.respond(&message).unwrap(),
            }
            .encode();
            bytes += resp.len();
            let SyncResponse::Reconcile { message, .. } = SyncResponse::decode(&resp).unwrap()
            else {
                unreachable!()
            };
            let round = init.step(&message).unwrap();
            have.extend(round.have);
            need.extend(round.need);
            match round.next {
                Some(m) => msg = m,
                None => return (have, need, bytes),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn reconciliation_finds_exactly_the_difference(
            common in 0u32..3000, only_a in 0u32..50, only_b in 0u32..50,
        ) {
            let item = |n: u32| (Timestamp(u64::from(n) * 7), id(n));
            let a: Vec<_> = (0..common).chain(100_000..100_000 + only_a).map(item).collect();
            let b: Vec<_> = (0..common).chain(200_000..200_000 + only_b).map(item).collect();
            let (have, need, _) = reconcile(&a, &b);
            let want_have: BTreeSet<_> = (100_000..100_000 + only_a).map(id).collect();
            let want_need: BTreeSet<_> = (200_000..200_000 + only_b).map(id).collect();
            prop_assert_eq!(have, want_have);
            prop_assert_eq!(need, want_need);
        }
    }

    #[test]
    fn equal_sets_confirm_in_a_few_hundred_bytes() {
        let items: Vec<_> = (0..20_000u32)
            .map(|n| (Timestamp(u64::from(n)), id(n)))
            .collect();
        let (have, need, bytes) = reconcile(&items, &items);
        assert!(have.is_empty() && need.is_empty());
        assert!(bytes < 5_000, "{bytes} bytes to confirm equal sets");
    }

    #[test]
    fn fetch_limits_are_enforced() {
        let too_many = SyncRequest::Fetch {
            ids: vec![EventId([0; 32]); MAX_FETCH_IDS + 1],
        }
        .encode();
        assert!(matches!(
            SyncRequest::decode(&too_many),
            Err(DecodeError::TooLarge { .. })
        ));
        let ok = SyncRequest::Fetch {
            ids: vec![EventId([0; 32]); 3],
        };
        assert_eq!(SyncRequest::decode(&ok.encode()).unwrap(), ok);
    }

    #[test]
    fn wrong_version_and_garbage_are_errors() {
        let mut b = SyncRequest::Fetch { ids: vec![] }.encode();
        b[0] = 9;
        assert!(matches!(
            SyncRequest::decode(&b),
            Err(DecodeError::Version { version: 9, .. })
        ));
        assert!(SyncResponse::decode(&[]).is_err());
        assert!(SyncResponse::decode(&[1, 0xff, 0xff, 0xff]).is_err());
        let big = vec![1u8; MAX_SYNC_MESSAGE + 1];
        assert!(matches!(
            SyncResponse::decode(&big),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_reconcile_messages_do_not_panic() {
        let set = SyncSet::new((0..100u32).map(|n| (Timestamp(u64::from(n)), id(n)))).unwrap();
        for seed in 0u8..=255 {
            let msg: Vec<u8> = (0..64u8)
                .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
                .collect();
            let _ = set.respond(&msg);
        }
    }

    proptest! {
        /// The kept ids give the spec's digest (docs/protocol.md §8.7) after any
        /// sequence of inserts and removals, in any order, with digests asked for
        /// between them.
        #[test]
        fn sorted_ids_digest_is_the_spec_digest(
            start in proptest::collection::vec(0u32..300, 0..200),
            ops in proptest::collection::vec((0u32..300, any::<bool>(), any::<bool>()), 0..400),
        ) {
            let mut kept = SortedIds::new(start.iter().map(|n| id(*n)));
            let mut model: BTreeSet<EventId> = start.iter().map(|n| id(*n)).collect();
            for (n, insert, ask) in ops {
                if insert {
                    kept.insert(id(n));
                    model.insert(id(n));
                } else {
                    kept.remove(id(n));
                    model.remove(&id(n));
                }
                if ask {
                    prop_assert_eq!(kept.digest(), digest(&model));
                }
            }
            prop_assert_eq!(kept.digest(), digest(&model));
            prop_assert_eq!(kept.len(), model.len());
            prop_assert!(kept.ids().iter().eq(model.iter()));
        }
    }

    /// The digest just after a change at a million held ids, as the store made it
    /// before (every id copied from the time index and sorted) and with
    /// [`SortedIds`] (issue 28). A measurement, not a check of speed:
    /// `cargo test --release -p aidmesh-protocol --lib -- --ignored --nocapture digest_after_a_change`
    #[test]
    #[ignore]
    fn digest_after_a_change_at_a_million_ids() {
        use std::time::Instant;
        let n = 1_000_000u32;
        let mut held: BTreeSet<(Timestamp, EventId)> =
            (0..n).map(|i| (Timestamp(u64::from(i)), id(i))).collect();
        let mut kept = SortedIds::new(held.iter().map(|(_, i)| *i));
        kept.digest();
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for round in 0..5u32 {
            let new = id(n + round);
            held.insert((Timestamp(u64::from(n + round)), new));
            let t = Instant::now();
            let mut ids: Vec<EventId> = held.iter().map(|(_, i)| *i).collect();
            ids.sort_unstable();
            let old = digest(&ids);
            before.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            kept.insert(new);
            let d = kept.digest();
            after.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(d, old);
        }
        before.sort_by(f64::total_cmp);
        after.sort_by(f64::total_cmp);
        println!(
            "digest after a change, {n} ids, median of 5: sort and hash {:.1} ms, SortedIds {:.1} ms",
            before[2], after[2]
        );
    }

    #[test]
    fn sorted_ids_fold_a_long_log_and_hash_past_one_block() {
        // More changes than the log keeps (4,096) and more ids than one hashing block.
        let mut kept = SortedIds::default();
        let mut model = BTreeSet::new();
        for n in (0..10_000u32).rev() {
            kept.insert(id(n));
            model.insert(id(n));
        }
        for n in (0..10_000u32).step_by(7) {
            kept.remove(id(n));
            model.remove(&id(n));
        }
        assert_eq!(kept.digest(), digest(&model));
        assert_eq!(SortedIds::default().digest(), digest(&BTreeSet::new()));
    }

    #[test]
    fn digest_is_blake3_over_the_ascending_ids() {
        // docs/protocol.md §8.7, including its value for the empty set.
        let empty = blake3::Hash::from_hex(
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        )
        .unwrap();
        assert_eq!(digest(&BTreeSet::new()), *empty.as_bytes());
        let ids: BTreeSet<EventId> = (0..10).map(id).collect();
        let joined: Vec<u8> = ids.iter().flat_map(|i| i.0).collect();
        assert_eq!(digest(&ids), *blake3::hash(&joined).as_bytes());
        // Every id counts, and so does the order: callers must pass the ids sorted (that
        // nodes holding the same set show the same digest, whatever the arrival order,
        // is checked across real nodes by the convergence tests in tests/).
        let fewer: BTreeSet<EventId> = (0..9).map(id).collect();
        assert_ne!(digest(&ids), digest(&fewer));
        assert_ne!(digest(&ids), digest(ids.iter().rev()));
    }
}
