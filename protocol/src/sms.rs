//! Text messages (SMS) in and out, as pure functions: what a text says
//! ([`read`]: a need, an offer, `OK`, `HELP`, `STOP`, or something a person must look
//! at), how many segments a reply costs ([`encoding`]) and a reply cut to one segment
//! ([`one_segment`], [`reply_got`], [`reply_change`]).
//!
//! Parsing is tolerant (case, accents, a keyword among the first words, English and
//! Spanish) but never guesses a need or offer without a keyword: such a text is
//! [`Reading::Unclear`], with a suggestion a volunteer can accept with one action.
//! Nothing here panics on any input (the `sms` fuzz target checks it).

use crate::body::{MAX_LABEL, MAX_TITLE};
use crate::category::Category;
use crate::text::{self, Lines, Required};

/// Most characters of a text that is read at all; longer texts go to review.
pub const MAX_TEXT_CHARS: usize = 1600;
/// Septets in one GSM-7 segment.
pub const GSM7_SEGMENT: usize = 160;
/// UTF-16 code units in one UCS-2 segment.
pub const UCS2_SEGMENT: usize = 70;

/// The language a text was written in, for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Spanish.
    Es,
}

impl Lang {
    /// Short code ("en", "es").
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    /// The language of a code; English for anything else.
    pub fn from_code(code: &str) -> Lang {
        if code == "es" {
            Lang::Es
        } else {
            Lang::En
        }
    }
}

/// A need or an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// "we need ..."
    Need,
    /// "we can give ..."
    Offer,
}

impl Kind {
    /// "need" or "offer".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Need => "need",
            Kind::Offer => "offer",
        }
    }
}

/// A need or offer read from a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Need or offer.
    pub kind: Kind,
    /// The language of the text.
    pub lang: Lang,
    /// What, as written (one line, at most [`MAX_TITLE`] characters).
    pub title: String,
    /// The category guessed from the words ([`Category::Other`] when none).
    pub category: Category,
    /// Where, as written (one line, at most [`MAX_LABEL`] characters; may be empty).
    pub place: String,
}

/// Why a text could not be read with confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unclear {
    /// Nothing but blanks.
    Empty,
    /// No NEED / OFFER / OK / HELP / STOP keyword among its first words.
    NoKeyword,
    /// A keyword with nothing after it ("NEED").
    NothingAfterKeyword,
    /// Longer than [`MAX_TEXT_CHARS`].
    TooLong,
}

impl Unclear {
    /// A sentence for the review list.
    pub fn describe(self) -> &'static str {
        match self {
            Unclear::Empty => "empty text",
            Unclear::NoKeyword => "no NEED / OFFER keyword",
            Unclear::NothingAfterKeyword => "a keyword but nothing after it",
            Unclear::TooLong => "longer than 1600 characters",
        }
    }
}

/// What a text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// A need or offer, read with confidence.
    Post(Request),
    /// "OK" / "BIEN": the sender is safe.
    Safe(Lang),
    /// "HELP" / "AYUDA", and what follows it (may be empty).
    Help(Lang, String),
    /// "STOP": send this number no more texts.
    Stop,
    /// Not read with confidence: a person looks at it. `suggestion` is the best guess,
    /// which a volunteer can accept with one action.
    Unclear(Unclear, Option<Request>),
}

const NEED_WORDS: [(&str, Lang); 10] = [
    ("need", Lang::En),
    ("needs", Lang::En),
    ("needed", Lang::En),
    ("necesito", Lang::Es),
    ("necesitamos", Lang::Es),
    ("necesitan", Lang::Es),
    ("necesita", Lang::Es),
    ("necesidad", Lang::Es),
    ("urgent", Lang::En),
    ("urgente", Lang::Es),
];

const OFFER_WORDS: [(&str, Lang); 8] = [
    ("offer", Lang::En),
    ("offers", Lang::En),
    ("offering", Lang::En),
    ("ofrezco", Lang::Es),
    ("ofrecemos", Lang::Es),
    ("ofrece", Lang::Es),
    ("oferta", Lang::Es),
    ("donate", Lang::En),
];

/// Whole texts that mean "I am safe".
const SAFE_TEXTS: [(&str, Lang); 12] = [
    ("ok", Lang::En),
    ("okay", Lang::En),
    ("safe", Lang::En),
    ("im ok", Lang::En),
    ("i am ok", Lang::En),
    ("im safe", Lang::En),
    ("all ok", Lang::En),
    ("ok thanks", Lang::En),
    ("bien", Lang::Es),
    ("estoy bien", Lang::Es),
    ("todo bien", Lang::Es),
    ("ok gracias", Lang::Es),
];

