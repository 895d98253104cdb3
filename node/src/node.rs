//! Setting up and running a node: the data directory, identity and community
//! ([`init`]), and [`run`], which starts the store, engine, network, discovery and API
//! and stops them cleanly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aidmesh_protocol::community::{derive_key, key_tag, passphrase_from_entropy, topic};
use aidmesh_protocol::welfare::{assess_all, Standing};
use aidmesh_protocol::Identity;
use libp2p::Multiaddr;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::api;
use crate::engine::Engine;
use crate::net::{self, beacon, discovery, NetConfig, NetError};
use crate::store::{Store, StoreError};

/// Default TCP port for peers.
pub const DEFAULT_PORT: u16 = 4610;
/// Default address of the HTTP API and web page.
pub const DEFAULT_API: &str = "127.0.0.1:4611";
/// Community created by `aidmesh up` on an empty data directory.
pub const DEFAULT_COMMUNITY: &str = "neighbourhood";
/// File in the data directory holding the running node's API address.
pub const API_FILE: &str = "api.addr";
/// File in the data directory holding the process id of the node running on it.
pub const PID_FILE: &str = "node.pid";
/// File in the data directory holding the community card (name, then passphrase),
/// readable only by its owner, so `aidmesh passphrase` can show it while the node runs
/// and holds the database. The database already keeps the same words in this directory.
pub const CARD_FILE: &str = "community.card";
/// Meta key marking a community that `aidmesh up` created by itself on an empty
/// directory: until the node holds any event, `join` or `start` may replace it.
const AUTO_CREATED: &str = "auto_created";

/// File in the data directory listing static peers, one multiaddr per line (`#` starts
/// a comment). Added to `--peer`.
pub const PEERS_FILE: &str = "peers";

/// Reads the static peers file, if there is one.
pub fn read_peers_file(dir: &Path) -> Result<Vec<Multiaddr>, NodeError> {
    let path = dir.join(PEERS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NodeError::Io {
                what: "cannot read",
                path,
                source,
            })
        }
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr: Multiaddr = line.parse().map_err(|e| {
            NodeError::Config(format!(
                "{}, line {}: '{line}' is not a peer address ({e}); e.g. /ip4/192.168.2.10/tcp/4610",
                path.display(),
                n + 1
            ))
        })?;
        if !crate::net::dialable(&addr) {
            return Err(NodeError::Config(format!(
                "{}, line {}: '{line}' is not a TCP address of a peer; e.g. /ip4/192.168.2.10/tcp/4610",
                path.display(),
                n + 1
            )));
        }
        out.push(addr);
    }
    Ok(out)
}

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
    /// The volunteer PIN is empty or too short.
    #[error(transparent)]
    Pin(#[from] api::welfare::WeakPin),
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
    /// A bad setting.
    #[error("{0}")]
    Config(String),
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

/// The node's identity and community, as stored in the data directory.
#[derive(Clone)]
pub struct Profile {
    /// Ed25519 seed: signs events and is the libp2p identity.
    pub seed: [u8; 32],
    /// Community name.
    pub community: String,
    /// Community passphrase (kept so a coordinator can hand it on).
    pub passphrase: String,
    /// Derived pre-shared key.
    pub psk: [u8; 32],
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed or the key.
        f.debug_struct("Profile")
            .field("community", &self.community)
            .finish_non_exhaustive()
    }
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("db")
}

fn meta_str(store: &Store, key: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .meta(key)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Reads the profile, if the directory was initialised.
pub fn load_profile(store: &Store) -> Result<Option<Profile>, NodeError> {
    let (Some(seed), Some(psk)) = (store.meta("seed")?, store.meta("psk")?) else {
        return Ok(None);
    };
    let bad = |what: &str| {
        NodeError::Config(format!("{} holds a damaged {what}", store.path().display()))
    };
    Ok(Some(Profile {
        seed: seed.as_slice().try_into().map_err(|_| bad("identity"))?,
        psk: psk
            .as_slice()
            .try_into()
            .map_err(|_| bad("community key"))?,
        community: meta_str(store, "community")?.unwrap_or_default(),
        passphrase: meta_str(store, "passphrase")?.unwrap_or_default(),
    }))
}

fn random<const N: usize>() -> Result<[u8; N], NodeError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| NodeError::Config(format!("no random source available: {e}")))?;
    Ok(b)
}

