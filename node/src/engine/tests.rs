//! The engine's tests: the write path, erasure and compaction, clocks and quotas.

use super::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::store::FailAt;
use aidmesh_protocol::TimeSource;
use aidmesh_protocol::{
    Category, CheckIn, Consent, Outcome, PersonRegistered, Place, Post, Redaction, Urgency,
};

fn engine(dir: &std::path::Path, seed: u8) -> Engine {
    Engine::open(
        Store::open(dir).unwrap(),
        Identity::from_seed([seed; 32]),
        "test".into(),
        0,
    )
    .unwrap()
}

fn need() -> Body {
    Body::Need(Post::new("water", Category::Water, Urgency::Normal))
}

#[test]
fn posted_events_survive_reopen_and_duplicates_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let e = {
        let eng = engine(dir.path(), 1);
        let e = eng.post(need()).unwrap();
        assert_eq!(
            eng.ingest(e.bytes(), Origin::Gossip).unwrap(),
            Ingested::Duplicate(e.id())
        );
        e
    };
    let eng = engine(dir.path(), 1);
    assert_eq!(eng.len(), 1);
    assert!(eng.with_view(|v| v.item(&e.id(), 0)).is_some());
    // A new local event is ordered after what was loaded.
    let e2 = eng.post(need()).unwrap();
    assert!(e2.timestamp() > e.timestamp());
}

#[test]
fn posts_are_read_back_from_the_store_after_a_start_and_a_reopened_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut posted = need();
    if let Body::Need(p) = &mut posted {
        p.details = "ring twice\nback door".into();
        p.contact = "+33 6 00 00 00 00".into();
    }
    let e = engine(dir.path(), 1).post(posted.clone()).unwrap();
    // The start read every event, then closed and reopened the database.
    let eng = engine(dir.path(), 1);
    let shown = eng.with_view(|v| v.item(&e.id(), 0)).expect("shown");
    assert_eq!(Body::Need(shown.post), posted);
    // Writes after the reopen land in the reopened database and are shown.
    let e2 = eng.post(need()).unwrap();
    assert_eq!(eng.with_view(|v| v.items(0).len()), 2);
    eng.store().release_cache().unwrap();
    assert!(eng.with_view(|v| v.item(&e2.id(), 0)).is_some());
    drop(eng);
    assert_eq!(engine(dir.path(), 1).len(), 2);
}

#[test]
fn forgetting_a_person_erases_their_bytes_and_refuses_late_check_ins() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    let reg = eng
        .post(Body::Person(PersonRegistered {
            name: "Zebulon Quartermaine".into(),
            place: Place::default(),
            risks: vec![],
            check_every_secs: 3600,
            consent: Consent::Own,
            phone: String::new(),
            note: String::new(),
        }))
        .unwrap();
    // The test can fail: before forgetting, the name is on disk.
    assert!(files_contain(dir.path(), b"Zebulon Q").is_some());
    // A check-in written elsewhere, which arrives only after the redaction.
    let other = Identity::from_seed([2; 32]);
    let late = Event::create(
        &other,
        aidmesh_protocol::Timestamp::from_millis(eng.now_ms()),
        &Body::CheckIn(CheckIn {
            person: reg.id(),
            outcome: Outcome::Safe,
            note: "fine".into(),
            by: "Sam".into(),
        }),
    );
    eng.post(Body::Redaction(Redaction {
        target: reg.id(),
        reason: String::new(),
    }))
    .unwrap();
    assert!(eng.store().get(&reg.id()).unwrap().is_none());
    wait_compacted(&eng, 1);
    assert_eq!(
        eng.ingest(late.bytes(), Origin::Gossip).unwrap(),
        Ingested::Erased(late.id())
    );
    assert!(eng.with_view(|v| v.people().is_empty()));
    assert_eq!(
        eng.ingest(reg.bytes(), Origin::Sync).unwrap(),
        Ingested::Erased(reg.id())
    );
    // Not only hidden: no byte of the name is left in the database files.
    eng.store().flush().unwrap();
    if let Some(f) = files_contain(dir.path(), b"Zebulon Q") {
        panic!("the forgotten name is still in {}", f.display());
    }
    // The store still works after compaction, and a restart sees the same.
    eng.post(need()).unwrap();
    let n = eng.len();
    drop(eng);
    let again = engine(dir.path(), 1);
    assert_eq!(again.len(), n);
}

