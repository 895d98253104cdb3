//! The web page the node serves itself (`/`, `/app.js`, `/style.css`): static files
//! compiled into the binary from `node/src/web/`, sent with a strict
//! Content-Security-Policy and an `ETag`, so a phone that opens the page again gets
//! `304 Not Modified` instead of the files. The page's language catalogues are served
//! at `/i18n/<lang>.json` (see docs/languages.md).

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::etag::{fresh, not_modified, set_tag, tag};

/// The page's Content-Security-Policy: nothing but this node, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// A file of the page's, with the Content-Security-Policy and no sniffing (no `ETag`).
pub(super) fn file(content_type: &'static str, body: &'static str) -> Response {
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

fn asset(headers: &HeaderMap, content_type: &'static str, body: &'static str) -> Response {
    let etag = tag(&[body.as_bytes()]);
    if fresh(headers, &etag) {
        return not_modified(&etag);
    }
    let mut r = file(content_type, body);
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

/// The page's language catalogues, by language code: one JSON file each in
/// `node/src/web/i18n/`. Adding a language is adding its file and one line here (and
/// its `<option>` in index.html's language switch).
pub const CATALOGUES: &[(&str, &str)] = &[
    ("en", include_str!("../web/i18n/en.json")),
    ("es", include_str!("../web/i18n/es.json")),
];

/// `GET /i18n/{lang}.json`: one language's catalogue.
pub(super) async fn catalogue(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let body = file
        .strip_suffix(".json")
        .and_then(|l| CATALOGUES.iter().find(|(code, _)| *code == l))
        .map(|(_, body)| *body);
    match body {
        Some(body) => asset(&headers, "application/json; charset=utf-8", body),
        None => (
            StatusCode::NOT_FOUND,
            "no such language catalogue: the node serves /i18n/en.json and /i18n/es.json",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    //! The catalogues against each other and against the page: a key missing in one
    //! language, or one the page uses that no catalogue has, fails here.
    use super::CATALOGUES;
    use std::collections::BTreeSet;

    fn keys(body: &str) -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_str(body).expect("catalogue is JSON");
        let map = v.as_object().expect("catalogue is an object");
        for (k, text) in map {
            assert!(text.is_string(), "{k}: not a string");
        }
        map.keys().cloned().collect()
    }

    /// Literal keys in the page: `t("key"`, `data-i18n="key"`, `data-i18n-...="key"`,
    /// and `"data-i18n": "key"` / `"data-i18n-placeholder": "key"` in app.js.
    fn used() -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let js = include_str!("../web/app.js");
        let html = include_str!("../web/index.html");
        for (src, starts) in [
            (
                js,
                &["t(\"", "\"data-i18n\": \"", "\"data-i18n-placeholder\": \""][..],
            ),
            (
                html,
                &[
                    "data-i18n=\"",
                    "data-i18n-placeholder=\"",
                    "data-i18n-aria-label=\"",
                ][..],
            ),
        ] {
            for start in starts {
                for (at, _) in src.match_indices(start) {
                    // `t(` itself, not the end of `get(` or `.split(`.
                    let before = src[..at].chars().next_back().unwrap_or(' ');
                    if before.is_alphanumeric() || before == '_' || before == '.' {
                        continue;
                    }
                    let rest = &src[at + start.len()..];
                    let key: String = rest.chars().take_while(|c| *c != '"').collect();
                    // A prefix completed at run time ("cat." + name) is not a key.
                    if !key.ends_with('.') {
                        out.insert(key);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_catalogue_has_the_same_keys() {
        let en = keys(CATALOGUES[0].1);
        for (code, body) in CATALOGUES {
            let k = keys(body);
            let missing: Vec<_> = en.difference(&k).collect();
            let extra: Vec<_> = k.difference(&en).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{code}.json: missing {missing:?}, not in en.json {extra:?}"
            );
        }
    }

    #[test]
    fn every_key_the_page_uses_is_in_the_catalogues() {
        let used = used();
        assert!(used.len() > 100, "found only {} keys", used.len());
        let en = keys(CATALOGUES[0].1);
        let missing: Vec<_> = used.difference(&en).collect();
        assert!(
            missing.is_empty(),
            "keys used by the page but not in en.json: {missing:?}"
        );
    }

    #[test]
    fn every_language_is_on_the_switch() {
        let html = include_str!("../web/index.html");
        for (code, _) in CATALOGUES {
            assert!(
                html.contains(&format!("<option value=\"{code}\"")),
                "{code} has a catalogue but no <option> in index.html's #lang switch"
            );
        }
    }
}
