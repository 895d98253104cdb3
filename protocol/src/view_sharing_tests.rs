//! Consent to share with responders (kind 10): the newest answer by the registering hub
//! counts, nobody else's does, the default is no, and forgetting the person erases the
//! answers too.

use super::*;
use crate::body::{Redaction, Sharing};
use crate::fixture::{person, post};
use crate::identity::Identity;
use crate::validate::{validate, Rules};

fn ev(who: &Identity, ts: u64, body: Body) -> (Event, Body) {
    (Event::create(who, Timestamp(ts), &body), body)
}

fn share(person: EventId, share: bool) -> Body {
    Body::Sharing(Sharing { person, share })
}

fn shares(events: &[(Event, Body)], pid: &EventId) -> bool {
    View::from_events(events.iter().map(|(e, b)| (e, b)))
        .person(pid)
        .expect("person shown")
        .shares_with_responders
}

#[test]
fn the_registering_hubs_newest_answer_counts_and_the_default_is_no() {
    let hub = Identity::from_seed([1; 32]);
    let other = Identity::from_seed([2; 32]);
    let reg = ev(&hub, 10, person("Ada"));
    let pid = reg.0.id();
    let mut evs = vec![reg];
    assert!(!shares(&evs, &pid), "no answer: no");
    evs.push(ev(&hub, 20, share(pid, true)));
    assert!(shares(&evs, &pid));
    // Another hub cannot say yes or no for the person.
    evs.push(ev(&other, 30, share(pid, false)));
    assert!(shares(&evs, &pid));
    // The registering hub withdraws it later; arrival order does not matter.
    evs.insert(0, ev(&hub, 40, share(pid, false)));
    assert!(!shares(&evs, &pid));
    let mut rev = evs.clone();
    rev.reverse();
    assert!(!shares(&rev, &pid));
}

#[test]
fn forgetting_a_person_purges_their_answers() {
    let hub = Identity::from_seed([1; 32]);
    let reg = ev(&hub, 10, person("Ada"));
    let pid = reg.0.id();
    let yes = ev(&hub, 20, share(pid, true));
    let yes_id = yes.0.id();
    let forget = ev(
        &hub,
        30,
        Body::Redaction(Redaction {
            target: pid,
            reason: String::new(),
        }),
    );
    let v = View::from_events([&reg, &yes, &forget].into_iter().map(|(e, b)| (e, b)));
    assert!(v.person(&pid).is_none());
    assert_eq!(v.purgeable(), BTreeSet::from([pid, yes_id]));
    // Retention takes them with the person too.
    let v = View::from_events([&reg, &yes].into_iter().map(|(e, b)| (e, b)));
    assert_eq!(
        v.welfare_expired(u64::MAX, 0, 0),
        BTreeSet::from([pid, yes_id])
    );
}

#[test]
fn validation_refuses_another_hubs_answer_and_a_non_person_target() {
    let hub = Identity::from_seed([1; 32]);
    let other = Identity::from_seed([2; 32]);
    let reg = ev(&hub, 10, person("Ada"));
    let pid = reg.0.id();
    let need = ev(&hub, 11, Body::Need(post("water")));
    let v = View::from_events([&reg, &need].into_iter().map(|(e, b)| (e, b)));
    let now = Timestamp(100).millis() + 1;
    let mine = Event::create(&hub, Timestamp(20), &share(pid, true));
    assert!(validate(mine.bytes(), &Rules::at(now), &v).is_ok());
    let theirs = Event::create(&other, Timestamp(20), &share(pid, true));
    let e = validate(theirs.bytes(), &Rules::at(now), &v).unwrap_err();
    assert!(e.to_string().contains("sharing answer"), "{e}");
    let wrong = Event::create(&hub, Timestamp(20), &share(need.0.id(), true));
    let e = validate(wrong.bytes(), &Rules::at(now), &v).unwrap_err();
    assert!(e.to_string().contains("expected person"), "{e}");
}
