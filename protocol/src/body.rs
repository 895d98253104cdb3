//! What an event says.
//!
//! Each body is a postcard-encoded struct behind a kind code in the envelope. Within a
//! protocol version the structs and enums are frozen: a new field or enum value arrives
//! as a new kind or a new envelope version, never as a change to an existing layout
//! (postcard has no field tags). Limits are documented on each field and in
//! `docs/protocol.md`; [`Body::check`] enforces them.

use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::error::{DecodeError, FieldError};
use crate::id::EventId;
use crate::text::{check, Lines, Required};

/// Longest title, name or headline.
pub const MAX_TITLE: usize = 120;
/// Longest details or alert text.
pub const MAX_DETAILS: usize = 2000;
/// Longest unit ("litres", "boxes").
pub const MAX_UNIT: usize = 24;
/// Longest place label, contact or area.
pub const MAX_LABEL: usize = 120;
/// Longest note on a status change or check-in.
pub const MAX_NOTE: usize = 500;
/// Longest tag (risk or service).
pub const MAX_TAG: usize = 40;
/// Most tags on one person or hub.
pub const MAX_TAGS: usize = 16;
/// Longest phone number.
pub const MAX_PHONE: usize = 40;
/// Longest volunteer name on a check-in or in a status change's `by: NAME` line.
pub const MAX_BY: usize = 80;
/// Largest quantity.
pub const MAX_QUANTITY: u32 = 1_000_000;
/// Shortest and longest welfare check interval, in seconds (10 minutes, 30 days).
pub const CHECK_EVERY_SECS: (u32, u32) = (600, 30 * 86_400);

/// The kind code in the envelope. Codes are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BodyKind {
    /// 1: a need posted.
    Need,
    /// 2: an offer posted.
    Offer,
    /// 3: status change of a need or offer.
    Status,
    /// 4: person registered for welfare checks.
    Person,
    /// 5: check-in on a person.
    CheckIn,
    /// 6: hub announced.
    Hub,
    /// 7: alert.
    Alert,
    /// 8: redaction of an earlier event's personal data.
    Redaction,
    /// 9: an official alert (from a CAP message), in one or more languages.
    OfficialAlert,
    /// 10: whether a registered person agrees to be shared with responders (PFIF
    /// export). Code 9 belongs to another kind.
    Sharing,
}

impl BodyKind {
    /// Every kind this version understands.
    pub const ALL: [BodyKind; 10] = [
        BodyKind::Need,
        BodyKind::Offer,
        BodyKind::Status,
        BodyKind::Person,
        BodyKind::CheckIn,
        BodyKind::Hub,
        BodyKind::Alert,
        BodyKind::Redaction,
        BodyKind::OfficialAlert,
        BodyKind::Sharing,
    ];

    /// The code on the wire.
    pub fn code(self) -> u16 {
        match self {
            BodyKind::Need => 1,
            BodyKind::Offer => 2,
            BodyKind::Status => 3,
            BodyKind::Person => 4,
            BodyKind::CheckIn => 5,
            BodyKind::Hub => 6,
            BodyKind::Alert => 7,
            BodyKind::Redaction => 8,
            BodyKind::OfficialAlert => 9,
            BodyKind::Sharing => 10,
        }
    }

    /// The kind for a wire code, if known.
    pub fn from_code(code: u16) -> Option<BodyKind> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Lowercase name, as in the API's `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            BodyKind::Need => "need",
            BodyKind::Offer => "offer",
            BodyKind::Status => "status",
            BodyKind::Person => "person",
            BodyKind::CheckIn => "checkin",
            BodyKind::Hub => "hub",
            BodyKind::Alert => "alert",
            BodyKind::Redaction => "redaction",
            BodyKind::OfficialAlert => "official-alert",
            BodyKind::Sharing => "sharing",
        }
    }
}

/// How urgent a need is. Order matters: later is more urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Urgency {
    /// Can wait days.
    Low,
    /// The default.
    Normal,
    /// Within hours.
    High,
    /// Someone may die without it.
    LifeThreatening,
}

impl Urgency {
    /// All values, least urgent first.
    pub const ALL: [Urgency; 4] = [
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
        Urgency::LifeThreatening,
    ];

    /// Name on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::LifeThreatening => "life-threatening",
        }
    }
}

