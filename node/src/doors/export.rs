//! Exports for responders: the board and the welfare register in formats relief
//! organisations read (docs/api.md, "Exports").
//!
//! - [`Format::Csv`]: needs and offers, every field, one row each;
//! - [`Format::Hxl`]: the same with an HXL hashtag row under the header;
//! - [`Format::GeoJson`]: needs, offers and hubs that have coordinates (RFC 7946);
//! - [`Format::Pfif`]: PFIF 1.4 person records and notes, for the people who agreed to
//!   be shared with responders only (the caller checks the volunteer PIN).
//!
//! Everything is built from a [`Snapshot`] of the view, so an export holds exactly what
//! the board shows: forgotten people and erased content are not in the view, so they
//! are not in any export. Each file says when and where it was made (its name; in
//! GeoJSON also a foreign member, in PFIF an XML comment). Pure functions of the snapshot: no clock, no I/O.

use std::collections::HashMap;
use std::fmt::Write as _;

use aidmesh_protocol::body::{BodyKind, Outcome};
use aidmesh_protocol::identity::AuthorId;
use aidmesh_protocol::time::Timestamp;
use aidmesh_protocol::view::{HubView, Item, PersonView, View};
use serde_json::{json, Map, Value};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values, one need or offer per row.
    Csv,
    /// CSV with a Humanitarian Exchange Language hashtag row.
    Hxl,
    /// A GeoJSON FeatureCollection.
    GeoJson,
    /// People Finder Interchange Format 1.4 (XML).
    Pfif,
}

impl Format {
    /// Every format, in the order the docs list them.
    pub const ALL: [Format; 4] = [Format::Csv, Format::Hxl, Format::GeoJson, Format::Pfif];

    /// Name in `--format` and `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Hxl => "hxl",
            Format::GeoJson => "geojson",
            Format::Pfif => "pfif",
        }
    }

    /// The format named `s` (case-insensitive), if any.
    pub fn parse(s: &str) -> Option<Format> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv | Format::Hxl => "text/csv; charset=utf-8",
            Format::GeoJson => "application/geo+json",
            Format::Pfif => "application/xml; charset=utf-8",
        }
    }

    /// File name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Hxl => "hxl.csv",
            Format::GeoJson => "geojson",
            Format::Pfif => "pfif.xml",
        }
    }

    /// Whether the export holds welfare records (behind the volunteer PIN).
    pub fn is_welfare(self) -> bool {
        self == Format::Pfif
    }
}

/// What an export is made from: the view's answers at one moment, and who made it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When, wall-clock ms (the node's corrected time).
    pub made_ms: u64,
    /// The node that made it.
    pub node: AuthorId,
    /// The community name.
    pub community: String,
    /// Every need and offer on the board (all states), in id order.
    pub items: Vec<Item>,
    /// Hubs (newest announcement per author and name).
    pub hubs: Vec<HubView>,
    /// People who agreed to be shared with responders (empty unless asked for).
    pub people: Vec<PersonView>,
    /// The newest announced hub name of each author.
    pub names: HashMap<AuthorId, String>,
}

impl Snapshot {
    /// Takes the snapshot from `view` at `now_ms`. People are included only when
    /// `with_people` (the PFIF export), and then only those who agreed to be shared.
    pub fn take(
        view: &View,
        now_ms: u64,
        node: AuthorId,
        community: &str,
        with_people: bool,
    ) -> Snapshot {
        let hubs = view.hubs();
        let mut newest: HashMap<AuthorId, (Timestamp, String)> = HashMap::new();
        for h in &hubs {
            let slot = newest.entry(h.author).or_insert((h.at, h.hub.name.clone()));
            if h.at > slot.0 {
                *slot = (h.at, h.hub.name.clone());
            }
        }
        let people = if with_people {
            view.people()
                .into_iter()
                .filter(|p| p.shares_with_responders)
                .collect()
        } else {
            Vec::new()
        };
        Snapshot {
            made_ms: now_ms,
            node,
            community: community.to_string(),
            items: view.items(now_ms),
            hubs,
            people,
            names: newest.into_iter().map(|(a, (_, n))| (a, n)).collect(),
        }
    }

