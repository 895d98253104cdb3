//! Turning what a person typed (CLI options, HTTP JSON) into protocol values, with
//! errors that say what was wrong and what is valid. One place, used by every door.

use std::time::Duration;

use aidmesh_protocol::body::{
    Alert, CheckIn, Consent, Coords, HubAnnounced, Outcome, PersonRegistered, Place, Post,
    Severity, Status, StatusChange, Urgency, MAX_BY,
};
use aidmesh_protocol::{Category, EventId};
use libp2p::Multiaddr;
use serde::Deserialize;

/// A rejected input: which field, what is wrong as a machine word (docs/api.md,
/// "Refusals field by field"), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The field as the user named it.
    pub field: &'static str,
    /// What is wrong, for a page to say in its own language: `required`, `too_long`,
    /// `bad_character`, `unknown`, `not_a_duration`, `out_of_range`,
    /// `both_or_neither`, `invalid`.
    pub code: &'static str,
    /// The problem and the fix.
    pub detail: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

fn err(field: &'static str, detail: impl Into<String>) -> InputError {
    err_as(field, "invalid", detail)
}

fn err_as(field: &'static str, code: &'static str, detail: impl Into<String>) -> InputError {
    InputError {
        field,
        code,
        detail: detail.into(),
    }
}

/// Parses "90s", "30m", "2h", "3d", "1w" (or a bare number of seconds).
pub fn parse_duration(field: &'static str, s: &str) -> Result<Duration, InputError> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| {
        err_as(
            field,
            "not_a_duration",
            format!("'{s}' is not a duration; use a number and a unit, e.g. 90s, 30m, 2h, 3d"),
        )
    })?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        other => {
            return Err(err_as(
                field,
                "not_a_duration",
                format!("unknown unit '{other}' in '{s}'; use s, m, h, d or w"),
            ))
        }
    };
    let total = n
        .checked_mul(secs)
        .filter(|t| *t <= 366 * 86_400)
        .ok_or_else(|| {
            err_as(
                field,
                "out_of_range",
                format!("'{s}' is longer than a year"),
            )
        })?;
    if total == 0 {
        return Err(err_as(field, "out_of_range", "must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// Parses an urgency name.
pub fn parse_urgency(s: &str) -> Result<Urgency, InputError> {
    let k = s.trim().to_lowercase();
    Urgency::ALL
        .into_iter()
        .find(|u| u.name() == k || (k == "critical" && *u == Urgency::LifeThreatening))
        .ok_or_else(|| {
            let names: Vec<_> = Urgency::ALL.iter().map(|u| u.name()).collect();
            err_as(
                "urgency",
                "unknown",
                format!("unknown urgency '{s}'; valid: {}", names.join(", ")),
            )
        })
}

/// Parses a status-change name.
pub fn parse_status(s: &str) -> Result<Status, InputError> {
    let k = s.trim().to_lowercase().replace('_', "-");
    let k = match k.as_str() {
        "progress" => "in-progress",
        "fulfil" | "fulfill" | "fulfilled" | "done" => "fulfilled",
        "claim" => "claimed",
        "withdraw" => "withdrawn",
        "reopen" => "reopened",
        other => other,
    };
    Status::ALL
        .into_iter()
        .find(|x| x.name() == k)
        .ok_or_else(|| {
            let names: Vec<_> = Status::ALL.iter().map(|u| u.name()).collect();
            err_as(
                "status",
                "unknown",
                format!("unknown status '{s}'; valid: {}", names.join(", ")),
            )
        })
}

/// Parses a category (names and synonyms; the error lists the valid ones).
pub fn parse_category(s: &str) -> Result<Category, InputError> {
    s.parse::<Category>()
        .map_err(|e| err_as("category", "unknown", e.to_string()))
}

/// Checks latitude and longitude given together and in range.
pub fn parse_coords(lat: Option<f64>, lon: Option<f64>) -> Result<Option<Coords>, InputError> {
    match (lat, lon) {
        (None, None) => Ok(None),
        (Some(lat), Some(lon)) => Coords::from_degrees(lat, lon).map(Some).ok_or_else(|| {
            err_as(
                "lat/lon",
                "out_of_range",
                format!("({lat}, {lon}) is not a position; latitude must be within ±90 and longitude within ±180 degrees"),
            )
        }),
        _ => Err(err_as("lat/lon", "both_or_neither", "give both latitude and longitude, or neither")),
    }
}

/// Parses an alert severity (CAP 1.2 names).
pub fn parse_severity(s: &str) -> Result<Severity, InputError> {
    let k = s.trim().to_lowercase();
    [
        Severity::Minor,
        Severity::Moderate,
        Severity::Severe,
        Severity::Extreme,
    ]
    .into_iter()
    .find(|x| x.name() == k)
    .ok_or_else(|| {
        err_as(
            "severity",
            "unknown",
            format!("unknown severity '{s}'; valid: minor, moderate, severe, extreme"),
        )
    })
}

/// A hub announcement as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubInput {
    /// Name (required).
    pub name: String,
    /// Place label.
    pub place: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Services, e.g. ["water", "charging"].
    #[serde(default)]
    pub services: Vec<String>,
}

impl HubInput {
    /// Builds the hub body.
    pub fn into_hub(self) -> Result<HubAnnounced, InputError> {
        Ok(HubAnnounced {
            name: self.name.trim().to_string(),
            place: Place {
                label: self.place.unwrap_or_default().trim().to_string(),
                coords: parse_coords(self.lat, self.lon)?,
            },
            services: self
                .services
                .iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }
}

/// An alert as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertInput {
    /// Headline (required).
    pub headline: String,
    /// minor, moderate, severe (default) or extreme.
    pub severity: Option<String>,
    /// Details.
    pub details: Option<String>,
    /// Area concerned.
    pub area: Option<String>,
    /// Expiry as a duration from now; [`ALERT_DEFAULT_EXPIRY`] when absent.
    pub expires: Option<String>,
}

/// How long an alert stays up when no expiry is given: a day. A stale alert ("water
/// rising") that nobody remembers to clear does more harm than one that needs
/// raising again.
pub const ALERT_DEFAULT_EXPIRY: Duration = Duration::from_secs(86_400);

impl AlertInput {
    /// Builds the alert body at `now_ms`.
    pub fn into_alert(self, now_ms: u64) -> Result<Alert, InputError> {
        Ok(Alert {
            severity: match &self.severity {
                Some(s) => parse_severity(s)?,
                None => Severity::Severe,
            },
            headline: self.headline.trim().to_string(),
            text: self.details.unwrap_or_default(),
            area: self.area.unwrap_or_default().trim().to_string(),
            expires_ms: Some(
                now_ms
                    + match &self.expires {
                        Some(e) => parse_duration("expires", e)?,
                        None => ALERT_DEFAULT_EXPIRY,
                    }
                    .as_millis() as u64,
            ),
        })
    }
}

/// A need or offer as typed: the fields mirror the CLI options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostInput {
    /// Title (required).
    pub title: String,
    /// Category name (required).
    pub category: String,
    /// Urgency name; default normal.
    pub urgency: Option<String>,
    /// Quantity.
    pub qty: Option<u32>,
    /// Unit.
    pub unit: Option<String>,
    /// Place label.
    pub place: Option<String>,
    /// Latitude in degrees.
    pub lat: Option<f64>,
    /// Longitude in degrees.
    pub lon: Option<f64>,
    /// Contact.
    pub contact: Option<String>,
    /// Details.
    pub details: Option<String>,
    /// Expiry as a duration from now ("2h", "3d").
    pub expires: Option<String>,
}

impl PostInput {
    /// Builds the post body at wall-clock time `now_ms`. Text limits are checked later
    /// by the protocol's validation, with the same messages for every door.
    pub fn into_post(self, now_ms: u64) -> Result<Post, InputError> {
        let expires_ms = match &self.expires {
            Some(e) => Some(now_ms + parse_duration("expires", e)?.as_millis() as u64),
            None => None,
        };
        Ok(Post {
            title: self.title.trim().to_string(),
            category: parse_category(&self.category)?,
            details: self.details.unwrap_or_default(),
            quantity: self.qty,
            unit: self.unit.unwrap_or_default().trim().to_string(),
            urgency: match &self.urgency {
                Some(u) => parse_urgency(u)?,
                None => Urgency::Normal,
            },
            place: Place {
                label: self.place.unwrap_or_default().trim().to_string(),
                coords: parse_coords(self.lat, self.lon)?,
            },
            contact: self.contact.unwrap_or_default().trim().to_string(),
            expires_ms,
            related: None,
        })
    }
}

/// Which items a list shows (`?status=`): one status, or the groups "active"
/// (default), "expired" and "all".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    /// Open, claimed or in progress, and not expired (the default).
    Active,
    /// Everything, whatever its status.
    All,
    /// Past its expiry.
    Expired,
    /// Not expired, with exactly this status name.
    Is(&'static str),
}

/// The query of `GET /api/v1/needs|offers|items`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Category name.
    pub category: Option<String>,
    /// Status name or group.
    pub status: Option<String>,
    /// Search words: every word must appear in the title, details, place, contact or
    /// unit (any case).
    pub q: Option<String>,
    /// Urgency name.
    pub urgency: Option<String>,
    /// The announced hub name (any case) or short author id of the poster.
    pub hub: Option<String>,
    /// Items per page, 1..=[`MAX_LIST_LIMIT`]; without `limit` and `cursor`, everything.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The most items on one page of a list.
pub const MAX_LIST_LIMIT: usize = 500;

/// Items per page when only `cursor` is given.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// The longest search text or hub filter accepted.
pub const MAX_FILTER_LEN: usize = 200;

/// Where a list is in its order (most urgent first, then newest, then by id): a page
/// starts after the item with this key. Written `<urgency rank>.<created>.<id hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListKey(pub std::cmp::Reverse<(Urgency, u64, EventId)>);

impl ListKey {
    /// The key of an item with this urgency, creation time (raw timestamp) and id.
    pub fn new(urgency: Urgency, created: u64, id: EventId) -> ListKey {
        ListKey(std::cmp::Reverse((urgency, created, id)))
    }

    fn parse(s: &str) -> Option<ListKey> {
        let mut parts = s.split('.');
        let (u, t, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let urgency = *Urgency::ALL.get(u.parse::<usize>().ok()?)?;
        Some(ListKey::new(urgency, t.parse().ok()?, id.parse().ok()?))
    }
}

impl std::fmt::Display for ListKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (u, t, id) = self.0 .0;
        let rank = Urgency::ALL.iter().position(|x| *x == u).unwrap_or(0);
        write!(f, "{rank}.{t}.{}", id.to_hex())
    }
}

/// A checked page request of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPage {
    /// Items on the page.
    pub limit: usize,
    /// The page starts after this item.
    pub after: Option<ListKey>,
}

