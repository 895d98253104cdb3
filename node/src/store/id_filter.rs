//! Which ids the store may hold or have erased, in memory: a Bloom filter
//! ([`fastbloom`]) over every id in `ids` and `erased`, so that asking for an id the
//! store has never seen reads no page of sled's (issue 28).
//!
//! A catch-up asks about every id it is about to fetch, nearly all of them unknown:
//! at a million events those look-ups in `ids` and `erased` (random keys in a tree
//! that outgrows sled's cache, each pinning sled's epoch) were 43–49 s of the
//! catch-up, on the one thread that also files the events. The filter answers
//! "never seen" from about 1.2 bytes an id; "maybe" (held, erased, or one false
//! positive in a hundred) still asks sled, so every answer stays exact.
//!
//! Ids are only ever added (an erased or expired id stays in: a superset is still
//! right). It is made at open from the time index and `erased`, and again after a
//! repair of `ids`. Ids are BLAKE3 hashes, so their first 8 bytes are the filter's
//! source hash as they are: an author grinding ids that collide there only buys
//! look-ups in sled, as before the filter.

use std::path::Path;

use aidmesh_protocol::sync::SyncIndex;
use aidmesh_protocol::EventId;
use fastbloom::BloomFilter;

use super::{StoreError, Trees};

/// Room of the first part at least, in ids.
const MIN_ROOM: usize = 1 << 16;
/// False positives of the part made at open.
const FIRST_FP: f64 = 0.01;
/// False positives of each part added as the store grows, lower so the parts
/// together stay near 3 % at the worst (a catch-up from empty to a million adds 5).
const LATER_FP: f64 = 0.005;

/// See the module doc.
#[derive(Debug)]
pub(super) struct IdFilter {
    /// Filters, the ids each was made for, and how many more it may take; ids go
    /// into the last one. Empty only for a store that answers every question from
    /// sled ([`IdFilter::off`]): any other starts with one part.
    parts: Vec<Part>,
}

fn source_hash(id: &EventId) -> u64 {
    let b = &id.0;
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[derive(Debug)]
struct Part {
    bits: BloomFilter,
    made_for: usize,
    room: usize,
}

fn part(ids: usize, fp: f64) -> Part {
    Part {
        bits: BloomFilter::with_false_pos(fp).expected_items(ids),
        made_for: ids,
        room: ids,
    }
}

impl IdFilter {
    /// A filter holding `ids`, with room for a quarter more before it grows.
    pub(super) fn new<'a>(len: usize, ids: impl IntoIterator<Item = &'a EventId>) -> IdFilter {
        let mut f = IdFilter {
            parts: vec![part((len + len / 4).max(MIN_ROOM), FIRST_FP)],
        };
        for id in ids {
            f.insert(id);
        }
        f
    }

    /// The filter of a database: every id of its time index `held` and of `erased`.
    pub(super) fn of(
        path: &Path,
        trees: &Trees,
        held: &mut SyncIndex,
    ) -> Result<IdFilter, StoreError> {
        let mut erased = Vec::new();
        for k in trees.erased.iter().keys() {
            let k = k.map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            // A malformed key is no id: nothing to add.
            if let Ok(id) = <[u8; 32]>::try_from(k.as_ref()) {
                erased.push(EventId(id));
            }
        }
        let items = held.items();
        let held_ids = items.iter().map(|(_, id)| id);
        Ok(IdFilter::new(
            items.len() + erased.len(),
            held_ids.chain(&erased),
        ))
    }

    /// No filter: every id may be held (a store opened for its settings only, which
    /// reads no time index).
    pub(super) fn off() -> IdFilter {
        IdFilter { parts: Vec::new() }
    }

    /// Adds `id` (before it is written, so that no reader finds it in sled while the
    /// filter says "never seen").
    pub(super) fn insert(&mut self, id: &EventId) {
        let Some(last) = self.parts.last() else {
            return; // off
        };
        if last.room == 0 {
            // Twice the last part's ids: a store that grows to n ids has about
            // log2(n / MIN_ROOM) parts.
            let next = part(last.made_for * 2, LATER_FP);
            self.parts.push(next);
        }
        if let Some(p) = self.parts.last_mut() {
            p.bits.insert_hash(source_hash(id));
            p.room -= 1;
        }
    }

    /// `false` if `id` was never added: neither held nor erased. `true` if it may have
    /// been (ask sled).
    pub(super) fn may_hold(&self, id: &EventId) -> bool {
        if self.parts.is_empty() {
            return true; // off
        }
        let h = source_hash(id);
        self.parts.iter().any(|p| p.bits.contains_hash(h))
    }

    /// Bytes of the filter's bits.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.parts.iter().map(|p| p.bits.num_bits() / 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> EventId {
        EventId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    #[test]
    fn every_added_id_may_be_held_and_few_others_are() {
        let mut f = IdFilter::new(1000, (0..1000).map(id).collect::<Vec<_>>().iter());
        // Grows well past its first part (several parts).
        for n in 1000..300_000 {
            f.insert(&id(n));
        }
        assert!(f.parts.len() >= 3, "{} parts", f.parts.len());
        assert!(
            (0..300_000).all(|n| f.may_hold(&id(n))),
            "an added id said never seen"
        );
        let false_pos = (1_000_000..1_100_000)
            .filter(|&n| f.may_hold(&id(n)))
            .count();
        assert!(false_pos < 3_000, "{false_pos} false positives in 100,000");
        // About 1.2 to 1.4 bytes an id the parts were made for, which is up to
        // twice the ids added.
        assert!(f.bytes() < 300_000 * 5 / 2, "{} bytes", f.bytes());
    }

    #[test]
    fn an_off_filter_says_maybe_to_everything() {
        let f = IdFilter::off();
        assert!(f.may_hold(&id(1)));
    }
}
