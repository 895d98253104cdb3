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

use crate::body::{Coords, Outcome, Place, Post, Urgency};
use crate::category::Category;
use crate::event::EventId;
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

/// Words that name a street when they follow its name ("Elm St", "River Road").
const STREET_AFTER: [&str; 26] = [
    "st",
    "street",
    "rd",
    "road",
    "ave",
    "avenue",
    "ln",
    "lane",
    "drive",
    "way",
    "close",
    "crescent",
    "terrace",
    "place",
    "square",
    "sq",
    "court",
    "boulevard",
    "blvd",
    "highway",
    "hwy",
    "parade",
    "row",
    "grove",
    "gardens",
    "walk",
];

/// Words that name a street when they come before its name ("Calle Mayor",
/// "Avda. de la Constitución", "Carrera 7" has no name and gives nothing).
const STREET_BEFORE: [&str; 31] = [
    "calle",
    "c/",
    "avenida",
    "avda",
    "av",
    "carrera",
    "cra",
    "camino",
    "paseo",
    "pº",
    "plaza",
    "pza",
    "plazuela",
    "ronda",
    "travesía",
    "travesia",
    "callejón",
    "callejon",
    "calzada",
    "carretera",
    "ctra",
    "glorieta",
    "vía",
    "via",
    "rúa",
    "pasaje",
    "alameda",
    "bulevar",
    "diagonal",
    "transversal",
    "urbanización",
];

/// Words that name a door, a floor or a side inside a building: a street name ends
/// before them.
const DOOR_WORDS: [&str; 30] = [
    "km",
    "flat",
    "apt",
    "apartment",
    "unit",
    "floor",
    "suite",
    "room",
    "no",
    "#",
    "nº",
    "n.º",
    "num",
    "núm",
    "number",
    "piso",
    "planta",
    "bajo",
    "bajos",
    "puerta",
    "pta",
    "izq",
    "izquierda",
    "dcha",
    "derecha",
    "esc",
    "escalera",
    "portal",
    "bloque",
    "s/n",
];

/// Words that put a person in an address ("c/o Mrs Jones", "casa de Doña Rosa"): from
/// one of these to the next number, Spanish street type (or the end of the comma
/// part) is a person, never a street.
const PERSON_WORDS: [&str; 30] = [
    "c/o", "co", "care", "attn", "att", "mr", "mrs", "ms", "miss", "mx", "dr", "sir", "dame",
    "don", "doña", "dona", "dña", "d", "sr", "sra", "srta", "señor", "señora", "senor", "senora",
    "casa", "home", "house", "family", "familia",
];

/// Words a street name does not begin with in English ("opposite Elm St" is "Elm St").
const NOT_A_NAME: [&str; 14] = [
    "opposite", "near", "behind", "next", "to", "by", "at", "the", "corner", "of", "and", "off",
    "beside", "outside",
];

/// Little words that may sit inside a Spanish street name ("Calle del Río") but not end
/// it.
const JOINERS: [&str; 9] = ["de", "del", "la", "las", "los", "el", "y", "d'", "of"];

/// A word as compared with the lists: lowercase, a trailing full stop dropped
/// ("Avda." is "avda", "St." is "st").
fn bare(word: &str) -> String {
    let w = word.to_lowercase();
    match w.strip_suffix('.') {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => w,
    }
}

fn has_digit(word: &str) -> bool {
    word.chars().any(|c| c.is_numeric())
}