/// A position in 1e-7 degrees (WGS 84), fixed point so that encoding is exact and
/// there is no NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Coords {
    /// Latitude × 10⁷, within ±90°.
    pub lat_e7: i32,
    /// Longitude × 10⁷, within ±180°.
    pub lon_e7: i32,
}

impl Coords {
    /// From degrees; `None` if out of range or not finite.
    pub fn from_degrees(lat: f64, lon: f64) -> Option<Coords> {
        if !(lat.is_finite() && lon.is_finite()) {
            return None;
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return None;
        }
        Some(Coords {
            lat_e7: (lat * 1e7).round() as i32,
            lon_e7: (lon * 1e7).round() as i32,
        })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }

    /// Longitude in degrees.
    pub fn lon(self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: Coords) -> f64 {
        let (la1, lo1) = (self.lat().to_radians(), self.lon().to_radians());
        let (la2, lo2) = (other.lat().to_radians(), other.lon().to_radians());
        let a = ((la2 - la1) / 2.0).sin().powi(2)
            + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
        2.0 * 6_371_000.0 * a.sqrt().asin()
    }

    fn check(self) -> Result<(), FieldError> {
        if self.lat_e7.unsigned_abs() > 900_000_000 {
            return Err(FieldError::new(
                "place.lat",
                "out_of_range",
                "must be within ±90 degrees",
            ));
        }
        if self.lon_e7.unsigned_abs() > 1_800_000_000 {
            return Err(FieldError::new(
                "place.lon",
                "out_of_range",
                "must be within ±180 degrees",
            ));
        }
        Ok(())
    }
}

/// Where something is: a label people understand, and coordinates if known.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Place {
    /// "12 Mill Lane", "Elm St hub"; at most [`MAX_LABEL`] characters, may be empty.
    pub label: String,
    /// Optional position.
    pub coords: Option<Coords>,
}

impl Place {
    fn check(&self) -> Result<(), FieldError> {
        check(
            "place.label",
            &self.label,
            MAX_LABEL,
            Required::No,
            Lines::One,
        )?;
        self.coords.map_or(Ok(()), Coords::check)
    }
}

/// A need or an offer (the kind code tells which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// Short summary, 1..=[`MAX_TITLE`] characters.
    pub title: String,
    /// One of the fixed categories.
    pub category: Category,
    /// Free text, at most [`MAX_DETAILS`] characters, may span lines.
    pub details: String,
    /// How many, 1..=[`MAX_QUANTITY`], if countable.
    pub quantity: Option<u32>,
    /// Unit of the quantity, at most [`MAX_UNIT`] characters.
    pub unit: String,
    /// How urgent.
    pub urgency: Urgency,
    /// Where.
    pub place: Place,
    /// How to reach the poster, at most [`MAX_LABEL`] characters. Personal data.
    pub contact: String,
    /// Wall-clock milliseconds after which the post is shown as expired.
    pub expires_ms: Option<u64>,
    /// An event this post relates to (a check-in that found someone needing help).
    pub related: Option<EventId>,
}

impl Post {
    /// A post of `title` in `category` at `urgency`, with every other field empty (no
    /// details, quantity, place, contact, expiry or relation): fill in what is known
    /// with struct update syntax.
    pub fn new(title: impl Into<String>, category: Category, urgency: Urgency) -> Post {
        Post {
            title: title.into(),
            category,
            details: String::new(),
            quantity: None,
            unit: String::new(),
            urgency,
            place: Place::default(),
            contact: String::new(),
            expires_ms: None,
            related: None,
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        check("title", &self.title, MAX_TITLE, Required::Yes, Lines::One)?;
        check(
            "details",
            &self.details,
            MAX_DETAILS,
            Required::No,
            Lines::Many,
        )?;
        check("unit", &self.unit, MAX_UNIT, Required::No, Lines::One)?;
        check(
            "contact",
            &self.contact,
            MAX_LABEL,
            Required::No,
            Lines::One,
        )?;
        if let Some(q) = self.quantity {
            if q == 0 || q > MAX_QUANTITY {
                return Err(FieldError::new(
                    "quantity",
                    "out_of_range",
                    format!("must be between 1 and {MAX_QUANTITY}"),
                ));
            }
        }
        self.place.check()
    }
}

/// A status a need or offer can be moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Someone is taking care of it.
    Claimed,
    /// Work has started.
    InProgress,
    /// Done. Terminal until reopened.
    Fulfilled,
    /// The author took it back. Terminal until the author reopens it.
    Withdrawn,
    /// Back to open.
    Reopened,
}

