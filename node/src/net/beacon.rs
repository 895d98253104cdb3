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
    // Addresses whose beacons failed the MAC, told to the network task for `status`
    // (issue 29) at most once a minute each, and at most [`MAX_FOREIGN_TOLD`] of them
    // a minute in all: a flood of junk costs a map look-up.
    let mut told = ForeignTold::default();
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
                        if told.allow(from.ip(), now) {
                            let ip = from.ip().to_string();
                            let cmd = Command::OtherCommunity {
                                peer: format!("beacon {ip}"),
                                ip,
                                differs: super::nearby::Differs::Unknown,
                            };
                            if commands.try_send(cmd).is_err() {
                                debug!(%from, "beacon: the network task is busy; a foreign beacon not noted");
                            }
                        }
                    }
                    Heard::Bad(e) => debug!(%from, error = %e, "beacon: dropped a datagram"),
                }
            }
        }
    }
}

/// Most addresses of foreign beacons told to the network task per minute.
pub const MAX_FOREIGN_TOLD: usize = 32;

/// Which addresses' foreign beacons were told when: each at most once a minute, at
/// most [`MAX_FOREIGN_TOLD`] in a minute (the map is cleared each minute).
#[derive(Debug, Default)]
pub struct ForeignTold {
    window: Option<Instant>,
    told: HashSet<IpAddr>,
}

impl ForeignTold {
    /// Whether a foreign beacon from `ip` heard at `now` is to be told.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let minute = Duration::from_secs(60);
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= minute)
        {
            self.window = Some(now);
            self.told.clear();
        }
        if self.told.contains(&ip) || self.told.len() >= MAX_FOREIGN_TOLD {
            return false;
        }
        self.told.insert(ip)
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
#[path = "beacon_tests.rs"]
mod tests;
