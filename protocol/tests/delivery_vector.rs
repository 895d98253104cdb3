//! The hub summary test vectors of docs/protocol.md §12.6 (a full summary and a delta),
//! computed independently of this crate (Python: the `blake3` package, `cryptography`'s
//! Ed25519, a hand-written postcard varint and the bucket rule of §12.2). If this fails,
//! the code or the specification changed the format.

use aidmesh_protocol::delivery::{community_tag, Summary};
use aidmesh_protocol::{EventId, Identity, Timestamp};

const WIRE: &str = concat!(
    "02",                                                               // version
    "4f6d7d7f1c19f893",                                                 // community tag
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", // hub
    "b0c2c3a28c34",                                                     // made_ms 1790000030000
    "03",                                                               // count 3
    "00",                                                               // base_ms 0: full
    "02",                                                               // 2 buckets
    "c09eeca18c34",
    "80ee90a28c34",
    "02",
    "2dc0ad4c8ebec52e", // [1789998600000, 1789999200000) 2
    "e0bbc0a28c34",
    "c090c4a28c34",
    "01",
    "820d7006a88ab4a1", // [1789999980000, 1790000040000) 1
    "01",
    "1111111111111111", // 1 recent prefix
    "45078fb5dc1442988e87a815ef94d80dbe298de9b540a70a0c8feb7e24fcfd93", // signature
    "c84c47fd8f32e4e6f0f95d1675a001f84f8a606f0fbf88673ec1b5e8da1f7d0e",
);

/// The delta of §12.6: a minute later, `22…22` and `33…33` are gone and `44…44`
/// arrived; the unchanged bucket of `11…11` is left out.
const DELTA_WIRE: &str = concat!(
    "02",                                                               // version
    "4f6d7d7f1c19f893",                                                 // community tag
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", // hub
    "9097c7a28c34",                                                     // made_ms 1790000090000
    "02",                                                               // count 2
    "b0c2c3a28c34",                                                     // base_ms 1790000030000
    "02",                                                               // 2 buckets
    "c09eeca18c34",
    "80ee90a28c34",
    "00",
    "0000000000000000", // [1789998600000, 1789999200000) tombstone
    "c090c4a28c34",
    "a0e5c7a28c34",
    "01",
    "36717223fbe3605a", // [1790000040000, 1790000100000) 1
    "01",
    "4444444444444444", // 1 recent prefix
    "b81b84aff27f3f842d6bb1aaf7e8c8e3bf00f0c7134d26275ff4e7667635d199", // signature
    "06fccf208d6ea417269175deaac19df5f7c4de51ba45a51314c77d180df32d0c",
);

#[test]
fn spec_summary_vector_matches() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let hub = Identity::from_seed([1; 32]);
    let mut items = vec![
        (
            Timestamp::from_millis(1_790_000_000_000),
            EventId([0x11; 32]),
        ),
        (
            Timestamp::from_millis(1_789_999_000_000),
            EventId([0x22; 32]),
        ),
        (
            Timestamp::from_millis(1_789_999_100_000),
            EventId([0x33; 32]),
        ),
    ];
    items.sort();
    let s = Summary::make(
        community_tag(&key),
        hub.author(),
        1_790_000_030_000,
        &items,
        [EventId([0x11; 32])],
    );
    let wire = s.sign(&hub);
    assert_eq!(hex::encode(&wire), WIRE);
    assert_eq!(wire.len(), 165);
    let opened = Summary::open(&wire, &community_tag(&key)).unwrap();
    assert_eq!(opened, s);
    // What it proves to a node holding exactly these three events: all of them.
    for (ts, id) in &items {
        assert!(opened.confirms(&items, *ts, id));
    }

    // The delta, a minute later.
    let later = vec![
        (
            Timestamp::from_millis(1_790_000_000_000),
            EventId([0x11; 32]),
        ),
        (
            Timestamp::from_millis(1_790_000_080_000),
            EventId([0x44; 32]),
        ),
    ];
    let full = Summary::make(
        community_tag(&key),
        hub.author(),
        1_790_000_090_000,
        &later,
        [EventId([0x44; 32])],
    );
    let delta = full.delta(&s);
    let wire = delta.sign(&hub);
    assert_eq!(hex::encode(&wire), DELTA_WIRE);
    assert_eq!(wire.len(), 170);
    let opened = Summary::open(&wire, &community_tag(&key)).unwrap();
    assert_eq!(opened.apply(&s).unwrap(), full);
}

