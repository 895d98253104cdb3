//! Time without trusting anyone's clock.
//!
//! A [`Timestamp`] is a hybrid logical clock value packed into a `u64`: the high 48 bits
//! are milliseconds since the Unix epoch, the low 16 bits a logical counter. Plain `u64`
//! order is causal order: [`Clock::now`] always returns a value greater than every
//! timestamp the node has made or accepted, even when the wall clock is wrong (a
//! Raspberry Pi without a real-time clock boots in 1970).
//!
//! Two guards keep one bad clock from poisoning the mesh:
//! - validation rejects events stamped more than [`MAX_FUTURE_MS`] ahead of the
//!   receiver's (corrected) clock, so nobody can drag the mesh into next year;
//! - [`MeshClock`] keeps the offsets between peers' wall clocks and ours (sampled during
//!   sync), reports when ours is far off, and yields a corrected wall clock: the median
//!   peer's view, so one lying peer cannot move it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How far ahead of the receiver's clock an event's timestamp may be: 5 minutes.
/// (Laptops on a LAN without NTP drift by seconds to minutes; 500 ms, the default of
/// some HLC libraries, would reject honest events.)
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// Offset between our wall clock and the mesh's median above which we warn and
/// correct: 2 minutes.
pub const CLOCK_WARN_MS: u64 = 2 * 60 * 1000;

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
    /// A clock that has already seen `last` (the newest timestamp in the store).
    pub fn new(last: Timestamp) -> Self {
        Self { last }
    }

    /// A timestamp for a new local event, given the (corrected) wall clock. It is
    /// greater than anything returned or observed before.
    pub fn now(&mut self, wall_ms: u64) -> Timestamp {
        let next = Timestamp::from_millis(wall_ms).max(self.last.next());
        self.last = next;
        next
    }

    /// Takes note of an accepted event's timestamp. Validation has already bounded
    /// how far ahead it can be.
    pub fn observe(&mut self, ts: Timestamp) {
        self.last = self.last.max(ts);
    }

    /// The greatest timestamp made or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }
}

/// What [`MeshClock`] concludes about the local wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClockStatus {
    /// No peer has reported its clock yet.
    Unknown,
    /// Within [`CLOCK_WARN_MS`] of the mesh median.
    Ok,
    /// Our wall clock is behind the mesh median by this many milliseconds.
    Behind(u64),
    /// Our wall clock is ahead of the mesh median by this many milliseconds.
    Ahead(u64),
}

/// Offsets between peers' wall clocks and ours, one sample per peer.
#[derive(Debug, Clone, Default)]
pub struct MeshClock {
    /// peer key → (sequence of the sample, peer wall − our wall in ms)
    samples: BTreeMap<Vec<u8>, (u64, i64)>,
    seq: u64,
}

