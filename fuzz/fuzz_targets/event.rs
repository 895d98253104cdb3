//! Wire bytes of one event, as they arrive by gossip, sync or a bundle: decoding and
//! validation must answer Ok or a specific error, never panic. An accepted event is
//! folded into a view and its body re-encoded, so the rest of the path is exercised too.
#![no_main]

use aidmesh_protocol::{validate, Rules, View};
use libfuzzer_sys::fuzz_target;

/// A fixed "now" (2026-11-30) so runs are reproducible.
const NOW_MS: u64 = 1_796_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = validate(data, &Rules::at(NOW_MS), &()) {
        assert_eq!(
            v.event.bytes(),
            data,
            "an accepted event keeps its exact bytes"
        );
        if let Some(body) = &v.body {
            let mut view = View::new();
            view.insert(&v.event, body);
        }
    }
});
