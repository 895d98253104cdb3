//! Time without trusting anyone's clock.
//!
//! A [`Timestamp`] is a hybrid logical clock value packed into a `u64`: the high 48 bits
//! are milliseconds since the Unix epoch, the low 16 bits a logical counter. Plain `u64`
//! order is causal order: [`Clock::now`] returns a value greater than every timestamp
//! the node has made or accepted, even when the wall clock is wrong (a Raspberry Pi
//! without a real-time clock boots in 1970), as long as that does not put the new
//! timestamp more than [`MAX_FUTURE_MS`] ahead of the clock (then it would be refused).
//!
//! Guards that keep one bad clock from poisoning a node or the mesh:
//! - validation rejects events stamped more than [`MAX_FUTURE_MS`] ahead of the
//!   receiver's clock, so nobody can drag the mesh into next year;
//! - [`MeshClock`] keeps the offsets between peers' wall clocks and ours (sampled during
//!   sync) and decides, by the rules below, which time the node uses:
//!   - a *floor*: the time the binary was built. A local clock before it is
//!     implausible (a Pi booting in 1970); then any peer's time is taken, never earlier
//!     than the floor, and with no peer the floor itself (advancing with the local
//!     clock) is used;
//!   - a plausible local clock is corrected only when at least [`CLOCK_QUORUM_HOSTS`]
//!     distinct hosts (one vote per IP address, however many peers or ports it has)
//!     agree, and then by at most [`MAX_CORRECTION_MS`];
//!   - erasure (welfare retention) uses [`ClockReading::erase_ms`], which is never ahead
//!     of a plausible local clock, nor of the floor when the local clock is implausible
//!     and no quorum agrees: a lying clock can delay an erasure, never hasten one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How far ahead of the receiver's clock an event's timestamp may be: 5 minutes.
/// (Laptops on a LAN without NTP drift by seconds to minutes; 500 ms, the default of
/// some HLC libraries, would reject honest events.)
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// Offset between our wall clock and the mesh's median above which we warn and (with a
/// quorum) correct: 2 minutes.
pub const CLOCK_WARN_MS: u64 = 2 * 60 * 1000;

/// Distinct hosts that must report a clock before a *plausible* local clock is
/// corrected: 3. With one or two, a single member (who can easily run a second
/// machine) would decide alone; three independent machines agreeing is what a small
/// neighbourhood mesh can muster and one person rarely fakes by accident.
pub const CLOCK_QUORUM_HOSTS: usize = 3;

/// The most a quorum may move a plausible local clock: 1 hour. Enough for the errors a
/// plausible clock really has (drift, a missed daylight-saving change); a larger error
/// is shown as a warning for a person to fix. It bounds what colluding hosts can do:
/// overdue checks shift by at most an hour, and this node's events are stamped at most
/// an hour (plus [`MAX_FUTURE_MS`]) ahead.
pub const MAX_CORRECTION_MS: u64 = 60 * 60 * 1000;

/// Peers remembered by [`MeshClock`]; the oldest sample is dropped beyond this.
pub const MESH_CLOCK_PEERS: usize = 64;

const LOGICAL_BITS: u32 = 16;
const MAX_MILLIS: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

/// A hybrid-logical-clock timestamp: `(millis << 16) | counter`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp at the start of millisecond `ms` (counter 0). Values beyond the
    /// 48-bit range saturate.
    pub fn from_millis(ms: u64) -> Self {
        Timestamp(ms.min(MAX_MILLIS) << LOGICAL_BITS)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter within the millisecond.
    pub fn counter(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// The next timestamp; a full counter carries into the milliseconds.
    pub fn next(self) -> Self {
        Timestamp(self.0.saturating_add(1))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.millis(), self.counter())
    }
}

/// The hybrid logical clock of one node.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    last: Timestamp,
}

impl Clock {
    /// A clock that has already seen `last` (the newest timestamp in the store). It may
    /// be ahead of the wall clock (a store holding future-dated events): [`Clock::now`]
    /// clamps it, so local writes still validate.
    pub fn new(last: Timestamp) -> Self {
        Self { last }
    }

