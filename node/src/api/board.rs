//! The open board over HTTP: needs, offers, their status changes and matches, hubs and
//! alerts, and the category list. Anyone who can reach the API may read and post here
//! (that is the point of a hub); welfare records are elsewhere ([`super::welfare`]).

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::body::Status;
use aidmesh_protocol::view::{Item, ItemHead, ItemState};
use aidmesh_protocol::{Body, EventId};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::names::HubNames;
use super::{blocking, ApiError, ApiResult, AppState};
use crate::input::{
    AlertInput, AlertStatusInput, HubInput, ListKey, ListPage, ListQuery, ListStatus, PostInput,
    StatusInput,
};

pub(super) async fn categories() -> Response {
    Json(json!({ "categories": categories_value() })).into_response()
}

/// The category list, as JSON.
pub(super) fn categories_value() -> Vec<Value> {
    aidmesh_protocol::Category::ALL
        .iter()
        .map(
            |c| json!({ "name": c.name(), "description": c.description(), "cluster": c.cluster() }),
        )
        .collect()
}

/// JSON of one item, as documented in docs/api.md and docs/cli.md.
pub fn item_json(i: &Item) -> Value {
    let state = if i.expired { "expired" } else { i.state.name() };
    let history: Vec<Value> = i
        .history
        .iter()
        .map(|c| {
            json!({
                "id": c.id.to_hex(), "status": c.status.name(), "author": c.author.short(),
                "at": c.at.millis(), "by": c.by(), "note": c.text(), "applied": c.applied,
            })
        })
        .collect();
    let p = &i.post;
    let held = i.holder_change();
    json!({
        "id": i.id.to_hex(),
        "short_id": i.id.short(),
        "kind": i.kind.name(),
        "title": p.title,
        "category": p.category.name(),
        "urgency": p.urgency.name(),
        "status": state,
        "author": i.author.short(),
        "created_at": i.created.millis(),
        "arrived_at": i.arrived,
        "place": {
            "label": p.place.label,
            "lat": p.place.coords.map(|c| c.lat()),
            "lon": p.place.coords.map(|c| c.lon()),
        },
        "qty": p.quantity,
        "unit": p.unit,
        "contact": p.contact,
        "details": p.details,
        "expires_at": p.expires_ms,
        "holder": i.holder.map(|h| h.short()),
        "holder_name": held.and_then(|c| c.by()),
        "held_since": held.map(|c| c.at.millis()),
        "history": history,
    })
}

fn list(st: &AppState, kind: Option<BodyKind>, q: ListQuery) -> ApiResult {
    let rows = list_rows(st, kind, q)?;
    if rows.page.is_some() {
        return Ok(Json(rows.value(st)).into_response());
    }
    // Every item, unpaged: written out one card at a time. A JSON tree of the whole
    // list costs several KB per item (about 690 MB at 100,000 items, more than a Pi
    // Zero has); the text costs what it weighs. Same bytes as `Json(rows.value(..))`.
    let roster = super::delivery::Roster::of(st);
    let mut body = Vec::with_capacity(64 + rows.items.len() * 512);
    body.extend_from_slice(b"{\"items\":[");
    for (n, i) in rows.items.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        let card = super::delivery::item_value(st, &roster, i, &rows.names);
        // `Display` of a `Value` is the compact JSON `Json` writes.
        body.extend_from_slice(card.to_string().as_bytes());
    }
    body.extend_from_slice(b"]}");
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// The items of a list (or of one page of it), before they become JSON.
pub(super) struct ListRows {
    items: Vec<Item>,
    names: HubNames,
    page: Option<ListPage>,
    total: usize,
    next: Option<String>,
}

impl ListRows {
    /// The list as JSON (see [`list_value`]).
    fn value(&self, st: &AppState) -> Value {
        let roster = super::delivery::Roster::of(st);
        let card = |i: &Item| super::delivery::item_value(st, &roster, i, &self.names);
        let out: Vec<Value> = self.items.iter().map(card).collect();
        let Some(page) = &self.page else {
            return json!({ "items": out });
        };
        json!({
            "items": out, "total": self.total, "limit": page.limit, "next_cursor": self.next,
        })
    }
}

