//! The open board over HTTP: needs, offers, their status changes and matches, hubs and
//! alerts, and the category list. Anyone who can reach the API may read and post here
//! (that is the point of a hub); welfare records are elsewhere ([`super::welfare`]).

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::body::Status;
use aidmesh_protocol::view::{Item, ItemState};
use aidmesh_protocol::{Body, EventId};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::cards::{
    add_known, add_known_at, alert_json, alerts_value, categories_value, item_json, item_value,
    named_item_json, Roster,
};
use super::error::{blocking, ApiError, ApiResult};
use super::lists::list;
use super::lookup::{id_prefix, listed, the_one};
use super::names::HubNames;
use super::AppState;
use crate::doors::input::{
    AlertInput, AlertStatusInput, HubInput, ListQuery, PostInput, StatusInput,
};

pub(super) async fn categories() -> Response {
    Json(json!({ "categories": categories_value() })).into_response()
}

pub(super) async fn list_needs(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q = q?.0;
    super::etag::conditional(
        &st,
        &headers,
        &["needs", uri.query().unwrap_or("")],
        list(&st, Some(BodyKind::Need), q),
    )
    .await
}

pub(super) async fn list_offers(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q = q?.0;
    super::etag::conditional(
        &st,
        &headers,
        &["offers", uri.query().unwrap_or("")],
        list(&st, Some(BodyKind::Offer), q),
    )
    .await
}

pub(super) async fn list_items(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    list(&st, None, q?.0).await
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
    add_known(&st, &Roster::of(&st), &mut out, &item);
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
    let p = id_prefix(prefix)?;
    let matches: Vec<EventId> = st.engine.with_view(|v| {
        v.alert_ids()
            .filter(|id| id.has_hex_prefix(&p))
            .filter(|id| v.alert(id).is_some())
            .copied()
            .collect()
    });
    the_one(
        matches,
        || format!("no alert has an id starting with '{p}'; see `aidmesh alerts`"),
        "ambiguous_id",
        |many| format!("'{p}' matches {} alerts; give more characters", many.len()),
    )
}

pub(super) async fn list_alerts(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AlertsQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let lang = q.lang.unwrap_or_default();
    super::etag::conditional(&st, &headers, &["alerts", &lang], async {
        Ok(Json(json!({ "alerts": alerts_value(&st, Some(&lang)) })).into_response())
    })
    .await
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
    let p = id_prefix(prefix)?;
    let now = st.engine.now_ms();
    // Match ids first and fold only the matches: folding the whole board for every
    // `show` or status change would cost O(board).
    let matches: Vec<Item> = st.engine.with_view(|v| {
        v.post_ids()
            .filter(|id| id.has_hex_prefix(&p))
            .filter_map(|id| v.item(id, now))
            .collect()
    });
    let one = the_one(
        matches,
        || format!("no need or offer has an id starting with '{p}'"),
        "ambiguous_id",
        |many| {
            let list = listed(many, |i| format!("{} {}", i.id.short(), i.post.title));
            format!(
                "'{p}' matches {} items; give more characters: {list}",
                many.len()
            )
        },
    )?;
    Ok(one.id)
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
    add_known_at(&st, &mut out, item.created, &item.id, arrived);
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
    let mut out = item_value(&st, &Roster::of(&st), &item, &names);
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
