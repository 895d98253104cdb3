//! The peer transport and the swarm: TCP inside a pnet private network keyed by the
//! community key, then noise and yamux; the behaviours (gossipsub, sync
//! request-response, connection limits, bans) and their settings. Built once by
//! [`super::start`]; no state of its own beyond the swarm.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aidmesh_protocol::event::MAX_EVENT_BYTES;
use aidmesh_protocol::Event;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::upgrade::Version;
use libp2p::gossipsub::{self, IdentTopic, MessageId, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, identity, noise, tcp, yamux, Multiaddr, PeerId, Swarm,
    Transport,
};
use thiserror::Error;

use super::sync::{self, Codec, Counters};
use super::{remote_ip, NetConfig, NetError};

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(super) pending_per_ip: super::pending::PendingPerIp,
    pub(super) limits: connection_limits::Behaviour,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) sync: request_response::Behaviour<Codec>,
    pub(super) pex: request_response::Behaviour<super::pex::Codec>,
}

/// Connection limits: a hub LAN has tens of nodes, not thousands. Connections in their
/// handshake are also bounded per remote address ([`super::pending`]), so one host
/// cannot take every pending slot.
fn limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(64))
        .with_max_pending_outgoing(Some(32))
        .with_max_established(Some(128))
        .with_max_established_per_peer(Some(2))
}

/// Gossipsub message id = event id, so the same event relayed by many peers is one
/// message. Undecodable data gets a hash of its bytes (and will be rejected).
fn message_id(m: &gossipsub::Message) -> MessageId {
    match Event::decode(&m.data) {
        Ok(e) => MessageId::from(e.id().0.to_vec()),
        Err(_) => MessageId::from(blake3::hash(&m.data).as_bytes().to_vec()),
    }
}

/// The gossipsub settings. [`GossipProfile::LAN`] is the node's; another can be
/// chosen with the environment variable `AIDMESH_GOSSIP_PROFILE` for the test bed's
/// comparisons (docs/reliability.md, "Thin link and gossip amplification"): a base,
/// `lan` or `libp2p-default`, then optional comma-separated overrides, e.g.
/// `lan,mesh=3/2/4,idontwant=0`. Not for hubs: every node of a community should
/// run the same settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GossipProfile {
    /// Mesh degree for events: target, low and high (libp2p's D, D_lo, D_hi).
    pub mesh: (usize, usize, usize),
    /// Mesh degree for the hub summaries' topic (delivery reports, not urgent).
    pub summary_mesh: (usize, usize, usize),
    /// Gossipsub's heartbeat (mesh upkeep, IHAVE), ms.
    pub heartbeat_ms: u64,
    /// Non-mesh peers sent IHAVE at each heartbeat, at least (D_lazy).
    pub lazy: usize,
    /// Share of the other non-mesh peers sent IHAVE too.
    pub factor: f64,
    /// Heartbeat windows whose message ids an IHAVE carries.
    pub history_gossip: usize,
    /// Publish to every subscribed peer instead of to the mesh.
    pub flood_publish: bool,
    /// Messages over this many bytes make a node send IDONTWANT to its mesh.
    pub idontwant: usize,
    /// Whether hub summaries (issue 11) are published. Off only to measure event
    /// gossip alone in the test bed: without them no other hub confirms delivery.
    pub summaries: bool,
}

/// The environment variable that picks a [`GossipProfile`].
pub const GOSSIP_PROFILE_ENV: &str = "AIDMESH_GOSSIP_PROFILE";

/// Why a text is not a [`GossipProfile`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProfileError {
    /// The base is neither `lan` nor `libp2p-default`.
    #[error(
        "unknown profile {0:?}: use lan or libp2p-default, then overrides \
         such as mesh=3/2/4, smesh=3/2/4, heartbeat=1000, lazy=2, factor=0.25, history=1, flood=on, idontwant=0, \
         summaries=off"
    )]
    UnknownProfile(String),
    /// An override without `=`.
    #[error("{0:?} is not key=value")]
    NotKeyValue(String),
    /// An override of no setting.
    #[error("unknown setting {0:?}")]
    UnknownSetting(String),
    /// A setting given a value it cannot take.
    #[error("{key}={value}: {wants}")]
    BadValue {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What it takes.
        wants: &'static str,
    },
}