impl Status {
    /// All values.
    pub const ALL: [Status; 5] = [
        Status::Claimed,
        Status::InProgress,
        Status::Fulfilled,
        Status::Withdrawn,
        Status::Reopened,
    ];

    /// Name on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Status::Claimed => "claimed",
            Status::InProgress => "in-progress",
            Status::Fulfilled => "fulfilled",
            Status::Withdrawn => "withdrawn",
            Status::Reopened => "reopened",
        }
    }
}

/// A status change of a need or offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The need or offer.
    pub target: EventId,
    /// The new status.
    pub status: Status,
    /// Optional note, at most [`MAX_NOTE`] characters. Its first line may name who
    /// acts, as `by: NAME` (see [`StatusChange::by`]); the layout stays frozen.
    pub note: String,
}

/// Prefix of the note's first line that names who acts on a status change.
pub const BY_PREFIX: &str = "by: ";
impl StatusChange {
    /// A note naming `by` on its first line, then `text`. An empty `by` adds nothing,
    /// except that a text which itself starts with `by: ` gets a leading space, so that
    /// "by: Friday" stays a note and names nobody.
    pub fn compose_note(by: &str, text: &str) -> String {
        let by = by.trim();
        match (by.is_empty(), text.is_empty()) {
            (true, _) if text.starts_with(BY_PREFIX) => format!(" {text}"),
            (true, _) => text.to_string(),
            (false, true) => format!("{BY_PREFIX}{by}"),
            (false, false) => format!("{BY_PREFIX}{by}\n{text}"),
        }
    }

    /// Splits a note into who acted (its `by: NAME` first line, if any) and the rest.
    /// Events from older nodes carry no such line and give `(None, note)`.
    pub fn split_note(note: &str) -> (Option<&str>, &str) {
        let (first, rest) = note.split_once('\n').unwrap_or((note, ""));
        match first.strip_prefix(BY_PREFIX).map(str::trim) {
            Some(by) if !by.is_empty() => (Some(by), rest),
            _ => (None, note),
        }
    }

    /// Who this change says acted, if it names anyone.
    pub fn by(&self) -> Option<&str> {
        Self::split_note(&self.note).0
    }
}

/// Who agreed to a person being registered for checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Consent {
    /// The person themselves.
    Own,
    /// A relative.
    Relative,
    /// A neighbour.
    Neighbour,
}

impl Consent {
    /// Name on the command line ("self", "relative", "neighbour").
    pub fn name(self) -> &'static str {
        match self {
            Consent::Own => "self",
            Consent::Relative => "relative",
            Consent::Neighbour => "neighbour",
        }
    }
}

/// A person registered for welfare checks. Every field but the interval is personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRegistered {
    /// Name, 1..=[`MAX_TITLE`] characters.
    pub name: String,
    /// Where they are.
    pub place: Place,
    /// What puts them at risk ("oxygen", "lives alone"): at most [`MAX_TAGS`] tags of
    /// 1..=[`MAX_TAG`] characters.
    pub risks: Vec<String>,
    /// How often to check, in seconds, within [`CHECK_EVERY_SECS`].
    pub check_every_secs: u32,
    /// Who agreed.
    pub consent: Consent,
    /// Optional phone, at most [`MAX_PHONE`] characters.
    pub phone: String,
    /// Optional note, at most [`MAX_NOTE`] characters.
    pub note: String,
}

/// What a volunteer found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Safe and well.
    Safe,
    /// Needs help with this (1..=[`MAX_NOTE`] characters).
    NeedsHelp(String),
    /// Nobody answered.
    NoAnswer,
    /// Not at home.
    NotAtHome,
    /// Moved to this place (1..=[`MAX_LABEL`] characters).
    Moved(String),
}

impl Outcome {
    /// Name in the API ("safe", "needs-help", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Safe => "safe",
            Outcome::NeedsHelp(_) => "needs-help",
            Outcome::NoAnswer => "no-answer",
            Outcome::NotAtHome => "not-home",
            Outcome::Moved(_) => "moved",
        }
    }
}

