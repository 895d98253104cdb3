//! LAN discovery without multicast: an IPv4 broadcast beacon, as Syncthing's local
//! discovery. Many access points filter multicast, so mDNS never arrives; a subnet
//! broadcast usually does. The datagram carries only what the mDNS advert carries (peer
//! id, TCP port, keyed community tag); it is sent to the broadcast address of every up
//! IPv4 interface (and 255.255.255.255) at start (a short burst, for lossy Wi-Fi), when
//! an interface appears, and every [`EVERY`] (jittered), and listened for on UDP
//! [`PORT`]. A datagram whose tag is not ours is ignored; one that does not decode is
//! dropped. The address dialled is the datagram's source address with the port it
//! carries, so a two-interface host is found on each segment at the address that
//! segment can reach. Wire format: docs/protocol.md, "Broadcast beacon".

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use libp2p::Multiaddr;
pub use libp2p::PeerId;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::net::Command;

/// The UDP port beacons are sent to and listened on.
pub const PORT: u16 = 4612;
/// The first bytes of every beacon: "AMB" and the format version.
pub const MAGIC: [u8; 4] = *b"AMB1";
/// Longest peer id accepted (an Ed25519 peer id is 38 bytes).
pub const MAX_PEER_ID: usize = 64;
/// Longest beacon: magic, port, tag, peer id length and peer id.
pub const MAX_BEACON: usize = 4 + 2 + 8 + 1 + MAX_PEER_ID;
/// The period of beacons once started (each wait jittered by up to ±20 %).
pub const EVERY: Duration = Duration::from_secs(30);
/// The burst at start, as delays from the start: a lossy link loses one, not three.
pub const START_BURST: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(3),
];
/// How often the interfaces are looked at (a new one gets a beacon at once).
pub const INTERFACES_EVERY: Duration = Duration::from_secs(5);
/// Most beacons acted on per second: a flood of made-up beacons from one machine
/// turns into at most this many dials a second (and the dial list stays bounded).
pub const MAX_HEARD_PER_SEC: u32 = 20;

/// A fixed-window rate limit, as plain data (times passed in).
#[derive(Debug, Clone)]
pub struct RateLimit {
    window: Option<std::time::Instant>,
    used: u32,
    per_sec: u32,
}

impl RateLimit {
    /// At most `per_sec` a second.
    pub fn new(per_sec: u32) -> RateLimit {
        RateLimit {
            window: None,
            used: 0,
            per_sec,
        }
    }

    /// Whether one more is allowed at `now` (and counts it).
    pub fn allow(&mut self, now: std::time::Instant) -> bool {
        match self.window {
            Some(w) if now.saturating_duration_since(w) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.used = 0;
            }
        }
        if self.used < self.per_sec {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// What a beacon says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's libp2p peer id.
    pub peer: PeerId,
    /// The TCP port it listens on.
    pub port: u16,
    /// The keyed community tag ([`aidmesh_protocol::community::key_tag`], as 8 bytes).
    pub tag: [u8; 8],
}

/// Why a datagram is not a beacon.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BeaconError {
    /// Too short or too long for a beacon.
    #[error("a beacon is {min} to {MAX_BEACON} bytes, this datagram has {0}", min = 4 + 2 + 8 + 1 + 1)]
    Length(usize),
    /// Not the magic bytes of this format.
    #[error("not an aidmesh beacon (wrong magic bytes)")]
    Magic,
    /// Port 0.
    #[error("the beacon gives port 0")]
    Port,
    /// The peer id length does not match the datagram's.
    #[error("the beacon's peer id length does not match its size")]
    PeerLength,
    /// The peer id does not parse.
    #[error("the beacon's peer id is not valid")]
    PeerId,
}

impl Beacon {
    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let id = self.peer.to_bytes();
        let mut out = Vec::with_capacity(15 + id.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.tag);
        // Peer ids are at most 42 bytes (identity multihash of a public key).
        out.push(id.len() as u8);
        out.extend_from_slice(&id);
        out
    }

    /// Reads a datagram; anything else than exactly one well-formed beacon is an error.
    pub fn decode(b: &[u8]) -> Result<Beacon, BeaconError> {
        if b.len() < 16 || b.len() > MAX_BEACON {
            return Err(BeaconError::Length(b.len()));
        }
        if b[..4] != MAGIC {
            return Err(BeaconError::Magic);
        }
        let port = u16::from_be_bytes([b[4], b[5]]);
        if port == 0 {
            return Err(BeaconError::Port);
        }
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&b[6..14]);
        let n = usize::from(b[14]);
        let id = &b[15..];
        if n == 0 || id.len() != n {
            return Err(BeaconError::PeerLength);
        }
        let peer = PeerId::from_bytes(id).map_err(|_| BeaconError::PeerId)?;
        Ok(Beacon { peer, port, tag })
    }
}

