//! Who is overdue for a welfare check: a pure function of the people on the board and
//! the time asked. Nobody on the street is forgotten.
//!
//! Rules:
//! - A person's latest check-in saying **needs help** or **no answer** puts them at the
//!   top at once, whatever their interval.
//! - Otherwise they are **overdue** when no "safe" (or "moved to a named place", which
//!   accounts for them) check-in happened within their interval: due time = that
//!   check-in (or the registration) + interval. "Not at home" does not reset the clock.
//! - A check-in stamped in the future (a fast clock) counts as made now, so a skewed
//!   clock cannot postpone a visit.
//!
//! - Someone nobody has visited yet, and not yet due, is **never visited**, not "ok":
//!   nobody knows they are ok.
//!
//! Order: needs help, then no answer (each oldest report first), then overdue (most
//! overdue first), then never visited, then the rest, each by due time.

use crate::body::{Coords, Outcome, Place};
use crate::view::{Check, PersonView};

/// Where a person stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// The latest check found they need help. Most urgent.
    NeedsHelp,
    /// The latest check got no answer.
    NoAnswer,
    /// No accounting check within the interval.
    Overdue,
    /// Registered, not yet due, and nobody has visited yet: not known to be ok.
    NeverVisited,
    /// Checked recently enough.
    Ok,
}

impl Standing {
    /// Name in the API ("needs-help", "no-answer", "overdue", "never-visited", "ok").
    pub fn name(self) -> &'static str {
        match self {
            Standing::NeedsHelp => "needs-help",
            Standing::NoAnswer => "no-answer",
            Standing::Overdue => "overdue",
            Standing::NeverVisited => "never-visited",
            Standing::Ok => "ok",
        }
    }
}

/// A person with their standing at the time asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welfare {
    /// The person.
    pub person: PersonView,
    /// Their standing.
    pub standing: Standing,
    /// When the next accounting check is (was) due, wall-clock ms.
    pub due_ms: u64,
    /// How long past due, in ms (0 if not yet due).
    pub overdue_ms: u64,
}

fn accounts(c: &Check) -> bool {
    matches!(c.check.outcome, Outcome::Safe | Outcome::Moved(_))
}

/// The standing of one person at `now_ms`.
pub fn assess(person: &PersonView, now_ms: u64) -> Welfare {
    let interval = u64::from(person.person.check_every_secs) * 1000;
    let from = person
        .checks
        .iter()
        .rev()
        .find(|c| accounts(c))
        .map_or(person.registered.millis(), |c| c.at.millis())
        .min(now_ms);
    let due_ms = from.saturating_add(interval);
    let overdue_ms = now_ms.saturating_sub(due_ms);
    let standing = match person.latest().map(|c| &c.check.outcome) {
        Some(Outcome::NeedsHelp(_)) => Standing::NeedsHelp,
        Some(Outcome::NoAnswer) => Standing::NoAnswer,
        _ if overdue_ms > 0 => Standing::Overdue,
        None => Standing::NeverVisited,
        _ => Standing::Ok,
    };
    Welfare {
        person: person.clone(),
        standing,
        due_ms,
        overdue_ms,
    }
}

/// Everyone, most urgent first (see the module rules).
pub fn assess_all(people: &[PersonView], now_ms: u64) -> Vec<Welfare> {
    let mut out: Vec<Welfare> = people.iter().map(|p| assess(p, now_ms)).collect();
    out.sort_by(|a, b| {
        let since = |w: &Welfare| w.person.latest().map_or(0, |c| c.at.millis());
        a.standing
            .cmp(&b.standing)
            .then_with(|| match a.standing {
                Standing::NeedsHelp | Standing::NoAnswer => since(a).cmp(&since(b)),
                Standing::Overdue => b.overdue_ms.cmp(&a.overdue_ms),
                Standing::NeverVisited | Standing::Ok => a.due_ms.cmp(&b.due_ms),
            })
            .then(a.person.id.cmp(&b.person.id))
    });
    out
}

