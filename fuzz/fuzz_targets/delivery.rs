//! Hub summaries as gossip delivers them (issue 11): the decoder bounds every length
//! before allocating and never panics; a summary that opens (seeds are signed for the
//! key below) is then checked against a small set of ours, as the node does, and a
//! delta is applied to a fixed base (the hub holding that set; seed 3 is a delta of
//! it), without a panic.
#![no_main]

use aidmesh_protocol::delivery::{community_tag, Summary};
use aidmesh_protocol::{EventId, Identity, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let Ok(s) = Summary::open(data, &community_tag(&key)) else {
        return;
    };
    let ours: Vec<(Timestamp, EventId)> = (0..40u8)
        .map(|i| (Timestamp::from_millis(1_789_999_000_000 + u64::from(i) * 30_000), EventId([i; 32])))
        .collect();
    let checks = s.check(&ours);
    let _ = s.behind(&checks, ours.len() as u64);
    for (ts, id) in &ours {
        let _ = s.confirms(&ours, *ts, id);
    }
    let _ = s.bucket_at(u64::MAX);
    // The base of protocol/tests/delivery_vector.rs's `fuzz_base`.
    let hub = Identity::from_seed([1; 32]);
    let base = Summary::make(community_tag(&key), hub.author(), 1_790_000_030_000, &ours, []);
    if let Ok(full) = s.apply(&base) {
        let checks = full.check(&ours);
        let _ = full.behind(&checks, ours.len() as u64);
    }
    let _ = base.apply(&s);
});
