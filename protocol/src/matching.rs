//! Matching offers to open needs: how a hub copes with volunteer convergence. Ten
//! offers of blankets and one need for insulin must not look alike, so needs come most
//! urgent first, and each lists only offers that could actually meet it.
//!
//! An offer can meet a need when both are active and not expired, they share a
//! category, the offer's quantity covers the need's (when both give one, in the same
//! unit), and, when both have coordinates, they are within [`NEARBY_M`].
//!
//! ## Bounded work
//! A crowded hub holds thousands of needs and offers, often in one category, so the
//! answer is bounded: each need keeps only its best `k` candidates (and says how many
//! there were), and needs come in pages ([`Matcher::page`]) keyed by a [`NeedKey`] so
//! that a page boundary is stable while the board changes. [`Matcher::new`] indexes
//! offers by category and, within one, by latitude, so a need with coordinates only
//! measures the offers in a 10 km band of latitude instead of every offer. Memory is
//! O(needs + offers) for the index plus O(candidates of one need) while one need is
//! ranked; nothing is O(needs × offers).
//!
//! The result is deterministic: the candidate order is a total order (it ends with the
//! offer id), and the bounded list is exactly the first `k` of the full sorted list,
//! which the property tests below check against the plain all-pairs definition.
//!
//! ## Allocation
//! An offer with a quantity is not promised to more needs than it covers. Needs are
//! walked in need order (most urgent first); a need with a quantity is promised to its
//! best candidate among the offers with a quantity in the same unit, and that offer's
//! quantity *left* drops by the need's quantity. For every later need the offer counts
//! only with what is left: it is a candidate only while what is left covers the need.
//! Needs or offers without a quantity, or in different units, promise nothing (a need
//! for "blankets" does not say how many). Every candidate carries what is left of it
//! for that need, so the match view shows it. A need's promise depends only on the
//! needs before it, so a page allocates for the needs up to its end (each over its own
//! latitude band): the first page stays cheap, the last costs what a full listing
//! costs.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::body::{BodyKind, Coords, Urgency};
use crate::category::Category;
use crate::event::EventId;
use crate::time::Timestamp;
use crate::view::Item;

/// How far apart a need and an offer may be, when both have coordinates: 10 km.
pub const NEARBY_M: f64 = 10_000.0;

/// Candidates listed per need unless the caller asks for another number.
pub const DEFAULT_PER_NEED: usize = 5;

/// The most candidates listed per need.
pub const MAX_PER_NEED: usize = 20;

/// Half-width of the latitude band searched around a need, in 1e-7 degrees: a
/// great-circle distance is at least the earth's radius times the latitude difference,
/// so nothing outside the band is within [`NEARBY_M`]. The extra 1,000 (about 11 m)
/// covers rounding; the exact distance is checked afterwards anyway.
const BAND_E7: i64 = (NEARBY_M / (6_371_000.0 * std::f64::consts::PI / 180.0) * 1e7) as i64 + 1_000;

/// One candidate offer for a need.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    /// The offer.
    pub offer: &'a Item,
    /// Distance in metres, when both have coordinates.
    pub distance_m: Option<f64>,
    /// The offer's quantity left for this need: its quantity minus what more urgent
    /// needs were promised (see the module doc); `None` when it gives no quantity.
    pub left: Option<u32>,
}

/// A need with the best offers that could meet it, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    /// The need.
    pub need: &'a Item,
    /// The best candidate offers, at most the `k` asked for: nearest first (unknown
    /// distance last), then larger quantity, then oldest, then lowest id.
    pub offers: Vec<Candidate<'a>>,
    /// How many offers could meet the need in all (`offers` holds the best of them).
    pub total: usize,
    /// The offer promised to this need (the best candidate with a quantity in the
    /// need's unit), when the need gives a quantity and one covers it.
    pub promised: Option<EventId>,
}

/// Where a need sits in the order of needs (most urgent first, then oldest, then
/// lowest id). A page ends at a key and the next page starts after it, so a need
/// posted or closed meanwhile does not shift the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NeedKey {
    urgency: Reverse<Urgency>,
    created: Timestamp,
    id: EventId,
}

