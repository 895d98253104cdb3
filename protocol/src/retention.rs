//! Retention rules: which content a node must not keep, and which counts it must not
//! tell. Every node decides by the same rules, so an erasure reaches the whole mesh and
//! a late copy is not stored again.
//!
//! - [`covered_by_redaction`]: whether an arriving event's content is covered by a
//!   redaction already filed, or by an erasure the store remembers.
//! - [`View::welfare_expired`]: the welfare records past retention (it reads the
//!   view's index, so it lives with the view; its property test is here).
//! - [`is_welfare_kind`]: the kinds whose count a stranger is not told.
//!
//! The node applies them: it erases from its store what they name.

use crate::body::{Body, BodyKind};
use crate::{AuthorId, EventId, View};

/// Whether an event's content may be kept, as far as redactions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covered {
    /// Nothing covers it: keep it.
    No,
    /// A filed redaction covers it: keep only the fact that it was erased.
    Yes,
    /// Covered if the event `.0` was erased as an event of kind `.1`. The view no
    /// longer holds an erased event; the store remembers its id and kind, so the
    /// caller looks it up (see [`Covered::decide`]).
    IfErased(EventId, BodyKind),
}

impl Covered {
    /// The answer, with `erased_kind` telling the kind an id was erased as (`None`:
    /// not erased). Called at most once.
    pub fn decide<E>(
        self,
        erased_kind: impl FnOnce(&EventId) -> Result<Option<u16>, E>,
    ) -> Result<bool, E> {
        match self {
            Covered::No => Ok(false),
            Covered::Yes => Ok(true),
            Covered::IfErased(id, kind) => Ok(erased_kind(&id)? == Some(kind.code())),
        }
    }
}

/// Whether the event `id` by `author`, saying `body`, is covered by a redaction in
/// `view`, or by the erasure of what it hangs on:
/// - a redaction is never covered (redactions cannot be redacted);
/// - any other event is covered when its author redacted it;
/// - a need or offer raised by a check-in (`related`) goes with that check-in;
/// - a check-in goes with its person (redacted, or erased before it arrived);
/// - a sharing answer goes with its person.
pub fn covered_by_redaction(view: &View, id: &EventId, author: &AuthorId, body: &Body) -> Covered {
    if matches!(body, Body::Redaction(_)) {
        return Covered::No;
    }
    if view.redacted_by(id, author) {
        return Covered::Yes;
    }
    match body {
        Body::Need(p) | Body::Offer(p) => match p.related {
            Some(r) => Covered::IfErased(r, BodyKind::CheckIn),
            None => Covered::No,
        },
        Body::CheckIn(c) if view.checkin_hidden(id, author, &c.person) => Covered::Yes,
        Body::CheckIn(c) => Covered::IfErased(c.person, BodyKind::Person),
        Body::Sharing(s) => Covered::IfErased(s.person, BodyKind::Person),
        _ => Covered::No,
    }
}

