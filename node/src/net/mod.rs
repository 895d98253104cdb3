//! The network: libp2p over TCP inside a pnet private network (the community key), then
//! noise and yamux. Gossipsub pushes new events to everyone at once; request-response
//! sync pulls whatever a node missed. No QUIC: pnet does not cover it, and it would be
//! an unprotected way in.
//!
//! Everything peers do lives in this folder:
//! - [`transport`](mod@transport): the transport stack and the swarm's behaviours;
//!   `pending`: the bound on handshakes per remote address;
//! - `task`: the one task that owns the swarm ([`start`] spawns it); the rest of the
//!   node talks to it through [`NetHandle`]. It never waits on disk: storing, sync and
//!   the peer book run on the ingest worker (`ingest`), whose results come
//!   back to the task;
//! - `gossip`: the verdict on a gossip message, given off the swarm loop;
//! - catch-up sync: [`sync`](mod@sync), its codec, responder and the session's I/O
//!   on the worker (its state machine is `aidmesh_protocol::session`); `sessions`,
//!   the task's side of it: which session runs with which peer, what is in flight,
//!   when the next is due, relays;
//! - `summaries`: hub summaries (issue 11) published and received by gossip;
//! - [`dialer`]: the dial list, back-off and bans, as plain data;
//! - [`discovery`] (mDNS) and [`beacon`] (IPv4 broadcast): finding peers on the LAN;
//! - [`pex`]: peer exchange, learning the other members' addresses from a peer;
//! - [`framed`]: the length-prefixed codec that sync and peer exchange share;
//! - [`refused`]: nodes of another community that tried to connect;
//! - [`metrics`]: what the peer connections carry, as libp2p counts it;
//! - [`lan`]: this computer's LAN addresses, for the web page's address;
//! - [`nearby`]: nodes of another community heard by mDNS, and what differs.

pub mod beacon;
pub mod dialer;
pub mod discovery;
pub mod framed;
mod gossip;
mod ingest;
pub mod lan;
pub mod metrics;
pub mod nearby;
mod pending;
pub mod pex;
pub mod refused;
mod sessions;
mod summaries;
pub mod sync;
mod task;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use libp2p::gossipsub::IdentTopic;
use libp2p::multiaddr::Protocol;
use libp2p::{identity, Multiaddr, PeerId};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::engine::Engine;
use ingest::Worker;
use sync::Counters;

pub use dialer::{BAN, MAX_WANTED};
pub use transport::{transport, PnetPassed, HANDSHAKE_DEADLINE, PNET_DEADLINE};

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Static peers, dialled and redialled with back-off.
    pub peers: Vec<Multiaddr>,
    /// The community's pre-shared key.
    pub psk: [u8; 32],
    /// The community's gossip topic.
    pub topic: String,
    /// How often to re-run anti-entropy with each connected peer.
    pub sync_every: Duration,
    /// Peer exchange on: ask members for the others' addresses and answer them
    /// ([`pex`]). Off, this node neither learns nor hands out addresses.
    pub peer_exchange: bool,
}

/// A failure to start networking.
#[derive(Debug, Error)]
pub enum NetError {
    /// A thread (or the network's runtime) could not be started.
    #[error("network setup failed: cannot start the {what}: {error}")]
    Start {
        /// What: "network runtime", "network thread", "ingest thread", "gossip thread".
        what: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// The network thread ended before it was ready.
    #[error("network setup failed: the network thread stopped while starting")]
    Stopped,
    /// [`transport::GOSSIP_PROFILE_ENV`] names no valid gossip profile.
    #[error("network setup failed: {0}")]
    Profile(transport::ProfileEnvError),
    /// libp2p could not build the swarm or subscribe to a topic.
    #[error("network setup failed: {0}")]
    Libp2p(String),
    /// The store could not be read for the delivery counts.
    #[error("network setup failed: cannot read the store for delivery: {0}")]
    Delivery(crate::store::StoreError),
    /// An address could not be listened on.
    #[error("cannot listen on {addr}: {reason}. Is another node using that port? Pick another with --listen")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Refuses a TCP listen address whose port another program already listens on.
/// libp2p's listeners set `SO_REUSEPORT`, so a second node on the same port would bind
/// too, and the kernel would hand each incoming connection to one of the two at random
/// (issue 29). A probe bound without `SO_REUSEPORT` fails where any socket listens on
/// that port and address (or on the wildcard address); it is closed at once. Port 0
/// (the system picks one) is never refused.
fn port_free(addr: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    // As libp2p binds: SO_REUSEADDR (a restart's TIME_WAIT sockets do not count), an
    // IPv6 socket for IPv6 only; but no SO_REUSEPORT.
    let probe = || -> std::io::Result<()> {
        use socket2::{Domain, Socket, Type};
        let sa = std::net::SocketAddr::new(ip, port);
        let s = Socket::new(Domain::for_address(sa), Type::STREAM, None)?;
        if sa.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.bind(&sa.into())?;
        s.listen(1)
    };
    match probe() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetError::Listen {
            addr: addr.clone(),
            reason: format!("TCP port {port} is already in use ({e})"),
        }),
        // Anything else (an address this host does not have, no permission) is for
        // libp2p's own listen to report as it always did.
        Err(_) => Ok(()),
    }
}