/// A free-text filter: trimmed, at most [`MAX_FILTER_LEN`] characters, no control
/// characters; empty means no filter.
fn filter_text(field: &'static str, v: Option<&str>) -> Result<Option<String>, InputError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_FILTER_LEN {
        return Err(err_as(
            field,
            "too_long",
            format!("too long; give at most {MAX_FILTER_LEN} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(err_as(
            field,
            "bad_character",
            "control characters are not allowed",
        ));
    }
    Ok(Some(v.to_lowercase()))
}

impl ListQuery {
    /// The category filter, if any.
    pub fn category(&self) -> Result<Option<Category>, InputError> {
        self.category.as_deref().map(parse_category).transpose()
    }

    /// The status filter.
    pub fn status(&self) -> Result<ListStatus, InputError> {
        const VALID: [&str; 8] = [
            "open",
            "claimed",
            "in-progress",
            "fulfilled",
            "withdrawn",
            "expired",
            "active",
            "all",
        ];
        let Some(s) = &self.status else {
            return Ok(ListStatus::Active);
        };
        let s = s.to_lowercase();
        match VALID.iter().find(|v| **v == s) {
            Some(&"active") => Ok(ListStatus::Active),
            Some(&"all") => Ok(ListStatus::All),
            Some(&"expired") => Ok(ListStatus::Expired),
            Some(v) => Ok(ListStatus::Is(v)),
            None => Err(err_as(
                "status",
                "unknown",
                format!("unknown status '{s}'; valid: {}", VALID.join(", ")),
            )),
        }
    }