/// Seeds of the `delivery` fuzz target (fuzz/seeds/delivery): summaries signed for
/// the target's community key. Fails when they go stale; `AIDMESH_WRITE_SEEDS=1`
/// writes them anew.
#[test]
fn delivery_fuzz_seeds_are_current() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let hub = Identity::from_seed([1; 32]);
    let at = |s: u64| Timestamp::from_millis(1_789_999_000_000 + s * 30_000);
    let big: Vec<_> = {
        let mut v: Vec<_> = (0..40u8)
            .map(|i| (at(u64::from(i)), EventId([i; 32])))
            .chain((0..200u32).map(|n| {
                let ms = 1_700_000_000_000 + u64::from(n) * 3_600_000;
                (Timestamp::from_millis(ms), EventId(*blake3_like(n)))
            }))
            .collect();
        v.sort();
        v
    };
    let seeds: Vec<Vec<u8>> = vec![
        Summary::make(
            community_tag(&key),
            hub.author(),
            1_790_000_030_000,
            &[],
            [],
        )
        .sign(&hub),
        Summary::make(
            community_tag(&key),
            hub.author(),
            1_790_000_030_000,
            &big[..40.min(big.len())],
            [EventId([3; 32])],
        )
        .sign(&hub),
        Summary::make(
            community_tag(&key),
            hub.author(),
            1_790_000_030_000,
            &big,
            (0..40u8).map(|i| EventId([i; 32])),
        )
        .sign(&hub),
        // A delta against the fuzz target's base (`fuzz_base`): some events gone, one
        // new, an hour later.
        {
            let mut later: Vec<_> = fuzz_ours()
                .into_iter()
                .filter(|(_, id)| id.0[0] % 3 != 0)
                .chain([(
                    Timestamp::from_millis(1_790_003_000_000),
                    EventId([0xaa; 32]),
                )])
                .collect();
            later.sort();
            Summary::make(
                community_tag(&key),
                hub.author(),
                1_790_003_630_000,
                &later,
                [EventId([0xaa; 32])],
            )
            .delta(&fuzz_base())
            .sign(&hub)
        },
    ];
    assert!(Summary::open(&seeds[3], &community_tag(&key))
        .unwrap()
        .apply(&fuzz_base())
        .is_ok());
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/delivery");
    if std::env::var_os("AIDMESH_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(i.to_string()), s).unwrap();
        }
    }
    for (i, s) in seeds.iter().enumerate() {
        let held = std::fs::read(dir.join(i.to_string())).unwrap_or_default();
        assert_eq!(
            &held, s,
            "fuzz/seeds/delivery/{i} is stale: run with AIDMESH_WRITE_SEEDS=1"
        );
    }
}

/// The fuzz target's set of ours: 40 events 30 s apart from 1 789 999 000 000 ms.
fn fuzz_ours() -> Vec<(Timestamp, EventId)> {
    (0..40u8)
        .map(|i| {
            let ms = 1_789_999_000_000 + u64::from(i) * 30_000;
            (Timestamp::from_millis(ms), EventId([i; 32]))
        })
        .collect()
}

/// The base the `delivery` fuzz target applies deltas to (keep in step with
/// fuzz/fuzz_targets/delivery.rs): the hub holding [`fuzz_ours`], made at
/// 1 790 000 030 000.
fn fuzz_base() -> Summary {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let hub = Identity::from_seed([1; 32]);
    Summary::make(
        community_tag(&key),
        hub.author(),
        1_790_000_030_000,
        &fuzz_ours(),
        [],
    )
}

/// A spread of ids without a hash crate in the test: 32 bytes from a counter.
fn blake3_like(n: u32) -> Box<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut x = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in out.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    Box::new(out)
}

/// The `delivery` fuzz target's body, run over its seeds and their truncations: a
/// summary that opens is checked against a small set without a panic.
#[test]
fn the_fuzz_targets_path_takes_its_seeds_and_their_truncations() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/delivery");
    let mut opened = 0;
    let base = fuzz_base();
    for i in 0..4 {
        let seed = std::fs::read(dir.join(i.to_string())).expect("seed");
        for cut in 0..=seed.len() {
            let Ok(s) = Summary::open(&seed[..cut], &community_tag(&key)) else {
                continue;
            };
            opened += 1;
            let ours = fuzz_ours();
            let checks = s.check(&ours);
            let _ = s.behind(&checks, ours.len() as u64);
            for (ts, id) in &ours {
                let _ = s.confirms(&ours, *ts, id);
            }
            let _ = s.bucket_at(u64::MAX);
            if let Ok(full) = s.apply(&base) {
                let _ = full.check(&ours);
            }
        }
    }
    assert_eq!(opened, 4, "only the whole seeds open");
}