/// One connected peer, as shown in status.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// libp2p peer id.
    pub peer_id: String,
    /// Address of the connection.
    pub addr: String,
    /// Wall-clock ms of the last completed sync with it.
    pub last_sync_ms: Option<u64>,
}

/// What the network task reports.
#[derive(Debug, Clone, Serialize)]
pub struct NetStatus {
    /// Our peer id.
    pub peer_id: String,
    /// Addresses we listen on.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerStatus>,
    /// Addresses whose connection failed the community handshake (issue 15).
    pub refused: Vec<refused::Refused>,
    /// Addresses this node dialled whose answer failed the community handshake: nodes
    /// of another community (issue 15, the dialling side).
    pub refused_by: Vec<refused::Refused>,
    /// Nodes of another community heard nearby by mDNS, and what differs (issue 29).
    pub other_communities: Vec<nearby::Nearby>,
    /// Bytes of sync traffic received.
    pub sync_bytes_in: u64,
    /// Bytes of sync traffic sent.
    pub sync_bytes_out: u64,
    /// Gossip and stream byte counts, from libp2p's metrics (issue 10).
    #[serde(flatten)]
    pub metered: metrics::Metered,
}

/// Requests to the network task.
#[derive(Debug)]
pub enum Command {
    /// Dial a peer found by discovery (given up on after failed dials).
    Dial(Multiaddr),
    /// Dial a peer a user gave (`POST /api/v1/peers`, `aidmesh peers add`): redialled
    /// with back-off however often it fails, as a `--peer` is, but it may be replaced
    /// when the dial list is full.
    DialKept(Multiaddr),
    /// Dial a peer a beacon announced, once: not redialled after a failure (the beacon
    /// task decides when to try again, at most once a minute), nor when connected.
    DialOnce(Multiaddr),
    /// Report status.
    Status(oneshot::Sender<NetStatus>),
    /// A node of another community was heard nearby (mDNS; or a beacon that failed
    /// the MAC, [`nearby::Differs::Unknown`]), differing by `differs`.
    OtherCommunity {
        /// Its peer id (for a beacon, `beacon IP`: its peer id is not authenticated).
        peer: String,
        /// Its address.
        ip: String,
        /// What differs.
        differs: nearby::Differs,
    },
}

/// How the rest of the node reaches the network task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    /// Commands.
    pub commands: mpsc::Sender<Command>,
    /// Our peer id.
    pub peer_id: PeerId,
    /// What we know of which hubs hold what (issue 11), kept up by the network task.
    pub delivery: Arc<crate::delivery::Delivery>,
}

impl NetHandle {
    /// Asks the network task for its status; `None` if it does not answer within 2 s
    /// (stopping, or busy), so that callers such as the status page never hang.
    pub async fn status(&self) -> Option<NetStatus> {
        let ask = async {
            let (tx, rx) = oneshot::channel();
            self.commands.send(Command::Status(tx)).await.ok()?;
            rx.await.ok()
        };
        tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .ok()
            .flatten()
    }
}
/// Starts networking: builds the swarm, listens, and spawns the task that runs it.
///
/// The task runs on a thread of its own, with its own single-threaded runtime (its
/// sockets and timers belong to it): nothing that blocks a thread of the node's main
/// runtime (an API handler waiting for the engine's lock while a compaction holds the
/// store, say) can hold up gossip. The returned handle completes when that thread ends.
pub fn start(
    engine: Arc<Engine>,
    keypair: identity::Keypair,
    cfg: NetConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), NetError> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("network".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(error) => {
                    let _ = ready_tx.send(Err(NetError::Start {
                        what: "network runtime",
                        error,
                    }));
                    return;
                }
            };
            // Built inside the runtime, so that its sockets and timers are this
            // runtime's.
            match rt.block_on(async { setup(engine, keypair, &cfg, shutdown) }) {
                Ok((handle, task)) => {
                    let _ = ready_tx.send(Ok(handle));
                    rt.block_on(task.run());
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|error| NetError::Start {
            what: "network thread",
            error,
        })?;
    let handle = ready.recv().map_err(|_| NetError::Stopped)??;
    let done = tokio::task::spawn_blocking(move || {
        let _ = thread.join();
    });
    Ok((handle, done))
}