    /// The search words (lowercased), if any.
    pub fn search(&self) -> Result<Vec<String>, InputError> {
        Ok(filter_text("q", self.q.as_deref())?
            .map(|q| q.split_whitespace().map(String::from).collect())
            .unwrap_or_default())
    }

    /// The urgency filter, if any.
    pub fn urgency(&self) -> Result<Option<Urgency>, InputError> {
        self.urgency.as_deref().map(parse_urgency).transpose()
    }

    /// The hub filter (lowercased), if any.
    pub fn hub(&self) -> Result<Option<String>, InputError> {
        filter_text("hub", self.hub.as_deref())
    }

    /// The page asked for, or `None` for the whole list (neither `limit` nor `cursor`).
    pub fn page(&self) -> Result<Option<ListPage>, InputError> {
        if self.limit.is_none() && self.cursor.is_none() {
            return Ok(None);
        }
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIST_LIMIT,
            Some(v) => {
                let ok = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                match v.parse::<usize>() {
                    Ok(n) if ok && (1..=MAX_LIST_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(err_as(
                            "limit",
                            "out_of_range",
                            format!(
                                "'{v}' is not allowed; give a whole number from 1 to \
                                 {MAX_LIST_LIMIT} (default {DEFAULT_LIST_LIMIT})"
                            ),
                        ))
                    }
                }
            }
        };
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) => Some(ListKey::parse(c).ok_or_else(|| {
                err(
                    "cursor",
                    "not a cursor from this API; pass the previous page's next_cursor as it \
                     was given, or leave cursor out for the first page",
                )
            })?),
        };
        Ok(Some(ListPage { limit, after }))
    }
}

