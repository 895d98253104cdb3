//! Tests of `welfare`.

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

mod area_tests {
    use super::*;
    use proptest::prelude::*;

    fn at(label: &str) -> String {
        area_of(&Place {
            label: label.into(),
            coords: None,
        })
        .label
    }

    #[test]
    fn the_public_area_has_no_door() {
        assert_eq!(at("14 River Rd, 3rd floor"), "River Rd");
        assert_eq!(at("Flat 3, 14b River Rd"), "River Rd");
        assert_eq!(at("Apt 12 Elm Street 7"), "Elm Street");
        assert_eq!(at("Elm St hub"), "Elm St");
        assert_eq!(at("12"), "");
        let p = area_of(&Place {
            label: String::new(),
            coords: Coords::from_degrees(29.951_234, -90.071_987),
        });
        let c = p.coords.expect("coords kept, rounded");
        assert!((c.lat() - 29.95).abs() < 1e-6 && (c.lon() + 90.07).abs() < 1e-6);
    }

    #[test]
    fn the_public_area_has_no_name_in_english_or_spanish() {
        for (address, area) in [
            ("c/o Mrs Jones, 5 Elm St", "Elm St"),
            ("c/o Mrs Jones 5 Elm St", "Elm St"),
            ("Mrs Jones, Elm St", "Elm St"),
            ("Flat 3, 12 River Road", "River Road"),
            ("the blue house opposite the church", ""),
            ("opposite Elm St", "Elm St"),
            ("St Mary's Road 4", "St Mary's Road"),
            ("Calle Mayor 5, 3º izq", "Calle Mayor"),
            (
                "Avda. de la Constitución 12, bajo",
                "Avda. de la Constitución",
            ),
            ("casa de Doña Rosa, Calle del Río 7", "Calle del Río"),
            ("C/ Mayor 5, 2ºB", "C/ Mayor"),
            ("Paseo de Gracia 40, piso 2, puerta 3", "Paseo de Gracia"),
            ("Plaza de España s/n", "Plaza de España"),
            ("Don Ramón, Camino Real km 3", "Camino Real"),
            ("Carrera 7 # 45-12", ""),
            ("frente a la iglesia", ""),
            ("Zebulon Quartermaine", ""),
            ("casa de Doña Rosa Calle del Río 7", "Calle del Río"),
            ("", ""),
        ] {
            assert_eq!(at(address), area, "{address}");
        }
    }

