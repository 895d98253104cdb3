//! The map the view keeps its needs and offers in: one sorted vector, with the latest
//! inserts in a small B-tree until they are merged in (issue 28). A `BTreeMap` of
//! 100,000 or 1,000,000 records costs its key and value plus about a third more in
//! node headers and, when filled in random key order (ids), nodes only two-thirds
//! full; the vector costs the key and value alone.

use std::collections::BTreeMap;
use std::iter::Peekable;

use serde::{Deserialize, Serialize};

/// Inserts kept in the B-tree before a merge: at least this many...
#[cfg(not(test))]
const MIN_RECENT: usize = 1024;
/// (In tests, few: the view's property tests, with a few dozen events, then merge too.)
#[cfg(test)]
const MIN_RECENT: usize = 3;
/// ... or one for every this many entries in the vector. Each merge moves every
/// entry once, so a map filled from empty moves each entry about this many times
/// plus one, while the B-tree never holds more than this share of the entries.
const RECENT_SHARE: usize = 8;

/// A map of `Copy` keys and values as a sorted vector plus the latest inserts.
/// Serialised as both parts, as they are (the start file); a map read back must pass
/// [`SortedMap::is_well_formed`] before it is used.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Ord + Deserialize<'de>, V: Deserialize<'de>"
))]
pub(super) struct SortedMap<K, V> {
    /// Sorted by key, no key twice, none in `recent`.
    sorted: Vec<(K, V)>,
    recent: BTreeMap<K, V>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            sorted: Vec::new(),
            recent: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, V: Copy> SortedMap<K, V> {
    pub(super) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub(super) fn get(&self, k: &K) -> Option<&V> {
        match self.sorted.binary_search_by(|(x, _)| x.cmp(k)) {
            Ok(i) => Some(&self.sorted[i].1),
            Err(_) => self.recent.get(k),
        }
    }

    /// Inserts or replaces the value of `k`.
    pub(super) fn insert(&mut self, k: K, v: V) {
        match self.sorted.binary_search_by(|(x, _)| x.cmp(&k)) {
            Ok(i) => self.sorted[i].1 = v,
            Err(_) => {
                self.recent.insert(k, v);
                if self.recent.len() > MIN_RECENT.max(self.sorted.len() / RECENT_SHARE) {
                    self.merge();
                }
            }
        }
    }

    /// Moves every recent insert into the vector, which grows by exactly that many
    /// (a large vector is grown in place by the allocator, not copied).
    pub(super) fn merge(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let add: Vec<(K, V)> = std::mem::take(&mut self.recent).into_iter().collect();
        let old = self.sorted.len();
        self.sorted.reserve_exact(add.len());
        self.sorted.extend_from_slice(&add);
        // Merge from the back: each old entry moves once, to its final place.
        let (mut i, mut j, mut w) = (old, add.len(), self.sorted.len());
        while j > 0 {
            if i > 0 && self.sorted[i - 1].0 > add[j - 1].0 {
                self.sorted[w - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[w - 1] = add[j - 1];
                j -= 1;
            }
            w -= 1;
        }
    }

    /// Whether the vector is sorted with no key twice and no key also in the B-tree:
    /// what every answer relies on, checked on a map read from outside.
    pub(super) fn is_well_formed(&self) -> bool {
        self.sorted.windows(2).all(|w| w[0].0 < w[1].0)
            && self
                .recent
                .keys()
                .all(|k| self.sorted.binary_search_by(|(x, _)| x.cmp(k)).is_err())
    }

    /// Merges and hands back the vector's spare room: for after a bulk load.
    pub(super) fn pack(&mut self) {
        self.merge();
        self.sorted.shrink_to_fit();
    }

    /// Every entry, in key order.
    pub(super) fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            sorted: self.sorted.iter().peekable(),
            recent: self.recent.iter().peekable(),
        }
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Every value, in no particular order, to change in place.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        let sorted = self.sorted.iter_mut().map(|(_, v)| v);
        sorted.chain(self.recent.values_mut())
    }
}

/// [`SortedMap::iter`]: the vector's and the B-tree's entries merged in key order.
pub(super) struct Iter<'a, K, V> {
    sorted: Peekable<std::slice::Iter<'a, (K, V)>>,
    recent: Peekable<std::collections::btree_map::Iter<'a, K, V>>,
}

impl<'a, K: Ord, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let from_sorted = match (self.sorted.peek(), self.recent.peek()) {
            (Some((a, _)), Some((b, _))) => a < *b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_sorted {
            self.sorted.next().map(|(k, v)| (k, v))
        } else {
            self.recent.next()
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.sorted.len() + self.recent.len();
        (n, Some(n))
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SortedMap<K, V>
where
    K: Copy,
    V: Copy,
{
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the inserts (repeats included) and wherever merges fall, the map
        /// answers as a `BTreeMap` given the same inserts.
        #[test]
        fn a_sorted_map_answers_as_a_btree_map(
            inserts in proptest::collection::vec((0u32..5_000, any::<u16>()), 0..6_000),
            pack_at in any::<prop::sample::Index>(),
        ) {
            let mut m = SortedMap::default();
            let mut want = BTreeMap::new();
            let pack_at = pack_at.index(inserts.len() + 1);
            for (n, (k, v)) in inserts.iter().enumerate() {
                if n == pack_at {
                    m.pack();
                }
                m.insert(*k, *v);
                want.insert(*k, *v);
            }
            prop_assert_eq!(m.len(), want.len());
            let got: Vec<(u32, u16)> = m.iter().map(|(k, v)| (*k, *v)).collect();
            let exp: Vec<(u32, u16)> = want.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, exp);
            for k in 0..5_000u32 {
                prop_assert_eq!(m.get(&k), want.get(&k));
            }
            prop_assert_eq!(m.iter().size_hint(), (want.len(), Some(want.len())));
        }
    }
}