/// A status change as typed (`POST /api/v1/items/{id}/status`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// Status name (claim, progress, fulfilled, withdraw, reopen...).
    pub status: String,
    /// Note.
    pub note: Option<String>,
    /// Who acts (a name or handle), carried as the note's `by: NAME` first line.
    pub by: Option<String>,
}

impl StatusInput {
    /// Builds the status change of item `target`.
    pub fn into_change(self, target: EventId) -> Result<StatusChange, InputError> {
        let by = self.by.unwrap_or_default();
        let by = by.trim();
        if by.chars().count() > MAX_BY {
            return Err(err_as(
                "by",
                "too_long",
                format!(
                    "is {} characters, the limit is {MAX_BY}",
                    by.chars().count()
                ),
            ));
        }
        if by.chars().any(char::is_control) {
            return Err(err_as(
                "by",
                "bad_character",
                "must be one line of plain text",
            ));
        }
        Ok(StatusChange {
            target,
            status: parse_status(&self.status)?,
            note: StatusChange::compose_note(by, &self.note.unwrap_or_default()),
        })
    }
}

/// An alert's new state as typed (`POST /api/v1/alerts/{id}/status`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertStatusInput {
    /// "cancelled" (its author only), "all-clear", or "active" (undo either).
    pub status: String,
    /// Note ("river back within its banks").
    pub note: Option<String>,
}

impl AlertStatusInput {
    /// Builds the status change of alert `target`: cancelled is a withdrawal, all
    /// clear a fulfilment, active a reopening (docs/protocol.md, alerts).
    pub fn into_change(self, target: EventId) -> Result<StatusChange, InputError> {
        let status = match self.status.trim().to_lowercase().as_str() {
            "cancelled" | "cancel" | "canceled" => Status::Withdrawn,
            "all-clear" | "clear" | "allclear" => Status::Fulfilled,
            "active" | "reopen" | "reopened" => Status::Reopened,
            other => {
                return Err(err_as(
                    "status",
                    "unknown",
                    format!("'{other}' is not an alert status; use cancelled, all-clear or active"),
                ))
            }
        };
        Ok(StatusChange {
            target,
            status,
            note: self.note.unwrap_or_default(),
        })
    }
}

