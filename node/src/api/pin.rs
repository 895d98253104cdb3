//! The volunteer PIN guard: who may use the guarded doors (welfare records, adding
//! peers, imports, the flood tools). Requests from the hub computer itself are
//! served; from any other address they need the volunteer PIN (`X-Volunteer-Pin`
//! header), and with no PIN configured they are refused. Wrong PINs lock out the
//! address (an IPv6 /64) and, when many addresses guess, every other machine.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use thiserror::Error;

use super::error::ApiError;
use super::AppState;

/// Header carrying the volunteer PIN.
pub const PIN_HEADER: &str = "x-volunteer-pin";
/// Shortest PIN accepted at start: an empty PIN would switch the guard off, a short
/// one is guessed.
pub const PIN_MIN_LEN: usize = 6;
/// Wrong PINs from one address (an IPv6 /64) before it is locked out.
pub const PIN_TRIES: u32 = 5;
/// Wrong PINs from all addresses together before every other machine is locked out
/// (the hub computer itself never needs the PIN, so it keeps working).
pub const PIN_GLOBAL_TRIES: usize = 30;
/// How long a lock-out lasts, and the window the failures are counted in.
pub const PIN_LOCKOUT: Duration = Duration::from_secs(300);

/// A volunteer PIN refused at start.
#[derive(Debug, Error)]
#[error("the volunteer PIN must be at least {PIN_MIN_LEN} characters (got {len}); an empty or short PIN would let anyone on the hub's Wi-Fi read the welfare records. Choose a longer --volunteer-pin / AIDMESH_VOLUNTEER_PIN, or leave it unset to keep welfare records on the hub computer only")]
pub struct WeakPin {
    /// Length of the PIN given, in characters.
    pub len: usize,
}

/// Checks a configured PIN: at least [`PIN_MIN_LEN`] characters, not only spaces.
pub fn check_pin(pin: Option<&str>) -> Result<(), WeakPin> {
    match pin {
        Some(p) if p.trim().chars().count() < PIN_MIN_LEN => Err(WeakPin {
            len: p.chars().count(),
        }),
        _ => Ok(()),
    }
}

/// Who a wrong PIN is counted against: the address, or for IPv6 its /64 (one
/// household's privacy addresses share it, so rotating them gives no fresh tries).
fn pin_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// The volunteer PIN and the record of wrong guesses.
pub struct PinGuard {
    pin: Option<String>,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    /// Per address (IPv6: per /64): count, first failure in the window.
    by_key: HashMap<IpAddr, (u32, Instant)>,
    /// Every failure in the last [`PIN_LOCKOUT`], oldest first.
    all: VecDeque<Instant>,
}

/// What a request is guarded for: the refusals name it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Guarded {
    /// Welfare records.
    Welfare,
    /// Adding a peer to dial.
    Peers,
    /// Importing a bundle or official alerts.
    Import,
    /// Seeing who posted through the hub, and taking back a flood.
    Flood,
}

impl PinGuard {
    /// A guard for `pin` (`None`: only the hub computer itself). Call [`check_pin`]
    /// first.
    pub fn new(pin: Option<String>) -> Self {
        PinGuard {
            pin,
            failures: Mutex::default(),
        }
    }

    /// Whether the request may see welfare data, as a yes or no (for the live stream,
    /// which answers everyone and only leaves welfare events out). A wrong PIN counts
    /// as a guess here too, so the stream is no way around the lock-out.
    pub(super) fn allows(&self, from: SocketAddr, headers: &HeaderMap) -> bool {
        self.check(from, headers, Guarded::Welfare).is_ok()
    }

    /// Lets the request through, or says why not.
    pub(super) fn check(
        &self,
        from: SocketAddr,
        headers: &HeaderMap,
        what: Guarded,
    ) -> Result<(), ApiError> {
        if super::guard::is_local(from.ip()) {
            return Ok(());
        }
        let Some(pin) = self.pin.as_deref() else {
            return Err(match what {
                Guarded::Welfare => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "welfare_local_only",
                    "welfare records are only shown on the hub computer itself; start the node with --volunteer-pin to let volunteers' phones see them",
                ),
                Guarded::Peers => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "local_only",
                    "peers are added on the hub computer itself (or with the volunteer PIN, when the node has one)",
                ),
                Guarded::Import => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "local_only",
                    "bundles and official alerts are imported on the hub computer itself (or with the volunteer PIN, when the node has one)",
                ),
                Guarded::Flood => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "local_only",
                    "the flood tools are on the hub computer itself, aidmesh flood (or with the volunteer PIN, when the node has one)",
                ),
            });
        };
        let key = pin_key(from.ip());
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        f.prune(now);
        let minutes = PIN_LOCKOUT.as_secs() / 60;
        if f.by_key.get(&key).is_some_and(|(n, _)| *n >= PIN_TRIES) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "pin_locked",
                format!("too many wrong PINs from {key}; try again in {minutes} minutes"),
            ));
        }
        if f.all.len() >= PIN_GLOBAL_TRIES {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "pin_locked",
                format!("too many wrong PINs from many addresses; PINs are not checked for {minutes} minutes (the hub computer itself still works)"),
            ));
        }
        let given = headers
            .get(PIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if constant_time_eq(given.as_bytes(), pin.as_bytes()) {
            f.by_key.remove(&key);
            return Ok(());
        }
        // No header at all is a page that has not asked for the PIN yet, not a guess.
        if headers.contains_key(PIN_HEADER) {
            f.by_key.entry(key).or_insert((0, now)).0 += 1;
            f.all.push_back(now);
        }
        let detail = match what {
            Guarded::Welfare => "welfare records need the hub's volunteer PIN (header X-Volunteer-Pin); ask the hub coordinator",
            Guarded::Peers => "adding a peer from another machine needs the hub's volunteer PIN (header X-Volunteer-Pin); or add it on the hub computer",
            Guarded::Import => "importing from another machine needs the hub's volunteer PIN (header X-Volunteer-Pin); or import on the hub computer",
            Guarded::Flood => "the flood tools need the hub's volunteer PIN (header X-Volunteer-Pin) from another machine; or use aidmesh flood on the hub computer",
        };
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "pin_required",
            detail,
        ))
    }
}

