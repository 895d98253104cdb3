//! Welfare records over HTTP: registering people to check on, check-ins, who is
//! overdue, and forgetting a person. Names, addresses and health details of vulnerable
//! people must not be readable by everyone on the hub's Wi-Fi, so every endpoint here
//! takes a [`Volunteer`], which only the PIN guard ([`super::pin`]) hands out.

use aidmesh_protocol::body::{Outcome, Redaction, Sharing};
use aidmesh_protocol::view::{Check, PersonView};
use aidmesh_protocol::welfare::{assess, assess_all, Welfare};
use aidmesh_protocol::Body;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::error::{blocking, ApiError, ApiResult};
use super::lookup::{listed, the_one};
use super::pin::Volunteer;
use super::AppState;
use crate::doors::input::{CheckInput, ForgetInput, PersonInput, SharingInput};

fn check_json(c: &Check) -> Value {
    let (outcome, detail) = match &c.check.outcome {
        Outcome::Safe => ("safe", None),
        Outcome::NeedsHelp(w) => ("needs-help", Some(w.clone())),
        Outcome::NoAnswer => ("no-answer", None),
        Outcome::NotAtHome => ("not-home", None),
        Outcome::Moved(to) => ("moved", Some(to.clone())),
    };
    json!({
        "id": c.id.to_hex(), "outcome": outcome, "detail": detail, "note": c.check.note,
        "by": c.check.by, "author": c.author.short(), "at": c.at.millis(),
    })
}

/// JSON of one person with their standing.
pub(super) fn person_json(w: &Welfare) -> Value {
    let p = &w.person;
    let r = &p.person;
    // Where they are now: a "moved" check-in overrides the registered place.
    let place = p.place();
    json!({
        "id": p.id.to_hex(), "short_id": p.id.short(), "kind": "person", "name": r.name,
        "place": { "label": place.label, "lat": place.coords.map(|c| c.lat()), "lon": place.coords.map(|c| c.lon()) },
        "risks": r.risks, "every_secs": r.check_every_secs, "consent": r.consent.name(),
        "share_with_responders": p.shares_with_responders,
        "phone": r.phone, "note": r.note, "author": p.author.short(), "registered_at": p.registered.millis(),
        "standing": w.standing.name(), "due_at": w.due_ms, "overdue_ms": w.overdue_ms,
        "latest": p.latest().map(check_json),
        "checks": p.checks.iter().map(check_json).collect::<Vec<_>>(),
    })
}

fn people(st: &AppState) -> (Vec<PersonView>, u64) {
    let now = st.engine.now_ms();
    (st.engine.with_view(|v| v.people()), now)
}

/// `GET /api/v1/people`: everyone, most urgent first.
pub async fn list(State(st): State<AppState>, _: Volunteer) -> ApiResult {
    let (people, now) = people(&st);
    let out: Vec<Value> = assess_all(&people, now).iter().map(person_json).collect();
    Ok(Json(json!({ "people": out })).into_response())
}

/// `GET /api/v1/people/overdue`: who needs a visit now.
pub async fn overdue(State(st): State<AppState>, _: Volunteer) -> ApiResult {
    let (people, now) = people(&st);
    let out: Vec<Value> = aidmesh_protocol::welfare::overdue(&people, now)
        .iter()
        .map(person_json)
        .collect();
    Ok(Json(json!({ "people": out })).into_response())
}

/// Finds a person by id prefix (6+ hex characters) or by unambiguous name.
fn resolve(st: &AppState, key: &str) -> Result<PersonView, ApiError> {
    let key = key.trim();
    let (people, _) = people(st);
    let lower = key.to_lowercase();
    let by_id: Vec<&PersonView> = if key.len() >= 6 && key.chars().all(|c| c.is_ascii_hexdigit()) {
        people
            .iter()
            .filter(|p| p.id.has_hex_prefix(&lower))
            .collect()
    } else {
        Vec::new()
    };
    let found: Vec<&PersonView> = if by_id.is_empty() {
        let exact: Vec<&PersonView> = people
            .iter()
            .filter(|p| p.person.name.to_lowercase() == lower)
            .collect();
        if exact.is_empty() {
            people
                .iter()
                .filter(|p| p.person.name.to_lowercase().contains(&lower))
                .collect()
        } else {
            exact
        }
    } else {
        by_id
    };
    let one = the_one(
        found,
        || format!("nobody registered matches '{key}'"),
        "ambiguous_person",
        |many| {
            let list = listed(many, |p| format!("{} {}", p.id.short(), p.person.name));
            format!("'{key}' matches {} people; use the id: {list}", many.len())
        },
    )?;
    Ok(one.clone())
}

