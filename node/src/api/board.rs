//! The open board over HTTP: needs, offers, their status changes and matches, hubs and
//! alerts, and the category list. Anyone who can reach the API may read and post here
//! (that is the point of a hub); welfare records are elsewhere ([`super::welfare`]).

use std::sync::{Arc, Mutex};

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
use crate::doors::input::{
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
        // A need a welfare check raised: its kind of help, so pages word the title in
        // their own language (docs/api.md).
        "welfare_help": aidmesh_protocol::welfare::follow_up_kind(p).map(|c| c.name()),
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
    Ok(Json(list_rows(st, kind, q)?.value(st)).into_response())
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
        let limit = match &self.page {
            Some(page) => page.limit,
            // Unpaged and all of it fits: as it always was.
            None if self.next.is_none() => return json!({ "items": out }),
            None => UNPAGED_MAX,
        };
        json!({
            "items": out, "total": self.total, "limit": limit, "next_cursor": self.next,
        })
    }
}

/// Most items in an answer that asked for no page (neither `limit` nor `cursor`):
/// beyond, it is the first page of this size, with `total` and `next_cursor` (issue
/// 28: the whole list at a million items was 55 MB, and a Pi's memory).
pub const UNPAGED_MAX: usize = crate::doors::input::MAX_LIST_LIMIT;

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
    let bounded = page.unwrap_or(ListPage {
        limit: UNPAGED_MAX,
        after: None,
    });
    let now = st.engine.now_ms();
    let all = sorted_heads(st, now);
    // Filter on the view's index, sorted once per change; read posts (from the store)
    // only for the items a word search must look into and the items shown.
    let (shown, total, next, names) = st.engine.with_view(|v| {
        let names = HubNames::of(v);
        let keep = |h: &ItemHead| {
            kind.is_none_or(|k| h.kind == k)
                && category.is_none_or(|c| h.category == c)
                && urgency.is_none_or(|u| h.urgency == u)
                && match status {
                    ListStatus::Active => h.state.is_active() && !h.expired,
                    ListStatus::All => true,
                    ListStatus::Expired => h.expired,
                    ListStatus::Is(s) => !h.expired && h.state.name() == s,
                }
                && hub.as_ref().is_none_or(|hub| {
                    h.author.short() == *hub
                        || names
                            .author(&h.author)
                            .is_some_and(|n| n.to_lowercase() == *hub)
                })
        };
        let start = bounded
            .after
            .map_or(0, |after| all.partition_point(|h| head_key(h) <= after));
        // With a search, an item is in the list if its post has every word: read one
        // post at a time, keep only the page's.
        let in_list = |h: &ItemHead| -> Option<Option<Item>> {
            if !keep(h) {
                return None;
            }
            if words.is_empty() {
                return Some(None);
            }
            let i = v.item(&h.id, now)?;
            matches_words(&i.post, &words).then_some(Some(i))
        };
        let mut total = all[..start].iter().filter(|h| in_list(h).is_some()).count();
        let mut shown: Vec<Item> = Vec::new();
        let mut more = false;
        for h in &all[start..] {
            let Some(found) = in_list(h) else {
                continue;
            };
            total += 1;
            if shown.len() >= bounded.limit {
                // Past the page: only counted.
                more = true;
                continue;
            }
            if let Some(i) = found.or_else(|| v.item(&h.id, now)) {
                shown.push(i);
            }
        }
        let next = more
            .then(|| {
                shown
                    .last()
                    .map(|i| ListKey::new(i.post.urgency, i.created.0, i.id).to_string())
            })
            .flatten();
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

/// The list order of an item: most urgent first, then newest; the id settles ties
/// so that pages never overlap.
fn head_key(h: &ItemHead) -> ListKey {
    ListKey::new(h.urgency, h.created.0, h.id)
}

/// Every need and offer's head in list order ([`head_key`]), folded and sorted once
/// per change of the store, and again when an item it holds expires (a fold of
/// every item is a quarter of a second at 100,000 items, and 50 phones loading the
/// board at once asked for 100 of them). Made outside the kept value's lock, so
/// answers that find it are not held up.
pub(super) fn sorted_heads(st: &AppState, now: u64) -> Arc<Vec<ItemHead>> {
    /// The engine (by address) and its version.
    type Key = (usize, (u64, u64));
    /// The heads for a key, good until a time (ms).
    type Kept = (Key, u64, Arc<Vec<ItemHead>>);
    static KEPT: Mutex<Option<Kept>> = Mutex::new(None);
    static MAKING: Mutex<()> = Mutex::new(());
    let key = (Arc::as_ptr(&st.engine) as usize, st.engine.version());
    let kept = || {
        KEPT.lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(k, until, _)| *k == key && now <= *until)
            .map(|(_, _, v)| v.clone())
    };
    if let Some(v) = kept() {
        return v;
    }
    // One fold at a time: 50 phones arriving after a change wait for the one fold
    // rather than make 50 (each the size of the board).
    let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = kept() {
        return v;
    }
    let mut heads = st.engine.with_view(|v| v.heads(now));
    heads.sort_unstable_by_key(head_key);
    // An active item is expired once the time is past its `expires_ms`.
    let until = heads
        .iter()
        .filter(|h| h.state.is_active() && !h.expired)
        .filter_map(|h| h.expires_ms)
        .min()
        .unwrap_or(u64::MAX);
    let heads = Arc::new(heads);
    *KEPT.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, until, heads.clone()));
    heads
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

/// `GET /api/v1/match`: one bounded page of matches (see `crate::doors::matchmaking`), ranked
/// off the async workers.
pub(super) async fn match_offers(
    State(st): State<AppState>,
    q: Result<Query<crate::doors::matchmaking::MatchQuery>, QueryRejection>,
) -> ApiResult {
    let params = q?.0.parse()?;
    let engine = st.engine.clone();
    let out = blocking(move || crate::doors::matchmaking::page(&engine, &params, item_json))
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
            aidmesh_protocol::calendar::clock_utc(held.at.millis())
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
