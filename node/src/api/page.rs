//! The web page the node serves itself (`/`, `/app.js`, `/style.css`): static files
//! compiled into the binary from `node/src/web/`, sent with a strict
//! Content-Security-Policy.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page's Content-Security-Policy: nothing but this node, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub(super) async fn html() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    )
}

/// `GET /app.js`.
pub(super) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    )
}

/// `GET /style.css`.
pub(super) async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../web/style.css"))
}
