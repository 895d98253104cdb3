//! The session state machine, driven deterministically against a simulated peer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::OnceLock;

use super::*;
use crate::body::Body;
use crate::fixture::post;
use crate::identity::Identity;
use crate::sync::{MAX_EVENTS_RESPONSE_BYTES, MAX_SYNC_MESSAGE, RECONCILE_FRAME_LIMIT};
use crate::time::Timestamp;
use proptest::prelude::*;

/// A pool of signed events shared by the tests (signing is the slow part).
fn pool() -> &'static [Event] {
    static POOL: OnceLock<Vec<Event>> = OnceLock::new();
    POOL.get_or_init(|| {
        let who = Identity::from_seed([9; 32]);
        (0..MAX_RELAY as u64 + 40)
            // Some share a timestamp: the set is ordered by (timestamp, id).
            .map(|n| {
                let body = Body::Need(post(&format!("need {n}")));
                Event::create(&who, Timestamp(1_000 + n / 3), &body)
            })
            .collect()
    })
}

/// One simulated node: its events, a responder and a store that accepts all.
#[derive(Default, Clone)]
struct Side {
    events: BTreeMap<EventId, Event>,
    /// Byte budget of a fetch response (the real one is [`MAX_EVENTS_RESPONSE_BYTES`]).
    budget: usize,
}

impl Side {
    fn new(events: impl IntoIterator<Item = Event>, budget: usize) -> Side {
        Side {
            events: events.into_iter().map(|e| (e.id(), e)).collect(),
            budget,
        }
    }

    fn set(&self) -> SyncSet {
        SyncSet::new(self.events.values().map(|e| (e.timestamp(), e.id()))).unwrap()
    }

    /// The stateless responder, through the wire encoding (which checks the limits).
    fn serve(&self, req: &SyncRequest) -> SyncResponse {
        let bytes = req.encode();
        assert!(
            bytes.len() <= MAX_SYNC_MESSAGE,
            "request of {} bytes",
            bytes.len()
        );
        let resp = match SyncRequest::decode(&bytes).expect("a request within the limits") {
            SyncRequest::Reconcile { message, .. } => SyncResponse::Reconcile {
                wall_ms: 7,
                message: self.set().respond(&message).unwrap(),
            },
            SyncRequest::Fetch { ids } => {
                let mut events = Vec::new();
                let mut total = 0;
                for id in ids {
                    if let Some(e) = self.events.get(&id) {
                        if !events.is_empty() && total + e.bytes().len() > self.budget {
                            break;
                        }
                        total += e.bytes().len();
                        events.push(e.bytes().to_vec());
                    }
                }
                SyncResponse::Events { events }
            }
        };
        let bytes = resp.encode();
        assert!(bytes.len() <= MAX_SYNC_MESSAGE);
        SyncResponse::decode(&bytes).expect("a response within the limits")
    }

    /// Runs our session against `peer` to the end, storing what arrives, with as
    /// many requests in flight as the session wants (answered in order).
    fn pull_from(&mut self, peer: &Side, relay: bool) -> Result<(Summary, Vec<EventId>), Failure> {
        let (mut s, first) = Session::start(&self.set(), relay, 5)?;
        let mut in_flight = VecDeque::new();
        let mut step = Step::Send(first);
        loop {
            step = match step {
                Step::Send(req) => {
                    if let SyncRequest::Reconcile { message, .. } = &req {
                        assert!(message.len() <= RECONCILE_FRAME_LIMIT);
                    }
                    if let SyncRequest::Fetch { ids } = &req {
                        assert!(!ids.is_empty() && ids.len() <= MAX_FETCH_IDS);
                        assert!(ids.iter().all(|i| !self.events.contains_key(i)));
                    }
                    in_flight.push_back(req);
                    assert!(
                        in_flight.len() <= WINDOW,
                        "{} requests in flight",
                        in_flight.len()
                    );
                    s.after_send()?
                }
                Step::Wait => {
                    let req = in_flight
                        .pop_front()
                        .expect("a wait with nothing in flight");
                    s.on_response(peer.serve(&req), 5)?.step
                }
                Step::Check(ids) => {
                    assert!(ids.len() <= MAX_FETCH_IDS);
                    let held: Vec<EventId> = ids
                        .into_iter()
                        .filter(|i| self.events.contains_key(i))
                        .collect();
                    s.checked(&held, &[])?
                }
                Step::Store(events) => s.stored(self.store(events))?,
                Step::Done(summary) => {
                    assert!(s.is_over());
                    assert!(in_flight.is_empty(), "done with requests in flight");
                    return Ok((summary, s.lacking()));
                }
            }
        }
    }

