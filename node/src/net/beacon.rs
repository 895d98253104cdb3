//! LAN discovery without multicast: an IPv4 broadcast beacon, as Syncthing's local
//! discovery. Many access points filter multicast, so mDNS never arrives; a subnet
//! broadcast usually does. The datagram (format `AMB2`, docs/protocol.md "Broadcast
//! beacon") says who sends it (peer id), where to reach it (its IPv4 source address
//! and TCP port) and how fresh it is (a boot nonce, a sequence number and the sender's
//! clock), all under a MAC keyed with a key derived from the community key: someone
//! on the Wi-Fi without the key can neither make a beacon nor change one, and one
//! captured from the wire is useless elsewhere (its address is bound) and dropped when
//! heard again (its sequence number is not new).
//!
//! It is sent to the broadcast address of every up IPv4 interface (computed from the
//! netmask when none is set, as for an address added without `brd`: [`broadcast_of`])
//! and 255.255.255.255, at start (a
//! short burst, for lossy Wi-Fi), when an interface appears, and every [`EVERY`]
//! (jittered); listened for on UDP [`PORT`]. What is heard is judged in this order,
//! and nothing is spent on a datagram before it passes: length and magic, then the
//! MAC (a datagram that fails it is dropped; another community's beacons fail it
//! too), then the fields, then its source address against the one it carries, then
//! freshness ([`Freshness`]); only then does it count against [`MAX_HEARD_PER_SEC`]
//! and lead to a dial, of that address and port at most once per [`DIAL_EVERY`]
//! ([`DialMemo`]), and never of a peer already connected (the network task checks).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
pub use libp2p::PeerId;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::Command;

/// The UDP port beacons are sent to and listened on.
pub const PORT: u16 = 4612;
/// The first bytes of every beacon: "AMB" and the format version.
pub const MAGIC: [u8; 4] = *b"AMB2";
/// Longest peer id accepted (an Ed25519 peer id is 38 bytes).
pub const MAX_PEER_ID: usize = 64;
/// Bytes of the MAC at the end of a beacon.
pub const MAC_LEN: usize = 16;
/// Bytes before the peer id: magic, port, address, boot, sequence, time, peer id length.
const HEAD: usize = 4 + 2 + 4 + 8 + 8 + 8 + 1;
/// Shortest beacon: a one-byte peer id.
pub const MIN_BEACON: usize = HEAD + 1 + MAC_LEN;
/// Longest beacon.
pub const MAX_BEACON: usize = HEAD + MAX_PEER_ID + MAC_LEN;
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
/// Most beacons acted on per second. Counted only for beacons that passed the MAC and
/// freshness: a flood of junk or replayed datagrams uses none of it.
pub const MAX_HEARD_PER_SEC: u32 = 20;
/// One address and port is dialled because of a beacon at most this often.
pub const DIAL_EVERY: Duration = Duration::from_secs(60);
/// A beacon from a new boot of a peer that carries an earlier time than the last one
/// taken from it (a replay of an older boot, or a node whose clock went back, such as
/// a Raspberry Pi that booted without a real-time clock) is taken once the last boot
/// has been silent this long: more than two periods, so the old boot has stopped.
pub const NEW_BOOT_GRACE: Duration = Duration::from_secs(75);
/// Most peers whose freshness is remembered (only authenticated beacons add one).
pub const MAX_REMEMBERED: usize = 256;

/// The key beacons are authenticated with: derived from the community key, so that
/// it is never the key of the private network itself.
#[derive(Clone)]
pub struct BeaconKey([u8; 32]);

impl BeaconKey {
    /// The beacon key of a community key (the private network's pre-shared key).
    pub fn of(community_key: &[u8; 32]) -> BeaconKey {
        BeaconKey(blake3::derive_key(
            "aidmesh beacon v2 2026-12 mac key",
            community_key,
        ))
    }

    fn mac(&self, bytes: &[u8]) -> [u8; MAC_LEN] {
        let h = blake3::keyed_hash(&self.0, bytes);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&h.as_bytes()[..MAC_LEN]);
        out
    }
}

impl std::fmt::Debug for BeaconKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeaconKey(..)")
    }
}

