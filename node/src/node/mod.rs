//! Setting up and running a node: the data directory, identity and community
//! ([`init`], [`prepare`]; `profile.rs`), the settings ([`NodeConfig`]), and [`run`],
//! which starts the store, engine, network, discovery, API and welfare watch and stops
//! them cleanly.

mod backup;
mod config;
pub mod map;
mod overdue;
mod peers_file;
mod profile;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aidmesh_protocol::community::{key_tag, topic};
use aidmesh_protocol::Identity;
use libp2p::Multiaddr;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api;
use crate::engine::Engine;
use crate::net::{self, beacon, discovery, NetConfig, NetError, NetHandle};
use crate::store::StoreError;

pub use backup::{backup_stopped, check_backup, restore, Checked, Restored};
pub use config::{NodeConfig, DEFAULT_API, DEFAULT_PORT, DEFAULT_WELFARE_RETENTION};
pub use peers_file::{read_peers_file, PeersFileError, PEERS_FILE};
pub use profile::{
    check_not_moved_aside, community_card, init, load_profile, prepare, running_pid, Profile,
    CARD_FILE, DEFAULT_COMMUNITY, PID_FILE,
};

/// File in the data directory holding the running node's API address.
pub const API_FILE: &str = "api.addr";

/// Why a node could not be set up or run.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Networking failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The HTTP API could not start.
    #[error(transparent)]
    Api(#[from] api::ServeError),
    /// The SMS gateway could not start (its daemon's config, its folders).
    #[error(transparent)]
    Sms(#[from] crate::sms::StartError),
    /// The volunteer PIN is empty or too short.
    #[error(transparent)]
    Pin(#[from] api::pin::WeakPin),
    /// `init` on a directory that already has an identity.
    #[error("{dir} already holds a node of community '{community}'; use another --data-dir to make a new node")]
    AlreadyInitialised {
        /// The data directory.
        dir: PathBuf,
        /// Its community.
        community: String,
    },
    /// Another process holds this directory's database.
    #[error("a node is already running for this directory (pid {pid}); stop it first (Ctrl-C in its terminal), or use another --data-dir")]
    AlreadyRunning {
        /// Its process id.
        pid: u32,
    },
    /// The database is not opened because its disk is full.
    #[error("cannot open the database in {dir}: the disk is full ({free} bytes free; the node needs {floor} to open it without risk). Free space on that disk (`df -h {dir}` shows it: delete or move other files) and run `aidmesh up` again. Or move the WHOLE directory {dir} to a disk with room and run `aidmesh --data-dir NEW_PLACE up`: its db/ holds this hub's identity (the key that registered people and alone may forget them) and the community key, and community.card the community's name and six words; keep them together. Do not start over in a new directory: that is a new hub, in a new community, that can never forget the people this one registered", floor = crate::disk::OPEN_FLOOR_BYTES)]
    DiskFull {
        /// The data directory.
        dir: PathBuf,
        /// Free bytes on its filesystem.
        free: u64,
    },
    /// `up` found no node in the directory but signs that one lived there (a
    /// moved-aside data directory, or a community card without its database).
    #[error("not creating a new community in {dir}: {found}. A new community here would be a new hub with a new identity: it would never catch up with your community and could not forget the people your hub registered. Put that data directory back at {dir} (free disk space first if the disk was full), or, to really make a new node here, run `aidmesh --data-dir {dir} join` (an existing community) or `aidmesh --data-dir {dir} start --community NAME` (a new one)")]
    MovedAside {
        /// The data directory `up` was asked to run.
        dir: PathBuf,
        /// What was found, and where.
        found: String,
    },
    /// A line of the peers file is not a peer's address.
    #[error(transparent)]
    PeersFile(#[from] PeersFileError),
    /// The database holds an identity or community key of the wrong size.
    #[error("{} holds a damaged {what}", db.display())]
    Damaged {
        /// The database directory.
        db: PathBuf,
        /// "identity" or "community key".
        what: &'static str,
    },
    /// The community name is empty, too long or holds control characters.
    #[error("the community name must be 1 to 64 printable characters")]
    BadCommunityName,
    /// A passphrase given to join has fewer than 3 words.
    #[error(
        "the passphrase must have at least 3 words; ask the hub for the community's passphrase"
    )]
    ShortPassphrase,
    /// The system has no random source to make keys with.
    #[error("no random source available: {0}")]
    NoRandom(getrandom::Error),
    /// The stored identity is not a valid libp2p key.
    #[error("identity: {0}")]
    Identity(libp2p::identity::DecodingError),
    /// A backup file is cut short, damaged, or not a backup.
    #[error("{}: {source}", file.display())]
    Backup {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        source: aidmesh_protocol::backup::BackupError,
    },
    /// Writing a backup failed.
    #[error(transparent)]
    BackupWrite(#[from] crate::doors::backup::BackupIoError),
    /// A restore into a directory that holds something.
    #[error("not restoring into {dir}: it is not empty. A restore makes a new data directory; give an empty or new one with --data-dir (a hub's data directory is never overwritten)")]
    RestoreNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// A stopped node's backup asked of a directory that holds no node.
    #[error("{dir} holds no aidmesh node (no db/ in it): nothing to back up; give the hub's data directory with --data-dir")]
    NoNode {
        /// The directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What a started node tells its caller (printed by `aidmesh up`).
#[derive(Debug, Clone)]
pub struct Started {
    /// libp2p peer id.
    pub peer_id: String,
    /// Community name.
    pub community: String,
    /// Listen addresses.
    pub listen: Vec<String>,
    /// API address.
    pub api: SocketAddr,
    /// Whether a new identity was made because the directory was empty.
    pub created: Option<Profile>,
}

/// Runs a node until `shutdown` resolves. `on_start` is called once everything listens.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
    on_start: impl FnOnce(&Started),
) -> Result<(), NodeError> {
    api::pin::check_pin(cfg.volunteer_pin.as_deref())?;
    if let Some(n) = api::conn::raise_fd_limit() {
        info!(open_files = n, "open-file limit");
    }
    let mut peers = cfg.peers.clone();
    peers.extend(read_peers_file(&cfg.data_dir)?);
    let store = profile::open_store_to_run(&cfg.data_dir)?;
    let pid_file = profile::write_pid_file(&cfg.data_dir)?;
    let (profile, created) = profile::load_or_create(&store, &cfg.data_dir)?;
    let identity = Identity::from_seed(profile.seed);
    let engine = Arc::new(Engine::open(
        store,
        identity,
        profile.community.clone(),
        cfg.clock_offset_ms,
    )?);
    info!(events = engine.len(), community = %profile.community, "store loaded");
    let keypair =
        libp2p::identity::Keypair::ed25519_from_bytes(profile.seed).map_err(NodeError::Identity)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (net, net_task) = net::start(
        engine.clone(),
        keypair,
        NetConfig {
            listen: cfg.listen.clone(),
            peers,
            psk: profile.psk,
            topic: topic(&profile.community),
            sync_every: cfg.sync_every,
            peer_exchange: cfg.peer_exchange,
        },
        stop_rx.clone(),
    )?;
    let listen = listening(&net).await;
    let _discovery = Discovery::start(&cfg, &net, &listen, &profile);
    let sms = crate::sms::Gateway::start_if(cfg.sms.clone(), &cfg.data_dir, &engine, &stop_rx)?;
    let (api_addr, api_task) = api::serve(
        cfg.api,
        api::AppState::new(engine.clone(), net.clone(), cfg.volunteer_pin.clone())
            .with_posting_limits(cfg.posting.clone())
            .with_sms(sms)
            .with_unreached_after(cfg.unreached_after)
            .with_map_dir(cfg.data_dir.clone()),
        stop_rx.clone(),
    )
    .await?;
    let watch = overdue::spawn(
        engine.clone(),
        cfg.welfare_retention,
        cfg.retention_sweep,
        stop_rx,
    );
    let api_file = write_api_file(&cfg.data_dir, api_addr)?;
    on_start(&Started {
        peer_id: net.peer_id.to_string(),
        community: profile.community.clone(),
        listen,
        api: api_addr,
        created,
    });
    shutdown.await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = std::fs::remove_file(&api_file);
    let _ = std::fs::remove_file(&pid_file);
    let _ = tokio::time::timeout(Duration::from_secs(5), net_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), api_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), watch).await;
    // Refuses any write still under way from here on, flushes, and writes the start
    // file for a quick next start (a failure to write that is only logged).
    engine.stop_cleanly()?;
    Ok(())
}

/// The addresses the network listens on, once it does (waited for, bounded, so the
/// real port can be advertised).
async fn listening(net: &NetHandle) -> Vec<String> {
    for _ in 0..100 {
        if let Some(s) = net.status().await {
            if !s.listen.is_empty() {
                return s.listen;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

/// The discovery services that run (each stops when dropped): the broadcast beacon and
/// mDNS, each if configured and able to start (a failure is logged, not fatal).
struct Discovery {
    _beacon: Option<beacon::BeaconTask>,
    _mdns: Option<discovery::Discovery>,
}

impl Discovery {
    fn start(cfg: &NodeConfig, net: &NetHandle, listen: &[String], profile: &Profile) -> Discovery {
        let psk = &profile.psk;
        let tcp_port = listen
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
            .find_map(|a| {
                a.iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                    _ => None,
                })
            });
        // A node listening on loopback only cannot be reached from the LAN: no beacon (so
        // test nodes on one machine do not announce themselves to each other).
        let lan_reachable = cfg
            .listen
            .iter()
            .any(|a| net::remote_ip(a).is_some_and(|ip| !ip.is_loopback()));
        if !lan_reachable {
            warn!("listening on loopback only: no other computer can connect to this node (this node still dials others); listen on every interface with --listen /ip4/0.0.0.0/tcp/4610 to join the other hubs");
        }
        let beacon = match (cfg.beacon && lan_reachable, tcp_port) {
            (true, Some(port)) => {
                match beacon::start(net.peer_id, port, psk, net.commands.clone()) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        warn!(error = %e, port = beacon::PORT, "beacon discovery could not start (is UDP {} free?); use --peer to connect", beacon::PORT);
                        None
                    }
                }
            }
            _ => None,
        };
        let mdns = match (cfg.mdns, tcp_port) {
            (true, Some(port)) => {
                match discovery::start(
                    net.peer_id,
                    port,
                    key_tag(psk),
                    &profile.community,
                    &profile.passphrase,
                    lan_reachable,
                    net.commands.clone(),
                ) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        warn!(error = %e, "mDNS discovery could not start; use --peer to connect");
                        None
                    }
                }
            }
            _ => None,
        };
        Discovery {
            _beacon: beacon,
            _mdns: mdns,
        }
    }
}

/// Writes the API address into the data directory ([`API_FILE`]) through a temporary
/// file renamed into place, so the CLI and scripts never read a half-written address;
/// returns the file, for removal at the end.
fn write_api_file(dir: &Path, addr: SocketAddr) -> Result<PathBuf, NodeError> {
    let api_file = dir.join(API_FILE);
    let tmp = dir.join(format!("{API_FILE}.tmp"));
    std::fs::write(&tmp, addr.to_string())
        .and_then(|()| std::fs::rename(&tmp, &api_file))
        .map_err(|source| NodeError::Io {
            what: "cannot write",
            path: api_file.clone(),
            source,
        })?;
    Ok(api_file)
}
