//! The web page the node serves itself (`/`, `/app.js`, `/style.css`): static files
//! compiled into the binary from `node/src/web/`, sent with a strict
//! Content-Security-Policy and an `ETag`, so a phone that opens the page again gets
//! `304 Not Modified` instead of the files. The page's language catalogues are served
//! at `/i18n/<lang>.json` (see docs/languages.md).
//!
//! The map view (issue 27) adds `/map` (the page, opened on its map tab), `/map.js`,
//! the vendored MapLibre and pmtiles scripts at `/vendor/<file>` and the street names'
//! glyphs at `/glyphs/<font>/<range>.pbf` (node/src/web/vendor/README.md). Those are
//! sent gzipped to a browser that takes gzip (all do): compressed once, at their first
//! request, and kept.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
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

/// `GET /map.js`: the map view (loaded by the page, it loads MapLibre when shown).
pub(super) async fn map_js(headers: HeaderMap) -> Response {
    MAP_JS.serve(&headers).await
}

/// A file of the map view's, served gzipped when the browser takes gzip.
pub(super) struct Packed {
    content_type: &'static str,
    body: &'static [u8],
    /// The gzipped body and the two entity tags (gzipped, as is), made at first use.
    packed: OnceLock<Arc<PackedBody>>,
}

struct PackedBody {
    gz: Vec<u8>,
    tag_gz: String,
    tag_plain: String,
}

/// How long a browser keeps a vendored file before asking again (then with its `ETag`,
/// answered `304` when unchanged): a day, so a new node version's files arrive the
/// next day at the latest, and a phone on the hub's Wi-Fi does not ask every time.
const VENDOR_MAX_AGE: &str = "public, max-age=86400";

impl Packed {
    const fn new(content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            content_type,
            body,
            packed: OnceLock::new(),
        }
    }

    async fn packed(&'static self) -> Arc<PackedBody> {
        if let Some(p) = self.packed.get() {
            return p.clone();
        }
        // MapLibre (1 MB) takes a noticeable moment on a Pi: not on the async threads.
        let body = self.body;
        let made = tokio::task::spawn_blocking(move || {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 3),
                flate2::Compression::best(),
            );
            // Writing to a Vec cannot fail.
            let gz = enc
                .write_all(body)
                .and_then(|()| enc.finish())
                .unwrap_or_default();
            PackedBody {
                tag_gz: tag(&[body, b"gzip"]),
                tag_plain: tag(&[body]),
                gz,
            }
        })
        .await;
        let made = match made {
            Ok(m) => m,
            // The compressing thread panicked (it cannot): send the file as it is.
            Err(_) => PackedBody {
                gz: Vec::new(),
                tag_gz: String::new(),
                tag_plain: tag(&[body]),
            },
        };
        self.packed.get_or_init(|| Arc::new(made)).clone()
    }

    async fn serve(&'static self, headers: &HeaderMap) -> Response {
        let p = self.packed().await;
        let gzip = !p.gz.is_empty() && takes_gzip(headers);
        let etag = if gzip { &p.tag_gz } else { &p.tag_plain };
        let mut r = if fresh(headers, etag) {
            not_modified(etag)
        } else {
            let body = if gzip {
                axum::body::Body::from(p.gz.clone())
            } else {
                axum::body::Body::from(self.body)
            };
            let mut r = file_bytes(self.content_type, body);
            if gzip {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            set_tag(&mut r, etag);
            r
        };
        let h = r.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(VENDOR_MAX_AGE),
        );
        r
    }
}

/// Whether the request's `Accept-Encoding` takes gzip (and does not refuse it: `q=0`).
fn takes_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Like [`file`], for bytes.
fn file_bytes(content_type: &'static str, body: axum::body::Body) -> Response {
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

static MAP_JS: Packed = Packed::new(
    "text/javascript; charset=utf-8",
    include_bytes!("../web/map.js"),
);

/// The vendored map scripts, by the name they are served at under `/vendor/`.
static VENDOR: [(&str, Packed); 4] = [
    (
        "maplibre-gl-csp.js",
        Packed::new(
            "text/javascript; charset=utf-8",
            include_bytes!("../web/vendor/maplibre-gl-csp.js"),
        ),
    ),
    (
        "maplibre-gl-csp-worker.js",
        Packed::new(
            "text/javascript; charset=utf-8",
            include_bytes!("../web/vendor/maplibre-gl-csp-worker.js"),
        ),
    ),
    (
        "maplibre-gl.css",
        Packed::new(
            "text/css; charset=utf-8",
            include_bytes!("../web/vendor/maplibre-gl.css"),
        ),
    ),
    (
        "pmtiles.js",
        Packed::new(
            "text/javascript; charset=utf-8",
            include_bytes!("../web/vendor/pmtiles.js"),
        ),
    ),
];

/// The font the map's style names (`text-font`), as MapLibre asks for it.
pub const GLYPH_FONT: &str = "Noto Sans Regular";

/// Its glyph ranges, by file name (node/src/web/vendor/README.md).
static GLYPHS: [(&str, Packed); 3] = [
    (
        "0-255.pbf",
        Packed::new(
            "application/x-protobuf",
            include_bytes!("../web/glyphs/noto-sans-regular/0-255.pbf"),
        ),
    ),
    (
        "256-511.pbf",
        Packed::new(
            "application/x-protobuf",
            include_bytes!("../web/glyphs/noto-sans-regular/256-511.pbf"),
        ),
    ),
    (
        "8192-8447.pbf",
        Packed::new(
            "application/x-protobuf",
            include_bytes!("../web/glyphs/noto-sans-regular/8192-8447.pbf"),
        ),
    ),
];

/// `GET /vendor/{file}`.
pub(super) async fn vendor(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match VENDOR.iter().find(|(name, _)| *name == file) {
        Some((_, f)) => f.serve(&headers).await,
        None => (
            StatusCode::NOT_FOUND,
            "no such file: the node serves the map's scripts listed in node/src/web/vendor/README.md",
        )
            .into_response(),
    }
}

/// `GET /glyphs/{font}/{range}`: the street names' letters. A range the node does not
/// have is a 404, and MapLibre draws the label without those characters.
pub(super) async fn glyphs(
    Path((font, range)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    // MapLibre asks for a "font stack" (fonts joined by commas): the first we have.
    let ours = font.split(',').any(|f| f.trim() == GLYPH_FONT);
    match GLYPHS.iter().find(|(name, _)| *name == range) {
        Some((_, f)) if ours => f.serve(&headers).await,
        _ => (
            StatusCode::NOT_FOUND,
            "no such glyphs: the node has Noto Sans Regular, ranges 0-255, 256-511 and 8192-8447",
        )
            .into_response(),
    }
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
        let map = include_str!("../web/map.js");
        let html = include_str!("../web/index.html");
        for (src, starts) in [
            (
                map,
                &["t(\"", "\"data-i18n\": \"", "\"data-i18n-placeholder\": \""][..],
            ),
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
    fn gzip_is_sent_only_to_a_browser_that_takes_it() {
        use axum::http::{header::ACCEPT_ENCODING, HeaderMap, HeaderValue};
        let takes = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(v));
            super::takes_gzip(&h)
        };
        assert!(takes("gzip, deflate, br, zstd"));
        assert!(takes("br;q=1.0, GZIP;q=0.5"));
        assert!(takes("*"));
        assert!(!takes("gzip;q=0"));
        assert!(!takes("gzip; q=0.000, deflate"));
        assert!(!takes("identity"));
        assert!(!takes("br"));
        assert!(!super::takes_gzip(&HeaderMap::new()));
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