/// Builds the swarm, listens, and makes the task (not yet running).
fn setup(
    engine: Arc<Engine>,
    keypair: identity::Keypair,
    cfg: &NetConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(NetHandle, task::Task), NetError> {
    let counters = Arc::new(Counters::default());
    let pnet_passed = PnetPassed::default();
    let mut meter = metrics::Meter::new(&cfg.topic, &delivery_topic(&cfg.topic));
    let profile = transport::GossipProfile::from_env().map_err(NetError::Profile)?;
    let mut swarm = transport::build_swarm(
        keypair,
        cfg,
        counters.clone(),
        pnet_passed.clone(),
        &mut meter,
        profile,
    )?;
    let topic = IdentTopic::new(cfg.topic.clone());
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| NetError::Libp2p(e.to_string()))?;
    // Every address is probed before any is listened on: our own listener on
    // 0.0.0.0:4610 must not make a probe of [::]:4610 fail.
    for addr in &cfg.listen {
        port_free(addr)?;
    }
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    }
    let delivery_topic = IdentTopic::new(delivery_topic(&cfg.topic));
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&delivery_topic)
        .map_err(|e| NetError::Libp2p(e.to_string()))?;
    let delivery = Arc::new(
        crate::delivery::Delivery::open(engine.store(), engine.identity().author(), &cfg.psk)
            .map_err(NetError::Delivery)?,
    );
    // The roster's first members: the authors of every stored event.
    delivery.add_authors(engine.authors_at_start(), engine.wall_ms());
    let (done_tx, done) = mpsc::unbounded_channel();
    let worker =
        Worker::start(engine.clone(), done_tx.clone()).map_err(|error| NetError::Start {
            what: "ingest thread",
            error,
        })?;
    let checker =
        gossip::Checker::start(engine.clone(), worker.clone(), done_tx).map_err(|error| {
            NetError::Start {
                what: "gossip thread",
                error,
            }
        })?;
    let (tx, rx) = mpsc::channel(256);
    let handle = NetHandle {
        commands: tx,
        peer_id: *swarm.local_peer_id(),
        delivery: delivery.clone(),
    };
    let task = task::Task::new(
        task::Parts {
            engine,
            swarm,
            topic,
            delivery_topic,
            delivery,
            counters,
            meter,
            summaries: profile.summaries,
            worker,
            checker,
            done,
            pnet_passed,
            commands: rx,
            shutdown,
        },
        cfg,
    );
    Ok((handle, task))
}

/// The gossip topic of hub summaries (issue 11), next to the community's event topic.
pub fn delivery_topic(topic: &str) -> String {
    format!("{topic}/delivery")
}

/// Whether `addr` is something this node can dial: an IP or DNS host, a TCP port, and
/// optionally a peer id.
pub fn dialable(addr: &Multiaddr) -> bool {
    let mut host = false;
    let mut tcp = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(_)
            | Protocol::Ip6(_)
            | Protocol::Dns(_)
            | Protocol::Dns4(_)
            | Protocol::Dns6(_) => host = true,
            Protocol::Tcp(port) => tcp = port != 0,
            Protocol::P2p(_) => {}
            _ => return false,
        }
    }
    host && tcp
}

/// Strips a trailing `/p2p/<id>` and returns it.
pub(crate) fn split_peer(addr: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
    let mut a = addr.clone();
    match a.pop() {
        Some(Protocol::P2p(p)) => (a, Some(p)),
        Some(other) => {
            a.push(other);
            (a, None)
        }
        None => (a, None),
    }
}