/// A list (or one page of it) as JSON: what `GET /needs`, `/offers` and `/items`
/// answer, and the lists in the page's `GET /board`.
pub(super) fn list_value(
    st: &AppState,
    kind: Option<BodyKind>,
    q: ListQuery,
) -> Result<Value, ApiError> {
    Ok(list_rows(st, kind, q)?.value(st))
}

/// The items [`list_value`] shows: filtered, sorted, one page if asked.
fn list_rows(st: &AppState, kind: Option<BodyKind>, q: ListQuery) -> Result<ListRows, ApiError> {
    let category = q.category()?;
    let status = q.status()?;
    let words = q.search()?;
    let urgency = q.urgency()?;
    let hub = q.hub()?;
    let page = q.page()?;
    let now = st.engine.now_ms();
    // Filter and sort on the view's index; read posts (from the store) only for the
    // items a word search must look into and the items shown.
    let (shown, total, next, names) = st.engine.with_view(|v| {
        let names = HubNames::of(v);
        let mut heads = v.heads(now);
        heads.retain(|h| kind.is_none_or(|k| h.kind == k));
        heads.retain(|h| category.is_none_or(|c| h.category == c));
        heads.retain(|h| urgency.is_none_or(|u| h.urgency == u));
        heads.retain(|h| match status {
            ListStatus::Active => h.state.is_active() && !h.expired,
            ListStatus::All => true,
            ListStatus::Expired => h.expired,
            ListStatus::Is(s) => !h.expired && h.state.name() == s,
        });
        if let Some(hub) = &hub {
            heads.retain(|h| {
                h.author.short() == *hub
                    || names
                        .author(&h.author)
                        .is_some_and(|n| n.to_lowercase() == *hub)
            });
        }
        // Most urgent first, then newest; the id settles ties so that pages never
        // overlap.
        let key = |h: &ItemHead| ListKey::new(h.urgency, h.created.0, h.id);
        heads.sort_by_key(key);
        if !words.is_empty() {
            let found: Vec<Item> = heads
                .iter()
                .filter_map(|h| v.item(&h.id, now))
                .filter(|i| matches_words(&i.post, &words))
                .collect();
            let (shown, total, next) = one_page(&found, page, |i| {
                ListKey::new(i.post.urgency, i.created.0, i.id)
            });
            return (shown.to_vec(), total, next, names);
        }
        let (shown, total, next) = one_page(&heads, page, key);
        let shown = shown.iter().filter_map(|h| v.item(&h.id, now)).collect();
        (shown, total, next, names)
    });
    Ok(ListRows {
        items: shown,
        names,
        page,
        total,
        next,
    })
}

/// The rows of one page of a sorted list (all of them without a page), the list's
/// length and the cursor of the next page: the rows after the cursor, up to the limit.
fn one_page<T>(
    rows: &[T],
    page: Option<ListPage>,
    key: impl Fn(&T) -> ListKey,
) -> (&[T], usize, Option<String>) {
    let Some(page) = page else {
        return (rows, rows.len(), None);
    };
    let start = page
        .after
        .map_or(0, |after| rows.partition_point(|r| key(r) <= after));
    let rest = &rows[start..];
    let shown = &rest[..rest.len().min(page.limit)];
    let next = (rest.len() > shown.len())
        .then(|| shown.last().map(|r| key(r).to_string()))
        .flatten();
    (shown, rows.len(), next)
}

/// Whether every search word appears in the title, details, place, contact or unit.
fn matches_words(p: &aidmesh_protocol::body::Post, words: &[String]) -> bool {
    let text = [
        p.title.as_str(),
        &p.details,
        &p.place.label,
        &p.contact,
        &p.unit,
    ]
    .join("\n")
    .to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

pub(super) async fn list_needs(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q = q?.0;
    super::live::conditional(&st, &headers, &["needs", uri.query().unwrap_or("")], || {
        list(&st, Some(BodyKind::Need), q)
    })
    .await
}

pub(super) async fn list_offers(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q = q?.0;
    super::live::conditional(
        &st,
        &headers,
        &["offers", uri.query().unwrap_or("")],
        || list(&st, Some(BodyKind::Offer), q),
    )
    .await
}

pub(super) async fn list_items(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    list(&st, None, q?.0)
}

async fn create(
    st: AppState,
    kind: BodyKind,
    input: Result<Json<PostInput>, JsonRejection>,
) -> ApiResult {
    let Json(input) = input?;
    let post = input.into_post(st.engine.now_ms())?;
    let body = if kind == BodyKind::Need {
        Body::Need(post)
    } else {
        Body::Offer(post)
    };
    let engine = st.engine.clone();
    let event = blocking(move || engine.post(body)).await??;
    let now = st.engine.now_ms();
    let item = st
        .engine
        .with_view(|v| v.item(&event.id(), now))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                "stored item not in view",
            )
        })?;
    let mut out = item_json(&item);
    super::delivery::add_known(&st, &super::delivery::Roster::of(&st), &mut out, &item);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub(super) async fn post_need(
    State(st): State<AppState>,
    input: Result<Json<PostInput>, JsonRejection>,
) -> ApiResult {
    create(st, BodyKind::Need, input).await
}

