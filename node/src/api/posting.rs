//! How fast other machines may write (issue 24: one phone posted 10,000 needs in 4.3 s,
//! 48 MB, and they gossiped to every hub). Checked before any handler of a write runs:
//!
//! - each other machine's address has a bucket of [`Limits::per_minute`] writes (a
//!   person posts a few items a minute), refilled evenly over the minute; addresses the
//!   coordinator named as desk computers (`aidmesh up --desk ADDR`) get
//!   [`Limits::desk_per_minute`]; the hub computer (loopback) is never limited;
//! - once this hub has signed [`REMOTE_SHARE_PERCENT`] % of its daily quota
//!   ([`aidmesh_protocol::quota::DAILY_EVENTS_PER_AUTHOR`]), other machines' writes wait
//!   for the next day, so the hub computer keeps the rest;
//! - forgetting a person is never limited (erasure must always work).
//!
//! A refused write gets `429 Too Many Requests` with `Retry-After` and a sentence the
//! page shows. Writes from other machines are noted by address ([`crate::store`]'s
//! `posted_from`, kept [`POSTED_FROM_KEPT_MS`]) so that a coordinator can take back
//! everything one address posted in a flood (`aidmesh flood`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::guard::{is_local, peer};
use super::AppState;

/// Writes a minute from one other machine, by default.
pub const DEFAULT_PER_MINUTE: u32 = 10;
/// Writes a minute from a desk computer the coordinator named, by default.
pub const DEFAULT_DESK_PER_MINUTE: u32 = 120;
/// The share (percent) of the hub's daily quota that other machines may use.
pub const REMOTE_SHARE_PERCENT: u32 = 80;
/// How long the address a write came from is kept (for `aidmesh flood`).
pub const POSTED_FROM_KEPT_MS: u64 = 3 * 86_400_000;
/// Buckets kept at most; past it, full (idle) ones are let go.
const MAX_BUCKETS: usize = 4096;

/// The posting limits, as `aidmesh up` sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Writes a minute from one other machine.
    pub per_minute: u32,
    /// Writes a minute from one of `desks`.
    pub desk_per_minute: u32,
    /// Desk computers: other machines the coordinator trusts with more.
    pub desks: HashSet<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_minute: DEFAULT_PER_MINUTE,
            desk_per_minute: DEFAULT_DESK_PER_MINUTE,
            desks: HashSet::new(),
        }
    }
}

