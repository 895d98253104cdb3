//! Sync requests and responses as a peer sends them: both decoders bound every length
//! before allocating and never panic; every event inside a response goes through
//! validation exactly as the node does.
#![no_main]

use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use aidmesh_protocol::{validate, Rules};
use libfuzzer_sys::fuzz_target;

const NOW_MS: u64 = 1_796_000_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = SyncRequest::decode(data);
    if let Ok(SyncResponse::Events { events }) = SyncResponse::decode(data) {
        for e in &events {
            let _ = validate(e, &Rules::at(NOW_MS), &());
        }
    }
});