/// The 8 tag bytes of a hex community tag (`key_tag`); `None` if it is not 16 hex
/// digits.
pub fn tag_bytes(hex_tag: &str) -> Option<[u8; 8]> {
    let v = hex::decode(hex_tag).ok()?;
    v.try_into().ok()
}

/// What to do with a datagram received from `from`: the address to dial, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A member of our community at this address.
    Dial(Multiaddr),
    /// Our own beacon, come back.
    Own,
    /// A node of another community (its peer id).
    OtherCommunity(PeerId),
    /// Not a beacon.
    Bad(BeaconError),
}

/// Judges a datagram `b` received from `from`, for node `me` of community `tag`.
pub fn hear(b: &[u8], from: SocketAddr, me: &PeerId, tag: &[u8; 8]) -> Heard {
    let beacon = match Beacon::decode(b) {
        Ok(x) => x,
        Err(e) => return Heard::Bad(e),
    };
    if beacon.peer == *me {
        return Heard::Own;
    }
    if beacon.tag != *tag {
        return Heard::OtherCommunity(beacon.peer);
    }
    let addr: Multiaddr = match from.ip() {
        std::net::IpAddr::V4(ip) => format!("/ip4/{ip}/tcp/{}/p2p/{}", beacon.port, beacon.peer),
        std::net::IpAddr::V6(ip) => format!("/ip6/{ip}/tcp/{}/p2p/{}", beacon.port, beacon.peer),
    }
    .parse()
    .expect("a well-formed multiaddr");
    Heard::Dial(addr)
}

/// When the next beacon is due after beacon number `sent` (counted from 1), `since`
/// the start: the start burst, then every [`EVERY`] ± 20 % by `jitter` (any u64).
pub fn next_after(sent: usize, jitter: u64) -> Duration {
    if sent < START_BURST.len() {
        return START_BURST[sent] - START_BURST[sent - 1];
    }
    let span = EVERY.as_millis() as u64 * 2 / 5; // 40 % wide, centred on EVERY
    Duration::from_millis(EVERY.as_millis() as u64 - span / 2 + jitter % (span + 1))
}

/// Where to send beacons: the broadcast address of every non-loopback IPv4 interface
/// not known to be down (computed from the netmask when the interface has none set),
/// and the limited broadcast 255.255.255.255.
pub fn targets(ifaces: &[if_addrs::Interface]) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = ifaces
        .iter()
        .filter(|i| !i.is_loopback() && i.oper_status != if_addrs::IfOperStatus::Down)
        .filter_map(|i| match &i.addr {
            if_addrs::IfAddr::V4(v4) => Some(
                v4.broadcast
                    .unwrap_or_else(|| Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask))),
            ),
            _ => None,
        })
        .filter(|b| !b.is_loopback())
        .collect();
    out.push(Ipv4Addr::BROADCAST);
    out.sort();
    out.dedup();
    out
}

/// Running beacon; stops when dropped.
pub struct BeaconTask {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BeaconTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds UDP [`PORT`] on every interface (shared with other processes, so that two
/// nodes on one machine both hear beacons) and starts sending and listening.
pub fn start(
    peer: PeerId,
    tcp_port: u16,
    tag_hex: &str,
    commands: mpsc::Sender<Command>,
) -> std::io::Result<BeaconTask> {
    let tag = tag_bytes(tag_hex).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad community tag")
    })?;
    let socket = bind()?;
    let datagram = Beacon {
        peer,
        port: tcp_port,
        tag,
    }
    .encode();
    info!(
        port = PORT,
        "beacon: broadcasting and listening on UDP {PORT}"
    );
    let task = tokio::spawn(run(socket, datagram, peer, tag, commands));
    Ok(BeaconTask { task })
}

fn bind() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)).into())?;
    UdpSocket::from_std(s.into())
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

