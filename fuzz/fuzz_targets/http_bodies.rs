//! Request bodies as a phone or a stranger's script posts them: JSON into each of the
//! node's input types (node/src/doors/input.rs, where every HTTP input is parsed), then into an
//! event exactly as the API builds it. Must answer Ok or a specific error, never panic.
#![no_main]

use aidmesh_node::doors::input::{
    json_refusal_field, AlertInput, CheckInput, ExportQuery, FloodInput, ForgetInput, HubInput,
    PeerInput, PersonInput, PostInput, SharingInput, StatusInput,
};
use aidmesh_protocol::{validate, Body, Event, EventId, Identity, Rules, Sharing, Timestamp};
use libfuzzer_sys::fuzz_target;

const NOW_MS: u64 = 1_796_000_000_000;

/// Builds, signs and validates the event, as `Engine::create` does for a local write.
fn through_validation(body: Body) {
    let me = Identity::from_seed([7; 32]);
    if let Ok(event) = Event::try_create(&me, Timestamp::from_millis(NOW_MS), &body) {
        let _ = validate(event.bytes(), &Rules::at(NOW_MS), &());
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    serde_json::from_slice(json).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    let target = EventId([9; 32]);
    // A refused body's words, as axum passes serde's on, read for the field they name
    // (issue 29: the `field` and `code` of a refusal); and the raw bytes as such words.
    if let Err(e) = serde_json::from_slice::<PostInput>(json) {
        let _ = json_refusal_field(&format!(
            "Failed to deserialize the JSON body into the target type: {e}"
        ));
    }
    let _ = json_refusal_field(&String::from_utf8_lossy(json));
    match which % 12 {
        0 | 1 => {
            if let Some(Ok(post)) = parse::<PostInput>(json).map(|p| p.into_post(NOW_MS)) {
                through_validation(if which % 9 == 0 {
                    Body::Need(post)
                } else {
                    Body::Offer(post)
                });
            }
        }
        2 => {
            if let Some(Ok(hub)) = parse::<HubInput>(json).map(HubInput::into_hub) {
                through_validation(Body::Hub(hub));
            }
        }
        3 => {
            if let Some(Ok(alert)) = parse::<AlertInput>(json).map(|a| a.into_alert(NOW_MS)) {
                through_validation(Body::Alert(alert));
            }
        }
        4 => {
            if let Some(Ok(change)) = parse::<StatusInput>(json).map(|s| s.into_change(target)) {
                through_validation(Body::Status(change));
            }
        }
        5 => {
            if let Some(Ok(person)) = parse::<PersonInput>(json).map(PersonInput::into_person) {
                through_validation(Body::Person(person));
            }
        }
        6 => {
            if let Some(Ok(check)) = parse::<CheckInput>(json).map(|c| c.into_checkin(target)) {
                through_validation(Body::CheckIn(check));
            }
        }
        7 => {
            if let Some(p) = parse::<PeerInput>(json) {
                let _ = p.into_addr();
            }
        }
        8 => {
            if let Some(f) = parse::<ForgetInput>(json) {
                let _ = f.confirms(&target, "someone");
            }
        }
        9 => {
            if let Some(s) = parse::<SharingInput>(json) {
                through_validation(Body::Sharing(Sharing {
                    person: target,
                    share: s.share,
                }));
            }
        }
        10 => {
            if let Some(f) = parse::<FloodInput>(json) {
                let _ = f.into_target();
            }
        }
        _ => {
            // The export's query (?format=...), as its fields deserialise.
            if let Some(q) = parse::<ExportQuery>(json) {
                let _ = q.format();
            }
        }
    }
});