/// A session's reconciliation set is the store's time index itself, shared, not a
/// copy (issue 28: one copy of the held ids); a change made while a session reads it
/// leaves that session's items as they were.
#[test]
fn a_sessions_set_is_the_time_index_itself_and_stays_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    eng.post(need()).unwrap();
    let set = eng.sync_set().unwrap();
    let again = eng.sync_set().unwrap();
    assert!(
        set.shares_items_with(&again),
        "no change: the same items, not a copy"
    );
    assert_eq!(
        eng.store().sync_items().unwrap(),
        set.items(),
        "the store's time index"
    );
    eng.post(need()).unwrap();
    let after = eng.sync_set().unwrap();
    assert_eq!(
        (set.len(), after.len()),
        (1, 2),
        "the old snapshot is unchanged"
    );
    assert_eq!(eng.store().sync_items().unwrap(), after.items());
    eng.after_sync();
}

#[test]
fn the_digest_is_never_stale_after_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let eng = Arc::new(engine(dir.path(), 1));
    let writer = {
        let eng = eng.clone();
        std::thread::spawn(move || {
            for _ in 0..300 {
                eng.post(need()).unwrap();
            }
        })
    };
    while !writer.is_finished() {
        eng.digest().unwrap();
        eng.sync_set().unwrap();
    }
    writer.join().unwrap();
    // From the time index, sorted here: not from the ids the store keeps sorted.
    let mut ids: Vec<EventId> = eng
        .store()
        .sync_items()
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    ids.sort_unstable();
    let fresh = aidmesh_protocol::sync::digest(&ids);
    assert_eq!(eng.digest().unwrap(), fresh, "a stale digest was cached");
    assert_eq!(
        eng.sync_set().unwrap().len(),
        eng.len(),
        "a stale sync set was cached"
    );
}

#[test]
fn human_durations_round_to_the_nearest_unit() {
    assert_eq!(human_ms(3 * 86_400_000 - 40), "3 days");
    assert_eq!(human_ms(90 * 60_000), "2 h");
    assert_eq!(human_ms(125_000), "2 min");
    assert_eq!(human_ms(1_400), "1 s");
}

#[test]
fn welfare_records_are_erased_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    const DAY: u64 = 86_400_000;
    {
        let eng = engine(dir.path(), 1);
        eng.post(Body::Person(PersonRegistered {
            name: "Yolanda Retention".into(),
            place: Place::default(),
            risks: vec![],
            check_every_secs: 3600,
            consent: Consent::Own,
            phone: String::new(),
            note: String::new(),
        }))
        .unwrap();
        eng.post(need()).unwrap();
        assert_eq!(eng.expire_welfare(30 * DAY).unwrap(), 0);
    }
    // 31 days later.
    let later = Engine::open(
        Store::open(dir.path()).unwrap(),
        Identity::from_seed([1; 32]),
        "test".into(),
        31 * DAY as i64,
    )
    .unwrap();
    assert_eq!(later.expire_welfare(30 * DAY).unwrap(), 1);
    assert!(later.with_view(|v| v.people().is_empty()));
    assert_eq!(later.len(), 1, "the need is not welfare data and stays");
    wait_compacted(&later, 1);
    assert!(files_contain(dir.path(), b"Yolanda R").is_none());
}

