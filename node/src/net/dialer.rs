//! The dial list as plain data: which addresses we keep (re)dialling, their back-off,
//! which to drop when the list is full, which learned addresses to give up on, and the
//! peers kept out for breaking the sync protocol. No sockets and no clock reads: times are passed in, and [`Dialer::next_due`]
//! says when the network task must next wake for it (there is no fixed tick).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

use super::split_peer;

/// Most addresses kept for (re)dialling; beyond this a new one replaces the worst
/// (the one least likely to work: never reached, most failures, oldest).
pub const MAX_WANTED: usize = 64;

/// How long a peer that broke the sync protocol is kept out.
pub const BAN: Duration = Duration::from_secs(600);

/// After a connection to a peer closes, its addresses are redialled no sooner than
/// this (a peer that is restarting needs a moment).
pub const REDIAL_AFTER_CLOSE: Duration = Duration::from_secs(1);

/// A learned address (discovery, peer exchange, a user's `peers add`) is dropped after
/// this many failed dials in a row (about a minute of back-off); static peers never are.
pub const MAX_FAILURES: u32 = 5;

/// An address given up on is not taken back from discovery or peer exchange for this
/// long (a peer that comes back meanwhile is found when it dials us, or by its beacon
/// once this runs out).
pub const GIVE_UP_FOR: Duration = Duration::from_secs(300);

/// Most addresses remembered as given up on; beyond this the one given up longest ago
/// is forgotten.
pub const MAX_GIVEN_UP: usize = 256;

/// Back-off after `failures` failed dials in a row: 2 s, 4 s, … up to 60 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.min(6)).min(60))
}

/// Back-off state of one address we want to be connected to.
#[derive(Debug, Clone)]
struct Dial {
    failures: u32,
    next_at: Instant,
    /// A static peer (`--peer`, peers file): never evicted.
    pinned: bool,
    /// Given by a user (`aidmesh peers add`): never given up on (but may be evicted).
    kept: bool,
    /// Announced by a beacon: dropped at its first failed dial, and not remembered as
    /// given up on (the beacon task decides when to try it again).
    once: bool,
    /// A dial to it ever succeeded.
    reached: bool,
    /// The peer that answered the last successful dial, for an address without a
    /// `/p2p/` part (a `--peer /ip4/…/tcp/4610`): while that peer is connected, by
    /// whatever address (after a restart on a new port it may dial us), the address is
    /// not dialled (issue 29: a stale address redialled every minute while connected).
    peer: Option<PeerId>,
    /// When it was added (the oldest of equals goes first).
    added: Instant,
}

impl Dial {
    fn new(now: Instant, pinned: bool) -> Dial {
        Dial {
            failures: 0,
            next_at: now,
            pinned,
            kept: false,
            once: false,
            reached: false,
            peer: None,
            added: now,
        }
    }
}

/// What [`Dialer::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new address, dialled as soon as it is due (now).
    New,
    /// Already on the list: unchanged.
    Known,
    /// The list was full: this address was dropped to make room.
    Replaced(Multiaddr),
    /// The list is full of static peers: the address was not added.
    Full,
    /// Given up on after [`MAX_FAILURES`] failed dials, less than [`GIVE_UP_FOR`] ago.
    GivenUp,
}

/// The dial list and the bans.
#[derive(Debug, Default)]
pub struct Dialer {
    wanted: HashMap<Multiaddr, Dial>,
    bans: HashMap<PeerId, Instant>,
    /// Learned addresses dropped after too many failures, and when.
    given_up: HashMap<Multiaddr, Instant>,
}

impl Dialer {
    /// A list holding the static peers, due at once and never evicted.
    pub fn new(static_peers: &[Multiaddr], now: Instant) -> Dialer {
        Dialer {
            wanted: static_peers
                .iter()
                .map(|a| (a.clone(), Dial::new(now, true)))
                .collect(),
            bans: HashMap::new(),
            given_up: HashMap::new(),
        }
    }

