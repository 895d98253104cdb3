//! Taking back a flood (issue 24): which other machines posted through this hub in the
//! last few days, and erasing everything one of them posted. The hub is the author of
//! what phones post through it, so only this hub can take it back, and an erasure
//! (a redaction) removes the posts' bytes at every hub, not only from the board.
//! For the hub computer (loopback) or the volunteer PIN: the addresses of phones are
//! not shown to anyone else.

use std::collections::HashMap;
use std::net::SocketAddr;

use aidmesh_protocol::body::Redaction;
use aidmesh_protocol::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::error::{blocking, ApiResult};
use super::pin::Guarded;
use super::AppState;
use crate::doors::input::FloodInput;

/// `GET /api/v1/flood`: the addresses that posted through this hub in the last days,
/// most posts first.
pub(super) async fn list(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult {
    st.pins.check(from, &headers, Guarded::Flood)?;
    let engine = st.engine.clone();
    let notes = blocking(move || engine.store().posted_from())
        .await?
        .map_err(crate::engine::IngestError::from)?;
    let mut by: HashMap<String, (u64, u64, u64)> = HashMap::new();
    for (ms, _, addr) in notes {
        let e = by.entry(addr).or_insert((0, u64::MAX, 0));
        e.0 += 1;
        e.1 = e.1.min(ms);
        e.2 = e.2.max(ms);
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    let kept_days = super::posting::POSTED_FROM_KEPT_MS / 86_400_000;
    Ok(Json(json!({
        "kept_days": kept_days,
        "addresses": rows.iter().map(|(a, (n, first, last))| json!({
            "address": a, "posts": n, "first_ms": first, "last_ms": last,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `POST /api/v1/flood/withdraw`: erases every post of this hub's that came from one
/// address (and is still held), so it leaves the board and every hub's disk.
pub(super) async fn withdraw(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<FloodInput>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    st.pins.check(from, &headers, Guarded::Flood)?;
    let Json(body) = body?;
    let (addr, since) = body.into_target()?;
    let addr = addr.to_string();
    let shown = addr.clone();
    let engine = st.engine.clone();
    let (erased, already) = blocking(move || {
        let mut targets = Vec::new();
        let mut already = 0usize;
        for (ms, id, a) in engine.store().posted_from()? {
            if a != addr || ms < since {
                continue;
            }
            if engine.store().contains(&id)? {
                targets.push(id);
            } else {
                already += 1;
            }
        }
        let erased = engine.post_all(targets.into_iter().map(|target| {
            Body::Redaction(Redaction {
                target,
                reason: "withdrawn by the hub: posted in a flood".into(),
            })
        }))?;
        Ok::<_, crate::engine::IngestError>((erased, already))
    })
    .await??;
    tracing::warn!(from = %shown, erased, "flood: posts from one address taken back");
    Ok(Json(json!({ "withdrawn": erased, "gone_already": already })).into_response())
}
