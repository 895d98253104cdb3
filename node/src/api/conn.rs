//! The API's connections: how many are held, and for how long. Without limits, 1,100
//! idle sockets from one machine made `/status` hang and the node run out of file
//! descriptors. So:
//!
//! - a request's head must arrive within [`HEADER_TIMEOUT`], and a kept-alive
//!   connection that sends no new request is closed after the same time (hyper's
//!   header-read timer runs while it waits);
//! - other machines share [`MAX_REMOTE`] connections (more with a higher open-file
//!   limit, see [`Budgets::for_fd_limit`]), at most [`MAX_PER_ADDRESS`] from one
//!   address; the hub computer (loopback) has its own [`MAX_LOCAL`], so
//!   strangers holding sockets never lock it out (peers use the libp2p port, not
//!   this one). A connection over its budget gets a small `503` with `Retry-After`
//!   ("this hub is busy, try again in a minute", as JSON for `/api/` and as a short
//!   page otherwise), written without hyper and within [`BUSY_WITHIN`]; at most
//!   [`MAX_BUSY`] such answers are under way at once, and beyond that a connection is
//!   closed at once, so a flood costs no descriptors and nobody waits on a hang;
//! - when other machines' budget is full, a connection from an address that holds few
//!   takes the oldest connection of the address that holds the most (if that one holds
//!   at least two more): on a /24 Wi-Fi no set of addresses can shut phones out by
//!   holding every slot (issue 24: 128 addresses × 32 streams took all 4,096 slots);
//! - a phone needs one live stream: another machine holds at most
//!   [`MAX_STREAMS_PER_ADDRESS`], and a new one ends that address's oldest
//!   ([`Streams`]);
//! - a request head (request line and headers) is at most [`MAX_HEAD_BYTES`]; a larger
//!   one is answered `431` and the connection closed, so heads in progress hold at most
//!   that much per connection (issue 24: 390 KB heads on 2,048 connections took a node
//!   from 64 MB to 990 MB);
//! - at start the soft limit on open files is raised to the hard limit;
//! - a client that vanishes without a word (a phone walking off the Wi-Fi, an access
//!   point losing power: no FIN, no RST) is let go within [`VANISHED_WITHIN`]: TCP
//!   keepalive probes an idle socket, `TCP_USER_TIMEOUT` ends one whose sent data
//!   goes unacknowledged (the live stream writes a [`HEARTBEAT`] comment, so a dead
//!   stream always has data in flight), and the failed write ends the stream.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower_service::Service;

use super::guard::is_local;

/// Time for a request's head to arrive, and for an idle kept-alive connection to send
/// its next request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the live stream writes a comment line when there is nothing to say, so a
/// vanished reader is found out by a failed write.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Quiet time on an API socket before TCP keepalive probes start.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between keepalive probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes before the kernel drops the connection.
pub const KEEPALIVE_PROBES: u32 = 3;
/// How long sent data may stay unacknowledged before the kernel drops the connection
/// (`TCP_USER_TIMEOUT`; the default is ~15 minutes of retransmissions).
pub const USER_TIMEOUT: Duration = Duration::from_secs(45);
/// The bound on letting a vanished client go: the next heartbeat, the user timeout,
/// and one more heartbeat for the stream to notice (idle sockets go sooner:
/// keepalive idle time plus the probes).
pub const VANISHED_WITHIN: Duration =
    Duration::from_secs(HEARTBEAT.as_secs() + USER_TIMEOUT.as_secs() + HEARTBEAT.as_secs());