/// Waits (bounded) until the background thread has finished `n` compactions and
/// none is owed.
fn wait_compacted(eng: &Engine, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while eng.store().compactions() < n || eng.store().compaction_pending().unwrap() {
        assert!(
            Instant::now() < deadline,
            "no background compaction within 20 s ({} done)",
            eng.store().compactions()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

use aidmesh_protocol::fixture::person;

fn key(peer: &str, host: &str) -> ClockKey {
    ClockKey {
        peer: peer.as_bytes().to_vec(),
        host: host.as_bytes().to_vec(),
    }
}

const DAY: u64 = 86_400_000;

#[test]
fn one_fast_peer_moves_neither_the_time_nor_erasure_nor_local_writes() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    eng.post(person("Xavier Fastclock")).unwrap();
    eng.record_peer_clock(&key("liar", "10.0.0.9"), eng.wall_ms() + 40 * DAY);
    assert!(matches!(eng.clock_status().0, ClockStatus::Behind(_)));
    assert!(eng.now_ms().abs_diff(eng.wall_ms()) < 60_000, "time moved");
    assert_eq!(eng.expire_welfare(30 * DAY).unwrap(), 0, "erased early");
    let e = eng.post(need()).unwrap();
    assert!(e.timestamp().millis().abs_diff(eng.wall_ms()) < 60_000);
    // Its events are deferred, not stored and not counted as the sender's fault.
    let other = Identity::from_seed([2; 32]);
    let future = Event::create(
        &other,
        Timestamp::from_millis(eng.wall_ms() + 40 * DAY),
        &need(),
    );
    let r = eng
        .ingest_batch(&[future.bytes().to_vec()], Origin::Sync)
        .unwrap();
    assert_eq!((r.new, r.rejected.len()), (0, 0), "{r:?}");
    assert_eq!(r.deferred, vec![future.id()]);
}

#[test]
fn a_quorum_ahead_never_hastens_erasure_and_moves_time_at_most_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    eng.post(person("Wilma Quorum")).unwrap();
    for h in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        eng.record_peer_clock(&key(h, h), eng.wall_ms() + 40 * DAY);
    }
    let r = eng.clock();
    assert_eq!(r.source, TimeSource::Mesh);
    let moved = r.now_ms - r.local_ms;
    assert!(
        moved <= aidmesh_protocol::time::MAX_CORRECTION_MS,
        "moved {moved} ms"
    );
    assert_eq!(eng.expire_welfare(30 * DAY).unwrap(), 0, "erased early");
    assert!(eng.with_view(|v| v.people().len()) == 1);
}

#[test]
fn a_store_holding_future_events_still_takes_local_writes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Written while this node's clock was 40 days ahead.
        let fast = Engine::open(
            Store::open(dir.path()).unwrap(),
            Identity::from_seed([1; 32]),
            "test".into(),
            40 * DAY as i64,
        )
        .unwrap();
        fast.post(need()).unwrap();
    }
    let eng = engine(dir.path(), 1);
    let e = eng
        .post(need())
        .expect("a local write after the clock was fixed");
    assert!(e.timestamp().millis() <= eng.now_ms() + aidmesh_protocol::time::MAX_FUTURE_MS);
}

fn forget(eng: &Engine, target: EventId) {
    eng.post(Body::Redaction(Redaction {
        target,
        reason: String::new(),
    }))
    .unwrap();
}

#[test]
fn several_forgets_share_one_background_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    let names: Vec<String> = (0..5).map(|i| format!("Quillon Nakamura-{i}")).collect();
    let ids: Vec<EventId> = names
        .iter()
        .map(|n| eng.post(person(n)).unwrap().id())
        .collect();
    for _ in 0..200 {
        eng.post(need()).unwrap();
    }
    assert!(files_contain(dir.path(), b"Quillon N").is_some());
    for id in ids {
        forget(&eng, id);
    }
    // Forgetting returns before the rewrite: none has happened yet...
    assert_eq!(eng.store().compactions(), 0);
    assert!(eng.with_view(|v| v.people().is_empty()));
    // ...and one rewrite then removes all five names.
    wait_compacted(&eng, 1);
    assert_eq!(
        eng.store().compactions(),
        1,
        "the forgets were not coalesced"
    );
    if let Some(f) = files_contain(dir.path(), b"Quillon N") {
        panic!("a forgotten name is still in {}", f.display());
    }
}