    /// Adds an address found by discovery or given by a user (due at once); when the
    /// list is full it replaces the entry least likely to work, never a static peer.
    pub fn add(&mut self, addr: Multiaddr, now: Instant) -> Added {
        if self.wanted.contains_key(&addr) {
            return Added::Known;
        }
        if let Some(at) = self.given_up.get(&addr) {
            if now < *at + GIVE_UP_FOR {
                return Added::GivenUp;
            }
            self.given_up.remove(&addr);
        }
        let mut added = Added::New;
        if self.wanted.len() >= MAX_WANTED {
            let Some(worst) = self.eviction_candidate() else {
                return Added::Full;
            };
            self.wanted.remove(&worst);
            added = Added::Replaced(worst);
        }
        self.wanted.insert(addr, Dial::new(now, false));
        added
    }

    /// Adds an address a user gave: as [`Dialer::add`] (also when given up on before),
    /// but never given up on after failures.
    pub fn add_kept(&mut self, addr: Multiaddr, now: Instant) -> Added {
        self.given_up.remove(&addr);
        let added = self.add(addr.clone(), now);
        if let Some(d) = self.wanted.get_mut(&addr) {
            d.kept = true;
        }
        added
    }

    /// Adds an address a beacon announced: as [`Dialer::add`], but dropped at its first
    /// failed dial (a forged or stale announcement costs one dial, not a minute of
    /// them). An address already on the list keeps its standing.
    pub fn add_once(&mut self, addr: Multiaddr, now: Instant) -> Added {
        let added = self.add(addr.clone(), now);
        if added != Added::Known {
            if let Some(d) = self.wanted.get_mut(&addr) {
                d.once = true;
            }
        }
        added
    }

    /// Which address to drop to make room in a full dial list: never a static peer;
    /// first those never reached, then the most failures, then the oldest. Spoofed
    /// mDNS adverts and made-up addresses are never reached, so a real peer that
    /// connected is kept and a new address always finds room.
    fn eviction_candidate(&self) -> Option<Multiaddr> {
        self.wanted
            .iter()
            .filter(|(_, d)| !d.pinned)
            .min_by_key(|(_, d)| (d.reached, std::cmp::Reverse(d.failures), d.added))
            .map(|(a, _)| a.clone())
    }

    /// Addresses due for a dial at `now`, except those `skip` names (a dial in flight,
    /// a peer already connected).
    pub fn due(&self, now: Instant, skip: impl Fn(&Multiaddr) -> bool) -> Vec<Multiaddr> {
        self.wanted
            .iter()
            .filter(|(a, d)| d.next_at <= now && !skip(a))
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// When the task must next wake for the dial list: the earliest dial due (of those
    /// `skip` does not name) or ban to lift. `None`: nothing is pending.
    pub fn next_due(&self, skip: impl Fn(&Multiaddr) -> bool) -> Option<Instant> {
        let dial = self
            .wanted
            .iter()
            .filter(|(a, _)| !skip(a))
            .map(|(_, d)| d.next_at);
        dial.chain(self.bans.values().copied()).min()
    }

    /// A dial to `addr` connected: its back-off starts over, and it is kept before
    /// addresses never reached.
    /// `peer` is who answered.
    pub fn reached(&mut self, addr: &Multiaddr, peer: PeerId) {
        if let Some(d) = self.wanted.get_mut(addr) {
            d.failures = 0;
            d.reached = true;
            d.peer = Some(peer);
        }
    }

    /// The peer an address names (`/p2p/…`), else the one that answered its last
    /// successful dial; `None` if neither is known.
    pub fn peer_of(&self, addr: &Multiaddr) -> Option<PeerId> {
        split_peer(addr)
            .1
            .or_else(|| self.wanted.get(addr).and_then(|d| d.peer))
    }

    /// A dial to `addr` failed at `now`: it is due again after [`backoff`], or, an
    /// address a beacon announced ([`Dialer::add_once`]), dropped; or, a
    /// learned address that failed [`MAX_FAILURES`] times in a row, dropped and given
    /// up on for [`GIVE_UP_FOR`]. Returns the failures in a row (0 for an address not
    /// on the list) and whether it was dropped.
    pub fn failed(&mut self, addr: &Multiaddr, now: Instant) -> (u32, bool) {
        let Some(d) = self.wanted.get_mut(addr) else {
            return (0, false);
        };
        d.failures += 1;
        d.next_at = now + backoff(d.failures);
        let failures = d.failures;
        if d.once && !d.pinned && !d.kept {
            self.wanted.remove(addr);
            return (failures, true);
        }
        if d.pinned || d.kept || failures < MAX_FAILURES {
            return (failures, false);
        }
        self.wanted.remove(addr);
        if self.given_up.len() >= MAX_GIVEN_UP {
            if let Some(oldest) = self
                .given_up
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(a, _)| a.clone())
            {
                self.given_up.remove(&oldest);
            }
        }
        self.given_up.insert(addr.clone(), now);
        (failures, true)
    }

