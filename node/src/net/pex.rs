//! Peer exchange over the authenticated connection (`/aidmesh/pex/1`, libp2p
//! request-response): a node asks each peer it connects to for the dialable addresses
//! of the other members that peer is connected to, so one `--peer` or one working
//! discovery path is enough for the whole group. Only connected peers are given, and a
//! connection exists only after the pnet exchange with the community key and noise:
//! every address handed out is of a member that passed the community check.
//!
//! A peer that dialled us is reached at its IP with the ports it listens on, which it
//! tells us in its request (its outbound port is ephemeral). The wire format is in
//! docs/protocol.md, "Peer exchange"; the state here is plain data (times are passed
//! in) so it is tested without sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use thiserror::Error;

use super::framed::{self, Counters, Framing, Prefix};
use super::{dialable, remote_ip, split_peer};

/// The request-response protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/aidmesh/pex/1");
/// Most addresses in one answer.
pub const MAX_ADDRS: usize = 32;
/// Most listen ports in one request.
pub const MAX_PORTS: usize = 4;
/// Longest address accepted in an answer.
pub const MAX_ADDR_BYTES: usize = 128;
/// Longest message: an answer full of the longest addresses.
pub const MAX_MESSAGE: usize = 2 + MAX_ADDRS * (1 + MAX_ADDR_BYTES);
/// When a peer is asked after it connects: at once, then after this (the group is
/// often still forming), then every [`ASK_EVERY`].
pub const ASK_AGAIN: Duration = Duration::from_secs(5);
/// How often a connected peer is asked again.
pub const ASK_EVERY: Duration = Duration::from_secs(30);

/// "Who else is there?", with the TCP ports the asker listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PexRequest {
    /// The asker's listen ports (at most [`MAX_PORTS`]).
    pub ports: Vec<u16>,
}

/// The members the answering peer is connected to: each a dialable TCP address ending
/// in `/p2p/<peer id>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PexResponse {
    /// At most [`MAX_ADDRS`].
    pub addrs: Vec<Multiaddr>,
}

/// Why bytes are not a peer-exchange message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PexError {
    /// Empty, or not the kind expected.
    #[error("not a peer-exchange {0}")]
    Kind(&'static str),
    /// More entries than allowed.
    #[error("{0} entries, more than the {1} allowed")]
    TooMany(usize, usize),
    /// The message ends early or has bytes left over.
    #[error("the message's length does not match its contents")]
    Length,
    /// An address that does not parse, is too long, or is not a dialable TCP address of
    /// a peer.
    #[error("an address in the answer is not a dialable peer address")]
    Addr,
}

impl PexRequest {
    /// `Q`, a count, and that many ports (u16 big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let ports = &self.ports[..self.ports.len().min(MAX_PORTS)];
        let mut out = vec![b'Q', ports.len() as u8];
        for p in ports {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Reads a request.
    pub fn decode(b: &[u8]) -> Result<PexRequest, PexError> {
        let [b'Q', n, rest @ ..] = b else {
            return Err(PexError::Kind("request"));
        };
        let n = usize::from(*n);
        if n > MAX_PORTS {
            return Err(PexError::TooMany(n, MAX_PORTS));
        }
        if rest.len() != 2 * n {
            return Err(PexError::Length);
        }
        let ports = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        Ok(PexRequest { ports })
    }
}

impl PexResponse {
    /// `R`, a count, and that many addresses, each a length byte and the multiaddr's
    /// binary form.
    pub fn encode(&self) -> Vec<u8> {
        let addrs: Vec<Vec<u8>> = self
            .addrs
            .iter()
            .map(|a| a.to_vec())
            .filter(|a| a.len() <= MAX_ADDR_BYTES)
            .take(MAX_ADDRS)
            .collect();
        let mut out = vec![b'R', addrs.len() as u8];
        for a in addrs {
            out.push(a.len() as u8);
            out.extend_from_slice(&a);
        }
        out
    }

    /// Reads an answer; every address must be a dialable TCP address with a peer id.
    pub fn decode(b: &[u8]) -> Result<PexResponse, PexError> {
        let [b'R', n, rest @ ..] = b else {
            return Err(PexError::Kind("answer"));
        };
        let mut rest: &[u8] = rest;
        let n = usize::from(*n);
        if n > MAX_ADDRS {
            return Err(PexError::TooMany(n, MAX_ADDRS));
        }
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let [len, tail @ ..] = rest else {
                return Err(PexError::Length);
            };
            let len = usize::from(*len);
            if len > MAX_ADDR_BYTES {
                return Err(PexError::Addr);
            }
            if tail.len() < len {
                return Err(PexError::Length);
            }
            let a = Multiaddr::try_from(tail[..len].to_vec()).map_err(|_| PexError::Addr)?;
            if !dialable(&a) || split_peer(&a).1.is_none() {
                return Err(PexError::Addr);
            }
            addrs.push(a);
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(PexError::Length);
        }
        Ok(PexResponse { addrs })
    }
}

