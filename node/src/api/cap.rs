//! `POST /api/v1/alerts/import`: a CAP file (the request body, `Content-Type:
//! application/xml`) posted as official alerts, from the hub computer or with the
//! volunteer PIN. Parsing is in [`crate::doors::cap`]; each alert goes through the engine's
//! one write path. A message already taken in (same sender and identifier) is not
//! posted twice.

use aidmesh_protocol::view::AlertState;
use aidmesh_protocol::{AuthorId, Body, EventId, Status, StatusChange};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::cards::alert_json;
use super::error::{blocking, ApiError, ApiResult};
use super::pin::Importer;
use super::AppState;
use crate::doors::cap::{self, CapError, MsgType};

/// Handler of `POST /api/v1/alerts/import`.
pub(super) async fn import(
    _: Importer,
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body.map_err(|e| {
        ApiError::new(
            e.status(),
            "too_large",
            format!(
                "a CAP alert is at most {} bytes: {}",
                cap::MAX_CAP_BYTES,
                e.body_text()
            ),
        )
    })?;
    let engine = st.engine.clone();
    blocking(move || -> ApiResult {
        let msg = cap::parse(&bytes, engine.now_ms()).map_err(refusal)?;
        let me = engine.identity().author();
        // The board's alerts this message updates or cancels, matched on the CAP
        // identifier in <references> (older imports suffixed "#2", ... per language group).
        let refs = &msg.references;
        let named = |o: &aidmesh_protocol::OfficialAlert| {
            refs.iter().any(|r| {
                o.identifier == *r
                    || o.identifier
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('#'))
            })
        };
        let referenced: Vec<(EventId, AuthorId, AlertState)> =
            if msg.msg_type == MsgType::Alert || refs.is_empty() {
                Vec::new()
            } else {
                engine.with_view(|v| {
                    v.alert_ids()
                        .filter_map(|id| v.alert(id))
                        .filter(|a| a.official.as_ref().is_some_and(named))
                        .map(|a| (a.id, a.author, a.state))
                        .collect()
                })
            };
        if msg.msg_type == MsgType::Cancel && referenced.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_posted",
                format!(
                    "not posted: this message cancels {}, which this board does not hold",
                    refs.join(", ")
                ),
            ));
        }
        let (mut posted, mut known) = (Vec::new(), Vec::new());
        // The alert posted now, and the one this message is (posted now or before).
        let (mut new_id, mut current) = (None, None);
        if let Some(a) = msg.alert {
            let held = engine.with_view(|v| {
                v.alert_ids().copied().find(|id| {
                    v.alert(id)
                        .and_then(|x| x.official)
                        .is_some_and(|o| o.sender == a.sender && o.identifier == a.identifier)
                })
            });
            match held {
                Some(id) => {
                    known.push(id.short());
                    current = Some(id);
                }
                None => {
                    let id = engine.post(Body::OfficialAlert(a))?.id();
                    if msg.all_clear {
                        engine.post(Body::Status(StatusChange {
                            target: id,
                            status: Status::Fulfilled,
                            note: "all clear from the issuer".into(),
                        }))?;
                    }
                    new_id = Some(id);
                    current = Some(id);
                }
            }
        }
        let mut ended = Vec::new();
        for (id, author, state) in referenced {
            if state != AlertState::Active {
                continue;
            }
            let replaced = match current {
                Some(n) if !msg.all_clear => {
                    format!("replaced by the issuer's update {}", n.short())
                }
                _ if msg.msg_type == MsgType::Cancel => "cancelled by the issuer".to_string(),
                _ => "all clear from the issuer".to_string(),
            };
            // An update replaces: this hub's own copy goes from every board; another
            // hub's copy (only its author may cancel it) is marked ended, saying why.
            let status = if msg.msg_type == MsgType::Update && !msg.all_clear && author == me {
                Status::Withdrawn
            } else {
                Status::Fulfilled
            };
            engine.post(Body::Status(StatusChange {
                target: id,
                status,
                note: replaced.clone(),
            }))?;
            ended.push(json!({
                "short_id": id.short(),
                "state": if status == Status::Withdrawn { "cancelled" } else { "all-clear" },
                "note": replaced,
            }));
        }
        if let Some(view) = new_id.and_then(|id| engine.with_view(|v| v.alert(&id))) {
            posted.push(alert_json(&view, None));
        }
        let status = if posted.is_empty() && ended.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let msg_type = match msg.msg_type {
            MsgType::Alert => "alert",
            MsgType::Update => "update",
            MsgType::Cancel => "cancel",
        };
        Ok((
            status,
            Json(json!({
                "cap_version": msg.version, "msg_type": msg_type, "posted": posted,
                "already_posted": known, "ended": ended, "languages_left_out": msg.left_out,
            })),
        )
            .into_response())
    })
    .await?
}

fn refusal(e: CapError) -> ApiError {
    let code = match &e {
        CapError::TooLarge(_) => "too_large",
        CapError::NotXml(_) | CapError::Dtd => "not_xml",
        CapError::NotCap { .. } => "not_cap",
        CapError::Missing(_) | CapError::Bad { .. } => "invalid_cap",
        CapError::NotForTheBoard(_) => "not_posted",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
}