const HELP_WORDS: [(&str, Lang); 5] = [
    ("help", Lang::En),
    ("sos", Lang::En),
    ("ayuda", Lang::Es),
    ("socorro", Lang::Es),
    ("auxilio", Lang::Es),
];

const STOP_TEXTS: [&str; 5] = ["stop", "baja", "alto", "unsubscribe", "parar"];

/// Words of no meaning before the keyword ("we need", "please need", "yo necesito").
const LEAD_WORDS: [&str; 10] = [
    "we", "i", "please", "pls", "plz", "yo", "nosotros", "hola", "hello", "hi",
];

/// Words that end an English street name ("12 Mill Lane", "Elm St").
const STREET_AFTER: [&str; 30] = [
    "st",
    "street",
    "rd",
    "road",
    "lane",
    "ln",
    "ave",
    "avenue",
    "av",
    "drive",
    "dr",
    "way",
    "close",
    "court",
    "ct",
    "place",
    "pl",
    "square",
    "sq",
    "crescent",
    "terrace",
    "hill",
    "grove",
    "gardens",
    "park",
    "row",
    "walk",
    "boulevard",
    "blvd",
    "parade",
];

/// Words that begin a Spanish street name ("Calle Mayor 5").
const STREET_BEFORE: [&str; 16] = [
    "calle",
    "c/",
    "avenida",
    "avda",
    "av.",
    "camino",
    "paseo",
    "plaza",
    "carretera",
    "ctra",
    "carrera",
    "barrio",
    "colonia",
    "urbanizacion",
    "pasaje",
    "ronda",
];

/// Words that start a place ("water at the school", "agua en la iglesia").
const PLACE_MARKERS: [&str; 5] = ["at", "en", "in", "@", "near"];

/// Extra words for categories that [`crate::welfare::help_kind`] does not know.
const MORE_CATEGORY_WORDS: [(&str, Category); 16] = [
    ("sandbag", Category::Cleanup),
    ("sandbags", Category::Cleanup),
    ("sacos", Category::Cleanup),
    ("pump", Category::Cleanup),
    ("bomba", Category::Cleanup),
    ("limpieza", Category::Cleanup),
    ("cleanup", Category::Cleanup),
    ("boat", Category::Rescue),
    ("barca", Category::Rescue),
    ("lancha", Category::Rescue),
    ("rescue", Category::Rescue),
    ("rescate", Category::Rescue),
    ("blanket", Category::Shelter),
    ("blankets", Category::Shelter),
    ("mantas", Category::Shelter),
    ("comida", Category::Food),
];

/// Lowercase with the accents of Latin letters taken off ("Peña" → "pena").
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(unaccent)
        .collect()
}

/// A Latin letter without its accent; other characters unchanged.
fn unaccent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'A',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
        'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'O',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ç' => 'c',
        'Ç' => 'C',
        other => other,
    }
}

/// A word as compared with the lists: folded, without punctuation around it.
fn key(word: &str) -> String {
    fold(word.trim_matches(|c: char| !c.is_alphanumeric() && c != '/' && c != '@'))
}

