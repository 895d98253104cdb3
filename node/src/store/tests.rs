//! The store's tests: writes, erasure, compaction and its crash points, migration.

use super::layout::{GEN_PREFIX, OLD_BY_TIME, OLD_EVENTS, POINTER};
use super::*;
use aidmesh_protocol::Identity;

fn ev(n: u64) -> Event {
    Event::create_raw(
        &Identity::from_seed([1; 32]),
        1,
        Timestamp(n),
        999,
        &n.to_le_bytes(),
    )
}

#[test]
fn insert_is_idempotent_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (ev(2), ev(1));
    {
        let s = Store::open(dir.path()).unwrap();
        assert!(s.insert(&a).unwrap());
        assert!(!s.insert(&a).unwrap());
        assert!(s.insert(&b).unwrap());
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.get(&a.id()).unwrap().unwrap(), a.bytes());
    assert!(s.contains_at(a.timestamp(), &a.id()).unwrap());
    assert!(!s.contains_at(a.timestamp(), &b.id()).unwrap());
    let items = s.sync_items().unwrap();
    assert_eq!(
        items,
        vec![(b.timestamp(), b.id()), (a.timestamp(), a.id())]
    );
}

/// The time index in memory (issue 14) answers exactly as the database: after
/// inserts (in and out of time order), duplicates, erasures, a compaction and a
/// reopen that reads it back from `ids`.
#[test]
fn the_time_index_in_memory_answers_as_the_database_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    // Out of time order, as a catch-up brings old events after new ones.
    let events: Vec<Event> = [9u64, 3, 7, 1, 5, 8, 2].into_iter().map(ev).collect();
    for e in &events {
        assert!(s.insert(e).unwrap());
        assert!(!s.insert(e).unwrap(), "a duplicate is refused");
    }
    s.erase(&events[1].id(), 999).unwrap();
    s.erase(&events[4].id(), 999).unwrap();
    // Never held: nothing to remove from the index.
    s.erase(&ev(42).id(), 999).unwrap();
    let kept: Vec<&Event> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 4)
        .map(|(_, e)| e)
        .collect();
    let mut want: Vec<(Timestamp, EventId)> =
        kept.iter().map(|e| (e.timestamp(), e.id())).collect();
    want.sort_unstable();
    let mut want_ids: Vec<EventId> = kept.iter().map(|e| e.id()).collect();
    want_ids.sort_unstable();
    let check = |s: &Store, when: &str| {
        assert_eq!(s.sync_items().unwrap(), want, "{when}: sync items");
        assert_eq!(s.ids().unwrap(), want_ids, "{when}: ids");
        assert_eq!(s.len(), want.len(), "{when}: count");
        for e in &events {
            let held = kept.iter().any(|k| k.id() == e.id());
            assert_eq!(
                s.contains_at(e.timestamp(), &e.id()).unwrap(),
                held,
                "{when}"
            );
            assert_eq!(s.contains(&e.id()).unwrap(), held, "{when}");
        }
        assert!(
            !s.contains_at(Timestamp(1), &events[0].id()).unwrap(),
            "{when}: wrong stamp"
        );
    };
    check(&s, "after writes");
    s.compact().unwrap();
    check(&s, "after a compaction");
    s.release_cache().unwrap();
    check(&s, "after a reopen of sled");
    s.flush().unwrap();
    drop(s);
    check(&Store::open(dir.path()).unwrap(), "read back at open");
}

#[test]
fn erase_removes_the_bytes_and_remembers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let a = ev(5);
    s.insert(&a).unwrap();
    s.erase(&a.id(), 4).unwrap();
    assert_eq!(s.len(), 0);
    assert!(s.get(&a.id()).unwrap().is_none());
    assert!(s.sync_items().unwrap().is_empty());
    assert_eq!(s.erased_kind(&a.id()).unwrap(), Some(4));
}

