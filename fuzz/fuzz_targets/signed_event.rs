//! Correctly signed events built from fuzzed fields: what a member holding the community
//! key (or a buggy node) could send. Signature checks pass, so this reaches the body
//! decoders, the field limits and the rights checks that random bytes rarely reach.
#![no_main]

use aidmesh_protocol::{validate, Event, Identity, Rules, Timestamp, View, MAX_EVENT_BYTES};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const NOW_MS: u64 = 1_796_000_000_000;

#[derive(Debug, Arbitrary)]
struct Fields {
    seed: [u8; 32],
    version: u8,
    timestamp: u64,
    kind: u16,
    body: Vec<u8>,
}

fuzz_target!(|f: Fields| {
    let author = Identity::from_seed(f.seed);
    // Keep the kind mostly among the known ones so bodies get decoded.
    let kind = f.kind % 16;
    // create_raw refuses (panics on) what no node could build: version 0 and oversized
    // events. Those are covered by the `event` target, which takes raw bytes.
    let version = f.version.max(1);
    let body = &f.body[..f.body.len().min(MAX_EVENT_BYTES - 256)];
    let event = Event::create_raw(&author, version, Timestamp(f.timestamp), kind, body);
    if let Ok(v) = validate(event.bytes(), &Rules::at(NOW_MS), &()) {
        if let Some(body) = &v.body {
            let mut view = View::new();
            view.insert(&v.event, body);
        }
    }
});