impl NeedKey {
    /// The key of a need.
    pub fn of(need: &Item) -> NeedKey {
        NeedKey {
            urgency: Reverse(need.post.urgency),
            created: need.created,
            id: need.id,
        }
    }

    /// Reads a key written by its `Display` (`<urgency>.<timestamp>.<id hex>`); `None`
    /// for anything else.
    pub fn parse(s: &str) -> Option<NeedKey> {
        let mut parts = s.split('.');
        let (u, t, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let urgency = *Urgency::ALL.get(u.parse::<usize>().ok()?)?;
        // Digits only: `u64::from_str` would also take a leading '+'.
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(NeedKey {
            urgency: Reverse(urgency),
            created: Timestamp(t.parse().ok()?),
            id: id.parse().ok()?,
        })
    }
}

impl fmt::Display for NeedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rank = Urgency::ALL
            .iter()
            .position(|u| *u == self.urgency.0)
            .unwrap_or(0);
        write!(f, "{rank}.{}.{}", self.created.0, self.id.to_hex())
    }
}

/// One page of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<'a> {
    /// The needs of this page, in need order, each with its best candidates.
    pub matches: Vec<Match<'a>>,
    /// Open needs on the whole board.
    pub needs_total: usize,
    /// Where the next page starts, when there is one.
    pub next: Option<NeedKey>,
}

/// Whether an offer of `quantity` `unit` covers `need` (always, unless both give a
/// quantity in the same unit).
fn covers(need: &Item, quantity: Option<u32>, unit: &str) -> bool {
    match (need.post.quantity, quantity) {
        (Some(n), Some(o)) if need.post.unit.eq_ignore_ascii_case(unit) => o >= n,
        _ => true,
    }
}

/// The candidate order: nearest first (unknown distance last), then larger quantity,
/// then oldest, then lowest id. Total, because ids are unique.
fn better(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    let da = a.distance_m.unwrap_or(f64::INFINITY);
    let db = b.distance_m.unwrap_or(f64::INFINITY);
    da.total_cmp(&db)
        .then(b.offer.post.quantity.cmp(&a.offer.post.quantity))
        .then(a.offer.created.cmp(&b.offer.created))
        .then(a.offer.id.cmp(&b.offer.id))
}

/// A position as the inner loop needs it: radians and the cosine of the latitude,
/// computed once per item instead of once per pair.
#[derive(Debug, Clone, Copy)]
struct Spot {
    lat_e7: i32,
    la: f64,
    lo: f64,
    cos_la: f64,
}

impl Spot {
    fn of(c: Coords) -> Spot {
        let la = c.lat().to_radians();
        Spot {
            lat_e7: c.lat_e7,
            la,
            lo: c.lon().to_radians(),
            cos_la: la.cos(),
        }
    }

    /// [`Coords::distance_m`] from `self` to `to`: the same operations in the same
    /// order, so the same bits (the property tests compare against `distance_m`).
    fn distance_m(self, to: Spot) -> f64 {
        let a = ((to.la - self.la) / 2.0).sin().powi(2)
            + self.cos_la * to.cos_la * ((to.lo - self.lo) / 2.0).sin().powi(2);
        2.0 * 6_371_000.0 * a.sqrt().asin()
    }
}

/// An active offer with what the inner loop compares, kept together so that ranking
/// one need reads a compact array instead of chasing every item.
#[derive(Debug)]
struct Entry<'a> {
    item: &'a Item,
    spot: Option<Spot>,
    quantity: Option<u32>,
    unit: &'a str,
    /// Index of this offer among all indexed offers: allocation keeps what is left
    /// in arrays by slot instead of hashing ids in the inner loop.
    slot: usize,
}

/// The active offers of one category.
#[derive(Debug, Default)]
struct Shelf<'a> {
    /// Offers with coordinates, by latitude.
    placed: Vec<Entry<'a>>,
    /// Offers without coordinates: a candidate for every need of the category.
    unplaced: Vec<Entry<'a>>,
}

