//! A load harness of simulated phones: each [`Phone`] behaves as the node's web page
//! does (`node/src/web/app.js`), so that N of them load a node as N open pages would.
//!
//! What a page does, and so what a phone does:
//! - **start**: it loads the page's files ([`PagePlan::assets`]), opens the live stream
//!   ([`PagePlan::stream`]) and then loads the board once ([`PagePlan::board`] with
//!   `?limit=`[`PagePlan::limit`]), on a second connection;
//! - **stream**: each `new` message carrying an `item` is applied to the cards shown
//!   (redrawn, added in its place or taken off) without a request; messages carrying
//!   `alerts` need nothing more; `hubs`, an erasure, a message it cannot read, a change
//!   to a card it does not show, `lagged` and a reconnected stream load the board again;
//!   a `known` message (issue 11) is drawn as it is, unless it says the roster changed;
//! - **timer**: every [`PagePlan::refresh_ms`] (the first time at a random moment
//!   within that period) it loads the board again, as a conditional request
//!   (`If-None-Match` with the board's last `ETag`);
//! - a stream refused (503 "this hub is busy") is opened again after
//!   [`PagePlan::stream_retry_ms`]; one that ends, after 3 s (as `EventSource`);
//! - board loads never overlap: one asked for while another runs starts when it ends.
//!
//! It is kept in step with the page in two ways: the endpoints, the page size and the
//! timer are read from the `REQUESTS` object in `app.js` (one list, not two), and
//! `tests/tests/phones_in_step.rs` records the requests of a real page in Chromium over
//! a lifecycle (start, a new need, two timer ticks) and compares them with a phone's.
//! A change to the page's requests that the harness does not follow fails that test.
//!
//! Phones speak HTTP/1.1 over tokio sockets (no client library), may bind their
//! sockets to a chosen source address (so that the node sees them as other machines),
//! and count every byte they read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Notify};

/// The page's own description of its requests (`REQUESTS` in `app.js`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePlan {
    /// Files a browser loads to show the page.
    pub assets: Vec<String>,
    /// The board: status, lists, hubs, alerts and categories in one answer.
    pub board: String,
    /// Cards per list asked for at start.
    pub limit: u64,
    /// The live stream (server-sent events).
    pub stream: String,
    /// The safety refresh's period.
    pub refresh_ms: u64,
    /// Whether the first safety refresh comes at a random moment within the period
    /// (else after one period).
    pub refresh_first_random: bool,
    /// Wait before opening the stream again after it was refused (a 503 "busy"; a
    /// browser's `EventSource` gives up on any answer but 200). A dropped stream is
    /// reopened after 3 s, as `EventSource` does.
    pub stream_retry_ms: u64,
}

/// The page's script, as the node serves it.
pub const APP_JS: &str = include_str!("../../node/src/web/app.js");

impl PagePlan {
    /// Reads the plan from the page's script (between `PAGE-REQUESTS-BEGIN` and
    /// `PAGE-REQUESTS-END`). Panics, naming what is wrong, if the page no longer has it.
    pub fn from_page() -> PagePlan {
        let start = APP_JS
            .find("// PAGE-REQUESTS-BEGIN")
            .expect("app.js has no PAGE-REQUESTS-BEGIN line: the harness cannot follow the page");
        let end = APP_JS[start..]
            .find("// PAGE-REQUESTS-END")
            .expect("app.js has no PAGE-REQUESTS-END line")
            + start;
        let block = &APP_JS[start..end];
        let json = block
            .split_once('{')
            .and_then(|(_, rest)| rest.rsplit_once('}'))
            .map(|(body, _)| format!("{{{body}}}"))
            .expect("REQUESTS in app.js is not an object");
        let v: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("REQUESTS in app.js is not JSON ({e}): {json}"));
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("REQUESTS.{k} is missing in app.js"))
                .to_string()
        };
        let n = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("REQUESTS.{k} is missing in app.js"))
        };
        let assets = v["assets"]
            .as_array()
            .expect("REQUESTS.assets is missing in app.js")
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let plan = PagePlan {
            assets,
            board: s("board"),
            limit: n("limit"),
            stream: s("stream"),
            refresh_ms: n("refresh_ms"),
            refresh_first_random: v["refresh_first_random"].as_bool().unwrap_or(false),
            stream_retry_ms: n("stream_retry_ms"),
        };
        let known: Vec<&str> = vec![
            "assets",
            "board",
            "limit",
            "stream",
            "refresh_ms",
            "refresh_first_random",
            "stream_retry_ms",
        ];
        for k in v
            .as_object()
            .map(|o| o.keys().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            assert!(
                known.contains(&k.as_str()),
                "app.js's REQUESTS has `{k}`, which the harness (tests/src/phones.rs) does not follow"
            );
        }
        plan
    }

    /// The board request a page makes with no filters set.
    pub fn board_path(&self) -> String {
        format!("{}?limit={}", self.board, self.limit)
    }
}

