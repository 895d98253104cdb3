//! Honest delivery in the API (issue 11), beyond the cards' own counts
//! ([`super::cards`]): the hub roster (`GET /api/v1/hubs`), the status's `unreached`
//! urgent needs (the first few and a count; all of them a page at a time from
//! `GET /api/v1/unreached`) and the stream's `known` messages. The knowledge itself
//! lives in [`crate::delivery`].

use std::collections::BTreeMap;
use std::sync::Arc;

use aidmesh_protocol::{AuthorId, BodyKind, EventId, Timestamp, Urgency};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::cards::{count, roster_value, Roster};
use super::error::{blocking, ApiError, ApiResult};
use super::kept::Kept;
use super::lists::sorted_heads;
use super::AppState;
use crate::doors::input::{ListKey, ListPage, ListQuery};

/// Items whose counts one stream `known` message carries at most.
pub const KNOWN_CAP: usize = 200;

/// `GET /api/v1/hubs`: the roster.
pub(super) async fn hubs(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    super::etag::conditional(&st, &headers, &["hubs"], async {
        Ok(Json(json!(roster_value(&st))).into_response())
    })
    .await
}

/// `POST /api/v1/hubs/{node}/retire` (the hub computer or the volunteer PIN): takes a
/// hub that is gone for good (a laptop that joined once) off this hub's roster and
/// counts, until it is heard from again (issue 29). `node` is the first 8 or more hex
/// characters of its key (the roster's `node`). Local to this hub, kept on its disk;
/// not sent to other hubs (docs/hub.md says why).
pub(super) async fn retire(
    State(st): State<AppState>,
    _: super::pin::HubOrPin,
    node: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    use crate::delivery::RetireError;
    use axum::http::StatusCode;
    let axum::extract::Path(node) = node?;
    let node = node.trim();
    let short = aidmesh_protocol::identity::AUTHOR_SHORT_LEN;
    if node.len() < short || node.len() > 64 || !node.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("'{node}' is not a hub's node id; give the first {short} or more hex characters of `node` in `aidmesh hubs`"),
        )
        .at("node", "invalid"));
    }
    let roster = Roster::of(&st);
    let now = st.engine.wall_ms();
    let (hub, kept) = st
        .net
        .delivery
        .retire(roster.entries(), node, now)
        .map_err(|e| match e {
            RetireError::Unknown => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no hub {node} on this hub's list (`aidmesh hubs`)"),
            )
            .at("node", "not_found"),
            RetireError::Ambiguous => ApiError::new(
                StatusCode::BAD_REQUEST,
                "ambiguous_id",
                format!("more than one hub starts with {node}; give more characters"),
            )
            .at("node", "ambiguous"),
            RetireError::Me => ApiError::new(
                StatusCode::CONFLICT,
                "this_hub",
                "that is this hub: a hub does not retire itself",
            )
            .at("node", "this_hub"),
            RetireError::Connected => ApiError::new(
                StatusCode::CONFLICT,
                "connected",
                format!(
                    "hub {node} is connected now, so it is not gone; retire a hub that has stopped"
                ),
            )
            .at("node", "connected"),
        })?;
    let bytes = crate::delivery::retired_to_json(&kept);
    let engine = st.engine.clone();
    blocking(move || {
        engine
            .store()
            .set_meta(crate::delivery::RETIRED_META, &bytes)
    })
    .await?
    .map_err(crate::engine::IngestError::from)?;
    let name = roster_name(&st, &hub.node);
    Ok(Json(json!({
        "retired": hub.node.short(),
        "name": name,
        "last_heard_ms": hub.last_heard_ms,
        "retired_ms": now,
    }))
    .into_response())
}

/// A node's announced hub name, if any.
fn roster_name(st: &AppState, node: &AuthorId) -> Option<String> {
    st.engine
        .with_view(super::names::HubNames::of)
        .author(node)
        .map(str::to_string)
}

/// Unreached needs named in `/status` and the board; the rest are counted
/// (`unreached_total`) and paged by `GET /api/v1/unreached` (issue 28: at a million
/// events a hub cut off held 333,333 of them, and status listed every one).
pub const UNREACHED_SHOWN: usize = 10;

