//! People-finding as Person Finder reads it (issue 29): the PFIF export of a real node
//! checked against PFIF 1.4 as Google Person Finder applies it. Person Finder's
//! validator (`tools/pfif-tools/app/pfif_validator.py` in google/personfinder) is
//! Python 2 and reads PFIF 1.1 to 1.3 only, so it cannot run here; its rules that
//! apply to 1.4 are checked instead: the record id rule (`RECORD_ID`: a domain name
//! whose every label starts with a letter, a slash, then anything), the date rule
//! (`DATE`), the mandatory fields and the order of fields (PFIF 1.4, as listed in
//! Person Finder's `app/pfif.py`). Then the meaning of each field (PFIF 1.4): who wrote
//! a note, the home address, the expiry date; and ids stay the same from one export
//! to the next.

use aidmesh_tests::{http, Node, Opts};
use serde_json::{json, Value};

const NS: &str = "http://zesty.ca/pfif/1.4";

/// PFIF 1.4 fields of a person, in order (Person Finder's `app/pfif.py`, `PFIF_1_4`).
const PERSON: &[&str] = &[
    "person_record_id",
    "entry_date",
    "expiry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_name",
    "source_date",
    "source_url",
    "full_name",
    "given_name",
    "family_name",
    "alternate_names",
    "description",
    "sex",
    "date_of_birth",
    "age",
    "home_street",
    "home_neighborhood",
    "home_city",
    "home_state",
    "home_postal_code",
    "home_country",
    "photo_url",
    "profile_urls",
    "note",
];
/// PFIF 1.4 fields of a note, in order.
const NOTE: &[&str] = &[
    "note_record_id",
    "person_record_id",
    "linked_person_record_id",
    "entry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_date",
    "author_made_contact",
    "status",
    "email_of_found_person",
    "phone_of_found_person",
    "last_known_location",
    "text",
    "photo_url",
];

/// The validator's `RECORD_ID`: `^(LABEL\.)*LABEL\.?/.+$`, a label being
/// `[a-zA-Z]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?`.
fn record_id_ok(id: &str) -> bool {
    let Some((domain, local)) = id.split_once('/') else {
        return false;
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphabetic()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    !local.is_empty() && !local.contains('\n') && domain.split('.').all(label_ok)
}

/// The validator's `DATE`: `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`.
fn date_ok(d: &str) -> bool {
    let b = d.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() == 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'Z'
}

/// Days from a PFIF date to another, roughly (both at UTC, same format).
fn ms(d: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| d[r].parse::<i64>().expect("number");
    let (y, m, day) = (n(0..4), n(5..7), n(8..10));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    u64::try_from(secs).expect("after 1970") * 1000
}

fn export(n: &Node) -> String {
    let mut r = http()
        .get(format!("{}/api/v1/export?format=pfif", n.api_url()))
        .call()
        .expect("the node answers");
    assert_eq!(r.status().as_u16(), 200);
    r.body_mut().read_to_string().expect("UTF-8")
}

fn elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.is_element()).collect()
}

fn field(n: roxmltree::Node, name: &str) -> Option<String> {
    elements(n)
        .into_iter()
        .find(|c| c.tag_name().name() == name)
        .map(|c| c.text().unwrap_or("").to_string())
}

/// Checks a record against PFIF 1.4 as Person Finder's validator does: namespace,
/// known fields in order, mandatory ones, ids and dates. Only `text` and `description`
/// may hold several lines (see docs/api.md, `pfif`).
fn check_record(rec: roxmltree::Node, order: &[&str], mandatory: &[&str]) {
    let kids = elements(rec);
    let mut last = 0;
    for k in &kids {
        assert_eq!(k.tag_name().namespace(), Some(NS));
        let name = k.tag_name().name();
        let at = order
            .iter()
            .position(|f| *f == name)
            .unwrap_or_else(|| panic!("<{name}> is not a PFIF 1.4 field here"));
        assert!(at >= last, "<{name}> out of PFIF 1.4 order");
        last = at;
        if name == "note" {
            continue;
        }
        let v = k.text().unwrap_or("");
        if name.ends_with("record_id") {
            assert!(record_id_ok(v), "{name} '{v}' breaks PFIF's record id rule");
        }
        if name.ends_with("_date") && name != "date_of_birth" {
            assert!(date_ok(v), "{name} '{v}' is not a PFIF date");
        }
        if name != "text" && name != "description" {
            assert!(!v.contains('\n'), "{name} has several lines: {v:?}");
        }
    }
    for m in mandatory {
        assert!(
            field(rec, m).is_some_and(|v| !v.trim().is_empty()),
            "<{}> without {m}",
            rec.tag_name().name()
        );
    }
}