/// Why [`GOSSIP_PROFILE_ENV`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProfileEnvError {
    /// It names no valid profile.
    #[error("{GOSSIP_PROFILE_ENV}={value:?}: {error}")]
    Invalid {
        /// Its value.
        value: String,
        /// What is wrong with it.
        error: ProfileError,
    },
    /// It is not Unicode.
    #[error("{GOSSIP_PROFILE_ENV}: {0}")]
    Unreadable(std::env::VarError),
}

impl GossipProfile {
    /// Tuned for hub LANs, where every node reaches every other and links are short
    /// (docs/reliability.md, "Thin link and gossip amplification" and "Hub summaries
    /// and a city"). Events: a mesh of 4 (3-6), publishing to the mesh (topped up to
    /// 4 when it is short) instead of to every peer, and announcing only the last
    /// window's ids to 2 non-mesh peers. A mesh of 3 costs a third less but was
    /// slower under loss and, once, left a host without an event for a minute on
    /// the 30-host test bed (`lan,mesh=3/2/4` is the measured option for a metered
    /// link). Hub summaries, delivery reports rather than urgent, on a mesh of 3
    /// (2-4): still a connected overlay (a mesh of 2 is not: the simulation's
    /// summaries then reach a fraction of the hubs), a third fewer copies. A
    /// heartbeat of 1 s (libp2p's) instead of 700 ms: fewer IHAVE packets.
    pub const LAN: GossipProfile = GossipProfile {
        mesh: (4, 3, 6),
        summary_mesh: (3, 2, 4),
        heartbeat_ms: 1000,
        lazy: 2,
        factor: 0.0,
        history_gossip: 1,
        flood_publish: false,
        idontwant: 1000,
        summaries: true,
    };

    /// libp2p's defaults (the node before the LAN tuning).
    pub const LIBP2P_DEFAULT: GossipProfile = GossipProfile {
        mesh: (6, 5, 12),
        summary_mesh: (6, 5, 12),
        heartbeat_ms: 1000,
        lazy: 6,
        factor: 0.25,
        history_gossip: 3,
        flood_publish: true,
        idontwant: 1000,
        summaries: true,
    };

    /// The profile `AIDMESH_GOSSIP_PROFILE` names, [`GossipProfile::LAN`] if unset.
    pub fn from_env() -> Result<GossipProfile, ProfileEnvError> {
        match std::env::var(GOSSIP_PROFILE_ENV) {
            Ok(v) => GossipProfile::parse(&v)
                .map_err(|error| ProfileEnvError::Invalid { value: v, error }),
            Err(std::env::VarError::NotPresent) => Ok(GossipProfile::LAN),
            Err(e) => Err(ProfileEnvError::Unreadable(e)),
        }
    }

    /// Parses `base[,key=value...]`; see [`GossipProfile`].
    pub fn parse(s: &str) -> Result<GossipProfile, ProfileError> {
        let mut parts = s.split(',').map(str::trim);
        let mut p = match parts.next().unwrap_or("") {
            "lan" | "" => GossipProfile::LAN,
            "libp2p-default" => GossipProfile::LIBP2P_DEFAULT,
            other => return Err(ProfileError::UnknownProfile(other.into())),
        };
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ProfileError::NotKeyValue(part.into()))?;
            let bad = |value: &str, wants| ProfileError::BadValue {
                key: k.into(),
                value: value.into(),
                wants,
            };
            let num = |v: &str| v.parse::<usize>().map_err(|_| bad(v, "not a whole number"));
            let on_off = |v: &str| match v {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err(bad(v, "give on or off")),
            };
            match k {
                "mesh" | "smesh" => {
                    let n: Vec<usize> = v.split('/').map(num).collect::<Result<_, _>>()?;
                    let [d, lo, hi] = n[..] else {
                        return Err(bad(v, "give target/low/high, e.g. 4/3/6"));
                    };
                    if !(1 <= lo && lo <= d && d <= hi) {
                        return Err(bad(v, "need 1 <= low <= target <= high"));
                    }
                    // `mesh` sets both topics (as before `smesh` existed); `smesh`,
                    // given after it, the summaries' alone.
                    if k == "mesh" {
                        p.mesh = (d, lo, hi);
                    }
                    p.summary_mesh = (d, lo, hi);
                }
                "heartbeat" => {
                    p.heartbeat_ms = v
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| (100..=10_000).contains(ms))
                        .ok_or_else(|| bad(v, "give milliseconds from 100 to 10000"))?
                }
                "lazy" => p.lazy = num(v)?,
                "factor" => {
                    p.factor = v
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=1.0).contains(f))
                        .ok_or_else(|| bad(v, "give a number from 0 to 1"))?
                }
                "history" => p.history_gossip = num(v)?.clamp(1, 5),
                "flood" => p.flood_publish = on_off(v)?,
                "idontwant" => p.idontwant = num(v)?,
                "summaries" => p.summaries = on_off(v)?,
                _ => return Err(ProfileError::UnknownSetting(k.into())),
            }
        }
        Ok(p)
    }
}

