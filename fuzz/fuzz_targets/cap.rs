//! A CAP file, as `aidmesh alert import` or `POST /api/v1/alerts/import` reads it:
//! the parser must answer alerts or a specific error, never panic or hang (DTDs are
//! refused, so entity tricks cannot blow up); every alert it gives keeps the board's
//! limits, and signing it never panics. Seeds (`seeds/cap/`) are the samples of
//! tests/data/cap (NWS, MeteoAlarm-style, hostile ones).
#![no_main]

use aidmesh_protocol::{Body, Event, Identity, Timestamp};
use libfuzzer_sys::fuzz_target;

/// 2027-03-14T16:00Z: the seeds are current then.
const NOW_MS: u64 = 1_805_040_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = aidmesh_node::doors::cap::parse(data, NOW_MS) {
        let me = Identity::from_seed([1; 32]);
        if let Some(a) = msg.alert {
            let body = Body::OfficialAlert(a);
            assert!(body.check().is_ok(), "{:?}", body.check());
            // Too large is an error the API reports, never a panic.
            let _ = Event::try_create(&me, Timestamp::from_millis(NOW_MS), &body);
        }
    }
});