/// Creates an identity and joins (with `passphrase`) or creates (without) a community.
pub fn init(dir: &Path, community: &str, passphrase: Option<&str>) -> Result<Profile, NodeError> {
    std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
        what: "cannot create the data directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let store = open_store(dir)?;
    init_store(&store, dir, community, passphrase)
}

/// Makes sure `dir` holds a node before `run`: on an empty directory, creates one in a
/// new community [`DEFAULT_COMMUNITY`] and returns its profile (so the caller can show
/// the passphrase even if the node then fails to start, e.g. on a busy port). Never
/// where a data directory was moved aside (see [`check_not_moved_aside`]).
pub fn prepare(dir: &Path) -> Result<Option<Profile>, NodeError> {
    if !db_path(dir).exists() {
        // Before anything is made here.
        check_not_moved_aside(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
        what: "cannot create the data directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let store = open_store(dir)?;
    if load_profile(&store)?.is_some() {
        return Ok(None);
    }
    check_not_moved_aside(dir)?;
    let p = init_store(&store, dir, DEFAULT_COMMUNITY, None)?;
    store.set_meta(AUTO_CREATED, b"1")?;
    Ok(Some(p))
}

/// Opens the directory's database; if another live process holds it, says so (a node
/// already running). On a full disk it does not open it at all (opening writes, and a
/// write cut short damaged the database): it says to free space or move the whole
/// directory, rather than suggesting the database is damaged.
fn open_store(dir: &Path) -> Result<Store, NodeError> {
    let full = |free: u64| NodeError::DiskFull {
        dir: dir.to_path_buf(),
        free,
    };
    let existing = if dir.exists() { dir } else { Path::new(".") };
    let free = crate::disk::Space::of(existing).map(|s| s.free_bytes).ok();
    if let Some(free) = free.filter(|&f| f < crate::disk::OPEN_FLOOR_BYTES) {
        return Err(match running_pid(dir) {
            Some(pid) => NodeError::AlreadyRunning { pid },
            None => full(free),
        });
    }
    Store::open(&db_path(dir)).map_err(|e| {
        if let Some(pid) = running_pid(dir) {
            return NodeError::AlreadyRunning { pid };
        }
        match &e {
            StoreError::Open {
                source: sled::Error::Io(io),
                ..
            } if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
                full(free.unwrap_or(0))
            }
            _ => e.into(),
        }
    })
}

/// Whether `path` looks like an aidmesh data directory: it holds a community card or
/// a database directory.
fn is_data_dir(path: &Path) -> bool {
    path.join(CARD_FILE).is_file() || db_path(path).is_dir()
}

/// Refuses to let `up` make a community by itself in `dir` (which holds no node) where
/// a hub's data directory was moved aside: `dir` holds a community card (its database
/// is gone), or a directory beside it whose name contains `dir`'s name
/// (`aidmesh.old`, `old-aidmesh`, `aidmesh-full`...) is an aidmesh data directory.
/// `start` and `join` are not refused: they say what they make.
pub fn check_not_moved_aside(dir: &Path) -> Result<(), NodeError> {
    let refuse = |found: String| NodeError::MovedAside {
        dir: dir.to_path_buf(),
        found,
    };
    if dir.join(CARD_FILE).is_file() {
        return Err(refuse(format!(
            "{} is there but the database that belongs with it (db/, with this hub's identity) is not",
            dir.join(CARD_FILE).display()
        )));
    }
    let Some(name) = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()) else {
        return Ok(());
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let sibling = entry.file_name().to_string_lossy().to_lowercase();
        let path = entry.path();
        if sibling != name && sibling.contains(&name) && is_data_dir(&path) {
            return Err(refuse(format!(
                "{} beside it is an aidmesh data directory (moved aside?): it holds a hub's identity and community",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The process id in the directory's pid file, if that process is alive and not us.
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid == std::process::id() {
        return None;
    }
    let raw = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let alive = unsafe { libc::kill(raw, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(pid)
}

/// Writes the community card file (owner-only), see [`CARD_FILE`].
fn write_card(dir: &Path, p: &Profile) -> Result<(), NodeError> {
    let path = dir.join(CARD_FILE);
    let io = |source| NodeError::Io {
        what: "cannot write",
        path: path.clone(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(io)?;
    std::io::Write::write_all(
        &mut f,
        format!("{}\n{}\n", p.community, p.passphrase).as_bytes(),
    )
    .map_err(io)
}

/// The community name and passphrase of the node in `dir`, read from the card file
/// (also while the node runs) or, failing that, from the database; `None` if the
/// directory holds no node.
pub fn community_card(dir: &Path) -> Result<Option<(String, String)>, NodeError> {
    if let Ok(text) = std::fs::read_to_string(dir.join(CARD_FILE)) {
        let mut lines = text.lines();
        if let (Some(c), Some(p)) = (lines.next(), lines.next()) {
            return Ok(Some((c.to_string(), p.to_string())));
        }
    }
    if !db_path(dir).exists() {
        return Ok(None);
    }
    let store = open_store(dir)?;
    Ok(load_profile(&store)?.map(|p| (p.community, p.passphrase)))
}

fn init_store(
    store: &Store,
    dir: &Path,
    community: &str,
    passphrase: Option<&str>,
) -> Result<Profile, NodeError> {
    let community = community.trim();
    if community.is_empty()
        || community.chars().count() > 64
        || community.chars().any(char::is_control)
    {
        return Err(NodeError::Config(
            "the community name must be 1 to 64 printable characters".into(),
        ));
    }
    if let Some(p) = load_profile(store)? {
        // A community `up` made by itself, before anything happened on it, may still
        // be replaced by the one the user meant to start or join.
        let replaceable = store.meta(AUTO_CREATED)?.as_deref() == Some(b"1") && store.is_empty();
        if !replaceable {
            return Err(NodeError::AlreadyInitialised {
                dir: dir.to_path_buf(),
                community: p.community,
            });
        }
        store.set_meta(AUTO_CREATED, b"0")?;
    }
    let passphrase = match passphrase {
        Some(p) if p.split_whitespace().count() < 3 => return Err(NodeError::Config(
            "the passphrase must have at least 3 words; ask the hub for the community's passphrase"
                .into(),
        )),
        Some(p) => aidmesh_protocol::community::normalise_passphrase(p),
        None => passphrase_from_entropy(&random()?),
    };
    let profile = Profile {
        seed: random()?,
        psk: derive_key(community, &passphrase),
        community: community.to_string(),
        passphrase,
    };
    store.set_meta("community", profile.community.as_bytes())?;
    store.set_meta("passphrase", profile.passphrase.as_bytes())?;
    store.set_meta("psk", &profile.psk)?;
    // The seed last: its presence marks a complete initialisation.
    store.set_meta("seed", &profile.seed)?;
    write_card(dir, &profile)?;
    Ok(profile)
}

/// Everything `run` needs besides the data directory's contents.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Peer listen addresses.
    pub listen: Vec<Multiaddr>,
    /// HTTP API address.
    pub api: SocketAddr,
    /// Static peers.
    pub peers: Vec<Multiaddr>,
    /// mDNS discovery on.
    pub mdns: bool,
    /// Broadcast-beacon discovery on ([`crate::net::beacon`]).
    pub beacon: bool,
    /// Peer exchange on (learning members' addresses from members, and telling them).
    pub peer_exchange: bool,
    /// Added to the system clock (testing a node with a wrong clock).
    pub clock_offset_ms: i64,
    /// Anti-entropy period.
    pub sync_every: Duration,
    /// PIN for welfare data over HTTP from other machines.
    pub volunteer_pin: Option<String>,
    /// Welfare records are erased this long after their last check-in.
    pub welfare_retention: Duration,
    /// How often welfare records past retention are looked for (tests shorten it).
    pub retention_sweep: Duration,
    /// How fast other machines may write through the API.
    pub posting: crate::api::PostingLimits,
}

/// How often the node looks for people who became overdue, to log it.
const OVERDUE_CHECK: Duration = Duration::from_secs(60);

/// Logs each person whose standing became worse than "ok" since the last look (by id
/// only: names stay out of log files).
fn log_new_overdue(engine: &Engine, last: &mut HashMap<aidmesh_protocol::EventId, Standing>) {
    let now = engine.now_ms();
    let people = engine.with_view(|v| v.people());
    let mut current = HashMap::new();
    for w in assess_all(&people, now) {
        let was = last.get(&w.person.id).copied().unwrap_or(Standing::Ok);
        if w.standing < Standing::NeverVisited && w.standing != was {
            warn!(
                person = %w.person.id.short(),
                standing = w.standing.name(),
                overdue_min = w.overdue_ms / 60_000,
                "welfare: someone needs a visit (aidmesh welfare overdue)"
            );
        }
        current.insert(w.person.id, w.standing);
    }
    *last = current;
}

/// Default welfare retention: 30 days after the last check-in.
pub const DEFAULT_WELFARE_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How often the node looks for welfare records past retention.
const RETENTION_SWEEP: Duration = Duration::from_secs(600);

impl NodeConfig {
    /// Defaults for `dir`: all interfaces on [`DEFAULT_PORT`], API on [`DEFAULT_API`].
    pub fn new(dir: PathBuf) -> Self {
        NodeConfig {
            data_dir: dir,
            listen: vec![format!("/ip4/0.0.0.0/tcp/{DEFAULT_PORT}")
                .parse()
                .expect("constant multiaddr")],
            api: DEFAULT_API.parse().expect("constant socket address"),
            peers: Vec::new(),
            mdns: true,
            beacon: true,
            peer_exchange: true,
            clock_offset_ms: 0,
            sync_every: Duration::from_secs(30),
            volunteer_pin: None,
            welfare_retention: DEFAULT_WELFARE_RETENTION,
            retention_sweep: RETENTION_SWEEP,
            posting: crate::api::PostingLimits::default(),
        }
    }
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
    api::welfare::check_pin(cfg.volunteer_pin.as_deref())?;
    if let Some(n) = api::conn::raise_fd_limit() {
        info!(open_files = n, "open-file limit");
    }
    let mut peers = cfg.peers.clone();
    peers.extend(read_peers_file(&cfg.data_dir)?);
    let store = open_store(&cfg.data_dir)?;
    let pid_file = cfg.data_dir.join(PID_FILE);
    std::fs::write(&pid_file, std::process::id().to_string()).map_err(|source| NodeError::Io {
        what: "cannot write",
        path: pid_file.clone(),
        source,
    })?;
    let (profile, created) = match load_profile(&store)? {
        Some(p) => (p, None),
        None => {
            check_not_moved_aside(&cfg.data_dir)?;
            let p = init_store(&store, &cfg.data_dir, DEFAULT_COMMUNITY, None)?;
            store.set_meta(AUTO_CREATED, b"1")?;
            (p.clone(), Some(p))
        }
    };
    // Directories made before the card file existed get one now.
    write_card(&cfg.data_dir, &profile)?;
    let identity = Identity::from_seed(profile.seed);
    let engine = Arc::new(Engine::open(
        store,
        identity,
        profile.community.clone(),
        cfg.clock_offset_ms,
    )?);
    info!(events = engine.len(), community = %profile.community, "store loaded");
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(profile.seed)
        .map_err(|e| NodeError::Config(format!("identity: {e}")))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_sweep = stop_rx.clone();
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
    // Wait (bounded) for the listeners so we can advertise the real port.
    let mut listen = Vec::new();
    for _ in 0..100 {
        if let Some(s) = net.status().await {
            if !s.listen.is_empty() {
                listen = s.listen;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let _beacon = match (cfg.beacon && lan_reachable, tcp_port) {
        (true, Some(port)) => {
            match beacon::start(net.peer_id, port, &profile.psk, net.commands.clone()) {
                Ok(b) => Some(b),
                Err(e) => {
                    warn!(error = %e, port = beacon::PORT, "beacon discovery could not start (is UDP {} free?); use --peer to connect", beacon::PORT);
                    None
                }
            }
        }
        _ => None,
    };
    let _discovery = if cfg.mdns {
        match tcp_port {
            Some(port) => match discovery::start(
                net.peer_id,
                port,
                key_tag(&profile.psk),
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
            },
            None => None,
        }
    } else {
        None
    };
    let (api_addr, api_task) = api::serve(
        cfg.api,
        api::AppState::new(engine.clone(), net.clone(), cfg.volunteer_pin.clone())
            .with_posting_limits(cfg.posting.clone()),
        stop_rx,
    )
    .await?;
    let sweeper = {
        let engine = engine.clone();
        let retention = cfg.welfare_retention.as_millis() as u64;
        let every = cfg.retention_sweep;
        let mut stop = stop_rx_sweep;
        tokio::spawn(async move {
            let mut watch_tick = tokio::time::interval(OVERDUE_CHECK);
            let mut sweep_tick = tokio::time::interval(every);
            let mut standing: HashMap<aidmesh_protocol::EventId, Standing> = HashMap::new();
            loop {
                tokio::select! {
                    _ = watch_tick.tick() => log_new_overdue(&engine, &mut standing),
                    _ = sweep_tick.tick() => {
                        let engine = engine.clone();
                        let r = tokio::task::spawn_blocking(move || engine.expire_welfare(retention)).await;
                        match r {
                            Ok(Ok(erased)) => debug!(erased, "retention sweep done"),
                            Ok(Err(e)) => warn!(error = %e, "could not erase expired welfare records"),
                            Err(_) => {}
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        })
    };
    let api_file = cfg.data_dir.join(API_FILE);
    // Written to a temporary file and renamed into place, so the CLI and scripts never
    // read a half-written address.
    let tmp = cfg.data_dir.join(format!("{API_FILE}.tmp"));
    std::fs::write(&tmp, api_addr.to_string())
        .and_then(|()| std::fs::rename(&tmp, &api_file))
        .map_err(|source| NodeError::Io {
            what: "cannot write",
            path: api_file.clone(),
            source,
        })?;
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
    let _ = tokio::time::timeout(Duration::from_secs(5), sweeper).await;
    engine.store().flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_makes_no_community_where_a_data_directory_was_moved_aside() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("aidmesh");
        // Nothing around: `up` may make one.
        assert!(check_not_moved_aside(&dir).is_ok());
        // A hub's directory moved aside beside it (`mv aidmesh aidmesh.old`).
        let aside = root.path().join("aidmesh.old");
        init(&aside, "Elm Street", None).unwrap();
        let e = check_not_moved_aside(&dir).unwrap_err().to_string();
        assert!(e.contains("aidmesh.old") && e.contains("join"), "{e}");
        // prepare refuses before it makes anything.
        assert!(prepare(&dir).is_err());
        assert!(!dir.exists(), "prepare made {}", dir.display());
        // A directory beside it whose name does not hold this one's: not a sign.
        std::fs::rename(&aside, root.path().join("hub-b")).unwrap();
        assert!(check_not_moved_aside(&dir).is_ok());
        // A community card without its database.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CARD_FILE), "Elm Street\nwords\n").unwrap();
        let e = check_not_moved_aside(&dir).unwrap_err().to_string();
        assert!(e.contains(CARD_FILE), "{e}");
        // `init` (start, join) is deliberate and not refused.
        assert!(init(&dir, "Elm Street", None).is_ok());
        assert!(prepare(&dir).unwrap().is_none(), "a node is there now");
    }

    #[test]
    fn peers_file_lines_comments_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_peers_file(dir.path()).unwrap().is_empty());
        std::fs::write(
            dir.path().join(PEERS_FILE),
            "# the school hub\n/ip4/192.168.2.10/tcp/4610\n\n/ip4/10.0.0.5/tcp/4610 # radio link\n",
        )
        .unwrap();
        assert_eq!(read_peers_file(dir.path()).unwrap().len(), 2);
        std::fs::write(
            dir.path().join(PEERS_FILE),
            "/ip4/10.0.0.5/tcp/4610\nnonsense\n",
        )
        .unwrap();
        let e = read_peers_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("nonsense"), "{e}");
    }
}
