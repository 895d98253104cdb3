//! A stranger on the hub's Wi-Fi, for the tests of what such a person can do: sockets
//! opened inside a host's network namespace (a thread enters it with `setns`, opens
//! the socket and leaves; the socket stays in that namespace), to listen for beacons
//! as anyone on the subnet can, send datagrams of their choosing, and count the TCP
//! connections a node makes to them. No node runs on such a host.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::LanHost;

/// Runs `f` on a thread inside network namespace `ns` and returns what it returns.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path)
                .unwrap_or_else(|e| panic!("open {path}: {e} (is the namespace there?)"));
            // SAFETY: setns on a valid namespace fd affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {ns}: {} (needs root)",
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .expect("the thread in the namespace")
    })
}

/// A UDP socket on `host`, bound to `port` (0: any), allowed to broadcast.
pub fn udp(host: &LanHost, port: u16) -> UdpSocket {
    in_netns(&host.netns, || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("bind UDP {port} on {}: {e}", host.netns));
        s.set_broadcast(true).expect("SO_BROADCAST");
        s
    })
}

/// The first datagram on `socket` that starts with `prefix`, and where it came from;
/// panics after `within`.
pub fn capture(socket: &UdpSocket, prefix: &[u8], within: Duration) -> (Vec<u8>, SocketAddr) {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no datagram starting with {prefix:?} within {within:?}"
        );
        socket.set_read_timeout(Some(left)).expect("read timeout");
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if buf[..n].starts_with(prefix) {
                return (buf[..n].to_vec(), from);
            }
        }
    }
}

/// Counts the TCP connections made to a port on the intruder's host (each accepted
/// and closed at once: as a port scan sees them).
pub struct Knocks {
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// The port listened on.
    pub port: u16,
}

impl Knocks {
    /// Listens on TCP `port` on `host`.
    pub fn listen(host: &LanHost, port: u16) -> Knocks {
        let l = in_netns(&host.netns, || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
                .unwrap_or_else(|e| panic!("listen on TCP {port} on {}: {e}", host.netns))
        });
        l.set_nonblocking(true).expect("nonblocking");
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut conn, _)) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                        let _ = conn.read(&mut [0u8; 64]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Knocks { count, stop, port }
    }

    /// Connections so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Knocks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends junk datagrams from `socket` to `to` at about `per_sec` until the returned
/// flag is set (or it is dropped: see [`Flood`]).
pub fn flood(socket: UdpSocket, to: SocketAddr, per_sec: u32, datagram: Vec<u8>) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (s, n) = (stop.clone(), sent.clone());
    let started = Instant::now();
    std::thread::spawn(move || {
        let batch = (per_sec / 100).max(1);
        let mut ticks = 0u64;
        while !s.load(Ordering::Relaxed) {
            for _ in 0..batch {
                let _ = socket.send_to(&datagram, to);
                n.fetch_add(1, Ordering::Relaxed);
            }
            ticks += 1;
            // Paced to the start, not to the last send: the rate holds on a busy box.
            let due = started + Duration::from_millis(10 * ticks);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    });
    Flood {
        stop,
        sent,
        started,
    }
}

/// A running flood; stops when dropped.
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
}

impl Flood {
    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Datagrams a second since it started.
    pub fn rate(&self) -> f64 {
        self.sent() as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
