//! The review list: texts a person must look at (unclear, binary, throttled, not
//! postable), turned into a need or offer or dismissed.

use aidmesh_protocol::body::Urgency;
use aidmesh_protocol::sms::{self as text, Kind, Lang, Request};
use aidmesh_protocol::{Category, EventId};
use serde_json::json;

use super::db::{self, ReviewItem};
use super::{lock, Gateway};
use crate::engine::IngestError;

/// A review item turned into a need or offer, or dismissed.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// "need", "offer" or "dismiss".
    pub action: String,
    /// What (default: the suggestion's).
    pub title: Option<String>,
    /// Category (default: the suggestion's, else other).
    pub category: Option<String>,
    /// Where (default: the suggestion's).
    pub place: Option<String>,
    /// Urgency (default: the suggestion's, else normal).
    pub urgency: Option<String>,
}

/// Why a review action failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such review item.
    #[error("no text in the review list has id '{0}'; `aidmesh sms review` lists them")]
    NotFound(String),
    /// A bad field.
    #[error("{0}")]
    Invalid(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The gateway's database failed.
    #[error("the SMS gateway's database failed: {0}")]
    Db(#[from] sled::Error),
}

impl Gateway {
    /// The review list, oldest first.
    pub fn review(&self) -> Vec<ReviewItem> {
        let mut list: Vec<ReviewItem> = self
            .db
            .review
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| db::parse(&v)))
            .collect();
        list.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        list
    }

    /// Turns review item `id` into a need or offer (posted like any texted one, and the
    /// sender gets the reply), or dismisses it. Returns the new item's id, if any.
    pub fn resolve(&self, id: &str, r: &Resolve) -> Result<Option<EventId>, ResolveError> {
        let Some(raw) = self.db.review.get(id.as_bytes())? else {
            return Err(ResolveError::NotFound(id.to_string()));
        };
        let Some(item) = db::parse::<ReviewItem>(&raw) else {
            return Err(ResolveError::NotFound(id.to_string()));
        };
        let now = self.engine.now_ms();
        let kind = match r.action.as_str() {
            "dismiss" => {
                let mut v = serde_json::to_value(&item).unwrap_or_default();
                v["dismissed_at"] = json!(now);
                self.db.dismissed.insert(id.as_bytes(), db::json(&v))?;
                self.db.review.remove(id.as_bytes())?;
                self.db.flush()?;
                return Ok(None);
            }
            "need" => Kind::Need,
            "offer" => Kind::Offer,
            other => {
                return Err(ResolveError::Invalid(format!(
                    "action: '{other}' is not one of need, offer, dismiss"
                )))
            }
        };
        let s = item.suggestion.clone();
        let title = r
            .title
            .clone()
            .or_else(|| s.as_ref().map(|s| s.title.clone()))
            .map(|t| text::one_line(&t, aidmesh_protocol::body::MAX_TITLE))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ResolveError::Invalid("title: say what is needed or offered (this text has no suggestion to take it from)".into()))?;
        let category = match r
            .category
            .as_deref()
            .or(s.as_ref().map(|s| s.category.as_str()))
        {
            Some(c) => c
                .parse::<Category>()
                .map_err(|e| ResolveError::Invalid(format!("category: {e}")))?,
            None => text::guess_category(&title),
        };
        let urgency = match r
            .urgency
            .as_deref()
            .or(s.as_ref().map(|s| s.urgency.as_str()))
        {
            Some(u) => crate::doors::input::parse_urgency(u)
                .map_err(|e| ResolveError::Invalid(e.to_string()))?,
            None => Urgency::Normal,
        };
        let place = r
            .place
            .clone()
            .or_else(|| s.as_ref().map(|s| s.place.clone()))
            .map(|p| text::one_line(&p, aidmesh_protocol::body::MAX_LABEL))
            .unwrap_or_default();
        let q = Request {
            kind,
            lang: Lang::from_code(&item.lang),
            title,
            category,
            place,
        };
        let _w = lock(&self.write);
        let event = self.post_with(
            &q,
            urgency,
            &item.fingerprint,
            &item.phone,
            &format!("review:{}", item.id),
            now,
        )?;
        self.db.review.remove(id.as_bytes())?;
        self.db.flush()?;
        Ok(Some(event))
    }
}
