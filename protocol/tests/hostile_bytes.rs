//! Whatever bytes arrive, decoding and validation return a typed answer and never panic;
//! a mutated event is never accepted as a different valid event.

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use aidmesh_protocol::validate::Rules;
use aidmesh_protocol::{
    validate, Body, Category, Coords, Event, Identity, Place, Post, Timestamp, Urgency,
};
use proptest::prelude::*;

const NOW: u64 = 1_790_000_000_000;

fn sample_event(seed: u8, title: String) -> Event {
    let post = Post {
        title,
        category: Category::Medical,
        details: "two pens, fridge needed".into(),
        quantity: Some(2),
        unit: "pens".into(),
        urgency: Urgency::LifeThreatening,
        place: Place {
            label: "3rd floor, 14 River Rd".into(),
            coords: Coords::from_degrees(29.95, -90.07),
        },
        contact: "knock twice".into(),
        expires_ms: Some(NOW + 3_600_000),
        related: None,
    };
    Event::create(
        &Identity::from_seed([seed; 32]),
        Timestamp::from_millis(NOW),
        &Body::Need(post),
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *m {
        Mutation::Flip(i, x) => {
            let n = bytes.len();
            bytes[i % n] ^= x;
        }
        Mutation::Truncate(i) => bytes.truncate(i % bytes.len()),
        Mutation::Insert(i, x) => {
            let n = bytes.len();
            bytes.insert(i % (n + 1), x)
        }
        Mutation::Remove(i) => {
            let n = bytes.len();
            bytes.remove(i % n);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Event::decode(&bytes);
        let _ = validate(&bytes, &Rules::at(NOW), &());
        let _ = SyncRequest::decode(&bytes);
        let _ = SyncResponse::decode(&bytes);
        for kind in BodyKind::ALL {
            let _ = Body::decode(kind.code(), &bytes);
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_version_byte_never_panic(
        first in 1u8..3, bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut b = vec![first];
        b.extend(bytes);
        let _ = validate(&b, &Rules::at(NOW), &());
        let _ = SyncRequest::decode(&b);
        let _ = SyncResponse::decode(&b);
    }

    #[test]
    fn mutated_events_are_rejected_or_unchanged(
        seed in any::<u8>(),
        title in "[a-zA-Z ]{1,40}",
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let original = sample_event(seed, title);
        let mut bytes = original.bytes().to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        match validate(&bytes, &Rules::at(NOW), &()) {
            // Only an identity mutation (e.g. insert-then-remove) may pass, and then it
            // must be the very same event.
            Ok(v) => prop_assert_eq!(v.event.bytes(), original.bytes()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn a_valid_event_passes_the_same_gate() {
    let e = sample_event(1, "insulin".into());
    let v = validate(e.bytes(), &Rules::at(NOW), &()).unwrap();
    assert_eq!(v.event.id(), e.id());
}
