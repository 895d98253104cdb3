//! The page's live board (issue 17): what lets 300 phones stay current without each
//! downloading the whole board on every event.
//!
//! - `GET /api/v1/board` is the page's one start-up request: the node's status, the
//!   first page of needs and of offers (with the page's filters), hubs, alerts and the
//!   category list, in one answer.
//! - Lists and the board carry an `ETag` made from the engine's version (which changes
//!   with every stored or erased event, and at each start), the delivery generation,
//!   the query, and a time step (items expire; [`super::etag`]); a request with a
//!   matching `If-None-Match` gets `304 Not Modified` without the board being folded
//!   or serialised. The page's 30-second safety refresh is such a request.
//! - Each message of the live stream carries what a page needs to draw the change: the
//!   card of a new or changed need or offer, or the alert or hub list. It is rendered
//!   once per event and shared by every open stream ([`StreamCards`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::{Body, EventId};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::cards::{alerts_value, categories_value, hubs_value, item_value, roster_value, Roster};
use super::error::{ApiError, ApiResult};
use super::etag::{fresh, not_modified, set_tag, store_tag};
use super::lists::needs_and_offers;
use super::names::HubNames;
use super::AppState;
use crate::doors::input::ListQuery;
use crate::engine::NewEvent;

/// Cards on each list of `GET /board` when the query gives no `limit`.
pub const BOARD_LIMIT: usize = 30;

/// `GET /api/v1/board`: everything the page shows at start, in one answer. Takes the
/// list filters of `/needs` (`q`, `category`, `urgency`, `status`, `hub`, `limit`; no
/// `cursor`: later pages come from `/needs` and `/offers`).
pub(super) async fn board(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<std::net::SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let mut q = q?.0;
    if q.cursor.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the board shows first pages only; page on with /needs or /offers and `cursor`",
        ));
    }
    q.limit.get_or_insert_with(|| BOARD_LIMIT.to_string());
    let dial_results = super::mesh::sees_dial_results(&st, from, &headers);
    let status = super::mesh::page_status(&st, dial_results).await;
    let status_text = status.to_string();
    let query = uri.query().unwrap_or("");
    let tag = store_tag(&st, &["board", query, &status_text]).await?;
    if fresh(&headers, &tag) {
        return Ok(not_modified(&tag));
    }
    let (needs, offers) = needs_and_offers(&st, q).await?;
    let mut r = Json(json!({
        "status": status,
        "needs": needs,
        "offers": offers,
        "hubs": hubs_value(&st),
        "roster": roster_value(&st),
        "alerts": alerts_value(&st, None),
        "categories": categories_value(),
    }))
    .into_response();
    set_tag(&mut r, &tag);
    Ok(r)
}

/// Stream messages already rendered, by event id: each event is rendered once, not
/// once per open page.
#[derive(Default)]
pub struct StreamCards {
    recent: Mutex<VecDeque<(EventId, Arc<str>)>>,
}

/// Rendered messages kept: more than the events that arrive while one message is
/// written to every open page.
const KEPT: usize = 64;

impl StreamCards {
    /// The `data` of the stream message for `ne`, rendered once.
    pub(super) fn data(&self, st: &AppState, ne: &NewEvent) -> Arc<str> {
        let id = ne.event.id();
        {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, d)) = recent.iter().find(|(i, _)| *i == id) {
                return d.clone();
            }
        }
        let data: Arc<str> = render(st, ne).to_string().into();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if !recent.iter().any(|(i, _)| *i == id) {
            if recent.len() >= KEPT {
                recent.pop_front();
            }
            recent.push_back((id, data.clone()));
        }
        data
    }
}

/// A stream message: `{"id","kind","origin","at","events"}`, plus `item` (the card of
/// a new or changed need or offer, as `GET /items/{id}` answers it), `alerts` (for an
/// alert or its status change) or `hubs` (for a hub announcement).
fn render(st: &AppState, ne: &NewEvent) -> Value {
    let kind = BodyKind::from_code(ne.event.kind()).map_or("unknown", BodyKind::name);
    let mut data = json!({
        "id": ne.event.id().to_hex(),
        "kind": kind,
        "origin": format!("{:?}", ne.origin).to_lowercase(),
        "at": ne.event.timestamp().millis(),
        // Shared by every stream: welfare records are not counted (issue 24).
        "events": st.engine.public_len(),
    });
    let now = st.engine.now_ms();
    let card = |id: &EventId| {
        st.engine
            .with_view(|v| Some((v.item(id, now)?, HubNames::of(v))))
            .map(|(item, names)| {
                let roster = Roster::of(st);
                item_value(st, &roster, &item, &names)
            })
    };
    match &ne.body {
        Some(Body::Need(_) | Body::Offer(_)) => {
            if let Some(c) = card(&ne.event.id()) {
                data["item"] = c;
            }
        }
        Some(Body::Status(change)) => match card(&change.target) {
            Some(c) => data["item"] = c,
            None => data["alerts"] = json!(alerts_value(st, None)),
        },
        Some(Body::Alert(_) | Body::OfficialAlert(_)) => {
            data["alerts"] = json!(alerts_value(st, None))
        }
        Some(Body::Hub(_)) => data["hubs"] = json!(hubs_value(st)),
        _ => {}
    }
    data
}