async fn run(
    socket: UdpSocket,
    datagram: Vec<u8>,
    me: PeerId,
    tag: [u8; 8],
    commands: mpsc::Sender<Command>,
) {
    let mut sent = 0usize;
    let mut next = tokio::time::Instant::now();
    let mut look = tokio::time::interval(INTERFACES_EVERY);
    let mut seen_targets: HashSet<Ipv4Addr> = HashSet::new();
    let mut other_community: HashSet<PeerId> = HashSet::new();
    let mut found: HashSet<PeerId> = HashSet::new();
    let mut limit = RateLimit::new(MAX_HEARD_PER_SEC);
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {
                let t = current_targets();
                seen_targets.extend(t.iter().copied());
                send_all(&socket, &datagram, &t).await;
                sent += 1;
                debug!(sent, "beacon: sent");
                next = tokio::time::Instant::now() + next_after(sent, random_u64());
            }
            _ = look.tick() => {
                let t = current_targets();
                let new: Vec<Ipv4Addr> = t.iter().copied().filter(|a| !seen_targets.contains(a)).collect();
                if !new.is_empty() {
                    debug!(?new, "beacon: new interface; sending at once");
                    seen_targets.extend(new.iter().copied());
                    send_all(&socket, &datagram, &new).await;
                }
            }
            r = socket.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        debug!(error = %e, "beacon: receive failed");
                        continue;
                    }
                };
                if !limit.allow(std::time::Instant::now()) {
                    debug!(%from, "beacon: over {MAX_HEARD_PER_SEC} datagrams a second; dropped");
                    continue;
                }
                match hear(&buf[..n], from, &me, &tag) {
                    Heard::Dial(addr) => {
                        // Logged once per peer (bounded); every 30 s it is only a debug line.
                        if found.len() >= 256 {
                            found.clear();
                        }
                        let peer = crate::net::split_peer(&addr).1.unwrap_or(me);
                        if found.insert(peer) {
                            info!(%addr, "beacon: found a peer");
                        } else {
                            debug!(%addr, "beacon: found a peer");
                        }
                        if commands.send(Command::Dial(addr)).await.is_err() {
                            return;
                        }
                    }
                    Heard::Own => {}
                    Heard::OtherCommunity(p) => {
                        // Bounded: a LAN has tens of nodes; cleared if flooded.
                        if other_community.len() >= 256 {
                            other_community.clear();
                        }
                        if other_community.insert(p) {
                            warn!(peer = %p, %from, "beacon: found a node of another community (different passphrase); not connecting");
                        }
                    }
                    Heard::Bad(e) => debug!(%from, error = %e, "beacon: dropped a datagram"),
                }
            }
        }
    }
}

fn current_targets() -> Vec<Ipv4Addr> {
    match if_addrs::get_if_addrs() {
        Ok(i) => targets(&i),
        Err(e) => {
            debug!(error = %e, "beacon: cannot list interfaces");
            vec![Ipv4Addr::BROADCAST]
        }
    }
}