    /// `ts`, or if it is beyond the millisecond `wall_ms + MAX_FUTURE_MS` (the
    /// receiver's future bound), the start of that millisecond.
    fn bounded(ts: Timestamp, wall_ms: u64) -> Timestamp {
        let ceiling = wall_ms.saturating_add(MAX_FUTURE_MS);
        if ts.millis() > ceiling {
            Timestamp::from_millis(ceiling)
        } else {
            ts
        }
    }

    /// A timestamp for a new local event, given the wall clock in use
    /// ([`ClockReading::now_ms`]). It is greater than anything returned or observed
    /// before, except that it never goes beyond `wall_ms + MAX_FUTURE_MS`: what the
    /// clock remembers beyond that (future-dated events in the store, a correction that
    /// has since gone) is forgotten, so this node's own writes are never refused as
    /// "ahead" by its own validation.
    pub fn now(&mut self, wall_ms: u64) -> Timestamp {
        self.last = Self::bounded(self.last, wall_ms);
        let next = Timestamp::from_millis(wall_ms).max(self.last.next());
        self.last = next;
        next
    }

    /// Takes note of an accepted event's timestamp, read when the wall clock in use was
    /// `wall_ms`. Validation has already bounded how far ahead it can be; the clock also
    /// never moves beyond `wall_ms + MAX_FUTURE_MS` because of what a peer sent.
    pub fn observe(&mut self, ts: Timestamp, wall_ms: u64) {
        self.last = self.last.max(Self::bounded(ts, wall_ms));
    }

    /// The greatest timestamp made or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }
}

/// What [`MeshClock`] concludes about the local wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClockStatus {
    /// No peer has reported a plausible clock yet.
    Unknown,
    /// Within [`CLOCK_WARN_MS`] of the mesh median.
    Ok,
    /// Our wall clock is behind the mesh median by this many milliseconds.
    Behind(u64),
    /// Our wall clock is ahead of the mesh median by this many milliseconds.
    Ahead(u64),
}

/// Where the time a node uses came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeSource {
    /// The local wall clock, uncorrected (plausible, and no quorum says otherwise).
    Local,
    /// The local clock corrected towards the peers' median: by a quorum (bounded by
    /// [`MAX_CORRECTION_MS`]) when it is plausible, by any peer when it is not.
    Mesh,
    /// The build-time floor, advancing with the local clock since the node started: the
    /// local clock is implausible and no peer has told us the time yet.
    Floor,
}

/// The times a node uses at one instant; see [`MeshClock::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// The local (uncorrected) wall clock.
    pub local_ms: u64,
    /// For new timestamps, validation's future bound and due checks.
    pub now_ms: u64,
    /// For erasing (welfare retention): never ahead of a plausible local clock, nor of
    /// the floor when the local clock is implausible and no quorum agrees.
    pub erase_ms: u64,
    /// Where `now_ms` came from.
    pub source: TimeSource,
    /// Distinct hosts with a clock sample.
    pub hosts: usize,
    /// Whether the local clock is on or after the build-time floor.
    pub plausible: bool,
}

#[derive(Debug, Clone)]
struct Sample {
    seq: u64,
    host: Vec<u8>,
    offset: i64,
}

/// Offsets between peers' wall clocks and ours, one sample per peer, one vote per host,
/// and the rules that turn them into the time this node uses.
#[derive(Debug, Clone)]
pub struct MeshClock {
    floor_ms: u64,
    started_local_ms: u64,
    /// peer key → its latest sample
    samples: BTreeMap<Vec<u8>, Sample>,
    seq: u64,
    /// While the local clock is implausible: the last offset the peers gave, kept when
    /// they leave (better than falling back to the floor).
    learned: Option<i64>,
}

