//! Matching offers to open needs: how a hub copes with volunteer convergence. Ten
//! offers of blankets and one need for insulin must not look alike, so needs come most
//! urgent first, and each lists only offers that could actually meet it.
//!
//! An offer can meet a need when both are active and not expired, they share a
//! category, the offer's quantity covers the need's (when both give one, in the same
//! unit), and, when both have coordinates, they are within [`NEARBY_M`].

use crate::body::BodyKind;
use crate::view::Item;

/// How far apart a need and an offer may be, when both have coordinates: 10 km.
pub const NEARBY_M: f64 = 10_000.0;

/// One candidate offer for a need.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The offer.
    pub offer: Item,
    /// Distance in metres, when both have coordinates.
    pub distance_m: Option<f64>,
}

/// A need with the offers that could meet it, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The need.
    pub need: Item,
    /// Candidate offers: nearest first (unknown distance last), then larger quantity,
    /// then oldest.
    pub offers: Vec<Candidate>,
}

fn quantity_ok(need: &Item, offer: &Item) -> bool {
    match (need.post.quantity, offer.post.quantity) {
        (Some(n), Some(o)) if need.post.unit.eq_ignore_ascii_case(&offer.post.unit) => o >= n,
        _ => true,
    }
}

/// Open needs with candidate offers, most urgent need first (then oldest). Needs with
/// no candidate are included (with an empty list): they are the gaps to shout about.
pub fn match_offers(items: &[Item]) -> Vec<Match> {
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
            let mut cands: Vec<Candidate> = offers
                .iter()
                .filter(|o| o.post.category == need.post.category && quantity_ok(need, o))
                .filter_map(|o| {
                    let d = match (need.post.place.coords, o.post.place.coords) {
                        (Some(a), Some(b)) => Some(a.distance_m(b)),
                        _ => None,
                    };
                    if d.is_some_and(|d| d > NEARBY_M) {
                        return None;
                    }
                    Some(Candidate {
                        offer: (*o).clone(),
                        distance_m: d,
                    })
                })
                .collect();
            cands.sort_by(|a, b| {
                let da = a.distance_m.unwrap_or(f64::INFINITY);
                let db = b.distance_m.unwrap_or(f64::INFINITY);
                da.total_cmp(&db)
                    .then(b.offer.post.quantity.cmp(&a.offer.post.quantity))
                    .then(a.offer.created.cmp(&b.offer.created))
                    .then(a.offer.id.cmp(&b.offer.id))
            });
            Match {
                need: need.clone(),
                offers: cands,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::tests::post;
    use crate::body::{Body, Coords, Urgency};
    use crate::category::Category;
    use crate::event::Event;
    use crate::identity::Identity;
    use crate::time::Timestamp;
    use crate::view::View;

    fn board(bodies: Vec<Body>) -> Vec<Item> {
        let id = Identity::from_seed([5; 32]);
        let events: Vec<(Event, Body)> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| (Event::create(&id, Timestamp(i as u64 + 1), &b), b))
            .collect();
        View::from_events(events.iter().map(|(e, b)| (e, b))).items(0)
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

        let m = match_offers(&board(items));
        assert_eq!(m[0].need.post.title, "insulin");
        let titles: Vec<&str> = m[0]
            .offers
            .iter()
            .map(|c| c.offer.post.title.as_str())
            .collect();
        assert_eq!(
            titles,
            vec!["fridge with insulin"],
            "too few pens and too far are excluded"
        );
        assert_eq!(m[1].need.post.title, "blankets");
        assert_eq!(m[1].offers.len(), 10);
    }
}