pub(super) async fn post_offer(
    State(st): State<AppState>,
    input: Result<Json<PostInput>, JsonRejection>,
) -> ApiResult {
    create(st, BodyKind::Offer, input).await
}

/// `GET /api/v1/match`: one bounded page of matches (see `crate::matchmaking`), ranked
/// off the async workers.
pub(super) async fn match_offers(
    State(st): State<AppState>,
    q: Result<Query<crate::matchmaking::MatchQuery>, QueryRejection>,
) -> ApiResult {
    let params = q?.0.parse()?;
    let engine = st.engine.clone();
    let out = blocking(move || crate::matchmaking::page(&engine, &params, item_json))
        .await?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", e.to_string()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// Every announced hub, as JSON (the newest announcement per author and name), at
/// most [`crate::delivery::ROSTER_MAX`]: the most recently announced.
pub(super) fn hubs_value(st: &AppState) -> Vec<Value> {
    hubs_authored(st).into_iter().map(|(_, v)| v).collect()
}

/// [`hubs_value`], each with its author.
pub(super) fn hubs_authored(st: &AppState) -> Vec<(aidmesh_protocol::AuthorId, Value)> {
    let mut hubs = st.engine.with_view(|v| v.hubs());
    if hubs.len() > crate::delivery::ROSTER_MAX {
        // Name order kept for those shown.
        let mut newest: Vec<(aidmesh_protocol::Timestamp, usize)> =
            hubs.iter().enumerate().map(|(n, h)| (h.at, n)).collect();
        newest.sort_unstable_by_key(|x| std::cmp::Reverse(*x));
        let mut keep = vec![false; hubs.len()];
        for (_, n) in newest.iter().take(crate::delivery::ROSTER_MAX) {
            keep[*n] = true;
        }
        let mut n = 0;
        hubs.retain(|_| {
            n += 1;
            keep[n - 1]
        });
    }
    hubs.iter()
        .map(|h| {
            (h.author, json!({
                "id": h.id.to_hex(), "short_id": h.id.short(), "kind": "hub", "name": h.hub.name,
                "place": { "label": h.hub.place.label, "lat": h.hub.place.coords.map(|c| c.lat()), "lon": h.hub.place.coords.map(|c| c.lon()) },
                "services": h.hub.services, "author": h.author.short(), "created_at": h.at.millis(),
            }))
        })
        .collect()
}

pub(super) async fn post_hub(
    State(st): State<AppState>,
    input: Result<Json<HubInput>, JsonRejection>,
) -> ApiResult {
    let Json(input) = input?;
    let body = Body::Hub(input.into_hub()?);
    created_id(st, body).await
}

/// Posts `body` durably and answers 201 with its id (hubs and alerts).
async fn created_id(st: AppState, body: Body) -> ApiResult {
    let engine = st.engine.clone();
    let event = blocking(move || engine.post(body)).await??;
    let id = event.id();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id.to_hex(), "short_id": id.short() })),
    )
        .into_response())
}