/// The filter of ids seen (`id_filter.rs`) lets questions about unknown ids skip
/// sled; it must never hide an id that is held or erased: not after a reopen (made
/// from the time index and `erased`), not for an erasure of an event never stored (a
/// redaction that came before its target). (A start from the start file makes the
/// filter from the file's time index the same way: `engine::start_tests`.)
#[test]
fn held_and_erased_ids_are_found_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (held, erased, never_stored, unknown) = (ev(1), ev(2), ev(3), ev(4));
    let check = |s: &Store, how: &str| {
        assert_eq!(
            s.get(&held.id()).unwrap().as_deref(),
            Some(held.bytes()),
            "{how}"
        );
        assert!(s.contains(&held.id()).unwrap(), "{how}");
        assert_eq!(s.erased_kind(&erased.id()).unwrap(), Some(4), "{how}");
        assert_eq!(s.erased_kind(&never_stored.id()).unwrap(), Some(7), "{how}");
        assert!(!s.contains(&erased.id()).unwrap(), "{how}");
        assert!(!s.contains(&unknown.id()).unwrap(), "{how}");
        assert_eq!(s.erased_kind(&unknown.id()).unwrap(), None, "{how}");
    };
    {
        let s = Store::open(dir.path()).unwrap();
        s.insert(&held).unwrap();
        s.insert(&erased).unwrap();
        s.erase(&erased.id(), 4).unwrap();
        s.erase(&never_stored.id(), 7).unwrap();
        check(&s, "as written");
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    check(&s, "reopened");
}

#[test]
fn an_arrival_survives_reopen_and_goes_with_an_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (ev(5), ev(6));
    {
        let s = Store::open(dir.path()).unwrap();
        for (e, at) in [(&a, 1_000), (&b, 2_000)] {
            s.insert(e).unwrap();
            s.set_arrival(&e.id(), at).unwrap();
        }
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.arrival(&a.id()).unwrap(), Some(1_000));
    // The streamed digest is the protocol's digest of the sorted ids.
    let ids = s.ids().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(s.digest().unwrap(), aidmesh_protocol::sync::digest(&ids));
    s.erase(&a.id(), 4).unwrap();
    assert_eq!(s.arrival(&a.id()).unwrap(), None);
    assert_eq!(s.arrivals().unwrap(), vec![(b.id(), 2_000)]);
}

#[test]
fn the_time_index_is_repaired_after_an_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, lost) = (ev(1), ev(2), ev(3));
    {
        let s = Store::open(dir.path()).unwrap();
        s.insert_new(&a).unwrap();
        s.insert_new(&b).unwrap();
        // A crash between the two writes of `insert_new`: the id entry of `lost`
        // was written, its event was not.
        let ts = lost.timestamp().0.to_be_bytes();
        s.with(|t| t.ids.insert(lost.id().0, &ts)).unwrap();
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.len(), 3, "the test must start with a stray key");
    assert_eq!(s.repair_time_index(2).unwrap(), 1);
    let both = vec![(a.timestamp(), a.id()), (b.timestamp(), b.id())];
    assert_eq!((s.len(), s.sync_items().unwrap()), (2, both.clone()));
    // Nothing to do the second time.
    assert_eq!(s.repair_time_index(2).unwrap(), 0);
    // Should the log ever keep a later write but lose an earlier one, the
    // missing id entry is put back.
    s.with(|t| t.ids.remove(b.id().0)).unwrap();
    let s = {
        s.flush().unwrap();
        drop(s);
        Store::open(dir.path()).unwrap()
    };
    assert_eq!(s.len(), 1);
    assert_eq!(s.repair_time_index(2).unwrap(), 0);
    assert_eq!((s.len(), s.sync_items().unwrap()), (2, both));
    // Found by id too: the filter of ids seen was made again with it.
    assert_eq!(s.get(&b.id()).unwrap().as_deref(), Some(b.bytes()));
}

fn secret(n: u64) -> Event {
    let mut body = b"Secret Zyxwvut ".to_vec();
    body.extend_from_slice(&n.to_le_bytes());
    Event::create_raw(&Identity::from_seed([2; 32]), 1, Timestamp(n), 999, &body)
}