/// The middle of sorted `values`; with an even count, of the two middle values the one
/// closer to zero, which favours trusting our own clock.
fn median(mut values: Vec<i64>) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let lower = values[(values.len() - 1) / 2];
    let upper = values[values.len() / 2];
    Some(if lower.unsigned_abs() <= upper.unsigned_abs() {
        lower
    } else {
        upper
    })
}

impl MeshClock {
    /// A mesh clock for a node whose binary was built at `floor_ms` (no real time can be
    /// earlier) and whose local wall clock read `started_local_ms` when it started.
    pub fn new(floor_ms: u64, started_local_ms: u64) -> Self {
        MeshClock {
            floor_ms,
            started_local_ms,
            samples: BTreeMap::new(),
            seq: 0,
            learned: None,
        }
    }

    /// The build-time floor.
    pub fn floor_ms(&self) -> u64 {
        self.floor_ms
    }

    /// Records that `peer`, connected from `host` (its IP address), reported
    /// `peer_wall_ms` when our wall clock read `local_wall_ms`. A newer sample from the
    /// same peer replaces the older. A peer clock before the floor is no evidence of the
    /// time (it is a Pi in 1970 itself) and is not recorded.
    pub fn record(&mut self, peer: &[u8], host: &[u8], peer_wall_ms: u64, local_wall_ms: u64) {
        if peer_wall_ms < self.floor_ms {
            self.samples.remove(peer);
            return;
        }
        let offset = (peer_wall_ms as i128 - local_wall_ms as i128)
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        self.seq += 1;
        let sample = Sample {
            seq: self.seq,
            host: host.to_vec(),
            offset,
        };
        self.samples.insert(peer.to_vec(), sample);
        if self.samples.len() > MESH_CLOCK_PEERS {
            if let Some(oldest) = self
                .samples
                .iter()
                .min_by_key(|(_, s)| s.seq)
                .map(|(k, _)| k.clone())
            {
                self.samples.remove(&oldest);
            }
        }
        if local_wall_ms < self.floor_ms {
            self.learned = self.median_offset().or(self.learned);
        }
    }

    /// Drops a peer's sample (it disconnected: only present peers vote).
    pub fn forget(&mut self, peer: &[u8]) {
        self.samples.remove(peer);
    }

    /// Number of peers with a sample.
    pub fn peers(&self) -> usize {
        self.samples.len()
    }

    /// One offset per host: the median of its peers' samples.
    fn host_votes(&self) -> Vec<i64> {
        let mut by_host: BTreeMap<&[u8], Vec<i64>> = BTreeMap::new();
        for s in self.samples.values() {
            by_host.entry(&s.host).or_default().push(s.offset);
        }
        by_host.into_values().filter_map(median).collect()
    }

    /// Number of distinct hosts with a sample.
    pub fn hosts(&self) -> usize {
        self.host_votes().len()
    }

    /// The median of the hosts' offsets (peer − us) in milliseconds, if any reported.
    pub fn median_offset(&self) -> Option<i64> {
        median(self.host_votes())
    }

    /// How our wall clock compares with the peers' median (whether or not that is
    /// enough to correct it; see [`MeshClock::read`]).
    pub fn status(&self) -> ClockStatus {
        match self.median_offset() {
            None => ClockStatus::Unknown,
            Some(o) if o.unsigned_abs() <= CLOCK_WARN_MS => ClockStatus::Ok,
            Some(o) if o > 0 => ClockStatus::Behind(o.unsigned_abs()),
            Some(o) => ClockStatus::Ahead(o.unsigned_abs()),
        }
    }