#[test]
fn a_failed_compaction_keeps_the_store_serving_and_finishes_at_the_next_start() {
    for at in [FailAt::Copy, FailAt::Pointer] {
        let dir = tempfile::tempdir().unwrap();
        let eng = engine(dir.path(), 1);
        let reg = eng.post(person("Wilhelmina Failsafe")).unwrap();
        *eng.store().fail_next.lock().unwrap() = Some(at);
        forget(&eng, reg.id());
        // The background compaction fails; it retries only after 30 s.
        let deadline = Instant::now() + Duration::from_secs(20);
        while eng.store().fail_next.lock().unwrap().is_some() {
            assert!(
                Instant::now() < deadline,
                "{at:?}: the compaction never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Wait for the failed attempt to let go of the store.
        let _one = eng.store().compacting.lock().unwrap();
        drop(_one);
        assert_eq!(eng.store().compactions(), 0);
        assert!(eng.store().compaction_pending().unwrap(), "{at:?}");
        // The old database still serves reads and writes.
        let n = eng.post(need()).unwrap();
        assert!(eng.store().get(&n.id()).unwrap().is_some(), "{at:?}");
        assert!(eng.with_view(|v| v.people().is_empty()));
        assert!(
            files_contain(dir.path(), b"Wilhelmina F").is_some(),
            "{at:?}: the test must see the name before the retry"
        );
        let held = eng.len();
        drop(eng);
        // The next start finishes the compaction before anything else.
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.compaction_pending().unwrap(), "{at:?}");
        assert_eq!(store.len(), held, "{at:?}");
        assert!(store.get(&n.id()).unwrap().is_some(), "{at:?}");
        if let Some(f) = files_contain(dir.path(), b"Wilhelmina F") {
            panic!("{at:?}: the forgotten name is still in {}", f.display());
        }
    }
}

#[test]
fn events_stored_while_the_view_is_rebuilt_stay_on_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let eng = Arc::new(engine(dir.path(), 1));
    let base = wall_now() - 60_000;
    let older: Vec<Vec<u8>> = (0..3_000)
        .map(|i| {
            Event::create(
                &Identity::from_seed([3; 32]),
                Timestamp::from_millis(base + i),
                &need(),
            )
            .into_bytes()
        })
        .collect();
    assert_eq!(eng.ingest_batch(&older, Origin::Sync).unwrap().new, 3_000);
    let reg = eng.post(person("Rebuild Person")).unwrap();
    // A writer stores needs all through the background rebuild.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (eng, stop) = (eng.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                eng.post(need()).unwrap();
                n += 1;
            }
            n
        })
    };
    forget(&eng, reg.id());
    wait_compacted(&eng, 1);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(
        eng.with_view(|v| v.post_ids().count()),
        3_000 + written,
        "a need stored during the background rebuild is missing from the board"
    );
    assert!(eng.with_view(|v| v.people().is_empty()));
}

#[test]
fn writes_made_during_a_compaction_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let eng = Arc::new(engine(dir.path(), 1));
    for _ in 0..500 {
        eng.post(need()).unwrap();
    }
    let writer = {
        let eng = eng.clone();
        std::thread::spawn(move || {
            (0..300)
                .map(|_| eng.post(need()).unwrap().id())
                .collect::<Vec<_>>()
        })
    };
    let mut rounds = 0;
    while !writer.is_finished() || rounds == 0 {
        eng.store().compact().unwrap();
        rounds += 1;
    }
    let written = writer.join().unwrap();
    assert!(rounds > 1, "the writes did not overlap a compaction");
    let n = eng.len();
    drop(eng);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.len(), n);
    assert_eq!(store.sync_items().unwrap().len(), n);
    for id in written {
        assert!(
            store.get(&id).unwrap().is_some(),
            "a write made during a compaction was lost"
        );
    }
}

