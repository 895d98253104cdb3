//! The HTTP API under `/api/v1/` (axum). Writes go through the engine's single
//! validate → store → gossip path and are answered only once durable. Bad input gets a
//! 4xx with `{ "error": ..., "detail": ... }`, never a 500.

use std::net::SocketAddr;
use std::sync::Arc;

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::view::Item;
use aidmesh_protocol::{Body, ClockStatus, EventId, StatusChange};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::engine::{Engine, IngestError};
use crate::input::{parse_category, parse_status, AlertInput, HubInput, InputError, PostInput};
use crate::net::NetHandle;
use crate::node::NodeError;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) engine: Arc<Engine>,
    net: NetHandle,
    pub(crate) pin: Option<Arc<str>>,
    pub(crate) pin_failures: Arc<
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
    >,
}

impl AppState {
    /// State for a node.
    pub fn new(engine: Arc<Engine>, net: NetHandle, pin: Option<String>) -> Self {
        Self {
            engine,
            net,
            pin: pin.map(Into::into),
            pin_failures: Arc::default(),
        }
    }
}

/// An API error: HTTP status, a short machine-readable code, a sentence for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.error, "detail": self.detail })),
        )
            .into_response()
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e.status() {
            s if s == StatusCode::PAYLOAD_TOO_LARGE => s,
            s if s == StatusCode::UNSUPPORTED_MEDIA_TYPE => s,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "bad_json", e.body_text())
    }
}

/// The API's (and CLI's) name for a protocol field, so an error names what the user
/// typed.
fn input_name(field: &str) -> &str {
    match field {
        "quantity" => "qty",
        "place.label" => "place",
        "place.lat" => "lat",
        "place.lon" => "lon",
        "text" => "details",
        other => other,
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", e.body_text())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            // A local write that breaks a limit was never stored: say what to fix, not
            // which event id it would have had.
            IngestError::Invalid(aidmesh_protocol::ValidationError::Field {
                field,
                problem,
                ..
            }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("{}: {problem}", input_name(field)),
            ),
            IngestError::Invalid(v) => {
                // The refused write was never stored: drop the "event <id>: " prefix.
                let text = v.to_string();
                let detail = match text.strip_prefix("event ").and_then(|t| t.split_once(": ")) {
                    Some((_, rest)) => rest.to_string(),
                    None => text,
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", detail)
            }
            IngestError::Store(s) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", s.to_string())
            }
        }
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Binds the API and serves it until `shutdown` flips. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NodeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Config(format!("cannot listen for the API on {addr}: {e}. Is another node running? Pick another address with --api")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let app = router(state);
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "API server stopped");
        }
    });
    tracing::info!(api = %bound, "API and web page listening");
    Ok((bound, task))
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page_html))
        .route("/app.js", get(page_js))
        .route("/style.css", get(page_css))
        .route("/api/v1/categories", get(categories))
        .route("/api/v1/status", get(status))
        .route("/api/v1/peers", get(peers).post(add_peer))
        .route("/api/v1/needs", get(list_needs).post(post_need))
        .route("/api/v1/offers", get(list_offers).post(post_offer))
        .route("/api/v1/items", get(list_items))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/match", get(match_offers))
        .route(
            "/api/v1/people",
            get(crate::welfare::list).post(crate::welfare::register),
        )
        .route("/api/v1/people/overdue", get(crate::welfare::overdue))
        .route("/api/v1/people/{id}", get(crate::welfare::show))
        .route(
            "/api/v1/people/{id}/checkins",
            post(crate::welfare::check_in),
        )
        .route("/api/v1/people/{id}/forget", post(crate::welfare::forget))
        .route("/api/v1/hubs", get(list_hubs).post(post_hub))
        .route("/api/v1/alerts", get(list_alerts).post(post_alert))
        .route("/api/v1/items/{id}", get(show_item))
        .route("/api/v1/items/{id}/status", post(change_status))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see docs/api.md",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see docs/api.md",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The page's Content-Security-Policy: nothing but this node, no inline script.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CONTENT_SECURITY_POLICY, CSP),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn page_html() -> Response {
    asset("text/html; charset=utf-8", include_str!("web/index.html"))
}

async fn page_js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("web/app.js"))
}

async fn page_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("web/style.css"))
}

async fn categories() -> Response {
    let all: Vec<Value> = aidmesh_protocol::Category::ALL
        .iter()
        .map(
            |c| json!({ "name": c.name(), "description": c.description(), "cluster": c.cluster() }),
        )
        .collect();
    Json(json!({ "categories": all })).into_response()
}