/// The IP address of a multiaddr, if it has one.
pub(crate) fn remote_ip(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use aidmesh_protocol::{Body, Category, Identity, Post, Urgency};
    use std::time::Instant;

    fn engine(dir: &std::path::Path, seed: u8) -> Arc<Engine> {
        let store = Store::open(dir).unwrap();
        Arc::new(Engine::open(store, Identity::from_seed([seed; 32]), "t".into(), 0).unwrap())
    }

    fn need(title: &str) -> Body {
        Body::Need(Post::new(title, Category::Water, Urgency::Normal))
    }

    /// A node on loopback dialling `peers`, with a periodic sync every `sync_every`.
    fn cfg(peers: Vec<Multiaddr>, sync_every: Duration) -> NetConfig {
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            peers,
            psk: [7; 32],
            topic: "t".into(),
            sync_every,
            peer_exchange: true,
        }
    }

    async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 20 s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// a — b — c in a line, gossip only (no periodic sync): while b's store is stalled,
    /// an event posted at a still reaches c through b (b's verdict does not wait for
    /// its disk), and b stores its own copy once the disk is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gossip_passes_through_a_node_whose_store_is_stalled() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let engines: Vec<_> = (0..3u8)
            .map(|i| engine(dirs[i as usize].path(), i + 1))
            .collect();
        let (_stop, stop) = watch::channel(false);
        // Gossip only: no periodic sync.
        let cfg = |peers| cfg(peers, Duration::from_secs(3600));
        let key = identity::Keypair::generate_ed25519;
        let (hb, _tb) = start(engines[1].clone(), key(), cfg(vec![]), stop.clone()).unwrap();
        let listen = until("b to listen", async || {
            hb.status().await.and_then(|s| s.listen.first().cloned())
        })
        .await;
        let b_addr: Multiaddr = format!("{listen}/p2p/{}", hb.peer_id).parse().unwrap();
        let (_ha, _ta) = start(
            engines[0].clone(),
            key(),
            cfg(vec![b_addr.clone()]),
            stop.clone(),
        )
        .unwrap();
        let (_hc, _tc) = start(engines[2].clone(), key(), cfg(vec![b_addr]), stop.clone()).unwrap();
        until("b to connect to a and c", async || {
            (hb.status().await?.peers.len() == 2).then_some(())
        })
        .await;
        // Gossipsub meshes form on heartbeats: post until one reaches c through b.
        let mut n = 0;
        until("an event from a to reach c through b", async || {
            n += 1;
            let ea = engines[0].clone();
            let title = format!("warm-up {n}");
            tokio::task::spawn_blocking(move || ea.post(need(&title)).unwrap())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            (!engines[2].is_empty()).then_some(())
        })
        .await;
        let (held_a, held_c) = (engines[0].len(), engines[2].len());

        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held_tx, held) = std::sync::mpsc::channel();
        let staller = {
            let eb = engines[1].clone();
            std::thread::spawn(move || {
                let _stalled = eb.store().stall();
                let _ = held_tx.send(());
                let _ = released.recv();
            })
        };
        held.recv().unwrap();
        let ea = engines[0].clone();
        let id =
            tokio::task::spawn_blocking(move || ea.post(need("through a stalled b")).unwrap().id())
                .await
                .unwrap();
        assert_eq!(engines[0].len(), held_a + 1);
        until(
            "c to get the event while b's store is stalled",
            async || engines[2].knows(&id).unwrap().then_some(()),
        )
        .await;
        assert!(engines[2].len() > held_c);
        drop(release);
        staller.join().unwrap();
        until("b to store its copy once its disk is back", async || {
            engines[1].knows(&id).unwrap().then_some(())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_network_task_keeps_answering_while_the_store_is_stalled() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ea, eb) = (engine(da.path(), 1), engine(db.path(), 2));
        let (_stop, stop) = watch::channel(false);
        let cfg = |peers| cfg(peers, Duration::from_secs(1));
        let key = identity::Keypair::generate_ed25519;
        let (ha, _ta) = start(ea.clone(), key(), cfg(vec![]), stop.clone()).unwrap();
        let listen = until("a to listen", async || {
            ha.status().await.and_then(|s| s.listen.first().cloned())
        })
        .await;
        let a_addr: Multiaddr = format!("{listen}/p2p/{}", ha.peer_id).parse().unwrap();
        let (hb, _tb) = start(eb.clone(), key(), cfg(vec![a_addr]), stop.clone()).unwrap();
        until("b to connect to a", async || {
            (hb.status().await?.peers.len() == 1).then_some(())
        })
        .await;
        ea.post(need("first")).unwrap();
        until("b to get the first event", async || {
            (eb.len() == 1).then_some(())
        })
        .await;

        // b's disk stalls while a's events arrive by gossip and sync.
        // (Held on a thread of its own: a lock guard must not live across awaits.)
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held_tx, held) = std::sync::mpsc::channel();
        let staller = {
            let eb = eb.clone();
            std::thread::spawn(move || {
                let _stalled = eb.store().stall();
                let _ = held_tx.send(());
                let _ = released.recv();
            })
        };
        held.recv().unwrap();
        let ea2 = ea.clone();
        tokio::task::spawn_blocking(move || ea2.post(need("second")).unwrap())
            .await
            .unwrap();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let status = hb.status().await;
            assert!(
                status.is_some_and(|s| s.peers.len() == 1),
                "b's network task stopped answering while its store was stalled"
            );
        }
        drop(release);
        staller.join().unwrap();
        until(
            "b to store the second event once its disk is back",
            async || (eb.len() == 2).then_some(()),
        )
        .await;
    }
}