    /// The file name for this export: which hub and node made it and when,
    /// e.g. `aidmesh-elm-st-hub-74b34226-2026-11-30T150000Z.csv` (no `:`, which Windows
    /// refuses; the hub's name in lower-case ASCII letters and digits, at most 32).
    pub fn file_name(&self, format: Format) -> String {
        let mut hub = String::new();
        for c in self
            .names
            .get(&self.node)
            .map_or("", String::as_str)
            .chars()
        {
            if c.is_ascii_alphanumeric() {
                hub.push(c.to_ascii_lowercase());
            } else if !hub.is_empty() && !hub.ends_with('-') {
                hub.push('-');
            }
            if hub.len() >= 32 {
                break;
            }
        }
        let hub = hub.trim_end_matches('-');
        let when: String = utc(self.made_ms).chars().filter(|c| *c != ':').collect();
        let mut name = String::from("aidmesh-");
        if !hub.is_empty() {
            name.push_str(hub);
            name.push('-');
        }
        format!("{name}{}-{when}.{}", self.node.short(), format.extension())
    }

    fn hub_of(&self, a: &AuthorId) -> &str {
        self.names.get(a).map_or("", String::as_str)
    }

    /// "made 2026-11-30T15:00:00Z by Elm St hub (node 1a2b3c4d; community test)".
    fn provenance(&self) -> String {
        let hub = self
            .names
            .get(&self.node)
            .map_or("an unnamed hub", String::as_str);
        format!(
            "made {} by {hub} (node {}; community {})",
            utc(self.made_ms),
            self.node.short(),
            self.community
        )
    }
}

/// Writes the export of `snap` in `format`.
pub fn render(format: Format, snap: &Snapshot) -> Vec<u8> {
    match format {
        Format::Csv => table(snap, false),
        Format::Hxl => table(snap, true),
        Format::GeoJson => geojson(snap),
        Format::Pfif => pfif(snap).into_bytes(),
    }
}

/// ISO 8601 UTC to the second ("2026-11-30T15:00:00Z"), as HXL, PFIF and GeoJSON
/// readers expect.
pub fn utc(ms: u64) -> String {
    aidmesh_protocol::calendar::iso_8601(ms)
}

/// A text cell made safe for spreadsheets: one starting with `=`, `+`, `-`, `@` (or a
/// tab or carriage return) would be run as a formula by Excel or LibreOffice, so it
/// gets a leading `'`, which they show as text. People type anything into a need.
pub fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// The columns of the CSV and HXL exports: header, HXL hashtag.
pub const COLUMNS: [(&str, &str); 23] = [
    ("id", "#meta+id"),
    ("kind", "#meta+kind"),
    ("title", "#item+name"),
    ("category", "#item+type"),
    ("cluster", "#sector+cluster"),
    ("details", "#description"),
    ("quantity", "#item+num"),
    ("unit", "#item+unit"),
    ("urgency", "#severity"),
    ("status", "#status"),
    ("place", "#loc+name"),
    ("lat", "#geo+lat"),
    ("lon", "#geo+lon"),
    ("contact", "#contact"),
    ("expires_at", "#date+end"),
    ("related", "#meta+related"),
    ("author", "#org+code"),
    ("author_hub", "#org+name"),
    ("holder", "#org+code+holder"),
    ("holder_name", "#contact+name+holder"),
    ("held_since", "#date+claimed"),
    ("posted_at", "#date+reported"),
    ("updated_at", "#date+updated"),
];

fn item_row(snap: &Snapshot, i: &Item) -> Vec<String> {
    let p = &i.post;
    let held = i.holder_change();
    let updated = i.history.last().map_or(i.created, |c| c.at.max(i.created));
    let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.7}"));
    vec![
        i.id.to_hex(),
        i.kind.name().to_string(),
        cell(&p.title),
        p.category.name().to_string(),
        p.category.cluster().unwrap_or("").to_string(),
        cell(&p.details),
        p.quantity.map_or(String::new(), |q| q.to_string()),
        cell(&p.unit),
        p.urgency.name().to_string(),
        if i.expired { "expired" } else { i.state.name() }.to_string(),
        cell(&p.place.label),
        num(p.place.coords.map(|c| c.lat())),
        num(p.place.coords.map(|c| c.lon())),
        cell(&p.contact),
        p.expires_ms.map_or(String::new(), utc),
        p.related.map_or(String::new(), |r| r.to_hex()),
        i.author.to_hex(),
        cell(snap.hub_of(&i.author)),
        i.holder.map_or(String::new(), |h| h.to_hex()),
        cell(held.and_then(|c| c.by()).unwrap_or("")),
        held.map_or(String::new(), |c| utc(c.at.millis())),
        utc(i.created.millis()),
        utc(updated.millis()),
    ]
}