/// Connections from other machines, together, at the smallest open-file limit
/// (1,024); with a higher limit, up to [`MAX_REMOTE_CAP`] (see [`Budgets::for_fd_limit`]).
pub const MAX_REMOTE: usize = 512;
/// The most connections from other machines, however high the open-file limit.
pub const MAX_REMOTE_CAP: usize = 4096;
/// Descriptors kept for everything but API connections: the mesh (libp2p allows 128
/// established and 96 pending), the database, logs, and "busy" answers.
pub const RESERVED_FDS: u64 = 256;
/// Connections from one other machine (a phone's browser uses about six).
pub const MAX_PER_ADDRESS: usize = 32;
/// Connections from the hub computer itself.
pub const MAX_LOCAL: usize = 256;
/// Live streams one other machine may hold at once (a phone's page needs one; a few
/// tabs or a page reloaded before its old stream ended need a few more).
pub const MAX_STREAMS_PER_ADDRESS: usize = 4;
/// The largest request head (request line and headers) read from any connection. hyper
/// reads a head into a buffer of at most this size and answers `431` beyond it (its
/// default, about 400 KB, let heads in progress take 990 MB).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Time for a request head, and for an idle kept-alive connection to ask again, when
/// other machines hold more than half their budget: a phone's idle request connection
/// then frees its descriptor sooner, for a phone that is still waiting for its stream.
pub const PRESSED_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The header (and keep-alive idle) timeout for a new connection: [`HEADER_TIMEOUT`],
/// or [`PRESSED_HEADER_TIMEOUT`] for another machine's while more than half the budget
/// of other machines is in use.
fn header_timeout(counts: &Arc<Mutex<Counts>>, budgets: Budgets, local: bool) -> Duration {
    let c = counts.lock().unwrap_or_else(|p| p.into_inner());
    if !local && c.remote > budgets.remote / 2 {
        PRESSED_HEADER_TIMEOUT
    } else {
        HEADER_TIMEOUT
    }
}

/// Answers to connections over budget being written at once; more are closed.
pub const MAX_BUSY: usize = 64;
/// The longest a "busy" answer holds its socket (reading the request, then writing).
pub const BUSY_WITHIN: Duration = Duration::from_secs(2);
/// What a "busy" answer asks the client to wait, in seconds.
pub const BUSY_RETRY_AFTER_S: u32 = 60;

/// The connection budgets (the constants above; smaller in tests).
#[derive(Debug, Clone, Copy)]
pub(super) struct Budgets {
    local: usize,
    remote: usize,
    per_address: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            local: MAX_LOCAL,
            remote: MAX_REMOTE,
            per_address: MAX_PER_ADDRESS,
        }
    }
}

impl Budgets {
    /// Budgets for a process allowed `limit` open files: other machines get what the
    /// hub computer's share and [`RESERVED_FDS`] leave, at least [`MAX_REMOTE`] (what
    /// fits in 1,024) and at most [`MAX_REMOTE_CAP`]. 300 phones hold about 600
    /// connections while they open the page (the stream and one for requests, kept
    /// alive [`HEADER_TIMEOUT`]), so the fixed 512 would turn some of them away at
    /// a limit that has room for them.
    pub(super) fn for_fd_limit(limit: Option<u64>) -> Self {
        let room = limit.map_or(0, |l| l.saturating_sub(MAX_LOCAL as u64 + RESERVED_FDS));
        let remote = usize::try_from(room).unwrap_or(usize::MAX);
        Self {
            remote: remote.clamp(MAX_REMOTE, MAX_REMOTE_CAP),
            ..Self::default()
        }
    }
}

/// The soft limit on open files now (after [`raise_fd_limit`] at start).
#[allow(clippy::useless_conversion)]
fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct passed.
        (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0)
            .then(|| u64::from(lim.rlim_cur))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Counts of open connections.
#[derive(Default)]
struct Counts {
    local: usize,
    remote: usize,
    /// Other machines' connections by address, oldest first.
    by_ip: HashMap<IpAddr, VecDeque<Held>>,
    /// The next connection's number.
    next: u64,
}

/// One connection of another machine, as its address's list holds it.
struct Held {
    id: u64,
    /// Notified when the connection must end to make room for another address's.
    evict: Arc<Notify>,
}

/// A held connection slot; released when dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
    local: bool,
    id: u64,
    /// Notified when this connection is taken for another address's (see [`admit`]).
    evict: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.local {
            c.local -= 1;
            return;
        }
        // An evicted connection was taken off its list (and the count) already.
        let Some(q) = c.by_ip.get_mut(&self.ip) else {
            return;
        };
        let Some(pos) = q.iter().position(|h| h.id == self.id) else {
            return;
        };
        q.remove(pos);
        if q.is_empty() {
            c.by_ip.remove(&self.ip);
        }
        c.remote -= 1;
    }
}

