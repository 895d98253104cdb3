//! Reading a [`SyncIndex`] by time without changing it: what the node's delivery
//! counts read (the events held in a time range, how many, where the next one is)
//! from the one copy of the held ids, instead of keeping a second copy of every
//! `(timestamp, id)` of their own (issue 28: 40 bytes an event, 40 MB at a million).
//!
//! None of these folds the pending changes in: a fold while a sync session holds a
//! snapshot copies the whole index, and delivery reads often. They merge the sorted
//! items with the few thousand pending changes as they go.

use std::ops::Bound;

use super::{SyncIndex, SyncItem};
use crate::{EventId, Timestamp};

/// The least item stamped at or after `ms`.
fn lowest(ms: u64) -> SyncItem {
    (Timestamp::from_millis(ms), EventId([0; 32]))
}

impl SyncIndex {
    /// The items stamped in `[start_ms, end_ms)` (milliseconds), sorted.
    pub fn range_ms(&self, start_ms: u64, end_ms: u64) -> Vec<SyncItem> {
        if end_ms <= start_ms {
            return Vec::new();
        }
        let lo = self.base.partition_point(|(t, _)| t.millis() < start_ms);
        let hi = lo + self.base[lo..].partition_point(|(t, _)| t.millis() < end_ms);
        let mut added = self
            .added
            .range((Bound::Included(lowest(start_ms)), Bound::Unbounded))
            .take_while(|(t, _)| t.millis() < end_ms)
            .peekable();
        let mut out = Vec::with_capacity(hi - lo);
        for x in &self.base[lo..hi] {
            while let Some(a) = added.next_if(|a| *a < x) {
                out.push(*a);
            }
            if !self.removed.contains(x) {
                out.push(*x);
            }
        }
        out.extend(added);
        out
    }

    /// How many items are stamped in `[start_ms, end_ms)`: two searches and the
    /// pending changes in the range, no pass over the items.
    pub fn count_ms(&self, start_ms: u64, end_ms: u64) -> usize {
        if end_ms <= start_ms {
            return 0;
        }
        let lo = self.base.partition_point(|(t, _)| t.millis() < start_ms);
        let hi = lo + self.base[lo..].partition_point(|(t, _)| t.millis() < end_ms);
        let pending = |set: &std::collections::BTreeSet<SyncItem>| {
            set.range((Bound::Included(lowest(start_ms)), Bound::Unbounded))
                .take_while(|(t, _)| t.millis() < end_ms)
                .count()
        };
        hi - lo + pending(&self.added) - pending(&self.removed)
    }

    /// The stamp (in milliseconds) of the first item stamped at or after `ms`.
    pub fn first_from_ms(&self, ms: u64) -> Option<u64> {
        let lo = self.base.partition_point(|(t, _)| t.millis() < ms);
        // The first base item not removed (removals are few: at most the pending
        // bound, so this skips at most that many).
        let in_base = self.base[lo..]
            .iter()
            .find(|x| !self.removed.contains(x))
            .map(|(t, _)| t.millis());
        let in_added = self
            .added
            .range((Bound::Included(lowest(ms)), Bound::Unbounded))
            .next()
            .map(|(t, _)| t.millis());
        match (in_base, in_added) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn item(ms: u64, n: u8) -> SyncItem {
        (Timestamp::from_millis(ms), EventId([n; 32]))
    }

    proptest! {
        /// Read by time, the index answers as a plain set of its items, whatever
        /// changes are pending or folded and whatever snapshots are alive.
        #[test]
        fn reads_by_time_answer_as_the_plain_set(
            start in proptest::collection::vec((0u64..60, 0u8..6), 0..40),
            ops in proptest::collection::vec((0u8..4, 0u64..60, 0u8..6), 0..80),
            queries in proptest::collection::vec((0u64..70, 0u64..70), 1..10),
        ) {
            let mut model: BTreeSet<SyncItem> =
                start.iter().map(|&(ms, n)| item(ms, n)).collect();
            let mut index = SyncIndex::new(model.iter().copied().collect());
            let mut kept = Vec::new();
            for (op, ms, n) in ops {
                let x = item(ms, n);
                match op {
                    0 | 1 => {
                        prop_assert_eq!(index.insert(x), model.insert(x));
                    }
                    2 => {
                        prop_assert_eq!(index.remove(&x), model.remove(&x));
                    }
                    _ => kept.push(index.snapshot()),
                }
                for &(a, b) in &queries {
                    let want: Vec<SyncItem> = model
                        .iter()
                        .filter(|(t, _)| (a..b).contains(&t.millis()))
                        .copied()
                        .collect();
                    prop_assert_eq!(index.range_ms(a, b), want.clone());
                    prop_assert_eq!(index.count_ms(a, b), want.len());
                    prop_assert_eq!(
                        index.first_from_ms(a),
                        model.iter().map(|(t, _)| t.millis()).find(|&m| m >= a)
                    );
                }
            }
        }
    }
}
