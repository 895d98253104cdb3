//! Tests of `body`.

use super::*;
use crate::fixture::post;

#[test]
fn a_by_line_round_trips_and_old_notes_name_nobody() {
    let n = StatusChange::compose_note(" Ana ", "two cases\nat 3pm");
    assert_eq!(n, "by: Ana\ntwo cases\nat 3pm");
    assert_eq!(
        StatusChange::split_note(&n),
        (Some("Ana"), "two cases\nat 3pm")
    );
    assert_eq!(StatusChange::split_note("by: Bo"), (Some("Bo"), ""));
    assert_eq!(StatusChange::compose_note("", "x"), "x");
    let plain = StatusChange::compose_note("", "by: Friday");
    assert_eq!(StatusChange::split_note(&plain).0, None);
    assert_eq!(
        StatusChange::split_note("bringing water"),
        (None, "bringing water")
    );
    assert_eq!(StatusChange::split_note("by: \nx"), (None, "by: \nx"));
}

#[test]
fn every_kind_round_trips() {
    let bodies = vec![
        Body::Need(post("water")),
        Body::Offer(post("boat")),
        Body::Status(StatusChange {
            target: EventId([1; 32]),
            status: Status::Claimed,
            note: "on my way".into(),
        }),
        Body::Person(PersonRegistered {
            name: "Mrs Ada".into(),
            place: Place::default(),
            risks: vec!["oxygen".into()],
            check_every_secs: 12 * 3600,
            consent: Consent::Own,
            phone: String::new(),
            note: String::new(),
        }),
        Body::CheckIn(CheckIn {
            person: EventId([2; 32]),
            outcome: Outcome::Moved("school hall".into()),
            note: String::new(),
            by: "Sam".into(),
        }),
        Body::Hub(HubAnnounced {
            name: "Elm St hub".into(),
            place: Place::default(),
            services: vec!["water".into(), "charging".into()],
        }),
        Body::Alert(Alert {
            severity: Severity::Severe,
            headline: "Water rising on River Road".into(),
            text: String::new(),
            area: "River Road".into(),
            expires_ms: Some(1),
        }),
        Body::Redaction(Redaction {
            target: EventId([3; 32]),
            reason: String::new(),
        }),
        Body::OfficialAlert(official()),
        Body::Sharing(Sharing {
            person: EventId([4; 32]),
            share: true,
        }),
    ];
    for b in bodies {
        let bytes = b.encode();
        assert_eq!(
            Body::decode(b.kind().code(), &bytes).unwrap(),
            Some(b.clone())
        );
        assert!(b.check().is_ok(), "{b:?}");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Body::decode(b.kind().code(), &longer).is_err());
    }
}

fn official() -> OfficialAlert {
    let text = |language: &str, event: &str| AlertText {
        language: language.into(),
        event: event.into(),
        headline: format!("{event} for the coast"),
        text: "Move inland.\nNow.".into(),
        area: "Coast".into(),
    };
    OfficialAlert {
        severity: Severity::Extreme,
        urgency: AlertUrgency::Immediate,
        expires_ms: Some(9),
        sender: "NWS San Juan PR".into(),
        identifier: "urn:oid:2.49.0.1.840.0.1".into(),
        texts: vec![
            text("en-US", "Hurricane Warning"),
            text("es-US", "Aviso de Huracán"),
        ],
    }
}

#[test]
fn an_official_alert_keeps_its_limits_and_picks_the_readers_language() {
    let a = official();
    assert_eq!(
        a.text_for("es-MX").map(|t| t.event.as_str()),
        Some("Aviso de Huracán")
    );
    assert_eq!(
        a.text_for("EN-us").map(|t| t.language.as_str()),
        Some("en-US")
    );
    assert_eq!(a.text_for("de").map(|t| t.language.as_str()), Some("en-US"));
    assert_eq!(a.as_alert().headline, "Hurricane Warning for the coast");
    let mut twice = a.clone();
    twice.texts[1].language = "EN-US".into();
    let e = Body::OfficialAlert(twice).check().unwrap_err();
    assert_eq!((e.field, e.problem.as_str()), ("language", "appears twice"));
    let mut none = a.clone();
    none.texts.clear();
    assert_eq!(
        Body::OfficialAlert(none.clone()).check().unwrap_err().field,
        "texts"
    );
    assert!(none.text_for("en").is_none());
    assert_eq!(none.as_alert().headline, "");
    let mut many = a;
    many.texts = (0..5)
        .map(|i| {
            let mut t = many.texts[0].clone();
            t.language = format!("x-{i}");
            t
        })
        .collect();
    assert_eq!(
        Body::OfficialAlert(many).check().unwrap_err().field,
        "texts"
    );
}

#[test]
fn unknown_kind_is_not_an_error() {
    assert_eq!(Body::decode(999, b"whatever").unwrap(), None);
}

#[test]
fn limits_are_enforced() {
    let mut p = post("");
    assert_eq!(Body::Need(p.clone()).check().unwrap_err().field, "title");
    p.title = "x".repeat(MAX_TITLE + 1);
    assert!(Body::Need(p.clone()).check().is_err());
    p.title = "ok".into();
    p.quantity = Some(0);
    assert_eq!(Body::Need(p.clone()).check().unwrap_err().field, "quantity");
    p.quantity = None;
    p.place.coords = Some(Coords {
        lat_e7: 900_000_001,
        lon_e7: 0,
    });
    assert_eq!(Body::Need(p).check().unwrap_err().field, "place.lat");
}

#[test]
fn coords_reject_nonsense() {
    assert!(Coords::from_degrees(f64::NAN, 0.0).is_none());
    assert!(Coords::from_degrees(91.0, 0.0).is_none());
    let a = Coords::from_degrees(51.5, -0.12).unwrap();
    let b = Coords::from_degrees(51.501, -0.12).unwrap();
    assert!((a.distance_m(b) - 111.0).abs() < 2.0);
}