/// Takes a slot for a connection from `ip`, or `None` when its budget is spent. When
/// other machines' budget is full, an address holding `n` connections takes the
/// oldest of the address holding the most, if that one holds `n + 2` or more: so
/// addresses end up holding about as many each, and a newcomer always gets in.
fn admit(counts: &Arc<Mutex<Counts>>, budgets: Budgets, ip: IpAddr) -> Option<Slot> {
    let ip = ip.to_canonical();
    let local = is_local(ip);
    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
    let id = c.next;
    c.next += 1;
    let evict = Arc::new(Notify::new());
    if local {
        if c.local >= budgets.local {
            return None;
        }
        c.local += 1;
    } else {
        let from_ip = c.by_ip.get(&ip).map_or(0, VecDeque::len);
        if from_ip >= budgets.per_address {
            return None;
        }
        if c.remote >= budgets.remote {
            let (heavy, most) = c
                .by_ip
                .iter()
                .map(|(a, q)| (*a, q.len()))
                .max_by_key(|(_, n)| *n)?;
            if most < from_ip + 2 {
                return None;
            }
            let q = c.by_ip.get_mut(&heavy)?;
            let victim = q.pop_front()?;
            if q.is_empty() {
                c.by_ip.remove(&heavy);
            }
            c.remote -= 1;
            // A permit is stored if the connection's task is not waiting yet.
            victim.evict.notify_one();
            tracing::debug!(from = %heavy, "API: budget full; the oldest connection of the address holding the most makes room for another address");
        }
        c.remote += 1;
        c.by_ip.entry(ip).or_default().push_back(Held {
            id,
            evict: evict.clone(),
        });
    }
    Some(Slot {
        counts: counts.clone(),
        ip,
        local,
        id,
        evict,
    })
}

/// The live streams other machines hold, by address, oldest first: at most
/// [`MAX_STREAMS_PER_ADDRESS`] each; a new one ends that address's oldest. The hub
/// computer's streams are not counted (its connection budget bounds them).
#[derive(Default)]
pub(super) struct Streams {
    by_ip: Mutex<(u64, HashMap<IpAddr, VecDeque<Held>>)>,
}

/// A live stream's place in [`Streams`]; given up when dropped.
pub(super) struct StreamTicket {
    streams: Option<Arc<Streams>>,
    ip: IpAddr,
    id: u64,
    evict: Arc<Notify>,
}

impl Streams {
    /// A place for a new stream from `ip`, ending that address's oldest when it holds
    /// [`MAX_STREAMS_PER_ADDRESS`] already.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> StreamTicket {
        self.admit_with(ip, MAX_STREAMS_PER_ADDRESS)
    }

    fn admit_with(self: &Arc<Self>, ip: IpAddr, most: usize) -> StreamTicket {
        let ip = ip.to_canonical();
        let evict = Arc::new(Notify::new());
        if is_local(ip) {
            return StreamTicket {
                streams: None,
                ip,
                id: 0,
                evict,
            };
        }
        let mut g = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        let (next, by_ip) = &mut *g;
        let id = *next;
        *next += 1;
        let q = by_ip.entry(ip).or_default();
        while q.len() >= most {
            if let Some(old) = q.pop_front() {
                old.evict.notify_one();
            }
        }
        q.push_back(Held {
            id,
            evict: evict.clone(),
        });
        StreamTicket {
            streams: Some(self.clone()),
            ip,
            id,
            evict,
        }
    }

    /// Streams other machines hold now.
    #[cfg(test)]
    fn held(&self) -> usize {
        let g = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        g.1.values().map(VecDeque::len).sum()
    }
}

impl StreamTicket {
    /// Resolves when a newer stream of the same address took this one's place.
    pub(super) async fn ended(&self) {
        self.evict.notified().await;
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let Some(streams) = &self.streams else {
            return;
        };
        let mut g = streams.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = g.1.get_mut(&self.ip) {
            q.retain(|h| h.id != self.id);
            if q.is_empty() {
                g.1.remove(&self.ip);
            }
        }
    }
}

/// Accepts and serves connections until `shutdown` flips.
pub(super) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shutdown: watch::Receiver<bool>,
) {
    let budgets = Budgets::for_fd_limit(fd_limit());
    tracing::info!(
        other_machines = budgets.remote,
        per_address = budgets.per_address,
        hub_computer = budgets.local,
        "API connection budgets"
    );
    accept_with(listener, app, shutdown, budgets).await;
}

async fn accept_with(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
    budgets: Budgets,
) {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut refused_logged = false;
    loop {
        let (tcp, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a
                    // little rather than spin.
                    tracing::warn!(error = %e, "API: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(slot) = admit(&counts, budgets, from.ip()) else {
            if !refused_logged {
                tracing::warn!(from = %from.ip(), "API: too many connections; answering \"this hub is busy\" until some end");
                refused_logged = true;
            }
            answer_busy(tcp, &busy);
            continue;
        };
        refused_logged = false;
        let timeout = header_timeout(&counts, budgets, slot.local);
        let _ = tcp.set_nodelay(true);
        if let Err(e) = detect_vanished(&tcp) {
            tracing::debug!(error = %e, %from, "API: cannot set TCP keepalive on a connection");
        }
        let app = app.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let evict = slot.evict.clone();
            let _slot = slot;
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(from));
                let mut app = app.clone();
                async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(tcp), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, %from, "API connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
                // Another address needed the slot (see `admit`): closed at once.
                () = evict.notified() => {}
            }
        });
    }
}

