//! The town's offline map: `GET /api/v1/map` (what is installed: the tiles' url,
//! bounds, centre, zooms, size) and `GET /map/tiles.pmtiles` (the PMTiles file itself,
//! with HTTP range requests as the pmtiles JS reader makes them: `206 Partial Content`
//! for `Range: bytes=a-b`, `416` for a range past the end, `Accept-Ranges`, a strong
//! `ETag` honoured by `If-None-Match` and `If-Range`). Both answer `404` with the code
//! `no_map` and how to add one when none is installed.
//!
//! The file is installed by `aidmesh map add` (see [`crate::node::map`]) straight into
//! the data directory, atomically: each request opens the file and looks at its inode,
//! size and time, and reads its header again only when they changed. A request that
//! opened the old file goes on reading the old file, whole, after a replacement.
//!
//! Not tower-http's `ServeFile`: it answers ranges but sends no `ETag` and ignores
//! `If-None-Match`, which the reader relies on to notice a replaced map. The guards of
//! every route (Host, connection budgets) apply here as everywhere.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, IF_RANGE, RANGE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::{blocking, ApiError, ApiResult};
use super::etag::{fresh, not_modified, set_tag, tag};
use super::AppState;
use crate::doors::overview::{self, Pin};
use crate::doors::pmtiles::{inspect_file, MapInfo};
use crate::node::map::{map_path, MAP_FILE};

/// The tiles' URL.
pub const TILES_URL: &str = "/map/tiles.pmtiles";
/// Bytes read from the file per chunk of an answer.
const CHUNK: usize = 64 * 1024;

impl AppState {
    /// Serving the map installed in data directory `dir` (none without this).
    pub fn with_map_dir(mut self, dir: PathBuf) -> Self {
        self.map = Arc::new(Maps {
            file: Some(map_path(&dir)),
            seen: Mutex::default(),
        });
        self
    }
}

/// Where the map is, and what its file showed when last looked at.
#[derive(Default)]
pub(super) struct Maps {
    file: Option<PathBuf>,
    seen: Mutex<Option<Arc<Seen>>>,
}

/// A map file as read once: which file it was (device, inode, size, time), what it
/// shows and its tag.
struct Seen {
    key: [i64; 5],
    info: MapInfo,
    etag: String,
}

/// An open map file and what it shows.
struct Open {
    file: std::fs::File,
    seen: Arc<Seen>,
}

fn no_map() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_map",
        "no map is installed on this hub: make or download a town's PMTiles file while the \
         internet works and install it on the hub with `aidmesh map add FILE` (see docs/map.md)",
    )
}

impl Maps {
    /// Opens the installed map, reading its header again if the file changed.
    fn open(&self) -> Result<Open, ApiError> {
        let path = self.file.as_ref().ok_or_else(no_map)?;
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_map()),
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let m = file.metadata().map_err(|e| unreadable(e.to_string()))?;
        let key = [
            m.dev() as i64,
            m.ino() as i64,
            m.len() as i64,
            m.mtime(),
            m.mtime_nsec(),
        ];
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = seen.as_ref().filter(|s| s.key == key) {
            return Ok(Open {
                file,
                seen: s.clone(),
            });
        }
        let info = inspect_file(&file).map_err(|e| unreadable(e.to_string()))?;
        // The tag: which file this is, and its first bytes (header, root directory).
        let mut head = vec![0; (m.len().min(16_384)) as usize];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)
            .map_err(|e| unreadable(e.to_string()))?;
        let key_bytes: Vec<u8> = key.iter().flat_map(|k| k.to_le_bytes()).collect();
        let etag = tag(&[b"pmtiles", &key_bytes, &head]);
        let s = Arc::new(Seen { key, info, etag });
        *seen = Some(s.clone());
        Ok(Open { file, seen: s })
    }
}

/// The printed board's overview (issue 27): drawn from the installed map's tiles
/// around `pins`, or `None` when no map is installed, it is unreadable, or no pin is
/// inside it; with the pins drawn ([`overview::render`]). Blocking: reads the file.
pub(super) fn overview(maps: &Maps, pins: &[Pin], label: &str) -> Option<(String, Vec<usize>)> {
    use std::os::unix::fs::FileExt;
    if pins.is_empty() {
        return None;
    }
    let open = maps.open().ok()?;
    let len = open.seen.info.bytes;
    overview::render(
        &open.seen.info,
        pins,
        |offset, length| {
            let end = offset.checked_add(length)?;
            if end > len {
                return None;
            }
            let mut buf = vec![0; usize::try_from(length).ok()?];
            open.file.read_exact_at(&mut buf, offset).ok()?;
            Some(buf)
        },
        label,
    )
}

fn unreadable(why: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "map_unreadable",
        format!(
            "this hub's map file is unreadable ({why}); install a good one with `aidmesh map add FILE`"
        ),
    )
}