/// A fixed-window rate limit, as plain data (times passed in).
#[derive(Debug, Clone)]
pub struct RateLimit {
    window: Option<Instant>,
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
    pub fn allow(&mut self, now: Instant) -> bool {
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
    /// The IPv4 address it sends this datagram from (the receiver checks the source).
    pub addr: Ipv4Addr,
    /// Random at each start of the sender.
    pub boot: u64,
    /// Counts the sender's datagrams since `boot` (each one a new number).
    pub seq: u64,
    /// The sender's wall clock, ms since 1970 (it may be wrong; only compared with
    /// what the same sender said before).
    pub time_ms: u64,
}

/// Why a datagram is not a beacon to act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BeaconError {
    /// Too short or too long for a beacon.
    #[error("a beacon is {MIN_BEACON} to {MAX_BEACON} bytes, this datagram has {0}")]
    Length(usize),
    /// Not the magic bytes of this format.
    #[error("not an aidmesh beacon of this version (wrong magic bytes; an older aidmesh sends AMB1: upgrade every hub)")]
    Magic,
    /// The MAC does not match: forged, changed, or another community's.
    #[error(
        "the beacon is not authenticated by this community's key (another community, or forged)"
    )]
    Mac,
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
    /// The datagram, with its MAC under `key`.
    pub fn encode(&self, key: &BeaconKey) -> Vec<u8> {
        let id = self.peer.to_bytes();
        let mut out = Vec::with_capacity(HEAD + id.len() + MAC_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.addr.octets());
        out.extend_from_slice(&self.boot.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        // Peer ids are at most 42 bytes (identity multihash of a public key).
        out.push(id.len() as u8);
        out.extend_from_slice(&id);
        let mac = key.mac(&out);
        out.extend_from_slice(&mac);
        out
    }

    /// Reads a datagram: exactly one well-formed beacon whose MAC `key` confirms, or an
    /// error. The MAC is checked before any field is read.
    pub fn decode(b: &[u8], key: &BeaconKey) -> Result<Beacon, BeaconError> {
        if b.len() < MIN_BEACON || b.len() > MAX_BEACON {
            return Err(BeaconError::Length(b.len()));
        }
        if b[..4] != MAGIC {
            return Err(BeaconError::Magic);
        }
        let (body, mac) = b.split_at(b.len() - MAC_LEN);
        if !constant_time_eq(&key.mac(body), mac) {
            return Err(BeaconError::Mac);
        }
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&body[i..i + 8]);
            u64::from_be_bytes(x)
        };
        let port = u16::from_be_bytes([body[4], body[5]]);
        if port == 0 {
            return Err(BeaconError::Port);
        }
        let addr = Ipv4Addr::new(body[6], body[7], body[8], body[9]);
        let (boot, seq, time_ms) = (u64_at(10), u64_at(18), u64_at(26));
        let n = usize::from(body[34]);
        let id = &body[HEAD..];
        if n == 0 || id.len() != n {
            return Err(BeaconError::PeerLength);
        }
        let peer = PeerId::from_bytes(id).map_err(|_| BeaconError::PeerId)?;
        Ok(Beacon {
            peer,
            port,
            addr,
            boot,
            seq,
            time_ms,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The last beacon taken from one peer.
#[derive(Debug, Clone, Copy)]
struct Last {
    boot: u64,
    seq: u64,
    time_ms: u64,
    at: Instant,
}

/// Which beacons are new, as plain data: per peer, the boot, sequence number and time
/// of the last beacon taken (at most [`MAX_REMEMBERED`] peers). No clock is trusted:
/// within a boot the sequence number must grow (a replay never passes); a new boot
/// must carry a later time than the last one taken from that peer, or come after that
/// boot has been silent for [`NEW_BOOT_GRACE`] (so a node whose clock went back, e.g.
/// to 1970, is taken within that grace, while a replay of an older boot is not taken
/// while the peer is alive). A peer never heard from is taken at once.
#[derive(Debug, Default)]
pub struct Freshness {
    last: HashMap<PeerId, Last>,
}

impl Freshness {
    /// Whether `b`, heard at `now`, is new; if so it becomes the last one taken.
    pub fn take(&mut self, b: &Beacon, now: Instant) -> bool {
        let fresh = match self.last.get(&b.peer) {
            None => true,
            Some(l) if l.boot == b.boot => b.seq > l.seq,
            Some(l) => {
                b.time_ms > l.time_ms || now.saturating_duration_since(l.at) >= NEW_BOOT_GRACE
            }
        };
        if !fresh {
            return false;
        }
        if !self.last.contains_key(&b.peer) && self.last.len() >= MAX_REMEMBERED {
            if let Some(oldest) = self.last.iter().min_by_key(|(_, l)| l.at).map(|(p, _)| *p) {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(
            b.peer,
            Last {
                boot: b.boot,
                seq: b.seq,
                time_ms: b.time_ms,
                at: now,
            },
        );
        true
    }
}

/// When each address and port was last dialled because of a beacon, as plain data:
/// each at most once per [`DIAL_EVERY`]; bounded (entries older than that are
/// forgotten first, then the oldest).
#[derive(Debug, Default)]
pub struct DialMemo {
    at: HashMap<SocketAddr, Instant>,
}

impl DialMemo {
    /// Whether `addr` may be dialled at `now` (and, if so, notes it).
    pub fn allow(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if let Some(t) = self.at.get(&addr) {
            if now.saturating_duration_since(*t) < DIAL_EVERY {
                return false;
            }
        }
        if self.at.len() >= MAX_REMEMBERED {
            self.at
                .retain(|_, t| now.saturating_duration_since(*t) < DIAL_EVERY);
            if self.at.len() >= MAX_REMEMBERED {
                if let Some(oldest) = self.at.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a) {
                    self.at.remove(&oldest);
                }
            }
        }
        self.at.insert(addr, now);
        true
    }
}

/// What to do with a datagram received from `from`: the address to dial, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A member of our community at this address (as a multiaddr with its peer id,
    /// and as the IP address and port it names).
    Dial(Multiaddr, SocketAddr),
    /// Our own beacon, come back.
    Own,
    /// An authenticated beacon sent from another address than the one it carries: a
    /// capture re-sent from elsewhere.
    Moved {
        /// The address the beacon carries.
        claimed: Ipv4Addr,
    },
    /// An authenticated beacon already heard, or older than one heard.
    Stale,
    /// Not a beacon of our community.
    Bad(BeaconError),
}

/// Judges a datagram `b` received from `from` at `now`, for node `me` holding `key`;
/// `fresh` remembers what was taken.
pub fn hear(
    b: &[u8],
    from: SocketAddr,
    me: &PeerId,
    key: &BeaconKey,
    fresh: &mut Freshness,
    now: Instant,
) -> Heard {
    let beacon = match Beacon::decode(b, key) {
        Ok(x) => x,
        Err(e) => return Heard::Bad(e),
    };
    if beacon.peer == *me {
        return Heard::Own;
    }
    if from.ip().to_canonical() != IpAddr::V4(beacon.addr) {
        return Heard::Moved {
            claimed: beacon.addr,
        };
    }
    if !fresh.take(&beacon, now) {
        return Heard::Stale;
    }
    let addr: Multiaddr = format!(
        "/ip4/{}/tcp/{}/p2p/{}",
        beacon.addr, beacon.port, beacon.peer
    )
    .parse()
    .expect("a well-formed multiaddr");
    Heard::Dial(addr, SocketAddr::from((beacon.addr, beacon.port)))
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

/// The broadcast address of one IPv4 address: the one the interface has set if it is
/// one (in the address's subnet, not the address itself), else `ip | !netmask`. An
/// address added without `brd` (`ip addr add 10.0.0.5/24 dev wlan0`) has none set,
/// and is reported with the broadcast 0.0.0.0 or with its own address, depending on
/// the C library: sending there reaches no one else.
pub fn broadcast_of(v4: &if_addrs::Ifv4Addr) -> Ipv4Addr {
    let (ip, mask) = (u32::from(v4.ip), u32::from(v4.netmask));
    match v4.broadcast.map(u32::from) {
        Some(b) if b != 0 && b != ip && b & mask == ip & mask => Ipv4Addr::from(b),
        _ => Ipv4Addr::from(ip | !mask),
    }
}

/// Where to send beacons: the broadcast address of every non-loopback IPv4 interface
/// not known to be down ([`broadcast_of`]), and the limited broadcast 255.255.255.255.
/// Never 0.0.0.0 nor a loopback address.
pub fn targets(ifaces: &[if_addrs::Interface]) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = ifaces
        .iter()
        .filter(|i| !i.is_loopback() && i.oper_status != if_addrs::IfOperStatus::Down)
        .filter_map(|i| match &i.addr {
            if_addrs::IfAddr::V4(v4) => Some(broadcast_of(v4)),
            _ => None,
        })
        .filter(|b| !b.is_loopback() && !b.is_unspecified())
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
/// nodes on one machine both hear beacons) and starts sending and listening, with the
/// beacon key of `community_key`.
pub fn start(
    peer: PeerId,
    tcp_port: u16,
    community_key: &[u8; 32],
    commands: mpsc::Sender<Command>,
) -> std::io::Result<BeaconTask> {
    let socket = bind()?;
    let me = Sender {
        peer,
        port: tcp_port,
        key: BeaconKey::of(community_key),
        boot: random_u64(),
        seq: 0,
    };
    info!(
        port = PORT,
        "beacon: broadcasting and listening on UDP {PORT}"
    );
    let task = tokio::spawn(run(socket, me, commands));
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

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The address this machine sends from to `to` (the kernel's choice, asked by
/// connecting a UDP socket, which sends nothing); `None` where it cannot send there.
fn source_for(to: Ipv4Addr) -> Option<Ipv4Addr> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).ok()?;
    s.set_broadcast(true).ok()?;
    s.connect(&SocketAddr::V4(SocketAddrV4::new(to, PORT)).into())
        .ok()?;
    match s.local_addr().ok()?.as_socket()? {
        SocketAddr::V4(a) if !a.ip().is_unspecified() => Some(*a.ip()),
        _ => None,
    }
}

/// This node as a sender of beacons.
struct Sender {
    peer: PeerId,
    port: u16,
    key: BeaconKey,
    boot: u64,
    seq: u64,
}

impl Sender {
    /// Sends one beacon, with its own sequence number, to each of `to` that this
    /// machine can send to.
    async fn send_all(&mut self, socket: &UdpSocket, to: &[Ipv4Addr]) {
        for ip in to {
            // 255.255.255.255 has no route without a default route; the subnet
            // broadcasts cover it.
            let Some(addr) = source_for(*ip) else {
                debug!(to = %ip, "beacon: no route; not sent");
                continue;
            };
            self.seq += 1;
            let datagram = Beacon {
                peer: self.peer,
                port: self.port,
                addr,
                boot: self.boot,
                seq: self.seq,
                time_ms: wall_ms(),
            }
            .encode(&self.key);
            if let Err(e) = socket
                .send_to(&datagram, SocketAddrV4::new(*ip, PORT))
                .await
            {
                debug!(to = %ip, error = %e, "beacon: not sent");
            }
        }
    }
}

async fn run(socket: UdpSocket, mut me: Sender, commands: mpsc::Sender<Command>) {
    let mut sent = 0usize;
    let mut next = tokio::time::Instant::now();
    let mut look = tokio::time::interval(INTERFACES_EVERY);
    let mut seen_targets: HashSet<Ipv4Addr> = HashSet::new();
    let mut found: HashSet<PeerId> = HashSet::new();
    let mut fresh = Freshness::default();
    let mut memo = DialMemo::default();
    let mut limit = RateLimit::new(MAX_HEARD_PER_SEC);
    // Datagrams that failed the MAC: counted, and said at most once a minute (a flood
    // must not flood the log).
    let mut foreign = 0u64;
    let mut foreign_said: Option<Instant> = None;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {
                let t = current_targets();
                seen_targets.extend(t.iter().copied());
                me.send_all(&socket, &t).await;
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
                    me.send_all(&socket, &new).await;
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
                let now = Instant::now();
                match hear(&buf[..n], from, &me.peer, &me.key, &mut fresh, now) {
                    Heard::Dial(addr, at) => {
                        if !memo.allow(at, now) {
                            debug!(%addr, "beacon: dialled less than a minute ago; not again yet");
                            continue;
                        }
                        if !limit.allow(now) {
                            debug!(%from, "beacon: over {MAX_HEARD_PER_SEC} beacons a second; dropped");
                            continue;
                        }
                        // Logged once per peer (bounded); later finds are debug lines.
                        if found.len() >= MAX_REMEMBERED {
                            found.clear();
                        }
                        let peer = crate::net::split_peer(&addr).1.unwrap_or(me.peer);
                        if found.insert(peer) {
                            info!(%addr, "beacon: found a peer");
                        } else {
                            debug!(%addr, "beacon: found a peer");
                        }
                        if commands.send(Command::DialOnce(addr)).await.is_err() {
                            return;
                        }
                    }
                    Heard::Own => {}
                    Heard::Moved { claimed } => {
                        debug!(%from, %claimed, "beacon: sent from another address than it carries (re-sent from elsewhere); dropped");
                    }
                    Heard::Stale => debug!(%from, "beacon: heard before (a replay, or an older boot); dropped"),
                    Heard::Bad(BeaconError::Mac) => {
                        foreign += 1;
                        if foreign_said.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(60)) {
                            foreign_said = Some(now);
                            warn!(%from, datagrams = foreign, "beacon: heard beacons not made with this community's key (a hub of another community, with another passphrase, or forged); not connecting");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BeaconKey {
        BeaconKey::of(&[7; 32])
    }

    fn beacon() -> Beacon {
        Beacon {
            peer: PeerId::random(),
            port: 4610,
            addr: Ipv4Addr::new(10, 1, 2, 3),
            boot: 0x0102_0304_0506_0708,
            seq: 1,
            time_ms: 1_765_000_000_000,
        }
    }

    fn from() -> SocketAddr {
        "10.1.2.3:4612".parse().unwrap()
    }

    #[test]
    fn a_beacon_round_trips_under_its_key_and_carries_no_community_tag() {
        let b = beacon();
        let bytes = b.encode(&key());
        assert_eq!(bytes.len(), HEAD + b.peer.to_bytes().len() + MAC_LEN);
        assert!((MIN_BEACON..=MAX_BEACON).contains(&bytes.len()));
        assert_eq!(Beacon::decode(&bytes, &key()), Ok(b.clone()));
        // The old format's tag (key_tag of the community key) is nowhere in it.
        let tag = tag_of(&[7; 32]);
        assert!(!bytes.windows(8).any(|w| w == tag));
        // Another community's key does not confirm it.
        assert_eq!(
            Beacon::decode(&bytes, &BeaconKey::of(&[8; 32])),
            Err(BeaconError::Mac)
        );
    }

    fn tag_of(k: &[u8; 32]) -> Vec<u8> {
        hex::decode(aidmesh_protocol::community::key_tag(k)).unwrap()
    }

    #[test]
    fn the_beacon_is_the_test_vector_of_protocol_md() {
        // docs/protocol.md 9.1, computed from the spec with Python's blake3.
        let community: [u8; 32] = std::array::from_fn(|i| i as u8);
        let b = Beacon {
            peer: "12D3KooWFe1tHkzdbVqvZwZpWNFigXWvPC4E6MaefTQdqhhSwZ3N"
                .parse()
                .unwrap(),
            port: 4610,
            addr: Ipv4Addr::new(192, 168, 1, 20),
            boot: 0x0123_4567_89ab_cdef,
            seq: 1,
            time_ms: 1_790_000_000_000,
        };
        let key = BeaconKey::of(&community);
        assert_eq!(
            hex::encode(key.0),
            "f4353f69c1a2e371667ce98e7f0afa4844ce18d9afe5a36b358c08c488923a3b"
        );
        let want = "414d42321202c0a801140123456789abcdef0000000000000001000001a0c4506c00\
                    26002408011220567f60ecc56be878a7723fd0d7a8e4ac3562b894290c202100b27e\
                    193891450986e64eedf91aacf294795f1952d43428";
        assert_eq!(hex::encode(b.encode(&key)), want);
        assert_eq!(Beacon::decode(&hex::decode(want).unwrap(), &key), Ok(b));
    }

    #[test]
    fn any_changed_byte_fails_the_mac_before_any_field_is_read() {
        let good = beacon().encode(&key());
        for i in 4..good.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut x = good.clone();
                x[i] ^= flip;
                assert_eq!(
                    Beacon::decode(&x, &key()),
                    Err(BeaconError::Mac),
                    "byte {i} ^ {flip:#x}"
                );
            }
        }
        // A forged port 0 or bad peer id is a MAC failure, not a field error...
        let mut p = good.clone();
        p[4] = 0;
        p[5] = 0;
        assert_eq!(Beacon::decode(&p, &key()), Err(BeaconError::Mac));
        // ...while the same fields signed with the key are refused by name.
        let mut zero = beacon();
        zero.port = 0;
        assert_eq!(
            Beacon::decode(&zero.encode(&key()), &key()),
            Err(BeaconError::Port)
        );
    }

    #[test]
    fn every_malformed_datagram_is_refused_not_panicked_on() {
        let k = key();
        let good = beacon().encode(&k);
        assert_eq!(Beacon::decode(&[], &k), Err(BeaconError::Length(0)));
        assert_eq!(
            Beacon::decode(&[0; MAX_BEACON + 1], &k),
            Err(BeaconError::Length(MAX_BEACON + 1))
        );
        let mut m = good.clone();
        m[0] = b'X';
        assert_eq!(Beacon::decode(&m, &k), Err(BeaconError::Magic));
        let mut old = good.clone();
        old[3] = b'1';
        assert_eq!(Beacon::decode(&old, &k), Err(BeaconError::Magic));
        // A peer id length that does not match, re-signed so that the MAC passes.
        let resign = |mut body: Vec<u8>| {
            let mac = k.mac(&body);
            body.extend_from_slice(&mac);
            body
        };
        let body = good[..good.len() - MAC_LEN].to_vec();
        let mut l = body.clone();
        l[34] += 1;
        assert_eq!(Beacon::decode(&resign(l), &k), Err(BeaconError::PeerLength));
        let mut extra = body.clone();
        extra.push(0);
        assert_eq!(
            Beacon::decode(&resign(extra), &k),
            Err(BeaconError::PeerLength)
        );
        let mut id = body.clone();
        id[HEAD] = 0xff;
        assert_eq!(Beacon::decode(&resign(id), &k), Err(BeaconError::PeerId));
        // Every truncation and every single-byte change, signed or not: an answer.
        for n in 0..good.len() {
            let _ = Beacon::decode(&good[..n], &k);
            let _ = Beacon::decode(&resign(body[..n.min(body.len())].to_vec()), &k);
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut x = body.clone();
                if n < x.len() {
                    x[n] = v;
                }
                let _ = Beacon::decode(&resign(x), &k);
            }
        }
    }

    #[test]
    fn only_a_fresh_beacon_of_our_community_from_its_own_address_is_dialled() {
        let (me, k, t0) = (PeerId::random(), key(), Instant::now());
        let mut fresh = Freshness::default();
        let b = beacon();
        let want: Multiaddr = format!("/ip4/10.1.2.3/tcp/4610/p2p/{}", b.peer)
            .parse()
            .unwrap();
        let at: SocketAddr = "10.1.2.3:4610".parse().unwrap();
        // Re-sent from another host: dropped, and it does not use up the real one.
        let elsewhere: SocketAddr = "10.1.2.99:4612".parse().unwrap();
        assert_eq!(
            hear(&b.encode(&k), elsewhere, &me, &k, &mut fresh, t0),
            Heard::Moved { claimed: b.addr }
        );
        assert_eq!(
            hear(&b.encode(&k), from(), &me, &k, &mut fresh, t0),
            Heard::Dial(want, at)
        );
        // The same datagram again (a replay from its own address): stale.
        assert_eq!(
            hear(&b.encode(&k), from(), &me, &k, &mut fresh, t0),
            Heard::Stale
        );
        assert_eq!(
            hear(
                &b.encode(&BeaconKey::of(&[8; 32])),
                from(),
                &me,
                &k,
                &mut fresh,
                t0
            ),
            Heard::Bad(BeaconError::Mac)
        );
        let mut own = beacon();
        own.peer = me;
        assert_eq!(
            hear(&own.encode(&k), from(), &me, &k, &mut fresh, t0),
            Heard::Own
        );
        assert_eq!(
            hear(b"hello", from(), &me, &k, &mut fresh, t0),
            Heard::Bad(BeaconError::Length(5))
        );
    }

    #[test]
    fn replays_are_dropped_and_a_restarted_node_is_taken_whatever_its_clock() {
        let t0 = Instant::now();
        let mut f = Freshness::default();
        let b = beacon();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let with = |boot: u64, seq: u64, time_ms: u64| Beacon {
            boot,
            seq,
            time_ms,
            ..b.clone()
        };
        let day = 86_400_000;
        assert!(f.take(&with(1, 1, 100 * day), at(0)), "a new peer");
        assert!(!f.take(&with(1, 1, 100 * day), at(1)), "the same again");
        assert!(f.take(&with(1, 5, 100 * day), at(2)), "a later one");
        assert!(!f.take(&with(1, 3, 100 * day + 9), at(3)), "an earlier one");
        // The sequence number decides within a boot, not the clock.
        assert!(f.take(&with(1, 6, 0), at(4)));
        // A restart with a clock that moved on: taken at once.
        assert!(f.take(&with(2, 1, 100 * day + 60_000), at(5)));
        // A replay of the older boot, later in time: never while boot 2 speaks.
        assert!(!f.take(&with(1, 7, 100 * day), at(6)));
        assert!(f.take(&with(2, 2, 100 * day + 90_000), at(30)));
        assert!(!f.take(
            &with(1, 8, 100 * day),
            at(30 + NEW_BOOT_GRACE.as_secs() - 1)
        ));
        // A Raspberry Pi that restarted without a real-time clock says 1970: taken
        // once its old boot has been silent for the grace (it has stopped), not before.
        let pi = with(3, 1, 5_000);
        assert!(!f.take(&pi, at(40)));
        assert!(f.take(&with(3, 4, 35_000), at(30 + NEW_BOOT_GRACE.as_secs())));
        assert!(f.take(&with(3, 5, 65_000), at(30 + NEW_BOOT_GRACE.as_secs() + 30)));
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let t0 = Instant::now();
        let mut f = Freshness::default();
        let mut m = DialMemo::default();
        for i in 0..(3 * MAX_REMEMBERED as u64) {
            let mut b = beacon();
            b.peer = PeerId::random();
            let now = t0 + Duration::from_millis(i);
            assert!(f.take(&b, now));
            let a = SocketAddr::from(([10, 9, (i / 250) as u8, (i % 250) as u8], 4610));
            assert!(m.allow(a, now));
        }
        assert!(f.last.len() <= MAX_REMEMBERED);
        assert!(m.at.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn an_address_is_dialled_because_of_a_beacon_at_most_once_a_minute() {
        let t0 = Instant::now();
        let mut m = DialMemo::default();
        let a: SocketAddr = "10.1.2.3:4610".parse().unwrap();
        let other_port: SocketAddr = "10.1.2.3:4611".parse().unwrap();
        assert!(m.allow(a, t0));
        assert!(!m.allow(a, t0 + DIAL_EVERY - Duration::from_millis(1)));
        assert!(m.allow(other_port, t0), "per address and port");
        assert!(m.allow(a, t0 + DIAL_EVERY));
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
        let t0 = Instant::now();
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
    fn the_beacon_key_is_derived_not_the_community_key_itself() {
        let k = BeaconKey::of(&[7; 32]);
        assert_ne!(k.0, [7; 32]);
        assert_ne!(k.0, BeaconKey::of(&[8; 32]).0);
        assert_eq!(format!("{k:?}"), "BeaconKey(..)", "never printed");
    }

    fn iface(name: &str, ip: &str, mask: &str, brd: Option<&str>) -> if_addrs::Interface {
        if_addrs::Interface {
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
        }
    }

    #[test]
    fn targets_are_each_interface_broadcast_and_the_limited_broadcast() {
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

    #[test]
    fn an_address_added_without_brd_gets_its_broadcast_computed_never_0_0_0_0() {
        // `ip addr add 10.0.0.5/24 dev wlan0` (no `brd`) reports broadcast 0.0.0.0, or
        // the address itself, or nothing, depending on the C library.
        let want: Vec<Ipv4Addr> = ["10.0.0.255", "255.255.255.255"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for reported in [Some("0.0.0.0"), Some("10.0.0.5"), None, Some("10.9.9.255")] {
            let t = targets(&[iface("wlan0", "10.0.0.5", "255.255.255.0", reported)]);
            assert_eq!(t, want, "broadcast reported as {reported:?}");
        }
        // With `brd +` the set one is used as it is.
        let t = targets(&[iface(
            "wlan0",
            "10.0.0.5",
            "255.255.255.0",
            Some("10.0.0.255"),
        )]);
        assert_eq!(t, want);
    }
}
