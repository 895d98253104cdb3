//! Convergence: the view is a function of the set of events.

use super::*;
use crate::body::{Consent, Place, Redaction, Severity, StatusChange};
use crate::fixture::post;
use crate::identity::Identity;
use proptest::prelude::*;

const NOW: u64 = 1_790_000_000_000;

fn people() -> Vec<Identity> {
    (1..=4u8).map(|i| Identity::from_seed([i; 32])).collect()
}

fn ev(who: &Identity, ts: u64, body: Body) -> (Event, Body) {
    (Event::create(who, Timestamp(ts), &body), body)
}

fn change(target: EventId, status: Status) -> Body {
    Body::Status(StatusChange {
        target,
        status,
        note: String::new(),
    })
}

fn view(events: &[(Event, Body)]) -> View {
    View::from_events(events.iter().map(|(e, b)| (e, b)))
}

#[test]
fn fulfilled_beats_a_later_claim_and_reopen_revives() {
    let p = people();
    let need = ev(&p[0], 10, Body::Need(post("insulin")));
    let id = need.0.id();
    let mut evs = vec![
        need,
        ev(&p[1], 20, change(id, Status::Claimed)),
        ev(&p[2], 30, change(id, Status::Fulfilled)),
        ev(&p[3], 40, change(id, Status::Claimed)),
    ];
    let item = view(&evs).item(&id, NOW).unwrap();
    assert_eq!(item.state, ItemState::Fulfilled);
    assert_eq!(item.history.iter().filter(|c| c.applied).count(), 2);
    evs.push(ev(&p[3], 50, change(id, Status::Reopened)));
    assert_eq!(view(&evs).item(&id, NOW).unwrap().state, ItemState::Open);
}

#[test]
fn first_claim_holds_and_ties_break_by_author_then_id() {
    let p = people();
    let need = ev(&p[0], 10, Body::Need(post("sandbags")));
    let id = need.0.id();
    let a = ev(&p[1], 20, change(id, Status::Claimed));
    let b = ev(&p[2], 20, change(id, Status::Claimed));
    let first = a.0.author().min(b.0.author());
    let item = view(&[need, a, b]).item(&id, NOW).unwrap();
    assert_eq!(item.state, ItemState::Claimed);
    assert_eq!(item.holder, Some(first));
}

fn change_by(target: EventId, status: Status, by: &str, text: &str) -> Body {
    Body::Status(StatusChange {
        target,
        status,
        note: StatusChange::compose_note(by, text),
    })
}

#[test]
fn the_holder_is_named_with_the_time_of_the_claim_that_holds() {
    let p = people();
    let need = ev(&p[0], 10, Body::Need(post("water")));
    let id = need.0.id();
    let evs = vec![
        need.clone(),
        ev(
            &p[1],
            20,
            change_by(id, Status::Claimed, "Ana", "on my way"),
        ),
        ev(&p[2], 30, change_by(id, Status::Claimed, "Bo", "")),
        ev(&p[1], 40, change(id, Status::InProgress)),
    ];
    let item = view(&evs).item(&id, NOW).unwrap();
    let held = item.holder_change().unwrap();
    assert_eq!(held.by(), Some("Ana"));
    assert_eq!(held.text(), "on my way");
    assert_eq!(held.at, Timestamp(20));
    assert_eq!(item.holder, Some(held.author));
    // An old-style note names nobody; a reopen lets go.
    let evs = vec![
        need,
        ev(&p[1], 20, change(id, Status::Claimed)),
        ev(&p[1], 30, change(id, Status::Reopened)),
    ];
    let item = view(&evs).item(&id, NOW).unwrap();
    assert!(item.holder_change().is_none());
    assert_eq!(item.history[0].by(), None);
}

#[test]
fn only_the_author_withdraws_or_revives_a_withdrawn_post() {
    let p = people();
    let need = ev(&p[0], 10, Body::Need(post("boat")));
    let id = need.0.id();
    let evs = vec![need.clone(), ev(&p[1], 20, change(id, Status::Withdrawn))];
    assert_eq!(view(&evs).item(&id, NOW).unwrap().state, ItemState::Open);
    let evs = vec![
        need,
        ev(&p[0], 20, change(id, Status::Withdrawn)),
        ev(&p[1], 30, change(id, Status::Reopened)),
    ];
    assert_eq!(
        view(&evs).item(&id, NOW).unwrap().state,
        ItemState::Withdrawn
    );
}

#[test]
fn expiry_is_judged_at_the_time_asked() {
    let p = people();
    let mut body = post("generator");
    body.expires_ms = Some(NOW);
    let need = ev(&p[0], 10, Body::Offer(body));
    let id = need.0.id();
    let v = view(&[need]);
    assert!(!v.item(&id, NOW).unwrap().expired);
    assert!(v.item(&id, NOW + 1).unwrap().expired);
}

fn person_body(name: &str) -> Body {
    Body::Person(PersonRegistered {
        name: name.into(),
        place: Place::default(),
        risks: vec!["oxygen".into()],
        check_every_secs: 3600,
        consent: Consent::Own,
        phone: String::new(),
        note: String::new(),
    })
}

