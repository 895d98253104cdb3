//! The SMS gateway (issue 26): a node next to a running **gammu-smsd** with its files
//! backend takes texted needs and offers, `OK` / `HELP` from people on the welfare
//! register and `STOP`, and texts one reply each, and a text to the sender when their
//! item is claimed, in progress or fulfilled anywhere in the mesh.
//!
//! - [`config`] reads the daemon's own configuration and refuses an unusable one.
//! - The gateway thread ([`Gateway::start`]) polls the daemon's inbox folder every
//!   [`POLL`], reads each text with [`aidmesh_protocol::sms::read`], posts through the
//!   engine like any other write (the board shows "by SMS, ref 3f2a9c"; the number
//!   is **not** in the event: it stays in this hub's `<data-dir>/sms` database, [`db`],
//!   and expires after [`KEEP`]), and moves the inbox file into `aidmesh-handled/`
//!   only after the event and the gateway's record of it are durable.
//! - A text that is not read with confidence, is binary, or is one too many from its
//!   number in a minute goes to the review list; nothing is dropped.
//! - Replies wait in order in the database and are written into the daemon's outbox
//!   (UTF-16 with a byte-order mark, which the daemon reads whatever its locale) under a
//!   name fixed when queued, at most `daily_cap` a day (UTC).
//!
//! Exactly once: a text's event carries the text's fingerprint (in its details), and at
//! start the gateway indexes its own recent events by fingerprint, so a crash between
//! the event and the inbox move neither loses the text nor posts it twice. A reply is
//! queued once per reason (`replied` tree) and written under its fixed name only if no
//! file of that name is in the outbox, sent or error folder. Replies leave from the
//! hub that received the text: only it holds the number.

pub mod config;
pub mod db;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidmesh_protocol::body::{CheckIn, Outcome, Place, Post, Status, Urgency};
use aidmesh_protocol::sms::{self as text, Kind, Lang, Reading, Request};
use aidmesh_protocol::{Body, Category, EventId};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::engine::{Engine, IngestError};
use db::{Db, Reply, ReviewItem, Sender, Suggestion};

/// How often the inbox folder is looked at.
pub const POLL: Duration = Duration::from_millis(200);
/// How long the gateway keeps a number (and a handled inbox file) after its text.
pub const KEEP: Duration = Duration::from_secs(30 * 86_400);
/// Texts a minute one number may send before the rest go to review, by default.
pub const DEFAULT_PER_NUMBER_PER_MINUTE: u32 = 5;
/// Texts handled per pass, so status replies and the outbox are not held up by a burst.
const BATCH: usize = 256;
/// A file younger than this may still be being written by the daemon.
const SETTLE: Duration = Duration::from_millis(100);
/// Testing: while the file this environment variable names exists, the node aborts right after a texted
/// event is durable, before the gateway records it or moves the inbox file.
pub const ABORT_AFTER_POST: &str = "AIDMESH_TEST_SMS_ABORT_AFTER_POST";
/// How often the daemon's shared status is read (`gammu-smsd-monitor`).
const MONITOR_EVERY: Duration = Duration::from_secs(10);

/// What `aidmesh up --sms-gateway` asks for.
#[derive(Debug, Clone)]
pub struct SmsOptions {
    /// The daemon's configuration file (gammu-smsdrc).
    pub smsdrc: PathBuf,
    /// Most replies handed to the daemon a day (UTC); `None`: no cap.
    pub daily_cap: Option<u32>,
    /// Texts a minute one number may send; the excess goes to review.
    pub per_number_per_minute: u32,
}

impl SmsOptions {
    /// Options for the daemon configured by `smsdrc`, no cap.
    pub fn new(smsdrc: PathBuf) -> Self {
        SmsOptions {
            smsdrc,
            daily_cap: None,
            per_number_per_minute: DEFAULT_PER_NUMBER_PER_MINUTE,
        }
    }
}

/// What the daemon's shared memory said last.
#[derive(Debug, Clone, Default)]
struct Daemon {
    seen: Option<bool>,
    checked_ms: u64,
    detail: String,
    signal: Option<i64>,
    battery: Option<i64>,
}