#[test]
fn an_author_s_day_past_the_quota_is_neither_kept_nor_signed_and_erasures_still_are() {
    use aidmesh_protocol::body::Redaction;
    use aidmesh_protocol::quota::DAILY_EVENTS_PER_AUTHOR;
    let flooder = Identity::from_seed([9; 32]);
    // The start of today (UTC) by our clock, so the whole flood is one day's.
    let day_start = wall_now() / 86_400_000 * 86_400_000;
    // `n` needs by `who`, a millisecond apart from the start of today.
    let day_of = |who: &Identity, n: u64| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let body = Body::Need(Post::new(
                    format!("post {i}"),
                    Category::Water,
                    Urgency::Low,
                ));
                Event::try_create(who, Timestamp::from_millis(day_start + i), &body)
                    .unwrap()
                    .bytes()
                    .to_vec()
            })
            .collect()
    };
    let flood = day_of(&flooder, u64::from(DAILY_EVENTS_PER_AUTHOR) + 5);
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    let r = eng.ingest_batch(&flood, Origin::Sync).unwrap();
    assert_eq!(r.new, DAILY_EVENTS_PER_AUTHOR as usize, "{r:?}");
    assert_eq!(eng.len(), DAILY_EVENTS_PER_AUTHOR as usize);
    assert!(eng.over_daily_quota(&flood[DAILY_EVENTS_PER_AUTHOR as usize]));
    // The same author's events of another day, and another author's, are kept.
    let yesterday = Event::try_create(
        &flooder,
        Timestamp::from_millis(day_start - 1),
        &Body::Need(Post::new("yesterday", Category::Water, Urgency::Low)),
    )
    .unwrap();
    assert!(!eng.over_daily_quota(yesterday.bytes()));
    assert!(matches!(
        eng.ingest(yesterday.bytes(), Origin::Gossip).unwrap(),
        Ingested::New(_)
    ));
    // Counted again at a restart.
    drop(eng);
    let eng = engine(dir.path(), 1);
    let late = &flood[DAILY_EVENTS_PER_AUTHOR as usize + 1];
    assert!(matches!(
        eng.ingest(late, Origin::Gossip).unwrap(),
        Ingested::OverQuota(_)
    ));
    assert!(!eng.knows(&Event::decode(late).unwrap().id()).unwrap());
    // A hub past its own quota refuses to sign, except an erasure.
    let me = Identity::from_seed([1; 32]);
    let mine = day_of(&me, u64::from(DAILY_EVENTS_PER_AUTHOR));
    assert_eq!(
        eng.ingest_batch(&mine, Origin::Sync).unwrap().new,
        DAILY_EVENTS_PER_AUTHOR as usize
    );
    let refused = eng.post(Body::Need(Post::new(
        "one more",
        Category::Water,
        Urgency::Low,
    )));
    assert!(
        matches!(refused, Err(IngestError::OverQuota { .. })),
        "{refused:?}"
    );
    let first = Event::decode(&mine[0]).unwrap().id();
    eng.post(Body::Redaction(Redaction {
        target: first,
        reason: String::new(),
    }))
    .expect("an erasure past the quota");
    assert!(!eng.store().contains(&first).unwrap(), "erased");
}

#[test]
fn unknown_kind_events_are_bounded_per_author_whatever_the_arrival_order() {
    use aidmesh_protocol::quota::MAX_UNKNOWN_PER_AUTHOR;
    let member = Identity::from_seed([9; 32]);
    let now = Timestamp::from_millis(wall_now());
    let blobs: Vec<Event> = (0..MAX_UNKNOWN_PER_AUTHOR as u64 + 8)
        .map(|i| {
            Event::create_raw(
                &member,
                1,
                Timestamp(now.0 - 1_000_000 + i * 1_000),
                999,
                &vec![i as u8; 8_000],
            )
        })
        .collect();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (engine(da.path(), 1), engine(db.path(), 2));
    for e in &blobs {
        a.ingest(e.bytes(), Origin::Gossip).unwrap();
    }
    for e in blobs.iter().rev() {
        b.ingest(e.bytes(), Origin::Sync).unwrap();
    }
    assert_eq!(a.len(), MAX_UNKNOWN_PER_AUTHOR, "the quota did not hold");
    assert_eq!(b.len(), MAX_UNKNOWN_PER_AUTHOR, "the quota did not hold");
    assert_eq!(
        a.digest().unwrap(),
        b.digest().unwrap(),
        "the nodes kept different events"
    );
    // The earliest are kept; a later one offered again stays out, also after a
    // restart (the index is rebuilt from the store).
    let last = blobs.last().unwrap();
    assert_eq!(
        a.ingest(last.bytes(), Origin::Sync).unwrap(),
        Ingested::Erased(last.id())
    );
    assert!(a.store().get(&blobs[0].id()).unwrap().is_some());
    drop(a);
    let a = engine(da.path(), 1);
    let another = Event::create_raw(&member, 1, Timestamp(now.0), 999, b"more");
    assert_eq!(
        a.ingest(another.bytes(), Origin::Gossip).unwrap(),
        Ingested::Erased(another.id())
    );
    assert_eq!(a.len(), MAX_UNKNOWN_PER_AUTHOR);
    // Another author has a quota of their own.
    let other = Event::create_raw(&Identity::from_seed([8; 32]), 1, now, 999, b"x");
    assert_eq!(
        a.ingest(other.bytes(), Origin::Gossip).unwrap(),
        Ingested::New(other.id())
    );
}

fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    crate::store::tests::files(dir)
        .into_iter()
        .find(|f| std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

#[test]
fn a_batch_validated_in_parallel_files_exactly_what_one_by_one_ingest_does() {
    // After the build floor, so no arrival time (local to each node) is noted.
    let base = wall_now() - 2_000;
    let people: Vec<Identity> = (10..14).map(|i| Identity::from_seed([i; 32])).collect();
    let at = |i: u64| Timestamp::from_millis(base + i);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    for i in 0..300u64 {
        batch.push(Event::create(&people[i as usize % 4], at(i), &need()).into_bytes());
    }
    // A person, a check-in on them and the redaction of the person, all in the
    // batch; the check-in again after the redaction.
    let reg = Event::create(&people[0], at(400), &person("Batch Person"));
    let check = Event::create(
        &people[1],
        at(401),
        &Body::CheckIn(CheckIn {
            person: reg.id(),
            outcome: Outcome::Safe,
            note: String::new(),
            by: String::new(),
        }),
    );
    let redact = Event::create(
        &people[0],
        at(402),
        &Body::Redaction(Redaction {
            target: reg.id(),
            reason: String::new(),
        }),
    );
    batch.splice(
        100..100,
        [reg.bytes(), check.bytes(), redact.bytes(), check.bytes()].map(<[u8]>::to_vec),
    );
    // A duplicate within the batch, a bad signature, garbage, one from the future.
    batch.push(batch[5].clone());
    let mut forged = batch[7].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    batch.push(forged);
    batch.push(b"not an event".to_vec());
    batch.push(Event::create(&people[2], at(DAY * 40 + 600_000), &need()).into_bytes());

    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (par, seq) = (engine(da.path(), 1), engine(db.path(), 1));
    let r = par.ingest_batch(&batch, Origin::Sync).unwrap();
    let mut expect = BatchResult::default();
    for bytes in &batch {
        match seq.ingest(bytes, Origin::Sync) {
            Ok(Ingested::New(_)) => expect.new += 1,
            Ok(_) => expect.known += 1,
            Err(IngestError::Invalid(ValidationError::FromTheFuture { .. })) => {
                expect.deferred.push(Event::decode(bytes).unwrap().id())
            }
            Err(IngestError::Invalid(e)) => expect.rejected.push(e.to_string()),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(r, expect);
    assert_eq!(
        (r.new, r.known, r.rejected.len(), r.deferred.len()),
        (303, 2, 2, 1)
    );
    assert_eq!(par.digest().unwrap(), seq.digest().unwrap());
    assert_eq!(par.store().sync_items().unwrap().len(), par.len());
    let now = par.now_ms();
    assert_eq!(
        par.with_view(|v| (v.items(now), v.people())),
        seq.with_view(|v| (v.items(now), v.people()))
    );
    assert!(par.store().get(&reg.id()).unwrap().is_none(), "not erased");
    assert!(
        par.store().get(&check.id()).unwrap().is_none(),
        "not erased"
    );
}

#[test]
fn a_needs_help_check_in_posts_a_need_with_the_street_not_the_door() {
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 3);
    let person = eng
        .post(Body::Person(PersonRegistered {
            name: "Ada Lovelace".into(),
            place: Place {
                label: "14 River Rd, 3rd floor".into(),
                coords: None,
            },
            risks: vec![],
            check_every_secs: 3600,
            consent: Consent::Own,
            phone: String::new(),
            note: String::new(),
        }))
        .unwrap();
    let (check, need) = eng
        .check_in(CheckIn {
            person: person.id(),
            outcome: Outcome::NeedsHelp("oxygen".into()),
            note: String::new(),
            by: String::new(),
        })
        .unwrap();
    let need = need.expect("a linked need");
    let Ok(Some(Body::Need(post))) = need.body() else {
        panic!("not a need");
    };
    assert_eq!(post.place.label, "River Rd");
    assert_eq!(post.related, Some(check.id()));
    assert!(!post.title.contains("Ada"), "{}", post.title);
    assert!(!post.title.contains("oxygen"), "{}", post.title);
    assert_eq!(post.category, Category::Medical);
    // Other outcomes post nothing.
    let (_, none) = eng
        .check_in(CheckIn {
            person: person.id(),
            outcome: Outcome::Safe,
            note: String::new(),
            by: String::new(),
        })
        .unwrap();
    assert!(none.is_none());
}

/// The lists keep their sorted heads and fold again only the items each change
/// reached (issue 28): what [`HeadChanges`] names, folded by `refold_heads`, is
/// always a full fold, through new posts, status changes, an alert, a redaction
/// (which erases) and changes left to pile up between folds.
#[test]
fn heads_folded_again_where_changes_reached_are_a_full_fold() {
    use aidmesh_protocol::body::{Alert, Severity, StatusChange};
    use aidmesh_protocol::Status;
    let dir = tempfile::tempdir().unwrap();
    let eng = engine(dir.path(), 1);
    let order = |u: Urgency, t: Timestamp, id: EventId| std::cmp::Reverse((u, t, id));
    let sorted = |v: &View| {
        let mut h = v.heads(0);
        h.sort_by_key(|h| order(h.urgency, h.created, h.id));
        h
    };
    let (mut generation, mut heads) = eng.with_view_changes(|v, (_, g), _| (g, sorted(v)));
    let mut posts: Vec<EventId> = Vec::new();
    let mut full_folds = 0;
    for i in 0..60usize {
        let urgency = Urgency::ALL[i % Urgency::ALL.len()];
        let body = match i % 6 {
            0 | 1 => Body::Need(Post::new("water", Category::Water, urgency)),
            2 => Body::Offer(Post::new("boat", Category::Transport, urgency)),
            3 | 4 if !posts.is_empty() => Body::Status(StatusChange {
                target: posts[i % posts.len()],
                status: [Status::Claimed, Status::Fulfilled, Status::Reopened][i % 3],
                note: String::new(),
            }),
            5 if i == 29 => Body::Redaction(Redaction {
                target: posts[1],
                reason: String::new(),
            }),
            _ => Body::Alert(Alert {
                severity: Severity::Severe,
                headline: format!("alert {i}"),
                text: String::new(),
                area: String::new(),
                expires_ms: None,
            }),
        };
        let e = eng.post(body.clone()).unwrap();
        if matches!(body, Body::Need(_) | Body::Offer(_)) {
            posts.push(e.id());
        }
        // Folded after every third change only, so changes pile up in between.
        if i % 3 != 2 {
            continue;
        }
        let (g, full) = eng.with_view_changes(|v, (_, g), changes| {
            match changes.since(generation) {
                Some(touched) => v.refold_heads(&mut heads, &touched, 0, order),
                None => {
                    full_folds += 1;
                    heads = sorted(v);
                }
            }
            (g, sorted(v))
        });
        assert_eq!(heads, full, "after change {i}");
        generation = g;
    }
    // Only the redaction (and the erasure it made) asked for a full fold.
    assert_eq!(full_folds, 1);
}