/// Which posts to take back (`POST /api/v1/flood/withdraw`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodInput {
    /// The address the posts came from, as `aidmesh flood` lists it.
    pub from: String,
    /// Only posts made at or after this time (ms since the epoch).
    #[serde(default)]
    pub since_ms: Option<u64>,
}

impl FloodInput {
    /// The address (canonical: an IPv4 client of an IPv6 listener as IPv4) and the
    /// earliest time.
    pub fn into_target(self) -> Result<(std::net::IpAddr, u64), InputError> {
        let ip: std::net::IpAddr = self.from.trim().parse().map_err(|_| {
            err(
                "from",
                format!(
                    "'{}' is not an IP address; `aidmesh flood` lists the addresses that posted",
                    self.from.chars().take(60).collect::<String>()
                ),
            )
        })?;
        Ok((ip.to_canonical(), self.since_ms.unwrap_or(0)))
    }
}

/// A peer address as typed (`POST /api/v1/peers`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerInput {
    /// A multiaddr, e.g. `/ip4/192.168.1.20/tcp/4610`.
    pub addr: String,
}

impl PeerInput {
    /// Parses the address and checks that it is a TCP address of a peer.
    pub fn into_addr(self) -> Result<Multiaddr, InputError> {
        let bad = |why: String| {
            err(
                "addr",
                format!("'{}' {why}; e.g. /ip4/192.168.1.20/tcp/4610", self.addr),
            )
        };
        let addr: Multiaddr = self
            .addr
            .trim()
            .parse()
            .map_err(|e| bad(format!("is not a multiaddr ({e})")))?;
        if !crate::net::dialable(&addr) {
            return Err(bad("is not a TCP address of a peer".into()));
        }
        Ok(addr)
    }
}

/// Parses who consented to a welfare registration.
pub fn parse_consent(s: &str) -> Result<Consent, InputError> {
    match s.trim().to_lowercase().as_str() {
        "self" | "own" => Ok(Consent::Own),
        "relative" | "family" => Ok(Consent::Relative),
        "neighbour" | "neighbor" => Ok(Consent::Neighbour),
        other => Err(err_as(
            "consent",
            "unknown",
            format!("unknown '{other}'; valid: self, relative, neighbour"),
        )),
    }
}

/// A person to check on, as typed (`POST /api/v1/people`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    /// Name.
    pub name: String,
    /// Where they live.
    pub place: String,
    /// How often to check on them ("12h").
    pub every: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Health risks ("oxygen", "lives alone").
    #[serde(default)]
    pub risks: Vec<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Who consented: self (default), relative, neighbour.
    pub consent: Option<String>,
    /// Note.
    pub note: Option<String>,
    /// Whether they agree to be shared with responders (the PFIF export); default no.
    #[serde(default)]
    pub share_with_responders: bool,
}

impl PersonInput {
    /// Builds the registration.
    pub fn into_person(self) -> Result<PersonRegistered, InputError> {
        let every = parse_duration("every", &self.every)?;
        Ok(PersonRegistered {
            name: self.name.trim().to_string(),
            place: Place {
                label: self.place.trim().to_string(),
                coords: parse_coords(self.lat, self.lon)?,
            },
            risks: self
                .risks
                .iter()
                .flat_map(|r| r.split(','))
                .map(|r| r.trim().to_lowercase())
                .filter(|r| !r.is_empty())
                .collect(),
            check_every_secs: u32::try_from(every.as_secs()).unwrap_or(u32::MAX),
            consent: match &self.consent {
                Some(c) => parse_consent(c)?,
                None => Consent::Own,
            },
            phone: self.phone.unwrap_or_default().trim().to_string(),
            note: self.note.unwrap_or_default(),
        })
    }
}

/// A check-in as typed (`POST /api/v1/people/{id}/checkins`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// safe, needs-help, no-answer, not-home, moved.
    pub outcome: String,
    /// With needs-help: with what. With moved: where to.
    pub detail: Option<String>,
    /// Note.
    pub note: Option<String>,
    /// Who visited.
    pub by: Option<String>,
}