/// The running gateway: shared with the API.
pub struct Gateway {
    cfg: config::Smsdrc,
    opts: SmsOptions,
    db: Db,
    engine: Arc<Engine>,
    daemon: Mutex<Daemon>,
    /// Fingerprint → event, of this hub's texted events (see the module docs).
    posted: Mutex<HashMap<String, EventId>>,
    /// When each number texted lately (throttling).
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Serialises posting from the thread and the API (review actions, rounds).
    write: Mutex<()>,
}

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

fn day(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let (y, m, d) = civil(days);
    format!("{y:04}{m:02}{d:02}")
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn hms(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}{:02}{:02}", s / 3600, (s / 60) % 60, s % 60)
}

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

/// A number fit for an outbox file name: `+` and digits, spaces, dashes, dots and
/// brackets dropped. `None`: no reply can go there (an operator's name such as
/// "Vodafone" or "BANK123", an empty sender).
fn reply_number(phone: &str) -> Option<String> {
    let p = phone.trim();
    if p.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    aidmesh_protocol::sms::normalise_number(p)
}

/// One text: its parts' files, in order.
struct Received {
    key: String,
    phone: String,
    /// (part number, file), in order.
    files: Vec<(u32, PathBuf)>,
    binary: bool,
}

impl Gateway {
    /// Checks the daemon's configuration, opens the gateway's records and starts its
    /// thread, which stops when `stop` flips. Refuses (with what to fix) a config that
    /// is missing, not the files backend, or names folders this node cannot use.
    pub fn start(
        opts: SmsOptions,
        data_dir: &Path,
        engine: Arc<Engine>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Gateway>, String> {
        let gw = Gateway::open(opts, data_dir, engine)?;
        let runner = gw.clone();
        std::thread::Builder::new()
            .name("sms-gateway".into())
            .spawn(move || runner.run(stop))
            .map_err(|e| format!("cannot start the SMS gateway: {e}"))?;
        info!(inbox = %gw.cfg.inbox.display(), outbox = %gw.cfg.outbox.display(), "SMS gateway running");
        Ok(gw)
    }

    /// [`Gateway::start`] without its thread: the config checked, the records opened,
    /// this hub's texted events indexed.
    fn open(
        opts: SmsOptions,
        data_dir: &Path,
        engine: Arc<Engine>,
    ) -> Result<Arc<Gateway>, String> {
        let cfg = config::read(&opts.smsdrc)?;
        if cfg.inbox_format.as_deref() != Some("unicode") {
            warn!(config = %cfg.path.display(), "the SMS daemon's InboxFormat is not unicode: accents and emoji in texts are lost unless it runs in a UTF-8 locale; set InboxFormat = unicode (docs/sms.md)");
        }
        if cfg.sent.is_none() {
            warn!("the SMS daemon sets no SentSMSPath: sent replies are deleted, so a crash just after one is handed over may send it again; set SentSMSPath (docs/sms.md)");
        }
        let db = Db::open(data_dir).map_err(|e| {
            format!(
                "cannot open the SMS gateway's records in {}: {e}",
                data_dir.join("sms").display()
            )
        })?;
        let gw = Arc::new(Gateway {
            cfg,
            opts,
            db,
            engine,
            daemon: Mutex::default(),
            posted: Mutex::default(),
            recent: Mutex::default(),
            write: Mutex::new(()),
        });
        gw.index_posted();
        Ok(gw)
    }

    /// [`Gateway::start`] when `opts` asks for a gateway.
    pub fn start_if(
        opts: Option<SmsOptions>,
        data_dir: &Path,
        engine: &Arc<Engine>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<Arc<Gateway>>, String> {
        opts.map(|o| Gateway::start(o, data_dir, engine.clone(), stop.clone()))
            .transpose()
    }

    /// Indexes this hub's texted events of the last [`KEEP`] by fingerprint (their
    /// details end "text <fingerprint>.").
    fn index_posted(&self) {
        let me = self.engine.identity().author();
        let now = self.engine.now_ms();
        let since = now.saturating_sub(KEEP.as_millis() as u64);
        let mut found = HashMap::new();
        self.engine.with_view(|v| {
            for h in v.heads(now) {
                if h.author != me || h.created.millis() < since {
                    continue;
                }
                if let Some(item) = v.item(&h.id, now) {
                    if let Some(fp) = fingerprint_in(&item.post.details) {
                        found.insert(fp, h.id);
                    }
                }
            }
            for p in v.people() {
                for c in &p.checks {
                    if c.author == me {
                        if let Some(fp) = fingerprint_in(&c.check.note) {
                            found.insert(fp, c.id);
                        }
                    }
                }
            }
        });
        *self.posted.lock().unwrap_or_else(|p| p.into_inner()) = found;
    }

    fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut events = self.engine.subscribe();
        let mut last_monitor: Option<Instant> = None;
        let mut last_expiry: Option<Instant> = None;
        let mut check_all = true;
        loop {
            if *stop.borrow() {
                break;
            }
            let mut targets = HashSet::new();
            loop {
                match events.try_recv() {
                    Ok(e) => {
                        if let Some(Body::Status(s)) = e.body {
                            targets.insert(s.target);
                        }
                    }
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                        check_all = true;
                    }
                    Err(_) => break,
                }
            }
            if check_all {
                check_all = false;
                if let Err(e) = self.tell_all_changes() {
                    warn!(error = %e, "SMS gateway: could not look for changed items");
                }
            }
            for t in targets {
                if let Err(e) = self.tell_changes(&t) {
                    warn!(error = %e, "SMS gateway: could not look at a changed item");
                }
            }
            let busy = match self.take_inbox() {
                Ok(n) => n > 0,
                Err(e) => {
                    warn!(error = %e, "SMS gateway: reading the inbox failed; trying again");
                    false
                }
            };
            if let Err(e) = self.hand_over() {
                warn!(error = %e, "SMS gateway: writing replies to the outbox failed; trying again");
            }
            if last_monitor.is_none_or(|t| t.elapsed() >= MONITOR_EVERY) {
                last_monitor = Some(Instant::now());
                self.monitor();
            }
            if last_expiry.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_expiry = Some(Instant::now());
                if let Err(e) = self.expire(self.engine.now_ms()) {
                    warn!(error = %e, "SMS gateway: could not let go of old numbers");
                }
            }
            if !busy {
                std::thread::sleep(POLL);
            }
        }
    }

    /// Received texts in the inbox, oldest first, parts grouped; texts whose newest
    /// part is younger than [`SETTLE`] wait for the next pass.
    fn received(&self) -> std::io::Result<Vec<Received>> {
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
    fn take_inbox(&self) -> Result<usize, String> {
        let all = self.received().map_err(|e| e.to_string())?;
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
        self.db.flush().map_err(|e| e.to_string())?;
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
    fn take(&self, r: &Received) -> Result<(), String> {
        if self
            .db
            .texts
            .contains_key(&r.key)
            .map_err(|e| e.to_string())?
        {
            return Ok(()); // handled before a crash; only the move was left
        }
        let mut bytes = Vec::new();
        let mut decoded = String::new();
        for (_, f) in &r.files {
            let part = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            // Each part of a long text is a file of its own, with its own byte-order mark.
            decoded.push_str(&decode(&part));
            bytes.extend(part);
        }
        let fp =
            hex::encode(&blake3::hash(&[r.key.as_bytes(), b"\n", &bytes].concat()).as_bytes()[..8]);
        let now = self.engine.now_ms();
        self.db
            .count(&format!("in:{}", day(now)))
            .map_err(|e| e.to_string())?;
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
                    let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
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
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Reading::Safe(lang) => self.welfare(r, &fp, &body, None, lang, now)?,
                Reading::Help(lang, what) => self.welfare(r, &fp, &body, Some(what), lang, now)?,
                Reading::Stop => {
                    self.db
                        .stopped
                        .insert(db::number_key(&r.phone), &now.to_be_bytes())
                        .map_err(|e| e.to_string())?;
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
        self.db
            .texts
            .insert(
                r.key.as_bytes(),
                db::json(&json!({ "at_ms": now, "outcome": outcome })),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Whether `phone` texted more than its share in the last minute (this one
    /// counted).
    fn throttled(&self, phone: &str) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
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
    fn to_review(
        &self,
        r: &Received,
        fp: &str,
        body: &str,
        reason: String,
        suggestion: Option<Suggestion>,
        lang: Lang,
        now: u64,
    ) -> Result<(), String> {
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
        self.db
            .review
            .insert(id.as_bytes(), db::json(&item))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// `OK` / `HELP` from a number: a check-in if it is on the welfare register, else
    /// review.
    fn welfare(
        &self,
        r: &Received,
        fp: &str,
        body: &str,
        help: Option<String>,
        lang: Lang,
        now: u64,
    ) -> Result<&'static str, String> {
        let person = self.engine.with_view(|v| {
            v.people()
                .into_iter()
                .find(|p| text::same_number(&p.person.phone, &r.phone))
                .map(|p| p.id)
        });
        let Some(person) = person else {
            let (reason, suggestion) = match &help {
                None => (
                    "OK from a number not on the welfare register".to_string(),
                    None,
                ),
                Some(what) => (
                    "HELP from a number not on the welfare register".to_string(),
                    Some(Suggestion {
                        kind: "need".into(),
                        title: if what.is_empty() {
                            "Help needed (texted HELP)".into()
                        } else {
                            text::one_line(what, aidmesh_protocol::body::MAX_TITLE)
                        },
                        category: text::guess_category(what).name().into(),
                        place: String::new(),
                        urgency: "high".into(),
                    }),
                ),
            };
            self.to_review(r, fp, body, reason, suggestion, lang, now)?;
            return Ok("review");
        };
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let known = self
            .posted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(fp);
        if !known {
            let note = format!("by SMS; text {fp}.");
            let check = |outcome| CheckIn {
                person,
                outcome,
                note: note.clone(),
                by: "self".into(),
            };
            let posted = match &help {
                None => self.engine.post(Body::CheckIn(check(Outcome::Safe))),
                Some(what) => {
                    let what = if what.is_empty() {
                        "asked for help by text".to_string()
                    } else {
                        what.chars()
                            .take(aidmesh_protocol::body::MAX_NOTE)
                            .collect()
                    };
                    self.engine
                        .check_in(check(Outcome::NeedsHelp(what)))
                        .map(|(c, _)| c)
                }
            };
            match posted {
                Ok(e) => {
                    self.posted
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(fp.to_string(), e.id());
                }
                Err(e) => {
                    self.to_review(
                        r,
                        fp,
                        body,
                        format!("check-in could not be recorded: {e}"),
                        None,
                        lang,
                        now,
                    )?;
                    return Ok("review");
                }
            }
        }
        let hub = self.hub_name();
        self.queue_reply(
            &format!("got:{}", r.key),
            &r.phone,
            &text::reply_checkin(lang, help.is_none(), &hub),
            now,
        )
        .map_err(|e| e.to_string())?;
        Ok(if help.is_none() { "safe" } else { "help" })
    }

    /// Posts a texted need or offer (unless its fingerprint shows it was posted before
    /// a crash), records its sender and queues the reply. Returns the event.
    fn post(
        &self,
        q: &Request,
        fp: &str,
        phone: &str,
        why: &str,
        now: u64,
    ) -> Result<EventId, ResolveError> {
        self.post_with(q, Urgency::Normal, fp, phone, why, now)
    }

    fn post_with(
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
        let known = self
            .posted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(fp)
            .copied();
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
                self.posted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(fp.to_string(), e.id());
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

    /// Queues a reply (once per `why`); none to a number that said STOP or is not a
    /// phone number.
    fn queue_reply(
        &self,
        why: &str,
        phone: &str,
        body: &str,
        now: u64,
    ) -> Result<bool, sled::Error> {
        let Some(to) = reply_number(phone) else {
            return Ok(false);
        };
        if self.db.stopped.contains_key(db::number_key(phone))? {
            return Ok(false);
        }
        let seq = self.db.next_id()?;
        let file = format!(
            "OUTB{}_{}_{:03}_{to}_aidmesh{seq}.txt",
            day(now),
            hms(now),
            seq % 1000
        );
        self.db.queue(
            why,
            &Reply {
                to,
                text: text::one_segment(body),
                file,
                queued_ms: now,
            },
        )
    }

    /// This hub's name: its newest announced hub, else "<community> hub".
    fn hub_name(&self) -> String {
        let me = self.engine.identity().author();
        self.engine
            .with_view(|v| {
                v.hubs()
                    .into_iter()
                    .filter(|h| h.author == me)
                    .max_by_key(|h| h.at)
                    .map(|h| h.hub.name)
            })
            .unwrap_or_else(|| format!("{} hub", self.engine.community()))
    }

    /// Writes waiting replies into the daemon's outbox, in order, within the day's cap.
    fn hand_over(&self) -> Result<usize, String> {
        let today = format!("out:{}", day(self.engine.now_ms()));
        let mut written = 0;
        for kv in self.db.outq.iter() {
            let (k, v) = kv.map_err(|e| e.to_string())?;
            let Some(reply) = db::parse::<Reply>(&v) else {
                self.db.outq.remove(k).map_err(|e| e.to_string())?;
                continue;
            };
            if self
                .db
                .stopped
                .contains_key(db::number_key(&reply.to))
                .map_err(|e| e.to_string())?
            {
                self.db.outq.remove(k).map_err(|e| e.to_string())?;
                continue;
            }
            let already = [
                Some(&self.cfg.outbox),
                self.cfg.sent.as_ref(),
                self.cfg.error.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|d| d.join(&reply.file).exists());
            if !already {
                if self
                    .opts
                    .daily_cap
                    .is_some_and(|cap| self.db.counted(&today) >= u64::from(cap))
                {
                    break; // waits, in order, for tomorrow
                }
                write_outbox(&self.cfg.outbox, &reply)
                    .map_err(|e| format!("{}: {e}", reply.file))?;
                self.db.count(&today).map_err(|e| e.to_string())?;
                written += 1;
            }
            self.db.outq.remove(k).map_err(|e| e.to_string())?;
        }
        if written > 0 {
            if let Ok(d) = std::fs::File::open(&self.cfg.outbox) {
                let _ = d.sync_all();
            }
        }
        self.db.flush().map_err(|e| e.to_string())?;
        Ok(written)
    }

    /// Texts the senders of every texted item that changed since they were last told.
    fn tell_all_changes(&self) -> Result<(), sled::Error> {
        let ids: Vec<EventId> = self
            .db
            .senders
            .iter()
            .keys()
            .filter_map(|k| k.ok().and_then(|k| <[u8; 32]>::try_from(k.as_ref()).ok()))
            .map(EventId)
            .collect();
        for id in ids {
            self.tell_changes(&id)?;
        }
        Ok(())
    }

    /// Texts the sender of item `id` (if it came by text to this hub) once per applied
    /// change to claimed, in progress or fulfilled that they were not told of yet.
    fn tell_changes(&self, id: &EventId) -> Result<(), sled::Error> {
        let Some(raw) = self.db.senders.get(id.0)? else {
            return Ok(());
        };
        let Some(mut sender) = db::parse::<Sender>(&raw) else {
            return Ok(());
        };
        let now = self.engine.now_ms();
        let Some(item) = self.engine.with_view(|v| v.item(id, now)) else {
            return Ok(());
        };
        let hubs = self.engine.with_view(|v| v.hubs());
        let mut changed = false;
        for c in item.history.iter().filter(|c| c.applied) {
            let hex = c.id.to_hex();
            if sender.notified.contains(&hex) {
                continue;
            }
            let change = match c.status {
                Status::Claimed => text::Change::Claimed,
                Status::InProgress => text::Change::InProgress,
                Status::Fulfilled => text::Change::Fulfilled,
                _ => {
                    sender.notified.push(hex);
                    changed = true;
                    continue;
                }
            };
            let hub = hubs
                .iter()
                .filter(|h| h.author == c.author)
                .max_by_key(|h| h.at)
                .map_or_else(|| "a hub".to_string(), |h| h.hub.name.clone());
            let kind = if sender.kind == "offer" {
                Kind::Offer
            } else {
                Kind::Need
            };
            let body = text::reply_change(
                Lang::from_code(&sender.lang),
                kind,
                change,
                c.by().unwrap_or(""),
                &hub,
                &sender.title,
                &sender.reference,
            );
            self.queue_reply(&format!("change:{hex}"), &sender.phone, &body, now)?;
            sender.notified.push(hex);
            changed = true;
        }
        if changed {
            self.db.senders.insert(id.0, db::json(&sender))?;
            self.db.flush()?;
        }
        Ok(())
    }

    /// Reads the daemon's shared status with `gammu-smsd-monitor` (bounded to 3 s).
    fn monitor(&self) {
        let now = self.engine.now_ms();
        let out = run_bounded(
            std::process::Command::new("gammu-smsd-monitor")
                .arg("-c")
                .arg(&self.cfg.path)
                .args(["-n", "1", "-d", "0"]),
            Duration::from_secs(3),
        );
        let mut d = self.daemon.lock().unwrap_or_else(|p| p.into_inner());
        d.checked_ms = now;
        match out {
            Ok((true, stdout)) => {
                d.seen = Some(true);
                let field = |name: &str| {
                    stdout
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .and_then(|v| v.trim().parse::<i64>().ok())
                };
                d.signal = field("NetworkSignal:");
                d.battery = field("BatterPercent:");
                d.detail = "running (gammu-smsd-monitor answered)".into();
            }
            Ok((false, _)) => {
                d.seen = Some(false);
                d.detail = format!("not running: gammu-smsd-monitor -c {} found no daemon for this configuration; texts wait in the modem and replies in the outbox until it runs", self.cfg.path.display());
            }
            Err(e) => {
                d.seen = None;
                d.detail = format!(
                    "unknown: cannot run gammu-smsd-monitor ({e}); install the gammu-smsd package"
                );
            }
        }
    }

    /// Lets go of numbers, dismissed texts, handled inbox files and counts older than
    /// [`KEEP`] (as of `now_ms`). Returns how many records went.
    pub fn expire(&self, now_ms: u64) -> Result<usize, sled::Error> {
        let before = now_ms.saturating_sub(KEEP.as_millis() as u64);
        let mut gone = 0;
        for tree in [&self.db.senders, &self.db.dismissed, &self.db.texts] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                let at = serde_json::from_slice::<Value>(&v)
                    .ok()
                    .and_then(|v| v["at_ms"].as_u64())
                    .unwrap_or(0);
                if at < before {
                    tree.remove(k)?;
                    gone += 1;
                }
            }
        }
        let oldest_day = day(before);
        for kv in self.db.stats.iter() {
            let (k, _) = kv?;
            let key = String::from_utf8_lossy(&k).into_owned();
            if key
                .split(':')
                .nth(1)
                .is_some_and(|d| d < oldest_day.as_str())
            {
                self.db.stats.remove(k)?;
            }
        }
        let handled = self.cfg.inbox.join(config::HANDLED);
        if let Ok(entries) = std::fs::read_dir(&handled) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > KEEP)
                    .unwrap_or(false);
                if old && std::fs::remove_file(e.path()).is_ok() {
                    gone += 1;
                }
            }
        }
        self.db.flush()?;
        Ok(gone)
    }

    /// The gateway's state, for `aidmesh sms status` and the page.
    pub fn status(&self) -> Value {
        let now = self.engine.now_ms();
        let d = self
            .daemon
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let out_today = self.db.counted(&format!("out:{}", day(now)));
        let waiting = self.db.outq.len();
        json!({
            "gateway": true,
            "config": self.cfg.path.display().to_string(),
            "inbox": self.cfg.inbox.display().to_string(),
            "outbox": self.cfg.outbox.display().to_string(),
            "daemon": {
                "seen": d.seen, "checked_at": d.checked_ms, "detail": d.detail,
                "signal_percent": d.signal, "battery_percent": d.battery,
            },
            "today": { "in": self.db.counted(&format!("in:{}", day(now))), "out": out_today },
            "review": self.db.review.len(),
            "waiting": waiting,
            "daily_cap": self.opts.daily_cap,
            "cap_reached": self.opts.daily_cap.is_some_and(|c| out_today >= u64::from(c)),
            "per_number_per_minute": self.opts.per_number_per_minute,
            "numbers_kept_days": KEEP.as_secs() / 86_400,
        })
    }

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
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Texts everyone on the welfare register with a phone who is due a check-in
    /// (standing other than ok) the round's question, once a day each. Returns how many
    /// were queued and how many have no usable number.
    pub fn round(&self) -> Result<(usize, usize), sled::Error> {
        let now = self.engine.now_ms();
        let people = self.engine.with_view(|v| v.people());
        let hub = self.hub_name();
        let (mut queued, mut no_number) = (0, 0);
        for w in aidmesh_protocol::welfare::assess_all(&people, now) {
            if w.standing == aidmesh_protocol::welfare::Standing::Ok {
                continue;
            }
            let phone = w.person.person.phone.trim().to_string();
            if phone.is_empty() {
                continue;
            }
            let Some(number) = reply_number(&phone) else {
                no_number += 1;
                continue;
            };
            let lang = if w.person.person.note.to_lowercase().contains("español") {
                Lang::Es
            } else {
                Lang::En
            };
            let why = format!("round:{}:{}", w.person.id.to_hex(), day(now));
            if self.queue_reply(&why, &number, &text::round_question(lang, &hub), now)? {
                queued += 1;
            }
        }
        self.db.flush()?;
        Ok((queued, no_number))
    }
}

/// The fingerprint in a texted event's details or note ("... text 0123456789abcdef.").
fn fingerprint_in(s: &str) -> Option<String> {
    let i = s.rfind("text ")?;
    let fp: String = s[i + 5..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (fp.len() == 16).then_some(fp)
}

fn suggest(q: &Request, urgency: &str) -> Suggestion {
    Suggestion {
        kind: q.kind.name().into(),
        title: q.title.clone(),
        category: q.category.name().into(),
        place: q.place.clone(),
        urgency: urgency.into(),
    }
}

/// Writes a reply into the outbox: UTF-16LE with a byte-order mark (read the same
/// whatever the daemon's locale), under a dot name first and renamed into place, so
/// the daemon never reads half a file.
fn write_outbox(outbox: &Path, reply: &Reply) -> std::io::Result<()> {
    let tmp = outbox.join(format!(".aidmesh-{}", reply.file));
    let mut bytes = vec![0xff, 0xfe];
    for u in reply.text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, outbox.join(&reply.file))
}

/// Runs a command for at most `limit`: (exit status success, stdout).
fn run_bounded(
    cmd: &mut std::process::Command,
    limit: Duration,
) -> std::io::Result<(bool, String)> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let mut out = String::new();
            if let Some(mut s) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut s, &mut out);
            }
            return Ok((status.success(), out));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((false, String::new()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_names_and_parts() {
        assert_eq!(
            inbox_name("IN20261207_012630_00_+15551234_00.txt"),
            Some((
                "+15551234".into(),
                "IN20261207_012630_00_+15551234".into(),
                0
            ))
        );
        assert_eq!(
            inbox_name("IN20261207_012637_00_+34 600 111 222_01.txt").map(|x| (x.0, x.2)),
            Some(("+34 600 111 222".into(), 1))
        );
        assert_eq!(
            inbox_name("IN20261207_012630_00_Vodafone_00.bin").map(|x| x.0),
            Some("Vodafone".into())
        );
        assert_eq!(inbox_name("OUTx.txt"), None);
        assert_eq!(inbox_name("IN_bad.txt"), None);
        assert_eq!(inbox_name("IN20261207_012630_00_+1_00.smsbackup"), None);
        assert_eq!(reply_number("Vodafone"), None);
        assert_eq!(reply_number("+15551234").as_deref(), Some("+15551234"));
        assert_eq!(
            reply_number("+34 600-111 222").as_deref(),
            Some("+34600111222")
        );
        assert_eq!(reply_number("BANK123"), None);
    }

    #[test]
    fn files_in_every_inbox_format_decode() {
        assert_eq!(decode(b"NEED water"), "NEED water");
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("Jesús".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&be), "Jesús");
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("ñ😀".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&le), "ñ😀");
        // The daemon cuts an emoji's second half: one replacement character, no panic.
        assert_eq!(decode(&[0xfe, 0xff, 0x00, 0x41, 0xd8, 0x3d]), "A\u{fffd}");
        assert_eq!(decode(&[0xfe, 0xff, 0x00]), "");
        assert_eq!(decode(&[0xff, 0x41]), "\u{fffd}A");
    }

    #[test]
    fn days_and_fingerprints() {
        assert_eq!(day(0), "19700101");
        assert_eq!(day(1_796_601_600_000), "20261207");
        assert_eq!(hms(1_796_601_600_000 + 3_723_000), "010203");
        assert_eq!(
            fingerprint_in("Texted to the SMS gateway at X; text 0123456789abcdef."),
            Some("0123456789abcdef".into())
        );
        assert_eq!(fingerprint_in("no"), None);
    }

    #[test]
    fn numbers_dismissed_texts_and_handled_files_expire_after_keep() {
        let d = tempfile::tempdir().unwrap();
        for f in ["in", "out"] {
            std::fs::create_dir(d.path().join(f)).unwrap();
        }
        let conf = d.path().join("smsdrc");
        std::fs::write(
            &conf,
            format!(
                "[smsd]\nservice = files\ninboxpath = {0}/in/\noutboxpath = {0}/out/\ninboxformat = unicode\n",
                d.path().display()
            ),
        )
        .unwrap();
        let engine = Arc::new(
            Engine::open(
                crate::store::Store::open(&d.path().join("db")).unwrap(),
                aidmesh_protocol::Identity::from_seed([7; 32]),
                "test".into(),
                0,
            )
            .unwrap(),
        );
        let gw = Gateway::open(SmsOptions::new(conf), d.path(), engine).unwrap();
        let now = 1_796_601_600_000u64;
        let keep = KEEP.as_millis() as u64;
        let sender = |at_ms| Sender {
            phone: "+15551234".into(),
            lang: "en".into(),
            reference: "3f2a9c".into(),
            kind: "need".into(),
            title: "water".into(),
            at_ms,
            notified: Vec::new(),
        };
        gw.db
            .senders
            .insert([1; 32], db::json(&sender(now - keep - 1)))
            .unwrap();
        gw.db
            .senders
            .insert([2; 32], db::json(&sender(now - keep + 60_000)))
            .unwrap();
        gw.db
            .dismissed
            .insert(
                "old",
                db::json(&json!({ "at_ms": now - keep - 1, "phone": "+1555" })),
            )
            .unwrap();
        gw.db
            .stats
            .insert(
                format!("in:{}", day(now - keep - 86_400_000)),
                &1u64.to_be_bytes(),
            )
            .unwrap();
        gw.db
            .stats
            .insert(format!("in:{}", day(now)), &1u64.to_be_bytes())
            .unwrap();
        let handled = d.path().join("in").join(config::HANDLED);
        let old = handled.join("IN20261001_000000_00_+15551234_00.txt");
        let fresh = handled.join("IN20261207_000000_00_+15551234_00.txt");
        for f in [&old, &fresh] {
            std::fs::write(f, b"NEED water").unwrap();
        }
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - KEEP - Duration::from_secs(60))
            .unwrap();
        let gone = gw.expire(now).unwrap();
        assert_eq!(gone, 3, "one number, one dismissed text, one handled file");
        assert!(gw.db.senders.get([1; 32]).unwrap().is_none());
        assert!(
            gw.db.senders.get([2; 32]).unwrap().is_some(),
            "a number within KEEP stays"
        );
        assert!(gw.db.dismissed.is_empty());
        assert_eq!(gw.db.stats.len(), 1, "the old day's count went");
        assert!(!old.exists() && fresh.exists());
    }
}
