//! The web page the node serves itself (`/`, `/app.js`, `/style.css`): static files
//! compiled into the binary from `node/src/web/`, sent with a strict
//! Content-Security-Policy and an `ETag`, so a phone that opens the page again gets
//! `304 Not Modified` instead of the files.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::live::{fresh, not_modified, set_tag, tag};

/// The page's Content-Security-Policy: nothing but this node, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(headers: &HeaderMap, content_type: &'static str, body: &'static str) -> Response {
    let etag = tag(&[body.as_bytes()]);
    if fresh(headers, &etag) {
        return not_modified(&etag);
    }
    let mut r = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    set_tag(&mut r, &etag);
    r
}

/// `GET /`.
pub(super) async fn html(headers: HeaderMap) -> Response {
    asset(
        &headers,
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    )
}

/// `GET /app.js`.
pub(super) async fn js(headers: HeaderMap) -> Response {
    asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    )
}

/// `GET /style.css`.
pub(super) async fn css(headers: HeaderMap) -> Response {
    asset(
        &headers,
        "text/css; charset=utf-8",
        include_str!("../web/style.css"),
    )
}
