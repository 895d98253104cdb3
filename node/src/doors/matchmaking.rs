//! `GET /api/v1/match`, minus the HTTP: reading its query (`limit`, `per_need`,
//! `cursor`) with errors that name the parameter, and building one bounded page of
//! matches from the board. The matching itself is `aidmesh_protocol::matching`.
//!
//! A page holds at most [`MAX_LIMIT`] needs with at most
//! [`aidmesh_protocol::matching::MAX_PER_NEED`] offers each, so the answer and the
//! memory behind it stay small however crowded the board is. Building a page folds the
//! board and ranks candidates: seconds of CPU on a big board would stall the async
//! workers, so the handler runs [`page`] on a blocking thread.

use aidmesh_protocol::matching::{Matcher, NeedKey, DEFAULT_PER_NEED, MAX_PER_NEED};
use aidmesh_protocol::view::Item;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::doors::input::InputError;
use crate::engine::Engine;

/// Needs per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;

/// The most needs on one page.
pub const MAX_LIMIT: usize = 100;

/// The query of `GET /api/v1/match`, as typed (strings, so that an error can say
/// which parameter was wrong and what is valid).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchQuery {
    /// Needs per page, 1..=[`MAX_LIMIT`].
    pub limit: Option<String>,
    /// Offers listed per need, 0..=[`MAX_PER_NEED`].
    pub per_need: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A checked `GET /api/v1/match` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchParams {
    /// Needs on the page.
    pub limit: usize,
    /// Offers per need.
    pub per_need: usize,
    /// The page starts after this need.
    pub after: Option<NeedKey>,
}

fn number(
    field: &'static str,
    value: Option<&str>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, InputError> {
    let Some(v) = value else {
        return Ok(default);
    };
    let bad = || InputError {
        field,
        code: "out_of_range",
        detail: format!(
            "'{v}' is not allowed; give a whole number from {} to {} (default {default})",
            range.start(),
            range.end()
        ),
    };
    // Digits only (`usize::from_str` would take "+5"); a huge number is out of range.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match v.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

impl MatchQuery {
    /// Checks the bounds and the cursor.
    pub fn parse(&self) -> Result<MatchParams, InputError> {
        let limit = number("limit", self.limit.as_deref(), DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
        let per_need = number(
            "per_need",
            self.per_need.as_deref(),
            DEFAULT_PER_NEED,
            0..=MAX_PER_NEED,
        )?;
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) => Some(NeedKey::parse(c).ok_or_else(|| {
                InputError {
                    field: "cursor",
                    code: "invalid",
                    detail: "not a cursor from this API; pass the previous page's next_cursor \
                         as it was given, or leave cursor out for the first page"
                        .into(),
                }
            })?),
        };
        Ok(MatchParams {
            limit,
            per_need,
            after,
        })
    }
}

/// One page of matches as JSON bytes, each need and offer drawn by `item` (the API's
/// item shape), offers with their `distance_m`. Blocking: folds the board.
///
/// Written one match at a time: the largest page is 2,100 items, and a tree of JSON
/// values for all of them at once would weigh several times the answer.
pub fn page(
    engine: &Engine,
    p: &MatchParams,
    item: fn(&Item) -> Value,
) -> Result<Vec<u8>, serde_json::Error> {
    let now = engine.now_ms();
    let items = engine.with_view(|v| v.items(now));
    let matcher = Matcher::new(&items);
    let page = matcher.page(p.after.as_ref(), p.limit, p.per_need);
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(b"{\"matches\":[");
    for (n, m) in page.matches.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let offers: Vec<Value> = m
            .offers
            .iter()
            .map(|c| {
                let mut o = item(c.offer);
                o["distance_m"] = json!(c.distance_m.map(|d| d.round()));
                // What more urgent needs left of the offer's quantity (allocation).
                o["left"] = json!(c.left);
                o
            })
            .collect();
        let one = json!({
            "need": item(m.need),
            "offers": offers,
            "offers_total": m.total,
            "promised": m.promised.map(|id| id.to_hex()),
        });
        serde_json::to_writer(&mut out, &one)?;
    }
    out.extend_from_slice(b"],");
    let rest = json!({
        "needs_total": page.needs_total,
        "next_cursor": page.next.map(|k| k.to_string()),
        "limit": p.limit,
        "per_need": p.per_need,
    });
    // `rest` is an object: its fields close the answer (after its opening brace).
    let rest = serde_json::to_vec(&rest)?;
    out.extend_from_slice(rest.get(1..).unwrap_or(b"}"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<&str>, per_need: Option<&str>, cursor: Option<&str>) -> MatchQuery {
        MatchQuery {
            limit: limit.map(Into::into),
            per_need: per_need.map(Into::into),
            cursor: cursor.map(Into::into),
        }
    }

    #[test]
    fn defaults_bounds_and_errors_that_name_the_parameter() {
        let p = q(None, None, None).parse().expect("defaults");
        assert_eq!((p.limit, p.per_need, p.after), (20, 5, None));
        let p = q(Some("100"), Some("0"), None).parse().expect("bounds");
        assert_eq!((p.limit, p.per_need), (100, 0));
        for (query, field) in [
            (q(Some("0"), None, None), "limit"),
            (q(Some("101"), None, None), "limit"),
            (q(Some("-1"), None, None), "limit"),
            (q(Some("+5"), None, None), "limit"),
            (q(Some(""), None, None), "limit"),
            (q(Some("99999999999999999999999"), None, None), "limit"),
            (q(None, Some("21"), None), "per_need"),
            (q(None, Some("two"), None), "per_need"),
            (q(None, None, Some("abc")), "cursor"),
        ] {
            let e = query.parse().expect_err("refused");
            assert_eq!(e.field, field, "{query:?}: {e}");
        }
    }
}
