//! A host holding many raw TCP sockets open to a node's peer port (sending nothing)
//! must not lock real peers out: connections in their handshake are bounded per
//! remote address, and a silent one is dropped after the handshake deadline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aidmesh_tests::{wait_for, Node, Opts};

/// Raw sockets the flooder keeps open.
const SOCKETS: usize = 48;

/// Keeps `SOCKETS` silent TCP connections from 127.0.0.2 open to `target`, reopening
/// any the node closes, until `stop`. Counts every connection made in `opened`.
fn flood(target: std::net::SocketAddr, stop: Arc<AtomicBool>, opened: Arc<AtomicUsize>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let connect = || async {
            let s = tokio::net::TcpSocket::new_v4().ok()?;
            s.bind("127.0.0.2:0".parse().ok()?).ok()?;
            let c = s.connect(target).await.ok()?;
            opened.fetch_add(1, Ordering::Relaxed);
            Some(c)
        };
        let mut socks = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            // Drop the ones the node closed, open new ones up to the count.
            socks.retain(|s: &tokio::net::TcpStream| {
                let mut b = [0u8; 64];
                matches!(s.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            });
            while socks.len() < SOCKETS {
                match connect().await {
                    Some(s) => socks.push(s),
                    None => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn a_real_peer_connects_while_a_stranger_holds_many_raw_sockets() {
    let mut a = Node::start("a", Opts::default());
    let b = Node::start("b", Opts::default());
    let addr = a.addr();
    let port: u16 = addr
        .split('/')
        .nth(4)
        .and_then(|p| p.parse().ok())
        .expect("tcp port in the address");
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let flooder = {
        let (stop, opened) = (stop.clone(), opened.clone());
        std::thread::spawn(move || flood(target, stop, opened))
    };
    wait_for(
        "the flooder to open its sockets",
        Duration::from_secs(10),
        || (opened.load(Ordering::Relaxed) >= SOCKETS).then_some(()),
    );
    // The real peer comes from another address (127.0.0.1) while the sockets are held,
    // and well within the time a silent socket would take to time out unbounded.
    b.connect(&addr);
    let a_id = a.status()["peer_id"].as_str().unwrap_or("").to_string();
    let connected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            "b to connect to a past the held sockets",
            Duration::from_secs(8),
            || {
                b.get("/api/v1/peers")["peers"]
                    .as_array()?
                    .iter()
                    .any(|p| p["peer_id"].as_str() == Some(&a_id))
                    .then_some(())
            },
        )
    }));
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flooder thread");
    if let Err(e) = connected {
        panic!(
            "{}\nnode a's log:\n{}",
            e.downcast_ref::<String>().cloned().unwrap_or_default(),
            a.log_tail(20)
        );
    }
    assert!(a.alive(), "node a must survive the flood");
}