/// A need or offer as a phone holds it: what it needs to place a card.
#[derive(Debug, Clone)]
struct Card {
    id: String,
    urgency: usize,
    created: u64,
}

impl Card {
    fn of(item: &Value) -> Option<Card> {
        const URGENCIES: [&str; 4] = ["low", "normal", "high", "life-threatening"];
        Some(Card {
            id: item["id"].as_str()?.to_string(),
            urgency: URGENCIES
                .iter()
                .position(|u| Some(*u) == item["urgency"].as_str())
                .unwrap_or(0),
            created: item["created_at"].as_u64().unwrap_or(0),
        })
    }

    /// Whether `self` is listed before `other` (as the page's `before`).
    fn before(&self, other: &Card) -> bool {
        (self.urgency, self.created, &self.id) > (other.urgency, other.created, &other.id)
    }
}

/// One list as a phone shows it.
#[derive(Debug, Default)]
struct List {
    cards: Vec<Card>,
    more: bool,
    total: u64,
}

impl List {
    fn load(&mut self, page: &Value) {
        self.cards = page["items"]
            .as_array()
            .map(|a| a.iter().filter_map(Card::of).collect())
            .unwrap_or_default();
        self.more = page["next_cursor"].is_string();
        self.total = page["total"].as_u64().unwrap_or(0);
    }

    /// Applies a card from the stream as the page's `applyItem`; false when the page
    /// would load the board instead.
    fn apply(&mut self, item: &Value) -> bool {
        let Some(card) = Card::of(item) else {
            return true;
        };
        let show = matches!(
            item["status"].as_str(),
            Some("open" | "claimed" | "in-progress")
        );
        if let Some(at) = self.cards.iter().position(|c| c.id == card.id) {
            if show {
                self.cards[at] = card;
            } else {
                self.cards.remove(at);
                self.total = self.total.saturating_sub(1);
            }
            return true;
        }
        if !show {
            return true;
        }
        let is_new = item["history"].as_array().is_none_or(Vec::is_empty);
        if !is_new {
            return false;
        }
        self.total += 1;
        match self.cards.iter().position(|c| card.before(c)) {
            Some(at) => self.cards.insert(at, card),
            None if !self.more => self.cards.push(card),
            None => {}
        }
        true
    }
}

/// What a phone saw and did.
#[derive(Debug, Default, Clone)]
pub struct PhoneStats {
    /// Every byte read from the node (heads, bodies, stream), by this phone.
    pub bytes: u64,
    /// Requests made, as `GET <path>` plus ` (conditional)` when `If-None-Match` was sent.
    pub requests: Vec<String>,
    /// Board loads answered 200 and 304.
    pub board_full: u64,
    /// Board loads answered 304.
    pub board_not_modified: u64,
    /// The board has been shown (start-up finished).
    pub served: bool,
    /// Answers "this hub is busy" (503) received.
    pub busy: u64,
    /// Failures (refused connections, bad answers), with what failed.
    pub errors: Vec<String>,
    /// Cards shown: needs, offers.
    pub cards: (usize, usize),
    /// Stream messages received.
    pub messages: u64,
}

/// A card that reached a phone by the stream: which item, and when.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The phone's number.
    pub phone: usize,
    /// The item's full id.
    pub id: String,
    /// When the phone applied it.
    pub at: Instant,
}

/// Where and how phones connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The node's API address as phones reach it.
    pub api: SocketAddr,
    /// The `Host` header (the address typed into the browser).
    pub host: String,
}

impl Target {
    /// The API at `api`, reached by that address.
    pub fn new(api: SocketAddr) -> Target {
        Target {
            api,
            host: api.to_string(),
        }
    }
}