/// Urgent or life-threatening needs posted here, still open, known at no other hub
/// and older than [`crate::delivery::UNREACHED_AFTER_MS`], in the board's order (most
/// urgent, then newest first): the first [`UNREACHED_SHOWN`] as JSON and how many
/// there are.
pub(super) fn unreached_value(st: &AppState) -> (Vec<Value>, usize) {
    let all = unreached_keys(st);
    let first: Vec<EventId> = all
        .iter()
        .take(UNREACHED_SHOWN)
        .map(|k| k.0 .0 .2)
        .collect();
    (unreached_json(st, &first), all.len())
}

/// The unreached needs' list keys, sorted (ids only: no post is read).
///
/// Every `/status` and board answer (each phone's poll) asks, so the answer is kept
/// until an event arrives, a summary changes what is known, or 5 s pass. Then the
/// answer kept is given once more while a new one is made on a thread of its own:
/// at a million events the fold under it takes seconds, and `status` must answer in
/// milliseconds (issue 28). Only the first answer of a node waits for the fold.
fn unreached_keys(st: &AppState) -> Arc<Vec<ListKey>> {
    static KEPT: Kept<Key, Arc<Vec<ListKey>>> = Kept::new();
    let want = key(st, 5_000);
    let fold = st.clone();
    // The same node's older answer (the key's first part is the node).
    KEPT.get_or_refresh(
        want,
        |k| k.0 == want.0,
        move || Arc::new(unreached_now(&fold)),
    )
}

/// `GET /api/v1/unreached[?limit=&cursor=]`: every unreached need, a page at a time
/// (`limit` 1..=500, default 50; `cursor` the previous page's `next_cursor`), as
/// `{"items", "total", "limit", "next_cursor"}`.
pub(super) async fn unreached(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q = q?.0;
    let page = ListPage {
        limit: crate::doors::input::DEFAULT_LIST_LIMIT,
        after: None,
    };
    let page = q.page()?.unwrap_or(page);
    let all = unreached_keys(&st);
    let start = page.after.map_or(0, |a| all.partition_point(|k| *k <= a));
    let rest = &all[start..];
    let shown = &rest[..rest.len().min(page.limit)];
    let next = (rest.len() > shown.len())
        .then(|| shown.last().map(ToString::to_string))
        .flatten();
    let ids: Vec<EventId> = shown.iter().map(|k| k.0 .0 .2).collect();
    Ok(Json(json!({
        "items": unreached_json(&st, &ids),
        "total": all.len(),
        "limit": page.limit,
        "next_cursor": next,
    }))
    .into_response())
}

/// The unreached needs `ids` as JSON (`id`, `short_id`, `text`, `urgency`,
/// `since_ms`): only these posts are read.
fn unreached_json(st: &AppState, ids: &[EventId]) -> Vec<Value> {
    let now = st.engine.now_ms();
    let items = st.engine.with_view(|v| {
        ids.iter()
            .filter_map(|id| v.item(id, now))
            .collect::<Vec<_>>()
    });
    items
        .iter()
        .map(|i| {
            json!({
                "id": i.id.to_hex(), "short_id": i.id.short(), "text": i.post.title,
                "urgency": i.post.urgency.name(), "since_ms": i.created.millis(),
            })
        })
        .collect()
}

/// What the answers cached here depend on: the node (its delivery's address), the
/// delivery generation, the engine's version (the events held) and a time step of
/// `step_ms`.
type Key = (usize, u64, (u64, u64), u64);

fn key(st: &AppState, step_ms: u64) -> Key {
    (
        Arc::as_ptr(&st.net.delivery) as usize,
        st.net.delivery.generation(),
        st.engine.version(),
        st.engine.now_ms() / step_ms,
    )
}

fn unreached_now(st: &AppState) -> Vec<ListKey> {
    let now = st.engine.now_ms();
    // From the folded heads (no post read from the store).
    let mut keys: Vec<ListKey> = heads(st)
        .urgent
        .iter()
        .filter(|(_, ts, _)| now.saturating_sub(ts.millis()) > st.unreached_after_ms)
        .filter(|(_, ts, id)| st.net.delivery.known(*ts, id).is_empty())
        .map(|(u, ts, id)| ListKey::new(*u, ts.0, *id))
        .collect();
    keys.sort_unstable();
    keys
}

