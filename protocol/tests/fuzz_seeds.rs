//! The fuzz targets' seed corpus (`fuzz/seeds/`) is made of valid inputs built here, so
//! the fuzzer starts from what nodes really send. This test fails when the wire format
//! changes and the committed seeds no longer match; `AIDMESH_WRITE_SEEDS=1 cargo test -p
//! aidmesh-protocol --test fuzz_seeds` writes them anew.

use std::path::PathBuf;

use aidmesh_protocol::bundle::{Sealer, CHUNK_SIZE, MIN_CHUNK_SIZE};
use aidmesh_protocol::start_file::{encode, Counts, StartFileRef};
use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use aidmesh_protocol::{
    Body, Category, CheckIn, Coords, Event, Identity, Outcome, Place, Post, StatusChange,
    Timestamp, Urgency, View,
};

fn events() -> Vec<Event> {
    let me = Identity::from_seed([1; 32]);
    let at = |s: u64| Timestamp::from_millis(1_790_000_000_000 + s);
    let post = Post {
        title: "insulin".into(),
        category: Category::Medical,
        details: "fridge lost power\nsecond line".into(),
        quantity: Some(2),
        unit: "pens".into(),
        urgency: Urgency::High,
        place: Place {
            label: "Mill Lane".into(),
            coords: Coords::from_degrees(51.5, -0.12),
        },
        contact: "door 3".into(),
        expires_ms: Some(1_790_086_400_000),
        related: None,
    };
    let need = Event::create(&me, at(0), &Body::Need(post.clone()));
    let offer = Event::create(&me, at(1), &Body::Offer(post));
    let status = Event::create(
        &me,
        at(2),
        &Body::Status(StatusChange {
            target: need.id(),
            status: aidmesh_protocol::Status::Claimed,
            note: "on my way".into(),
        }),
    );
    let check = Event::create(
        &me,
        at(3),
        &Body::CheckIn(CheckIn {
            person: need.id(),
            outcome: Outcome::Safe,
            note: "fine".into(),
            by: "Ana".into(),
        }),
    );
    vec![need, offer, status, check]
}

/// (file under fuzz/seeds/, bytes)
fn seeds() -> Vec<(String, Vec<u8>)> {
    let evs = events();
    let mut out: Vec<(String, Vec<u8>)> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("event/{i}"), e.bytes().to_vec()))
        .collect();
    let sync = [
        SyncRequest::Reconcile {
            wall_ms: 1_790_000_000_000,
            message: vec![0x61, 0, 1, 2],
        }
        .encode(),
        SyncRequest::Fetch {
            ids: evs.iter().map(Event::id).collect(),
        }
        .encode(),
        SyncResponse::Events {
            events: evs.iter().map(|e| e.bytes().to_vec()).collect(),
        }
        .encode(),
        SyncResponse::Reconcile {
            wall_ms: 1_790_000_000_000,
            message: vec![0x61],
        }
        .encode(),
    ];
    out.extend(
        sync.into_iter()
            .enumerate()
            .map(|(i, b)| (format!("sync_messages/{i}"), b)),
    );
    // bundle: the first byte is the piece size; sealed with the target's FUZZ_KEY.
    let bundle = |evs: &[&Event], chunk_size: u32| {
        let mut s = Sealer::with_chunk_size(&[0x42; 32], 1_790_000_000_000, [7; 16], chunk_size);
        let mut f = s.header().to_vec();
        for e in evs {
            if let Some(c) = s.add(e.bytes()) {
                f.extend_from_slice(&c);
            }
        }
        f.extend_from_slice(&s.finish());
        f
    };
    let all: Vec<&Event> = evs.iter().collect();
    let many: Vec<&Event> = evs.iter().cycle().take(120).collect();
    for (i, (step, file)) in [
        (255u8, bundle(&all, CHUNK_SIZE)),
        (13, bundle(&many, MIN_CHUNK_SIZE)),
        (64, bundle(&[], CHUNK_SIZE)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = vec![step];
        b.extend_from_slice(&file);
        out.push((format!("bundle/{i}"), b));
    }
    // cap: the CAP samples of the tests, as they are.
    let cap_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/cap");
    let mut samples: Vec<_> = std::fs::read_dir(&cap_dir)
        .expect("tests/data/cap")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    samples.sort();
    for p in samples {
        let name = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        out.push((format!("cap/{name}"), std::fs::read(&p).expect("sample")));
    }
    // http_bodies: the first byte picks the input type (see the target).
    let json: [(u8, &str); 12] = [
        (
            0,
            r#"{"title":"water","category":"water","urgency":"high","qty":20,"unit":"litres","place":"12 Mill Lane","lat":51.5,"lon":-0.12,"expires":"2d"}"#,
        ),
        (
            1,
            r#"{"title":"boat","category":"transport","details":"fits 4","contact":"Sam"}"#,
        ),
        (
            2,
            r#"{"name":"Elm St hub","place":"school","services":["water","charging"]}"#,
        ),
        (
            3,
            r#"{"headline":"water rising on River Road","severity":"extreme","area":"River Rd","expires":"6h"}"#,
        ),
        (4, r#"{"status":"claimed","note":"on my way"}"#),
        (
            5,
            r#"{"name":"Mrs Okafor","place":"14 River Rd, 3rd floor","risks":["oxygen"],"every":"12h","consent":"self","phone":"555 0100"}"#,
        ),
        (
            6,
            r#"{"outcome":"needs-help","detail":"water","note":"no water","by":"Ana"}"#,
        ),
        (7, r#"{"addr":"/ip4/10.0.0.7/tcp/4610"}"#),
        (
            8,
            r#"{"confirm":"0909090909090909090909090909090909090909090909090909090909090909"}"#,
        ),
        (9, r#"{"share":true}"#),
        (10, r#"{"from":"192.168.1.57","since_ms":1796053320000}"#),
        (11, r#"{"format":"pfif"}"#),
    ];
    out.extend(json.iter().map(|(k, j)| {
        let mut b = vec![*k];
        b.extend_from_slice(j.as_bytes());
        (format!("http_bodies/{k}"), b)
    }));
    // start_file: the file of a view of the events above, and of an empty view.
    let bodies: Vec<(Event, Body)> = evs
        .iter()
        .map(|e| (e.clone(), e.body().unwrap().unwrap()))
        .collect();
    let full = View::from_events(bodies.iter().map(|(e, b)| (e, b)));
    for (i, view) in [full, View::new()].iter().enumerate() {
        let mut time_index: Vec<_> = if view.is_empty() {
            Vec::new()
        } else {
            evs.iter().map(|e| (e.timestamp(), e.id())).collect()
        };
        time_index.sort();
        let counts = Counts {
            held: time_index.len() as u64,
            newest: time_index.last().map_or(Timestamp(0), |(ts, _)| *ts),
            ..Counts::default()
        };
        let file = encode(
            &[i as u8; 16],
            &StartFileRef {
                generation: i as u64,
                time_index: &time_index,
                counts: &counts,
                view,
            },
        )
        .unwrap();
        out.push((format!("start_file/{i}"), file));
    }
    out
}

#[test]
fn fuzz_seeds_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let write = std::env::var_os("AIDMESH_WRITE_SEEDS").is_some();
    for (name, bytes) in seeds() {
        let path = dir.join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let held = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{} missing ({e}); run with AIDMESH_WRITE_SEEDS=1",
                    path.display()
                )
            });
            assert_eq!(
                held, bytes,
                "{name} is stale; run with AIDMESH_WRITE_SEEDS=1"
            );
        }
    }
}
