//! The node and its mesh over HTTP: `/status`, `/peers` and the live `/stream` of newly
//! stored events.

use std::net::SocketAddr;

use aidmesh_protocol::body::BodyKind;
use aidmesh_protocol::{Body, ClockReading, ClockStatus, TimeSource};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::names::HubNames;

use super::error::{blocking, ApiError, ApiResult};
use super::pin::{Guarded, HubOrPin, PIN_HEADER};
use super::AppState;
use crate::doors::input::PeerInput;
use crate::engine::{Engine, NewEvent};

fn clock_json(
    status: ClockStatus,
    offset: Option<i64>,
    reading: ClockReading,
    floor_ms: u64,
) -> Value {
    let (name, mut warning) = match status {
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
    let source = match reading.source {
        TimeSource::Local => "local",
        TimeSource::Mesh => "mesh",
        TimeSource::Floor => "build_time",
    };
    if let Some(w) = &mut warning {
        if reading.source == TimeSource::Local {
            w.push_str(&format!(
                " ({} computer(s) say so; not corrected: {} must agree)",
                reading.hosts,
                aidmesh_protocol::time::CLOCK_QUORUM_HOSTS
            ));
        }
    }
    // The warning as a code the page words in its own language (issue 29).
    let mut code = match status {
        ClockStatus::Behind(_) => Some("behind"),
        ClockStatus::Ahead(_) => Some("ahead"),
        _ => None,
    };
    let by_ms = match status {
        ClockStatus::Behind(ms) | ClockStatus::Ahead(ms) => Some(ms),
        _ => None,
    };
    if reading.source == TimeSource::Floor {
        code = Some("before_build");
        warning = Some(
            "this computer's clock is before this program was built; using the build time until a peer tells the time".into(),
        );
    }
    json!({
        "status": name,
        "offset_ms": offset,
        "warning": warning,
        "code": code,
        "by_ms": by_ms,
        "corrected": reading.source != TimeSource::Local,
        "source": source,
        "hosts": reading.hosts,
        "correction_ms": reading.now_ms as i64 - reading.local_ms as i64,
        "floor_ms": floor_ms,
    })
}

/// Whether the asker sees `refused_by`, the addresses whose answer to our dials failed
/// the community handshake: only the hub computer itself or a holder of the volunteer
/// PIN (issue 24). Dials go where discovery (mDNS, peer exchange; before AMB2, any
/// beacon) pointed, so for anyone else on the Wi-Fi this list was the result of a port
/// scan made through the hub. A wrong PIN counts as a guess, as at every PIN door.
pub(super) fn sees_dial_results(st: &AppState, from: SocketAddr, headers: &HeaderMap) -> bool {
    super::guard::is_local(from.ip())
        || (headers.contains_key(PIN_HEADER)
            && st.pins.check(from, headers, Guarded::Peers).is_ok())
}

/// `GET /api/v1/status`. `refused_by` only for [`sees_dial_results`]. `events`
/// counts every event held for the hub computer and PIN holders; for anyone else, the
/// events that are not welfare records (issue 24 item 9: a count that rises with each
/// check-in tells when someone is visited).
pub(super) async fn status(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult {
    let events = if st.pins.allows(from, &headers) {
        st.engine.len()
    } else {
        st.engine.public_len()
    };
    let net = st.net.status().await;
    let engine = st.engine.clone();
    let digest = blocking(move || engine.digest())
        .await?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    let db = st.engine.store().path().to_path_buf();
    let disk = blocking(move || crate::disk::usage_json(&db)).await?;
    let (clock, offset) = st.engine.clock_status();
    let reading = st.engine.clock();
    let net_peers = net.as_ref().map(|n| n.peers.clone()).unwrap_or_default();
    let metered = net.as_ref().map(|n| n.metered).unwrap_or_default();
    let (unreached, unreached_total) = super::delivery::unreached_value(&st);
    let (hubs_counted, hubs_gone) = super::cards::hubs_status(&st);
    let mut v = json!({
        "peer_id": net.as_ref().map(|n| n.peer_id.clone()).unwrap_or_else(|| st.net.peer_id.to_string()),
        "community": st.engine.community(),
        "author": st.engine.identity().author().to_hex(),
        "listen": net.as_ref().map(|n| n.listen.clone()).unwrap_or_default(),
        "events": events,
        "digest": hex::encode(digest),
        "peers": net_peers.len(),
        "peer_list": st.engine.with_view(HubNames::of).peers(&net_peers),
        "clock": clock_json(clock, offset, reading, st.engine.clock_floor_ms()),
        "now_ms": reading.now_ms,
        "refused": net.as_ref().map(|n| n.refused.clone()).unwrap_or_default(),
        "refused_by": net.as_ref().map(|n| n.refused_by.clone()).unwrap_or_default(),
        "other_communities": net.as_ref().map(|n| n.other_communities.clone()).unwrap_or_default(),
        "sync_bytes_in": net.as_ref().map_or(0, |n| n.sync_bytes_in),
        "sync_bytes_out": net.as_ref().map_or(0, |n| n.sync_bytes_out),
        "gossip_msgs_in": metered.gossip_msgs_in,
        "gossip_bytes_in": metered.gossip_bytes_in,
        "summary_msgs_in": metered.summary_msgs_in,
        "summary_bytes_in": metered.summary_bytes_in,
        "pex_bytes_in": metered.pex_bytes_in,
        "stream_bytes_in": metered.stream_bytes_in,
        "stream_bytes_out": metered.stream_bytes_out,
        "disk": disk,
        "unreached": unreached,
        "unreached_total": unreached_total,
        "hubs_counted": hubs_counted,
        "hubs_gone": hubs_gone,
    });
    if !sees_dial_results(&st, from, &headers) {
        drop_dial_results(&mut v);
    }
    Ok(Json(v).into_response())
}

fn drop_dial_results(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.remove("refused_by");
    }
}

/// What the page shows of the node (in `GET /board`): `community`, `author`,
/// `peers`, `peer_list`, `events` (not counting welfare records), `clock` (`status`,
/// `warning`), `refused`, `refused_by` (only if `dial_results`: see
/// [`sees_dial_results`]), `unreached` (the first few, issue 11) and
/// `unreached_total`. The board's validator is made over this JSON, so a need that
/// becomes unreached with time changes it too.
pub(super) async fn page_status(st: &AppState, dial_results: bool) -> Value {
    let net = st.net.status().await;
    let (clock, offset) = st.engine.clock_status();
    let clock = clock_json(clock, offset, st.engine.clock(), st.engine.clock_floor_ms());
    let net_peers = net.as_ref().map(|n| n.peers.clone()).unwrap_or_default();
    let (unreached, unreached_total) = super::delivery::unreached_value(st);
    let mut v = json!({
        "community": st.engine.community(),
        "author": st.engine.identity().author().to_hex(),
        // Every phone sees the page: welfare records are not counted (issue 24).
        "events": st.engine.public_len(),
        "peers": net_peers.len(),
        "peer_list": st.engine.with_view(HubNames::of).peers(&net_peers),
        "clock": {
            "status": clock["status"], "warning": clock["warning"], "code": clock["code"],
            "by_ms": clock["by_ms"], "hosts": clock["hosts"], "corrected": clock["corrected"],
        },
        "refused": net.as_ref().map(|n| n.refused.clone()).unwrap_or_default(),
        "refused_by": net.as_ref().map(|n| n.refused_by.clone()).unwrap_or_default(),
        // Without `last_ms`: a re-announced advert must not change the board's ETag.
        "other_communities": net.as_ref().map(|n| n.other_communities.iter().map(|o| json!({ "ip": o.ip, "differs": o.differs, "says": o.says })).collect::<Vec<_>>()).unwrap_or_default(),
        // The page flags these (issue 11); part of the board's ETag through this JSON.
        "unreached": unreached,
        "unreached_total": unreached_total,
    });
    if !dial_results {
        drop_dial_results(&mut v);
    }
    v
}

/// `GET /api/v1/peers`.
pub(super) async fn peers(State(st): State<AppState>) -> ApiResult {
    let net = st.net.status().await;
    let names = st.engine.with_view(HubNames::of);
    let peers = names.peers(&net.map(|n| n.peers).unwrap_or_default());
    Ok(Json(json!({ "peers": peers })).into_response())
}

/// `POST /api/v1/peers`: dial a peer. Only the hub computer or a PIN holder may: the
/// dial list is bounded, and strangers filling it would push out real peers.
pub(super) async fn add_peer(
    State(st): State<AppState>,
    _: HubOrPin,
    input: Result<Json<PeerInput>, JsonRejection>,
) -> ApiResult {
    let Json(input) = input?;
    let addr = input.into_addr()?;
    st.net
        .commands
        .send(crate::net::Command::DialKept(addr.clone()))
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

/// Whether an event is about welfare records (a person, a check-in, or the erasure of
/// one): its id and timing say that someone was registered or visited.
fn is_welfare(engine: &Engine, ne: &NewEvent) -> bool {
    let welfare = |code: u16| {
        code == BodyKind::Person.code()
            || code == BodyKind::CheckIn.code()
            || code == BodyKind::Sharing.code()
    };
    if welfare(ne.event.kind()) {
        return true;
    }
    match &ne.body {
        Some(Body::Redaction(r)) => engine
            .store()
            .erased_kind(&r.target)
            .ok()
            .flatten()
            .is_some_and(welfare),
        _ => false,
    }
}

/// `GET /api/v1/stream`: server-sent events, one `event: new` per newly stored event,
/// with `{"id", "kind", "origin", "at", "events"}` and what a page needs to draw it
/// (see [`super::live`]). A client that falls behind gets `event: lagged` and should
/// reload everything. Welfare events are sent only to those who may see welfare
/// records (the hub computer, or with the PIN).
pub(super) async fn stream(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let welfare_ok = st.pins.allows(from, &headers);
    // Another machine holds a few streams at most; a new one ends its oldest.
    let ticket = st.streams.admit(from.ip());
    let rx = st.engine.subscribe();
    let known = st.net.delivery.subscribe();
    let sent = super::delivery::Sent::now(&st);
    // The counts are looked at once a second at most, after the change that asked
    // (while events arrive, each look folds every item's head again: a quarter of a
    // second at 100,000 items); new events go first.
    let known_every = std::time::Duration::from_secs(1);
    let known_at = tokio::time::Instant::now();
    let events = futures::stream::unfold(
        (rx, known, sent, st, false, known_at),
        move |(mut rx, mut known, mut sent, st, mut pending, mut known_at)| async move {
            let ev = loop {
                tokio::select! {
                    biased;
                    got = rx.recv() => match got {
                        Ok(ne) if !welfare_ok && is_welfare(&st.engine, &ne) => continue,
                        Ok(ne) => break Ok(ne),
                        Err(e) => break Err(e),
                    },
                    // Delivery counts changed (issue 11): look soon.
                    Ok(_) | Err(RecvError::Lagged(_)) = known.recv(), if !pending => {
                        while known.try_recv().is_ok() {}
                        pending = true;
                    }
                    () = tokio::time::sleep_until(known_at + known_every), if pending => {
                        while known.try_recv().is_ok() {}
                        pending = false;
                        known_at = tokio::time::Instant::now();
                        if let Some(data) = super::delivery::known_message(&st, &mut sent) {
                            let ev = SseEvent::default().event("known").data(data);
                            return Some((Ok(ev), (rx, known, sent, st, pending, known_at)));
                        }
                    }
                }
            };
            let ev = match ev {
                Ok(ne) => {
                    let data = st.cards.data(&st, &ne);
                    SseEvent::default().event("new").data(&*data)
                }
                Err(RecvError::Lagged(n)) => {
                    SseEvent::default().event("lagged").data(n.to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(ev),
                (rx, known, sent, st, pending, known_at),
            ))
        },
    );
    let events = futures::StreamExt::take_until(events, async move { ticket.ended().await });
    Sse::new(events)
        // A comment line now and then: a reader that vanished fails the write (see
        // `conn::USER_TIMEOUT`), which ends the stream.
        .keep_alive(KeepAlive::new().interval(super::conn::HEARTBEAT))
        .into_response()
}