/// A token bucket: `tokens` left at `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of other machines, by address.
#[derive(Debug, Default)]
pub(super) struct Posting {
    limits: Limits,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Posting {
    /// Buckets for `limits`.
    pub(super) fn new(limits: Limits) -> Self {
        Posting {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Takes one write for `ip` at `now`, or says in how many seconds one is free.
    fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let per_minute = if self.limits.desks.contains(&ip) {
            self.limits.desk_per_minute
        } else {
            self.limits.per_minute
        };
        let cap = f64::from(per_minute.max(1));
        let per_sec = cap / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&ip) {
            // Full buckets carry nothing a fresh one would not.
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < cap);
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// Whether `path` is a write that is never limited: forgetting a person.
fn never_limited(path: &str) -> bool {
    path.starts_with("/api/v1/people/") && path.ends_with("/forget")
}

/// A `429` with `Retry-After`.
fn too_many(error: &'static str, detail: String, retry_after_s: u64) -> Response {
    let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, error, detail).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The middleware: lets a write from another machine through, or answers `429`.
pub(super) async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ip = peer(req.extensions()).ip().to_canonical();
    if req.method() != Method::POST || is_local(ip) || never_limited(req.uri().path()) {
        return next.run(req).await;
    }
    if let Err(wait_s) = st.posting.take(ip, Instant::now()) {
        tracing::info!(from = %ip, wait_s, "API: a write refused: this address posts faster than its limit (see `aidmesh flood`)");
        return too_many(
            "too_many_posts",
            format!(
                "this phone or computer has posted a lot in a short time; wait {wait_s} s and try again. Entering many items for the hub? Ask the coordinator to name this computer a desk (aidmesh up --desk {ip})"
            ),
            wait_s,
        );
    }
    let engine = &st.engine;
    let now = engine.now_ms();
    let signed = engine.signed_on_day(
        &engine.identity().author(),
        aidmesh_protocol::Timestamp::from_millis(now),
    );
    let share = aidmesh_protocol::quota::DAILY_EVENTS_PER_AUTHOR / 100 * REMOTE_SHARE_PERCENT;
    if signed >= share {
        let wait_s = (86_400_000 - now % 86_400_000).div_ceil(1000);
        return too_many(
            "hub_daily_share",
            format!(
                "this hub has taken {signed} posts today, as many as it takes from phones in a day; post at another hub, or at this hub's own computer, or try again after 00:00 UTC"
            ),
            wait_s,
        );
    }
    let answer = next.run(req).await;
    if answer.status() == StatusCode::CREATED {
        return note_posted_from(&st, ip, answer).await;
    }
    answer
}

/// Notes where a new post came from (the `id` of a `201` answer), for `aidmesh flood`.
async fn note_posted_from(st: &AppState, ip: IpAddr, answer: Response) -> Response {
    let (parts, body) = answer.into_parts();
    // Our own small JSON answer: a failure to read it is no reason to lose it.
    let Ok(bytes) = axum::body::to_bytes(body, super::MAX_BODY).await else {
        return (parts, axum::body::Body::empty()).into_response();
    };
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["id"].as_str().and_then(|h| h.parse().ok()));
    if let Some(id) = id {
        let engine = st.engine.clone();
        let now = engine.now_ms();
        let from = ip.to_string();
        let noted = super::error::blocking(move || {
            engine
                .store()
                .note_posted_from(&id, &from, now, POSTED_FROM_KEPT_MS)
        })
        .await;
        if let Ok(Err(e)) = noted {
            tracing::debug!(error = %e, "could not note where a post came from");
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_address_gets_its_minute_of_writes_then_waits_and_desks_get_more() {
        let mut limits = Limits {
            per_minute: 6,
            desk_per_minute: 60,
            ..Limits::default()
        };
        let desk: IpAddr = "192.0.2.5".parse().unwrap();
        limits.desks.insert(desk);
        let p = Posting::new(limits);
        let phone: IpAddr = "192.0.2.9".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..6 {
            assert_eq!(p.take(phone, t0), Ok(()), "write {i}");
        }
        assert_eq!(p.take(phone, t0), Err(10), "one write every 10 s");
        // Another phone is not touched; ten seconds on, one more.
        assert_eq!(p.take("192.0.2.10".parse().unwrap(), t0), Ok(()));
        assert_eq!(p.take(phone, t0 + Duration::from_secs(10)), Ok(()));
        assert!(p.take(phone, t0 + Duration::from_secs(10)).is_err());
        for i in 0..60 {
            assert_eq!(p.take(desk, t0), Ok(()), "desk write {i}");
        }
        assert_eq!(p.take(desk, t0), Err(1));
    }

    #[test]
    fn buckets_stay_bounded() {
        let p = Posting::new(Limits::default());
        let t0 = Instant::now();
        for i in 0..(2 * MAX_BUCKETS as u32) {
            let ip = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            let _ = p.take(ip, t0 + Duration::from_secs(60 + u64::from(i) / 64));
        }
        assert!(p.buckets.lock().unwrap().len() <= MAX_BUCKETS + 1);
    }

    #[test]
    fn forgetting_is_never_limited() {
        assert!(never_limited("/api/v1/people/1bd52e/forget"));
        assert!(!never_limited("/api/v1/needs"));
        assert!(!never_limited("/api/v1/people/1bd52e/checkins"));
    }
}
