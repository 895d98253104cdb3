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
//! - at start the soft limit on open files is raised to the hard limit.

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
}