/// `s` as one line fit for a title or place: control and invisible characters
/// become spaces, runs of blanks one space, trimmed, at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut blank = false;
    for c in s.chars() {
        let ok = !c.is_whitespace()
            && text::check(
                "text",
                c.encode_utf8(&mut [0; 4]),
                1,
                Required::No,
                Lines::One,
            )
            .is_ok();
        if ok {
            if blank && !out.is_empty() {
                out.push(' ');
            }
            blank = false;
            out.push(c);
        } else {
            blank = true;
        }
    }
    let trimmed = out.trim_matches(|c: char| c == ',' || c == ';' || c == ':' || c == '-');
    trimmed
        .trim()
        .chars()
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Reads a text.
pub fn read(raw: &str) -> Reading {
    if raw.chars().count() > MAX_TEXT_CHARS {
        return Reading::Unclear(Unclear::TooLong, None);
    }
    let flat = one_line(raw, MAX_TEXT_CHARS);
    if flat.is_empty() {
        return Reading::Unclear(Unclear::Empty, None);
    }
    let words: Vec<&str> = flat.split(' ').collect();
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let whole = keys
        .iter()
        .filter(|k| !k.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    if let Some((_, lang)) = SAFE_TEXTS.iter().find(|(t, _)| *t == whole) {
        return Reading::Safe(*lang);
    }
    if STOP_TEXTS.contains(&whole.as_str()) {
        return Reading::Stop;
    }
    // The keyword: the first word after any lead words, or the second after "se".
    let mut at = 0;
    while at < keys.len() && (LEAD_WORDS.contains(&keys[at].as_str()) || keys[at].is_empty()) {
        at += 1;
    }
    if keys.get(at).map(String::as_str) == Some("se") {
        at += 1;
    }
    let Some(first) = keys.get(at) else {
        return Reading::Unclear(Unclear::NoKeyword, None);
    };
    if let Some((_, lang)) = HELP_WORDS.iter().find(|(w, _)| w == first) {
        let rest = one_line(&words[at + 1..].join(" "), MAX_TITLE * 4);
        return Reading::Help(*lang, rest);
    }
    let kind = NEED_WORDS
        .iter()
        .find(|(w, _)| w == first)
        .map(|(_, l)| (Kind::Need, *l))
        .or_else(|| {
            OFFER_WORDS
                .iter()
                .find(|(w, _)| w == first)
                .map(|(_, l)| (Kind::Offer, *l))
        });
    let Some((kind, lang)) = kind else {
        // No keyword: the best guess is a need of the whole text, for a person to
        // confirm.
        let suggestion = request(Kind::Need, guess_lang(&keys), &words);
        return Reading::Unclear(Unclear::NoKeyword, suggestion);
    };
    let mut rest_at = at + 1;
    // "need: water", "NECESITO - agua"; "offer of a boat".
    while keys
        .get(rest_at)
        .is_some_and(|k| k.is_empty() || k == "of" || k == "for")
    {
        rest_at += 1;
    }
    match request(kind, lang, &words[rest_at.min(words.len())..]) {
        Some(r) => Reading::Post(r),
        None => Reading::Unclear(Unclear::NothingAfterKeyword, None),
    }
}

/// The language of a text without keyword: Spanish if it has a Spanish word we know.
fn guess_lang(keys: &[String]) -> Lang {
    const ES: [&str; 12] = [
        "agua",
        "comida",
        "para",
        "personas",
        "calle",
        "necesito",
        "ayuda",
        "de",
        "la",
        "en",
        "medicinas",
        "luz",
    ];
    if keys.iter().any(|k| ES.contains(&k.as_str())) {
        Lang::Es
    } else {
        Lang::En
    }
}

/// What and where from the words after the keyword; `None` when there is no "what".
fn request(kind: Kind, lang: Lang, words: &[&str]) -> Option<Request> {
    let text = words.join(" ");
    let (what, place) = split_place(&text);
    let title = one_line(&what, MAX_TITLE);
    if title.chars().all(|c| !c.is_alphanumeric()) {
        return None;
    }
    Some(Request {
        kind,
        lang,
        category: guess_category(&title),
        title,
        place: one_line(&place, MAX_LABEL),
    })
}

/// The category from the words of `what` ([`Category::Other`] when none is known).
pub fn guess_category(what: &str) -> Category {
    for w in what.split(|c: char| !c.is_alphanumeric()) {
        let k = fold(w);
        if let Some((_, c)) = MORE_CATEGORY_WORDS.iter().find(|(m, _)| *m == k) {
            return *c;
        }
    }
    match crate::welfare::help_kind(what) {
        Category::Welfare => Category::Other,
        c => c,
    }
}

/// Splits "water 4 people 12 Mill Lane" into what and where, keeping the place as
/// written: after the first comma; else after "at" / "en" / "in"; else from a
/// Spanish street word ("Calle Mayor 5") to the end; else the words before an English
/// street word ("12 Mill Lane", "Elm St"): back over capitalised words and at most one
/// number. No place found: all of it is "what".
fn split_place(text: &str) -> (String, String) {
    if let Some((what, place)) = text.split_once(',') {
        if !what.trim().is_empty() && !place.trim().is_empty() {
            return (what.to_string(), place.to_string());
        }
    }
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let join = |r: std::ops::Range<usize>| words[r].join(" ");
    // A Spanish street word (not first: there is a "what" before it).
    if let Some(i) = (1..words.len()).find(|&i| {
        let w = fold(words[i]);
        STREET_BEFORE.contains(&w.as_str()) || STREET_BEFORE.contains(&keys[i].as_str())
    }) {
        let start = if i >= 2 && PLACE_MARKERS.contains(&keys[i - 1].as_str()) {
            i - 1
        } else {
            i
        };
        return (join(0..start), join(i..words.len()));
    }
    // An English street word: the name before it.
    if let Some(end) = (2..words.len()).find(|&i| STREET_AFTER.contains(&keys[i].as_str())) {
        let mut start = end;
        while start > 1 {
            let w = words[start - 1];
            let number = w.chars().next().is_some_and(|c| c.is_ascii_digit());
            let capital = w.chars().next().is_some_and(char::is_uppercase);
            if PLACE_MARKERS.contains(&keys[start - 1].as_str()) {
                break;
            }
            if number {
                // A house number starts the place.
                start -= 1;
                break;
            }
            if capital && end - start < 3 {
                start -= 1;
            } else {
                break;
            }
        }
        if start < end {
            let what_end = if start >= 2 && PLACE_MARKERS.contains(&keys[start - 1].as_str()) {
                start - 1
            } else {
                start
            };
            return (join(0..what_end), join(start..words.len()));
        }
    }
    // "water at the school": the last marker not first.
    if let Some(i) = (1..words.len().saturating_sub(1))
        .rev()
        .find(|&i| PLACE_MARKERS.contains(&keys[i].as_str()))
    {
        return (join(0..i), join(i + 1..words.len()));
    }
    (text.to_string(), String::new())
}

/// How a text is sent: its encoding and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Every character is in the GSM 03.38 alphabet: this many septets (a character of
    /// the extension table counts two).
    Gsm7(usize),
    /// Some character is not: this many UTF-16 code units.
    Ucs2(usize),
}

