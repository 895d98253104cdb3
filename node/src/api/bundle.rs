//! Bundles over HTTP: `GET /api/v1/bundle` downloads every held event (or those of the
//! last `?since=` duration) as a bundle file; `POST /api/v1/bundle` (hub computer or
//! volunteer PIN, `Content-Type: application/octet-stream`) imports one. Both stream:
//! neither holds the whole file in memory. See [`crate::doors::bundle`].

use std::collections::HashMap;
use std::io::{Read, Write};

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::bundle::BundleError;
use aidmesh_protocol::view::HubView;
use aidmesh_protocol::AuthorId;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::error::{blocking, ApiError, ApiResult};
use super::pin::Importer;
use super::AppState;
use crate::doors::bundle::{self, BundleIoError, ImportReport};

/// Query of `GET /api/v1/bundle`.
#[derive(Deserialize)]
pub(super) struct BundleQuery {
    /// Only events stamped within this duration (e.g. `2d`).
    since: Option<String>,
}

/// Header carrying the number of events in a downloaded bundle.
pub const EVENTS_HEADER: &str = "x-aidmesh-events";

/// `GET /api/v1/bundle[?since=DURATION]`. The event count header goes to the hub
/// computer and PIN holders only: it rises with welfare writes (issue 24 item 9).
pub(super) async fn download(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    q: Result<Query<BundleQuery>, QueryRejection>,
) -> ApiResult {
    let counted = st.pins.allows(from, &headers);
    let Query(q) = q?;
    let since_ms = match &q.since {
        Some(s) => {
            let d = crate::doors::input::parse_duration("since", s)?;
            Some(
                st.engine
                    .now_ms()
                    .saturating_sub(d.as_millis().try_into().unwrap_or(u64::MAX)),
            )
        }
        None => None,
    };
    let engine = st.engine.clone();
    let ids = blocking(move || bundle::export_ids(&engine, since_ms))
        .await?
        .map_err(storage)?;
    let engine = st.engine.clone();
    bundle::community_key(&engine).map_err(io_error)?;
    let count = ids.len();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(WRITE_CHUNK),
        };
        if let Err(e) = bundle::export(&engine, &ids, &mut w) {
            // The client sees a cut-off body; an import of it says it is cut short.
            tracing::warn!(error = %e, "bundle download failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let name = file_name(st.engine.community(), st.engine.now_ms());
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if counted {
        h.insert(EVENTS_HEADER, HeaderValue::from(count));
    }
    Ok(resp)
}

/// `aidmesh-elm-street-20261130-1542.bundle`: the community and the time (UTC), in
/// characters every file system takes.
fn file_name(community: &str, now_ms: u64) -> String {
    let slug: String = community
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug.trim_matches('-');
    let t = aidmesh_protocol::calendar::Utc::from_ms(now_ms);
    format!(
        "aidmesh-{slug}-{:04}{:02}{:02}-{:02}{:02}.bundle",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

pub(super) const WRITE_CHUNK: usize = 64 * 1024;

/// A blocking writer that hands 64 KiB pieces to the response body.
pub(super) struct ChannelWriter {
    pub(super) tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub(super) buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::other("the download was closed"))
    }
}

/// A blocking reader over the request body's frames.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// `POST /api/v1/bundle`: the body is the bundle file.
pub(super) async fn upload(_: Importer, State(st): State<AppState>, body: Body) -> ApiResult {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let engine = st.engine.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let mut r = ChannelReader {
            rx,
            cur: Bytes::new(),
        };
        bundle::import(&engine, &mut r)
    });
    let mut frames = body.into_data_stream();
    // Once the importer has stopped (an error in the file) the rest is read and
    // dropped, up to DRAIN bytes: a client still sending when the answer comes and the
    // connection closes gets "broken pipe", not the error that names what is wrong.
    const DRAIN: usize = 64 << 20;
    let mut importing = true;
    let mut drained = 0usize;
    while let Some(frame) = frames.next().await {
        if !importing {
            match frame {
                Ok(b) if drained < DRAIN => drained += b.len(),
                _ => break,
            }
            continue;
        }
        let item = frame.map_err(|e| std::io::Error::other(format!("the upload broke off: {e}")));
        if item.is_err() {
            let _ = tx.send(item).await;
            break;
        }
        if tx.send(item).await.is_err() {
            importing = false;
        }
    }
    drop(tx);
    let report = worker
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", e.to_string()))?;
    let hubs = if report.new_authors.is_empty() {
        Vec::new()
    } else {
        st.engine.with_view(|v| v.hubs())
    };
    Ok(report_response(&report, &hubs))
}

/// What came in: the new events by kind (`{"need": 21, "person": 1}`), and by the hub
/// that made them, most first, named by its newest announcement where there is one.
fn came_in(r: &ImportReport, hubs: &[HubView]) -> (Value, Value) {
    let kinds: serde_json::Map<String, Value> = r
        .new_kinds
        .iter()
        .map(|(k, n)| {
            let name = BodyKind::from_code(*k).map_or("other", BodyKind::name);
            (name.to_string(), json!(n))
        })
        .collect();
    let mut newest: HashMap<AuthorId, &HubView> = HashMap::new();
    for h in hubs {
        let slot = newest.entry(h.author).or_insert(h);
        if h.at > slot.at {
            *slot = h;
        }
    }
    let mut from: Vec<(&AuthorId, &usize)> = r.new_authors.iter().collect();
    from.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let from: Vec<Value> = from
        .into_iter()
        .map(|(a, n)| {
            json!({
                "author": a.short(),
                "hub": newest.get(a).map(|h| h.hub.name.as_str()),
                "events": n,
            })
        })
        .collect();
    (Value::Object(kinds), Value::Array(from))
}

fn report_response(r: &ImportReport, hubs: &[HubView]) -> Response {
    let (kinds, from) = came_in(r, hubs);
    let mut body = json!({
        "new": r.new, "known": r.known, "refused": r.refused,
        "refused_reasons": r.reasons, "chunks": r.chunks, "created_ms": r.created_ms,
        "came_in": kinds, "from": from,
    });
    let Some(e) = &r.error else {
        return Json(body).into_response();
    };
    let (status, code) = match e {
        BundleIoError::Format(BundleError::NotABundle) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "not_a_bundle")
        }
        BundleIoError::Format(BundleError::OtherCommunity) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "other_community")
        }
        BundleIoError::Format(BundleError::Version(_)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "bundle_version")
        }
        BundleIoError::Format(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bundle_damaged"),
        BundleIoError::Read(_) => (StatusCode::BAD_REQUEST, "upload_failed"),
        BundleIoError::Store(crate::store::StoreError::DiskFull(_)) => {
            (StatusCode::INSUFFICIENT_STORAGE, "disk_full")
        }
        BundleIoError::NoKey | BundleIoError::Store(_) | BundleIoError::Write(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "storage")
        }
    };
    body["error"] = json!(code);
    body["detail"] = json!(r.error_text());
    (status, Json(body)).into_response()
}

fn storage(e: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string())
}

fn io_error(e: BundleIoError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_the_community_and_the_utc_time() {
        // 2026-11-30 15:42 UTC.
        assert_eq!(
            file_name("Elm Street", 1_796_053_320_000),
            "aidmesh-elm-street-20261130-1542.bundle"
        );
    }
}
