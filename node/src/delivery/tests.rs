//! Delivery's tests: summaries out and in, what they prove, the roster.

use super::*;
use aidmesh_protocol::{Body, Category, Identity, Post, Urgency};

const PSK: [u8; 32] = [5; 32];
const NOW: u64 = 1_795_000_000_000;

fn event(who: &Identity, n: u32, at_ms: u64) -> Event {
    Event::create(
        who,
        Timestamp::from_millis(at_ms),
        &Body::Need(Post::new(
            format!("need {n}"),
            Category::Water,
            Urgency::Normal,
        )),
    )
}

struct Node {
    id: Identity,
    d: Delivery,
}

fn node(seed: u8) -> Node {
    let id = Identity::from_seed([seed; 32]);
    let d = Delivery::new(id.author(), &PSK);
    Node { id, d }
}

fn summary(n: &Node, now: u64) -> Vec<u8> {
    // Force one out whatever the rate limit.
    n.d.lock().last_sent_ms = None;
    n.d.summary_due(&n.id, now, now).unwrap()
}

#[test]
fn a_hub_is_known_to_hold_what_its_summary_proves_and_nothing_else() {
    let (a, c) = (node(1), node(3));
    let x = event(&a.id, 1, NOW - 5_000);
    a.d.observe(&x, NOW);
    // C lacks x: nothing is claimed.
    assert_eq!(
        a.d.receive(&summary(&c, NOW), None, NOW, NOW),
        Received::Newer
    );
    assert!(a.d.known(x.timestamp(), &x.id()).is_empty());
    // C gets x: its next summary proves it (listed, and the bucket matches).
    c.d.observe(&x, NOW + 100);
    assert_eq!(
        a.d.receive(&summary(&c, NOW + 200), None, NOW + 300, NOW + 300),
        Received::Newer
    );
    let k = a.d.known(x.timestamp(), &x.id());
    assert_eq!(
        k,
        vec![KnownAt {
            node: c.id.author(),
            at_ms: NOW + 200
        }]
    );
    // A replay of the older summary changes nothing.
    let old = {
        c.d.lock().last_sent_ms = None;
        c.d.summary_due(&c.id, NOW + 150, NOW + 150).unwrap()
    };
    assert_eq!(
        a.d.receive(&old, None, NOW + 400, NOW + 400),
        Received::Stale
    );
    // A new event y in the same minute: C is not claimed for y, still for x.
    let y = event(&a.id, 2, NOW - 4_000);
    a.d.observe(&y, NOW + 500);
    assert!(a.d.known(y.timestamp(), &y.id()).is_empty());
    assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1, "x stays proven");
}

#[test]
fn an_event_not_yet_observed_here_is_proven_by_no_range() {
    let (a, c) = (node(1), node(3));
    let x = event(&a.id, 1, NOW - 5_000);
    a.d.observe(&x, NOW);
    c.d.observe(&x, NOW);
    a.d.receive(&summary(&c, NOW + 100), None, NOW + 100, NOW + 100);
    assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1);
    // y is stored by the engine, and a page asks for its count before the
    // broadcast reached `observe`: C's matched range covers y's time, but C was
    // never shown to hold y.
    let y = event(&a.id, 2, NOW - 4_000);
    assert!(
        a.d.known(y.timestamp(), &y.id()).is_empty(),
        "C's bucket matched before y existed here"
    );
    a.d.observe(&y, NOW + 200);
    assert!(a.d.known(y.timestamp(), &y.id()).is_empty());
    assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1, "x stays proven");
}

/// A node whose delivery reads `store`'s index, as a real node's reads the store's
/// (the engine stores an event before its broadcast reaches `observe`).
fn node_reading(seed: u8, store: &Arc<Mutex<SyncIndex>>) -> Node {
    let id = Identity::from_seed([seed; 32]);
    let d = Delivery::reading(id.author(), &PSK, store.clone(), false);
    Node { id, d }
}