/// An alert as JSON; an official alert's text in `lang` where it has that language.
pub(super) fn alert_json(a: &aidmesh_protocol::view::AlertView, lang: Option<&str>) -> Value {
    let mut v = json!({
        "id": a.id.to_hex(), "short_id": a.id.short(), "kind": "alert",
        "severity": a.alert.severity.name(), "headline": a.alert.headline, "details": a.alert.text,
        "area": a.alert.area, "expires_at": a.alert.expires_ms, "author": a.author.short(),
        "created_at": a.at.millis(), "state": a.state.name(),
        "ended": a.ended.as_ref().map(|c| json!({
            "by": c.author.short(), "at": c.at.millis(), "note": c.note,
        })),
    });
    if let Some((o, t)) = a
        .official
        .as_ref()
        .and_then(|o| Some((o, o.text_for(lang.unwrap_or(""))?)))
    {
        v["kind"] = json!("official-alert");
        v["headline"] = json!(t.headline);
        v["details"] = json!(t.text);
        v["area"] = json!(t.area);
        v["official"] = json!({
            "sender": o.sender, "identifier": o.identifier, "urgency": o.urgency.name(),
            "event": t.event, "language": t.language,
            "languages": o.texts.iter().map(|x| json!({
                "language": x.language, "event": x.event, "headline": x.headline,
                "details": x.text, "area": x.area,
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// Query of `GET /api/v1/alerts`.
#[derive(serde::Deserialize)]
pub(super) struct AlertsQuery {
    /// Preferred language of official alerts ("es", "fr-CA").
    lang: Option<String>,
}

/// `POST /api/v1/alerts/{id}/status`: cancel (its author only), mark all clear, or
/// make active again. Answers the alert as it now stands.
pub(super) async fn change_alert(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<AlertStatusInput>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let Json(input) = input?;
    let id = resolve_alert(&st, &id)?;
    let change = input.into_change(id)?;
    let engine = st.engine.clone();
    blocking(move || engine.post(Body::Status(change))).await??;
    let alert = st
        .engine
        .with_view(|v| v.alert(&id))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "alert disappeared"))?;
    Ok(Json(alert_json(&alert, None)).into_response())
}

/// Resolves a full id or a unique prefix (at least 6 hex characters) among alerts.
fn resolve_alert(st: &AppState, prefix: &str) -> Result<EventId, ApiError> {
    let p = prefix.trim().to_lowercase();
    if p.len() < 6 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("'{prefix}' is not an id: give at least 6 hex characters of it"),
        ));
    }
    let matches: Vec<EventId> = st.engine.with_view(|v| {
        v.alert_ids()
            .filter(|id| id.has_hex_prefix(&p))
            .filter(|id| v.alert(id).is_some())
            .copied()
            .collect()
    });
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no alert has an id starting with '{p}'; see `aidmesh alerts`"),
        )),
        many => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ambiguous_id",
            format!("'{p}' matches {} alerts; give more characters", many.len()),
        )),
    }
}

pub(super) async fn list_alerts(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AlertsQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let lang = q.lang.unwrap_or_default();
    super::live::conditional(&st, &headers, &["alerts", &lang], || {
        Ok(Json(json!({ "alerts": alerts_value(&st, Some(&lang)) })).into_response())
    })
    .await
}

/// Most alerts in one answer (the board's, the stream's, `GET /alerts`): the most
/// severe, then newest.
pub const ALERTS_MAX: usize = 100;

/// The alerts in force (at most [`ALERTS_MAX`]), as JSON; official alerts in `lang`
/// where they have it (every language is in `official.languages` either way).
pub(super) fn alerts_value(st: &AppState, lang: Option<&str>) -> Vec<Value> {
    let now = st.engine.now_ms();
    let roster = super::delivery::Roster::of(st);
    st.engine
        .with_view(|v| v.alerts(now))
        .iter()
        .take(ALERTS_MAX)
        .map(|a| {
            let mut out = alert_json(a, lang);
            super::delivery::add_known_event(st, &roster, &mut out, a.at, &a.id);
            out
        })
        .collect()
}

pub(super) async fn post_alert(
    State(st): State<AppState>,
    input: Result<Json<AlertInput>, JsonRejection>,
) -> ApiResult {
    let Json(input) = input?;
    let body = Body::Alert(input.into_alert(st.engine.now_ms())?);
    created_id(st, body).await
}

