//! Unit tests: the modelled wire sizes against the real encodings, and [`Rng`]'s
//! sequence.

use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use aidmesh_protocol::EventId;

use super::bytes::reconcile_bytes;
use super::{events_bytes, fetch_bytes, Rng, EPOCH_MS};

#[test]
fn sizes_match_the_real_encoding() {
    for n in [0usize, 1, 3, 127, 128, 256] {
        let real = SyncRequest::Fetch {
            ids: vec![EventId([7; 32]); n],
        }
        .encode();
        assert_eq!(fetch_bytes(n), real.len() as u64, "fetch of {n}");
    }
    for sizes in [vec![], vec![300u64], vec![100, 200, 5000], vec![64; 200]] {
        let real = SyncResponse::Events {
            events: sizes.iter().map(|s| vec![1u8; *s as usize]).collect(),
        }
        .encode();
        assert_eq!(events_bytes(sizes.iter().copied()), real.len() as u64);
    }
    for len in [0usize, 10, 200, 5000] {
        let real = SyncRequest::Reconcile {
            wall_ms: EPOCH_MS,
            message: vec![0; len],
        }
        .encode();
        assert_eq!(reconcile_bytes(&vec![0; len]), real.len() as u64 + 4);
    }
}

#[test]
fn the_rng_is_the_same_everywhere() {
    let mut r = Rng::new(1);
    let v: Vec<u64> = (0..3).map(|_| r.next_u64() % 1000).collect();
    let mut again = Rng::new(1);
    assert_eq!(
        v,
        (0..3).map(|_| again.next_u64() % 1000).collect::<Vec<_>>()
    );
    assert_ne!(Rng::new(2).next_u64(), Rng::new(1).next_u64());
}