fn gossipsub(
    topic: &TopicHash,
    summaries: &TopicHash,
    profile: GossipProfile,
    metrics: &mut prometheus_client::registry::Registry,
) -> Result<gossipsub::Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let (d, lo, hi) = profile.mesh;
    let (sd, slo, shi) = profile.summary_mesh;
    // libp2p's 2, lowered for a mesh under 4 (it must be at most half of it).
    let outbound = |d: usize, lo: usize| (d / 2).min(2).min(lo);
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(MAX_EVENT_BYTES + 1024)
        .heartbeat_interval(Duration::from_millis(profile.heartbeat_ms))
        .mesh_n(d)
        .mesh_n_low(lo)
        .mesh_n_high(hi)
        .mesh_outbound_min(outbound(d, lo))
        // The hub summaries' own mesh: delivery reports, not urgent, so it may be
        // thinner than the events'.
        .mesh_n_for_topic(sd, summaries.clone())
        .mesh_n_low_for_topic(slo, summaries.clone())
        .mesh_n_high_for_topic(shi, summaries.clone())
        .mesh_outbound_min_for_topic(outbound(sd, slo), summaries.clone())
        .gossip_lazy(profile.lazy)
        .gossip_factor(profile.factor)
        .history_gossip(profile.history_gossip)
        .flood_publish(profile.flood_publish)
        .idontwant_message_size_threshold(profile.idontwant)
        .build()?;
    // Events are signed by their authors; gossipsub's own signatures would add nothing.
    let mut b = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)?
        .with_metrics(metrics, gossipsub::MetricsConfig::default());
    // Peer scoring: an invalid event costs a peer heavily, so a forger is quickly
    // graylisted. Delivery-rate penalties are off: a quiet LAN is normal, and many
    // test nodes share one IP, so the IP-colocation penalty is off too.
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 1.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(topic.clone(), topic_params);
    b.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
    Ok(b)
}

/// Time for the pnet handshake (24 bytes each way) on a new connection.
pub const PNET_DEADLINE: Duration = Duration::from_secs(3);
/// Time for the whole upgrade of a new connection (pnet, noise, yamux).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// The peer transport: TCP inside a pnet private network keyed by the community key,
/// then noise and yamux. Public so that test peers speak exactly the node's stack.
pub fn transport(
    key: &identity::Keypair,
    psk: [u8; 32],
) -> Result<
    libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    transport_noting(key, psk, PnetPassed::default())
}

/// Outbound connections (remote IP and TCP port) whose pnet exchange completed, so
/// that a dial which then times out can be told apart from a silent port: a node of
/// another community passes the exchange (any key does), then often waits in silence
/// for bytes that never make sense to it. Bounded: cleared when it grows past 256.
#[derive(Debug, Clone, Default)]
pub struct PnetPassed(Arc<std::sync::Mutex<HashSet<(std::net::IpAddr, u16)>>>);

impl PnetPassed {
    pub(super) fn note(&self, addr: &Multiaddr) {
        if let Some(k) = ip_port(addr) {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if s.len() >= 256 {
                s.clear();
            }
            s.insert(k);
        }
    }

    /// Whether the pnet exchange with `addr` completed since the last call; forgets it.
    pub(super) fn take(&self, addr: &Multiaddr) -> bool {
        ip_port(addr).is_some_and(|k| self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&k))
    }
}

