//! Conditional answers: the `ETag` of an answer that depends on the store, and the
//! `304 Not Modified` for a request whose `If-None-Match` already names it. A tag is
//! made from the engine's version (which changes with every stored or erased event,
//! and at each start), the delivery generation, the query, and a time step (items
//! expire), so the board need not be folded or serialised to answer "unchanged".

use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use super::AppState;

/// Items expire with time, not only with events: a validator is good for at most this
/// long, so an expired item leaves a page's board within this time.
pub const EXPIRY_STEP_MS: u64 = 5 * 60_000;

/// An entity tag over `parts` (length-prefixed, so parts cannot run into each other).
pub(super) fn tag(parts: &[&[u8]]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    format!("\"{}\"", &h.finalize().to_hex()[..24])
}

/// Whether the request's `If-None-Match` names `tag` (or `*`).
pub(super) fn fresh(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

/// The tag of an answer that depends on the store, the time step and `parts`.
///
/// Not the store's digest: that sorts and hashes every held id after each change,
/// at 100,000 events a quarter of a core when asked 50 times a second (the bench's
/// status poll), which phones refreshing while gossip arrives would do.
pub(super) async fn store_tag(st: &AppState, parts: &[&str]) -> Result<String, ApiError> {
    let (boot, generation) = st.engine.version();
    let (boot, generation) = (boot.to_le_bytes(), generation.to_le_bytes());
    let step = (st.engine.now_ms() / EXPIRY_STEP_MS).to_le_bytes();
    // Delivery counts and the roster change without the store (issue 11).
    let delivery = st.net.delivery.generation().to_le_bytes();
    let mut all: Vec<&[u8]> = vec![&boot, &generation, &step, &delivery];
    all.extend(parts.iter().map(|p| p.as_bytes()));
    Ok(tag(&all))
}

/// `304 Not Modified` for `tag`.
pub(super) fn not_modified(tag: &str) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    set_tag(&mut r, tag);
    r
}

pub(super) fn set_tag(r: &mut Response, tag: &str) {
    if let Ok(v) = HeaderValue::from_str(tag) {
        r.headers_mut().insert(ETAG, v);
        // Kept by a browser, but asked about again every time.
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
}

/// Answers 304 if the client holds the answer for this store state and `parts` (the
/// endpoint and its query), else awaits `answer` and tags a 200.
pub(super) async fn conditional(
    st: &AppState,
    headers: &HeaderMap,
    parts: &[&str],
    answer: impl std::future::Future<Output = ApiResult>,
) -> ApiResult {
    let tag = store_tag(st, parts).await?;
    if fresh(headers, &tag) {
        return Ok(not_modified(&tag));
    }
    let mut r = answer.await?;
    if r.status() == StatusCode::OK {
        set_tag(&mut r, &tag);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_the_tag_or_star() {
        let t = tag(&[b"a", b"b"]);
        assert_ne!(t, tag(&[b"ab"]), "parts are length-prefixed");
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(fresh(&h(&t), &t));
        assert!(fresh(&h(&format!("\"x\", W/{t}")), &t));
        assert!(fresh(&h("*"), &t));
        assert!(!fresh(&h("\"other\""), &t));
        assert!(!fresh(&HeaderMap::new(), &t));
    }
}