impl Failures {
    fn prune(&mut self, now: Instant) {
        self.by_key
            .retain(|_, (_, since)| now.duration_since(*since) < PIN_LOCKOUT);
        while self
            .all
            .front()
            .is_some_and(|t| now.duration_since(*t) >= PIN_LOCKOUT)
        {
            self.all.pop_front();
        }
    }
}

/// Declares an extractor that only requests passing the [`PinGuard`] for one door get:
/// the hub computer itself, or a holder of the volunteer PIN.
macro_rules! pin_door {
    ($(#[$doc:meta])* $name:ident, $door:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl axum::extract::FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                st: &AppState,
            ) -> Result<Self, ApiError> {
                let from = super::guard::peer(&parts.extensions);
                st.pins.check(from, &parts.headers, $door)?;
                Ok($name)
            }
        }
    };
}

pin_door!(
    /// Extractor for every welfare handler.
    Volunteer,
    Guarded::Welfare
);
pin_door!(
    /// Extractor for `POST /api/v1/peers`.
    HubOrPin,
    Guarded::Peers
);
pin_door!(
    /// Extractor for imports (bundles, CAP alerts).
    Importer,
    Guarded::Import
);

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(PIN_HEADER, pin.parse().unwrap());
        h
    }

    fn from(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 50_000)
    }

    fn code(r: Result<(), ApiError>) -> u16 {
        r.map_or_else(|e| e.status.as_u16(), |()| 200)
    }

    #[test]
    fn empty_and_short_pins_are_refused() {
        assert!(check_pin(None).is_ok());
        assert!(check_pin(Some("246810")).is_ok());
        for weak in ["", "      ", "12345"] {
            let e = check_pin(Some(weak)).unwrap_err().to_string();
            assert!(e.contains("at least 6"), "{e}");
        }
    }

    #[test]
    fn ipv6_privacy_addresses_share_their_64s_lock_out() {
        let g = PinGuard::new(Some("246810".into()));
        for i in 0..PIN_TRIES {
            let ip = format!("2001:db8:0:1::{:x}", i + 1);
            assert_eq!(
                code(g.check(from(&ip), &headers("000000"), Guarded::Welfare)),
                401
            );
        }
        // A fresh address in the same /64, even with the right PIN: locked.
        let same = from("2001:db8:0:1:ffff::9");
        assert_eq!(
            code(g.check(same, &headers("246810"), Guarded::Welfare)),
            429
        );
        // Another /64 and IPv4 are not.
        let other = from("2001:db8:0:2::1");
        assert_eq!(
            code(g.check(other, &headers("246810"), Guarded::Welfare)),
            200
        );
        assert_eq!(
            code(g.check(from("192.0.2.7"), &headers("246810"), Guarded::Welfare)),
            200
        );
    }

    #[test]
    fn many_addresses_guessing_lock_out_every_other_machine_but_not_the_hub_computer() {
        let g = PinGuard::new(Some("246810".into()));
        // Fewer than PIN_TRIES from each address, PIN_GLOBAL_TRIES in all.
        for i in 0..PIN_GLOBAL_TRIES {
            let ip = format!("198.51.100.{}", i / 2 + 1);
            assert_eq!(
                code(g.check(from(&ip), &headers("000000"), Guarded::Welfare)),
                401
            );
        }
        let fresh = from("203.0.113.5");
        assert_eq!(
            code(g.check(fresh, &headers("246810"), Guarded::Welfare)),
            429
        );
        assert!(!g.allows(fresh, &headers("246810")));
        // The hub computer itself, also as seen on an IPv6 listener.
        assert_eq!(
            code(g.check(from("127.0.0.1"), &HeaderMap::new(), Guarded::Welfare)),
            200
        );
        assert_eq!(
            code(g.check(
                from("::ffff:127.0.0.1"),
                &HeaderMap::new(),
                Guarded::Welfare
            )),
            200
        );
    }

    #[test]
    fn guesses_through_the_live_stream_count_too() {
        let g = PinGuard::new(Some("246810".into()));
        let ip = from("192.0.2.8");
        assert!(
            !g.allows(ip, &HeaderMap::new()),
            "no PIN: no welfare events"
        );
        for _ in 0..PIN_TRIES {
            assert!(!g.allows(ip, &headers("000000")));
        }
        assert!(!g.allows(ip, &headers("246810")), "locked out");
        assert_eq!(code(g.check(ip, &headers("246810"), Guarded::Welfare)), 429);
        assert!(g.allows(from("192.0.2.9"), &headers("246810")));
    }
}