fn checkin(person: EventId, outcome: Outcome) -> Body {
    Body::CheckIn(CheckIn {
        person,
        outcome,
        note: "note".into(),
        by: "Sam".into(),
    })
}

#[test]
fn redacting_a_person_hides_them_and_their_check_ins() {
    let p = people();
    let reg = ev(&p[0], 10, person_body("Mrs Ada"));
    let pid = reg.0.id();
    let check = ev(&p[1], 20, checkin(pid, Outcome::Safe));
    let cid = check.0.id();
    let forged = ev(
        &p[1],
        30,
        Body::Redaction(Redaction {
            target: pid,
            reason: String::new(),
        }),
    );
    let v = view(&[reg.clone(), check.clone(), forged.clone()]);
    assert_eq!(
        v.people().len(),
        1,
        "a redaction by someone else is ignored"
    );
    assert!(v.purgeable().is_empty());
    let real = ev(
        &p[0],
        30,
        Body::Redaction(Redaction {
            target: pid,
            reason: String::new(),
        }),
    );
    let v = view(&[reg, check, forged, real]);
    assert!(v.people().is_empty());
    assert!(v.checkin_hidden(&cid, &p[1].author(), &pid));
    assert_eq!(v.purgeable(), BTreeSet::from([pid, cid]));
}

#[test]
fn person_due_time_counts_from_the_last_safe_check() {
    let p = people();
    let reg = ev(&p[0], Timestamp::from_millis(NOW).0, person_body("Bo"));
    let pid = reg.0.id();
    let safe = ev(
        &p[1],
        Timestamp::from_millis(NOW + 1000).0,
        checkin(pid, Outcome::Safe),
    );
    let none = ev(
        &p[1],
        Timestamp::from_millis(NOW + 2000).0,
        checkin(pid, Outcome::NoAnswer),
    );
    let v = view(&[reg, safe, none]);
    let person = v.person(&pid).unwrap();
    assert_eq!(person.latest().unwrap().check.outcome, Outcome::NoAnswer);
    assert_eq!(person.due_ms(), NOW + 1000 + 3600 * 1000);
}