/// The street named in one comma-separated part of an address, if any.
fn street_in(part: &str) -> Option<String> {
    // Words from a person marker to the next number are a person: blanked out.
    let mut words: Vec<Option<&str>> = Vec::new();
    let mut person = false;
    for w in part.split_whitespace() {
        let b = bare(w);
        if PERSON_WORDS.contains(&b.as_str()) {
            person = true;
        } else if has_digit(w) || STREET_BEFORE.contains(&b.as_str()) {
            // A number or "Calle" starts the street line.
            person = false;
        }
        let stop = person || has_digit(w) || DOOR_WORDS.contains(&b.as_str());
        words.push((!stop).then_some(w));
    }
    for (i, w) in words.iter().enumerate() {
        let Some(w) = w else { continue };
        let b = bare(w);
        if STREET_BEFORE.contains(&b.as_str()) {
            // "Calle del Río 7": the type, then up to five words of name.
            let mut name: Vec<&str> = words[i + 1..]
                .iter()
                .take(5)
                .map_while(|w| *w)
                .take_while(|w| !STREET_BEFORE.contains(&bare(w).as_str()))
                .collect();
            while name
                .last()
                .is_some_and(|w| JOINERS.contains(&bare(w).as_str()))
            {
                name.pop();
            }
            if !name.is_empty() {
                return Some(
                    std::iter::once(*w)
                        .chain(name)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
        } else if STREET_AFTER.contains(&b.as_str()) {
            // "5 Elm St": up to three words of name, then the type.
            let mut name: Vec<&str> = words[..i]
                .iter()
                .rev()
                .take(3)
                .map_while(|w| *w)
                .take_while(|w| !NOT_A_NAME.contains(&bare(w).as_str()))
                .collect();
            name.reverse();
            if !name.is_empty() {
                return Some(name.into_iter().chain([*w]).collect::<Vec<_>>().join(" "));
            }
        }
    }
    None
}

/// The coarse area of a person's address, fit for the open board: only a street,
/// recognised by a street-type word (St, Road, Lane... before it; Calle, Avenida,
/// Carrera, Camino, Paseo, Plaza... after it), without house, flat, floor or door
/// numbers, and without the words that follow "c/o", "Mrs", "casa de", "Doña" and the
/// like up to the next number ("c/o Mrs Jones, 5 Elm St" → "Elm St"; "Calle Mayor 5,
/// 3º izq" → "Calle Mayor"). Where no street is recognised the label is empty ("area
/// not given"), never the raw text: "the blue house opposite the church" gives "".
/// The part of the address that holds a number (the street line) is preferred. The
/// position is rounded to two decimals (about a kilometre). The door stays behind the
/// volunteer PIN.
pub fn area_of(place: &Place) -> Place {
    let parts: Vec<&str> = place.label.split([',', ';', '\n']).collect();
    let numbered = |p: &str| p.split_whitespace().any(has_digit);
    let label = parts
        .iter()
        .filter(|p| numbered(p))
        .chain(parts.iter().filter(|p| !numbered(p)))
        .find_map(|p| street_in(p))
        .unwrap_or_default();
    let round = |d: f64| (d * 100.0).round() / 100.0;
    Place {
        label,
        coords: place
            .coords
            .and_then(|c| Coords::from_degrees(round(c.lat()), round(c.lon()))),
    }
}

/// The kinds of help a "needs help" check-in can raise on the open board, with the
/// category of the linked need. [`Category::Welfare`] is general help (no kind
/// recognised).
pub const HELP_KINDS: [Category; 9] = [
    Category::Rescue,
    Category::Medical,
    Category::Water,
    Category::Food,
    Category::Shelter,
    Category::Power,
    Category::Transport,
    Category::Care,
    Category::Welfare,
];

/// Words (English and Spanish) that say what kind of help is needed, first match wins
/// in the order of [`HELP_KINDS`]. A word of five letters or more also matches as the
/// start of a word ("evacuat" matches "evacuation").
const HELP_WORDS: [(Category, &[&str]); 8] = [
    (
        Category::Rescue,
        &[
            "trapped",
            "rescue",
            "evacuate",
            "evacuation",
            "stranded",
            "boat",
            "roof",
            "atrapado",
            "atrapada",
            "rescate",
            "rescatar",
            "evacuar",
            "evacuación",
            "barca",
            "tejado",
        ],
    ),
    (
        Category::Medical,
        &[
            "oxygen",
            "insulin",
            "medic",
            "medicine",
            "medication",
            "doctor",
            "nurse",
            "dialysis",
            "wound",
            "injur",
            "pills",
            "hospital",
            "ambulance",
            "sick",
            "ill",
            "pain",
            "fever",
            "oxígeno",
            "oxigeno",
            "insulina",
            "medicina",
            "medicamento",
            "médico",
            "medico",
            "enfermer",
            "diálisis",
            "dialisis",
            "herida",
            "pastillas",
            "hospital",
            "ambulancia",
            "enfermo",
            "enferma",
            "dolor",
            "fiebre",
        ],
    ),
    (
        Category::Water,
        &["water", "drink", "thirst", "agua", "beber", "sed"],
    ),
    (
        Category::Food,
        &[
            "food", "meal", "hungry", "eat", "formula", "comida", "alimento", "hambre", "comer",
            "leche",
        ],
    ),
    (
        Category::Shelter,
        &[
            "shelter",
            "bed",
            "blanket",
            "cold",
            "dry",
            "clothes",
            "alojamiento",
            "cama",
            "manta",
            "frío",
            "frio",
            "ropa",
            "refugio",
        ],
    ),
    (
        Category::Power,
        &[
            "power",
            "electric",
            "charge",
            "charger",
            "battery",
            "generator",
            "phone",
            "electricidad",
            "luz",
            "cargar",
            "cargador",
            "batería",
            "bateria",
            "generador",
        ],
    ),
    (
        Category::Transport,
        &[
            "ride",
            "lift",
            "transport",
            "car",
            "fuel",
            "transporte",
            "coche",
            "llevar",
            "gasolina",
        ],
    ),
    (
        Category::Care,
        &[
            "pet",
            "dog",
            "cat",
            "child",
            "children",
            "baby",
            "carer",
            "caregiver",
            "mascota",
            "perro",
            "gato",
            "niño",
            "niña",
            "niños",
            "bebé",
            "bebe",
            "cuidador",
            "cuidadora",
        ],
    ),
];

/// What kind of help a "needs help" check-in's free text asks for, from a fixed list
/// of words in English and Spanish: one of [`HELP_KINDS`], never the text itself
/// ("oxygen running low" → [`Category::Medical`]; nothing recognised →
/// [`Category::Welfare`], general help).
pub fn help_kind(what: &str) -> Category {
    let words: Vec<String> = what
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let says = |k: &str| {
        words
            .iter()
            .any(|w| w == k || (k.chars().count() >= 5 && w.starts_with(k)))
    };
    HELP_WORDS
        .iter()
        .find(|(_, ks)| ks.iter().any(|k| says(k)))
        .map_or(Category::Welfare, |(c, _)| *c)
}

/// The title of the open-board need a "needs help" check-in raises: fixed per kind, in
/// English (pages translate it, see [`follow_up_kind`]). It names no one and carries no
/// word the volunteer typed.
pub fn follow_up_title(kind: Category) -> String {
    match kind {
        Category::Welfare => "Welfare visit: help needed".to_string(),
        k => format!("Welfare visit: help needed ({})", k.description()),
    }
}

/// The need a "needs help" check-in raises on the open board (category = the kind of
/// help, urgency high, linked to the check-in): what kind of help (see [`help_kind`])
/// at the coarse area of where the person is (see [`area_of`]); no name, no door, no
/// health detail and no word of the volunteer's text. The detail stays in the
/// check-in, behind the volunteer PIN.
pub fn follow_up(what: &str, person_place: &Place, check_in: EventId) -> Post {
    let kind = help_kind(what);
    Post {
        place: area_of(person_place),
        related: Some(check_in),
        ..Post::new(follow_up_title(kind), kind, Urgency::High)
    }
}

/// The kind of help of a need raised by a check-in ([`follow_up`]), if `post` is one:
/// linked to an event, of a kind in [`HELP_KINDS`], with that kind's fixed title.
/// Pages show it in their own language; older free-text follow-ups give `None`.
pub fn follow_up_kind(post: &Post) -> Option<Category> {
    (post.related.is_some()
        && HELP_KINDS.contains(&post.category)
        && post.title == follow_up_title(post.category))
    .then_some(post.category)
}

#[cfg(test)]
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

#[cfg(test)]
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