/// `GET /api/v1/map`: what map is installed.
pub(super) async fn info(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    let maps = st.map.clone();
    let open = blocking(move || maps.open()).await??;
    let s = &open.seen;
    let etag = tag(&[b"map info", s.etag.as_bytes()]);
    if fresh(&headers, &etag) {
        return Ok(not_modified(&etag));
    }
    let i = &s.info;
    let mut r = Json(json!({
        "url": TILES_URL,
        "name": i.name.as_deref().unwrap_or(MAP_FILE),
        "attribution": i.attribution,
        "bounds": i.bounds(),
        "center": i.center(),
        "center_zoom": i.header.center_zoom,
        "min_zoom": i.header.min_zoom,
        "max_zoom": i.header.max_zoom,
        "bytes": i.bytes,
        "tile_type": i.tile_type(),
        "etag": s.etag.trim_matches('"'),
    }))
    .into_response();
    set_tag(&mut r, &etag);
    Ok(r)
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// The whole file (no range, or one this answer ignores: several ranges, bad syntax).
    Full,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Nothing of the file matches.
    Unsatisfiable,
}

fn parse_range(value: &str, len: u64) -> Ranged {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return Ranged::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Ranged::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let num = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(len.saturating_sub(n), len - 1)
            }
        }
        // bytes=a- and bytes=a-b.
        (false, Some(start), end) if b.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|e| e < start) {
                return Ranged::Full;
            }
            if start >= len {
                return Ranged::Unsatisfiable;
            }
            Ranged::Part(start, end.map_or(len - 1, |e| e.min(len - 1)))
        }
        _ => Ranged::Full,
    }
}

/// `GET /map/tiles.pmtiles`: the map file, whole or a range of it.
pub(super) async fn tiles(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    let maps = st.map.clone();
    let open = blocking(move || maps.open()).await??;
    let etag = open.seen.etag.clone();
    let len = open.seen.info.bytes;
    if fresh(&headers, &etag) {
        let mut r = not_modified(&etag);
        r.headers_mut()
            .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        return Ok(r);
    }
    // If-Range: a range only of the very file the client holds (a strong tag); a date
    // or another tag gets the whole file.
    let if_range_ok = headers
        .get(IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let ranged = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if if_range_ok => parse_range(v, len),
        _ => Ranged::Full,
    };
    let (status, start, end) = match ranged {
        Ranged::Full => (StatusCode::OK, 0, len.saturating_sub(1)),
        Ranged::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ranged::Unsatisfiable => {
            let mut r = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
            common_headers(&mut r, &etag);
            return Ok(r);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let mut file = open.file;
    blocking(move || file.seek(SeekFrom::Start(start)).map(|_| file))
        .await?
        .map_err(|e| unreadable(e.to_string()))
        .map(|file| {
            let mut r = Response::new(body(file, count));
            *r.status_mut() = status;
            let h = r.headers_mut();
            h.insert(CONTENT_LENGTH, HeaderValue::from(count));
            if status == StatusCode::PARTIAL_CONTENT {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    h.insert(CONTENT_RANGE, v);
                }
            }
            common_headers(&mut r, &etag);
            r
        })
}

fn common_headers(r: &mut Response, etag: &str) {
    set_tag(r, etag);
    let h = r.headers_mut();
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.pmtiles"),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Kept by the phone, asked about again each time: the map may be replaced.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// `count` bytes of `file` from where it stands, read in chunks off the async workers.
fn body(file: std::fs::File, count: u64) -> Body {
    let stream = futures::stream::unfold((Some(file), count), |(file, left)| async move {
        let mut file = file?;
        if left == 0 {
            return None;
        }
        let want = left.min(CHUNK as u64) as usize;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; want];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => Some((
                Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                (None, 0),
            )),
            Ok(Ok((file, buf))) => {
                let n = buf.len() as u64;
                Some((Ok(Bytes::from(buf)), (Some(file), left - n)))
            }
            Ok(Err(e)) => Some((Err(e), (None, 0))),
            Err(e) => Some((Err(std::io::Error::other(e)), (None, 0))),
        }
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Ranged};

    #[test]
    fn ranges_as_the_rfc_says() {
        let r = |v| parse_range(v, 100);
        assert_eq!(r("bytes=0-9"), Ranged::Part(0, 9));
        assert_eq!(r("bytes=90-"), Ranged::Part(90, 99));
        assert_eq!(r("bytes=90-500"), Ranged::Part(90, 99));
        assert_eq!(r("bytes=-10"), Ranged::Part(90, 99));
        assert_eq!(r("bytes=-500"), Ranged::Part(0, 99));
        assert_eq!(r("bytes=100-"), Ranged::Unsatisfiable);
        assert_eq!(r("bytes=100-200"), Ranged::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Ranged::Unsatisfiable);
        assert_eq!(r("bytes=9-0"), Ranged::Full);
        assert_eq!(r("bytes=0-1,5-6"), Ranged::Full);
        assert_eq!(r("items=0-1"), Ranged::Full);
        assert_eq!(r("bytes=x-1"), Ranged::Full);
        assert_eq!(r("bytes=+1-2"), Ranged::Full);
        assert_eq!(r("bytes=99999999999999999999999-"), Ranged::Full);
    }
}