    /// Words that are neither street types nor little words, so that a name made of
    /// them could only reach the output by leaking.
    fn name_word() -> impl Strategy<Value = String> {
        "[A-Z][a-zñé]{2,9}".prop_filter("not a word of the street lists", |w| {
            let b = bare(w);
            ![
                &STREET_AFTER[..],
                &STREET_BEFORE[..],
                &DOOR_WORDS[..],
                &PERSON_WORDS[..],
                &NOT_A_NAME[..],
                &JOINERS[..],
            ]
            .iter()
            .any(|l| l.contains(&b.as_str()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever is typed, the public area holds no digit and only words of the
        /// address.
        #[test]
        fn no_digit_survives(label in "[ -~ºñáéíóú]{0,80}") {
            let area = at(&label);
            prop_assert!(!area.chars().any(char::is_numeric), "{label:?} -> {area:?}");
            for w in area.split_whitespace() {
                prop_assert!(label.contains(w), "{label:?} -> {area:?}");
            }
        }

        /// "c/o NAME, 5 Street St", "casa de NAME, Calle Street 7" and their kin: no
        /// word of the name and no number reaches the board; the street does.
        #[test]
        fn no_name_survives(
            marker in prop::sample::select(vec![
                "c/o", "c/o Mrs", "Mr", "Dr", "attn", "casa de", "casa de Doña", "Don",
                "Sra.", "familia",
            ]),
            name in prop::collection::vec(name_word(), 1..4),
            street in name_word(),
            number in 1u32..999,
            door in prop::sample::select(vec!["", ", Flat 2", ", 3º izq", ", bajo", " piso 4"]),
            spanish in any::<bool>(),
            comma in any::<bool>(),
        ) {
            prop_assume!(!name.contains(&street));
            let name = name.join(" ");
            let (line, want) = if spanish {
                (format!("Calle {street} {number}{door}"), format!("Calle {street}"))
            } else {
                (format!("{number} {street} Road{door}"), format!("{street} Road"))
            };
            let sep = if comma { ", " } else { " " };
            let label = format!("{marker} {name}{sep}{line}");
            let area = at(&label);
            prop_assert!(!area.chars().any(char::is_numeric), "{label:?} -> {area:?}");
            for w in name.split_whitespace() {
                prop_assert!(
                    !area.split_whitespace().any(|a| a == w),
                    "{label:?} -> {area:?} names {w}"
                );
            }
            prop_assert_eq!(area, want, "{}", label);
        }
    }
}

mod follow_up_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the volunteer typed, the need says one of the fixed titles, in its
        /// kind's category, with no details or contact: no word of the text is in it.
        #[test]
        fn nothing_typed_reaches_the_need(what in "\\PC{1,120}") {
            let need = follow_up(&what, &Place::default(), EventId([1; 32]));
            prop_assert!(HELP_KINDS.contains(&need.category));
            prop_assert_eq!(&need.title, &follow_up_title(need.category));
            prop_assert!(need.details.is_empty() && need.contact.is_empty());
            prop_assert!(need.unit.is_empty() && need.quantity.is_none());
            prop_assert_eq!(follow_up_kind(&need), Some(need.category));
        }
    }

    #[test]
    fn the_kind_of_help_comes_from_a_fixed_list_in_english_and_spanish() {
        for (what, kind) in [
            (
                "oxygen running low for Zebulon Quartermaine",
                Category::Medical,
            ),
            ("se le acaba el oxígeno", Category::Medical),
            ("needs insulin", Category::Medical),
            ("trapped upstairs, water rising", Category::Rescue),
            ("atrapada en el piso de arriba", Category::Rescue),
            ("no drinking water", Category::Water),
            ("sin agua potable", Category::Water),
            ("no food since Monday", Category::Food),
            ("necesita mantas, hace frío", Category::Shelter),
            ("phone battery dead", Category::Power),
            ("a ride to her daughter's", Category::Transport),
            ("his dog needs feeding", Category::Care),
            ("Zebulon Quartermaine is upset", Category::Welfare),
        ] {
            assert_eq!(help_kind(what), kind, "{what}");
            assert!(HELP_KINDS.contains(&kind));
        }
    }

    #[test]
    fn the_follow_up_need_says_the_kind_and_the_street_and_nothing_typed() {
        let what = "oxygen running low for Zebulon Quartermaine";
        let place = Place {
            label: "c/o Mrs Jones, 5 Elm St".into(),
            coords: None,
        };
        let check = EventId([7; 32]);
        let need = follow_up(what, &place, check);
        assert_eq!(
            need.title,
            "Welfare visit: help needed (medical care and medication)"
        );
        assert_eq!(need.category, Category::Medical);
        assert_eq!(need.urgency, Urgency::High);
        assert_eq!(need.place.label, "Elm St");
        assert_eq!(need.related, Some(check));
        assert!(need.details.is_empty() && need.contact.is_empty());
        for w in ["oxygen", "Zebulon", "Quartermaine", "Jones", "5"] {
            assert!(!format!("{need:?}").contains(w), "{w} in {need:?}");
        }
        assert_eq!(follow_up_kind(&need), Some(Category::Medical));
        let general = follow_up("upset", &place, check);
        assert_eq!(general.title, "Welfare visit: help needed");
        assert_eq!(follow_up_kind(&general), Some(Category::Welfare));
        // A need someone typed with the same title but no link is not one.
        let typed = Post::new(
            follow_up_title(Category::Water),
            Category::Water,
            Urgency::High,
        );
        assert_eq!(follow_up_kind(&typed), None);
        for kind in HELP_KINDS {
            assert!(follow_up_title(kind).chars().count() <= crate::body::MAX_TITLE);
        }
    }
}
