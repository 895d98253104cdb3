//! The gateway's unit tests: inbox names, decoding, days, fingerprints, expiry.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::db::{self, Sender};
use super::replies::reply_number;
use super::*;
use aidmesh_protocol::calendar;

#[test]
fn inbox_names_and_parts() {
    assert_eq!(
        inbox_name("IN20261207_012630_00_+15551234_00.txt"),
        Some((
            "+15551234".into(),
            "IN20261207_012630_00_+15551234".into(),
            0
        ))
    );
    assert_eq!(
        inbox_name("IN20261207_012637_00_+34 600 111 222_01.txt").map(|x| (x.0, x.2)),
        Some(("+34 600 111 222".into(), 1))
    );
    assert_eq!(
        inbox_name("IN20261207_012630_00_Vodafone_00.bin").map(|x| x.0),
        Some("Vodafone".into())
    );
    assert_eq!(inbox_name("OUTx.txt"), None);
    assert_eq!(inbox_name("IN_bad.txt"), None);
    assert_eq!(inbox_name("IN20261207_012630_00_+1_00.smsbackup"), None);
    assert_eq!(reply_number("Vodafone"), None);
    assert_eq!(reply_number("+15551234").as_deref(), Some("+15551234"));
    assert_eq!(
        reply_number("+34 600-111 222").as_deref(),
        Some("+34600111222")
    );
    assert_eq!(reply_number("BANK123"), None);
}

#[test]
fn files_in_every_inbox_format_decode() {
    assert_eq!(decode(b"NEED water"), "NEED water");
    let be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain("Jesús".encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert_eq!(decode(&be), "Jesús");
    let le: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("ñ😀".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(decode(&le), "ñ😀");
    // The daemon cuts an emoji's second half: one replacement character, no panic.
    assert_eq!(decode(&[0xfe, 0xff, 0x00, 0x41, 0xd8, 0x3d]), "A\u{fffd}");
    assert_eq!(decode(&[0xfe, 0xff, 0x00]), "");
    assert_eq!(decode(&[0xff, 0x41]), "\u{fffd}A");
}

#[test]
fn fingerprints() {
    assert_eq!(
        fingerprint_in("Texted to the SMS gateway at X; text 0123456789abcdef."),
        Some("0123456789abcdef".into())
    );
    assert_eq!(fingerprint_in("no"), None);
}

#[test]
fn numbers_dismissed_texts_and_handled_files_expire_after_keep() {
    let d = tempfile::tempdir().unwrap();
    for f in ["in", "out"] {
        std::fs::create_dir(d.path().join(f)).unwrap();
    }
    let conf = d.path().join("smsdrc");
    std::fs::write(
        &conf,
        format!(
            "[smsd]\nservice = files\ninboxpath = {0}/in/\noutboxpath = {0}/out/\ninboxformat = unicode\n",
            d.path().display()
        ),
    )
    .unwrap();
    let engine = Arc::new(
        Engine::open(
            crate::store::Store::open(&d.path().join("db")).unwrap(),
            aidmesh_protocol::Identity::from_seed([7; 32]),
            "test".into(),
            0,
        )
        .unwrap(),
    );
    let gw = Gateway::open(SmsOptions::new(conf), d.path(), engine).unwrap();
    let now = 1_796_601_600_000u64;
    let keep = KEEP.as_millis() as u64;
    let sender = |at_ms| Sender {
        phone: "+15551234".into(),
        lang: "en".into(),
        reference: "3f2a9c".into(),
        kind: "need".into(),
        title: "water".into(),
        at_ms,
        notified: Vec::new(),
    };
    gw.db
        .senders
        .insert([1; 32], db::json(&sender(now - keep - 1)))
        .unwrap();
    gw.db
        .senders
        .insert([2; 32], db::json(&sender(now - keep + 60_000)))
        .unwrap();
    gw.db
        .dismissed
        .insert(
            "old",
            db::json(&json!({ "at_ms": now - keep - 1, "phone": "+1555" })),
        )
        .unwrap();
    gw.db
        .stats
        .insert(
            format!("in:{}", calendar::basic_date(now - keep - 86_400_000)),
            &1u64.to_be_bytes(),
        )
        .unwrap();
    gw.db
        .stats
        .insert(
            format!("in:{}", calendar::basic_date(now)),
            &1u64.to_be_bytes(),
        )
        .unwrap();
    let handled = d.path().join("in").join(config::HANDLED);
    let old = handled.join("IN20261001_000000_00_+15551234_00.txt");
    let fresh = handled.join("IN20261207_000000_00_+15551234_00.txt");
    for f in [&old, &fresh] {
        std::fs::write(f, b"NEED water").unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - KEEP - Duration::from_secs(60))
        .unwrap();
    let gone = gw.expire(now).unwrap();
    assert_eq!(gone, 3, "one number, one dismissed text, one handled file");
    assert!(gw.db.senders.get([1; 32]).unwrap().is_none());
    assert!(
        gw.db.senders.get([2; 32]).unwrap().is_some(),
        "a number within KEEP stays"
    );
    assert!(gw.db.dismissed.is_empty());
    assert_eq!(gw.db.stats.len(), 1, "the old day's count went");
    assert!(!old.exists() && fresh.exists());
}