impl CheckInput {
    /// Builds the check-in on `person`.
    pub fn into_checkin(self, person: EventId) -> Result<CheckIn, InputError> {
        let detail = self.detail.unwrap_or_default().trim().to_string();
        let needs = |what: &str| {
            err_as(
                "detail",
                "required",
                format!("'{what}' needs a detail (what help / where to)"),
            )
        };
        let outcome = match self.outcome.trim().to_lowercase().as_str() {
            "safe" => Outcome::Safe,
            "needs-help" | "needs_help" | "help" if !detail.is_empty() => {
                Outcome::NeedsHelp(detail)
            }
            "needs-help" | "needs_help" | "help" => return Err(needs("needs-help")),
            "no-answer" | "no_answer" => Outcome::NoAnswer,
            "not-home" | "not_home" | "not-at-home" => Outcome::NotAtHome,
            "moved" if !detail.is_empty() => Outcome::Moved(detail),
            "moved" => return Err(needs("moved")),
            other => {
                return Err(err_as(
                    "outcome",
                    "unknown",
                    format!(
                        "unknown '{other}'; valid: safe, needs-help, no-answer, not-home, moved"
                    ),
                ))
            }
        };
        Ok(CheckIn {
            person,
            outcome,
            note: self.note.unwrap_or_default(),
            by: self.by.unwrap_or_default().trim().to_string(),
        })
    }
}

/// The confirmation `POST /api/v1/people/{id}/forget` needs in its body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetInput {
    /// The full id of the person to forget (64 hex characters).
    pub confirm: Option<String>,
}

impl ForgetInput {
    /// Checks that the confirmation names `person` (called `name`) exactly.
    pub fn confirms(&self, person: &EventId, name: &str) -> Result<(), InputError> {
        let id = person.to_hex();
        match self.confirm.as_deref().map(str::trim) {
            Some(c) if c.eq_ignore_ascii_case(&id) => Ok(()),
            Some(c) => Err(err(
                "confirm",
                format!("'{c}' is not the full id of {name} ({id}); nothing was erased"),
            )),
            None => Err(err(
                "confirm",
                format!("forgetting erases {name}'s record and check-ins on every node and cannot be undone; to confirm, send {{\"confirm\": \"{id}\"}}"),
            )),
        }
    }
}

/// A person's answer to sharing with responders (`POST /api/v1/people/{id}/sharing`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingInput {
    /// Yes or no.
    pub share: bool,
}

/// The query of `GET /api/v1/export`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// csv, hxl, geojson or pfif.
    pub format: Option<String>,
}

impl ExportQuery {
    /// The format asked for; every format is named in the error.
    pub fn format(&self) -> Result<crate::doors::export::Format, InputError> {
        use crate::doors::export::Format;
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        match self.format.as_deref() {
            None => Err(err_as(
                "format",
                "required",
                format!("say which format: {}", names.join(", ")),
            )),
            Some(f) => Format::parse(f).ok_or_else(|| {
                err_as(
                    "format",
                    "unknown",
                    format!("unknown format '{f}'; formats: {}", names.join(", ")),
                )
            }),
        }
    }
}

