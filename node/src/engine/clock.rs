//! The engine's clocks: the local wall clock (with its test offset), peers' clock
//! samples, and the mesh clock that corrects ours within the protocol's rules.

use std::time::{SystemTime, UNIX_EPOCH};

use aidmesh_protocol::{ClockReading, ClockStatus, TimeSource};
use tracing::{info, warn};

use super::Engine;

/// Who reported a clock sample: the peer, and the host it connected from. The mesh
/// clock counts one vote per host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockKey {
    /// The peer (its id).
    pub peer: Vec<u8>,
    /// Its host (IP address; the peer id when unknown).
    pub host: Vec<u8>,
}

/// When this binary was built, in ms since the epoch (from `build.rs`): the mesh
/// clock's plausibility floor.
pub const BUILD_MS: u64 = parse_ms(env!("AIDMESH_BUILD_MS"));

const fn parse_ms(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: u64 = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "AIDMESH_BUILD_MS must be digits");
        n = n * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    n
}

impl Engine {
    /// The system wall clock plus the configured offset (a test hook for bad clocks):
    /// the local, uncorrected clock, which is what peers are told.
    pub fn wall_ms(&self) -> u64 {
        system_ms().saturating_add_signed(self.clock_offset_ms)
    }

    /// The times in use now (see [`aidmesh_protocol::MeshClock::read`]).
    pub fn clock(&self) -> ClockReading {
        let wall = self.wall_ms();
        let reading = self.lock().mesh.read(wall);
        self.mesh_correction_ms.store(
            reading.now_ms as i64 - wall as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        reading
    }

    /// [`Engine::now_ms`] without the engine's lock: the local clock with the mesh
    /// correction of the last reading. For checks that must not wait behind a store
    /// write (the gossip verdict, `crate::net::gossip`).
    pub fn now_ms_unlocked(&self) -> u64 {
        self.wall_ms().saturating_add_signed(
            self.mesh_correction_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// The time for new events, validation and due checks: the local clock, corrected
    /// only as the mesh-clock rules allow.
    pub fn now_ms(&self) -> u64 {
        self.clock().now_ms
    }

    /// The build-time floor this node uses.
    pub fn clock_floor_ms(&self) -> u64 {
        BUILD_MS
    }

    /// Records a peer's wall clock (from a sync message) and warns once when our clock
    /// looks wrong.
    pub fn record_peer_clock(&self, key: &ClockKey, peer_wall_ms: u64) {
        let wall = self.wall_ms();
        let mut st = self.lock();
        st.mesh.record(&key.peer, &key.host, peer_wall_ms, wall);
        let status = st.mesh.status();
        let reading = st.mesh.read(wall);
        let changed = std::mem::discriminant(&status) != std::mem::discriminant(&st.warned);
        if changed {
            let action = match reading.source {
                TimeSource::Mesh => "using the mesh's time",
                _ => "not corrected: too few computers agree",
            };
            match status {
                ClockStatus::Behind(ms) => warn!(
                    behind_ms = ms,
                    hosts = reading.hosts,
                    "this computer's clock is {} behind the mesh; {action}. Set the clock if you can",
                    human_ms(ms)
                ),
                ClockStatus::Ahead(ms) => warn!(
                    ahead_ms = ms,
                    hosts = reading.hosts,
                    "this computer's clock is {} ahead of the mesh; {action}. Set the clock if you can",
                    human_ms(ms)
                ),
                ClockStatus::Ok => info!("clock agrees with the mesh"),
                ClockStatus::Unknown => {}
            }
            st.warned = status;
        }
    }

    /// Forgets a peer's clock sample (it disconnected); `peer` as in [`ClockKey::peer`].
    pub fn forget_peer_clock(&self, peer: &[u8]) {
        self.lock().mesh.forget(peer);
    }

    /// What the mesh says about our clock.
    pub fn clock_status(&self) -> (ClockStatus, Option<i64>) {
        let st = self.lock();
        (st.mesh.status(), st.mesh.median_offset())
    }
}

pub(super) fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "3 days", "5 min": for log lines people read.
pub fn human_ms(ms: u64) -> String {
    // Rounded to the nearest unit: a clock 3 days behind less a few ms is "3 days".
    let s = (ms + 500) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3569 => format!("{} min", (s + 30) / 60),
        3570..=84_599 => format!("{} h", (s + 1800) / 3600),
        _ => format!("{} days", (s + 43_200) / 86_400),
    }
}