#[test]
fn the_pfif_export_follows_pfif_1_4_as_person_finder_reads_it() {
    let node = Node::start("pfif", Opts::default());
    let ada = node.post(
        "/api/v1/people",
        &json!({ "name": "Ada Okafor", "place": "14 River Rd", "every": "12h",
                 "risks": ["oxygen"], "share_with_responders": true }),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let check = |outcome: &str, detail: Option<&str>, by: &str, note: &str| -> Value {
        node.post(
            &format!("/api/v1/people/{ada}/checkins"),
            &json!({ "outcome": outcome, "detail": detail, "by": by, "note": note }),
        )
    };
    check(
        "safe",
        None,
        "Sam",
        "spare key with the neighbour\nat number 16",
    );
    check("moved", Some("Elm St school hall"), "self", "");

    let text = export(&node);
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(NS));
    let persons = elements(root);
    assert_eq!(persons.len(), 1, "{text}");
    let p = persons[0];
    check_record(p, PERSON, &["person_record_id", "source_date", "full_name"]);
    let notes: Vec<_> = elements(p)
        .into_iter()
        .filter(|c| c.tag_name().name() == "note")
        .collect();
    assert_eq!(notes.len(), 2, "{text}");
    for n in &notes {
        check_record(
            *n,
            NOTE,
            &["note_record_id", "author_name", "source_date", "text"],
        );
        assert_eq!(field(*n, "person_record_id"), field(p, "person_record_id"));
    }

    // The meaning of each field (PFIF 1.4).
    assert_eq!(
        field(p, "home_street").as_deref(),
        Some("14 River Rd"),
        "home_street is the home address, not where they went"
    );
    let (sam, own) = (notes[0], notes[1]);
    assert_eq!(field(sam, "author_name").as_deref(), Some("Sam"));
    assert_eq!(field(sam, "status").as_deref(), Some("believed_alive"));
    assert_eq!(
        field(sam, "text").as_deref(),
        Some("Welfare check: safe and well.\nspare key with the neighbour\nat number 16"),
        "note text keeps its lines"
    );
    assert_eq!(
        field(own, "author_name").as_deref(),
        Some("Ada Okafor"),
        "a note the person wrote is authored by the person"
    );
    assert_eq!(field(own, "status").as_deref(), Some("is_note_author"));
    assert_eq!(field(own, "author_made_contact").as_deref(), Some("true"));
    assert_eq!(
        field(own, "last_known_location").as_deref(),
        Some("Elm St school hall")
    );
    // Expiry: when the hub erases the record unless someone checks again, 30 days
    // (the default retention) after the last check-in.
    let expiry = ms(&field(p, "expiry_date").expect("expiry_date"));
    let last = ms(&field(own, "source_date").expect("source_date"));
    assert_eq!(expiry - last, 30 * 86_400_000, "{text}");

    // The same ids in the next export.
    let again = export(&node);
    let ids = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.contains("record_id>"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(ids(&text), ids(&again));
}

#[test]
fn the_record_id_rule_is_the_validators() {
    assert!(record_id_ok(
        "hub-96ae36ecdc1a1a64.aidmesh.invalid/person.1"
    ));
    assert!(record_id_ok("example.com./p1"));
    assert!(!record_id_ok("96ae36ecdc1a1a64.aidmesh.invalid/person.1"));
    assert!(!record_id_ok("example.com"));
    assert!(!record_id_ok("example-.com/p1"));
    assert!(date_ok("2026-11-30T15:00:00Z") && !date_ok("2026-11-30T15:00:00+00:00"));
    assert_eq!(ms("1970-01-02T00:00:01Z"), 86_401_000);
}
