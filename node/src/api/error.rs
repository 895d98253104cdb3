//! How every failure becomes an HTTP answer: [`ApiError`] (a status, a short
//! machine-readable code and a sentence for people, as `{ "error", "detail" }`), what
//! each kind of refusal (bad input, bad JSON, a refused or unstorable write) maps to,
//! and [`blocking`], which runs engine work off the async workers.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::doors::input::InputError;
use crate::engine::IngestError;

/// An API error: HTTP status, a short machine-readable code, a sentence for people.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    error: &'static str,
    detail: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.error, "detail": self.detail })),
        )
            .into_response()
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e.status() {
            s if s == StatusCode::PAYLOAD_TOO_LARGE => s,
            s if s == StatusCode::UNSUPPORTED_MEDIA_TYPE => s,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "bad_json", e.body_text())
    }
}

/// The API's (and CLI's) name for a protocol field, so an error names what the user
/// typed.
fn input_name(field: &str) -> &str {
    match field {
        "quantity" => "qty",
        "place.label" => "place",
        "place.lat" => "lat",
        "place.lon" => "lon",
        "text" => "details",
        other => other,
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", e.body_text())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            // A local write that breaks a limit was never stored: say what to fix, not
            // which event id it would have had.
            IngestError::Invalid(aidmesh_protocol::ValidationError::Field {
                field,
                problem,
                ..
            }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("{}: {problem}", input_name(field)),
            ),
            IngestError::Invalid(v) => {
                // The refused write was never stored: drop the "event <id>: " prefix.
                let text = v.to_string();
                let detail = match text.strip_prefix("event ").and_then(|t| t.split_once(": ")) {
                    Some((_, rest)) => rest.to_string(),
                    None => text,
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", detail)
            }
            IngestError::Store(s @ crate::store::StoreError::DiskFull(_)) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "disk_full", s.to_string())
            }
            IngestError::Store(s) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", s.to_string())
            }
            e @ IngestError::OverQuota { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "daily_quota", e.to_string())
            }
        }
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Runs blocking engine work (validation, fsync) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", e.to_string()))
}
