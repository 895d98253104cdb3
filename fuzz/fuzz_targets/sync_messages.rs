//! Sync requests and responses as a peer sends them: both decoders bound every length
//! before allocating and never panic; every event inside a response goes through
//! validation exactly as the node does; and every decoded response, fed to the
//! initiator's session state machine (`aidmesh_protocol::session`) while it waits for
//! a reconciliation message and while it waits for events, ends in a step or an
//! error, never a panic.
#![no_main]

use std::sync::OnceLock;

use aidmesh_protocol::session::{Session, Step};
use aidmesh_protocol::sync::{SyncRequest, SyncResponse, SyncSet};
use aidmesh_protocol::{validate, EventId, Rules, Timestamp};
use libfuzzer_sys::fuzz_target;

const NOW_MS: u64 = 1_796_000_000_000;

/// Small sets of ours and a peer's, with ids each lacks, so that a session gets as
/// far as fetching.
fn set(first: u8) -> SyncSet {
    SyncSet::new((first..first + 40).map(|i| (Timestamp(u64::from(i) * 1_000), EventId([i; 32]))))
        .expect("a sorted set")
}

fn ours() -> &'static SyncSet {
    static SET: OnceLock<SyncSet> = OnceLock::new();
    SET.get_or_init(|| set(0))
}

fn peers() -> &'static SyncSet {
    static SET: OnceLock<SyncSet> = OnceLock::new();
    SET.get_or_init(|| set(100))
}

fuzz_target!(|data: &[u8]| {
    let _ = SyncRequest::decode(data);
    let Ok(resp) = SyncResponse::decode(data) else {
        return;
    };
    if let SyncResponse::Events { events } = &resp {
        for e in events {
            let _ = validate(e, &Rules::at(NOW_MS), &());
        }
    }
    // While reconciling.
    if let Ok((mut s, _)) = Session::start(ours(), true, NOW_MS) {
        let _ = s.on_response(resp.clone(), NOW_MS);
    }
    // While fetching: reconcile against the peer's set, hold none of what it has, then
    // feed the fuzzed response as the answer to the fetch.
    let Ok((mut s, SyncRequest::Reconcile { message, .. })) = Session::start(ours(), false, NOW_MS)
    else {
        return;
    };
    let Ok(answer) = peers().respond(&message) else {
        return;
    };
    let reply = SyncResponse::Reconcile {
        wall_ms: NOW_MS,
        message: answer,
    };
    if let Ok(out) = s.on_response(reply, NOW_MS) {
        if let Step::Check(_) = out.step {
            if let Ok(Step::Send(_)) = s.checked(&[], &[]) {
                let _ = s.on_response(resp, NOW_MS);
            }
        }
    }
});
