//! How every failure becomes an HTTP answer: [`ApiError`] (a status, a short
//! machine-readable code and a sentence for people, as `{ "error", "detail" }`; a
//! refusal of one field also names the `field` and what is wrong with it as a stable
//! `code`, so a page can say it in its own language at that field), what
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
    /// The field refused (as the API names it) and what is wrong with it.
    field: Option<(String, &'static str)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
            field: None,
        }
    }

    /// The same, naming the `field` it concerns and what is wrong as `code`.
    pub(crate) fn at(mut self, field: &str, code: &'static str) -> Self {
        self.field = Some((field.to_string(), code));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error, "detail": self.detail });
        if let Some((field, code)) = self.field {
            body["field"] = json!(field);
            body["code"] = json!(code);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.to_string()).at(e.field, e.code)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e.status() {
            s if s == StatusCode::PAYLOAD_TOO_LARGE => s,
            s if s == StatusCode::UNSUPPORTED_MEDIA_TYPE => s,
            _ => StatusCode::BAD_REQUEST,
        };
        let text = e.body_text();
        let named = crate::doors::input::json_refusal_field(&text);
        let out = ApiError::new(status, "bad_json", text);
        match named {
            Some((field, code)) => out.at(&field, code),
            None => out,
        }
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
        "check_every_secs" => "every",
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
                code,
                problem,
                ..
            }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("{}: {problem}", input_name(field)),
            )
            .at(input_name(field), code),
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