/// A check-in on a registered person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// The person's registration event.
    pub person: EventId,
    /// What was found.
    pub outcome: Outcome,
    /// Optional note, at most [`MAX_NOTE`] characters.
    pub note: String,
    /// The volunteer's name ("self" for a person reporting themselves), at most
    /// [`MAX_BY`] characters.
    pub by: String,
}

/// A hub: a place where people gather and help is organised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubAnnounced {
    /// Name, 1..=[`MAX_TITLE`] characters.
    pub name: String,
    /// Where.
    pub place: Place,
    /// What it offers ("water", "charging", "first aid", "beds"): at most [`MAX_TAGS`]
    /// tags of 1..=[`MAX_TAG`] characters.
    pub services: Vec<String>,
}

/// Alert severity, as in CAP 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Minor threat to life or property.
    Minor,
    /// Possible threat.
    Moderate,
    /// Significant threat.
    Severe,
    /// Extraordinary threat.
    Extreme,
}

impl Severity {
    /// Name on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
            Severity::Extreme => "extreme",
        }
    }
}

/// A warning for everyone ("water rising on River Road").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// How serious.
    pub severity: Severity,
    /// Headline, 1..=[`MAX_TITLE`] characters.
    pub headline: String,
    /// Details, at most [`MAX_DETAILS`] characters.
    pub text: String,
    /// Area concerned, at most [`MAX_LABEL`] characters.
    pub area: String,
    /// Wall-clock milliseconds after which the alert is no longer shown.
    pub expires_ms: Option<u64>,
}

/// How soon people should act on an official alert (CAP `urgency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlertUrgency {
    /// Act now.
    Immediate,
    /// Act soon (within the next hour).
    Expected,
    /// Act in the near future.
    Future,
    /// No longer required.
    Past,
    /// Not known.
    Unknown,
}

impl AlertUrgency {
    /// Name in the API and in CAP, lowercased ("immediate", ...).
    pub fn name(self) -> &'static str {
        match self {
            AlertUrgency::Immediate => "immediate",
            AlertUrgency::Expected => "expected",
            AlertUrgency::Future => "future",
            AlertUrgency::Past => "past",
            AlertUrgency::Unknown => "unknown",
        }
    }
}

/// Most languages one official alert carries.
pub const MAX_LANGUAGES: usize = 4;

/// One language's text of an official alert (a CAP `info` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertText {
    /// Language tag (RFC 5646, as CAP's `language`), e.g. "en-US"; 1..=[`MAX_TAG`]
    /// characters.
    pub language: String,
    /// What the alert is about ("Flood Warning"), 1..=[`MAX_TITLE`] characters.
    pub event: String,
    /// Headline, 1..=[`MAX_TITLE`] characters.
    pub headline: String,
    /// Description and instructions, at most [`MAX_DETAILS`] characters.
    pub text: String,
    /// Area description, at most [`MAX_LABEL`] characters.
    pub area: String,
}

/// An alert issued by an authority (a weather or civil-protection service), taken in
/// from a CAP message: one alert, however many languages it comes in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialAlert {
    /// How serious (CAP "Unknown" is taken as moderate).
    pub severity: Severity,
    /// How soon to act.
    pub urgency: AlertUrgency,
    /// Wall-clock milliseconds after which the alert is no longer shown.
    pub expires_ms: Option<u64>,
    /// Who issued it (CAP `senderName`, else `sender`), 1..=[`MAX_LABEL`] characters.
    pub sender: String,
    /// The message's CAP `identifier`, 1..=[`MAX_LABEL`] characters: with the sender it
    /// names the message, so the same message is taken in once.
    pub identifier: String,
    /// The texts, 1..=[`MAX_LANGUAGES`] of them, each of a different language; the
    /// first is shown when the reader's language is not among them.
    pub texts: Vec<AlertText>,
}

impl OfficialAlert {
    /// The text in `language` (a tag such as "es" or "es-MX"): the same tag, else the
    /// same primary language, else the first text (`None` only for a body that breaks
    /// its limits: validated ones have at least one text).
    pub fn text_for(&self, language: &str) -> Option<&AlertText> {
        let primary = |t: &str| t.split('-').next().unwrap_or("").to_ascii_lowercase();
        let want = primary(language);
        self.texts
            .iter()
            .find(|t| t.language.eq_ignore_ascii_case(language))
            .or_else(|| {
                self.texts
                    .iter()
                    .find(|t| !want.is_empty() && primary(&t.language) == want)
            })
            .or_else(|| self.texts.first())
    }

