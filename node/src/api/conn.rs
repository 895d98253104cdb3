//! The API's connections: how many are held, and for how long. Without limits, 1,100
//! idle sockets from one machine made `/status` hang and the node run out of file
//! descriptors. So:
//!
//! - a request's head must arrive within [`HEADER_TIMEOUT`], and a kept-alive
//!   connection that sends no new request is closed after the same time (hyper's
//!   header-read timer runs while it waits);
//! - other machines share [`MAX_REMOTE`] connections, at most [`MAX_PER_ADDRESS`]
//!   from one address; the hub computer (loopback) has its own [`MAX_LOCAL`], so
//!   strangers holding sockets never lock it out. A connection over its budget is
//!   closed at once, so it costs no descriptor;
//! - at start the soft limit on open files is raised to the hard limit;
//! - a client that vanishes without a word (a phone walking off the Wi-Fi, an access
//!   point losing power: no FIN, no RST) is let go within [`VANISHED_WITHIN`]: TCP
//!   keepalive probes an idle socket, `TCP_USER_TIMEOUT` ends one whose sent data
//!   goes unacknowledged (the live stream writes a [`HEARTBEAT`] comment, so a dead
//!   stream always has data in flight), and the failed write ends the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
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

/// Connections from other machines, together.
pub const MAX_REMOTE: usize = 512;
/// Connections from one other machine (a phone's browser uses about six).
pub const MAX_PER_ADDRESS: usize = 32;
/// Connections from the hub computer itself.
pub const MAX_LOCAL: usize = 256;

/// Counts of open connections.
#[derive(Default)]
struct Counts {
    local: usize,
    remote: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A held connection slot; released when dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
    local: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.local {
            c.local -= 1;
        } else {
            c.remote -= 1;
            if let Some(n) = c.by_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    c.by_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Takes a slot for a connection from `ip`, or `None` when its budget is spent.
fn admit(counts: &Arc<Mutex<Counts>>, ip: IpAddr) -> Option<Slot> {
    let ip = ip.to_canonical();
    let local = is_local(ip);
    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
    if local {
        if c.local >= MAX_LOCAL {
            return None;
        }
        c.local += 1;
    } else {
        let from_ip = c.by_ip.get(&ip).copied().unwrap_or(0);
        if c.remote >= MAX_REMOTE || from_ip >= MAX_PER_ADDRESS {
            return None;
        }
        c.remote += 1;
        c.by_ip.insert(ip, from_ip + 1);
    }
    Some(Slot {
        counts: counts.clone(),
        ip,
        local,
    })
}

/// Accepts and serves connections until `shutdown` flips.
pub(super) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let counts = Arc::new(Mutex::new(Counts::default()));
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
        let Some(slot) = admit(&counts, from.ip()) else {
            if !refused_logged {
                tracing::warn!(from = %from.ip(), "API: too many connections; closing new ones until some end");
                refused_logged = true;
            }
            drop(tcp);
            continue;
        };
        refused_logged = false;
        let _ = tcp.set_nodelay(true);
        if let Err(e) = detect_vanished(&tcp) {
            tracing::debug!(error = %e, %from, "API: cannot set TCP keepalive on a connection");
        }
        let app = app.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(from));
                let mut app = app.clone();
                async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
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
            }
        });
    }
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
        let held: Vec<Slot> = (0..MAX_PER_ADDRESS)
            .map(|_| admit(&counts, stranger).expect("within the per-address budget"))
            .collect();
        assert!(admit(&counts, stranger).is_none(), "one address is capped");
        // Loopback, also as seen on an IPv6 listener, is still served.
        assert!(admit(&counts, "127.0.0.1".parse().unwrap()).is_some());
        assert!(admit(&counts, "::ffff:127.0.0.1".parse().unwrap()).is_some());
        drop(held);
        assert!(admit(&counts, stranger).is_some(), "slots come back");
        let c = counts.lock().unwrap();
        assert_eq!((c.local, c.remote), (0, 0), "every slot released");
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