    /// The times to use when the local wall clock reads `local_ms`.
    pub fn read(&self, local_ms: u64) -> ClockReading {
        let votes = self.host_votes();
        let hosts = votes.len();
        let quorum = hosts >= CLOCK_QUORUM_HOSTS;
        let median = median(votes);
        let plausible = local_ms >= self.floor_ms;
        let (now_ms, erase_ms, source) = if plausible {
            match median {
                Some(m) if quorum && m.unsigned_abs() > CLOCK_WARN_MS => {
                    let bound = MAX_CORRECTION_MS as i64;
                    let now = local_ms
                        .saturating_add_signed(m.clamp(-bound, bound))
                        .max(self.floor_ms);
                    (now, now.min(local_ms), TimeSource::Mesh)
                }
                _ => (local_ms, local_ms, TimeSource::Local),
            }
        } else {
            // Never earlier than the floor; the floor moves on with the local clock
            // since the start, so it stays at or before the real time.
            let floor = self
                .floor_ms
                .saturating_add(local_ms.saturating_sub(self.started_local_ms));
            match median.or(self.learned) {
                Some(m) => {
                    let now = local_ms.saturating_add_signed(m).max(floor);
                    (now, if quorum { now } else { floor }, TimeSource::Mesh)
                }
                None => (floor, floor, TimeSource::Floor),
            }
        };
        ClockReading {
            local_ms,
            now_ms,
            erase_ms,
            source,
            hosts,
            plausible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: u64 = 86_400_000;
    const HOUR: u64 = 3_600_000;
    /// The build time of the binary in these tests (September 2026).
    const FLOOR: u64 = 1_790_000_000_000;
    /// A plausible local clock, ten days after the build.
    const LOCAL: u64 = FLOOR + 10 * DAY;

    fn mesh() -> MeshClock {
        MeshClock::new(FLOOR, LOCAL)
    }

    #[test]
    fn clock_booted_in_1970_still_orders_after_what_it_has_seen() {
        // The Pi's wall clock says 1970; the time in use is the mesh's.
        let mut m = MeshClock::new(FLOOR, 5_000);
        m.record(b"laptop", b"10.0.0.2", LOCAL, 5_000);
        let now = m.read(5_000).now_ms;
        let mut c = Clock::default();
        let mesh_event = Timestamp::from_millis(LOCAL - 1_000);
        c.observe(mesh_event, now);
        let mine = c.now(now);
        assert!(mine > mesh_event);
        let again = c.now(now + 1);
        assert!(again > mine);
    }

    #[test]
    fn counter_carries_into_millis() {
        let t = Timestamp((10 << 16) | 0xffff);
        assert_eq!(t.next().millis(), 11);
        assert_eq!(t.next().counter(), 0);
    }

    #[test]
    fn a_store_holding_future_events_does_not_make_local_writes_future() {
        // The store's newest event is 40 days ahead (written while a lying clock was
        // believed); after a restart the node's own writes must still validate.
        let mut c = Clock::new(Timestamp::from_millis(LOCAL + 40 * DAY));
        let t = c.now(LOCAL);
        assert!(t.millis() <= LOCAL + MAX_FUTURE_MS, "{t:?}");
        let u = c.now(LOCAL);
        assert!(u > t, "still strictly increasing");
        // An event observed beyond the bound does not drag the clock either.
        c.observe(Timestamp::from_millis(LOCAL + 365 * DAY), LOCAL);
        assert!(c.now(LOCAL).millis() <= LOCAL + MAX_FUTURE_MS);
    }

    #[test]
    fn one_peer_cannot_correct_a_plausible_clock() {
        let mut m = mesh();
        m.record(b"liar", b"10.0.0.9", LOCAL + 40 * DAY, LOCAL);
        // It is reported (a person may want to check), but not acted on.
        assert_eq!(m.status(), ClockStatus::Behind(40 * DAY));
        let r = m.read(LOCAL);
        assert_eq!(r.source, TimeSource::Local);
        assert_eq!((r.now_ms, r.erase_ms, r.hosts), (LOCAL, LOCAL, 1));
    }

    #[test]
    fn many_peers_on_one_host_are_one_vote() {
        let mut m = mesh();
        for port in 0..10u8 {
            m.record(&[port], b"10.0.0.9", LOCAL + 40 * DAY, LOCAL);
        }
        assert_eq!(m.hosts(), 1);
        assert_eq!(m.read(LOCAL).now_ms, LOCAL);
        // Two honest hosts make three: the liar's host is outvoted by the median.
        m.record(b"a", b"10.0.0.2", LOCAL + 10, LOCAL);
        m.record(b"b", b"10.0.0.3", LOCAL - 10, LOCAL);
        assert_eq!(m.hosts(), 3);
        assert_eq!(m.status(), ClockStatus::Ok);
        assert_eq!(m.read(LOCAL).now_ms, LOCAL);
    }

    #[test]
    fn a_host_votes_with_the_median_of_its_peers() {
        let mut m = mesh();
        m.record(b"honest", b"10.0.0.2", LOCAL, LOCAL);
        m.record(b"liar", b"10.0.0.2", LOCAL + 40 * DAY, LOCAL);
        assert_eq!(m.median_offset(), Some(0), "closer to zero of the two");
    }

    #[test]
    fn a_quorum_corrects_a_plausible_clock_by_at_most_an_hour() {
        let mut m = mesh();
        m.record(b"a", b"10.0.0.2", LOCAL + 3 * DAY, LOCAL);
        m.record(b"b", b"10.0.0.3", LOCAL + 3 * DAY + 40, LOCAL);
        m.record(b"c", b"10.0.0.4", LOCAL + 3 * DAY - 20, LOCAL);
        assert!(matches!(m.status(), ClockStatus::Behind(ms) if ms > 2 * DAY));
        let r = m.read(LOCAL);
        assert_eq!(r.source, TimeSource::Mesh);
        assert_eq!(r.now_ms, LOCAL + MAX_CORRECTION_MS);
        assert_eq!(
            r.erase_ms, LOCAL,
            "erasure never runs ahead of the local clock"
        );
        // A quorum that says we are ahead moves us back, erasure with it.
        let mut m = mesh();
        for (p, h) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
            m.record(p, h, LOCAL - 10 * 60_000, LOCAL);
        }
        let r = m.read(LOCAL);
        assert_eq!(r.now_ms, LOCAL - 10 * 60_000);
        assert_eq!(r.erase_ms, r.now_ms);
    }

    #[test]
    fn a_small_difference_is_not_corrected() {
        let mut m = mesh();
        for (p, h) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
            m.record(p, h, LOCAL + 60_000, LOCAL);
        }
        assert_eq!(m.status(), ClockStatus::Ok);
        assert_eq!(m.read(LOCAL).now_ms, LOCAL);
    }