/// Runs blocking engine work (validation, fsync) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", e.to_string()))
}

fn clock_json(status: ClockStatus, offset: Option<i64>) -> Value {
    let (name, warning) = match status {
        ClockStatus::Unknown => ("unknown", None),
        ClockStatus::Ok => ("ok", None),
        ClockStatus::Behind(ms) => (
            "behind",
            Some(format!(
                "this computer's clock is {} behind the mesh",
                crate::engine::human_ms(ms)
            )),
        ),
        ClockStatus::Ahead(ms) => (
            "ahead",
            Some(format!(
                "this computer's clock is {} ahead of the mesh",
                crate::engine::human_ms(ms)
            )),
        ),
    };
    json!({ "status": name, "offset_ms": offset, "warning": warning })
}

async fn status(State(st): State<AppState>) -> ApiResult {
    let net = st.net.status().await;
    let engine = st.engine.clone();
    let digest = blocking(move || engine.digest())
        .await?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    let (clock, offset) = st.engine.clock_status();
    let net_peers = net.as_ref().map(|n| n.peers.clone()).unwrap_or_default();
    Ok(Json(json!({
        "peer_id": net.as_ref().map(|n| n.peer_id.clone()).unwrap_or_else(|| st.net.peer_id.to_string()),
        "community": st.engine.community(),
        "author": st.engine.identity().author().to_hex(),
        "listen": net.as_ref().map(|n| n.listen.clone()).unwrap_or_default(),
        "events": st.engine.len(),
        "digest": hex::encode(digest),
        "peers": net_peers.len(),
        "peer_list": net_peers,
        "clock": clock_json(clock, offset),
        "now_ms": st.engine.now_ms(),
        "sync_bytes_in": net.as_ref().map_or(0, |n| n.sync_bytes_in),
        "sync_bytes_out": net.as_ref().map_or(0, |n| n.sync_bytes_out),
    }))
    .into_response())
}

async fn peers(State(st): State<AppState>) -> ApiResult {
    let net = st.net.status().await;
    Ok(Json(json!({ "peers": net.map(|n| n.peers).unwrap_or_default() })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerInput {
    addr: String,
}

async fn add_peer(
    State(st): State<AppState>,
    input: Result<Json<PeerInput>, JsonRejection>,
) -> ApiResult {
    let Json(input) = input?;
    let bad = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!(
                "addr: '{}' {why}; e.g. /ip4/192.168.1.20/tcp/4610",
                input.addr
            ),
        )
    };
    let addr: libp2p::Multiaddr = input
        .addr
        .trim()
        .parse()
        .map_err(|e| bad(format!("is not a multiaddr ({e})")))?;
    if !crate::net::dialable(&addr) {
        return Err(bad("is not a TCP address of a peer".into()));
    }
    st.net
        .commands
        .send(crate::net::Command::Dial(addr.clone()))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "network_down",
                "the network is stopping",
            )
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "dialing": addr.to_string() })),
    )
        .into_response())
}

/// Server-sent events: one `event: new` per newly stored event, with
/// `{"id", "kind", "origin", "at"}`; pages reload what they show. A client that falls
/// behind gets `event: lagged` and should reload everything.
async fn stream(State(st): State<AppState>) -> impl IntoResponse {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let rx = st.engine.subscribe();
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let ev = match rx.recv().await {
            Ok(ne) => {
                let kind = BodyKind::from_code(ne.event.kind()).map_or("unknown", BodyKind::name);
                let data = json!({
                    "id": ne.event.id().to_hex(),
                    "kind": kind,
                    "origin": format!("{:?}", ne.origin).to_lowercase(),
                    "at": ne.event.timestamp().millis(),
                });
                SseEvent::default().event("new").data(data.to_string())
            }
            Err(RecvError::Lagged(n)) => SseEvent::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(ev), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
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
                "at": c.at.millis(), "note": c.note, "applied": c.applied,
            })
        })
        .collect();
    let p = &i.post;
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
        "history": history,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    category: Option<String>,
    status: Option<String>,
}

