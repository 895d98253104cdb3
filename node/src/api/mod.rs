//! The HTTP API under `/api/v1/` (axum) and the web page: the router and the shared
//! state; every handler answers with [`ApiError`] ([`error`]). Every input is parsed
//! in [`crate::doors::input`].
//!
//! The files import only downward, from the handlers by area to what they share:
//! - handlers: [`live`] (the page's board) over [`mesh`] (status, peers, live stream)
//!   over [`delivery`] (`known`, roster, unreached); [`board`] (needs, offers, hubs,
//!   alerts), [`welfare`] (people and check-ins), [`print`], [`bundle`], [`backup`], [`cap`],
//!   [`export`], [`flood`], [`map`] (the offline map) and [`page`];
//! - what they share: [`lists`] (the lists of needs and offers) over [`cards`] (the
//!   JSON of items, alerts, hubs and the roster); [`pin`] (the volunteer PIN guard),
//!   [`etag`] (304 answers), [`lookup`] (the one record an id prefix means), [`kept`]
//!   (values kept per key), [`names`] and [`error`] (how a failure is answered);
//! - who may talk to the API at all: [`guard`], [`conn`], [`posting`].
//!
//! Writes go through the engine's single validate → store → gossip path and are
//! answered only once durable. Bad input gets a 4xx with `{ "error": ..., "detail": ... }`,
//! never a 500.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use thiserror::Error;
use tokio::sync::watch;

use crate::engine::Engine;
use crate::net::NetHandle;

mod backup;
mod board;
mod bundle;
mod cap;
mod cards;
pub mod conn;
mod delivery;
mod error;
mod etag;
mod export;
mod flood;
pub mod guard;
mod kept;
mod lists;
mod live;
mod lookup;
mod map;
mod mesh;
mod names;
mod page;
pub mod pin;
mod posting;
mod print;
mod sms;
mod welfare;

pub use cards::item_json;
pub use error::ApiError;
pub use posting::Limits as PostingLimits;

/// Posts a minute one other machine may make, by default (for `aidmesh up`'s help).
pub const fn posting_default_per_minute() -> u32 {
    posting::DEFAULT_PER_MINUTE
}

/// Posts a minute a desk computer may make, by default.
pub const fn posting_default_desk_per_minute() -> u32 {
    posting::DEFAULT_DESK_PER_MINUTE
}

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    engine: Arc<Engine>,
    net: NetHandle,
    pins: Arc<pin::PinGuard>,
    cards: Arc<live::StreamCards>,
    streams: Arc<conn::Streams>,
    posting: Arc<posting::Posting>,
    sms: Option<Arc<crate::sms::Gateway>>,
    /// See `NodeConfig::unreached_after`, in ms.
    unreached_after_ms: u64,
    map: Arc<map::Maps>,
}

impl AppState {
    /// State for a node.
    pub fn new(engine: Arc<Engine>, net: NetHandle, pin: Option<String>) -> Self {
        Self {
            engine,
            net,
            pins: Arc::new(pin::PinGuard::new(pin)),
            cards: Arc::default(),
            streams: Arc::default(),
            posting: Arc::default(),
            sms: None,
            unreached_after_ms: crate::delivery::UNREACHED_AFTER_MS,
            map: Arc::default(),
        }
    }

    /// Flag an urgent need unreached after `after` instead of a minute (tests).
    pub fn with_unreached_after(mut self, after: std::time::Duration) -> Self {
        self.unreached_after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// With these posting limits for other machines (see [`PostingLimits`]).
    pub fn with_posting_limits(mut self, limits: PostingLimits) -> Self {
        self.posting = Arc::new(posting::Posting::new(limits));
        self
    }
}

/// The API could not start.
#[derive(Debug, Error)]
#[error("cannot listen for the API on {addr}: {source}. Is another node running? Pick another address with --api")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// Binds the API and serves it until `shutdown` flips. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let app = router(state).layer(axum::middleware::from_fn_with_state(
        guard::Hosts::new(bound),
        guard::check,
    ));
    let task = tokio::spawn(conn::accept_loop(listener, app, shutdown));
    tracing::info!(api = %bound, "API and web page listening");
    Ok((bound, task))
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::html))
        .route("/app.js", get(page::js))
        .route("/style.css", get(page::css))
        .route("/map", get(page::html))
        .route("/map.js", get(page::map_js))
        .route("/vendor/{file}", get(page::vendor))
        .route("/glyphs/{font}/{range}", get(page::glyphs))
        .route("/i18n/{file}", get(page::catalogue))
        .route("/print", get(print::board))
        .route("/print/round", get(print::round))
        .route("/api/v1/categories", get(board::categories))
        .route("/api/v1/status", get(mesh::status))
        .route("/api/v1/peers", get(mesh::peers).post(mesh::add_peer))
        .route("/api/v1/stream", get(mesh::stream))
        .route("/api/v1/board", get(live::board))
        .route("/api/v1/unreached", get(delivery::unreached))
        .route(
            "/api/v1/needs",
            get(board::list_needs).post(board::post_need),
        )
        .route(
            "/api/v1/offers",
            get(board::list_offers).post(board::post_offer),
        )
        .route("/api/v1/items", get(board::list_items))
        .route("/api/v1/items/{id}", get(board::show_item))
        .route("/api/v1/items/{id}/status", post(board::change_status))
        .route("/api/v1/match", get(board::match_offers))
        .route("/api/v1/hubs", get(delivery::hubs).post(board::post_hub))
        .route("/api/v1/hubs/{node}/retire", post(delivery::retire))
        .route(
            "/api/v1/alerts",
            get(board::list_alerts).post(board::post_alert),
        )
        .route("/api/v1/alerts/{id}/status", post(board::change_alert))
        .route(
            "/api/v1/alerts/import",
            post(cap::import).layer(DefaultBodyLimit::max(crate::doors::cap::MAX_CAP_BYTES)),
        )
        .route("/api/v1/people", get(welfare::list).post(welfare::register))
        .route("/api/v1/people/overdue", get(welfare::overdue))
        .route("/api/v1/people/{id}", get(welfare::show))
        .route("/api/v1/people/{id}/checkins", post(welfare::check_in))
        .route("/api/v1/people/{id}/forget", post(welfare::forget))
        .route("/api/v1/people/{id}/sharing", post(welfare::sharing))
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/bundle", get(bundle::download).post(bundle::upload))
        .route("/api/v1/map", get(map::info))
        .route(map::TILES_URL, get(map::tiles))
        .route("/api/v1/backup", get(backup::download))
        .route("/api/v1/flood", get(flood::list))
        .route("/api/v1/flood/withdraw", post(flood::withdraw))
        .merge(sms::routes())
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            posting::check,
        ))
        .with_state(state)
}