/// The start of a "busy" answer; `Content-Type`, `Content-Length` and the body follow.
const BUSY_HEAD: &str = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 60\r\n\
Connection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n";
/// The "busy" answer to the API (`/api/...`).
const BUSY_JSON: &str =
    r#"{"error":"busy","detail":"this hub is busy, try again in a minute","retry_after_s":60}"#;
/// The "busy" answer to a browser opening the page.
const BUSY_HTML: &str = "<!doctype html><meta charset=utf-8>\
<meta name=viewport content=\"width=device-width\"><title>This hub is busy</title>\
<h1>This hub is busy</h1><p>Too many phones are connected right now. Try again in a minute.</p>";

/// The whole "busy" answer to a request whose head starts with `head`.
fn busy_answer(head: &[u8]) -> Vec<u8> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let api = line.windows(6).any(|w| w == b" /api/");
    let (kind, body) = if api {
        ("application/json", BUSY_JSON)
    } else {
        ("text/html; charset=utf-8", BUSY_HTML)
    };
    format!(
        "{BUSY_HEAD}Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over budget with a "busy" 503, off the accept loop and within
/// [`BUSY_WITHIN`]; closes it at once when [`MAX_BUSY`] answers are under way.
fn answer_busy(mut tcp: tokio::net::TcpStream, busy: &Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if busy.fetch_add(1, Ordering::AcqRel) >= MAX_BUSY {
        busy.fetch_sub(1, Ordering::AcqRel);
        return; // dropped: closed at once
    }
    let busy = busy.clone();
    tokio::spawn(async move {
        let half = BUSY_WITHIN / 2;
        // Read the request head first (for half the time at most): closing a socket
        // with unread data sends a reset, and the client would see that instead of the
        // answer. A client that sends nothing is answered all the same.
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(half, async {
            while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        let _ = tokio::time::timeout(half, async {
            let _ = tcp.write_all(&busy_answer(&head)).await;
            let _ = tcp.shutdown().await;
            // Let the client read the answer and close first.
            let _ = tcp.read(&mut buf).await;
        })
        .await;
        busy.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Sets TCP keepalive and `TCP_USER_TIMEOUT` on an accepted socket, so the kernel
/// ends a connection whose client vanished (see the module comment).
fn detect_vanished(tcp: &tokio::net::TcpStream) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = tcp.as_raw_fd();
        let set = |level: libc::c_int, name: libc::c_int, value: u64| {
            let v = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
            // SAFETY: a valid socket descriptor (borrowed from `tcp` for this call),
            // and a pointer to a c_int with its size.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    level,
                    name,
                    std::ptr::from_ref(&v).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        set(
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            KEEPALIVE_IDLE.as_secs(),
        )?;
        set(
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            KEEPALIVE_INTERVAL.as_secs(),
        )?;
        set(
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            KEEPALIVE_PROBES.into(),
        )?;
        let ms = u64::try_from(USER_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Elsewhere only keepalive itself (the OS's own timings) is portable here.
        let _ = tcp;
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit (Unix), so a busy hub does
/// not run out of descriptors at a low default soft limit. Returns the new limit.
// `rlim_t` is not `u64` on every target, so the conversions are not useless there.
#[allow(clippy::useless_conversion)]
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            if lim.rlim_cur < lim.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    return Some(u64::from(want.rlim_cur));
                }
            }
        }
        Some(u64::from(lim.rlim_cur))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_have_a_budget_and_the_hub_computer_its_own() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        let b = Budgets::default();
        let held: Vec<Slot> = (0..MAX_PER_ADDRESS)
            .map(|_| admit(&counts, b, stranger).expect("within the per-address budget"))
            .collect();
        assert!(
            admit(&counts, b, stranger).is_none(),
            "one address is capped"
        );
        // Loopback, also as seen on an IPv6 listener, is still served.
        assert!(admit(&counts, b, "127.0.0.1".parse().unwrap()).is_some());
        assert!(admit(&counts, b, "::ffff:127.0.0.1".parse().unwrap()).is_some());
        drop(held);
        assert!(admit(&counts, b, stranger).is_some(), "slots come back");
        let c = counts.lock().unwrap();
        assert_eq!((c.local, c.remote), (0, 0), "every slot released");
    }

    /// Sends `request` on a new connection to `addr` and reads the whole answer.
    async fn ask(addr: std::net::SocketAddr, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
            .await
            .expect("an answer within 5 s, never a hang")
            .expect("the answer, not a reset");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn over_budget_a_client_is_told_the_hub_is_busy_and_when_to_come_back() {
        use axum::routing::get;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = Router::new().route("/api/v1/status", get(|| async { "fine" }));
        let (_stop, shutdown) = watch::channel(false);
        let budgets = Budgets {
            local: 1,
            remote: 1,
            per_address: 1,
        };
        tokio::spawn(accept_with(l, app, shutdown, budgets));
        let status = "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert!(ask(addr, status).await.ends_with("fine"));
        // One connection holds the whole budget (a phone's open stream, say).
        let held = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await; // until accepted
        let api = ask(addr, status).await;
        assert!(api.starts_with("HTTP/1.1 503 "), "{api}");
        assert!(api.contains("Retry-After: 60\r\n"), "{api}");
        assert!(api.contains("application/json"), "{api}");
        let body: serde_json::Value =
            serde_json::from_str(api.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"], "busy");
        assert_eq!(body["detail"], "this hub is busy, try again in a minute");
        let page = ask(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(page.starts_with("HTTP/1.1 503 "), "{page}");
        assert!(
            page.contains("text/html") && page.contains("Try again in a minute"),
            "{page}"
        );
        // A client that sends nothing is still answered, within BUSY_WITHIN.
        let started = std::time::Instant::now();
        let silent = ask(addr, "").await;
        assert!(silent.starts_with("HTTP/1.1 503 "), "{silent}");
        assert!(started.elapsed() < BUSY_WITHIN + Duration::from_secs(1));
        // When the held connection ends, the next client is served again.
        drop(held);
        let served = crate::api::conn::tests::poll_served(addr, status).await;
        assert!(served.ends_with("fine"), "{served}");
    }

    /// Asks until the answer is not "busy" (the held slot is released when the server
    /// sees the close), for at most 5 s.
    async fn poll_served(addr: std::net::SocketAddr, request: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let a = ask(addr, request).await;
            if !a.starts_with("HTTP/1.1 503 ") || start.elapsed() > Duration::from_secs(5) {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether `slot` was told to end.
    fn evicted(slot: &Slot) -> bool {
        use futures::FutureExt;
        slot.evict.notified().now_or_never().is_some()
    }

    #[test]
    fn a_newcomer_takes_the_oldest_connection_of_the_address_holding_the_most() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let b = Budgets {
            local: 1,
            remote: 8,
            per_address: 8,
        };
        let hog: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held: Vec<Slot> = (0..8).map(|_| admit(&counts, b, hog).unwrap()).collect();
        // The budget is full; a phone that holds nothing still gets in, and the hog's
        // oldest connection is the one told to go.
        let phone: IpAddr = "192.0.2.77".parse().unwrap();
        let p1 = admit(&counts, b, phone).expect("a newcomer is never shut out");
        assert!(
            evicted(&held[0]),
            "the oldest of the address holding the most"
        );
        assert!(held[1..].iter().all(|s| !evicted(s)));
        // Dropping the evicted slot later does not count it twice.
        drop(held.remove(0));
        {
            let c = counts.lock().unwrap();
            assert_eq!(c.remote, 8);
            assert_eq!(c.by_ip[&hog].len(), 7);
        }
        // Addresses even out: the phone keeps taking while it holds 2 fewer.
        let mut phone_slots = vec![p1];
        for _ in 0..3 {
            phone_slots.push(admit(&counts, b, phone).expect("room from the hog"));
        }
        {
            let c = counts.lock().unwrap();
            assert_eq!((c.by_ip[&hog].len(), c.by_ip[&phone].len()), (4, 4));
        }
        // Equal shares: nobody is taken from any more.
        assert!(admit(&counts, b, phone).is_none());
        assert!(admit(&counts, b, hog).is_none());
        drop(held);
        drop(phone_slots);
        let c = counts.lock().unwrap();
        assert_eq!((c.local, c.remote, c.by_ip.len()), (0, 0, 0));
    }

    #[test]
    fn one_address_holds_a_few_streams_and_a_new_one_ends_its_oldest() {
        use futures::FutureExt;
        let streams = Arc::new(Streams::default());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let first = streams.admit(ip);
        let rest: Vec<StreamTicket> = (1..MAX_STREAMS_PER_ADDRESS)
            .map(|_| streams.admit(ip))
            .collect();
        assert!(first.ended().now_or_never().is_none());
        let newest = streams.admit(ip);
        assert!(first.ended().now_or_never().is_some(), "the oldest ends");
        assert_eq!(streams.held(), MAX_STREAMS_PER_ADDRESS);
        // Another address and the hub computer are not touched.
        let other = streams.admit("192.0.2.10".parse().unwrap());
        let local: Vec<StreamTicket> = (0..3 * MAX_STREAMS_PER_ADDRESS)
            .map(|_| streams.admit("127.0.0.1".parse().unwrap()))
            .collect();
        assert!(rest.iter().all(|t| t.ended().now_or_never().is_none()));
        assert!(local.iter().all(|t| t.ended().now_or_never().is_none()));
        drop((first, rest, newest, other, local));
        assert_eq!(streams.held(), 0);
    }

    #[tokio::test]
    async fn a_request_head_over_16_kib_is_refused_with_431() {
        use axum::routing::get;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = Router::new().route("/api/v1/status", get(|| async { "fine" }));
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(accept_with(l, app, shutdown, Budgets::default()));
        let with_header = |n: usize| {
            format!(
                "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
                "a".repeat(n)
            )
        };
        assert!(ask(addr, &with_header(12 * 1024)).await.ends_with("fine"));
        // The server stops reading at 16 KiB and answers: the client may see the 431
        // or, its unread rest making the close a reset, only the reset; never "fine".
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = c.write_all(with_header(300 * 1024).as_bytes()).await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
            .await
            .expect("an answer or a close within 5 s, never a hang");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 431 ") || (read.is_err() && text.is_empty()),
            "{read:?} {}",
            &text[..text.len().min(200)]
        );
    }

    #[test]
    fn idle_connections_of_other_machines_go_sooner_when_their_budget_is_half_used() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let b = Budgets {
            local: 4,
            remote: 4,
            per_address: 4,
        };
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let mut held = vec![
            admit(&counts, b, ip).unwrap(),
            admit(&counts, b, ip).unwrap(),
        ];
        assert_eq!(header_timeout(&counts, b, false), HEADER_TIMEOUT);
        held.push(admit(&counts, b, ip).unwrap());
        assert_eq!(header_timeout(&counts, b, false), PRESSED_HEADER_TIMEOUT);
        assert_eq!(
            header_timeout(&counts, b, true),
            HEADER_TIMEOUT,
            "never the hub computer"
        );
        held.pop();
        assert_eq!(header_timeout(&counts, b, false), HEADER_TIMEOUT);
    }

    #[test]
    fn the_budget_for_other_machines_follows_the_open_file_limit() {
        assert_eq!(Budgets::for_fd_limit(Some(1024)).remote, MAX_REMOTE);
        assert_eq!(Budgets::for_fd_limit(None).remote, MAX_REMOTE);
        assert_eq!(Budgets::for_fd_limit(Some(2048)).remote, 2048 - 256 - 256);
        assert_eq!(Budgets::for_fd_limit(Some(1 << 20)).remote, MAX_REMOTE_CAP);
        // Within the limit: the hub computer's share, the reserve and the rest.
        let b = Budgets::for_fd_limit(Some(4096));
        assert!((b.remote + b.local) as u64 + RESERVED_FDS <= 4096);
        assert_eq!(b.local, MAX_LOCAL);
    }

    #[test]
    fn a_vanished_client_is_let_go_within_two_minutes() {
        assert!(VANISHED_WITHIN <= Duration::from_secs(120));
        assert!(KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES <= Duration::from_secs(120));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_sockets_get_keepalive_and_a_user_timeout() {
        use std::os::fd::AsRawFd;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(l.local_addr().unwrap());
        let (accepted, _client) = tokio::join!(l.accept(), client);
        let (tcp, _) = accepted.unwrap();
        detect_vanished(&tcp).unwrap();
        let get = |level, name| {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: a valid socket, a c_int buffer and its size.
            let r = unsafe {
                libc::getsockopt(
                    tcp.as_raw_fd(),
                    level,
                    name,
                    std::ptr::from_mut(&mut v).cast(),
                    &mut len,
                )
            };
            assert_eq!(r, 0);
            v
        };
        assert_eq!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 30);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 5);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 45_000);
    }
}