/// `GET /api/v1/people/{id}`.
pub async fn show(
    State(st): State<AppState>,
    _: Volunteer,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let p = resolve(&st, &id)?;
    let mut out = person_json(&assess(&p, st.engine.now_ms()));
    super::cards::add_known_checks(&st, &mut out, &p.checks);
    Ok(Json(out).into_response())
}

/// `POST /api/v1/people`: register someone to check on.
pub async fn register(
    State(st): State<AppState>,
    _: Volunteer,
    input: Result<Json<PersonInput>, JsonRejection>,
) -> ApiResult {
    let Json(i) = input?;
    let share = i.share_with_responders;
    let body = Body::Person(i.into_person()?);
    let engine = st.engine.clone();
    let event = blocking(move || {
        let event = engine.post(body)?;
        if share {
            // The answer is its own event (kind 10): registrations are frozen. Were it
            // lost, the person would not be shared: the safe side.
            engine.post(Body::Sharing(Sharing {
                person: event.id(),
                share,
            }))?;
        }
        Ok::<_, crate::engine::IngestError>(event)
    })
    .await??;
    let p = st
        .engine
        .with_view(|v| v.person(&event.id()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                "stored person not in view",
            )
        })?;
    Ok((
        StatusCode::CREATED,
        Json(person_json(&assess(&p, st.engine.now_ms()))),
    )
        .into_response())
}

/// `POST /api/v1/people/{id}/checkins`. "needs-help" also posts a linked need so the
/// board shows it.
pub async fn check_in(
    State(st): State<AppState>,
    _: Volunteer,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<CheckInput>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let Json(i) = input?;
    let person = resolve(&st, &id)?;
    let check = i.into_checkin(person.id)?;
    let engine = st.engine.clone();
    let (checkin, need) = blocking(move || engine.check_in(check)).await??;
    let p = st
        .engine
        .with_view(|v| v.person(&person.id))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "person was forgotten"))?;
    let mut out = person_json(&assess(&p, st.engine.now_ms()));
    out["checkin_id"] = json!(checkin.id().to_hex());
    out["need_id"] = json!(need.map(|n| n.id().to_hex()));
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Refuses (403 `not_author`) unless this hub registered `person`: only that hub may
/// `act` on their record; the message names the hub to ask.
fn registered_here(st: &AppState, person: &PersonView, act: &str) -> Result<(), ApiError> {
    if person.author == st.engine.identity().author() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "not_author",
        format!(
            "{} was registered by hub {}; only that hub {act} (ask its coordinator)",
            person.person.name,
            person.author.short()
        ),
    ))
}

/// `POST /api/v1/people/{id}/sharing` with `{"share": true|false}`: records whether the
/// person agrees to be shared with responders (the PFIF export). Only the hub that
/// registered them can (validation refuses anyone else's answer).
pub async fn sharing(
    State(st): State<AppState>,
    _: Volunteer,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<SharingInput>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let Json(input) = input?;
    let person = resolve(&st, &id)?;
    registered_here(
        &st,
        &person,
        "records whether they are shared with responders",
    )?;
    let engine = st.engine.clone();
    let target = person.id;
    blocking(move || {
        engine.post(Body::Sharing(Sharing {
            person: target,
            share: input.share,
        }))
    })
    .await??;
    let p = st
        .engine
        .with_view(|v| v.person(&target))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "person was forgotten"))?;
    Ok(Json(person_json(&assess(&p, st.engine.now_ms()))).into_response())
}

/// `POST /api/v1/people/{id}/forget` with `{"confirm": "<the person's full id>"}`: the
/// hub that registered the person erases their record and every check-in on them, on
/// every node. The confirmation names exactly whom: a name or prefix that matched
/// someone else erases nobody.
pub async fn forget(
    State(st): State<AppState>,
    _: Volunteer,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<ForgetInput>, JsonRejection>,
) -> ApiResult {
    let Path(id) = id?;
    let Json(input) = input?;
    let person = resolve(&st, &id)?;
    registered_here(&st, &person, "can forget them")?;
    input.confirms(&person.id, &person.person.name)?;
    let engine = st.engine.clone();
    let target = person.id;
    let event = blocking(move || {
        engine.post(Body::Redaction(Redaction {
            target,
            reason: String::new(),
        }))
    })
    .await??;
    Ok(
        Json(json!({ "forgotten": target.to_hex(), "redaction": event.id().to_hex() }))
            .into_response(),
    )
}
