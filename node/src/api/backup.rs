//! `GET /api/v1/backup`: a backup of this hub while it runs (the format:
//! [`aidmesh_protocol::backup`]; what goes in: [`crate::doors::backup`]). The file
//! holds the hub's identity and the community key, so it is served to the hub
//! computer itself only, never to another machine, PIN or not. Streamed: memory is
//! bounded by one piece of the download.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::bundle::{ChannelWriter, WRITE_CHUNK};
use super::error::ApiError;
use super::AppState;
use crate::doors::backup;

/// `GET /api/v1/backup`.
pub(super) async fn download(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
) -> Result<Response, ApiError> {
    if !super::guard::is_local(from.ip()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "local_only",
            "a backup holds this hub's identity and is taken on the hub computer itself (aidmesh backup FILE), never from another machine",
        ));
    }
    let engine = st.engine.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let store = engine.store();
        let dir = store
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(WRITE_CHUNK),
        };
        match backup::write(store, &dir, &mut w) {
            Ok(done) => tracing::info!(events = done.events, bytes = done.bytes, "backup taken"),
            Err(e) => {
                // The client sees a cut-off body: the file has no end record, and
                // `aidmesh backup` (or a restore) says it is cut short.
                tracing::warn!(error = %e, "backup download failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"aidmesh.backup\""),
    );
    Ok(resp)
}