/// Resolves a full id or a unique prefix (at least 6 hex characters) among items.
fn resolve_item(st: &AppState, prefix: &str) -> Result<EventId, ApiError> {
    let p = prefix.trim().to_lowercase();
    if p.len() < 6 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("'{prefix}' is not an id: give at least 6 hex characters of it"),
        ));
    }
    let now = st.engine.now_ms();
    // Match ids first and fold only the matches: folding the whole board for every
    // `show` or status change would cost O(board).
    let matches: Vec<Item> = st.engine.with_view(|v| {
        v.post_ids()
            .filter(|id| id.has_hex_prefix(&p))
            .filter_map(|id| v.item(id, now))
            .collect()
    });
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no need or offer has an id starting with '{p}'"),
        )),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|i| format!("{} {}", i.id.short(), i.post.title))
                .collect();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "ambiguous_id",
                format!(
                    "'{p}' matches {} items; give more characters: {}",
                    many.len(),
                    list.join("; ")
                ),
            ))
        }
    }
}

pub(super) async fn show_item(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let id = resolve_item(&st, &id)?;
    let now = st.engine.now_ms();
    let (item, names) = named_item(&st, &id, now)?;
    let mut out = named_item_json(&item, &names);
    let arrived = item.arrived.unwrap_or(item.created.millis());
    super::delivery::add_known_at(&st, &mut out, item.created, &item.id, arrived);
    Ok(Json(out).into_response())
}

/// Item `id` folded at `now`, with the hub names to show next to its keys.
pub(super) fn named_item(
    st: &AppState,
    id: &EventId,
    now: u64,
) -> Result<(Item, HubNames), ApiError> {
    st.engine
        .with_view(|v| Some((v.item(id, now)?, HubNames::of(v))))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "item disappeared"))
}

/// [`item_json`] plus the hub names of its author, holder and history.
pub(super) fn named_item_json(item: &Item, names: &HubNames) -> Value {
    let mut out = item_json(item);
    names.name_item(&mut out, item);
    out
}

pub(super) async fn change_status(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<StatusInput>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let Json(input) = input?;
    let id = resolve_item(&st, &id)?;
    let change = input.into_change(id)?;
    let status = change.status;
    let body = Body::Status(change);
    let engine = st.engine.clone();
    let event = blocking(move || engine.post(body)).await??;
    let now = st.engine.now_ms();
    let (item, names) = named_item(&st, &id, now)?;
    let applied = item.history.iter().any(|c| c.id == event.id() && c.applied);
    let mut out =
        super::delivery::item_value(&st, &super::delivery::Roster::of(&st), &item, &names);
    out["change"] = json!({ "id": event.id().to_hex(), "applied": applied });
    if !applied {
        let reason = not_applied_reason(&item, status, &names);
        out["error"] = json!("not_applied");
        out["detail"] = json!(reason);
    }
    let code = if applied {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((code, Json(out)).into_response())
}

/// Why a status change was recorded but not applied, in words a volunteer can act on:
/// who holds the item and since when, or what to do first.
fn not_applied_reason(item: &Item, status: Status, names: &HubNames) -> String {
    if let (Some(held), Status::Claimed | Status::InProgress) = (item.holder_change(), status) {
        let hub = names.author(&held.author);
        let who = match (held.by(), hub) {
            (Some(name), Some(hub)) => format!("{name} at {hub}"),
            (Some(name), None) => name.to_string(),
            (None, Some(hub)) => hub.to_string(),
            (None, None) => format!("node {}", held.author.short()),
        };
        return format!(
            "already {} by {who} since {}; ask them, or reopen it if they have let it go",
            item.state.name(),
            hhmm_utc(held.at.millis())
        );
    }
    let state = if item.expired {
        "expired"
    } else {
        item.state.name()
    };
    let hint = match (item.state, status) {
        (ItemState::Fulfilled, Status::Fulfilled) => "it is already done",
        (ItemState::Withdrawn, Status::Withdrawn) => "it is already withdrawn",
        (_, Status::Withdrawn) => "only the person who posted it can withdraw it",
        (ItemState::Withdrawn, Status::Reopened) => {
            "only the person who posted it can bring it back"
        }
        (ItemState::Open, Status::Reopened) => "it is already open",
        _ => "reopen it first",
    };
    format!(
        "recorded, but a {state} item cannot become {}: {hint}",
        status.name()
    )
}

/// "14:02 UTC" for a wall-clock time in ms.
fn hhmm_utc(ms: u64) -> String {
    let mins = ms / 60_000;
    format!("{:02}:{:02} UTC", (mins / 60) % 24, mins % 60)
}