/// CSV (and with `hxl`, the hashtag row). Row 1 is the column header, as spreadsheets,
/// pandas and Python's csv module expect; when and where the file was made is in its
/// name ([`file_name`]), not in a row above the header that every reader would take
/// for the header.
fn table(snap: &Snapshot, hxl: bool) -> Vec<u8> {
    let items = snap
        .items
        .iter()
        .filter(|i| matches!(i.kind, BodyKind::Need | BodyKind::Offer));
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    // Writing to a Vec cannot fail; a failure would only lose the export, never panic.
    let _ = w.write_record(COLUMNS.iter().map(|(h, _)| *h));
    if hxl {
        let _ = w.write_record(COLUMNS.iter().map(|(_, t)| *t));
    }
    for i in items {
        let _ = w.write_record(item_row(snap, i));
    }
    w.into_inner().unwrap_or_default()
}

fn point(lat: f64, lon: f64) -> Value {
    // RFC 7946: longitude first; 7 decimals is the precision stored.
    let r = |x: f64| (x * 1e7).round() / 1e7;
    json!({ "type": "Point", "coordinates": [r(lon), r(lat)] })
}

/// GeoJSON: a FeatureCollection of every need, offer and hub with coordinates. Where and
/// when it was made is the foreign member `aidmesh` (RFC 7946, section 6.1).
///
/// Written feature by feature, one per line, rather than built as one JSON tree: a
/// 20,000-item board would otherwise hold hundreds of MB at once (docs/benchmarks.md).
fn geojson(snap: &Snapshot) -> Vec<u8> {
    let mut about = Map::new();
    about.insert("made_at".into(), json!(utc(snap.made_ms)));
    about.insert("hub".into(), json!(snap.names.get(&snap.node)));
    about.insert("node".into(), json!(snap.node.to_hex()));
    about.insert("community".into(), json!(snap.community));
    let mut out = Vec::with_capacity(1024 * (snap.items.len() + snap.hubs.len()) + 256);
    out.extend_from_slice(br#"{"type":"FeatureCollection","aidmesh":"#);
    // Writing JSON values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &about);
    out.extend_from_slice(br#","features":["#);
    let mut first = true;
    let mut feature = |out: &mut Vec<u8>, f: Value| {
        out.extend_from_slice(if first { b"\n" } else { b",\n" });
        first = false;
        let _ = serde_json::to_writer(out, &f);
    };
    for i in &snap.items {
        let Some(c) = i.post.place.coords else {
            continue;
        };
        let p = &i.post;
        let f = json!({
            "type": "Feature",
            "id": i.id.to_hex(),
            "geometry": point(c.lat(), c.lon()),
            "properties": {
                "kind": i.kind.name(),
                "title": p.title,
                "category": p.category.name(),
                "cluster": p.category.cluster(),
                "details": p.details,
                "quantity": p.quantity,
                "unit": p.unit,
                "urgency": p.urgency.name(),
                "status": if i.expired { "expired" } else { i.state.name() },
                "place": p.place.label,
                "contact": p.contact,
                "expires_at": p.expires_ms.map(utc),
                "author": i.author.to_hex(),
                "author_hub": snap.names.get(&i.author),
                "posted_at": utc(i.created.millis()),
            },
        });
        feature(&mut out, f);
    }
    for h in &snap.hubs {
        let Some(c) = h.hub.place.coords else {
            continue;
        };
        let f = json!({
            "type": "Feature",
            "id": h.id.to_hex(),
            "geometry": point(c.lat(), c.lon()),
            "properties": {
                "kind": "hub",
                "name": h.hub.name,
                "place": h.hub.place.label,
                "services": h.hub.services,
                "author": h.author.to_hex(),
                "announced_at": utc(h.at.millis()),
            },
        });
        feature(&mut out, f);
    }
    out.extend_from_slice(b"\n]}\n");
    out
}

/// Text for XML: the five special characters escaped, characters XML 1.0 forbids
/// dropped (validation already refuses control characters; this is a second fence).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The PFIF domain of records registered by `author`: a name under `.invalid` (RFC
/// 2606, never resolves) that names the hub's key, so records from two hubs never
/// collide and a copy can be traced back to the hub that holds the original. The
/// label starts with `hub-`: a DNS label (and PFIF's record id rule, which Person
/// Finder's validator applies) must start with a letter, and a key's hex may not. The
/// same hub gives the same domain, so a person keeps their record id in every export.
pub fn pfif_domain(author: &AuthorId) -> String {
    format!("hub-{}.aidmesh.invalid", &author.to_hex()[..16])
}

/// Whether a check-in was made by the person themselves (`by` "self").
fn by_self(by: &str) -> bool {
    by.trim().eq_ignore_ascii_case("self")
}

/// PFIF 1.4 note status, and whether the author made contact, for a check-in outcome.
/// A check-in the person made themselves (`by` "self") is `is_note_author`: the person
/// wrote the note (PFIF: "this person is also the author of this note").
fn note_status(outcome: &Outcome, by: &str) -> (&'static str, bool) {
    let own = by_self(by);
    match outcome {
        Outcome::Safe | Outcome::NeedsHelp(_) | Outcome::Moved(_) if own => {
            ("is_note_author", true)
        }
        Outcome::Safe | Outcome::NeedsHelp(_) => ("believed_alive", true),
        // Someone said where they went: alive, though not seen by the author.
        Outcome::Moved(_) => ("believed_alive", false),
        Outcome::NoAnswer | Outcome::NotAtHome => ("information_sought", false),
    }
}

/// When a welfare record is erased if nothing more is heard (the hub's default
/// retention after the last check-in, `--welfare-retention`): PFIF's `expiry_date`.
const PFIF_RETENTION_MS: u64 = 30 * 86_400_000;

/// PFIF 1.4: one `person` per person who agreed to be shared, each with one `note` per
/// check-in. Which fields are written is listed in docs/api.md; phone, the
/// registration note and who consented to the registration stay out.
fn pfif(snap: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    // "--" may not appear inside an XML comment.
    let about = snap.provenance().replace("--", "- -");
    let _ = writeln!(
        out,
        "<!-- aidmesh export of the welfare register for responders: {}; {} people who agreed to be shared -->",
        xml(&about),
        snap.people.len()
    );
    let _ = writeln!(out, r#"<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4">"#);
    let el = |out: &mut String, indent: &str, name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(out, "{indent}<pfif:{name}>{}</pfif:{name}>", xml(value));
        }
    };
    let made = utc(snap.made_ms);
    for p in &snap.people {
        let domain = pfif_domain(&p.author);
        let pid = format!("{domain}/person.{}", p.id.to_hex());
        let hub = snap.hub_of(&p.author);
        let source = if hub.is_empty() {
            format!("aidmesh hub {}", p.author.short())
        } else {
            format!("aidmesh hub {hub}")
        };
        let mut description = String::new();
        if !p.person.risks.is_empty() {
            description = format!("At risk: {}.", p.person.risks.join(", "));
        }
        out.push_str("  <pfif:person>\n");
        let i = "    ";
        el(&mut out, i, "person_record_id", &pid);
        // When this repository stored it: the export gives its own time, so a reader
        // that loads exports in turn sees entry dates that never go back.
        el(&mut out, i, "entry_date", &made);
        // PFIF: after this date the record and its notes are to be deleted; here, when
        // the hub erases it unless someone checks on the person again.
        let last = p
            .checks
            .iter()
            .map(|c| c.at.millis())
            .fold(p.registered.millis(), u64::max);
        el(
            &mut out,
            i,
            "expiry_date",
            &utc(last.saturating_add(PFIF_RETENTION_MS)),
        );
        el(&mut out, i, "author_name", &source);
        el(&mut out, i, "source_name", &source);
        el(&mut out, i, "source_date", &utc(p.registered.millis()));
        el(&mut out, i, "full_name", &p.person.name);
        el(&mut out, i, "description", &description);
        // Their home: the registered place. Where they went is in the notes
        // (`last_known_location`), not their home address.
        el(&mut out, i, "home_street", &p.person.place.label);
        for c in &p.checks {
            let (status, contact) = note_status(&c.check.outcome, &c.check.by);
            let author = if by_self(&c.check.by) {
                // The person wrote it: the note's author is the person.
                p.person.name.clone()
            } else if c.check.by.trim().is_empty() {
                let h = snap.hub_of(&c.author);
                if h.is_empty() {
                    format!("volunteer of aidmesh hub {}", c.author.short())
                } else {
                    format!("volunteer of {h}")
                }
            } else {
                c.check.by.clone()
            };
            let mut text = match &c.check.outcome {
                Outcome::Safe => "Welfare check: safe and well.".to_string(),
                Outcome::NeedsHelp(what) => format!("Welfare check: needs help: {what}"),
                Outcome::NoAnswer => "Welfare check: nobody answered.".to_string(),
                Outcome::NotAtHome => "Welfare check: not at home.".to_string(),
                Outcome::Moved(to) => format!("Welfare check: moved to {to}."),
            };
            if !c.check.note.trim().is_empty() {
                text = format!("{text}\n{}", c.check.note);
            }
            let j = "      ";
            out.push_str("    <pfif:note>\n");
            el(
                &mut out,
                j,
                "note_record_id",
                &format!("{}/note.{}", pfif_domain(&c.author), c.id.to_hex()),
            );
            el(&mut out, j, "person_record_id", &pid);
            el(&mut out, j, "entry_date", &made);
            el(&mut out, j, "author_name", &author);
            el(&mut out, j, "source_date", &utc(c.at.millis()));
            el(
                &mut out,
                j,
                "author_made_contact",
                if contact { "true" } else { "false" },
            );
            el(&mut out, j, "status", status);
            if let Outcome::Moved(to) = &c.check.outcome {
                el(&mut out, j, "last_known_location", to);
            }
            el(&mut out, j, "text", &text);
            out.push_str("    </pfif:note>\n");
        }
        out.push_str("  </pfif:person>\n");
    }
    out.push_str("</pfif:pfif>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_iso_8601() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_050_861_999), "2026-11-30T15:01:01Z");
    }

    #[test]
    fn formula_cells_are_escaped_and_others_kept() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+44 20"), "'+44 20");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("water"), "water");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;");
    }

    #[test]
    fn an_empty_board_exports_valid_files() {
        let me = aidmesh_protocol::Identity::from_seed([1; 32]).author();
        let snap = Snapshot::take(&View::new(), 1_796_050_861_999, me, "test", true);
        let gj: Value = serde_json::from_slice(&render(Format::GeoJson, &snap)).unwrap();
        assert_eq!(gj["type"], "FeatureCollection");
        assert_eq!(gj["features"], json!([]));
        assert_eq!(gj["aidmesh"]["made_at"], "2026-11-30T15:01:01Z");
        let csv = String::from_utf8(render(Format::Hxl, &snap)).unwrap();
        assert_eq!(csv.lines().count(), 2, "header, hashtags: {csv}");
        assert!(
            csv.starts_with("id,kind,title,"),
            "row 1 is the header: {csv}"
        );
        let name = snap.file_name(Format::Hxl);
        assert!(
            name.starts_with("aidmesh-") && name.ends_with("-2026-11-30T150101Z.hxl.csv"),
            "{name}"
        );
        let pfif = String::from_utf8(render(Format::Pfif, &snap)).unwrap();
        assert!(pfif.contains("0 people who agreed"), "{pfif}");
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!(Format::parse(" GeoJSON "), Some(Format::GeoJson));
        assert_eq!(Format::parse("xls"), None);
        assert!(Format::ALL
            .iter()
            .all(|f| Format::parse(f.name()) == Some(*f)));
    }
}