fn list(st: &AppState, kind: Option<BodyKind>, q: ListQuery) -> ApiResult {
    let category = q.category.as_deref().map(parse_category).transpose()?;
    let status = q.status.as_deref().map(str::to_lowercase);
    if let Some(s) = &status {
        let valid = [
            "open",
            "claimed",
            "in-progress",
            "fulfilled",
            "withdrawn",
            "expired",
            "active",
            "all",
        ];
        if !valid.contains(&s.as_str()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("status: unknown status '{s}'; valid: {}", valid.join(", ")),
            ));
        }
    }
    let now = st.engine.now_ms();
    let mut items: Vec<Item> = st.engine.with_view(|v| v.items(now));
    items.retain(|i| kind.is_none_or(|k| i.kind == k));
    items.retain(|i| category.is_none_or(|c| i.post.category == c));
    items.retain(|i| match status.as_deref() {
        None | Some("active") => i.state.is_active() && !i.expired,
        Some("all") => true,
        Some("expired") => i.expired,
        Some(s) => !i.expired && i.state.name() == s,
    });
    // Most urgent first, then newest.
    items.sort_by_key(|i| std::cmp::Reverse((i.post.urgency, i.created)));
    let out: Vec<Value> = items.iter().map(item_json).collect();
    Ok(Json(json!({ "items": out })).into_response())
}

async fn list_needs(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    list(&st, Some(BodyKind::Need), q?.0)
}

async fn list_offers(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    list(&st, Some(BodyKind::Offer), q?.0)
}

async fn list_items(
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
    Ok((StatusCode::CREATED, Json(item_json(&item))).into_response())
}

async fn post_need(
    State(st): State<AppState>,
    input: Result<Json<PostInput>, JsonRejection>,
) -> ApiResult {
    create(st, BodyKind::Need, input).await
}

async fn post_offer(
    State(st): State<AppState>,
    input: Result<Json<PostInput>, JsonRejection>,
) -> ApiResult {
    create(st, BodyKind::Offer, input).await
}

/// One bounded page of matches (see `crate::matchmaking`), ranked off the async workers.
async fn match_offers(
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

async fn list_hubs(State(st): State<AppState>) -> ApiResult {
    let hubs: Vec<Value> = st
        .engine
        .with_view(|v| v.hubs())
        .iter()
        .map(|h| {
            json!({
                "id": h.id.to_hex(), "short_id": h.id.short(), "kind": "hub", "name": h.hub.name,
                "place": { "label": h.hub.place.label, "lat": h.hub.place.coords.map(|c| c.lat()), "lon": h.hub.place.coords.map(|c| c.lon()) },
                "services": h.hub.services, "author": h.author.short(), "created_at": h.at.millis(),
            })
        })
        .collect();
    Ok(Json(json!({ "hubs": hubs })).into_response())
}

async fn post_hub(
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

fn alert_json(a: &aidmesh_protocol::view::AlertView) -> Value {
    json!({
        "id": a.id.to_hex(), "short_id": a.id.short(), "kind": "alert",
        "severity": a.alert.severity.name(), "headline": a.alert.headline, "details": a.alert.text,
        "area": a.alert.area, "expires_at": a.alert.expires_ms, "author": a.author.short(),
        "created_at": a.at.millis(),
    })
}

async fn list_alerts(State(st): State<AppState>) -> ApiResult {
    let now = st.engine.now_ms();
    let alerts: Vec<Value> = st
        .engine
        .with_view(|v| v.alerts(now))
        .iter()
        .map(alert_json)
        .collect();
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

async fn post_alert(
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

async fn show_item(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let id = resolve_item(&st, &id)?;
    let now = st.engine.now_ms();
    let item = st
        .engine
        .with_view(|v| v.item(&id, now))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "item disappeared"))?;
    Ok(Json(item_json(&item)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusInput {
    status: String,
    note: Option<String>,
}

async fn change_status(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<StatusInput>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let Json(input) = input?;
    let id = resolve_item(&st, &id)?;
    let status = parse_status(&input.status)?;
    let body = Body::Status(StatusChange {
        target: id,
        status,
        note: input.note.unwrap_or_default(),
    });
    let engine = st.engine.clone();
    let event = blocking(move || engine.post(body)).await??;
    let now = st.engine.now_ms();
    let item = st
        .engine
        .with_view(|v| v.item(&id, now))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "item disappeared"))?;
    let applied = item.history.iter().any(|c| c.id == event.id() && c.applied);
    let mut out = item_json(&item);
    out["change"] = json!({ "id": event.id().to_hex(), "applied": applied });
    if !applied {
        let reason = format!(
            "recorded, but a {} item cannot become {} (see docs/protocol.md, status rules)",
            if item.expired {
                "expired"
            } else {
                item.state.name()
            },
            status.name()
        );
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
