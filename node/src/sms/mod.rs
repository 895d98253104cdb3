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
//!
//! The work is split by job: [`inbox`] reads and files texts, [`replies`] queues and
//! hands replies to the daemon (and tells senders of changes), [`review`] is the list
//! of texts a person must look at, [`rounds`] is welfare by text (`OK` / `HELP` and the
//! round's question). This file holds the gateway itself, its start and its loop.

pub mod config;
pub mod db;
mod inbox;
mod replies;
mod review;
mod rounds;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aidmesh_protocol::calendar;
use aidmesh_protocol::{Body, EventId};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::engine::Engine;
use db::Db;
use inbox::fingerprint_in;

pub use inbox::{decode, inbox_name};
pub use review::{Resolve, ResolveError};

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

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The daemon's configuration is unusable (which setting, and what to do).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The gateway's own records (`<data-dir>/sms`) cannot be opened.
    #[error("cannot open the SMS gateway's records in {}: {source}", .dir.display())]
    Records {
        /// `<data-dir>/sms`.
        dir: PathBuf,
        /// What the database said.
        source: db::DbError,
    },
    /// Its thread could not be started.
    #[error("cannot start the SMS gateway: {0}")]
    Thread(std::io::Error),
}

/// Why a pass over the inbox or the outbox stopped short: logged, and the pass is tried
/// again (nothing is lost: the texts stay in the inbox, the replies in the queue).
#[derive(Debug, thiserror::Error)]
enum PassError {
    /// A file of the daemon's could not be read or written.
    #[error("{}: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A folder could not be listed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The gateway's records failed.
    #[error(transparent)]
    Db(#[from] sled::Error),
    /// A text could not be posted, and not for a reason review can help with.
    #[error(transparent)]
    Post(#[from] ResolveError),
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

impl Gateway {
    /// Checks the daemon's configuration, opens the gateway's records and starts its
    /// thread, which stops when `stop` flips. Refuses (with what to fix) a config that
    /// is missing, not the files backend, or names folders this node cannot use.
    pub fn start(
        opts: SmsOptions,
        data_dir: &Path,
        engine: Arc<Engine>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Gateway>, StartError> {
        let gw = Gateway::open(opts, data_dir, engine)?;
        let runner = gw.clone();
        std::thread::Builder::new()
            .name("sms-gateway".into())
            .spawn(move || runner.run(stop))
            .map_err(StartError::Thread)?;
        info!(inbox = %gw.cfg.inbox.display(), outbox = %gw.cfg.outbox.display(), "SMS gateway running");
        Ok(gw)
    }

    /// [`Gateway::start`] without its thread: the config checked, the records opened,
    /// this hub's texted events indexed.
    fn open(
        opts: SmsOptions,
        data_dir: &Path,
        engine: Arc<Engine>,
    ) -> Result<Arc<Gateway>, StartError> {
        let cfg = config::read(&opts.smsdrc)?;
        if cfg.inbox_format.as_deref() != Some("unicode") {
            warn!(config = %cfg.path.display(), "the SMS daemon's InboxFormat is not unicode: accents and emoji in texts are lost unless it runs in a UTF-8 locale; set InboxFormat = unicode (docs/sms.md)");
        }
        if cfg.sent.is_none() {
            warn!("the SMS daemon sets no SentSMSPath: sent replies are deleted, so a crash just after one is handed over may send it again; set SentSMSPath (docs/sms.md)");
        }
        let db = Db::open(data_dir).map_err(|source| StartError::Records {
            dir: data_dir.join("sms"),
            source,
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
    ) -> Result<Option<Arc<Gateway>>, StartError> {
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
            let mine = v.author_index(&me);
            for h in v.heads(now) {
                if Some(h.author()) != mine || h.created.millis() < since {
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
        *lock(&self.posted) = found;
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
        let mut d = lock(&self.daemon);
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
        let oldest_day = calendar::basic_date(before);
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
        let d = lock(&self.daemon).clone();
        let out_today = self
            .db
            .counted(&format!("out:{}", calendar::basic_date(now)));
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
            "today": { "in": self.db.counted(&format!("in:{}", calendar::basic_date(now))), "out": out_today },
            "review": self.db.review.len(),
            "waiting": waiting,
            "daily_cap": self.opts.daily_cap,
            "cap_reached": self.opts.daily_cap.is_some_and(|c| out_today >= u64::from(c)),
            "per_number_per_minute": self.opts.per_number_per_minute,
            "numbers_kept_days": KEEP.as_secs() / 86_400,
        })
    }
}

/// The lock of `m`, also after a thread panicked holding it (the gateway's maps are
/// caches and counters: whatever they hold is still usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