/// What peer exchange knows: each connected peer's dialable address and when to ask it
/// next.
#[derive(Debug, Default)]
pub struct Pex {
    peers: HashMap<PeerId, Entry>,
}

#[derive(Debug)]
struct Entry {
    /// Where it can be dialled, with `/p2p/<id>`; `None` until known.
    addr: Option<Multiaddr>,
    /// Where it is connected from (for an inbound peer, its IP).
    remote: Multiaddr,
    next_ask: Instant,
    asked: u32,
}

/// `addr` with `/p2p/<peer>` at the end (replacing any peer id there).
fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    let (mut plain, _) = split_peer(addr);
    plain.push(Protocol::P2p(peer));
    plain
}

impl Pex {
    /// `peer` connected at `now`; `dialed`: the address we dialled (so it is dialable),
    /// or `None` when it dialled us (`remote` is then where it came from). It is asked
    /// at once.
    pub fn connected(
        &mut self,
        peer: PeerId,
        dialed: Option<&Multiaddr>,
        remote: &Multiaddr,
        now: Instant,
    ) {
        let addr = dialed.filter(|a| dialable(a)).map(|a| with_peer(a, peer));
        let e = self.peers.entry(peer).or_insert(Entry {
            addr: None,
            remote: remote.clone(),
            next_ask: now,
            asked: 0,
        });
        if addr.is_some() {
            e.addr = addr;
        }
    }

    /// `peer`'s last connection closed.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// `peer` asked us, saying it listens on `ports`: unless we dialled it (and so
    /// know a working address), it is reachable at the IP it connected from.
    pub fn heard(&mut self, peer: PeerId, req: &PexRequest) {
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        if e.addr.is_some() {
            return;
        }
        let (Some(ip), Some(port)) = (remote_ip(&e.remote), req.ports.first()) else {
            return;
        };
        let proto = match ip {
            std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
            std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
        };
        let a = Multiaddr::empty()
            .with(proto)
            .with(Protocol::Tcp(*port))
            .with(Protocol::P2p(peer));
        if dialable(&a) {
            e.addr = Some(a);
        }
    }

    /// Our answer to `asker`: the addresses of the other connected peers we know how
    /// to reach, at most [`MAX_ADDRS`].
    pub fn answer(&self, asker: &PeerId) -> PexResponse {
        let mut addrs: Vec<Multiaddr> = self
            .peers
            .iter()
            .filter(|(p, _)| *p != asker)
            .filter_map(|(_, e)| e.addr.clone())
            .collect();
        addrs.sort();
        addrs.truncate(MAX_ADDRS);
        PexResponse { addrs }
    }

    /// The peers to ask at `now`; each is then due again later.
    pub fn due(&mut self, now: Instant) -> Vec<PeerId> {
        let mut out = Vec::new();
        for (p, e) in self.peers.iter_mut() {
            if e.next_ask <= now {
                e.asked += 1;
                e.next_ask = now + if e.asked == 1 { ASK_AGAIN } else { ASK_EVERY };
                out.push(*p);
            }
        }
        out
    }

    /// When a peer is next due to be asked.
    pub fn next_due(&self) -> Option<Instant> {
        self.peers.values().map(|e| e.next_ask).min()
    }

    /// The addresses of an answer worth dialling for node `me`: not ourselves, not a
    /// peer we are connected to already.
    pub fn learned(&self, me: &PeerId, resp: PexResponse) -> Vec<Multiaddr> {
        resp.addrs
            .into_iter()
            .filter(|a| match split_peer(a).1 {
                Some(p) => p != *me && !self.peers.contains_key(&p),
                None => false,
            })
            .collect()
    }
}

/// How peer-exchange messages are framed on a stream (docs/protocol.md §9.2): a u16
/// big-endian length, at most [`MAX_MESSAGE`], checked before reading.
pub const FRAMING: Framing = Framing {
    prefix: Prefix::U16,
    limit: MAX_MESSAGE,
    name: "peer-exchange message",
};

/// The `/aidmesh/pex/1` codec: one message per frame ([`FRAMING`]). It counts the
/// bytes it reads and writes (length prefixes included), so that status can tell
/// peer exchange apart from gossip (issue 10).
pub type Codec = framed::Codec<PexRequest, PexResponse>;

/// A peer-exchange codec counting into `counters`.
pub fn codec(counters: Arc<Counters>) -> Codec {
    Codec::new(FRAMING, counters)
}