/// The items the delivery answers are about, from the view's heads (no post read).
struct Heads {
    /// The open needs and offers a page shows counts for: most urgent first, at most
    /// [`KNOWN_CAP`].
    shown: Vec<(Timestamp, EventId)>,
    /// This node's open urgent or life-threatening needs (the `unreached` candidates).
    urgent: Vec<(Urgency, Timestamp, EventId)>,
}

/// [`Heads`], folded once per change of the store or expiry step. Delivery knowledge
/// changes more often (a summary arrives about once a second in a busy mesh), and a
/// fold of every item is a quarter of a second at 100,000 items; a change of what is
/// known only asks [`crate::delivery::Delivery::known`] again for these few.
fn heads(st: &AppState) -> Arc<Heads> {
    static HEADS: Kept<((u64, u64), u64), Arc<Heads>> = Kept::new();
    let now = st.engine.now_ms();
    let key = (st.engine.version(), now / super::etag::EXPIRY_STEP_MS);
    HEADS.get_or(key, || {
        let me = st.net.delivery.me();
        // In list order already (most urgent, then newest), shared with the lists.
        let all = sorted_heads(st, now);
        // Heads name authors by the view's numbers (which a rebuilt view keeps).
        let me = st.engine.with_view(|v| v.author_index(&me));
        let active = || all.iter().filter(|i| i.state.is_active() && !i.expired());
        let urgent = active()
            .filter(|i| i.kind() == BodyKind::Need && Some(i.author()) == me)
            .filter(|i| matches!(i.urgency, Urgency::High | Urgency::LifeThreatening))
            .map(|i| (i.urgency, i.created, i.id))
            .collect();
        let shown = active()
            .take(KNOWN_CAP)
            .map(|i| (i.created, i.id))
            .collect();
        Arc::new(Heads { shown, urgent })
    })
}

/// Counts of the items a page shows (open needs and offers, most urgent first, at
/// most [`KNOWN_CAP`]), by id hex.
pub(super) fn counts(st: &AppState) -> BTreeMap<String, Value> {
    let roster = Roster::of(st);
    heads(st)
        .shown
        .iter()
        .map(|(ts, id)| (id.to_hex(), count(st, &roster, *ts, id)))
        .collect()
}

/// What one stream remembers to send only changes.
pub(super) struct Sent {
    counts: BTreeMap<String, Value>,
    roster: Vec<(AuthorId, bool)>,
}

impl Sent {
    /// What a page that just loaded the board has: the counts and roster of now.
    pub(super) fn now(st: &AppState) -> Sent {
        let (counts, roster) = shared(st);
        Sent {
            counts: (*counts).clone(),
            roster: (*roster).clone(),
        }
    }
}

/// Counts and roster as every open stream sees them, computed once per change and
/// shared (300 pages must not fold the board 300 times per summary that arrives).
type Shared = (Arc<BTreeMap<String, Value>>, Arc<Vec<(AuthorId, bool)>>);

fn shared(st: &AppState) -> Shared {
    static SHARED: Kept<Key, Shared> = Kept::new();
    SHARED.get_or(key(st, super::etag::EXPIRY_STEP_MS), || {
        let roster: Vec<(AuthorId, bool)> = Roster::of(st)
            .entries()
            .iter()
            .map(|e| (e.node, e.reachable))
            .collect();
        (Arc::new(counts(st)), Arc::new(roster))
    })
}

/// The data of a stream `known` message, if anything changed since `sent`.
pub(super) fn known_message(st: &AppState, sent: &mut Sent) -> Option<String> {
    let (now, roster) = shared(st);
    let changed: BTreeMap<&String, &Value> = now
        .iter()
        .filter(|(k, v)| sent.counts.get(*k) != Some(v))
        .collect();
    let roster_changed = *roster != sent.roster;
    if changed.is_empty() && !roster_changed {
        return None;
    }
    let msg = json!({ "counts": changed, "roster": roster_changed }).to_string();
    sent.counts = (*now).clone();
    sent.roster = (*roster).clone();
    Some(msg)
}