    /// The alert as the board files it: the first language's text.
    pub fn as_alert(&self) -> Alert {
        let t = self.texts.first();
        let field = |f: fn(&AlertText) -> &String| t.map(f).cloned().unwrap_or_default();
        Alert {
            severity: self.severity,
            headline: field(|t| &t.headline),
            text: field(|t| &t.text),
            area: field(|t| &t.area),
            expires_ms: self.expires_ms,
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        check("sender", &self.sender, MAX_LABEL, Required::Yes, Lines::One)?;
        check(
            "identifier",
            &self.identifier,
            MAX_LABEL,
            Required::Yes,
            Lines::One,
        )?;
        if self.texts.is_empty() || self.texts.len() > MAX_LANGUAGES {
            return Err(FieldError::new(
                "texts",
                "too_many",
                format!("must hold 1 to {MAX_LANGUAGES} languages"),
            ));
        }
        for (i, t) in self.texts.iter().enumerate() {
            check("language", &t.language, MAX_TAG, Required::Yes, Lines::One)?;
            check("event", &t.event, MAX_TITLE, Required::Yes, Lines::One)?;
            check(
                "headline",
                &t.headline,
                MAX_TITLE,
                Required::Yes,
                Lines::One,
            )?;
            check("text", &t.text, MAX_DETAILS, Required::No, Lines::Many)?;
            check("area", &t.area, MAX_LABEL, Required::No, Lines::One)?;
            if self.texts[..i]
                .iter()
                .any(|o| o.language.eq_ignore_ascii_case(&t.language))
            {
                return Err(FieldError::new("language", "duplicate", "appears twice"));
            }
        }
        Ok(())
    }
}

/// The author removes an earlier event's personal data everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// The event whose content is removed.
    pub target: EventId,
    /// Optional reason, at most [`MAX_NOTE`] characters; must not repeat personal data.
    pub reason: String,
}

/// Whether a registered person agrees that their record and check-ins are handed to
/// responders (the PFIF export). Given at registration or changed later, by the hub
/// that registered them; the newest such event on a person counts, and without one
/// the answer is no. Holds no personal data itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharing {
    /// The person's registration event.
    pub person: EventId,
    /// Yes (share with responders) or no (do not, or no longer).
    pub share: bool,
}

/// Any body this version understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Kind 1.
    Need(Post),
    /// Kind 2.
    Offer(Post),
    /// Kind 3.
    Status(StatusChange),
    /// Kind 4.
    Person(PersonRegistered),
    /// Kind 5.
    CheckIn(CheckIn),
    /// Kind 6.
    Hub(HubAnnounced),
    /// Kind 7.
    Alert(Alert),
    /// Kind 8.
    Redaction(Redaction),
    /// Kind 9.
    OfficialAlert(OfficialAlert),
    /// Kind 10.
    Sharing(Sharing),
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail.
    postcard::to_stdvec(v).unwrap_or_default()
}

fn from_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    const WHAT: &str = "event body";
    let (v, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed {
        what: WHAT,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what: WHAT,
            extra: rest.len(),
        });
    }
    Ok(v)
}

fn check_tags(field: &'static str, tags: &[String]) -> Result<(), FieldError> {
    if tags.len() > MAX_TAGS {
        return Err(FieldError::new(
            field,
            "too_many",
            format!("has {} tags, the limit is {MAX_TAGS}", tags.len()),
        ));
    }
    tags.iter()
        .try_for_each(|t| check(field, t, MAX_TAG, Required::Yes, Lines::One))
}