/// Whether events of `kind` are welfare records (a person registered, a check-in, a
/// sharing choice): how many of them a node holds is not told to strangers (issue 24
/// item 9: a count that rises with each visit tells when someone is checked on).
pub fn is_welfare_kind(kind: u16) -> bool {
    [BodyKind::Person, BodyKind::CheckIn, BodyKind::Sharing]
        .iter()
        .any(|k| k.code() == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{CheckIn, Outcome, Post, Redaction, Sharing};
    use crate::{Category, Event, Identity, Timestamp};
    use proptest::prelude::*;

    fn ev(who: &Identity, ts: u64, body: Body) -> (Event, Body) {
        (Event::create(who, Timestamp(ts), &body), body)
    }

    fn view(events: &[(Event, Body)]) -> View {
        View::from_events(events.iter().map(|(e, b)| (e, b)))
    }

    fn need(title: &str, related: Option<EventId>) -> Body {
        Body::Need(Post {
            related,
            ..Post::new(title, Category::Food, crate::body::Urgency::Normal)
        })
    }

    fn person() -> Body {
        crate::fixture::person("Mrs Ada")
    }

    fn redact(target: EventId) -> Body {
        Body::Redaction(Redaction {
            target,
            reason: String::new(),
        })
    }

    fn covered(v: &View, e: &(Event, Body)) -> Covered {
        covered_by_redaction(v, &e.0.id(), &e.0.author(), &e.1)
    }

    #[test]
    fn a_redacted_event_is_covered_only_by_its_author_s_redaction() {
        let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let n = ev(&a, 10, need("water", None));
        let forged = ev(&b, 20, redact(n.0.id()));
        assert_eq!(
            covered(&view(std::slice::from_ref(&forged)), &n),
            Covered::No
        );
        let real = ev(&a, 20, redact(n.0.id()));
        assert_eq!(covered(&view(&[forged, real]), &n), Covered::Yes);
    }

    #[test]
    fn a_redaction_is_never_covered() {
        let a = Identity::from_seed([1; 32]);
        let r = ev(&a, 10, redact(EventId([7; 32])));
        let again = ev(&a, 20, redact(r.0.id()));
        assert_eq!(covered(&view(&[again]), &r), Covered::No);
    }

    #[test]
    fn check_ins_and_sharing_answers_go_with_their_person() {
        let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let p = ev(&a, 10, person());
        let pid = p.0.id();
        let check = ev(
            &b,
            20,
            Body::CheckIn(CheckIn {
                person: pid,
                outcome: Outcome::Safe,
                note: String::new(),
                by: String::new(),
            }),
        );
        let share = ev(
            &a,
            20,
            Body::Sharing(Sharing {
                person: pid,
                share: true,
            }),
        );
        // Not redacted in the view: covered if the person was erased before.
        let v = view(std::slice::from_ref(&p));
        assert_eq!(
            covered(&v, &check),
            Covered::IfErased(pid, BodyKind::Person)
        );
        assert_eq!(
            covered(&v, &share),
            Covered::IfErased(pid, BodyKind::Person)
        );
        // The person redacted: the check-in is covered outright.
        let v = view(&[p, ev(&a, 30, redact(pid))]);
        assert_eq!(covered(&v, &check), Covered::Yes);
    }

    #[test]
    fn decide_asks_the_store_only_when_it_must_and_compares_kinds() {
        let id = EventId([3; 32]);
        let never = |_: &EventId| -> Result<Option<u16>, ()> { panic!("not asked") };
        assert_eq!(Covered::No.decide(never), Ok(false));
        assert_eq!(Covered::Yes.decide(never), Ok(true));
        let c = Covered::IfErased(id, BodyKind::CheckIn);
        let erased_as = |k: Option<u16>| {
            move |i: &EventId| -> Result<_, ()> {
                assert_eq!(*i, id);
                Ok(k)
            }
        };
        assert_eq!(
            c.decide(erased_as(Some(BodyKind::CheckIn.code()))),
            Ok(true)
        );
        assert_eq!(
            c.decide(erased_as(Some(BodyKind::Person.code()))),
            Ok(false)
        );
        assert_eq!(c.decide(erased_as(None)), Ok(false));
        assert_eq!(c.decide(|_| Err("store failed")), Err("store failed"));
    }

    #[test]
    fn welfare_kinds_are_people_check_ins_and_sharing_answers() {
        let welfare = [BodyKind::Person, BodyKind::CheckIn, BodyKind::Sharing];
        for k in welfare {
            assert!(is_welfare_kind(k.code()));
        }
        for k in [BodyKind::Need, BodyKind::Offer, BodyKind::Redaction] {
            assert!(!is_welfare_kind(k.code()));
        }
        assert!(!is_welfare_kind(999));
    }

    proptest! {
        /// A welfare record expires exactly when its last activity (the newest of its
        /// registration and check-in) is at or after the floor and more than
        /// `retention` ago; it then goes whole, with its check-in.
        #[test]
        fn a_welfare_record_expires_exactly_past_retention_of_its_last_activity(
            reg_ms in 0u64..1_000_000,
            check_ms in proptest::option::of(0u64..1_000_000),
            now_ms in 0u64..3_000_000,
            retention_ms in 0u64..1_000_000,
            floor_ms in 0u64..500_000,
        ) {
            let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
            let p = ev(&a, Timestamp::from_millis(reg_ms).0, person());
            let pid = p.0.id();
            let mut events = vec![p];
            if let Some(at) = check_ms {
                let body = Body::CheckIn(CheckIn {
                    person: pid,
                    outcome: Outcome::Safe,
                    note: String::new(),
                    by: String::new(),
                });
                events.push(ev(&b, Timestamp::from_millis(at).0, body));
            }
            let last = reg_ms.max(check_ms.unwrap_or(0));
            let gone = view(&events).welfare_expired(now_ms, retention_ms, floor_ms);
            if last >= floor_ms && now_ms.saturating_sub(last) > retention_ms {
                let all: std::collections::BTreeSet<_> = events.iter().map(|e| e.0.id()).collect();
                prop_assert_eq!(gone, all);
            } else {
                prop_assert!(gone.is_empty());
            }
        }


        /// With no redaction filed, a need is covered exactly when it hangs on an
        /// erased check-in, whatever it says.
        #[test]
        fn a_need_without_redactions_hangs_only_on_its_check_in(
            title in "[a-z ]{1,40}",
            seed in 1u8..=255,
            related in proptest::option::of(any::<[u8; 32]>()),
        ) {
            let n = ev(&Identity::from_seed([seed; 32]), 10, need(&title, related.map(EventId)));
            let got = covered(&view(&[]), &n);
            match related {
                Some(r) => prop_assert_eq!(got, Covered::IfErased(EventId(r), BodyKind::CheckIn)),
                None => prop_assert_eq!(got, Covered::No),
            }
        }
    }
}