/// Open needs and an index of active offers, built once per board; ask it for one
/// need's candidates or for a page.
#[derive(Debug)]
pub struct Matcher<'a> {
    needs: Vec<&'a Item>,
    shelves: BTreeMap<Category, Shelf<'a>>,
    /// Number of indexed offers (slots).
    slots: usize,
}

/// The promises made to the first needs (see the module doc's allocation rule).
#[derive(Debug, Default)]
struct Alloc {
    /// Per offer slot: (index of the need in `needs`, quantity left after it), in
    /// need order; empty for an offer promised to nobody.
    promises: Vec<Vec<(usize, u32)>>,
    /// Per need index: the offer promised to it.
    promised: HashMap<usize, EventId>,
}

impl Alloc {
    /// What is left of `offer` (of quantity `q`) for the need at index `i`.
    fn left_for(&self, slot: usize, q: Option<u32>, i: usize) -> Option<u32> {
        let q = q?;
        let Some(list) = self.promises.get(slot) else {
            return Some(q);
        };
        let before = list.partition_point(|(at, _)| *at < i);
        Some(before.checked_sub(1).map_or(q, |j| list[j].1))
    }
}

impl<'a> Matcher<'a> {
    /// Indexes the active, unexpired needs and offers among `items`.
    pub fn new(items: &'a [Item]) -> Self {
        let mut needs = Vec::new();
        let mut shelves: BTreeMap<Category, Shelf<'a>> = BTreeMap::new();
        for i in items.iter().filter(|i| i.state.is_active() && !i.expired) {
            match i.kind {
                BodyKind::Need => needs.push(i),
                BodyKind::Offer => {
                    let shelf = shelves.entry(i.post.category).or_default();
                    let spot = i.post.place.coords.map(Spot::of);
                    let entry = Entry {
                        item: i,
                        spot,
                        quantity: i.post.quantity,
                        unit: &i.post.unit,
                        slot: 0,
                    };
                    match spot {
                        Some(_) => shelf.placed.push(entry),
                        None => shelf.unplaced.push(entry),
                    }
                }
                _ => {}
            }
        }
        needs.sort_by_key(|n| NeedKey::of(n));
        for shelf in shelves.values_mut() {
            shelf
                .placed
                .sort_by_key(|e| (e.spot.map(|s| s.lat_e7), e.item.id));
        }
        let mut slots = 0;
        for shelf in shelves.values_mut() {
            for e in shelf.placed.iter_mut().chain(shelf.unplaced.iter_mut()) {
                e.slot = slots;
                slots += 1;
            }
        }
        Matcher {
            needs,
            shelves,
            slots,
        }
    }

