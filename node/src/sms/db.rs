//! The gateway's own local records, in a sled database of its own at
//! `<data-dir>/sms` (never gossiped, never exported): phone numbers of texted items,
//! the review list, replies waiting for the daemon, the day's counts.

use std::path::Path;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sled::Transactional;

/// A texted need or offer: who to tell when it changes. Personal data: expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sender {
    /// The number it came from.
    pub phone: String,
    /// The text's language ("en", "es").
    pub lang: String,
    /// The short reference the sender was given.
    pub reference: String,
    /// "need" or "offer".
    pub kind: String,
    /// What, as posted.
    pub title: String,
    /// When it came (ms).
    pub at_ms: u64,
    /// Status-change events the sender was told of (hex ids).
    pub notified: Vec<String>,
}

/// A guess a volunteer can accept with one action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Suggestion {
    /// "need" or "offer".
    pub kind: String,
    /// What.
    pub title: String,
    /// Category name.
    pub category: String,
    /// Where, as written.
    pub place: String,
    /// Urgency name.
    pub urgency: String,
}

/// A text that was not read with confidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Its id in the review list (hex).
    pub id: String,
    /// When it came (ms).
    pub at_ms: u64,
    /// The number it came from.
    pub phone: String,
    /// What it said (decoded; a binary text is described, not shown).
    pub text: String,
    /// Why it is here.
    pub reason: String,
    /// The best guess, if any.
    pub suggestion: Option<Suggestion>,
    /// The text's fingerprint (hex), also put in the event it becomes.
    pub fingerprint: String,
    /// The text's language ("en", "es").
    pub lang: String,
}

/// A reply waiting to be handed to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// The number.
    pub to: String,
    /// One segment of text.
    pub text: String,
    /// Its outbox file name, fixed when queued (so a crash never writes it twice).
    pub file: String,
    /// When it was queued (ms).
    pub queued_ms: u64,
}

/// The trees.
pub struct Db {
    db: sled::Db,
    /// Inbox file name (a text's first part) → when handled and how.
    pub texts: sled::Tree,
    /// Event id → [`Sender`].
    pub senders: sled::Tree,
    /// Review id → [`ReviewItem`].
    pub review: sled::Tree,
    /// Review id → dismissed [`ReviewItem`] (kept until it expires).
    pub dismissed: sled::Tree,
    /// Sequence (u64 BE) → [`Reply`], in order.
    pub outq: sled::Tree,
    /// Why a reply was queued ("got:FILE", "change:ID") → its sequence: once each.
    pub replied: sled::Tree,
    /// "in:YYYYMMDD" / "out:YYYYMMDD" → count (u64 BE).
    pub stats: sled::Tree,
    /// blake3 of a normalised number that texted STOP → when (u64 BE). No number kept.
    pub stopped: sled::Tree,
}

/// The database failed.
pub type DbError = sled::Error;

impl Db {
    /// Opens (or makes) `<data-dir>/sms`.
    pub fn open(data_dir: &Path) -> Result<Db, DbError> {
        let db = crate::store::open_db(
            sled::Config::new()
                .path(data_dir.join("sms"))
                .cache_capacity(1 << 20),
        )?;
        Ok(Db {
            texts: db.open_tree("texts")?,
            senders: db.open_tree("senders")?,
            review: db.open_tree("review")?,
            dismissed: db.open_tree("dismissed")?,
            outq: db.open_tree("outq")?,
            replied: db.open_tree("replied")?,
            stats: db.open_tree("stats")?,
            stopped: db.open_tree("stopped")?,
            db,
        })
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), DbError> {
        self.db.flush().map(|_| ())
    }

    /// A fresh, increasing number (survives restarts).
    pub fn next_id(&self) -> Result<u64, DbError> {
        self.db.generate_id()
    }

    /// Adds one to a day's count.
    pub fn count(&self, key: &str) -> Result<(), DbError> {
        self.stats.update_and_fetch(key, |old| {
            let n = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// A day's count.
    pub fn counted(&self, key: &str) -> u64 {
        self.stats
            .get(key)
            .ok()
            .flatten()
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes)
    }

    /// Queues `reply` unless one was queued for `why` already. Returns whether queued.
    pub fn queue(&self, why: &str, reply: &Reply) -> Result<bool, DbError> {
        if self.replied.contains_key(why)? {
            return Ok(false);
        }
        let seq = self.next_id()?;
        let value = json(reply);
        let r: sled::transaction::TransactionResult<bool, ()> = (&self.outq, &self.replied)
            .transaction(|(o, r)| {
                if r.get(why)?.is_some() {
                    return Ok(false);
                }
                o.insert(&seq.to_be_bytes(), value.as_slice())?;
                r.insert(why, &seq.to_be_bytes())?;
                Ok(true)
            });
        r.map_err(|e| match e {
            sled::transaction::TransactionError::Storage(e) => e,
            sled::transaction::TransactionError::Abort(()) => {
                sled::Error::Unsupported("aborted".into())
            }
        })
    }
}

/// A record as stored.
pub fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// A record as read; `None` if damaged.
pub fn parse<T: DeserializeOwned>(b: &[u8]) -> Option<T> {
    serde_json::from_slice(b).ok()
}

/// The key of a number in [`Db::stopped`].
pub fn number_key(phone: &str) -> [u8; 32] {
    let n = aidmesh_protocol::sms::normalise_number(phone).unwrap_or_else(|| phone.to_string());
    *blake3::hash(n.as_bytes()).as_bytes()
}
