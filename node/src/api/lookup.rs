//! Finding the one record a person means by an id prefix (or, for people, a name):
//! the prefix check, and the answers when nothing or several things match.

use axum::http::StatusCode;

use super::error::ApiError;

/// `prefix` trimmed and lower-cased, if it can be an id prefix (at least 6 hex
/// characters); else 400 `invalid_id`.
pub(super) fn id_prefix(prefix: &str) -> Result<String, ApiError> {
    let p = prefix.trim().to_lowercase();
    if p.len() < 6 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("'{prefix}' is not an id: give at least 6 hex characters of it"),
        ));
    }
    Ok(p)
}

/// The one match of a look-up; 404 `not_found` saying `none` when nothing matched,
/// 409 `code` saying `many` (given the matches) when several did.
pub(super) fn the_one<T>(
    found: Vec<T>,
    none: impl FnOnce() -> String,
    code: &'static str,
    many: impl FnOnce(&[T]) -> String,
) -> Result<T, ApiError> {
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", none())),
        _ => Err(ApiError::new(StatusCode::CONFLICT, code, many(&found))),
    }
}

/// The matches named for a person to choose from: `label`s joined by "; ".
pub(super) fn listed<T>(found: &[T], label: impl Fn(&T) -> String) -> String {
    found.iter().map(label).collect::<Vec<_>>().join("; ")
}