    /// Promises offers with a quantity to the first `upto` needs that give a
    /// quantity, in need order (the module doc's allocation rule). A need's promise
    /// depends only on the needs before it, so a page needs only those up to its end.
    fn allocate(&self, upto: usize) -> Alloc {
        let mut alloc = Alloc {
            promises: vec![Vec::new(); self.slots],
            promised: HashMap::new(),
        };
        // What is left per slot; `None` while untouched (the whole quantity).
        let mut left: Vec<Option<u32>> = vec![None; self.slots];
        for (i, need) in self.needs.iter().take(upto).enumerate() {
            let Some(n) = need.post.quantity else {
                continue;
            };
            let mut best: Option<(Candidate<'a>, u32, usize)> = None;
            for (e, distance_m) in self.nearby(need) {
                let Some(q) = e.quantity else { continue };
                if !need.post.unit.eq_ignore_ascii_case(e.unit) {
                    continue;
                }
                let l = left.get(e.slot).copied().flatten().unwrap_or(q);
                if l < n {
                    continue;
                }
                let c = Candidate {
                    offer: e.item,
                    distance_m,
                    left: Some(l),
                };
                if best
                    .as_ref()
                    .is_none_or(|(b, _, _)| better(&c, b) == Ordering::Less)
                {
                    best = Some((c, l, e.slot));
                }
            }
            if let Some((c, l, slot)) = best {
                let after = l - n;
                if let (Some(x), Some(p)) = (left.get_mut(slot), alloc.promises.get_mut(slot)) {
                    *x = Some(after);
                    p.push((i, after));
                }
                alloc.promised.insert(i, c.offer.id);
            }
        }
        alloc
    }

    /// The offers of `need`'s category within [`NEARBY_M`] of it (all of them when
    /// either has no coordinates), with the distance when both have them.
    fn nearby<'m>(
        &'m self,
        need: &'a Item,
    ) -> impl Iterator<Item = (&'m Entry<'a>, Option<f64>)> + 'm {
        let shelf = self.shelves.get(&need.post.category);
        let here = need.post.place.coords.map(Spot::of);
        let placed: &[Entry<'a>] = match (shelf, here) {
            (None, _) => &[],
            // Only the latitude band can be near; the rest cannot.
            (Some(shelf), Some(h)) => {
                let lat = |e: &Entry<'_>| e.spot.map_or(0, |s| i64::from(s.lat_e7));
                let mid = i64::from(h.lat_e7);
                let lo = shelf.placed.partition_point(|e| lat(e) < mid - BAND_E7);
                let hi = shelf.placed.partition_point(|e| lat(e) <= mid + BAND_E7);
                &shelf.placed[lo..hi]
            }
            (Some(shelf), None) => &shelf.placed,
        };
        let unplaced: &[Entry<'a>] = shelf.map_or(&[], |s| &s.unplaced);
        placed.iter().chain(unplaced).filter_map(move |e| {
            let distance_m = match (here, e.spot) {
                (Some(a), Some(b)) => Some(a.distance_m(b)),
                _ => None,
            };
            (!distance_m.is_some_and(|d| d > NEARBY_M)).then_some((e, distance_m))
        })
    }

    /// The open needs, most urgent first, then oldest.
    pub fn needs(&self) -> &[&'a Item] {
        &self.needs
    }

    /// The best `k` offers for `need` (and how many there are in all).
    /// Allocates for every need before it first: for many needs, [`Matcher::page`] or
    /// [`match_offers`] allocate once.
    pub fn for_need(&self, need: &'a Item, k: usize) -> Match<'a> {
        let key = NeedKey::of(need);
        let i = self.needs.partition_point(|n| NeedKey::of(n) < key);
        let alloc = self.allocate(i.saturating_add(1));
        self.rank(need, i, k, &alloc)
    }

    /// The best `k` offers for `need`, at index `i` in the need order (where it is or
    /// would be), counting offers with what `alloc` left of them.
    fn rank(&self, need: &'a Item, i: usize, k: usize, alloc: &Alloc) -> Match<'a> {
        let mut cands: Vec<Candidate<'a>> = Vec::new();
        for (e, distance_m) in self.nearby(need) {
            let left = alloc.left_for(e.slot, e.quantity, i);
            if !covers(need, left, e.unit) {
                continue;
            }
            cands.push(Candidate {
                offer: e.item,
                distance_m,
                left,
            });
        }
        let total = cands.len();
        if k == 0 {
            cands.clear();
        } else if cands.len() > k {
            // Partition the best k to the front, then order only those.
            cands.select_nth_unstable_by(k - 1, better);
            cands.truncate(k);
        }
        cands.sort_by(better);
        // A page keeps k slots per need, not room for every candidate it looked at.
        cands.shrink_to_fit();
        let promised = match self.needs.get(i) {
            Some(n) if n.id == need.id => alloc.promised.get(&i).copied(),
            _ => None,
        };
        Match {
            need,
            offers: cands,
            total,
            promised,
        }
    }

    /// Up to `limit` needs (at least one) after `after` (from the first need when
    /// `None`), each with its best `k` offers.
    pub fn page(&self, after: Option<&NeedKey>, limit: usize, k: usize) -> Page<'a> {
        let start = after.map_or(0, |a| self.needs.partition_point(|n| NeedKey::of(n) <= *a));
        let end = start.saturating_add(limit.max(1)).min(self.needs.len());
        let alloc = self.allocate(end);
        let matches: Vec<Match<'a>> = self.needs[start..end]
            .iter()
            .enumerate()
            .map(|(j, n)| self.rank(n, start + j, k, &alloc))
            .collect();
        let next = if end < self.needs.len() {
            matches.last().map(|m| NeedKey::of(m.need))
        } else {
            None
        };
        Page {
            matches,
            needs_total: self.needs.len(),
            next,
        }
    }
}

/// Every open need with its best `k` offers, most urgent need first (then oldest).
/// Needs with no candidate are included (with an empty list): they are the gaps to
/// shout about.
pub fn match_offers(items: &[Item], k: usize) -> Vec<Match<'_>> {
    let m = Matcher::new(items);
    let alloc = m.allocate(m.needs.len());
    m.needs
        .iter()
        .enumerate()
        .map(|(i, n)| m.rank(n, i, k, &alloc))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{Body, Coords, Place, Post};
    use crate::event::Event;
    use crate::fixture::post;
    use crate::identity::{AuthorId, Identity};
    use crate::view::{ItemState, View};
    use proptest::prelude::*;