impl MeshClock {
    /// Records that `peer` reported `peer_wall_ms` when our wall clock read
    /// `local_wall_ms`. A newer sample from the same peer replaces the older.
    pub fn record(&mut self, peer: &[u8], peer_wall_ms: u64, local_wall_ms: u64) {
        let offset = (peer_wall_ms as i128 - local_wall_ms as i128)
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        self.seq += 1;
        self.samples.insert(peer.to_vec(), (self.seq, offset));
        if self.samples.len() > MESH_CLOCK_PEERS {
            if let Some(oldest) = self
                .samples
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(k, _)| k.clone())
            {
                self.samples.remove(&oldest);
            }
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

    /// The median offset (peer − us) in milliseconds, if any peer reported.
    /// With an even count, of the two middle values the one closer to zero is taken,
    /// which favours trusting our own clock.
    pub fn median_offset(&self) -> Option<i64> {
        let mut offsets: Vec<i64> = self.samples.values().map(|(_, o)| *o).collect();
        if offsets.is_empty() {
            return None;
        }
        offsets.sort_unstable();
        let lower = offsets[(offsets.len() - 1) / 2];
        let upper = offsets[offsets.len() / 2];
        // Of the two middle values, the one closer to zero.
        Some(if lower.unsigned_abs() <= upper.unsigned_abs() {
            lower
        } else {
            upper
        })
    }

    /// Whether our wall clock looks wrong.
    pub fn status(&self) -> ClockStatus {
        match self.median_offset() {
            None => ClockStatus::Unknown,
            Some(o) if o.unsigned_abs() <= CLOCK_WARN_MS => ClockStatus::Ok,
            Some(o) if o > 0 => ClockStatus::Behind(o.unsigned_abs()),
            Some(o) => ClockStatus::Ahead(o.unsigned_abs()),
        }
    }

    /// The wall clock to use for new timestamps and for validation: ours, unless it is
    /// more than [`CLOCK_WARN_MS`] off the mesh median, then the median's.
    pub fn corrected(&self, local_wall_ms: u64) -> u64 {
        match self.median_offset() {
            Some(o) if o.unsigned_abs() > CLOCK_WARN_MS => local_wall_ms.saturating_add_signed(o),
            _ => local_wall_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn clock_booted_in_1970_still_orders_after_what_it_has_seen() {
        let mut c = Clock::default();
        let mesh_event = Timestamp::from_millis(1_790_000_000_000);
        c.observe(mesh_event);
        let mine = c.now(5_000); // wall clock says 1970
        assert!(mine > mesh_event);
        let again = c.now(5_001);
        assert!(again > mine);
    }

    #[test]
    fn counter_carries_into_millis() {
        let t = Timestamp((10 << 16) | 0xffff);
        assert_eq!(t.next().millis(), 11);
        assert_eq!(t.next().counter(), 0);
    }

    #[test]
    fn mesh_clock_detects_a_clock_days_behind() {
        let mut m = MeshClock::default();
        assert_eq!(m.status(), ClockStatus::Unknown);
        let local = 1_000 * DAY;
        m.record(b"a", local + 3 * DAY, local);
        m.record(b"b", local + 3 * DAY + 40, local);
        m.record(b"c", local + 3 * DAY - 20, local);
        assert!(matches!(m.status(), ClockStatus::Behind(ms) if ms > 2 * DAY));
        let corrected = m.corrected(local);
        assert!(corrected.abs_diff(local + 3 * DAY) < 1_000);
    }

    #[test]
    fn one_lying_peer_cannot_move_the_median() {
        let mut m = MeshClock::default();
        let local = 1_000 * DAY;
        m.record(b"honest1", local + 10, local);
        m.record(b"honest2", local - 10, local);
        m.record(b"liar", local + 365 * DAY, local);
        assert_eq!(m.status(), ClockStatus::Ok);
        assert_eq!(m.corrected(local), local);
    }

    #[test]
    fn a_peer_that_leaves_no_longer_votes() {
        let mut m = MeshClock::default();
        m.record(b"liar", 365 * DAY, 0);
        assert!(matches!(m.status(), ClockStatus::Behind(_)));
        m.forget(b"liar");
        assert_eq!(m.status(), ClockStatus::Unknown);
    }

    #[test]
    fn a_newer_sample_replaces_the_older_and_memory_is_bounded() {
        let mut m = MeshClock::default();
        m.record(b"p", 10 * DAY, 0);
        m.record(b"p", 0, 0);
        assert_eq!(m.median_offset(), Some(0));
        for i in 0..(MESH_CLOCK_PEERS as u32 + 10) {
            m.record(&i.to_be_bytes(), 0, 0);
        }
        assert_eq!(m.peers(), MESH_CLOCK_PEERS);
    }

    proptest! {
        #[test]
        fn now_is_strictly_increasing(walls in proptest::collection::vec(any::<u64>(), 1..50),
                                      observed in proptest::collection::vec(any::<u64>(), 0..20)) {
            let mut c = Clock::default();
            let mut prev = Timestamp(0);
            for (i, w) in walls.iter().enumerate() {
                if let Some(o) = observed.get(i) { c.observe(Timestamp(*o)); }
                let t = c.now(*w);
                prop_assert!(t > prev || prev.0 == u64::MAX);
                prop_assert!(t >= c.last());
                prev = t;
            }
        }
    }
}
