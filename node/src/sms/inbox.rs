//! Reading and filing received texts: the daemon's inbox files grouped into texts,
//! decoded, read, and posted, checked in, stopped or put up for review, then moved.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aidmesh_protocol::body::{Place, Post, Urgency};
use aidmesh_protocol::calendar;
use aidmesh_protocol::sms::{self as text, Kind, Lang, Reading, Request};
use aidmesh_protocol::{Body, EventId};
use serde_json::json;
use tracing::warn;

use super::db::{self, ReviewItem, Sender, Suggestion};
use super::{config, lock, Gateway, PassError, ResolveError, ABORT_AFTER_POST, BATCH, SETTLE};

/// The sender's number from an inbox file name
/// `IN<date>_<time>_<serial>_<sender>_<part>.<ext>`, and the name without its part
/// (the parts of one text share it). `None`: not a received text.
pub fn inbox_name(name: &str) -> Option<(String, String, u32)> {
    let rest = name.strip_prefix("IN")?;
    let (stem, ext) = rest.rsplit_once('.')?;
    if ext != "txt" && ext != "bin" {
        return None;
    }
    let (head, part) = stem.rsplit_once('_')?;
    let part: u32 = part.parse().ok()?;
    let mut it = head.splitn(4, '_');
    let (_date, _time, _serial, sender) = (it.next()?, it.next()?, it.next()?, it.next()?);
    Some((sender.to_string(), format!("IN{head}"), part))
}

