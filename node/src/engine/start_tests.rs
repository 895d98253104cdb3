//! The start (issue 28): the read of the store on several threads gives the same view
//! and counts as one thread reading every event in time order; the start file written
//! at a clean stop gives them again, and only when it is the current one.

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

/// The start read every event, for a reason that names `why`; `taken` says what a start
/// from the file would have done wrong.
fn assert_read_every_event(eng: &Engine, why: &str, taken: &str) {
    match eng.started_from() {
        StartedFrom::Log(reason) => assert!(reason.contains(why), "{reason}"),
        StartedFrom::File => panic!("{taken}"),
    }
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

// The start file (`crate::store::start_file`, `Engine::stop_cleanly`).

const START_FILE: &str = "start-file";

/// An engine on `dir`, as a node opens it.
fn open(dir: &std::path::Path) -> Engine {
    Engine::open(
        Store::open_with_start_file(dir).unwrap(),
        Identity::from_seed([1; 32]),
        "test".into(),
        0,
    )
    .unwrap()
}

/// A directory holding 600 events of 7 authors (see [`filled`]), and an engine on it
/// that posted 3 more of its own (so the live counts moved since the start).
fn running(dir: &std::path::Path) -> Engine {
    drop(filled(dir, 600));
    let eng = open(dir);
    assert!(
        matches!(eng.started_from(), StartedFrom::Log(_)),
        "a first start reads the log"
    );
    for i in 0..3 {
        eng.post(Body::Need(post(&format!("live {i}")))).unwrap();
    }
    eng
}

/// Everything a start builds, to compare two starts: the view exactly (its `Debug`:
/// every field, authors' numbering included), the counts, the time index.
fn state(eng: &Engine) -> (String, String, usize, usize, Vec<(Timestamp, EventId)>) {
    let st = eng.lock();
    let daily: std::collections::BTreeMap<_, _> =
        eng.daily.lock().unwrap().clone().into_iter().collect();
    let unknown: std::collections::BTreeMap<_, _> = st.unknown.clone().into_iter().collect();
    let authors: std::collections::BTreeMap<_, _> = st.authors.clone().into_iter().collect();
    (
        format!("{:?}", st.view),
        format!("{unknown:?} {authors:?} {daily:?}"),
        eng.len(),
        eng.store.welfare_len(),
        eng.store.sync_items().unwrap(),
    )
}

/// The start file's state is what a full read of the same store gives.
fn same_as_a_full_read(eng: &Engine) {
    let full = load_view(&eng.store, 2).unwrap();
    let st = eng.lock();
    assert!(
        st.view == full.view,
        "the view is the one every event gives"
    );
    assert_eq!(st.unknown, full.tally.unknown);
    assert_eq!(st.authors, full.tally.authors);
    assert_eq!(eng.authors_at_start(), &full.tally.authors);
    assert_eq!(*eng.daily.lock().unwrap(), full.tally.daily);
    assert_eq!(eng.len(), full.tally.held);
    assert_eq!(eng.store.welfare_len(), full.tally.welfare);
    let now = super::system_ms();
    assert_eq!(st.view.items(now), full.view.items(now), "posts read back");
}

#[test]
fn a_clean_stop_then_a_start_takes_the_start_file_and_builds_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    let before = state(&eng);
    eng.stop_cleanly().unwrap();
    assert!(
        eng.post(need_body()).is_err(),
        "no write after the clean stop"
    );
    drop(eng);
    assert!(dir.path().join(START_FILE).exists());
    let eng = open(dir.path());
    assert_eq!(eng.started_from(), &StartedFrom::File);
    assert!(
        !dir.path().join(START_FILE).exists(),
        "the start deletes the file"
    );
    assert_eq!(state(&eng), before, "the same view, counts and time index");
    same_as_a_full_read(&eng);
    // And it takes writes as any start does.
    let e = eng.post(need_body()).unwrap();
    assert!(eng.with_view(|v| v.item(&e.id(), super::system_ms()).is_some()));
}

fn need_body() -> Body {
    Body::Need(post("after the start"))
}

#[test]
fn a_write_after_a_start_from_the_file_then_a_crash_gets_a_full_read_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    eng.stop_cleanly().unwrap();
    drop(eng);
    let eng = open(dir.path());
    assert_eq!(eng.started_from(), &StartedFrom::File);
    let e = eng.post(need_body()).unwrap();
    let held = eng.len();
    // A crash: no clean stop.
    drop(eng);
    let eng = open(dir.path());
    assert_read_every_event(
        &eng,
        "no start file",
        "a start after a crash must read every event",
    );
    assert_eq!(eng.len(), held);
    assert!(eng.with_view(|v| v.item(&e.id(), super::system_ms()).is_some()));
    same_as_a_full_read(&eng);
}