/// Every file under `dir`, recursively (the engine's tests use it too).
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn holds(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    files(dir)
        .into_iter()
        .find(|f| std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

/// The names in the store's directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_compaction_cut_short_at_any_step_loses_nothing_acknowledged() {
    for from_gen in [0, 1] {
        for at in [
            FailAt::CrashAfterCopy,
            FailAt::CrashAfterPointerTmp,
            FailAt::CrashAfterPointer,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let gone = secret(7);
            let kept: Vec<Event> = (1..=50).map(ev).collect();
            {
                let s = Store::open(&path).unwrap();
                for e in &kept[..25] {
                    s.insert(e).unwrap();
                }
                if from_gen == 1 {
                    s.compact().unwrap();
                    assert_eq!(Layout(&path).current().unwrap(), Gen(1));
                }
                s.insert(&gone).unwrap();
                s.flush().unwrap();
                s.erase(&gone.id(), 4).unwrap();
                // Acknowledged (flushed) after the erasure, before the compaction.
                for e in &kept[25..] {
                    s.insert(e).unwrap();
                }
                s.flush().unwrap();
                *s.fail_next.lock().unwrap() = Some(at);
                let err = s.compact().expect_err("the test hook stops the compaction");
                assert!(err.to_string().contains(CRASH), "{at:?}: {err}");
                // The process dies here: nothing after this step runs.
            }
            let s = Store::open(&path).unwrap();
            let case = format!("from generation {from_gen}, {at:?}");
            assert!(!s.compaction_pending().unwrap(), "{case}");
            assert_eq!(s.len(), kept.len(), "{case}");
            for e in &kept {
                assert_eq!(
                    s.get(&e.id()).unwrap().as_deref(),
                    Some(e.bytes()),
                    "{case}"
                );
            }
            assert_eq!(s.erased_kind(&gone.id()).unwrap(), Some(4), "{case}");
            assert_eq!(s.sync_items().unwrap().len(), kept.len(), "{case}");
            drop(s);
            if let Some(f) = holds(&path, b"Secret Zyxwvut") {
                panic!("{case}: the erased event is still in {}", f.display());
            }
            // One generation left, named by the pointer.
            let gen = Layout(&path).current().unwrap();
            assert_eq!(
                entries(&path),
                vec![POINTER.to_string(), format!("{GEN_PREFIX}{}", gen.0)],
                "{case}"
            );
        }
    }
}

#[test]
fn a_failed_pointer_write_keeps_the_old_generation_in_service() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let s = Store::open(&path).unwrap();
    let gone = secret(3);
    s.insert(&ev(1)).unwrap();
    s.insert(&gone).unwrap();
    s.erase(&gone.id(), 4).unwrap();
    *s.fail_next.lock().unwrap() = Some(FailAt::Pointer);
    assert!(s.compact().is_err());
    assert!(s.compaction_pending().unwrap());
    assert_eq!(Layout(&path).current().unwrap(), Gen(0));
    assert!(!entries(&path).iter().any(|e| e.starts_with(GEN_PREFIX)));
    // Still serving, reads and writes.
    s.insert(&ev(2)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.len(), 2);
    s.compact().unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.len(), 2);
    assert!(holds(&path, b"Secret Zyxwvut").is_none());
}

#[test]
fn a_database_from_before_generations_opens_and_moves_to_one_on_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let events: Vec<Event> = (1..=20).map(ev).collect();
    {
        // A database as every node wrote it before generations: sled's files in
        // the directory itself, no pointer.
        let db = sled::Config::new().path(&path).open().unwrap();
        let (t, e) = (
            db.open_tree("by_time").unwrap(),
            db.open_tree("events").unwrap(),
        );
        for ev in &events {
            t.insert(time_key(ev.timestamp(), &ev.id()), &[][..])
                .unwrap();
            e.insert(ev.id().0, ev.bytes()).unwrap();
        }
        db.flush().unwrap();
    }
    assert!(path.join("conf").exists());
    let s = Store::open(&path).unwrap();
    assert_eq!(s.len(), 20);
    assert!(path.join("conf").exists(), "opening alone changes nothing");
    s.erase(&events[0].id(), 4).unwrap();
    s.compact().unwrap();
    assert_eq!(Layout(&path).current().unwrap(), Gen(1));
    assert_eq!(entries(&path), vec!["CURRENT", "gen-1"]);
    s.insert(&ev(99)).unwrap();
    s.flush().unwrap();
    s.compact().unwrap();
    assert_eq!(entries(&path), vec!["CURRENT", "gen-2"]);
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.len(), 20);
    assert!(s.get(&ev(99).id()).unwrap().is_some());
    assert!(s.get(&events[0].id()).unwrap().is_none());
}