    #[test]
    fn a_pi_booted_in_1970_takes_one_laptops_time() {
        let boot = 5_000;
        let mut m = MeshClock::new(FLOOR, boot);
        // No peer yet: the floor, moving on with the local clock; never 1970.
        let r = m.read(boot + 60_000);
        assert_eq!(r.source, TimeSource::Floor);
        assert!(!r.plausible);
        assert_eq!((r.now_ms, r.erase_ms), (FLOOR + 60_000, FLOOR + 60_000));
        // One laptop: its time is taken. Erasure stays on the floor (it is not a quorum).
        m.record(b"laptop", b"10.0.0.2", LOCAL, boot + 60_000);
        let r = m.read(boot + 60_000);
        assert_eq!(r.source, TimeSource::Mesh);
        assert_eq!(r.now_ms, LOCAL);
        assert_eq!(r.erase_ms, FLOOR + 60_000);
        // The laptop leaves: its time is kept.
        m.forget(b"laptop");
        assert_eq!(m.read(boot + 120_000).now_ms, LOCAL + 60_000);
    }

    #[test]
    fn a_clock_just_before_the_build_is_implausible_too() {
        let local = FLOOR - HOUR;
        let mut m = MeshClock::new(FLOOR, local);
        assert_eq!(m.read(local).now_ms, FLOOR);
        m.record(b"laptop", b"10.0.0.2", LOCAL, local);
        assert_eq!(m.read(local).now_ms, LOCAL);
    }