/// An event of another author stamped inside the span the store holds (not its
/// newest: only the token, not the check of the newest key, tells the file is old),
/// as sync brings.
fn an_old_event_from_a_peer(eng: &Engine, title: &str) -> EventId {
    let items = eng.store.sync_items().unwrap();
    let (ts, _) = items[items.len() / 2];
    let e = Event::create(
        &Identity::from_seed([42; 32]),
        Timestamp(ts.0 + 1),
        &Body::Need(post(title)),
    );
    assert_eq!(
        eng.ingest(e.bytes(), Origin::Sync).unwrap(),
        Ingested::New(e.id())
    );
    eng.store.flush().unwrap();
    assert_ne!(
        eng.store.sync_items().unwrap().last(),
        Some(&(e.timestamp(), e.id()))
    );
    e.id()
}

#[test]
fn a_stale_start_file_copied_back_is_refused_by_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    eng.stop_cleanly().unwrap();
    drop(eng);
    let old = std::fs::read(dir.path().join(START_FILE)).unwrap();
    let eng = open(dir.path());
    assert_eq!(eng.started_from(), &StartedFrom::File);
    let e = an_old_event_from_a_peer(&eng, "first");
    // A crash, and the old file put back.
    drop(eng);
    std::fs::write(dir.path().join(START_FILE), &old).unwrap();
    let eng = open(dir.path());
    assert_read_every_event(&eng, "token", "a stale start file was taken");
    assert!(eng.with_view(|v| v.item(&e, super::system_ms()).is_some()));
    same_as_a_full_read(&eng);
    // A clean stop (a new file, a new token) after another write, and the old file
    // put back: refused too.
    let e2 = an_old_event_from_a_peer(&eng, "second");
    eng.stop_cleanly().unwrap();
    drop(eng);
    std::fs::write(dir.path().join(START_FILE), &old).unwrap();
    let eng = open(dir.path());
    assert_read_every_event(&eng, "token", "a stale start file was taken");
    assert!(eng.with_view(|v| v.item(&e2, super::system_ms()).is_some()));
    same_as_a_full_read(&eng);
}

#[test]
fn a_start_file_with_a_flipped_byte_is_refused_and_the_start_holds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    let before = state(&eng);
    eng.stop_cleanly().unwrap();
    drop(eng);
    let file = dir.path().join(START_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    let eng = open(dir.path());
    assert_read_every_event(&eng, "checksum", "a damaged start file was taken");
    assert!(!file.exists(), "the start deletes it");
    let after = state(&eng);
    assert_eq!(
        (&after.1, after.2, after.3, &after.4),
        (&before.1, before.2, before.3, &before.4)
    );
    same_as_a_full_read(&eng);
}

#[test]
fn a_start_file_that_cannot_be_written_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    let held = eng.len();
    // Its temporary file cannot be made (a directory in its way).
    std::fs::create_dir(dir.path().join("start-file.tmp")).unwrap();
    eng.stop_cleanly().unwrap();
    drop(eng);
    let eng = open(dir.path());
    assert!(matches!(eng.started_from(), StartedFrom::Log(_)));
    assert_eq!(eng.len(), held);
    same_as_a_full_read(&eng);
}

#[test]
fn no_start_file_while_an_erasure_waits_for_its_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    let target = eng.post(need_body()).unwrap();
    // Redacted by its author: erased, and a compaction (and rebuild) owed.
    eng.post(Body::Redaction(aidmesh_protocol::Redaction {
        target: target.id(),
        reason: String::new(),
    }))
    .unwrap();
    assert!(eng.store.compaction_pending().unwrap());
    eng.stop_cleanly().unwrap();
    drop(eng);
    assert!(!dir.path().join(START_FILE).exists());
    let eng = open(dir.path());
    assert!(matches!(eng.started_from(), StartedFrom::Log(_)));
}

#[test]
fn a_write_by_another_opener_after_a_clean_stop_makes_the_start_file_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let eng = running(dir.path());
    eng.stop_cleanly().unwrap();
    drop(eng);
    // `aidmesh init`, a backup or a restore open the store without taking the file:
    // reading leaves it usable, ...
    drop(Store::open(dir.path()).unwrap());
    let eng = open(dir.path());
    assert_eq!(eng.started_from(), &StartedFrom::File);
    eng.stop_cleanly().unwrap();
    drop(eng);
    // ... a write of an event does not.
    let store = Store::open(dir.path()).unwrap();
    let e = Event::create(
        &Identity::from_seed([9; 32]),
        Timestamp::from_millis(super::system_ms()),
        &need_body(),
    );
    assert!(store.insert(&e).unwrap());
    store.flush().unwrap();
    drop(store);
    assert!(dir.path().join(START_FILE).exists());
    let eng = open(dir.path());
    assert_read_every_event(&eng, "token", "a start file older than a write was taken");
    assert!(eng.with_view(|v| v.item(&e.id(), super::system_ms()).is_some()));
    same_as_a_full_read(&eng);
}