#[test]
fn read_from_the_store_an_event_stored_after_a_match_is_not_proven_by_it() {
    let store = Arc::new(Mutex::new(SyncIndex::default()));
    let (a, c) = (node_reading(1, &store), node(3));
    let put = |e: &Event| store.lock().unwrap().insert((e.timestamp(), e.id()));
    // x, old news at both: C's summary proves it by its bucket only.
    let x = event(&a.id, 1, NOW - 50_000);
    put(&x);
    a.d.observe(&x, NOW);
    c.d.observe(&x, NOW);
    let later = NOW + LIST_MS + 1;
    a.d.receive(&summary(&c, later), None, later, later);
    assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1, "by its bucket");
    // y is in the store, in x's bucket, and not yet told to `observe`: the bucket
    // no longer holds what it held when it matched, so it proves nothing of y.
    let y = event(&a.id, 2, NOW - 49_000);
    put(&y);
    assert!(
        a.d.known(y.timestamp(), &y.id()).is_empty(),
        "C's bucket matched before y was stored here"
    );
    // Told: the range is dropped, and what it proved (x alone) is remembered.
    a.d.observe(&y, later + 10);
    assert!(a.d.known(y.timestamp(), &y.id()).is_empty());
    assert_eq!(a.d.known(x.timestamp(), &x.id()).len(), 1, "x stays proven");
    // And the summary A makes counts what the store holds, y included.
    let s = Summary::open(&summary(&a, later + 20), &community_tag(&PSK)).unwrap();
    assert_eq!(s.count, 2);
}

#[test]
fn forged_and_foreign_summaries_are_refused() {
    let (a, c) = (node(1), node(3));
    let forger = Identity::from_seed([9; 32]);
    // Signed by another key in C's name.
    let s = Summary::make(community_tag(&PSK), c.id.author(), NOW, &[], []);
    assert_eq!(
        a.d.receive(&s.sign(&forger), None, NOW, NOW),
        Received::Refused(SummaryError::BadSignature)
    );
    // Made with another community key.
    let other = Delivery::new(c.id.author(), &[6; 32]);
    let foreign = other.summary_due(&c.id, NOW, NOW).unwrap();
    assert_eq!(
        a.d.receive(&foreign, None, NOW, NOW),
        Received::Refused(SummaryError::OtherCommunity)
    );
    assert_eq!(
        a.d.roster(&[], NOW).len(),
        1,
        "nothing refused enters the roster"
    );
}

#[test]
fn the_roster_lists_every_node_heard_of_and_how() {
    let (a, b, c) = (node(1), node(2), node(3));
    let x = event(&b.id, 1, NOW - 1_000);
    a.d.observe(&x, NOW);
    a.d.set_connected(peer_of(&b.id.author()).unwrap(), true);
    a.d.receive(&summary(&c, NOW), peer_of(&b.id.author()), NOW, NOW);
    let r = a.d.roster(&[], NOW);
    assert_eq!(r.len(), 3);
    assert!(r[0].me);
    let bb = r.iter().find(|e| e.node == b.id.author()).unwrap();
    assert!(bb.reachable && bb.via.is_none());
    let cc = r.iter().find(|e| e.node == c.id.author()).unwrap();
    assert_eq!(
        (cc.via, cc.reachable, cc.behind),
        (Some(Via::Relayed), false, Some(1))
    );
    assert!(!silent(cc, NOW + SILENT_AFTER_MS));
    assert!(silent(cc, NOW + SILENT_AFTER_MS + 1));
}