    #[test]
    fn a_peer_before_the_floor_is_no_evidence() {
        let mut m = mesh();
        m.record(b"pi", b"10.0.0.5", 5_000, LOCAL);
        assert_eq!(m.status(), ClockStatus::Unknown);
        assert_eq!(m.hosts(), 0);
        // And a Pi cannot pull another Pi below the floor.
        let mut m = MeshClock::new(FLOOR, 1_000);
        m.record(b"pi", b"10.0.0.5", 5_000, 1_000);
        assert_eq!(m.read(1_000).now_ms, FLOOR);
    }

    #[test]
    fn a_peer_that_leaves_no_longer_votes() {
        let mut m = mesh();
        m.record(b"liar", b"h", LOCAL + 365 * DAY, LOCAL);
        assert!(matches!(m.status(), ClockStatus::Behind(_)));
        m.forget(b"liar");
        assert_eq!(m.status(), ClockStatus::Unknown);
    }

    #[test]
    fn a_newer_sample_replaces_the_older_and_memory_is_bounded() {
        let mut m = mesh();
        m.record(b"p", b"h", LOCAL + 10 * DAY, LOCAL);
        m.record(b"p", b"h", LOCAL, LOCAL);
        assert_eq!(m.median_offset(), Some(0));
        for i in 0..(MESH_CLOCK_PEERS as u32 + 10) {
            m.record(&i.to_be_bytes(), &i.to_be_bytes(), LOCAL, LOCAL);
        }
        assert_eq!(m.peers(), MESH_CLOCK_PEERS);
    }

    proptest! {
        #[test]
        fn now_never_passes_the_future_bound(
            walls in proptest::collection::vec(0u64..(1 << 46), 1..50),
            observed in proptest::collection::vec(any::<u64>(), 0..20),
        ) {
            let mut c = Clock::default();
            for (i, w) in walls.iter().enumerate() {
                if let Some(o) = observed.get(i) { c.observe(Timestamp(*o), *w); }
                let t = c.now(*w);
                prop_assert!(t.millis() <= w + MAX_FUTURE_MS);
            }
        }

        #[test]
        fn now_is_strictly_increasing_and_after_what_was_seen(
            start in 0u64..(1 << 46),
            steps in proptest::collection::vec((0u64..10_000, proptest::option::of(0u64..20_000)), 1..50),
        ) {
            let mut c = Clock::default();
            let mut wall = start;
            let mut prev = Timestamp(0);
            for (step, seen) in steps {
                wall += step;
                // Observed events within the future bound of the current wall clock.
                let seen = seen.map(|s| Timestamp::from_millis(wall + s % MAX_FUTURE_MS));
                if let Some(s) = seen { c.observe(s, wall); }
                let t = c.now(wall);
                prop_assert!(t > prev);
                if let Some(s) = seen { prop_assert!(t > s); }
                prev = t;
            }
        }

        #[test]
        fn mesh_rules_hold_for_any_samples(
            local in 0u64..(FLOOR + 100 * DAY),
            started in 0u64..(FLOOR + 100 * DAY),
            samples in proptest::collection::vec((0u8..8, 0u8..4, any::<i64>()), 0..20),
        ) {
            let mut m = MeshClock::new(FLOOR, started);
            for (peer, host, off) in &samples {
                let wall = local.saturating_add_signed(*off);
                m.record(&[*peer], &[*host], wall, local);
            }
            let r = m.read(local);
            let quorum = r.hosts >= CLOCK_QUORUM_HOSTS;
            prop_assert!(r.now_ms >= FLOOR, "never before the build");
            if r.plausible {
                prop_assert!(r.erase_ms <= local, "erasure never ahead of a plausible clock");
                prop_assert!(r.now_ms.abs_diff(local) <= MAX_CORRECTION_MS);
                if !quorum { prop_assert_eq!(r.now_ms, local); }
            } else {
                let floor = FLOOR + local.saturating_sub(started);
                if !quorum { prop_assert_eq!(r.erase_ms, floor); }
                prop_assert!(r.erase_ms <= r.now_ms);
            }
        }
    }
}
