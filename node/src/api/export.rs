//! `GET /api/v1/export?format=csv|hxl|geojson|pfif`: the board (and, for the hub
//! computer or PIN holders, the consenting part of the welfare register) as a file for
//! responders. The formats themselves are in [`crate::doors::export`].

use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::error::{blocking, ApiResult};
use super::pin::Guarded;
use super::AppState;
use crate::doors::export::{render, Snapshot};
use crate::doors::input::ExportQuery;

/// `GET /api/v1/export`.
pub(super) async fn export(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let format = q.format()?;
    if format.is_welfare() {
        st.pins.check(from, &headers, Guarded::Welfare)?;
    }
    let now = st.engine.now_ms();
    let engine = st.engine.clone();
    // A big board takes a while to write out: off the async workers.
    let bytes = blocking(move || {
        let node = engine.identity().author();
        let snap = engine
            .with_view(|v| Snapshot::take(v, now, node, engine.community(), format.is_welfare()));
        (snap.file_name(format), render(format, &snap))
    })
    .await?;
    let (file, bytes) = bytes;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            // Welfare records must not sit in a shared cache.
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
