//! The SMS gateway over HTTP (`docs/api.md`, "SMS gateway"): its status, the review
//! list and the actions on it, welfare rounds by text. Phone numbers are personal
//! data: every endpoint is behind the volunteer-PIN guard, like welfare records.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::error::{blocking, ApiError, ApiResult};
use super::page::file;
use super::pin::Volunteer;
use super::AppState;
use crate::sms::{Gateway, Resolve, ResolveError};

impl AppState {
    /// With this SMS gateway (`up --sms-gateway`).
    pub fn with_sms(mut self, gateway: Option<Arc<Gateway>>) -> Self {
        self.sms = gateway;
        self
    }
}

/// The routes under `/api/v1/sms`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sms/status", get(status))
        .route("/api/v1/sms/review", get(review))
        .route("/api/v1/sms/review/{id}", post(resolve))
        .route("/api/v1/sms/round", post(round))
        // The panel's files, with the page's Content-Security-Policy. They hold no data
        // themselves: what they show comes from the guarded API.
        .route(
            "/sms",
            get(|| async { file("text/html; charset=utf-8", include_str!("../web/sms.html")) }),
        )
        .route(
            "/sms.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_str!("../web/sms.js"),
                )
            }),
        )
}

fn gateway(st: &AppState) -> Result<Arc<Gateway>, ApiError> {
    st.sms.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_sms_gateway",
            "this node runs no SMS gateway; start it with aidmesh up --sms-gateway /etc/gammu-smsdrc (docs/sms.md)",
        )
    })
}

/// `GET /api/v1/sms/status`: `{"gateway": false}` on a node without one.
async fn status(State(st): State<AppState>, _: Volunteer) -> ApiResult {
    Ok(match &st.sms {
        Some(g) => Json(g.status()).into_response(),
        None => Json(json!({ "gateway": false })).into_response(),
    })
}

/// `GET /api/v1/sms/review`: texts waiting for a person, oldest first.
async fn review(State(st): State<AppState>, _: Volunteer) -> ApiResult {
    let g = gateway(&st)?;
    Ok(Json(json!({ "texts": g.review() })).into_response())
}

/// `POST /api/v1/sms/review/{id}`: `{"action": "need" | "offer" | "dismiss", ...}`.
async fn resolve(
    State(st): State<AppState>,
    _: Volunteer,
    Path(id): Path<String>,
    body: Result<Json<Resolve>, JsonRejection>,
) -> ApiResult {
    let g = gateway(&st)?;
    let Json(r) = body?;
    let done = blocking(move || g.resolve(&id, &r)).await?;
    match done {
        Ok(Some(event)) => Ok((
            StatusCode::CREATED,
            Json(json!({ "id": event.to_hex(), "short_id": event.short() })),
        )
            .into_response()),
        Ok(None) => Ok(Json(json!({ "dismissed": true })).into_response()),
        Err(e @ ResolveError::NotFound(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            e.to_string(),
        )),
        Err(ResolveError::Invalid(d)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", d))
        }
        Err(ResolveError::Ingest(e)) => Err(e.into()),
        Err(e @ ResolveError::Db(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            e.to_string(),
        )),
    }
}

/// `POST /api/v1/sms/round`: texts everyone due a check-in who has a phone.
async fn round(State(st): State<AppState>, _: Volunteer) -> ApiResult {
    let g = gateway(&st)?;
    let r = blocking(move || g.round()).await?;
    let (queued, no_number) =
        r.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    Ok(Json(json!({ "queued": queued, "no_usable_number": no_number })).into_response())
}