/// The field a JSON body's refusal names, and what is wrong with it: a missing field
/// (`required`), a field this endpoint does not take (`unknown_field`), or a value of
/// the wrong type at a field's path (`wrong_type`). From serde's words as axum passes
/// them on ("missing field `title`", "qty: invalid type: ...").
pub fn json_refusal_field(text: &str) -> Option<(String, &'static str)> {
    let quoted = |after: &str| {
        let rest = &text[text.find(after)? + after.len()..];
        let rest = rest.strip_prefix('`')?;
        Some(rest[..rest.find('`')?].to_string())
    };
    if let Some(f) = quoted("missing field ") {
        return Some((f, "required"));
    }
    if let Some(f) = quoted("unknown field ") {
        return Some((f, "unknown_field"));
    }
    let rest = text.split_once("target type: ")?.1;
    let (path, what) = rest.split_once(": ")?;
    let plain = !path.is_empty()
        && path.len() <= 40
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'[' || b == b']');
    (plain && what.starts_with("invalid")).then(|| {
        let field = path.split(['.', '[']).next().unwrap_or(path);
        (field.to_string(), "wrong_type")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_cursor_round_trips_and_sorts_most_urgent_then_newest_first() {
        let id = |b: u8| EventId([b; 32]);
        let a = ListKey::new(Urgency::High, 5 << 16, id(1));
        let back = ListKey::parse(&a.to_string()).expect("parses");
        assert_eq!(back, a);
        assert!(
            a < ListKey::new(Urgency::Normal, 9 << 16, id(1)),
            "more urgent first"
        );
        assert!(
            a < ListKey::new(Urgency::High, 4 << 16, id(1)),
            "newer first"
        );
        assert!(
            a < ListKey::new(Urgency::High, 5 << 16, id(0)),
            "then by id"
        );
        for bad in ["", "2.5", "4.5.00", "2.+5.00", "2.5.zz", "2.5.00.1"] {
            assert_eq!(ListKey::parse(bad), None, "{bad:?}");
        }
        let q = |limit: Option<&str>, cursor: Option<&str>| ListQuery {
            limit: limit.map(Into::into),
            cursor: cursor.map(Into::into),
            ..ListQuery::default()
        };
        assert_eq!(q(None, None).page(), Ok(None));
        let first = q(Some("500"), None).page().expect("ok").expect("a page");
        assert_eq!((first.limit, first.after), (500, None));
        let next = q(None, Some(&a.to_string()))
            .page()
            .expect("ok")
            .expect("a page");
        assert_eq!((next.limit, next.after), (DEFAULT_LIST_LIMIT, Some(a)));
        for (limit, cursor, field) in [
            (Some("0"), None, "limit"),
            (Some("501"), None, "limit"),
            (Some(" 5"), None, "limit"),
            (None, Some("abc"), "cursor"),
        ] {
            assert_eq!(q(limit, cursor).page().map_err(|e| e.field), Err(field));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("x", "2h").unwrap().as_secs(), 7200);
        assert_eq!(parse_duration("x", "3 days").unwrap().as_secs(), 3 * 86_400);
        assert!(parse_duration("x", "soon")
            .unwrap_err()
            .detail
            .contains("e.g. 90s"));
        assert!(parse_duration("x", "5y")
            .unwrap_err()
            .detail
            .contains("unknown unit"));
        assert!(parse_duration("x", "0s").is_err());
        assert!(parse_duration("x", "99999999999999999999d").is_err());
    }

    #[test]
    fn enums_list_the_valid_values() {
        assert_eq!(
            parse_urgency("Life-Threatening").unwrap(),
            Urgency::LifeThreatening
        );
        assert!(parse_urgency("meh")
            .unwrap_err()
            .detail
            .contains("life-threatening"));
        assert_eq!(parse_status("progress").unwrap(), Status::InProgress);
        assert!(parse_category("blankets")
            .unwrap_err()
            .detail
            .contains("shelter"));
    }

    #[test]
    fn coordinates_come_in_pairs_and_in_range() {
        assert!(parse_coords(Some(1.0), None).is_err());
        assert!(parse_coords(Some(91.0), Some(0.0)).is_err());
        assert!(parse_coords(Some(f64::NAN), Some(0.0)).is_err());
        assert!(parse_coords(Some(29.9), Some(-90.1)).unwrap().is_some());
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::json_refusal_field as json_field;

    #[test]
    fn a_json_refusal_names_its_field() {
        let f = |t: &str| json_field(t);
        assert_eq!(
            f("Failed to deserialize the JSON body into the target type: missing field `title` at line 1 column 20"),
            Some(("title".into(), "required"))
        );
        assert_eq!(
            f("Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `title`"),
            Some(("colour".into(), "unknown_field"))
        );
        assert_eq!(
            f("Failed to deserialize the JSON body into the target type: qty: invalid type: string \"x\", expected u32 at line 1 column 10"),
            Some(("qty".into(), "wrong_type"))
        );
        assert_eq!(
            f("Failed to parse the request body as JSON: expected value at line 1 column 1"),
            None
        );
        assert_eq!(f(""), None);
        assert_eq!(f("missing field `"), None);
    }
}
