//! [`NodeConfig`]: everything `run` needs besides the data directory's contents, and
//! its defaults (ports, retention).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use libp2p::Multiaddr;

/// Default TCP port for peers.
pub const DEFAULT_PORT: u16 = 4610;
/// Default address of the HTTP API and web page.
pub const DEFAULT_API: &str = "127.0.0.1:4611";
/// Default welfare retention: 30 days after the last check-in.
pub const DEFAULT_WELFARE_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How often the node looks for welfare records past retention.
const RETENTION_SWEEP: Duration = Duration::from_secs(600);

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
    /// The SMS gateway (`up --sms-gateway SMSDRC`), if this hub runs one.
    pub sms: Option<crate::sms::SmsOptions>,
    /// An urgent need posted here and known at no other hub this long is flagged
    /// unreached ([`crate::delivery::UNREACHED_AFTER_MS`]; tests shorten it).
    pub unreached_after: Duration,
}

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
            sms: None,
            unreached_after: Duration::from_millis(crate::delivery::UNREACHED_AFTER_MS),
        }
    }
}