    /// `peer` connected (either way): its addresses are no longer given up on.
    pub fn connected(&mut self, peer: &PeerId) {
        self.given_up
            .retain(|a, _| split_peer(a).1.as_ref() != Some(peer));
    }

    /// Addresses on the list (for status and tests).
    pub fn len(&self) -> usize {
        self.wanted.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Failures in a row of `addr` so far.
    pub fn failures(&self, addr: &Multiaddr) -> u32 {
        self.wanted.get(addr).map_or(0, |d| d.failures)
    }

    /// The last connection to `peer` closed at `now`: its addresses (and those without
    /// a peer id, which may be it) are redialled, after [`REDIAL_AFTER_CLOSE`].
    pub fn disconnected(&mut self, peer: PeerId, now: Instant) {
        let soon = now + REDIAL_AFTER_CLOSE;
        for (a, d) in self.wanted.iter_mut() {
            let p = split_peer(a).1;
            if p == Some(peer) || p.is_none() {
                d.next_at = d.next_at.max(soon);
            }
        }
    }

    /// Keeps `peer` out from `now` for [`BAN`].
    pub fn ban(&mut self, peer: PeerId, now: Instant) {
        self.bans.insert(peer, now + BAN);
    }

    /// Lifts the bans that ended by `now`; returns those peers.
    pub fn lift_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let over: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &over {
            self.bans.remove(p);
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap()
    }

    const NONE: fn(&Multiaddr) -> bool = |_| false;

    #[test]
    fn a_full_dial_list_drops_unreached_failing_entries_first() {
        let t0 = Instant::now();
        let mut d = Dialer::new(&[addr(1)], t0);
        d.add(addr(2), t0);
        d.reached(&addr(2), PeerId::random());
        for _ in 0..3 {
            d.failed(&addr(2), t0);
        }
        d.add(addr(3), t0 + Duration::from_secs(1));
        d.failed(&addr(3), t0);
        d.failed(&addr(3), t0);
        d.add(addr(4), t0);
        // Never reached, most failures.
        assert_eq!(d.eviction_candidate(), Some(addr(3)));
        d.wanted.remove(&addr(3));
        // Never reached, even without failures, before a peer that answered once.
        assert_eq!(d.eviction_candidate(), Some(addr(4)));
        d.wanted.remove(&addr(4));
        assert_eq!(d.eviction_candidate(), Some(addr(2)));
        d.wanted.remove(&addr(2));
        // A static peer is never dropped.
        assert_eq!(d.eviction_candidate(), None);
    }

    #[test]
    fn adding_to_a_full_list_replaces_the_worst_or_refuses_when_all_are_static() {
        let t0 = Instant::now();
        let statics: Vec<Multiaddr> = (1..MAX_WANTED as u16).map(addr).collect();
        let mut d = Dialer::new(&statics, t0);
        assert_eq!(d.add(addr(1000), t0), Added::New);
        assert_eq!(d.add(addr(1000), t0), Added::Known);
        assert_eq!(d.add(addr(1001), t0), Added::Replaced(addr(1000)));
        let full = Dialer::new(&(1..=MAX_WANTED as u16).map(addr).collect::<Vec<_>>(), t0);
        let mut full = full;
        assert_eq!(full.add(addr(2000), t0), Added::Full);
        assert_eq!(full.wanted.len(), MAX_WANTED);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_a_minute_and_a_success_resets_them() {
        let t0 = Instant::now();
        let mut d = Dialer::new(&[addr(1)], t0);
        assert_eq!(d.due(t0, NONE), vec![addr(1)]);
        let mut waits = Vec::new();
        for _ in 0..8 {
            let _ = d.failed(&addr(1), t0);
            let next = d.next_due(NONE).unwrap();
            waits.push((next - t0).as_secs());
            assert!(d.due(next - Duration::from_millis(1), NONE).is_empty());
            assert_eq!(d.due(next, NONE), vec![addr(1)]);
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        d.reached(&addr(1), PeerId::random());
        assert_eq!(d.failures(&addr(1)), 0);
        assert_eq!(d.failed(&addr(1), t0), (1, false));
    }

    #[test]
    fn the_next_wake_is_the_earliest_due_dial_or_ban_and_skipped_entries_do_not_count() {
        let t0 = Instant::now();
        let mut d = Dialer::default();
        assert_eq!(d.next_due(NONE), None, "nothing pending: no wake at all");
        d.add(addr(1), t0);
        d.failed(&addr(1), t0); // due at t0 + 2 s
        d.add(addr(2), t0 + Duration::from_secs(1));
        assert_eq!(d.next_due(NONE), Some(t0 + Duration::from_secs(1)));
        // A dial in flight (or a connected peer) does not wake the task.
        let skip2 = |a: &Multiaddr| *a == addr(2);
        assert_eq!(d.next_due(skip2), Some(t0 + Duration::from_secs(2)));
        assert_eq!(d.due(t0 + Duration::from_secs(5), skip2), vec![addr(1)]);
        let peer = PeerId::random();
        d.ban(peer, t0);
        let skip_all = |_: &Multiaddr| true;
        assert_eq!(d.next_due(skip_all), Some(t0 + BAN));
        assert!(d.lift_bans(t0 + BAN - Duration::from_millis(1)).is_empty());
        assert_eq!(d.lift_bans(t0 + BAN), vec![peer]);
        assert_eq!(d.next_due(skip_all), None);
    }

    #[test]
    fn a_closed_connection_redials_that_peer_soon_not_at_once() {
        let t0 = Instant::now();
        let (p, other) = (PeerId::random(), PeerId::random());
        let with = |peer: PeerId, port| -> Multiaddr {
            format!("/ip4/10.0.0.1/tcp/{port}/p2p/{peer}")
                .parse()
                .unwrap()
        };
        let mut d = Dialer::new(&[with(p, 1), with(other, 2), addr(3)], t0);
        d.disconnected(p, t0);
        let mut due = d.due(t0, NONE);
        due.sort();
        assert_eq!(due, vec![with(other, 2)]);
        let mut due = d.due(t0 + REDIAL_AFTER_CLOSE, NONE);
        due.sort();
        let mut want = vec![with(p, 1), with(other, 2), addr(3)];
        want.sort();
        assert_eq!(due, want);
    }

    #[test]
    fn a_learned_address_is_dropped_after_five_failures_and_not_taken_back_for_a_while() {
        let t0 = Instant::now();
        let p = PeerId::random();
        let learned: Multiaddr = format!("/ip4/10.0.0.9/tcp/4610/p2p/{p}").parse().unwrap();
        let mut d = Dialer::new(&[addr(1)], t0);
        assert_eq!(d.add(learned.clone(), t0), Added::New);
        for n in 1..MAX_FAILURES {
            assert_eq!(d.failed(&learned, t0), (n, false));
        }
        assert_eq!(d.failed(&learned, t0), (MAX_FAILURES, true));
        assert_eq!(d.len(), 1, "only the static peer is left");
        // Discovery and peer exchange offer it again: refused while given up on.
        assert_eq!(d.add(learned.clone(), t0 + GIVE_UP_FOR / 2), Added::GivenUp);
        assert_eq!(d.add(learned.clone(), t0 + GIVE_UP_FOR), Added::New);
        // A static peer keeps being dialled, whatever its failures.
        for _ in 0..20 {
            assert!(!d.failed(&addr(1), t0).1);
        }
        assert!(d
            .due(t0 + Duration::from_secs(3600), NONE)
            .contains(&addr(1)));
        // An address a user typed is never given up on, even one given up on before.
        let typed: Multiaddr = "/ip4/10.0.0.8/tcp/4610".parse().unwrap();
        d.add(typed.clone(), t0);
        for _ in 0..MAX_FAILURES {
            let _ = d.failed(&typed, t0);
        }
        assert_eq!(d.add(typed.clone(), t0), Added::GivenUp);
        assert_eq!(d.add_kept(typed.clone(), t0), Added::New);
        for _ in 0..20 {
            assert!(!d.failed(&typed, t0).1);
        }
        assert!(d.due(t0 + Duration::from_secs(3600), NONE).contains(&typed));
    }

    #[test]
    fn a_beaconed_address_is_dialled_once_and_not_retried_after_a_failure() {
        let t0 = Instant::now();
        let p = PeerId::random();
        let a: Multiaddr = format!("/ip4/10.0.0.9/tcp/4610/p2p/{p}").parse().unwrap();
        let mut d = Dialer::default();
        assert_eq!(d.add_once(a.clone(), t0), Added::New);
        assert_eq!(d.due(t0, NONE), vec![a.clone()]);
        assert_eq!(d.failed(&a, t0), (1, true));
        assert!(d.is_empty(), "no retry: {:?}", d.due(t0 + BAN, NONE));
        // Not given up on either: the next beacon (a minute on) may try again.
        assert_eq!(
            d.add_once(a.clone(), t0 + Duration::from_secs(60)),
            Added::New
        );
        // An address mDNS found keeps its retries when a beacon names it too.
        let m: Multiaddr = "/ip4/10.0.0.8/tcp/4610".parse().unwrap();
        d.add(m.clone(), t0);
        assert_eq!(d.add_once(m.clone(), t0), Added::Known);
        assert_eq!(d.failed(&m, t0), (1, false));
    }

    #[test]
    fn a_peer_that_connects_is_no_longer_given_up_on_and_the_memory_is_bounded() {
        let t0 = Instant::now();
        let p = PeerId::random();
        let a: Multiaddr = format!("/ip4/10.0.0.9/tcp/4610/p2p/{p}").parse().unwrap();
        let mut d = Dialer::default();
        d.add(a.clone(), t0);
        for _ in 0..MAX_FAILURES {
            let _ = d.failed(&a, t0);
        }
        assert_eq!(d.add(a.clone(), t0), Added::GivenUp);
        d.connected(&p);
        assert_eq!(d.add(a.clone(), t0), Added::New);
        // Thousands of dead addresses: the table of given-up ones stays bounded.
        for i in 0..(3 * MAX_GIVEN_UP as u32) {
            let x: Multiaddr = format!("/ip4/10.1.{}.{}/tcp/4610", i / 250, i % 250)
                .parse()
                .unwrap();
            let at = t0 + Duration::from_millis(u64::from(i));
            d.add(x.clone(), at);
            for _ in 0..MAX_FAILURES {
                let _ = d.failed(&x, at);
            }
        }
        assert!(d.given_up.len() <= MAX_GIVEN_UP);
        assert!(d.len() <= MAX_WANTED);
    }
}
