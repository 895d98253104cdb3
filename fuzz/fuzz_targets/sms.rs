//! What a stranger's phone can send the SMS gateway (issue 26): a received text's file
//! as gammu-smsd files it in its inbox (UTF-16 with a byte-order mark, UTF-8, or any
//! bytes), decoded by `aidmesh_node::sms::decode` and read by
//! `aidmesh_protocol::sms::read`; the same bytes as an inbox file name
//! (`aidmesh_node::sms::inbox_name`). Must never panic; whatever is read must make a
//! title and place within the limits, and every reply made from it must be one
//! segment. Seeds (`seeds/sms/`) are texts as the daemon files them.
#![no_main]

use aidmesh_protocol::body::{MAX_LABEL, MAX_TITLE};
use aidmesh_protocol::sms::{self, Change, Kind, Lang, Reading};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = aidmesh_node::sms::inbox_name(&String::from_utf8_lossy(data));
    let text = aidmesh_node::sms::decode(data);
    let _ = sms::normalise_number(&text);
    assert!(sms::fits(&sms::one_segment(&text)));
    match sms::read(&text) {
        Reading::Post(r) | Reading::Unclear(_, Some(r)) => {
            assert!(!r.title.is_empty() && r.title.chars().count() <= MAX_TITLE);
            assert!(r.place.chars().count() <= MAX_LABEL);
            assert!(sms::fits(&sms::reply_got(&r, "3f2a9c", "Elm St hub")));
            let change = sms::reply_change(r.lang, Kind::Need, Change::Claimed, "Sam", "Oak Rd hub", &r.title, "3f2a9c");
            assert!(sms::fits(&change));
        }
        Reading::Help(lang, what) => {
            assert!(sms::fits(&sms::reply_checkin(lang, false, &what)));
        }
        Reading::Safe(_) | Reading::Stop | Reading::Unclear(_, None) => {
            assert!(sms::fits(&sms::round_question(Lang::Es, &text)));
        }
    }
});