/// A received file's text: UTF-16 with a byte-order mark (InboxFormat = unicode),
/// else UTF-8 (standard, in a UTF-8 locale), bytes that are neither replaced.
pub fn decode(bytes: &[u8]) -> String {
    let utf16 = |b: &[u8], be: bool| {
        let units = b.chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    match bytes {
        [0xfe, 0xff, rest @ ..] => utf16(rest, true),
        [0xff, 0xfe, rest @ ..] => utf16(rest, false),
        [0xef, 0xbb, 0xbf, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// One text: its parts' files, in order.
pub(super) struct Received {
    pub(super) key: String,
    pub(super) phone: String,
    /// (part number, file), in order.
    pub(super) files: Vec<(u32, PathBuf)>,
    pub(super) binary: bool,
}

impl Gateway {
    /// Received texts in the inbox, oldest first, parts grouped; texts whose newest
    /// part is younger than [`SETTLE`] wait for the next pass.
    pub(super) fn received(&self) -> std::io::Result<Vec<Received>> {
        let mut groups: HashMap<String, Received> = HashMap::new();
        let mut fresh_keys = HashSet::new();
        for entry in std::fs::read_dir(&self.cfg.inbox)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((phone, key, part)) = inbox_name(&name) else {
                continue;
            };
            let fresh = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() < SETTLE)
                .unwrap_or(false);
            if fresh {
                fresh_keys.insert(key.clone());
            }
            let g = groups.entry(key.clone()).or_insert_with(|| Received {
                key,
                phone,
                files: Vec::new(),
                binary: false,
            });
            g.files.push((part, entry.path()));
            g.binary |= name.ends_with(".bin");
        }
        let mut out: Vec<Received> = groups
            .into_values()
            .filter(|g| !fresh_keys.contains(&g.key))
            .map(|mut g| {
                g.files.sort();
                g
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Handles up to [`BATCH`] received texts. Returns how many.
    pub(super) fn take_inbox(&self) -> Result<usize, PassError> {
        let all = self.received()?;
        let n = all.len().min(BATCH);
        let mut done = Vec::new();
        for r in all.into_iter().take(n) {
            match self.take(&r) {
                Ok(()) => done.push(r),
                Err(e) => {
                    warn!(error = %e, file = %r.key, "SMS gateway: a text could not be handled now; it stays in the inbox and is tried again");
                    break;
                }
            }
        }
        // Records first, then the files: a crash in between finds the records.
        self.db.flush()?;
        let handled = self.cfg.inbox.join(config::HANDLED);
        for r in &done {
            for (_, f) in &r.files {
                if let Some(name) = f.file_name() {
                    if let Err(e) = std::fs::rename(f, handled.join(name)) {
                        warn!(error = %e, file = %f.display(), "SMS gateway: could not move a handled text");
                    }
                }
            }
        }
        Ok(done.len())
    }

    /// Handles one text: posted, checked in, stopped or put up for review, and recorded
    /// (not yet flushed).
    pub(super) fn take(&self, r: &Received) -> Result<(), PassError> {
        if self.db.texts.contains_key(&r.key)? {
            return Ok(()); // handled before a crash; only the move was left
        }
        let mut bytes = Vec::new();
        let mut decoded = String::new();
        for (_, f) in &r.files {
            let part = std::fs::read(f).map_err(|source| PassError::File {
                path: f.clone(),
                source,
            })?;
            // Each part of a long text is a file of its own, with its own byte-order mark.
            decoded.push_str(&decode(&part));
            bytes.extend(part);
        }
        let fp =
            hex::encode(&blake3::hash(&[r.key.as_bytes(), b"\n", &bytes].concat()).as_bytes()[..8]);
        let now = self.engine.now_ms();
        self.db
            .count(&format!("in:{}", calendar::basic_date(now)))?;
        let body = if r.binary {
            format!("(binary message, {} bytes)", bytes.len())
        } else {
            decoded
        };
        let review = |reason: String, suggestion: Option<Suggestion>, lang: Lang| {
            self.to_review(r, &fp, &body, reason, suggestion, lang, now)
        };
        let outcome = if r.binary {
            review(
                "a binary (8-bit) message: a picture, ringtone or MMS notice".into(),
                None,
                Lang::En,
            )?;
            "review"
        } else if self.throttled(&r.phone) {
            let suggestion = match text::read(&body) {
                Reading::Post(q) | Reading::Unclear(_, Some(q)) => Some(suggest(&q, "normal")),
                _ => None,
            };
            review(
                format!(
                    "more than {} texts a minute from this number",
                    self.opts.per_number_per_minute
                ),
                suggestion,
                Lang::En,
            )?;
            "review"
        } else {
            match text::read(&body) {
                Reading::Post(q) => {
                    let _w = lock(&self.write);
                    match self.post(&q, &fp, &r.phone, &format!("got:{}", r.key), now) {
                        Ok(_) => "posted",
                        Err(e @ (ResolveError::Ingest(_) | ResolveError::Invalid(_))) => {
                            review(
                                format!("could not be posted: {e}"),
                                Some(suggest(&q, "normal")),
                                q.lang,
                            )?;
                            "review"
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Reading::Safe(lang) => self.welfare(r, &fp, &body, None, lang, now)?,
                Reading::Help(lang, what) => self.welfare(r, &fp, &body, Some(what), lang, now)?,
                Reading::Stop => {
                    self.db
                        .stopped
                        .insert(db::number_key(&r.phone), &now.to_be_bytes())?;
                    "stop"
                }
                Reading::Unclear(why, s) => {
                    let lang = s.as_ref().map_or(Lang::En, |q| q.lang);
                    review(
                        why.describe().to_string(),
                        s.map(|q| suggest(&q, "normal")),
                        lang,
                    )?;
                    "review"
                }
            }
        };
        self.db.texts.insert(
            r.key.as_bytes(),
            db::json(&json!({ "at_ms": now, "outcome": outcome })),
        )?;
        Ok(())
    }

    /// Whether `phone` texted more than its share in the last minute (this one
    /// counted).
    pub(super) fn throttled(&self, phone: &str) -> bool {
        let mut recent = lock(&self.recent);
        let now = Instant::now();
        recent.retain(|_, q| {
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
            {
                q.pop_front();
            }
            !q.is_empty()
        });
        let q = recent.entry(phone.to_string()).or_default();
        q.push_back(now);
        q.len() > self.opts.per_number_per_minute as usize
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn to_review(
        &self,
        r: &Received,
        fp: &str,
        body: &str,
        reason: String,
        suggestion: Option<Suggestion>,
        lang: Lang,
        now: u64,
    ) -> Result<(), PassError> {
        let id = fp[..8].to_string();
        let item = ReviewItem {
            id: id.clone(),
            at_ms: now,
            phone: r.phone.clone(),
            text: body
                .chars()
                .take(aidmesh_protocol::sms::MAX_TEXT_CHARS)
                .collect(),
            reason,
            suggestion,
            fingerprint: fp.to_string(),
            lang: lang.code().into(),
        };
        self.db.review.insert(id.as_bytes(), db::json(&item))?;
        Ok(())
    }

    /// Posts a texted need or offer (unless its fingerprint shows it was posted before
    /// a crash), records its sender and queues the reply. Returns the event.
    pub(super) fn post(
        &self,
        q: &Request,
        fp: &str,
        phone: &str,
        why: &str,
        now: u64,
    ) -> Result<EventId, ResolveError> {
        self.post_with(q, Urgency::Normal, fp, phone, why, now)
    }

    pub(super) fn post_with(
        &self,
        q: &Request,
        urgency: Urgency,
        fp: &str,
        phone: &str,
        why: &str,
        now: u64,
    ) -> Result<EventId, ResolveError> {
        let reference = &fp[..6];
        let hub = self.hub_name();
        let known = lock(&self.posted).get(fp).copied();
        let id = match known {
            Some(id) => id,
            None => {
                let post = Post {
                    place: Place {
                        label: q.place.clone(),
                        coords: None,
                    },
                    contact: format!("by SMS, ref {reference}"),
                    details: format!("Texted to the SMS gateway at {hub}; text {fp}."),
                    ..Post::new(q.title.clone(), q.category, urgency)
                };
                let body = match q.kind {
                    Kind::Need => Body::Need(post),
                    Kind::Offer => Body::Offer(post),
                };
                let e = self.engine.post(body)?;
                if std::env::var_os(ABORT_AFTER_POST).is_some_and(|f| Path::new(&f).exists()) {
                    // Testing: the crash between a durable event and everything after it.
                    std::process::abort();
                }
                lock(&self.posted).insert(fp.to_string(), e.id());
                e.id()
            }
        };
        let sender = Sender {
            phone: phone.to_string(),
            lang: q.lang.code().into(),
            reference: reference.to_string(),
            kind: q.kind.name().into(),
            title: q.title.clone(),
            at_ms: now,
            notified: Vec::new(),
        };
        if !self.db.senders.contains_key(id.0)? {
            self.db.senders.insert(id.0, db::json(&sender))?;
        }
        self.queue_reply(why, phone, &text::reply_got(q, reference, &hub), now)?;
        Ok(id)
    }
}

/// The fingerprint in a texted event's details or note ("... text 0123456789abcdef.").
pub(super) fn fingerprint_in(s: &str) -> Option<String> {
    let i = s.rfind("text ")?;
    let fp: String = s[i + 5..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (fp.len() == 16).then_some(fp)
}

pub(super) fn suggest(q: &Request, urgency: &str) -> Suggestion {
    Suggestion {
        kind: q.kind.name().into(),
        title: q.title.clone(),
        category: q.category.name().into(),
        place: q.place.clone(),
        urgency: urgency.into(),
    }
}
