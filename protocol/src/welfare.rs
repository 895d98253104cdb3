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
#[path = "welfare_tests.rs"]
mod tests;