    fn board(bodies: Vec<Body>) -> Vec<Item> {
        let id = Identity::from_seed([5; 32]);
        let events: Vec<(Event, Body)> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| (Event::create(&id, Timestamp(i as u64 + 1), &b), b))
            .collect();
        View::from_events(events.iter().map(|(e, b)| (e, b))).items(0)
    }

    fn titles<'a>(m: &'a Match<'_>) -> Vec<&'a str> {
        m.offers
            .iter()
            .map(|c| c.offer.post.title.as_str())
            .collect()
    }

    #[test]
    fn insulin_comes_first_and_blankets_do_not_match_it() {
        let mut insulin = post("insulin");
        insulin.category = Category::Medical;
        insulin.urgency = Urgency::LifeThreatening;
        insulin.quantity = Some(2);
        insulin.unit = "pens".into();
        let mut blankets_need = post("blankets");
        blankets_need.category = Category::Shelter;
        blankets_need.urgency = Urgency::Normal;
        let mut items = vec![Body::Need(blankets_need), Body::Need(insulin.clone())];
        for i in 0..10 {
            let mut b = post(&format!("blankets {i}"));
            b.category = Category::Shelter;
            items.push(Body::Offer(b));
        }
        let mut one_pen = insulin.clone();
        one_pen.title = "one pen".into();
        one_pen.quantity = Some(1);
        items.push(Body::Offer(one_pen));
        let mut far = insulin.clone();
        far.title = "far away".into();
        far.place.coords = Coords::from_degrees(48.85, 2.35); // Paris, from London
        items.push(Body::Offer(far));
        let mut good = insulin;
        good.title = "fridge with insulin".into();
        items.push(Body::Offer(good));

        let items = board(items);
        let m = match_offers(&items, MAX_PER_NEED);
        assert_eq!(m[0].need.post.title, "insulin");
        assert_eq!(
            titles(&m[0]),
            vec!["fridge with insulin"],
            "too few pens and too far are excluded"
        );
        assert_eq!(m[0].total, 1);
        assert_eq!(m[1].need.post.title, "blankets");
        assert_eq!(m[1].offers.len(), 10);
        assert_eq!(m[1].total, 10);
    }

    #[test]
    fn an_offer_of_ten_kg_covers_two_needs_of_four_and_shows_what_is_left() {
        let kg = |title: &str, qty: u32, urgency: Urgency| {
            let mut p = post(title);
            p.quantity = Some(qty);
            p.unit = "kg".into();
            p.urgency = urgency;
            p
        };
        let items = board(vec![
            Body::Offer(kg("rice", 10, Urgency::Normal)),
            Body::Need(kg("first", 4, Urgency::High)),
            Body::Need(kg("second", 4, Urgency::Normal)),
            Body::Need(kg("third", 4, Urgency::Normal)),
            Body::Need(kg("fourth, small", 2, Urgency::Normal)),
        ]);
        let m = match_offers(&items, MAX_PER_NEED);
        let rice = items.iter().find(|i| i.post.title == "rice").map(|i| i.id);
        let seen: Vec<(&str, Vec<Option<u32>>, bool)> = m
            .iter()
            .map(|m| {
                let left = m.offers.iter().map(|c| c.left).collect();
                (m.need.post.title.as_str(), left, m.promised == rice)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("first", vec![Some(10)], true),
                ("second", vec![Some(6)], true),
                ("third", vec![], false),
                ("fourth, small", vec![Some(2)], true),
            ],
            "10 kg covers 4 + 4 + 2, not a third 4"
        );
    }

    #[test]
    fn a_crowded_category_lists_the_best_few_and_counts_the_rest() {
        let mut need = post("water");
        need.quantity = None;
        let mut bodies = vec![Body::Need(need)];
        // 30 offers, offer i about 300·i metres north, larger quantities further off.
        for i in 0..30u32 {
            let mut o = post(&format!("offer {i}"));
            o.quantity = Some(100 + i);
            o.place.coords = Coords::from_degrees(51.5 + f64::from(i) * 0.0027, -0.12);
            bodies.push(Body::Offer(o));
        }
        let items = board(bodies);
        let m = match_offers(&items, 3);
        assert_eq!(titles(&m[0]), vec!["offer 0", "offer 1", "offer 2"]);
        // About 300 m a step: up to offer 33 would be within 10 km, so all 30 count.
        assert_eq!(m[0].total, 30);
        let none = match_offers(&items, 0);
        assert!(none[0].offers.is_empty());
        assert_eq!(none[0].total, 30, "k = 0 still counts");
    }

    #[test]
    fn the_latitude_band_keeps_everything_within_ten_km_and_nothing_beyond() {
        let mut need = post("need");
        need.quantity = None;
        need.place.coords = Coords::from_degrees(0.0, 0.0);
        let mut bodies = vec![Body::Need(need)];
        // Due north, 9.99 km and 10.01 km away (1 degree of latitude = 111.195 km).
        for (title, km) in [("inside", 9.99), ("outside", 10.01)] {
            let mut o = post(title);
            o.place.coords = Coords::from_degrees(km / 111.194_93, 0.0);
            bodies.push(Body::Offer(o));
        }
        let items = board(bodies);
        let m = match_offers(&items, 5);
        assert_eq!(titles(&m[0]), vec!["inside"]);
    }

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let key = NeedKey {
            urgency: Reverse(Urgency::High),
            created: Timestamp(123 << 16 | 7),
            id: EventId([0xab; 32]),
        };
        assert_eq!(NeedKey::parse(&key.to_string()), Some(key));
        let good = key.to_string();
        for bad in [
            String::new(),
            "x".into(),
            "4.1.".to_string() + &"ab".repeat(32),
            "-1.1.".to_string() + &"ab".repeat(32),
            "2.+1.".to_string() + &"ab".repeat(32),
            "2..".to_string() + &"ab".repeat(32),
            "2.1.".to_string() + &"ab".repeat(31),
            "2.99999999999999999999.".to_string() + &"ab".repeat(32),
            good.clone() + ".1",
            good.replace('.', ","),
        ] {
            assert_eq!(NeedKey::parse(&bad), None, "{bad:?}");
        }
    }

    /// A need's id with its candidates' ids, distances and quantities left, in order,
    /// and the offer promised to it.
    type Flat = (
        EventId,
        Vec<(EventId, Option<f64>, Option<u32>)>,
        Option<EventId>,
    );

    /// The definition, all pairs and unbounded (the code before the index): every
    /// active need, most urgent first, with every candidate offer in `better` order,
    /// each offer counted with what more urgent needs left of it, and the best offer
    /// with a quantity in the need's unit promised to a need with a quantity.
    fn reference(items: &[Item]) -> Vec<Flat> {
        let mut left: HashMap<EventId, u32> = items
            .iter()
            .filter_map(|i| Some((i.id, i.post.quantity?)))
            .collect();
        let active = |i: &&Item| i.state.is_active() && !i.expired;
        let offers: Vec<&Item> = items
            .iter()
            .filter(active)
            .filter(|i| i.kind == BodyKind::Offer)
            .collect();
        let mut needs: Vec<&Item> = items
            .iter()
            .filter(active)
            .filter(|i| i.kind == BodyKind::Need)
            .collect();
        needs.sort_by(|a, b| {
            b.post
                .urgency
                .cmp(&a.post.urgency)
                .then(a.created.cmp(&b.created))
                .then(a.id.cmp(&b.id))
        });
        needs
            .into_iter()
            .map(|need| {
                let left_now = left.clone();
                let mut cands: Vec<Candidate<'_>> = offers
                    .iter()
                    .filter(|o| o.post.category == need.post.category)
                    .filter(|o| match (need.post.quantity, o.post.quantity) {
                        (Some(n), Some(_)) if need.post.unit.eq_ignore_ascii_case(&o.post.unit) => {
                            left_now[&o.id] >= n
                        }
                        _ => true,
                    })
                    .filter_map(|o| {
                        let d = match (need.post.place.coords, o.post.place.coords) {
                            (Some(a), Some(b)) => Some(a.distance_m(b)),
                            _ => None,
                        };
                        (!d.is_some_and(|d| d > NEARBY_M)).then_some(Candidate {
                            offer: o,
                            distance_m: d,
                            left: left_now.get(&o.id).copied(),
                        })
                    })
                    .collect();
                cands.sort_by(better);
                let promised = need.post.quantity.and_then(|n| {
                    let c = cands.iter().find(|c| {
                        c.offer.post.quantity.is_some()
                            && need.post.unit.eq_ignore_ascii_case(&c.offer.post.unit)
                    })?;
                    *left.get_mut(&c.offer.id)? -= n;
                    Some(c.offer.id)
                });
                let list = cands
                    .iter()
                    .map(|c| (c.offer.id, c.distance_m, c.left))
                    .collect();
                (need.id, list, promised)
            })
            .collect()
    }

    fn flat(m: &Match<'_>) -> Flat {
        let list = m
            .offers
            .iter()
            .map(|c| (c.offer.id, c.distance_m, c.left))
            .collect();
        (m.need.id, list, m.promised)
    }

    /// One random item: need?, category, quantity, unit, urgency, grid position, created,
    /// state, expired.
    type Spec = (
        bool,
        usize,
        Option<u32>,
        usize,
        usize,
        Option<(i32, i32)>,
        u64,
        usize,
        bool,
    );

    /// A small random board: few categories, units, places (some over 10 km apart,
    /// some equal) and timestamps, so that every tie-break is exercised.
    fn item() -> impl Strategy<Value = Spec> {
        (
            any::<bool>(),
            0..3usize,
            proptest::option::of(1..5u32),
            0..3usize,
            0..4usize,
            proptest::option::of((0..6i32, 0..3i32)),
            0..4u64,
            0..5usize,
            proptest::bool::weighted(0.1),
        )
    }

    fn items_from(specs: Vec<Spec>) -> Vec<Item> {
        let cats = [Category::Water, Category::Food, Category::Medical];
        let units = ["", "kg", "KG"];
        let states = [
            ItemState::Open,
            ItemState::Claimed,
            ItemState::InProgress,
            ItemState::Fulfilled,
            ItemState::Withdrawn,
        ];
        specs
            .into_iter()
            .enumerate()
            .map(
                |(n, (need, cat, qty, unit, urg, at, created, state, expired))| {
                    let mut id = [0u8; 32];
                    // Ids in an order unrelated to the list order.
                    id[0] = (n as u8).wrapping_mul(37);
                    id[1] = n as u8;
                    Item {
                        id: EventId(id),
                        kind: if need {
                            BodyKind::Need
                        } else {
                            BodyKind::Offer
                        },
                        author: AuthorId([1; 32]),
                        created: Timestamp(created),
                        post: Post {
                            title: format!("item {n}"),
                            category: cats[cat],
                            details: String::new(),
                            quantity: qty,
                            unit: units[unit].into(),
                            urgency: Urgency::ALL[urg],
                            place: Place {
                                label: String::new(),
                                // Steps of 0.05 degrees (5.6 km) north and east.
                                coords: at.and_then(|(la, lo)| {
                                    Coords::from_degrees(
                                        51.4 + f64::from(la) * 0.05,
                                        -0.2 + f64::from(lo) * 0.05,
                                    )
                                }),
                            },
                            contact: String::new(),
                            expires_ms: None,
                            related: None,
                        },
                        state: states[state],
                        holder: None,
                        expired,
                        history: Vec::new(),
                        arrived: None,
                    }
                },
            )
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The bounded answer is the first k of the full sorted answer, with the full
        /// count, for every need.
        #[test]
        fn bounded_equals_the_first_k_of_the_full_answer(
            specs in proptest::collection::vec(item(), 0..40),
            k in 0..6usize,
        ) {
            let items = items_from(specs);
            let full = reference(&items);
            let got = match_offers(&items, k);
            prop_assert_eq!(got.len(), full.len());
            for (m, (need, list, promised)) in got.iter().zip(&full) {
                let mut want = list.clone();
                want.truncate(k);
                prop_assert_eq!(flat(m), (*need, want, *promised));
                prop_assert_eq!(m.total, list.len());
            }
        }

        /// No offer is promised more than its quantity, and a need with a quantity
        /// that some candidate in its unit covers is promised one.
        #[test]
        fn an_offer_is_never_promised_beyond_its_quantity(
            specs in proptest::collection::vec(item(), 0..40),
        ) {
            let items = items_from(specs);
            let by_id: HashMap<EventId, &Item> = items.iter().map(|i| (i.id, i)).collect();
            let mut taken: HashMap<EventId, u32> = HashMap::new();
            for m in match_offers(&items, MAX_PER_NEED) {
                let in_unit = m.offers.iter().any(|c| {
                    c.left.is_some() && c.offer.post.unit.eq_ignore_ascii_case(&m.need.post.unit)
                });
                prop_assert_eq!(m.promised.is_some(), m.need.post.quantity.is_some() && in_unit);
                if let Some(o) = m.promised {
                    *taken.entry(o).or_default() += m.need.post.quantity.unwrap_or(0);
                }
            }
            for (o, t) in taken {
                prop_assert!(by_id[&o].post.quantity.is_some_and(|q| t <= q), "{o:?} promised {t}");
            }
        }

        /// Following the cursor page by page lists every need once, in order, with the
        /// same candidates as one big answer.
        #[test]
        fn pages_concatenate_to_the_whole_answer(
            specs in proptest::collection::vec(item(), 0..40),
            limit in 1..7usize,
            k in 0..4usize,
        ) {
            let items = items_from(specs);
            let whole: Vec<_> = match_offers(&items, k).iter().map(flat).collect();
            let m = Matcher::new(&items);
            let mut after: Option<NeedKey> = None;
            let mut paged = Vec::new();
            for _ in 0..=whole.len() {
                let page = m.page(after.as_ref(), limit, k);
                prop_assert_eq!(page.needs_total, whole.len());
                prop_assert!(page.matches.len() <= limit);
                paged.extend(page.matches.iter().map(flat));
                // The cursor goes through its text form, as it does over HTTP.
                after = page.next.map(|n| NeedKey::parse(&n.to_string()).expect("cursor"));
                if after.is_none() {
                    break;
                }
            }
            prop_assert!(after.is_none(), "more pages than needs");
            prop_assert_eq!(paged, whole);
        }

        /// No string makes the cursor parser panic, and what it accepts prints back the
        /// same.
        #[test]
        fn any_cursor_text_is_parsed_or_refused(s in "[0-9a-f.+-]{0,80}") {
            if let Some(k) = NeedKey::parse(&s) {
                prop_assert_eq!(NeedKey::parse(&k.to_string()), Some(k));
            }
        }
    }
}