framed::messages!(PexError: PexRequest, PexResponse);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str, port: u16, p: PeerId) -> Multiaddr {
        format!("/ip4/{ip}/tcp/{port}/p2p/{p}").parse().unwrap()
    }

    #[test]
    fn messages_round_trip_and_malformed_ones_are_refused() {
        let req = PexRequest {
            ports: vec![4610, 4620],
        };
        assert_eq!(PexRequest::decode(&req.encode()), Ok(req));
        let resp = PexResponse {
            addrs: (0..3)
                .map(|i| at(&format!("10.0.0.{i}"), 4610, PeerId::random()))
                .collect(),
        };
        let bytes = resp.encode();
        assert!(bytes.len() <= MAX_MESSAGE);
        assert_eq!(PexResponse::decode(&bytes), Ok(resp));
        assert_eq!(PexRequest::decode(b""), Err(PexError::Kind("request")));
        assert_eq!(
            PexRequest::decode(b"Q\x05"),
            Err(PexError::TooMany(5, MAX_PORTS))
        );
        assert_eq!(PexRequest::decode(b"Q\x01\x00"), Err(PexError::Length));
        assert_eq!(
            PexResponse::decode(b"R\x21"),
            Err(PexError::TooMany(33, MAX_ADDRS))
        );
        assert_eq!(PexResponse::decode(b"R\x01"), Err(PexError::Length));
        assert_eq!(PexResponse::decode(b"R\x01\x03abc"), Err(PexError::Addr));
        // A dialable address without a peer id, and a non-TCP one, are refused.
        for bad in ["/ip4/10.0.0.1/tcp/4610", "/ip4/10.0.0.1/udp/4610"] {
            let a: Multiaddr = bad.parse().unwrap();
            let mut b = vec![b'R', 1, a.to_vec().len() as u8];
            b.extend(a.to_vec());
            assert_eq!(PexResponse::decode(&b), Err(PexError::Addr));
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(PexResponse::decode(&extra), Err(PexError::Length));
        for n in 0..bytes.len() {
            let _ = PexResponse::decode(&bytes[..n]);
        }
    }

    #[test]
    fn a_node_hands_on_the_reachable_addresses_of_its_other_peers_only() {
        let t0 = Instant::now();
        let (a, b, c, me) = (
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        );
        let mut pex = Pex::default();
        // We dialled a; b and c dialled us (from ephemeral ports).
        let a_addr: Multiaddr = "/ip4/10.0.0.1/tcp/4610".parse().unwrap();
        pex.connected(a, Some(&a_addr), &a_addr, t0);
        pex.connected(b, None, &"/ip4/10.0.0.2/tcp/51000".parse().unwrap(), t0);
        pex.connected(c, None, &"/ip4/10.0.0.3/tcp/52000".parse().unwrap(), t0);
        // c has not told us its port yet: not handed out.
        pex.heard(b, &PexRequest { ports: vec![4610] });
        assert_eq!(
            pex.answer(&a).addrs,
            vec![at("10.0.0.2", 4610, b)],
            "the asker is not given itself, nor c whose port is unknown"
        );
        let mut to_b = pex.answer(&b).addrs;
        to_b.sort();
        assert_eq!(to_b, vec![at("10.0.0.1", 4610, a)]);
        pex.disconnected(&a);
        assert!(
            pex.answer(&b).addrs.is_empty(),
            "a left: no longer handed out"
        );
        // What we learn: not ourselves, nor a peer we are connected to.
        let learned = pex.learned(
            &me,
            PexResponse {
                addrs: vec![
                    at("10.0.0.9", 4610, me),
                    at("10.0.0.2", 4610, b),
                    at("10.0.0.7", 4610, a),
                ],
            },
        );
        assert_eq!(learned, vec![at("10.0.0.7", 4610, a)]);
    }

    #[test]
    fn a_peer_is_asked_at_once_then_again_soon_then_every_half_minute() {
        let t0 = Instant::now();
        let p = PeerId::random();
        let mut pex = Pex::default();
        let r: Multiaddr = "/ip4/10.0.0.2/tcp/51000".parse().unwrap();
        pex.connected(p, None, &r, t0);
        assert_eq!(pex.due(t0), vec![p]);
        assert!(pex.due(t0).is_empty());
        assert_eq!(pex.next_due(), Some(t0 + ASK_AGAIN));
        assert_eq!(pex.due(t0 + ASK_AGAIN), vec![p]);
        assert_eq!(pex.next_due(), Some(t0 + ASK_AGAIN + ASK_EVERY));
        pex.disconnected(&p);
        assert_eq!(pex.next_due(), None);
    }

    #[test]
    fn an_answer_is_bounded_however_many_peers() {
        let t0 = Instant::now();
        let mut pex = Pex::default();
        for i in 0..100u32 {
            let a: Multiaddr = format!("/ip4/10.0.{}.{}/tcp/4610", i / 200, i % 200 + 1)
                .parse()
                .unwrap();
            pex.connected(PeerId::random(), Some(&a), &a, t0);
        }
        let r = pex.answer(&PeerId::random());
        assert_eq!(r.addrs.len(), MAX_ADDRS);
        assert_eq!(PexResponse::decode(&r.encode()), Ok(r));
    }
}
