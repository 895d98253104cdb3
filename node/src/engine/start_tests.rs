//! The start's read of the store on several threads (issue 28): the same view and
//! counts as one thread reading every event in time order.

use super::*;
use aidmesh_protocol::body::{Status, StatusChange};
use aidmesh_protocol::fixture::{person, post};
use aidmesh_protocol::{Category, Post, Urgency};

/// A store holding `n` events by 7 authors: needs, offers, status changes of them,
/// people and events of a kind this node does not know; several share a stamp, and
/// stamps bunch up (most in the last tenth of the span), as a real hub's do.
fn filled(dir: &std::path::Path, n: u64) -> Arc<Store> {
    let store = Store::open(dir).unwrap();
    let authors: Vec<Identity> = (1..=7u8).map(|i| Identity::from_seed([i; 32])).collect();
    let base = 1_790_000_000_000u64;
    let mut posts = Vec::new();
    for i in 0..n {
        let at = if i % 10 == 0 {
            base + i * 1_000
        } else {
            base + n * 1_000 + i / 3
        };
        let by = &authors[(i % 7) as usize];
        let ts = Timestamp::from_millis(at);
        let event = match i % 6 {
            0 | 1 => Event::create(by, ts, &Body::Need(post(&format!("need {i}")))),
            2 => Event::create(
                by,
                ts,
                &Body::Offer(Post::new(
                    format!("offer {i}"),
                    Category::Food,
                    Urgency::High,
                )),
            ),
            3 if !posts.is_empty() => Event::create(
                by,
                ts,
                &Body::Status(StatusChange {
                    target: posts[(i as usize * 7) % posts.len()],
                    status: Status::Claimed,
                    note: String::new(),
                }),
            ),
            4 => Event::create(by, ts, &person(&format!("person {i}"))),
            _ => Event::create_raw(by, 1, ts, 4242, format!("unknown {i}").as_bytes()),
        };
        if i % 6 < 3 {
            posts.push(event.id());
        }
        assert!(store.insert(&event).unwrap());
    }
    store.flush().unwrap();
    Arc::new(store)
}

fn same(a: &Loaded, b: &Loaded) {
    assert!(a.view == b.view, "the views differ");
    assert_eq!(a.view.len(), b.view.len());
    assert_eq!(a.tally.unknown, b.tally.unknown);
    assert_eq!(a.tally.newest, b.tally.newest);
    assert_eq!(a.tally.held, b.tally.held);
    assert_eq!(a.tally.welfare, b.tally.welfare);
    assert_eq!(a.tally.authors, b.tally.authors);
    assert_eq!(a.tally.daily, b.tally.daily);
}

#[test]
fn a_start_on_several_threads_loads_what_one_thread_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 3_000);
    let one = load_view(&store, 1).unwrap();
    assert_eq!(one.tally.held, 3_000);
    assert_eq!(
        one.tally.unknown.values().map(|s| s.len()).sum::<usize>(),
        500,
        "every event of an unknown kind indexed"
    );
    for threads in [2, 3, 8] {
        same(&load_view(&store, threads).unwrap(), &one);
    }
}

#[test]
fn a_start_on_several_threads_of_an_empty_or_tiny_store() {
    for n in [0, 1, 2, 5] {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path(), n);
        let one = load_view(&store, 1).unwrap();
        assert_eq!(one.tally.held, n as usize);
        same(&load_view(&store, 4).unwrap(), &one);
    }
}

#[test]
fn the_log_parts_hold_every_event_once_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 1_000);
    let all: Vec<(Timestamp, EventId)> = store
        .events()
        .map(|b| {
            let e = Event::decode(&b.unwrap()).unwrap();
            (e.timestamp(), e.id())
        })
        .collect();
    for parts in [1, 2, 7, 16, 5_000] {
        let mut seen = Vec::new();
        for part in store.log_parts(parts).unwrap() {
            part.each(|key, bytes| {
                let (ts, id) = key.expect("a log key");
                let e = Event::decode(bytes).unwrap();
                assert_eq!(
                    (e.timestamp(), e.id()),
                    (ts, id),
                    "keyed by its stamp and id"
                );
                seen.push((ts, id));
            })
            .unwrap();
        }
        assert_eq!(seen, all, "{parts} parts");
    }
}