fn ip_port(addr: &Multiaddr) -> Option<(std::net::IpAddr, u16)> {
    let port = addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })?;
    Some((remote_ip(addr)?, port))
}

/// [`transport`], noting in `passed` every outbound connection whose pnet exchange
/// completed.
fn transport_noting(
    key: &identity::Keypair,
    psk: [u8; 32],
    passed: PnetPassed,
) -> Result<
    libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let psk = PreSharedKey::new(psk);
    Ok(
        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
            .and_then(move |socket, endpoint| {
                let passed = passed.clone();
                async move {
                    // A peer of the community sends its pnet nonce at once; a socket held
                    // open in silence is dropped soon, freeing its pending slot.
                    let out =
                        tokio::time::timeout(PNET_DEADLINE, PnetConfig::new(psk).handshake(socket))
                            .await
                            .map_err(|_| {
                                std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "no private-network handshake in time",
                                )
                            })?
                            .map_err(std::io::Error::other)?;
                    match &endpoint {
                        libp2p::core::ConnectedPoint::Dialer { address, .. } => {
                            passed.note(address);
                            Ok::<_, std::io::Error>(Prefixed::none(out))
                        }
                        libp2p::core::ConnectedPoint::Listener { .. } => {
                            Prefixed::checked_header(out).await
                        }
                    }
                }
            })
            .upgrade(Version::V1Lazy)
            .authenticate(noise::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .timeout(HANDSHAKE_DEADLINE)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    )
}

/// What a member's dialer sends first, through the private network: multistream-select's
/// header (its length, then `/multistream/1.0.0\n`). libp2p's dialer sends it at once
/// (and `V1Lazy` its first proposal with it), whatever its version.
const MULTISTREAM_HEADER: &[u8; 20] = b"\x13/multistream/1.0.0\n";

/// The marker in the error an incoming connection fails with when its first bytes after
/// the private-network handshake are not [`MULTISTREAM_HEADER`]: proof that the other
/// end encrypts with another key (`task::garbled` looks for it).
pub(super) const ANOTHER_KEY: &str = "another community key";

/// A connection whose first bytes were read to check them, then handed back to
/// whoever reads next (multistream-select), so nothing is lost.
struct Prefixed<S> {
    head: [u8; 20],
    /// How much of `head` has been handed on (20: all, or nothing was read).
    pos: usize,
    inner: S,
}

impl<S: futures::AsyncRead + futures::AsyncWrite + Unpin> Prefixed<S> {
    /// An outgoing connection: nothing read ahead.
    fn none(inner: S) -> Self {
        Prefixed {
            head: [0; 20],
            pos: 20,
            inner,
        }
    }

    /// An incoming connection, after the pnet exchange: reads the dialer's first 20
    /// bytes and refuses the connection at once, saying why, when they are not
    /// multistream-select's header. Any key passes the pnet exchange; only the bytes
    /// after it show whether it was ours. Without this check, what a node of another
    /// community sends is read as a length by multistream-select and, often, as the
    /// length of a message still to come, so the listener waits until the dialer gives
    /// up and cannot tell that from a member that hung up (issue 29).
    async fn checked_header(mut inner: S) -> std::io::Result<Self> {
        use futures::AsyncReadExt;
        let mut head = [0u8; 20];
        inner.read_exact(&mut head).await?;
        if &head != MULTISTREAM_HEADER {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{ANOTHER_KEY}: the bytes after the private-network handshake are not a member's"),
            ));
        }
        Ok(Prefixed {
            head,
            pos: 0,
            inner,
        })
    }
}

impl<S: futures::AsyncRead + Unpin> futures::AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.pos < this.head.len() {
            let n = buf.len().min(this.head.len() - this.pos);
            buf[..n].copy_from_slice(&this.head[this.pos..this.pos + n]);
            this.pos += n;
            return std::task::Poll::Ready(Ok(n));
        }
        std::pin::Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: futures::AsyncWrite + Unpin> futures::AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