    fn store(&mut self, events: Vec<Vec<u8>>) -> Stored {
        let mut new = 0;
        for b in events {
            let e = Event::decode(&b).unwrap();
            new += usize::from(self.events.insert(e.id(), e).is_none());
        }
        Stored {
            new,
            ..Stored::default()
        }
    }
}

fn ids(side: &Side) -> Vec<EventId> {
    side.events.keys().copied().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Two sides with random sets, each pulling from the other, end with the union,
    /// whatever the fetch byte budget (small budgets cut responses short).
    #[test]
    fn two_sides_with_random_sets_always_converge(
        membership in prop::collection::vec(0u8..4, 1..300),
        budget in prop_oneof![Just(MAX_EVENTS_RESPONSE_BYTES), 1usize..2_000],
    ) {
        let p = pool();
        let pick = |want: u8| membership.iter().enumerate()
            .filter(move |(_, m)| **m == 0 || **m == want)
            .map(|(i, _)| p[i].clone());
        let mut a = Side::new(pick(1), budget);
        let mut b = Side::new(pick(2), budget);
        let only_b = b.events.keys().filter(|k| !a.events.contains_key(k)).count();
        let (sa, _) = a.pull_from(&b, false).unwrap();
        prop_assert_eq!(sa.fetched, only_b);
        prop_assert_eq!(sa.missing, only_b);
        let (sb, _) = b.pull_from(&a, false).unwrap();
        prop_assert_eq!(sb.lacking, 0);
        prop_assert_eq!(ids(&a), ids(&b));
        // Once equal, a session finds nothing to do.
        let (again, _) = a.pull_from(&b, false).unwrap();
        prop_assert_eq!((again.missing, again.lacking, again.fetched), (0, 0, 0));
    }

    /// Garbled or hostile responses, in any order, with any answers to the session's
    /// questions, end in an error or a summary: never a panic, and nothing is accepted
    /// after the session ended.
    #[test]
    fn hostile_responses_give_errors_not_panics(
        inputs in prop::collection::vec(
            (0u8..7, prop::collection::vec(any::<u8>(), 0..200), 0usize..600), 1..12),
        fetching in any::<bool>(),
    ) {
        let p = pool();
        let ours = Side::new(p[..50].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
        let (mut s, req) = Session::start(&ours.set(), true, 1).unwrap();
        if fetching {
            // Start the hostility while the session waits for events.
            let peer = Side::new(p[40..].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
            let mut step = s.on_response(peer.serve(&req), 1).unwrap().step;
            while let Step::Send(next) = step {
                step = s.on_response(peer.serve(&next), 1).unwrap().step;
            }
            prop_assert!(matches!(step, Step::Check(_)));
            let fetch = matches!(s.checked(&[], &[]), Ok(Step::Send(SyncRequest::Fetch { .. })));
            prop_assert!(fetch, "expected a fetch request");
        }
        let mut ended = false;
        for (kind, bytes, n) in inputs {
            let r = match kind {
                0 => s.on_response(SyncResponse::Reconcile { wall_ms: n as u64, message: bytes }, 1).map(|o| o.step),
                1 => s.on_response(SyncResponse::Events { events: vec![bytes] }, 1).map(|o| o.step),
                2 => s.on_response(SyncResponse::Events { events: vec![p[n % p.len()].bytes().to_vec()] }, 1).map(|o| o.step),
                3 => s.checked(&[p[n % p.len()].id()], &[]),
                4 => s.stored(Stored { new: n, rejected: n % 2, ..Stored::default() }),
                5 => s.after_send(),
                _ => match SyncResponse::decode(&bytes) {
                    Ok(resp) => s.on_response(resp, 1).map(|o| o.step),
                    Err(_) => continue,
                },
            };
            if ended {
                prop_assert!(r.is_err(), "an input was accepted after the session ended");
            }
            if r.is_err() || matches!(r, Ok(Step::Done(_))) {
                ended = true;
                prop_assert!(s.is_over());
            }
        }
    }
}

#[test]
fn a_relay_session_names_what_the_peer_lacks_up_to_the_bound() {
    let p = pool();
    let mut us = Side::new(p.iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let peer = Side::new(p[..10].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let lacks = p.len() - 10;
    let (summary, lacking) = us.pull_from(&peer, false).unwrap();
    assert_eq!(summary.lacking, lacks);
    assert!(lacking.is_empty(), "an ordinary session keeps nothing");
    let (_, lacking) = us.pull_from(&peer, true).unwrap();
    assert_eq!(lacking.len(), MAX_RELAY);
    assert!(lacking.iter().all(|i| !peer.events.contains_key(i)));
}

#[test]
fn held_ids_are_not_fetched_and_an_empty_answer_ends_the_asking() {
    let p = pool();
    let us = Side::new(p[..5].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let peer = Side::new(p[..20].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let (mut s, req) = Session::start(&us.set(), false, 1).unwrap();
    let out = s.on_response(peer.serve(&req), 1).unwrap();
    assert_eq!(
        out.peer_wall_ms,
        Some(7),
        "a reconcile round is a clock sample"
    );
    let Step::Check(asked) = out.step else {
        panic!("expected a check, got {:?}", out.step)
    };
    assert_eq!(asked.len(), 15);
    // Meanwhile gossip brought us three of them.
    let step = s.checked(&asked[..3], &[]).unwrap();
    let Step::Send(SyncRequest::Fetch { ids }) = step else {
        panic!("expected a fetch, got {step:?}")
    };
    assert_eq!(ids, asked[3..]);
    // The peer erased them all meanwhile: stop asking, done.
    let out = s
        .on_response(SyncResponse::Events { events: vec![] }, 1)
        .unwrap();
    assert_eq!(out.peer_wall_ms, None);
    assert_eq!(out.step, Step::Store(vec![]));
    assert!(matches!(s.stored(Stored::default()), Ok(Step::Done(_))));
}

#[test]
fn unrequested_or_invalid_events_and_responses_out_of_turn_are_misbehaviour() {
    let p = pool();
    let us = Side::new(p[..5].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let peer = Side::new(p[..8].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let start = || Session::start(&us.set(), false, 1).unwrap();

    // Events before any were asked for.
    let (mut s, _) = start();
    let e = s
        .on_response(SyncResponse::Events { events: vec![] }, 1)
        .unwrap_err();
    assert!(
        e.misbehaved && e.reason.contains("waiting for a reconciliation"),
        "{e:?}"
    );
    assert!(s
        .on_response(SyncResponse::Events { events: vec![] }, 1)
        .is_err());

    // Events that were not asked for.
    let fetching = || {
        let (mut s, req) = start();
        let Step::Check(asked) = s.on_response(peer.serve(&req), 1).unwrap().step else {
            panic!("expected a check")
        };
        assert!(matches!(s.checked(&[], &[]), Ok(Step::Send(_))));
        (s, asked)
    };
    let (mut s, _) = fetching();
    let e = s
        .on_response(
            SyncResponse::Events {
                events: vec![p[0].bytes().to_vec(), vec![1, 2, 3]],
            },
            1,
        )
        .unwrap_err();
    assert_eq!(e, Failure::misbehaved("2 events that were not requested"));

    // Asked-for events that fail validation.
    let (mut s, asked) = fetching();
    let events = asked
        .iter()
        .map(|i| peer.events[i].bytes().to_vec())
        .collect();
    assert!(matches!(
        s.on_response(SyncResponse::Events { events }, 1),
        Ok(Output {
            step: Step::Store(_),
            ..
        })
    ));
    let e = s
        .stored(Stored {
            new: 1,
            rejected: 2,
            deferred: 0,
        })
        .unwrap_err();
    assert_eq!(e, Failure::misbehaved("2 invalid events"));
    assert_eq!(s.summary().rejected, 2);

    // A refusal is nobody's fault.
    let (mut s, _) = start();
    let e = s
        .on_response(
            SyncResponse::Refused {
                reason: "busy".into(),
            },
            1,
        )
        .unwrap_err();
    assert_eq!(e, Failure::benign("peer refused: busy"));
}

#[test]
fn fetches_are_pipelined_up_to_the_window() {
    let p = pool();
    let us = Side::new([], MAX_EVENTS_RESPONSE_BYTES);
    let peer = Side::new(p.iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let (mut s, req) = Session::start(&us.set(), false, 1).unwrap();
    let mut step = s.on_response(peer.serve(&req), 1).unwrap().step;
    let mut sent = 0;
    loop {
        step = match step {
            Step::Check(_) => s.checked(&[], &[]).unwrap(),
            Step::Send(_) => {
                sent += 1;
                s.after_send().unwrap()
            }
            Step::Wait => break,
            other => panic!("expected checks and fetches, got {other:?}"),
        }
    }
    let batches = p.len().div_ceil(MAX_FETCH_IDS);
    assert_eq!(
        sent,
        batches.min(WINDOW),
        "fetches in flight before any answer"
    );
    // The session waits for answers now; it asks nothing more of the driver.
    assert_eq!(s.after_send().unwrap(), Step::Wait);
}

/// Two sessions of one node with two peers that hold the same events, stepped in
/// turn and sharing a record of which ids each is fetching: every id comes once.
#[test]
fn concurrent_sessions_ask_each_id_once() {
    let p = pool();
    let mut us = Side::new(p[..7].iter().cloned(), 40 * 300);
    let peers = [
        Side::new(p.iter().cloned(), 40 * 300),
        Side::new(p.iter().cloned(), 40 * 300),
    ];
    let mut claims: HashMap<EventId, usize> = HashMap::new();
    let mut received = 0;
    let mut sessions = Vec::new();
    for _ in &peers {
        let (s, first) = Session::start(&us.set(), false, 1).unwrap();
        sessions.push((s, VecDeque::from([first]), Step::Wait, None::<Summary>));
    }
    while sessions.iter().any(|(_, _, _, done)| done.is_none()) {
        for (k, (s, in_flight, step, done)) in sessions.iter_mut().enumerate() {
            if done.is_some() {
                continue;
            }
            // One step of session k.
            *step = match std::mem::replace(step, Step::Wait) {
                Step::Send(req) => {
                    in_flight.push_back(req);
                    s.after_send().unwrap()
                }
                Step::Wait => {
                    let req = in_flight.pop_front().unwrap();
                    s.on_response(peers[k].serve(&req), 1).unwrap().step
                }
                Step::Check(ids) => {
                    let held: Vec<EventId> = ids
                        .iter()
                        .filter(|i| us.events.contains_key(i))
                        .copied()
                        .collect();
                    let busy: Vec<EventId> = ids
                        .iter()
                        .filter(|i| claims.get(i).is_some_and(|c| *c != k))
                        .copied()
                        .collect();
                    for i in &ids {
                        if !held.contains(i) && !busy.contains(i) {
                            claims.insert(*i, k);
                        }
                    }
                    s.checked(&held, &busy).unwrap()
                }
                Step::Store(events) => {
                    received += events.len();
                    for b in &events {
                        claims.remove(&Event::decode(b).unwrap().id());
                    }
                    let out = us.store(events);
                    s.stored(out).unwrap()
                }
                Step::Done(summary) => {
                    *done = Some(summary);
                    Step::Wait
                }
            };
        }
    }
    assert_eq!(ids(&us), ids(&peers[0]), "every event arrived");
    assert_eq!(received, p.len() - 7, "an event came twice");
    let fetched: Vec<usize> = sessions
        .iter()
        .map(|x| x.3.as_ref().unwrap().fetched)
        .collect();
    assert!(
        fetched.iter().all(|f| *f > 0),
        "the work was not shared: {fetched:?}"
    );
}

/// `n` made-up ids tagged `tag` (no events: reconciliation needs only ids and stamps).
fn made_up(tag: u8, n: u32) -> impl Iterator<Item = (Timestamp, EventId)> {
    (0..n).map(move |i| {
        let mut b = [0u8; 32];
        b[0] = tag;
        b[1..5].copy_from_slice(&i.to_be_bytes());
        (Timestamp(1_000 + u64::from(i)), EventId(b))
    })
}

/// Runs reconciliation only, ours against `theirs`, until it ends or fails.
fn reconcile_only(ours: &SyncSet, theirs: &SyncSet) -> Result<Summary, Failure> {
    let (mut s, mut req) = Session::start(ours, false, 0)?;
    loop {
        let SyncRequest::Reconcile { message, .. } = req else {
            return Ok(s.summary().clone());
        };
        let answer = SyncResponse::Reconcile {
            wall_ms: 0,
            message: theirs.respond(&message).expect("respond"),
        };
        match s.on_response(answer, 0)?.step {
            Step::Send(r @ SyncRequest::Reconcile { .. }) => req = r,
            _ => return Ok(s.summary().clone()),
        }
    }
}

#[test]
fn two_hubs_of_100_000_different_events_reconcile_past_64_rounds() {
    let ours = SyncSet::new(made_up(1, 100_000)).unwrap();
    let theirs = SyncSet::new(made_up(2, 100_000)).unwrap();
    let s = reconcile_only(&ours, &theirs).expect("a big honest difference is not misbehaviour");
    assert_eq!((s.missing, s.lacking), (100_000, 100_000));
    assert!(
        s.rounds > MAX_ROUNDS,
        "the case needs more than {MAX_ROUNDS} rounds: {s:?}"
    );
}

#[test]
fn rounds_that_find_nothing_still_end_at_the_budget() {
    // A responder that always answers with the initiator's own first message: it
    // never lets the session finish and teaches it nothing new after the first round.
    let ours = SyncSet::new(made_up(1, 10)).unwrap();
    let (mut s, first) = Session::start(&ours, false, 0).unwrap();
    let SyncRequest::Reconcile { message, .. } = first else {
        panic!("a session starts by reconciling")
    };
    let stuck = SyncSet::new(made_up(3, 50_000)).unwrap();
    let reply = stuck.respond(&message).unwrap();
    let mut rounds = 0;
    let failure = loop {
        rounds += 1;
        assert!(rounds < 10_000, "the session never gave up");
        let answer = SyncResponse::Reconcile {
            wall_ms: 0,
            message: reply.clone(),
        };
        match s.on_response(answer, 0) {
            Ok(_) => continue,
            Err(f) => break f,
        }
    };
    assert!(failure.misbehaved, "{failure:?}");
}

/// The reconciliation's snapshot of our index is let go once reconciling ends: while
/// a session fetches (a catch-up of a million events, minutes), the store's index then
/// folds its changes in place instead of copying itself (40 MB at a million) every few
/// thousand events filed (issue 28).
#[test]
fn a_fetching_session_no_longer_holds_the_snapshot_of_our_index() {
    use crate::sync::SyncIndex;
    let p = pool();
    let mut index = SyncIndex::new(p[..5].iter().map(|e| (e.timestamp(), e.id())).collect());
    let peer = Side::new(p[..40].iter().cloned(), MAX_EVENTS_RESPONSE_BYTES);
    let set = index.snapshot();
    let (mut s, req) = Session::start(&set, false, 1).unwrap();
    drop(set);
    assert!(index.snapshot_alive(), "reconciling reads the snapshot");
    let out = s.on_response(peer.serve(&req), 1).unwrap();
    let Step::Check(asked) = out.step else {
        panic!("expected a check, got {:?}", out.step)
    };
    assert_eq!(asked.len(), 35);
    assert!(
        !index.snapshot_alive(),
        "a session done reconciling still holds the snapshot of our index"
    );
    let Step::Send(SyncRequest::Fetch { .. }) = s.checked(&[], &[]).unwrap() else {
        panic!("expected a fetch")
    };
    assert!(!s.is_over());
}