/// Writes `events` as every node stored them before `log` and `ids`.
fn old_layout(path: &Path, events: &[Event]) {
    let db = sled::Config::new().path(path).open().unwrap();
    let (t, e) = (
        db.open_tree(OLD_BY_TIME).unwrap(),
        db.open_tree(OLD_EVENTS).unwrap(),
    );
    for ev in events {
        t.insert(time_key(ev.timestamp(), &ev.id()), &[][..])
            .unwrap();
        e.insert(ev.id().0, ev.bytes()).unwrap();
    }
    db.open_tree("erased")
        .unwrap()
        .insert([9u8; 32], &4u16.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn a_database_of_the_old_layout_is_migrated_at_open_and_answers_the_same() {
    for cut_short in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        // Stamps out of id order, so time order and id order differ.
        let events: Vec<Event> = (1..=300).map(|n| ev((n * 7919) % 1000 + 1)).collect();
        old_layout(&path, &events);
        if cut_short {
            // A migration a crash cut short: some events already in the new trees.
            let db = sled::Config::new().path(&path).open().unwrap();
            let (log, ids) = (db.open_tree("log").unwrap(), db.open_tree("ids").unwrap());
            for e in &events[..100] {
                ids.insert(e.id().0, &e.timestamp().0.to_be_bytes())
                    .unwrap();
                log.insert(time_key(e.timestamp(), &e.id()), e.bytes())
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let mut want: Vec<(Timestamp, EventId)> =
            events.iter().map(|e| (e.timestamp(), e.id())).collect();
        want.sort();
        let mut ids: Vec<EventId> = events.iter().map(Event::id).collect();
        ids.sort();
        for reopen in 0..2 {
            let s = Store::open(&path).unwrap();
            let case = format!("cut short {cut_short}, open {reopen}");
            assert_eq!(s.len(), 300, "{case}");
            assert_eq!(s.sync_items().unwrap(), want, "{case}");
            assert_eq!(s.ids().unwrap(), ids, "{case}");
            assert_eq!(
                s.digest().unwrap(),
                aidmesh_protocol::sync::digest(&ids),
                "{case}"
            );
            for e in &events {
                assert_eq!(
                    s.get(&e.id()).unwrap().as_deref(),
                    Some(e.bytes()),
                    "{case}"
                );
                assert!(s.contains_at(e.timestamp(), &e.id()).unwrap(), "{case}");
            }
            // In time order now.
            let stamps: Vec<Timestamp> = s
                .events()
                .map(|b| Event::decode(&b.unwrap()).unwrap().timestamp())
                .collect();
            assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{case}");
            assert_eq!(s.erased_kind(&EventId([9; 32])).unwrap(), Some(4), "{case}");
            let names = s.with(|t| Ok(t.db.tree_names())).unwrap();
            assert!(
                !names
                    .iter()
                    .any(|n| n.as_ref() == b"events" || n.as_ref() == b"by_time"),
                "{case}: the old trees are still there"
            );
        }
    }
}

#[test]
fn a_pointer_naming_no_generation_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::create_dir_all(&path).unwrap();
    for bad in ["gen-7\n", "nonsense"] {
        std::fs::write(path.join(POINTER), bad).unwrap();
        let err = Store::open(&path).err().expect("must not open");
        assert!(err.to_string().contains("CURRENT"), "{err}");
    }
}

#[test]
fn a_damaged_database_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        s.insert(&ev(1)).unwrap();
        s.flush().unwrap();
    }
    // Overwrite the config file sled checks at start.
    std::fs::write(
        dir.path().join("conf"),
        b"garbage that is not a sled config",
    )
    .unwrap();
    let err = Store::open(dir.path())
        .err()
        .expect("damaged database must not open");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}