#[test]
fn authors_of_events_alone_are_not_hubs_and_the_roster_is_bounded() {
    let a = node(1);
    // 2,000 events under throwaway keys (issue 24): no hub among them.
    let mut authors = HashMap::new();
    for n in 0..2_000u32 {
        let mut seed = [9u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        let junk = Identity::from_seed(seed);
        let e = event(&junk, n, NOW - 1_000);
        a.d.observe(&e, NOW);
        authors.insert(junk.author(), NOW);
    }
    a.d.add_authors(&authors, NOW);
    assert_eq!(a.d.roster(&[], NOW).len(), 1);
    // Hubs that announced themselves are listed, at most ROSTER_MAX in all.
    let announced: Vec<AuthorId> = authors.keys().copied().collect();
    let r = a.d.roster(&announced, NOW);
    assert_eq!(r.len(), ROSTER_MAX);
    assert!(r[0].me);
    // Beyond the bound, a connected hub is kept.
    let b = node(2);
    a.d.set_connected(peer_of(&b.id.author()).unwrap(), true);
    let r = a.d.roster(&announced, NOW);
    assert_eq!(r.len(), ROSTER_MAX);
    assert!(r.iter().any(|e| e.node == b.id.author() && e.reachable));
    assert_eq!(
        author_of(&peer_of(&b.id.author()).unwrap()),
        Some(b.id.author())
    );
}

#[test]
fn the_cached_summary_is_the_protocol_s_summary() {
    let a = node(1);
    let mut all = Vec::new();
    for n in 0..300u32 {
        let e = event(&a.id, n, NOW - u64::from(n) * 977_000);
        all.push((e.timestamp(), e.id()));
        a.d.observe(&e, NOW);
        if n % 50 == 0 {
            // Fill the cache, then keep changing the set under it.
            let _ = summary(&a, NOW);
        }
    }
    all.sort();
    a.d.lock().want_full = true;
    let got = Summary::open(&summary(&a, NOW), &community_tag(&PSK)).unwrap();
    assert!(!got.is_delta());
    let want = Summary::make(community_tag(&PSK), a.id.author(), NOW, &all, []);
    assert_eq!(got.buckets, want.buckets);
    assert_eq!(got.count, 300);
}

#[test]
fn a_summary_lists_each_arrival_once_and_a_listing_seen_early_proves_it_later() {
    let (a, c) = (node(1), node(3));
    let x = event(&c.id, 1, NOW - 5_000);
    let y = event(&c.id, 2, NOW - 4_000);
    c.d.observe(&x, NOW);
    let first = Summary::open(&summary(&c, NOW), &community_tag(&PSK)).unwrap();
    assert_eq!(first.recent, vec![prefix(&x.id())]);
    c.d.observe(&y, NOW + 10);
    let second = summary(&c, NOW + 20);
    assert_eq!(
        Summary::open(&second, &community_tag(&PSK)).unwrap().recent,
        vec![prefix(&y.id())],
        "x was listed in the summary before"
    );
    // A gets C's second summary before y reaches it (C got it first), and holds
    // other events in y's minute, so no bucket can prove y.
    let z = event(&a.id, 3, NOW - 3_000);
    a.d.observe(&z, NOW + 30);
    a.d.receive(&second, None, NOW + 40, NOW + 40);
    // C's next summary lists nothing new: y's listing is behind us.
    a.d.receive(&summary(&c, NOW + 45), None, NOW + 45, NOW + 45);
    a.d.observe(&y, NOW + 50);
    assert_eq!(
        a.d.known(y.timestamp(), &y.id()),
        vec![KnownAt {
            node: c.id.author(),
            at_ms: NOW + 20
        }]
    );
    assert!(
        a.d.known(z.timestamp(), &z.id()).is_empty(),
        "C never had z"
    );
}

#[test]
fn an_arrival_older_than_the_listing_window_is_proven_by_its_bucket() {
    let (a, c) = (node(1), node(3));
    let w = event(&a.id, 1, NOW - 50_000);
    a.d.observe(&w, NOW);
    c.d.observe(&w, NOW);
    let s = summary(&c, NOW + LIST_MS + 1);
    assert!(
        Summary::open(&s, &community_tag(&PSK))
            .unwrap()
            .recent
            .is_empty(),
        "w arrived {LIST_MS} ms before the summary"
    );
    a.d.receive(&s, None, NOW + LIST_MS + 2, NOW + LIST_MS + 1);
    assert_eq!(a.d.known(w.timestamp(), &w.id()).len(), 1, "by its bucket");
}

#[test]
fn the_summary_gap_and_keepalive_grow_with_the_hubs_heard_of() {
    let a = node(1);
    assert_eq!(a.d.lock().gap_ms(), MIN_GAP_MS);
    for seed in 2..40u8 {
        let h = node(seed);
        a.d.receive(&summary(&h, NOW), None, NOW, NOW);
        let n = u64::from(seed);
        assert_eq!(
            a.d.lock().gap_ms(),
            (n * GAP_PER_HUB_MS).clamp(MIN_GAP_MS, MAX_GAP_MS),
            "{n} hubs"
        );
    }
    assert_eq!(a.d.lock().gap_ms(), MAX_GAP_MS);
    assert_eq!(a.d.lock().keepalive_ms(), 39 * KEEPALIVE_PER_HUB_MS);
    const { assert!(MAX_GAP_MS < UNREACHED_AFTER_MS) };
    const { assert!(3 * MAX_KEEPALIVE_MS <= SILENT_AFTER_MS) };
}

/// C's history: 30 events over the last 30 days, held by A as well (read from
/// the store at start: no summary lists them as recent arrivals).
fn shared_history(a: &Node, c: &Node) -> Vec<Event> {
    let h: Vec<Event> = (0..30u32)
        .map(|n| {
            event(
                &c.id,
                100 + n,
                NOW - 3 * 3_600_000 - u64::from(n) * 86_400_000,
            )
        })
        .collect();
    let items: Vec<_> = h.iter().map(|e| (e.timestamp(), e.id())).collect();
    a.d.hold(items.clone());
    c.d.hold(items);
    h
}

fn open(bytes: &[u8]) -> Summary {
    Summary::open(bytes, &community_tag(&PSK)).unwrap()
}

#[test]
fn a_delta_is_read_through_the_hub_s_last_full_summary() {
    let (a, c) = (node(1), node(3));
    let h = shared_history(&a, &c);
    let first = summary(&c, NOW);
    assert!(!open(&first).is_delta(), "the first summary is full");
    a.d.receive(&first, None, NOW, NOW);
    // A new event at both: C's next summary lists only its minute.
    let x = event(&c.id, 1, NOW + 5_000);
    a.d.observe(&x, NOW + 6_000);
    c.d.observe(&x, NOW + 6_000);
    let second = summary(&c, NOW + 10_000);
    let d = open(&second);
    assert_eq!((d.is_delta(), d.base_ms, d.buckets.len()), (true, NOW, 1));
    assert!(
        3 * second.len() <= first.len(),
        "{} vs {} bytes",
        second.len(),
        first.len()
    );
    assert_eq!(
        a.d.receive(&second, None, NOW + 10_000, NOW + 10_000),
        Received::Newer
    );
    // The old events are proven by the base's buckets, as of the delta.
    for e in h.iter().chain([&x]) {
        assert_eq!(
            a.d.known(e.timestamp(), &e.id()),
            vec![KnownAt {
                node: c.id.author(),
                at_ms: NOW + 10_000
            }]
        );
    }
    let r = a.d.roster(&[], NOW + 10_000);
    assert_eq!(r[1].behind, Some(0));
    // A delta against the base A holds that does not add up is refused.
    let mut bad = d.clone();
    bad.made_ms += 1;
    bad.count += 1;
    assert!(matches!(
        a.d.receive(&bad.sign(&c.id), None, NOW + 11_000, NOW + 11_000),
        Received::Refused(SummaryError::Inconsistent(_))
    ));
}

#[test]
fn a_delta_whose_base_was_missed_proves_nothing_by_range_but_its_recent_ids_count() {
    let (a, c) = (node(1), node(3));
    let h = shared_history(&a, &c);
    a.d.receive(&summary(&c, NOW), None, NOW, NOW);
    assert_eq!(a.d.known(h[0].timestamp(), &h[0].id()).len(), 1);
    // C sends a full summary A misses (C met a new peer), then a delta on it.
    c.d.set_connected(peer_of(&node(7).id.author()).unwrap(), true);
    let missed = summary(&c, NOW + 10_000);
    assert!(!open(&missed).is_delta());
    let x = event(&c.id, 1, NOW + 15_000);
    a.d.observe(&x, NOW + 16_000);
    c.d.observe(&x, NOW + 16_000);
    let d = summary(&c, NOW + 20_000);
    assert_eq!(open(&d).base_ms, NOW + 10_000);
    let via = peer_of(&c.id.author());
    assert_eq!(
        a.d.receive(&d, via, NOW + 20_000, NOW + 20_000),
        Received::Newer
    );
    // No range is proven (not even the one the older full summary matched)...
    assert!(a.d.known(h[0].timestamp(), &h[0].id()).is_empty());
    // ...but the listed arrival is, and C counts as heard, directly.
    assert_eq!(
        a.d.known(x.timestamp(), &x.id()),
        vec![KnownAt {
            node: c.id.author(),
            at_ms: NOW + 20_000
        }]
    );
    let r = a.d.roster(&[], NOW + 20_000);
    assert_eq!(
        (r[1].last_heard_ms, r[1].via, r[1].behind),
        (Some(NOW + 20_000), Some(Via::Direct), None)
    );
    // C's next full summary proves the history again.
    c.d.set_connected(peer_of(&node(8).id.author()).unwrap(), true);
    a.d.receive(&summary(&c, NOW + 30_000), None, NOW + 30_000, NOW + 30_000);
    assert_eq!(a.d.known(h[0].timestamp(), &h[0].id()).len(), 1);
}

#[test]
fn a_full_summary_goes_out_to_a_new_peer_at_the_keepalive_and_when_a_delta_saves_little() {
    let c = node(3);
    let a = node(1);
    shared_history(&a, &c);
    let is_delta = |now: u64| open(&summary(&c, now)).is_delta();
    assert!(!is_delta(NOW), "first");
    c.d.observe(&event(&c.id, 1, NOW), NOW + 1);
    assert!(is_delta(NOW + MIN_GAP_MS));
    // A peer connects: the next summary is due after the gap, and full.
    c.d.set_connected(peer_of(&a.id.author()).unwrap(), true);
    assert_eq!(c.d.next_summary_ms(), NOW + 2 * MIN_GAP_MS);
    let next =
        c.d.summary_due(&c.id, NOW + 2 * MIN_GAP_MS, NOW + 2 * MIN_GAP_MS)
            .unwrap();
    assert!(!open(&next).is_delta(), "a new peer gets a full summary");
    c.d.observe(&event(&c.id, 2, NOW + 11_000), NOW + 11_000);
    assert!(is_delta(NOW + 15_000));
    // Changes keep coming: a keep-alive after the last full one, the next is full.
    c.d.observe(&event(&c.id, 3, NOW + 16_000), NOW + 16_000);
    assert!(!is_delta(NOW + 2 * MIN_GAP_MS + KEEPALIVE_MS));
    // An empty history: a delta would save nothing.
    let e = node(4);
    assert!(!open(&summary(&e, NOW)).is_delta());
    e.d.observe(&event(&e.id, 1, NOW), NOW);
    assert!(!open(&summary(&e, NOW + MIN_GAP_MS)).is_delta());
}

#[test]
fn after_the_clock_went_back_no_full_summary_takes_an_earlier_one_s_stamp() {
    let (a, c) = (node(1), node(3));
    let h = shared_history(&a, &c);
    // A holds C's full summary of NOW, then misses the ones after it.
    a.d.receive(&summary(&c, NOW), None, NOW, NOW);
    c.d.set_connected(peer_of(&node(7).id.author()).unwrap(), true);
    let _missed = summary(&c, NOW + 60_000);
    // C's clock goes back to NOW; an event arrives and a peer connects: C sends
    // a full summary, stamped past NOW.
    let x = event(&c.id, 1, NOW - 2_000);
    c.d.observe(&x, NOW + 61_000);
    c.d.set_connected(peer_of(&node(8).id.author()).unwrap(), true);
    let full = open(&summary(&c, NOW));
    assert!(!full.is_delta());
    assert_eq!(full.made_ms, NOW + 1);
    // Its next delta is against NOW + 1, which A does not hold: A proves nothing
    // by range rather than rebuild it on the full summary of NOW.
    let y = event(&c.id, 2, NOW - 1_000);
    c.d.observe(&y, NOW + 62_000);
    let d = summary(&c, NOW + 5_000);
    assert_eq!(open(&d).base_ms, NOW + 1);
    a.d.receive(&d, None, NOW + 62_000, NOW + 5_000);
    assert!(a.d.known(h[0].timestamp(), &h[0].id()).is_empty());
    assert_eq!(a.d.roster(&[], NOW + 62_000)[1].behind, None);
}

#[test]
fn summaries_are_rate_limited_with_a_keepalive() {
    let a = node(1);
    assert!(a.d.summary_due(&a.id, NOW, NOW).is_some());
    assert!(a.d.summary_due(&a.id, NOW + 10, NOW).is_none());
    a.d.observe(&event(&a.id, 1, NOW), NOW + 20);
    assert!(a.d.summary_due(&a.id, NOW + MIN_GAP_MS - 1, NOW).is_none());
    assert!(a.d.summary_due(&a.id, NOW + MIN_GAP_MS, NOW).is_some());
    assert_eq!(a.d.next_summary_ms(), NOW + MIN_GAP_MS + KEEPALIVE_MS);
    assert!(a
        .d
        .summary_due(&a.id, NOW + MIN_GAP_MS + KEEPALIVE_MS, NOW)
        .is_some());
}

#[test]
fn a_hub_not_heard_for_3_days_is_gone_and_a_retired_one_is_off_until_heard_again() {
    let day = 86_400_000;
    let now = NOW + 10 * day;
    // Every combination over a grid of times: the rule's invariants.
    let times = [
        None,
        Some(now - 4 * day),
        Some(now - 3 * day),
        Some(now - 1),
        Some(now),
    ];
    for heard in times {
        for retired in times {
            for reachable in [false, true] {
                let s = standing(heard, reachable, retired, now);
                // Connected now: always back, whatever came before.
                if reachable {
                    assert_eq!(s, Standing::Active);
                    continue;
                }
                match retired {
                    // Retired and not heard since: off the list.
                    Some(r) if heard.is_none_or(|h| h <= r) => assert_eq!(s, Standing::Retired),
                    // Not retired (or heard since): by the clock alone.
                    _ => {
                        let gone = heard.is_some_and(|h| now - h > GONE_AFTER_MS);
                        assert_eq!(s == Standing::Gone, gone, "{heard:?} {retired:?}");
                    }
                }
            }
        }
    }
    // Exactly 3 days is not yet gone; a hub never heard from has no date to count from.
    assert_eq!(
        standing(Some(now - 3 * day), false, None, now),
        Standing::Active
    );
    assert_eq!(standing(None, false, None, now), Standing::Active);

    // Retiring through the roster: by prefix, never this node nor a connected one.
    let a = node(1);
    let b = node(2);
    a.d.observe(&event(&b.id, 1, NOW - 4 * day), NOW);
    let announced = [b.id.author()];
    let roster = a.d.roster(&announced, NOW);
    assert!(roster[1].gone, "{roster:?}");
    assert_eq!(
        a.d.retire(&roster, &a.id.author().short(), NOW).err(),
        Some(RetireError::Me)
    );
    assert_eq!(
        a.d.retire(&roster, "ffffffffff", NOW).err(),
        Some(RetireError::Unknown)
    );
    let (hub, kept) = a.d.retire(&roster, &b.id.author().short(), NOW).unwrap();
    assert_eq!(hub.node, b.id.author());
    assert_eq!(a.d.roster(&announced, NOW).len(), 1);
    // Kept on disk as JSON, read back the same.
    assert_eq!(retired_from_json(Some(&retired_to_json(&kept))), kept);
    assert!(retired_from_json(Some(b"not json")).is_empty());
    // An event it made after the retirement brings it back.
    a.d.observe(&event(&b.id, 2, NOW + 1), NOW + 2);
    let roster = a.d.roster(&announced, NOW + 2);
    assert_eq!(roster.len(), 2);
    assert!(!roster[1].gone);
}