impl Body {
    /// The kind of this body.
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::Need(_) => BodyKind::Need,
            Body::Offer(_) => BodyKind::Offer,
            Body::Status(_) => BodyKind::Status,
            Body::Person(_) => BodyKind::Person,
            Body::CheckIn(_) => BodyKind::CheckIn,
            Body::Hub(_) => BodyKind::Hub,
            Body::Alert(_) => BodyKind::Alert,
            Body::Redaction(_) => BodyKind::Redaction,
            Body::OfficialAlert(_) => BodyKind::OfficialAlert,
            Body::Sharing(_) => BodyKind::Sharing,
        }
    }

    /// postcard bytes of the body (without the kind, which the envelope carries).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Body::Need(p) | Body::Offer(p) => to_vec(p),
            Body::Status(s) => to_vec(s),
            Body::Person(p) => to_vec(p),
            Body::CheckIn(c) => to_vec(c),
            Body::Hub(h) => to_vec(h),
            Body::Alert(a) => to_vec(a),
            Body::Redaction(r) => to_vec(r),
            Body::OfficialAlert(a) => to_vec(a),
            Body::Sharing(c) => to_vec(c),
        }
    }

    /// Decodes a body of a known kind; `Ok(None)` for a kind this version does not know.
    /// Trailing bytes are an error.
    pub fn decode(kind: u16, bytes: &[u8]) -> Result<Option<Body>, DecodeError> {
        let Some(kind) = BodyKind::from_code(kind) else {
            return Ok(None);
        };
        let body = match kind {
            BodyKind::Need => Body::Need(from_exact(bytes)?),
            BodyKind::Offer => Body::Offer(from_exact(bytes)?),
            BodyKind::Status => Body::Status(from_exact(bytes)?),
            BodyKind::Person => Body::Person(from_exact(bytes)?),
            BodyKind::CheckIn => Body::CheckIn(from_exact(bytes)?),
            BodyKind::Hub => Body::Hub(from_exact(bytes)?),
            BodyKind::Alert => Body::Alert(from_exact(bytes)?),
            BodyKind::Redaction => Body::Redaction(from_exact(bytes)?),
            BodyKind::OfficialAlert => Body::OfficialAlert(from_exact(bytes)?),
            BodyKind::Sharing => Body::Sharing(from_exact(bytes)?),
        };
        Ok(Some(body))
    }

    /// Checks every documented field limit.
    pub fn check(&self) -> Result<(), FieldError> {
        match self {
            Body::Need(p) | Body::Offer(p) => p.check(),
            Body::Status(s) => check("note", &s.note, MAX_NOTE, Required::No, Lines::Many),
            Body::Person(p) => {
                check("name", &p.name, MAX_TITLE, Required::Yes, Lines::One)?;
                p.place.check()?;
                check_tags("risks", &p.risks)?;
                let (lo, hi) = CHECK_EVERY_SECS;
                if !(lo..=hi).contains(&p.check_every_secs) {
                    return Err(FieldError::new(
                        "check_every_secs",
                        "out_of_range",
                        format!("must be between {lo} s (10 min) and {hi} s (30 days)"),
                    ));
                }
                check("phone", &p.phone, MAX_PHONE, Required::No, Lines::One)?;
                check("note", &p.note, MAX_NOTE, Required::No, Lines::Many)
            }
            Body::CheckIn(c) => {
                match &c.outcome {
                    Outcome::NeedsHelp(what) => check(
                        "outcome.needs_help",
                        what,
                        MAX_NOTE,
                        Required::Yes,
                        Lines::Many,
                    )?,
                    Outcome::Moved(to) => {
                        check("outcome.moved", to, MAX_LABEL, Required::Yes, Lines::One)?
                    }
                    Outcome::Safe | Outcome::NoAnswer | Outcome::NotAtHome => {}
                }
                check("note", &c.note, MAX_NOTE, Required::No, Lines::Many)?;
                check("by", &c.by, MAX_BY, Required::No, Lines::One)
            }
            Body::Hub(h) => {
                check("name", &h.name, MAX_TITLE, Required::Yes, Lines::One)?;
                h.place.check()?;
                check_tags("services", &h.services)
            }
            Body::Alert(a) => {
                check(
                    "headline",
                    &a.headline,
                    MAX_TITLE,
                    Required::Yes,
                    Lines::One,
                )?;
                check("text", &a.text, MAX_DETAILS, Required::No, Lines::Many)?;
                check("area", &a.area, MAX_LABEL, Required::No, Lines::One)
            }
            Body::Redaction(r) => check("reason", &r.reason, MAX_NOTE, Required::No, Lines::Many),
            Body::OfficialAlert(a) => a.check(),
            Body::Sharing(_) => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