impl Encoding {
    /// Segments of a text of this size (a long text's segments carry a header and hold
    /// 153 septets or 67 units).
    pub fn segments(self) -> usize {
        match self {
            Encoding::Gsm7(0) | Encoding::Ucs2(0) => 1,
            Encoding::Gsm7(n) if n <= GSM7_SEGMENT => 1,
            Encoding::Gsm7(n) => n.div_ceil(153),
            Encoding::Ucs2(n) if n <= UCS2_SEGMENT => 1,
            Encoding::Ucs2(n) => n.div_ceil(67),
        }
    }
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Septets of `c` in GSM-7 (1, or 2 for the extension table), `None` if not in it.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// How `text` would be sent.
pub fn encoding(text: &str) -> Encoding {
    let mut septets = 0;
    for c in text.chars() {
        match gsm7_septets(c) {
            Some(n) => septets += n,
            None => return Encoding::Ucs2(text.encode_utf16().count()),
        }
    }
    Encoding::Gsm7(septets)
}

/// `text` cut to one segment. Fits already: unchanged. Else accents that GSM-7 lacks
/// are taken off and other characters it lacks (emoji) dropped, so a Spanish reply
/// keeps 160 characters rather than 70; still too long: cut at a word, with "...".
pub fn one_segment(text: &str) -> String {
    if encoding(text).segments() == 1 && fits(text) {
        return text.to_string();
    }
    let mut plain = String::new();
    for c in text.chars() {
        let c = match c {
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            '\u{2013}' | '\u{2014}' => '-',
            c => unaccent(c),
        };
        if gsm7_septets(c).is_some() {
            plain.push(c);
        } else if c == '\u{2026}' {
            plain.push_str("...");
        }
    }
    if fits(&plain) {
        return plain;
    }
    let mut out = String::new();
    let mut used = 0;
    let budget = GSM7_SEGMENT - 3;
    for c in plain.chars() {
        let n = gsm7_septets(c).unwrap_or(2);
        if used + n > budget {
            break;
        }
        used += n;
        out.push(c);
    }
    // Cut at the last blank if that keeps most of it.
    if let Some(i) = out.rfind(' ') {
        if i > budget / 2 {
            out.truncate(i);
        }
    }
    let mut out = out.trim_end().to_string();
    out.push_str("...");
    out
}

/// Whether `text` is one segment.
pub fn fits(text: &str) -> bool {
    match encoding(text) {
        Encoding::Gsm7(n) => n <= GSM7_SEGMENT,
        Encoding::Ucs2(n) => n <= UCS2_SEGMENT,
    }
}

/// Shortens `title` (by words) until `make(title)` fits one segment, then cuts the
/// whole ([`one_segment`]) if it still does not.
fn fit_with(title: &str, make: impl Fn(&str) -> String) -> String {
    let mut t: Vec<&str> = title.split(' ').collect();
    loop {
        let shown = if t.len() < title.split(' ').count() {
            format!("{}...", t.join(" "))
        } else {
            t.join(" ")
        };
        let m = make(&shown);
        if fits(&m) || t.len() <= 2 {
            return one_segment(&m);
        }
        t.pop();
    }
}

/// The reply to an accepted need or offer: "Got it: water for 12 Mill Lane, ref
/// 3f2a9c, Elm St hub." One segment.
pub fn reply_got(r: &Request, reference: &str, hub: &str) -> String {
    let place = r.place.as_str();
    fit_with(&r.title, |t| match (r.lang, place.is_empty()) {
        (Lang::En, false) => {
            format!(
                "Got it: {} {t} for {place}, ref {reference}, {hub}.",
                r.kind.name()
            )
        }
        (Lang::En, true) => format!(
            "Got it: {} {t}, ref {reference}, {hub}. Text where it is to help us find you.",
            r.kind.name()
        ),
        (Lang::Es, false) => format!("Recibido: {t} en {place}, ref {reference}, {hub}."),
        (Lang::Es, true) => {
            format!("Recibido: {t}, ref {reference}, {hub}. Diga dónde es para encontrarle.")
        }
    })
}

/// The reply to `OK` / `HELP` from someone on the welfare register.
pub fn reply_checkin(lang: Lang, safe: bool, hub: &str) -> String {
    one_segment(&match (lang, safe) {
        (Lang::En, true) => format!("Thank you, we noted you are safe. {hub}."),
        (Lang::En, false) => format!("We noted you need help; someone from {hub} will come."),
        (Lang::Es, true) => format!("Gracias, anotamos que está bien. {hub}."),
        (Lang::Es, false) => format!("Anotamos que necesita ayuda; alguien de {hub} irá."),
    })
}

/// The question of a welfare round by text.
pub fn round_question(lang: Lang, hub: &str) -> String {
    one_segment(&match lang {
        Lang::En => format!("{hub} checking in: reply OK if you are safe, HELP if you need help."),
        Lang::Es => format!("{hub} pregunta: responda BIEN si está bien, AYUDA si necesita ayuda."),
    })
}

/// What happened to a texted item, for [`reply_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Someone is on it.
    Claimed,
    /// Work has started.
    InProgress,
    /// Done.
    Fulfilled,
}