async fn send_all(socket: &UdpSocket, datagram: &[u8], to: &[Ipv4Addr]) {
    for ip in to {
        // 255.255.255.255 fails without a default route; the subnet broadcasts cover it.
        if let Err(e) = socket.send_to(datagram, SocketAddrV4::new(*ip, PORT)).await {
            debug!(to = %ip, error = %e, "beacon: not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon() -> Beacon {
        Beacon {
            peer: PeerId::random(),
            port: 4610,
            tag: [1, 2, 3, 4, 5, 6, 7, 8],
        }
    }

    #[test]
    fn a_beacon_round_trips_and_carries_only_id_port_and_tag() {
        let b = beacon();
        let bytes = b.encode();
        assert_eq!(bytes.len(), 15 + b.peer.to_bytes().len());
        assert!(bytes.len() <= MAX_BEACON);
        assert_eq!(Beacon::decode(&bytes), Ok(b));
    }

    #[test]
    fn every_malformed_datagram_is_refused_not_panicked_on() {
        let good = beacon().encode();
        assert_eq!(Beacon::decode(&[]), Err(BeaconError::Length(0)));
        assert_eq!(
            Beacon::decode(&[0; MAX_BEACON + 1]),
            Err(BeaconError::Length(MAX_BEACON + 1))
        );
        let mut m = good.clone();
        m[0] = b'X';
        assert_eq!(Beacon::decode(&m), Err(BeaconError::Magic));
        let mut p = good.clone();
        p[4] = 0;
        p[5] = 0;
        assert_eq!(Beacon::decode(&p), Err(BeaconError::Port));
        let mut l = good.clone();
        l[14] += 1;
        assert_eq!(Beacon::decode(&l), Err(BeaconError::PeerLength));
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(Beacon::decode(&extra), Err(BeaconError::PeerLength));
        let mut id = good.clone();
        id[15] = 0xff;
        assert_eq!(Beacon::decode(&id), Err(BeaconError::PeerId));
        // Every truncation and every single-byte change: an answer, never a panic.
        for n in 0..good.len() {
            let _ = Beacon::decode(&good[..n]);
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut x = good.clone();
                x[n] = v;
                let _ = Beacon::decode(&x);
            }
        }
    }

    #[test]
    fn only_a_beacon_of_our_community_from_another_node_is_dialled() {
        let me = PeerId::random();
        let tag = [9; 8];
        let from: SocketAddr = "10.1.2.3:4612".parse().unwrap();
        let mut b = beacon();
        b.tag = tag;
        // The source address, with the port the beacon carries.
        let want: Multiaddr = format!("/ip4/10.1.2.3/tcp/4610/p2p/{}", b.peer)
            .parse()
            .unwrap();
        assert_eq!(hear(&b.encode(), from, &me, &tag), Heard::Dial(want));
        assert_eq!(
            hear(&b.encode(), from, &me, &[8; 8]),
            Heard::OtherCommunity(b.peer)
        );
        b.peer = me;
        assert_eq!(hear(&b.encode(), from, &me, &tag), Heard::Own);
        assert_eq!(
            hear(b"hello", from, &me, &tag),
            Heard::Bad(BeaconError::Length(5))
        );
    }

    #[test]
    fn beacons_burst_at_start_then_every_thirty_seconds_jittered() {
        assert_eq!(next_after(1, 0), Duration::from_secs(1));
        assert_eq!(next_after(2, 0), Duration::from_secs(2));
        let waits: Vec<Duration> = (0..1000u64)
            .map(|j| next_after(3, j.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let (lo, hi) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*lo >= Duration::from_secs(24) && *hi <= Duration::from_secs(36));
        assert!(*hi - *lo > Duration::from_secs(10), "the wait is jittered");
    }

    #[test]
    fn a_flood_of_beacons_is_cut_to_the_rate_limit_each_second() {
        let t0 = std::time::Instant::now();
        let mut l = RateLimit::new(MAX_HEARD_PER_SEC);
        let allowed = (0..1000).filter(|_| l.allow(t0)).count();
        assert_eq!(allowed, MAX_HEARD_PER_SEC as usize);
        assert!(!l.allow(t0 + Duration::from_millis(999)));
        assert!(
            l.allow(t0 + Duration::from_secs(1)),
            "a new second, a new budget"
        );
    }

    #[test]
    fn the_tag_is_the_eight_bytes_of_the_hex_key_tag() {
        let tag = aidmesh_protocol::community::key_tag(&[7; 32]);
        assert_eq!(hex::encode(tag_bytes(&tag).unwrap()), tag);
        assert_eq!(tag_bytes("zz"), None);
        assert_eq!(tag_bytes("0102"), None);
    }

    #[test]
    fn targets_are_each_interface_broadcast_and_the_limited_broadcast() {
        let iface = |name: &str, ip: &str, mask: &str, brd: Option<&str>| if_addrs::Interface {
            name: name.into(),
            addr: if_addrs::IfAddr::V4(if_addrs::Ifv4Addr {
                ip: ip.parse().unwrap(),
                netmask: mask.parse().unwrap(),
                prefixlen: 24,
                broadcast: brd.map(|b| b.parse().unwrap()),
            }),
            index: None,
            oper_status: if_addrs::IfOperStatus::Up,
            is_p2p: false,
        };
        let t = targets(&[
            iface("lo", "127.0.0.1", "255.0.0.0", None),
            iface("eth0", "10.0.1.5", "255.255.255.0", Some("10.0.1.255")),
            iface("eth1", "10.0.2.5", "255.255.254.0", None),
        ]);
        let want: Vec<Ipv4Addr> = ["10.0.1.255", "10.0.3.255", "255.255.255.255"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(t, want);
    }
}