pub(super) fn build_swarm(
    keypair: identity::Keypair,
    cfg: &NetConfig,
    counters: Arc<Counters>,
    passed: PnetPassed,
    meter: &mut super::metrics::Meter,
    profile: GossipProfile,
) -> Result<Swarm<Behaviour>, NetError> {
    let topic = IdentTopic::new(cfg.topic.clone()).hash();
    let summaries = IdentTopic::new(super::delivery_topic(&cfg.topic)).hash();
    let setup = |e: &dyn std::fmt::Display| NetError::Libp2p(e.to_string());
    if profile != GossipProfile::LAN {
        tracing::info!(?profile, "gossipsub settings from {GOSSIP_PROFILE_ENV}");
    }
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(|key| transport_noting(key, cfg.psk, passed))
        .map_err(|e| setup(&e))?
        .with_bandwidth_metrics(meter.transport())
        .with_behaviour(|_| {
            Ok(Behaviour {
                blocked: allow_block_list::Behaviour::default(),
                pending_per_ip: super::pending::PendingPerIp::default(),
                limits: connection_limits::Behaviour::new(limits()),
                gossipsub: gossipsub(&topic, &summaries, profile, meter.gossipsub())?,
                sync: request_response::Behaviour::with_codec(
                    sync::codec(counters),
                    [(sync::PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(30))
                        .with_max_concurrent_streams(32),
                ),
                pex: request_response::Behaviour::with_codec(
                    super::pex::codec(meter.pex_counters()),
                    [(super::pex::PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10))
                        .with_max_concurrent_streams(8),
                ),
            })
        })
        .map_err(|e| setup(&e))?
        // libp2p's default idle timeout (10 s) drops quiet LAN links; keep them.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_profiles_parse_with_overrides_and_build() {
        assert_eq!(GossipProfile::parse("lan"), Ok(GossipProfile::LAN));
        assert_eq!(GossipProfile::parse(""), Ok(GossipProfile::LAN));
        let old = GossipProfile::parse("libp2p-default").unwrap();
        assert_eq!(old, GossipProfile::LIBP2P_DEFAULT);
        let p = GossipProfile::parse(
            "lan, mesh=3/2/4, idontwant=0, flood=on, lazy=3, factor=0.5, history=2",
        )
        .unwrap();
        assert_eq!(p.mesh, (3, 2, 4));
        assert_eq!(p.idontwant, 0);
        assert!(p.flood_publish);
        assert_eq!((p.lazy, p.factor, p.history_gossip), (3, 0.5, 2));
        // `mesh` sets both topics, `smesh` after it the summaries' alone.
        assert_eq!(p.summary_mesh, (3, 2, 4));
        let q = GossipProfile::parse("lan,mesh=5/4/8,smesh=2/1/3,heartbeat=1500").unwrap();
        assert_eq!(
            (q.mesh, q.summary_mesh, q.heartbeat_ms),
            ((5, 4, 8), (2, 1, 3), 1500)
        );
        assert_eq!(GossipProfile::LAN.summary_mesh, (3, 2, 4));
        // Every profile named here builds a gossipsub (libp2p checks the mesh bounds).
        let topic = IdentTopic::new("t").hash();
        let summaries = IdentTopic::new("s").hash();
        for p in [
            GossipProfile::LAN,
            old,
            p,
            GossipProfile::parse("lan,mesh=2/1/3").unwrap(),
            GossipProfile::parse("lan,smesh=2/1/3,heartbeat=1000").unwrap(),
            GossipProfile::parse("lan,mesh=3/2/4,smesh=6/5/12").unwrap(),
        ] {
            let mut r = prometheus_client::registry::Registry::default();
            assert!(gossipsub(&topic, &summaries, p, &mut r).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn bad_gossip_profiles_say_what_is_wrong() {
        for (s, says) in [
            ("fast", "unknown profile"),
            ("lan,mesh=4", "target/low/high"),
            ("lan,mesh=3/4/2", "low <= target <= high"),
            ("lan,mesh=a/b/c", "not a whole number"),
            ("lan,factor=2", "from 0 to 1"),
            ("lan,flood=yes", "on or off"),
            ("lan,colour=blue", "unknown setting"),
            ("lan,idontwant", "not key=value"),
            ("lan,heartbeat=5", "milliseconds from 100"),
            ("lan,smesh=3/4/2", "low <= target <= high"),
        ] {
            let e = GossipProfile::parse(s).unwrap_err().to_string();
            assert!(e.contains(says), "{s}: {e}");
        }
    }
}