/// The text to the sender when their item changes: "Sam from Oak Rd hub is bringing
/// water, ref 3f2a9c". `who` may be empty (nobody named), `hub` the acting hub's name.
pub fn reply_change(
    lang: Lang,
    kind: Kind,
    change: Change,
    who: &str,
    hub: &str,
    title: &str,
    reference: &str,
) -> String {
    let actor = match (lang, who.is_empty()) {
        (Lang::En, true) => format!("Someone from {hub}"),
        (Lang::En, false) => format!("{who} from {hub}"),
        (Lang::Es, true) => format!("Alguien de {hub}"),
        (Lang::Es, false) => format!("{who} de {hub}"),
    };
    fit_with(title, |t| match (lang, change, kind) {
        (Lang::En, Change::Claimed, Kind::Need) => {
            format!("{actor} is bringing {t}, ref {reference}.")
        }
        (Lang::En, Change::Claimed, Kind::Offer) => {
            format!("{actor} will take your {t}, ref {reference}.")
        }
        (Lang::En, Change::InProgress, _) => {
            format!("{actor} is on the way: {t}, ref {reference}.")
        }
        (Lang::En, Change::Fulfilled, _) => {
            format!("Marked done: {t}, ref {reference}. If not, text HELP.")
        }
        (Lang::Es, Change::Claimed, Kind::Need) => format!("{actor} lleva {t}, ref {reference}."),
        (Lang::Es, Change::Claimed, Kind::Offer) => {
            format!("{actor} recogerá {t}, ref {reference}.")
        }
        (Lang::Es, Change::InProgress, _) => format!("{actor} va en camino: {t}, ref {reference}."),
        (Lang::Es, Change::Fulfilled, _) => {
            format!("Hecho: {t}, ref {reference}. Si no, envíe AYUDA.")
        }
    })
}

/// A phone number as compared: its digits, with a leading `+` kept, other characters
/// (spaces, dashes, brackets, dots) dropped; `None` if fewer than 3 digits.
pub fn normalise_number(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 3 || digits.len() > 20 {
        return None;
    }
    Some(if trimmed.starts_with('+') {
        format!("+{digits}")
    } else if let Some(d) = digits.strip_prefix("00") {
        format!("+{d}")
    } else {
        digits
    })
}

/// Whether two numbers are the same phone: equal, or (one written nationally) equal in
/// their last 9 digits.
pub fn same_number(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (normalise_number(a), normalise_number(b)) else {
        return false;
    };
    if a == b {
        return true;
    }
    let da = a.trim_start_matches('+');
    let db = b.trim_start_matches('+');
    da.len() >= 9 && db.len() >= 9 && da[da.len() - 9..] == db[db.len() - 9..]
}

#[cfg(test)]
#[path = "sms_tests.rs"]
mod tests;
