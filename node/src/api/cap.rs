//! `POST /api/v1/alerts/import`: a CAP file (the request body, `Content-Type:
//! application/xml`) posted as official alerts, from the hub computer or with the
//! volunteer PIN. Parsing is in [`crate::doors::cap`]; each alert goes through the engine's
//! one write path. A message already taken in (same sender and identifier) is not
//! posted twice.

use aidmesh_protocol::Body;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::cards::alert_json;
use super::error::{blocking, ApiError, ApiResult};
use super::pin::Importer;
use super::AppState;
use crate::doors::cap::{self, CapError};

/// Handler of `POST /api/v1/alerts/import`.
pub(super) async fn import(
    _: Importer,
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body.map_err(|e| {
        ApiError::new(
            e.status(),
            "too_large",
            format!(
                "a CAP alert is at most {} bytes: {}",
                cap::MAX_CAP_BYTES,
                e.body_text()
            ),
        )
    })?;
    let engine = st.engine.clone();
    blocking(move || -> ApiResult {
        let msg = cap::parse(&bytes, engine.now_ms()).map_err(refusal)?;
        let (mut posted, mut known) = (Vec::new(), Vec::new());
        for a in msg.alerts {
            let held = engine.with_view(|v| {
                v.alert_ids().copied().find(|id| {
                    v.alert(id)
                        .and_then(|x| x.official)
                        .is_some_and(|o| o.sender == a.sender && o.identifier == a.identifier)
                })
            });
            if let Some(id) = held {
                known.push(id.short());
                continue;
            }
            let e = engine.post(Body::OfficialAlert(a))?;
            if let Some(view) = engine.with_view(|v| v.alert(&e.id())) {
                posted.push(alert_json(&view, None));
            }
        }
        let status = if posted.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((
            status,
            Json(json!({ "cap_version": msg.version, "posted": posted, "already_posted": known })),
        )
            .into_response())
    })
    .await?
}

fn refusal(e: CapError) -> ApiError {
    let code = match &e {
        CapError::TooLarge(_) => "too_large",
        CapError::NotXml(_) | CapError::Dtd => "not_xml",
        CapError::NotCap { .. } => "not_cap",
        CapError::Missing(_) | CapError::Bad { .. } => "invalid_cap",
        CapError::NotForTheBoard(_) => "not_posted",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
}