/// A simulated open page.
pub struct Phone {
    stats: Arc<Mutex<PhoneStats>>,
    tick: Arc<Notify>,
    idle: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// What each phone's parts share.
struct Shared {
    n: usize,
    plan: PagePlan,
    target: Target,
    source: Option<IpAddr>,
    stats: Arc<Mutex<PhoneStats>>,
    lists: Mutex<(List, List)>,
    seen: Option<mpsc::UnboundedSender<Seen>>,
    etag: Mutex<Option<String>>,
    /// Asks for a board load (coalesced: one asked during a load runs after it).
    load: Notify,
    /// Signalled when a board load ends.
    idle: Arc<Notify>,
}

impl Phone {
    /// Opens phone number `n` on `target`, binding its sockets to `source` if given.
    /// Cards that arrive by the stream are reported on `seen`.
    pub fn open(
        n: usize,
        plan: PagePlan,
        target: Target,
        source: Option<IpAddr>,
        seen: Option<mpsc::UnboundedSender<Seen>>,
    ) -> Phone {
        let stats = Arc::new(Mutex::new(PhoneStats::default()));
        let idle = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            n,
            plan,
            target,
            source,
            stats: stats.clone(),
            lists: Mutex::default(),
            seen,
            etag: Mutex::default(),
            load: Notify::new(),
            idle: idle.clone(),
        });
        let tick = Arc::new(Notify::new());
        let task = tokio::spawn(run(shared, tick.clone()));
        Phone {
            stats,
            tick,
            idle,
            task,
        }
    }

    /// What it saw so far.
    pub fn stats(&self) -> PhoneStats {
        self.stats.lock().unwrap().clone()
    }

    /// Fires the page's refresh timer now (as a test fast-forwards the page's clock),
    /// and waits (bounded) until that board load ends.
    pub async fn tick(&self) {
        let idle = self.idle.notified();
        self.tick.notify_one();
        tokio::time::timeout(Duration::from_secs(10), idle)
            .await
            .expect("the phone's refresh ended within 10 s");
    }

    /// Waits (bounded) until the board has been shown.
    pub async fn wait_served(&self, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.stats().served {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Closes the page (its sockets close).
    pub fn close(self) {
        self.task.abort();
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The page's life: files, stream, board, then timer and stream until closed.
async fn run(sh: Arc<Shared>, tick: Arc<Notify>) {
    let mut http = Http::new(sh.clone());
    for a in sh.plan.assets.clone() {
        if let Err(e) = http.get(&a, None).await {
            sh.error(format!("GET {a}: {e}"));
            return;
        }
    }
    // The stream first, then the board (as the page: nothing stored meanwhile is missed).
    let _stream = AbortOnDrop(tokio::spawn(stream(sh.clone())));
    sh.load.notify_one();
    let period = Duration::from_millis(sh.plan.refresh_ms);
    let first = if sh.plan.refresh_first_random {
        period.mul_f64(random_fraction(sh.n))
    } else {
        period
    };
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
    loop {
        tokio::select! {
            _ = sh.load.notified() => {}
            _ = timer.tick() => {}
            _ = tick.notified() => {}
        }
        load_board(&sh, &mut http).await;
        sh.idle.notify_waiters();
    }
}

/// A number in [0, 1) that differs between phones and runs (as `Math.random()`).
fn random_fraction(n: usize) -> f64 {
    use std::hash::BuildHasher;
    // A new RandomState has fresh random keys.
    let h = std::collections::hash_map::RandomState::new().hash_one(n);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A task that ends with its owner (the phone's stream ends with the phone).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Shared {
    fn error(&self, e: String) {
        self.stats.lock().unwrap().errors.push(e);
    }
}

async fn load_board(sh: &Arc<Shared>, http: &mut Http) {
    let path = sh.plan.board_path();
    let etag = sh.etag.lock().unwrap().clone();
    match http.get(&path, etag.as_deref()).await {
        Ok(r) if r.status == 304 => {
            let mut st = sh.stats.lock().unwrap();
            st.board_not_modified += 1;
        }
        Ok(r) if r.status == 200 => {
            let Ok(b) = serde_json::from_slice::<Value>(&r.body) else {
                sh.error("the board is not JSON".into());
                return;
            };
            *sh.etag.lock().unwrap() = r.etag;
            let cards = {
                let mut l = sh.lists.lock().unwrap();
                l.0.load(&b["needs"]);
                l.1.load(&b["offers"]);
                (l.0.cards.len(), l.1.cards.len())
            };
            let mut st = sh.stats.lock().unwrap();
            st.board_full += 1;
            st.served = true;
            st.cards = cards;
        }
        Ok(r) => sh.error(format!("GET {path}: {}", r.status)),
        Err(e) => sh.error(format!("GET {path}: {e}")),
    }
}

/// The live stream, reconnected (as EventSource does, after 3 s) when it ends.
async fn stream(sh: Arc<Shared>) {
    let mut opened_before = false;
    loop {
        let wait = match open_stream(&sh).await {
            Ok(mut s) => {
                if opened_before {
                    sh.load.notify_one();
                }
                opened_before = true;
                read_stream(&sh, &mut s).await;
                Duration::from_secs(3)
            }
            // Refused with an answer (a 503): EventSource gives up; the page retries.
            Err(e) if e.starts_with("stream answered") => {
                sh.error(format!("stream: {e}"));
                Duration::from_millis(sh.plan.stream_retry_ms)
            }
            // No answer at all: EventSource reconnects by itself after 3 s.
            Err(e) => {
                sh.error(format!("stream: {e}"));
                Duration::from_secs(3)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn open_stream(sh: &Arc<Shared>) -> Result<Conn, String> {
    let mut c = Conn::connect(&sh.target, sh.source).await?;
    let path = sh.plan.stream.clone();
    sh.stats
        .lock()
        .unwrap()
        .requests
        .push(format!("GET {path}"));
    c.send(&sh.target.host, &path, None).await?;
    let head = c.head().await?;
    sh.stats.lock().unwrap().bytes += head.len as u64;
    if head.status == 503 {
        sh.stats.lock().unwrap().busy += 1;
    }
    if head.status != 200 {
        return Err(format!("stream answered {}", head.status));
    }
    Ok(c)
}

/// Reads server-sent events until the stream ends, applying each as the page does.
async fn read_stream(sh: &Arc<Shared>, c: &mut Conn) {
    let mut event = String::new();
    let mut data = String::new();
    let mut line = Vec::new();
    loop {
        let mut bytes = 0;
        let chunk = c.chunk_counted(&mut bytes).await;
        sh.stats.lock().unwrap().bytes += bytes as u64;
        let chunk = match chunk {
            Ok(Some(ch)) => ch,
            Ok(None) => return,
            Err(e) => {
                sh.error(format!("stream: {e}"));
                return;
            }
        };
        for b in chunk {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            let l = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            line.clear();
            if l.is_empty() {
                if !data.is_empty() || !event.is_empty() {
                    on_message(sh, &event, &data);
                }
                event.clear();
                data.clear();
            } else if let Some(v) = l.strip_prefix("event:") {
                event = v.trim_start().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }
}

fn on_message(sh: &Arc<Shared>, event: &str, data: &str) {
    sh.stats.lock().unwrap().messages += 1;
    if event == "lagged" {
        sh.load.notify_one();
        return;
    }
    if event == "known" {
        // Issue 11: new "3/4" counts are drawn from the message; a changed roster (or a
        // message it cannot read) needs the board again, as on the page.
        if serde_json::from_str::<Value>(data).map_or(true, |d| d["roster"] == true) {
            sh.load.notify_one();
        }
        return;
    }
    if event != "new" {
        return;
    }
    let Ok(d) = serde_json::from_str::<Value>(data) else {
        sh.load.notify_one();
        return;
    };
    if d["item"].is_object() {
        let item = &d["item"];
        let applied = {
            let mut l = sh.lists.lock().unwrap();
            let list = if item["kind"] == "need" {
                &mut l.0
            } else {
                &mut l.1
            };
            let ok = list.apply(item);
            let cards = (l.0.cards.len(), l.1.cards.len());
            sh.stats.lock().unwrap().cards = cards;
            ok
        };
        if !applied {
            sh.load.notify_one();
        }
        if let (Some(seen), Some(id)) = (&sh.seen, item["id"].as_str()) {
            let _ = seen.send(Seen {
                phone: sh.n,
                id: id.to_string(),
                at: Instant::now(),
            });
        }
    } else if d["alerts"].is_array() {
        // drawn from the message
    } else if d["hubs"].is_array() || (d["kind"] != "person" && d["kind"] != "checkin") {
        // New hub names show on cards; an erasure or an unknown kind says nothing the
        // page can draw: the board again (the page also draws the hub list first).
        sh.load.notify_one();
    }
}

/// An answer.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

/// The requests connection of a page: kept alive and reused, reopened when the node
/// closed it (as a browser's connection pool does).
struct Http {
    sh: Arc<Shared>,
    conn: Option<Conn>,
    etags: HashMap<String, String>,
}

impl Http {
    fn new(sh: Arc<Shared>) -> Http {
        Http {
            sh,
            conn: None,
            etags: HashMap::new(),
        }
    }

    /// GET `path`, conditional on `etag` if given (assets: on the last ETag seen).
    async fn get(&mut self, path: &str, etag: Option<&str>) -> Result<Answer, String> {
        let etag = etag
            .map(String::from)
            .or_else(|| self.etags.get(path).cloned());
        let shown = if etag.is_some() {
            format!("GET {path} (conditional)")
        } else {
            format!("GET {path}")
        };
        self.sh.stats.lock().unwrap().requests.push(shown);
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                self.conn = Some(Conn::connect(&self.sh.target, self.sh.source).await?);
            }
            let c = self.conn.as_mut().expect("just set");
            let r = async {
                c.send(&self.sh.target.host, path, etag.as_deref()).await?;
                c.answer().await
            }
            .await;
            match r {
                Ok((a, close, bytes)) => {
                    self.sh.stats.lock().unwrap().bytes += bytes as u64;
                    if close {
                        self.conn = None;
                    }
                    if a.status == 503 {
                        self.sh.stats.lock().unwrap().busy += 1;
                    }
                    if !path.starts_with("/api/") {
                        if let Some(t) = &a.etag {
                            self.etags.insert(path.to_string(), t.clone());
                        }
                    }
                    return Ok(a);
                }
                // The node closed a kept-alive connection: a browser retries on a new one.
                Err(_) if reused && attempt == 0 => self.conn = None,
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Err("no answer".into())
    }
}

/// A head of an answer.
struct Head {
    status: u16,
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    etag: Option<String>,
}

/// One HTTP/1.1 connection with a read buffer.
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(t: &Target, source: Option<IpAddr>) -> Result<Conn, String> {
        let sock = if t.api.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| format!("socket: {e}"))?;
        if let Some(ip) = source {
            sock.bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
        }
        let tcp = tokio::time::timeout(Duration::from_secs(10), sock.connect(t.api))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(Conn {
            tcp,
            buf: Vec::new(),
        })
    }

    async fn send(&mut self, host: &str, path: &str, etag: Option<&str>) -> Result<(), String> {
        let cond = etag.map_or(String::new(), |t| format!("If-None-Match: {t}\r\n"));
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n{cond}Connection: keep-alive\r\n\r\n"
        );
        self.tcp
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))
    }

    async fn fill(&mut self) -> Result<bool, String> {
        let mut b = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(60), self.tcp.read(&mut b))
            .await
            .map_err(|_| "no data for 60 s".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        self.buf.extend_from_slice(&b[..n]);
        Ok(n > 0)
    }

    async fn head(&mut self) -> Result<Head, String> {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if !self.fill().await? {
                return Err("closed before an answer".into());
            }
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line: {text}"))?;
        let mut h = Head {
            status,
            len: end,
            content_length: None,
            chunked: false,
            close: false,
            etag: None,
        };
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => h.content_length = v.parse().ok(),
                "transfer-encoding" => h.chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => h.close = v.eq_ignore_ascii_case("close"),
                "etag" => h.etag = Some(v.to_string()),
                _ => {}
            }
        }
        Ok(h)
    }

    /// A whole answer: it, whether the node closes the connection, bytes read.
    async fn answer(&mut self) -> Result<(Answer, bool, usize), String> {
        let h = self.head().await?;
        let mut bytes = h.len;
        let mut body = Vec::new();
        if h.chunked {
            while let Some(c) = self.chunk_counted(&mut bytes).await? {
                body.extend_from_slice(&c);
            }
        } else if let Some(n) = h.content_length {
            while self.buf.len() < n {
                if !self.fill().await? {
                    return Err("closed mid-answer".into());
                }
            }
            body = self.buf.drain(..n).collect();
            bytes += n;
        } else if h.status != 304 && h.status != 204 {
            while self.fill().await? {}
            bytes += self.buf.len();
            body = std::mem::take(&mut self.buf);
        }
        Ok((
            Answer {
                status: h.status,
                etag: h.etag,
                body,
            },
            h.close,
            bytes,
        ))
    }

    async fn chunk_counted(&mut self, bytes: &mut usize) -> Result<Option<Vec<u8>>, String> {
        let line_end = loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                break p;
            }
            if !self.fill().await? {
                return Ok(None);
            }
        };
        let size_text = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        while self.buf.len() < line_end + 2 + size + 2 {
            if !self.fill().await? {
                return Err("closed mid-chunk".into());
            }
        }
        let data = self.buf[line_end + 2..line_end + 2 + size].to_vec();
        self.buf.drain(..line_end + 2 + size + 2);
        *bytes += line_end + 2 + size + 2;
        Ok((size > 0).then_some(data))
    }
}