/// Only those who need a visit now (needs help, no answer, overdue). Someone never
/// visited is not listed until their first visit is due.
pub fn overdue(people: &[PersonView], now_ms: u64) -> Vec<Welfare> {
    assess_all(people, now_ms)
        .into_iter()
        .filter(|w| w.standing < Standing::NeverVisited)
        .collect()
}

/// Words that name a door inside a building, dropped from a public area.
const DOOR_WORDS: [&str; 10] = [
    "flat",
    "apt",
    "apartment",
    "unit",
    "floor",
    "suite",
    "room",
    "no",
    "no.",
    "#",
];

/// The coarse area of a person's address, fit for the open board: the street without
/// house, flat or floor numbers ("14 River Rd, 3rd floor" → "River Rd"), and the
/// position rounded to two decimals (about a kilometre). The door stays behind the
/// volunteer PIN.
pub fn area_of(place: &Place) -> Place {
    let label = place
        .label
        .split(',')
        .map(|part| {
            part.split_whitespace()
                .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                .filter(|w| !DOOR_WORDS.contains(&w.to_lowercase().as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .find(|part| !part.is_empty())
        .unwrap_or_default();
    let round = |d: f64| (d * 100.0).round() / 100.0;
    Place {
        label,
        coords: place
            .coords
            .and_then(|c| Coords::from_degrees(round(c.lat()), round(c.lon()))),
    }
}

#[cfg(test)]
mod area_tests {
    use super::*;

    #[test]
    fn the_public_area_has_no_door() {
        let at = |label: &str| {
            area_of(&Place {
                label: label.into(),
                coords: None,
            })
            .label
        };
        assert_eq!(at("14 River Rd, 3rd floor"), "River Rd");
        assert_eq!(at("Flat 3, 14b River Rd"), "River Rd");
        assert_eq!(at("Apt 12 Elm Street 7"), "Elm Street");
        assert_eq!(at("Elm St hub"), "Elm St hub");
        assert_eq!(at("12"), "");
        let p = area_of(&Place {
            label: String::new(),
            coords: Coords::from_degrees(29.951_234, -90.071_987),
        });
        let c = p.coords.expect("coords kept, rounded");
        assert!((c.lat() - 29.95).abs() < 1e-6 && (c.lon() + 90.07).abs() < 1e-6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{Body, CheckIn, Consent, PersonRegistered, Place};
    use crate::event::{Event, EventId};
    use crate::identity::Identity;
    use crate::time::Timestamp;
    use crate::view::View;

    const H: u64 = 3_600_000;
    const T0: u64 = 1_790_000_000_000;

    struct Street {
        events: Vec<(Event, Body)>,
        volunteer: Identity,
    }

    impl Street {
        fn new() -> Self {
            Street {
                events: Vec::new(),
                volunteer: Identity::from_seed([9; 32]),
            }
        }

        fn register(&mut self, name: &str, at: u64, every_h: u32) -> EventId {
            let b = Body::Person(PersonRegistered {
                name: name.into(),
                place: Place::default(),
                risks: vec![],
                check_every_secs: every_h * 3600,
                consent: Consent::Own,
                phone: String::new(),
                note: String::new(),
            });
            let e = Event::create(&self.volunteer, Timestamp::from_millis(at), &b);
            let id = e.id();
            self.events.push((e, b));
            id
        }

        fn check(&mut self, who: &Identity, person: EventId, at: u64, outcome: Outcome) {
            let b = Body::CheckIn(CheckIn {
                person,
                outcome,
                note: String::new(),
                by: "Sam".into(),
            });
            self.events
                .push((Event::create(who, Timestamp::from_millis(at), &b), b));
        }

        fn standings(&self, now: u64) -> Vec<(String, Standing)> {
            let v = View::from_events(self.events.iter().map(|(e, b)| (e, b)));
            assess_all(&v.people(), now)
                .into_iter()
                .map(|w| (w.person.person.name, w.standing))
                .collect()
        }
    }

    #[test]
    fn needs_help_and_no_answer_rise_to_the_top_then_most_overdue() {
        let mut s = Street::new();
        let vol = Identity::from_seed([3; 32]);
        let ada = s.register("Ada", T0, 12);
        let bo = s.register("Bo", T0, 12);
        let cy = s.register("Cy", T0, 24);
        s.register("Di", T0, 6);
        let ed = s.register("Ed", T0, 12);
        s.check(&vol, ada, T0 + H, Outcome::Safe);
        s.check(&vol, bo, T0 + H, Outcome::NoAnswer);
        s.check(
            &vol,
            cy,
            T0 + H,
            Outcome::NeedsHelp("oxygen running out".into()),
        );
        s.check(&vol, ed, T0 + 2 * H, Outcome::Moved("school hall".into()));
        let now = T0 + 10 * H;
        assert_eq!(
            s.standings(now),
            vec![
                ("Cy".into(), Standing::NeedsHelp),
                ("Bo".into(), Standing::NoAnswer),
                ("Di".into(), Standing::Overdue),
                ("Ada".into(), Standing::Ok),
                ("Ed".into(), Standing::Ok),
            ]
        );
        // Later, Ada is overdue too, by less than Di.
        let later = T0 + 14 * H;
        let st = s.standings(later);
        assert_eq!(st[2], ("Di".into(), Standing::Overdue));
        assert_eq!(st[3], ("Ada".into(), Standing::Overdue));
    }

    #[test]
    fn someone_never_visited_is_never_visited_not_ok() {
        let mut s = Street::new();
        let vol = Identity::from_seed([3; 32]);
        let ada = s.register("Ada", T0, 12);
        s.register("Bo", T0, 12);
        s.check(&vol, ada, T0 + H, Outcome::Safe);
        let people = View::from_events(s.events.iter().map(|(e, b)| (e, b))).people();
        assert_eq!(
            s.standings(T0 + 2 * H),
            vec![
                ("Bo".into(), Standing::NeverVisited),
                ("Ada".into(), Standing::Ok)
            ]
        );
        assert_eq!(Standing::NeverVisited.name(), "never-visited");
        // Not a visit that is due yet: not on the overdue list.
        assert!(overdue(&people, T0 + 2 * H).is_empty());
        // Once due, overdue like anyone else.
        assert_eq!(
            s.standings(T0 + 13 * H)[0],
            ("Bo".into(), Standing::Overdue)
        );
    }

    #[test]
    fn not_at_home_does_not_reset_the_clock() {
        let mut s = Street::new();
        let vol = Identity::from_seed([3; 32]);
        let ada = s.register("Ada", T0, 12);
        s.check(&vol, ada, T0 + 11 * H, Outcome::NotAtHome);
        assert_eq!(s.standings(T0 + 13 * H)[0].1, Standing::Overdue);
    }

    #[test]
    fn a_fast_clock_cannot_postpone_a_visit_and_a_slow_one_is_ordered_in_the_fold() {
        let mut s = Street::new();
        let fast = Identity::from_seed([4; 32]);
        let ada = s.register("Ada", T0, 12);
        // A check-in stamped 3 days ahead counts as made at the time asked.
        s.check(&fast, ada, T0 + 72 * H, Outcome::Safe);
        let v = View::from_events(s.events.iter().map(|(e, b)| (e, b)));
        let w = assess(&v.people()[0], T0 + H);
        assert_eq!(w.due_ms, T0 + H + 12 * H);
        // A check-in from a clock days behind is older than the registration in HLC
        // order: it does not count as a recent visit.
        let mut s = Street::new();
        let slow = Identity::from_seed([5; 32]);
        let bo = s.register("Bo", T0, 12);
        s.check(&slow, bo, T0 - 72 * H, Outcome::Safe);
        assert_eq!(s.standings(T0 + 13 * H)[0].1, Standing::Overdue);
    }
}