/// One step of a random history. Indices pick among what exists so far, so status
/// changes and check-ins mostly hit real targets (and sometimes dangle).
#[derive(Debug, Clone)]
enum Op {
    Post {
        who: usize,
        need: bool,
        ts: u64,
        related: usize,
    },
    Change {
        who: usize,
        target: usize,
        status: usize,
        ts: u64,
    },
    Person {
        who: usize,
        ts: u64,
    },
    Check {
        who: usize,
        person: usize,
        outcome: usize,
        ts: u64,
    },
    Redact {
        who: usize,
        target: usize,
        ts: u64,
    },
    Hub {
        who: usize,
        name: usize,
        ts: u64,
    },
    Alert {
        who: usize,
        ts: u64,
        expires: Option<u64>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct timestamps, so ties are common.
    let ts = 0u64..12;
    let who = 0usize..4;
    prop_oneof![
        1 => (who.clone(), any::<bool>(), ts.clone(), any::<usize>())
            .prop_map(|(who, need, ts, related)| Op::Post { who, need, ts, related }),
        4 => (who.clone(), any::<usize>(), 0usize..5, ts.clone())
            .prop_map(|(who, target, status, ts)| Op::Change { who, target, status, ts }),
        1 => (who.clone(), ts.clone()).prop_map(|(who, ts)| Op::Person { who, ts }),
        2 => (who.clone(), any::<usize>(), 0usize..5, ts.clone())
            .prop_map(|(who, person, outcome, ts)| Op::Check { who, person, outcome, ts }),
        1 => (who.clone(), any::<usize>(), ts.clone())
            .prop_map(|(who, target, ts)| Op::Redact { who, target, ts }),
        1 => (who.clone(), 0usize..2, ts.clone()).prop_map(|(who, name, ts)| Op::Hub { who, name, ts }),
        1 => (who, ts, proptest::option::of(0u64..12))
            .prop_map(|(who, ts, expires)| Op::Alert { who, ts, expires }),
    ]
}

fn materialise(ops: &[Op]) -> Vec<(Event, Body)> {
    let ids = people();
    let mut posts: Vec<EventId> = vec![EventId([0xee; 32])]; // one dangling target
    let mut persons: Vec<EventId> = vec![EventId([0xdd; 32])];
    let mut all: Vec<EventId> = vec![EventId([0xcc; 32])];
    let mut checks: Vec<EventId> = Vec::new();
    let mut out = Vec::new();
    for op in ops {
        let (who, ts, body) = match *op {
            Op::Post {
                who,
                need,
                ts,
                related,
            } => {
                let mut p = post(&format!("post {}", out.len()));
                // Every other post raised by a check-in, when there is one.
                if related % 2 == 0 && !checks.is_empty() {
                    p.related = Some(checks[related % checks.len()]);
                }
                // Every third post expires, some before `NOW` and some after.
                if related % 3 == 1 {
                    p.expires_ms = Some(NOW - 6 + (related / 3 % 12) as u64);
                }
                (who, ts, if need { Body::Need(p) } else { Body::Offer(p) })
            }
            Op::Change {
                who,
                target,
                status,
                ts,
            } => (
                who,
                ts,
                // Some changes name who acts, so holders by name are covered too.
                change_by(
                    posts[target % posts.len()],
                    Status::ALL[status],
                    ["", "Ana", "Bo"][target / 7 % 3],
                    "",
                ),
            ),
            Op::Person { who, ts } => (who, ts, person_body(&format!("person {}", out.len()))),
            Op::Check {
                who,
                person,
                outcome,
                ts,
            } => {
                let outcome = match outcome {
                    0 => Outcome::Safe,
                    1 => Outcome::NeedsHelp("water".into()),
                    2 => Outcome::NoAnswer,
                    3 => Outcome::NotAtHome,
                    _ => Outcome::Moved("school".into()),
                };
                (who, ts, checkin(persons[person % persons.len()], outcome))
            }
            Op::Redact { who, target, ts } => (
                who,
                ts,
                Body::Redaction(Redaction {
                    target: all[target % all.len()],
                    reason: String::new(),
                }),
            ),
            Op::Hub { who, name, ts } => (
                who,
                ts,
                Body::Hub(HubAnnounced {
                    name: ["Elm St", "School"][name].into(),
                    place: Place::default(),
                    services: vec![format!("svc {ts}")],
                }),
            ),
            Op::Alert { who, ts, expires } => (
                who,
                ts,
                Body::Alert(Alert {
                    severity: Severity::Severe,
                    headline: format!("alert {}", out.len()),
                    text: String::new(),
                    area: String::new(),
                    expires_ms: expires.map(|e| NOW - 6 + e),
                }),
            ),
        };
        let e = ev(&ids[who], Timestamp::from_millis(NOW).0 + ts, body);
        match e.1.kind() {
            // Status changes also target alerts (cancel, all clear).
            BodyKind::Need | BodyKind::Offer | BodyKind::Alert => posts.push(e.0.id()),
            BodyKind::Person => persons.push(e.0.id()),
            BodyKind::CheckIn => checks.push(e.0.id()),
            _ => {}
        }
        all.push(e.0.id());
        out.push(e);
    }
    out
}

/// Deterministic Fisher-Yates driven by a seed (xorshift), so proptest can shrink it.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn answers(v: &View) -> impl PartialEq + std::fmt::Debug {
    let holders: Vec<_> = v
        .items(NOW)
        .iter()
        .map(|i| {
            i.holder_change()
                .map(|c| (c.id, c.by().map(str::to_string), c.at))
        })
        .collect();
    (
        holders,
        v.items(NOW),
        v.people(),
        v.hubs(),
        v.alerts(NOW),
        v.purgeable(),
        v.len(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn same_set_any_order_any_duplicates_same_view(
        ops in proptest::collection::vec(op(), 1..60),
        seed in 1u64..u64::MAX,
        dups in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let events = materialise(&ops);
        let reference = view(&events);

        let mut shuffled = events.clone();
        for d in &dups {
            shuffled.push(events[d % events.len()].clone());
        }
        shuffle(&mut shuffled, seed);
        let other = view(&shuffled);

        prop_assert_eq!(&reference, &other);
        prop_assert_eq!(answers(&reference), answers(&other));
    }

    #[test]
    fn dropping_purged_content_changes_no_answer(ops in proptest::collection::vec(op(), 1..60)) {
        // A node that has erased redacted content (keeping the redactions) must show the
        // same board as one that still holds it.
        let events = materialise(&ops);
        let full = view(&events);
        let purge = full.purgeable();
        let kept: Vec<_> = events.iter().filter(|(e, _)| !purge.contains(&e.id())).cloned().collect();
        let erased = view(&kept);
        prop_assert_eq!(full.items(NOW), erased.items(NOW));
        prop_assert_eq!(full.people(), erased.people());
        prop_assert_eq!(full.hubs(), erased.hubs());
        prop_assert_eq!(full.alerts(NOW), erased.alerts(NOW));
    }

    #[test]
    fn concurrent_status_changes_resolve_identically(
        statuses in proptest::collection::vec((0usize..4, 0usize..5, 0u64..4), 1..30),
        seed in 1u64..u64::MAX,
    ) {
        let p = people();
        let need = ev(&p[0], 1, Body::Need(post("water")));
        let id = need.0.id();
        let mut evs = vec![need];
        for (who, status, ts) in statuses {
            evs.push(ev(&p[who], 2 + ts, change(id, Status::ALL[status])));
        }
        let a = view(&evs).item(&id, NOW).unwrap();
        shuffle(&mut evs, seed);
        let b = view(&evs).item(&id, NOW).unwrap();
        prop_assert_eq!(&a, &b);
        // The history is in rule order whatever the arrival order.
        let keys: Vec<_> = a.history.iter().map(|c| (c.at, c.author, c.id)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(keys, sorted);
    }
}

#[test]
fn a_redaction_of_a_redaction_is_void() {
    let p = people();
    let need = ev(&p[0], 10, Body::Need(post("contact me at 555")));
    let r1 = ev(
        &p[0],
        20,
        Body::Redaction(Redaction {
            target: need.0.id(),
            reason: String::new(),
        }),
    );
    let r2 = ev(
        &p[0],
        30,
        Body::Redaction(Redaction {
            target: r1.0.id(),
            reason: String::new(),
        }),
    );
    let v = view(&[need.clone(), r1.clone(), r2]);
    assert!(v.items(NOW).is_empty());
    assert_eq!(v.purgeable(), BTreeSet::from([need.0.id()]));
}

#[test]
fn a_need_raised_by_a_check_in_goes_when_the_person_is_forgotten() {
    let p = people();
    let reg = ev(&p[0], 10, person_body("Mrs Ada"));
    let pid = reg.0.id();
    let check = ev(&p[1], 20, checkin(pid, Outcome::NeedsHelp("oxygen".into())));
    let mut linked = post("Welfare check: needs oxygen");
    linked.related = Some(check.0.id());
    let need = ev(&p[1], 21, Body::Need(linked));
    let forget = ev(
        &p[0],
        30,
        Body::Redaction(Redaction {
            target: pid,
            reason: String::new(),
        }),
    );
    let before = view(&[reg.clone(), check.clone(), need.clone()]);
    assert_eq!(before.items(NOW).len(), 1);
    let after = view(&[reg, check.clone(), need.clone(), forget]);
    assert!(after.items(NOW).is_empty());
    // What a node erases: the person, the check-in and the need it raised, nothing
    // else. (That a node which erased them shows the same board as one that did not is
    // the property test `dropping_purged_content_changes_no_answer`.)
    assert_eq!(
        after.purgeable(),
        BTreeSet::from([pid, check.0.id(), need.0.id()])
    );
}

#[test]
fn welfare_records_expire_after_their_last_activity() {
    let p = people();
    const DAY: u64 = 86_400_000;
    let reg = ev(
        &p[0],
        Timestamp::from_millis(NOW).0,
        person_body("Old record"),
    );
    let pid = reg.0.id();
    let check = ev(
        &p[1],
        Timestamp::from_millis(NOW + 10 * DAY).0,
        checkin(pid, Outcome::NeedsHelp("food".into())),
    );
    let mut linked = post("Welfare check: needs food");
    linked.related = Some(check.0.id());
    let need = ev(
        &p[1],
        Timestamp::from_millis(NOW + 10 * DAY).0 + 1,
        Body::Need(linked),
    );
    let fresh = ev(
        &p[0],
        Timestamp::from_millis(NOW + 35 * DAY).0,
        person_body("Recent"),
    );
    let v = view(&[reg.clone(), check.clone(), need.clone(), fresh.clone()]);
    // 30 days after the last check-in (day 10) the record is still kept at day 40...
    assert!(v.welfare_expired(NOW + 40 * DAY, 30 * DAY, 0).is_empty());
    // ...and expires after day 40, with its check-in and the need it raised.
    let gone = v.welfare_expired(NOW + 41 * DAY, 30 * DAY, 0);
    assert_eq!(gone, BTreeSet::from([pid, check.0.id(), need.0.id()]));
}

#[test]
fn a_record_stamped_before_the_floor_is_never_expired_by_that_stamp() {
    let p = people();
    const DAY: u64 = 86_400_000;
    let floor = NOW;
    // Registered by an older node whose clock said 1970.
    let old = ev(
        &p[0],
        Timestamp::from_millis(DAY).0,
        person_body("From 1970"),
    );
    // Registered in 1970, then checked on with a real time: that check-in counts.
    let later = ev(
        &p[0],
        Timestamp::from_millis(2 * DAY).0,
        person_body("Checked"),
    );
    let check = ev(
        &p[1],
        Timestamp::from_millis(NOW + DAY).0,
        checkin(later.0.id(), Outcome::Safe),
    );
    let v = view(&[old.clone(), later.clone(), check.clone()]);
    let gone = v.welfare_expired(NOW + 100 * DAY, 30 * DAY, floor);
    assert!(
        !gone.contains(&old.0.id()),
        "a 1970 stamp is not 30 days old"
    );
    assert_eq!(gone, BTreeSet::from([later.0.id(), check.0.id()]));
    // Without the floor rule, the 1970 record would go.
    assert!(v
        .welfare_expired(NOW + 100 * DAY, 30 * DAY, 0)
        .contains(&old.0.id()));
}

#[test]
fn a_later_check_in_that_is_not_needs_help_closes_the_need_it_raised() {
    let p = people();
    let reg = ev(&p[0], 10, person_body("Mrs Ada"));
    let pid = reg.0.id();
    let help = ev(&p[1], 20, checkin(pid, Outcome::NeedsHelp("oxygen".into())));
    let mut linked = post("Help needed (welfare check): oxygen");
    linked.related = Some(help.0.id());
    let need = ev(&p[1], 21, Body::Need(linked));
    let id = need.0.id();
    // Another need on the same street, not linked: untouched by check-ins.
    let other = ev(&p[1], 22, Body::Need(post("sandbags")));
    let mut evs = vec![reg, help.clone(), need, other.clone()];
    assert_eq!(view(&evs).item(&id, NOW).unwrap().state, ItemState::Open);
    // A second "needs help" does not close it.
    evs.push(ev(
        &p[2],
        25,
        checkin(pid, Outcome::NeedsHelp("more".into())),
    ));
    assert_eq!(view(&evs).item(&id, NOW).unwrap().state, ItemState::Open);
    for outcome in [
        Outcome::Safe,
        Outcome::NoAnswer,
        Outcome::NotAtHome,
        Outcome::Moved("school hall".into()),
    ] {
        let mut with = evs.clone();
        let later = ev(&p[3], 30, checkin(pid, outcome.clone()));
        with.push(later.clone());
        let item = view(&with).item(&id, NOW).unwrap();
        assert_eq!(item.state, ItemState::Fulfilled, "{outcome:?}");
        let closed = item.last_change().unwrap();
        assert_eq!((closed.id, closed.author), (later.0.id(), later.0.author()));
        assert!(closed.note.contains(outcome.name()), "{}", closed.note);
        let o = view(&with).item(&other.0.id(), NOW).unwrap();
        assert_eq!(o.state, ItemState::Open);
        // Any arrival order gives the same board.
        with.reverse();
        assert_eq!(view(&with).item(&id, NOW).unwrap(), item);
    }
    // A check-in from before the "needs help" one does not close it.
    let mut early = evs.clone();
    early.push(ev(&p[3], 15, checkin(pid, Outcome::Safe)));
    assert_eq!(view(&early).item(&id, NOW).unwrap().state, ItemState::Open);
    // Reopened after the closing check-in: open again, in fold order.
    evs.push(ev(&p[3], 30, checkin(pid, Outcome::Safe)));
    evs.push(ev(&p[0], 40, change(id, Status::Reopened)));
    assert_eq!(view(&evs).item(&id, NOW).unwrap().state, ItemState::Open);
}

#[test]
fn a_moved_check_in_changes_where_the_person_is() {
    let p = people();
    let mut body = person_body("Mrs Ada");
    if let Body::Person(r) = &mut body {
        r.place.label = "14 River Rd".into();
    }
    let reg = ev(&p[0], 10, body);
    let pid = reg.0.id();
    let mut evs = vec![reg];
    assert_eq!(
        view(&evs).person(&pid).unwrap().place().label,
        "14 River Rd"
    );
    evs.push(ev(
        &p[1],
        20,
        checkin(pid, Outcome::Moved("school hall".into())),
    ));
    evs.push(ev(&p[1], 30, checkin(pid, Outcome::Safe)));
    assert_eq!(
        view(&evs).person(&pid).unwrap().place().label,
        "school hall"
    );
    evs.push(ev(
        &p[2],
        40,
        checkin(pid, Outcome::Moved("Elm St hub".into())),
    ));
    assert_eq!(view(&evs).person(&pid).unwrap().place().label, "Elm St hub");
    // The registration itself is unchanged.
    assert_eq!(
        view(&evs).person(&pid).unwrap().person.place.label,
        "14 River Rd"
    );
}

fn alert(headline: &str) -> Body {
    Body::Alert(Alert {
        severity: Severity::Severe,
        headline: headline.into(),
        text: String::new(),
        area: String::new(),
        expires_ms: None,
    })
}

#[test]
fn an_alert_is_cancelled_by_its_author_or_marked_all_clear_by_anyone() {
    let p = people();
    let a = ev(&p[0], 10, alert("Water rising on River Rd"));
    let id = a.0.id();
    let states = |evs: &[(Event, Body)]| -> Vec<AlertState> {
        view(evs).alerts(NOW).iter().map(|a| a.state).collect()
    };
    assert_eq!(states(std::slice::from_ref(&a)), vec![AlertState::Active]);
    // Only its author cancels it; a cancelled alert is not listed.
    let other_cancel = ev(&p[1], 20, change(id, Status::Withdrawn));
    assert_eq!(states(&[a.clone(), other_cancel]), vec![AlertState::Active]);
    let cancel = ev(&p[0], 20, change(id, Status::Withdrawn));
    assert!(states(&[a.clone(), cancel.clone()]).is_empty());
    // Anyone marks it all clear: still listed, as all clear, with who and when.
    let clear = ev(&p[2], 30, change(id, Status::Fulfilled));
    let v = view(&[a.clone(), clear.clone()]);
    let shown = &v.alerts(NOW)[0];
    assert_eq!(shown.state, AlertState::AllClear);
    assert_eq!(shown.state.name(), "all-clear");
    assert_eq!(shown.ended.as_ref().map(|c| c.id), Some(clear.0.id()));
    // Claims mean nothing on an alert.
    let claim = ev(&p[1], 15, change(id, Status::Claimed));
    assert_eq!(states(&[a.clone(), claim]), vec![AlertState::Active]);
    // Cancelled first (in fold order) wins over a later all clear, in any arrival order.
    let evs = vec![clear.clone(), cancel.clone(), a.clone()];
    assert!(states(&evs).is_empty());
    // Reopened after all clear: active again.
    let reopen = ev(&p[3], 40, change(id, Status::Reopened));
    assert_eq!(states(&[a, clear, reopen]), vec![AlertState::Active]);
}

#[test]
fn a_post_kept_encoded_comes_back_exactly_as_posted() {
    let p = &people()[0];
    let full = Post {
        title: "Insulin, cold chain — 2 boxes".into(),
        category: crate::Category::Medical,
        details: "fridge at the back\nring twice ✓".into(),
        quantity: Some(2),
        unit: "boxes".into(),
        urgency: crate::body::Urgency::High,
        place: Place {
            label: "Église Saint-Pierre".into(),
            coords: crate::body::Coords::from_degrees(48.8566, 2.3522),
        },
        contact: "+33 6 00 00 00 00".into(),
        expires_ms: Some(NOW + 86_400_000),
        related: Some(EventId([7; 32])),
    };
    for body in [Body::Need(full.clone()), Body::Offer(post("blankets"))] {
        let (e, b) = ev(p, NOW, body.clone());
        let v = view(&[(e.clone(), b)]);
        let item = v.item(&e.id(), NOW).expect("shown");
        let (Body::Need(want) | Body::Offer(want)) = body else {
            unreachable!()
        };
        assert_eq!(item.post, want);
    }
}

#[test]
fn every_filed_kind_is_found_as_a_target_with_its_author_and_kind() {
    let p = people();
    let need = ev(&p[0], 10, Body::Need(post("water")));
    let offer = ev(&p[1], 11, Body::Offer(post("water")));
    let person = ev(&p[2], 12, person_body("Target Person"));
    let check = ev(&p[3], 13, checkin(person.0.id(), Outcome::Safe));
    let hub = ev(
        &p[0],
        14,
        Body::Hub(HubAnnounced {
            name: "Library".into(),
            place: Place::default(),
            services: vec![],
        }),
    );
    let warn = ev(&p[1], 15, alert("Storm"));
    let status = ev(&p[2], 16, change(need.0.id(), Status::Claimed));
    let redact = ev(
        &p[3],
        17,
        Body::Redaction(Redaction {
            target: status.0.id(),
            reason: String::new(),
        }),
    );
    let all = [need, offer, person, check, hub, warn, status, redact];
    let mut twice = all.to_vec();
    twice.extend(all.iter().cloned());
    let v = view(&twice);
    assert_eq!(v.len(), all.len(), "each event counts once");
    for (e, b) in &all {
        let want = TargetInfo {
            author: e.author(),
            kind: b.kind().code(),
        };
        assert_eq!(v.target(&e.id()), Some(want), "{:?}", b.kind());
    }
    assert_eq!(v.target(&EventId([9; 32])), None);
    assert!(View::new().is_empty());
}

/// The posts of a set of events, by id: what the node's store gives a view.
struct MapSource(BTreeMap<EventId, Post>);

impl PostSource for MapSource {
    fn post(&self, id: &EventId) -> Option<Post> {
        self.0.get(id).cloned()
    }
}

fn sourced(events: &[(Event, Body)]) -> View {
    let posts = events
        .iter()
        .filter_map(|(e, b)| match b {
            Body::Need(p) | Body::Offer(p) => Some((e.id(), p.clone())),
            _ => None,
        })
        .collect();
    let mut v = View::with_source(std::sync::Arc::new(MapSource(posts)));
    for (e, b) in events {
        v.insert(e, b);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_view_reading_posts_from_a_source_answers_exactly_as_one_keeping_them(
        ops in proptest::collection::vec(op(), 1..60),
        seed in 1u64..u64::MAX,
    ) {
        let events = materialise(&ops);
        let kept = view(&events);
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        let read = sourced(&shuffled);
        prop_assert!(read.kept.is_empty(), "a view with a source keeps no post");
        prop_assert_eq!(&kept, &read);
        prop_assert_eq!(answers(&kept), answers(&read));
    }

    #[test]
    fn a_packed_view_answers_exactly_as_before(
        ops in proptest::collection::vec(op(), 1..60),
        seed in 1u64..u64::MAX,
    ) {
        let mut events = materialise(&ops);
        shuffle(&mut events, seed);
        for v in [view(&events), sourced(&events)] {
            let mut packed = v.clone();
            packed.pack();
            prop_assert_eq!(&packed, &v);
            prop_assert_eq!(answers(&packed), answers(&v));
            // Still takes new events after packing.
            let mut more = packed.clone();
            let mut again = v.clone();
            for (e, b) in events.iter().take(3) {
                more.insert(e, b);
                again.insert(e, b);
            }
            prop_assert_eq!(&more, &again);
        }
    }

    /// Heads kept sorted and folded again only where [`View::heads_touched`] says a
    /// change reached are the heads of a full fold (issue 28): for any events filed
    /// before and after, in any order.
    #[test]
    fn refolding_the_touched_heads_is_a_full_fold(
        ops in proptest::collection::vec(op(), 1..60),
        split in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let mut evs = materialise(&ops);
        shuffle(&mut evs, seed);
        let split = split.index(evs.len() + 1);
        let order = |u: Urgency, t: Timestamp, id: EventId| std::cmp::Reverse((u, t, id));
        let sorted = |v: &View| {
            let mut h = v.heads(NOW);
            h.sort_by_key(|h| order(h.urgency, h.created, h.id));
            h
        };
        let mut v = view(&evs[..split]);
        let mut heads = sorted(&v);
        let mut touched = Some(BTreeSet::new());
        for (e, b) in &evs[split..] {
            v.insert(e, b);
            touched = match (touched, View::heads_touched(e, b)) {
                (Some(mut t), Some(ids)) => {
                    t.extend(ids);
                    Some(t)
                }
                _ => None,
            };
        }
        if let Some(t) = touched {
            v.refold_heads(&mut heads, &t, NOW, order);
            prop_assert_eq!(heads, sorted(&v));
        }
    }

    #[test]
    fn heads_are_the_items_without_their_posts(ops in proptest::collection::vec(op(), 1..60)) {
        let v = view(&materialise(&ops));
        for now in [0, NOW] {
            let from_items: Vec<_> = v
                .items(now)
                .into_iter()
                .map(|i| {
                    let p = &i.post;
                    let live = i.state.is_active() && !i.expired;
                    (i.id, i.kind, i.author, i.created, p.category, p.urgency, i.state, i.expired, p.expires_ms.filter(|_| live))
                })
                .collect();
            let heads: Vec<_> = v
                .heads(now)
                .into_iter()
                .map(|h| {
                    let a = v.author(h.author());
                    (h.id, h.kind(), a, h.created, h.category, h.urgency, h.state, h.expired(), v.head_until(&h.id, now))
                })
                .collect();
            // Until when they stay true: the first expiry of an item still live.
            let until = from_items.iter().filter_map(|t| t.8).min().unwrap_or(u64::MAX);
            prop_assert_eq!(v.heads_until(now), (v.heads(now), until));
            prop_assert_eq!(heads, from_items);
        }
    }

    /// A view built again from the store (in another order) and numbered as the view
    /// it replaces ([`View::number_authors_as`]) names the authors of heads folded from
    /// the old view as the old view does: what lets the node's lists keep their heads
    /// across a rebuild. It answers as before.
    #[test]
    fn a_rebuilt_view_numbered_as_the_old_one_names_the_same_authors(
        ops in proptest::collection::vec(op(), 1..60),
        seed in any::<u64>(),
        more in 0usize..6,
    ) {
        let events = materialise(&ops);
        let old = sourced(&events);
        let heads = old.heads(NOW);
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        // Fewer or more events than the old view: an author may be gone or new.
        shuffled.truncate(shuffled.len().saturating_sub(more));
        let mut new = sourced(&shuffled);
        let want = answers(&new);
        let same = new.clone();
        new.number_authors_as(&old);
        prop_assert_eq!(&new, &same);
        prop_assert_eq!(answers(&new), want);
        for h in &heads {
            let author = old.author(h.author());
            prop_assert_eq!(new.author(h.author()), author);
            prop_assert_eq!(new.author_index(&author), Some(h.author()));
        }
        for h in new.heads(NOW) {
            prop_assert_eq!(Some(new.author(h.author())), new.item(&h.id, NOW).map(|i| i.author));
        }
    }
}

#[test]
fn a_post_its_source_cannot_give_is_left_out_not_shown_empty() {
    let p = &people()[0];
    let (e, b) = ev(p, NOW, Body::Need(post("water")));
    let mut v = View::with_source(std::sync::Arc::new(MapSource(BTreeMap::new())));
    v.insert(&e, &b);
    assert!(v.item(&e.id(), NOW).is_none());
    assert!(v.items(NOW).is_empty());
    // Its index stays: rights and targets do not depend on reading the post.
    assert_eq!(v.target(&e.id()).map(|t| t.author), Some(e.author()));
}

// The start file (crate::start_file): a view written and read back is the same view.

fn start_bytes(v: &View, token: &crate::start_file::Token) -> Vec<u8> {
    use crate::start_file::{encode, Counts, StartFileRef};
    let mut time_index: Vec<_> = v.post_ids().map(|id| (Timestamp(7), *id)).collect();
    time_index.sort();
    let counts = Counts {
        held: time_index.len() as u64,
        newest: Timestamp(7),
        ..Counts::default()
    };
    encode(
        token,
        &StartFileRef {
            generation: 3,
            time_index: &time_index,
            counts: &counts,
            view: v,
        },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any view (with or without a post source, packed or not, authors numbered in
    /// any order) comes back from the start file exactly: the same fields (its
    /// `Debug`, authors' numbering included), the same answers, the same heads.
    #[test]
    fn a_view_read_back_from_the_start_file_is_the_same_view(
        ops in proptest::collection::vec(op(), 1..60),
        seed in 1u64..u64::MAX,
        pack in any::<bool>(),
    ) {
        let mut events = materialise(&ops);
        shuffle(&mut events, seed);
        for mut v in [view(&events), sourced(&events)] {
            // Some arrivals noted (the node's, local to it), as for events stamped
            // before the build floor.
            for (e, _) in events.iter().step_by(5) {
                v.note_arrival(e.id(), e.timestamp().millis() + 1);
            }
            if pack {
                v.pack();
            }
            let token = [seed as u8; 16];
            let bytes = start_bytes(&v, &token);
            let file = crate::start_file::decode(&bytes, &token).unwrap();
            prop_assert_eq!(file.generation, 3);
            let mut back = file.view;
            if v.source.0.is_some() {
                prop_assert!(back.source.0.is_none(), "the source is not written");
                back.set_source(v.source.0.clone().unwrap());
            }
            prop_assert_eq!(format!("{v:?}"), format!("{back:?}"));
            prop_assert_eq!(&v, &back);
            prop_assert_eq!(answers(&v), answers(&back));
            prop_assert_eq!(v.heads(NOW), back.heads(NOW));
            for h in v.heads(NOW) {
                prop_assert_eq!(v.author(h.author()), back.author(h.author()));
            }
            // It takes new events as the original does.
            let (mut more, mut again) = (v.clone(), back.clone());
            for (e, b) in events.iter().rev().take(3) {
                more.insert(e, b);
                again.insert(e, b);
            }
            prop_assert_eq!(format!("{more:?}"), format!("{again:?}"));
        }
    }

    /// Cut short, garbled anywhere, or read under another token: refused with an
    /// error, never a panic and never a view.
    #[test]
    fn a_damaged_start_file_is_refused(
        ops in proptest::collection::vec(op(), 1..40),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        use crate::start_file::{decode, StartFileError};
        let v = sourced(&materialise(&ops));
        let token = [9; 16];
        let bytes = start_bytes(&v, &token);
        prop_assert!(decode(&bytes, &token).is_ok());
        prop_assert_eq!(decode(&bytes, &[8; 16]).unwrap_err(), StartFileError::Token);
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode(short, &token).is_err());
        let mut garbled = bytes.clone();
        garbled[flip.index(bytes.len())] ^= 1 << bit;
        prop_assert!(decode(&garbled, &token).is_err());
        // A body garbled with its checksum and length made to match (what the
        // checksum cannot catch: a bug) still decodes to an error or a view that
        // passes its checks, never a panic.
        let header = crate::start_file::HEADER_LEN;
        if bytes.len() > header {
            let mut body = bytes[header..].to_vec();
            let at = flip.index(body.len());
            body[at] ^= 1 << bit;
            body.truncate(body.len() - cut.index(body.len() / 4 + 1));
            let mut forged = bytes[..header - 40].to_vec();
            forged.extend_from_slice(&(body.len() as u64).to_le_bytes());
            forged.extend_from_slice(blake3::hash(&body).as_bytes());
            forged.extend_from_slice(&body);
            if let Ok(f) = decode(&forged, &token) {
                let _ = answers(&f.view);
            }
        }
    }
}

#[test]
fn a_start_file_names_what_is_wrong_with_it() {
    use crate::start_file::{decode, token_of, StartFileError, MAGIC, VERSION};
    let token = [5; 16];
    let bytes = start_bytes(&View::new(), &token);
    assert_eq!(token_of(&bytes), Some(token));
    assert!(decode(&bytes, &token).is_ok());
    assert_eq!(
        decode(&bytes[..10], &token).unwrap_err(),
        StartFileError::Short(10)
    );
    let mut b = bytes.clone();
    b[0] ^= 1;
    assert_eq!(decode(&b, &token).unwrap_err(), StartFileError::Magic);
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(
        decode(&b, &token).unwrap_err(),
        StartFileError::Version(VERSION + 1)
    );
    let mut b = bytes.clone();
    b.push(0);
    assert!(matches!(
        decode(&b, &token),
        Err(StartFileError::Length { .. })
    ));
    let mut b = bytes.clone();
    *b.last_mut().unwrap() ^= 0x40;
    assert_eq!(decode(&b, &token).unwrap_err(), StartFileError::Checksum);
    assert_eq!(&bytes[..8], &MAGIC);
}

/// The lists keep a head for every item (100,000 at a town's scale): 48 bytes, not the
/// 56 it was while each carried its post's expiry (issue 28).
#[test]
fn an_item_head_is_48_bytes() {
    assert_eq!(std::mem::size_of::<ItemHead>(), 48);
}
