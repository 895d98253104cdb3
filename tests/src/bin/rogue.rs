//! `rogue`: a misbehaving peer for the adversarial multi-node test
//! (`tests/tests/rogue.rs`). This file owns the rogue binary and nothing else.
//!
//! The rogue *has* the community key, so it gets through the private-network (pnet)
//! handshake, noise and yamux like any member. Then it misbehaves, for a bounded time:
//!
//! - over gossipsub it publishes events with a forged signature, events stamped a year
//!   in the future, events of a known kind whose body is junk, events whose fields
//!   break the documented limits, random garbage, and (late in the run, because the
//!   node drops the whole gossip stream on it) payloads far over the size limit;
//! - over the sync protocol (`/aidmesh/sync/1`) it sends requests of unframed garbage,
//!   a frame whose length prefix claims 4 GiB, a well-framed `Fetch` of 10,000 ids
//!   (over `MAX_FETCH_IDS`) and a `Reconcile` with a junk negentropy message and a
//!   wall clock a year ahead;
//! - it answers the node's own sync requests with forged events, a 4 GiB length
//!   prefix, or garbage.
//!
//! At the end it prints one JSON line on stdout: whether it connected, counts of what
//! it sent (and of what failed), and the full hex ids of every event it forged, so the
//! test can check that no node stored any of them. It never trusts what the node sends
//! back and exits by itself.
//!
//! With `--summaries VICTIM:EVENT` (issue 11) it sends hub summaries only, no other
//! abuse: each round, one in the victim's name (hex author id) signed with its own key
//! that claims the victim holds the event (hex id), one of another community that
//! claims the same for a second identity of its own, junk on the summary topic, and
//! one valid summary of its own (the control: it shows the path works).
//!
//! Usage: `rogue --peer MULTIADDR --community NAME --passphrase WORDS [--seconds N]
//! [--control] [--gossip-only] [--summaries VICTIM:EVENT]`. `--control` also publishes one *valid* need first (reported as
//! `control_id`), to check that the path from the rogue to the other nodes works.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aidmesh_protocol::body::{Body, BodyKind, Post, Urgency};
use aidmesh_protocol::delivery::{self, Summary};
use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use aidmesh_protocol::{community, AuthorId, Category, Event, EventId, Identity, Timestamp};
use aidmesh_protocol::{MAX_EVENT_BYTES, PROTOCOL_VERSION};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageId};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity, Multiaddr, PeerId, StreamProtocol, Swarm};
use serde_json::json;
use tokio::time::Instant;

/// The sync protocol name the node serves.
const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/aidmesh/sync/1");

/// How long to wait for the connection and the node's gossip subscription.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Pause between two rounds of attacks.
const ROUND: Duration = Duration::from_millis(200);

/// Most bytes read from the node in one sync request or response.
const MAX_READ: u64 = 2 * 1024 * 1024;

/// Size of the oversized gossip payload (the node accepts about 17 KiB).
const OVERSIZED: usize = 100 * 1024;

/// Largest gossip message this rogue lets itself send.
const ROGUE_MAX_TRANSMIT: usize = 1024 * 1024 + 64 * 1024;

/// Ids in the over-limit fetch request (the node allows 256).
const TOO_MANY_IDS: usize = 10_000;

/// A year, in milliseconds.
const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

const USAGE: &str = "usage: rogue --peer MULTIADDR --community NAME --passphrase WORDS \
                     [--seconds N] [--control] [--gossip-only] [--summaries VICTIM:EVENT]";

/// Command-line arguments.
#[derive(Debug)]
struct Args {
    /// The honest node to attack; must end in `/p2p/<peer id>`.
    peer: Multiaddr,
    /// Community name (gives the gossip topic).
    community: String,
    /// Community passphrase (gives the pre-shared key).
    passphrase: String,
    /// How long to attack once connected.
    seconds: u64,
    /// Publish one valid need before misbehaving.
    control: bool,
    /// Misbehave on gossip only: send no sync abuse and answer the node's sync
    /// requests with a proper refusal (the node bans sync abusers at once, which would
    /// end the gossip attack before it starts).
    gossip_only: bool,
    /// Send forged hub summaries only: the victim's author id and the event to claim.
    summaries: Option<(AuthorId, EventId)>,
}

/// Parses `std::env::args`.
fn parse_args() -> Result<Args, String> {
    let mut peer = None;
    let mut community = None;
    let mut passphrase = None;
    let mut seconds = 10;
    let mut control = false;
    let mut gossip_only = false;
    let mut summaries = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--peer" => {
                let v = value("--peer")?;
                peer = Some(
                    v.parse::<Multiaddr>()
                        .map_err(|e| format!("bad --peer {v}: {e}"))?,
                );
            }
            "--community" => community = Some(value("--community")?),
            "--passphrase" => passphrase = Some(value("--passphrase")?),
            "--seconds" => {
                let v = value("--seconds")?;
                seconds = v.parse().map_err(|e| format!("bad --seconds {v}: {e}"))?;
            }
            "--control" => control = true,
            "--gossip-only" => gossip_only = true,
            "--summaries" => {
                let v = value("--summaries")?;
                let (who, what) = v
                    .split_once(':')
                    .ok_or_else(|| format!("bad --summaries {v}: want VICTIM:EVENT"))?;
                let who: AuthorId = who.parse().map_err(|e| format!("bad victim {who}: {e}"))?;
                let what: EventId = what.parse().map_err(|e| format!("bad event {what}: {e}"))?;
                summaries = Some((who, what));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        peer: peer.ok_or("--peer is required")?,
        community: community.ok_or("--community is required")?,
        passphrase: passphrase.ok_or("--passphrase is required")?,
        seconds,
        control,
        gossip_only,
        summaries,
    })
}

/// A small xorshift generator; the rogue needs junk, not cryptographic randomness.
struct Rng(u64);

impl Rng {
    /// Seeded from the standard library's per-process random hasher keys and the time.
    fn seeded() -> Rng {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        Rng(h.finish() | 1)
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` random bytes.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// 32 random bytes (key seeds, fake ids).
    fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.bytes(32));
        s
    }
}

/// A request-response codec that moves raw bytes: requests and responses are written
/// exactly as given (the rogue composes any framing itself, valid or not) and read up to
/// [`MAX_READ`] bytes or the end of the stream, never interpreted.
#[derive(Debug, Clone, Default)]
struct RawCodec;

/// Reads at most [`MAX_READ`] bytes, until the other side closes its half.
async fn read_bounded<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(MAX_READ).read_to_end(&mut buf).await?;
    Ok(buf)
}

/// Writes `bytes` as they are.
async fn write_raw<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_bounded(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_bounded(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_raw(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_raw(io, &res).await
    }
}

/// The rogue's behaviours: gossip compatible with the node's, and raw sync.
#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<RawCodec>,
}

/// Message ids unique per message, so the rogue never refuses to publish a
/// "duplicate" and never deduplicates what it receives.
fn unique_message_id(_: &gossipsub::Message) -> MessageId {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    MessageId::from(NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes().to_vec())
}

/// The same transport as the node (TCP, pnet with the community key, noise, yamux) and
/// behaviours that speak its protocols but let the rogue send anything.
fn build_swarm(keypair: identity::Keypair, psk: [u8; 32]) -> Result<Swarm<Behaviour>, String> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(|key| aidmesh_node::net::transport(key, psk))
        .map_err(|e| e.to_string())?
        .with_behaviour(|_| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(unique_message_id)
                .max_transmit_size(ROGUE_MAX_TRANSMIT)
                .build()
                .map_err(|e| e.to_string())?;
            let gossipsub =
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)?;
            Ok(Behaviour {
                gossipsub,
                sync: request_response::Behaviour::with_codec(
                    RawCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(5))
                        .with_max_concurrent_streams(64),
                ),
            })
        })
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

/// `bytes` behind a correct u32 big-endian length prefix, as the node's codec expects.
fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A need that would be valid if nothing were tampered with.
fn need(title: String) -> Body {
    Body::Need(Post::new(title, Category::Water, Urgency::Normal))
}

/// The rogue's state: its swarm, its identity as an author, and what it has done.
struct Rogue {
    swarm: Swarm<Behaviour>,
    rng: Rng,
    author: Identity,
    topic: IdentTopic,
    target: PeerId,
    target_addr: Multiaddr,
    connected: bool,
    subscribed: bool,
    rounds: u64,
    /// What was handed to the network, by kind of attack.
    sent: BTreeMap<&'static str, u64>,
    /// Publish errors, by error.
    publish_errors: BTreeMap<&'static str, u64>,
    /// Outcomes of our sync requests and of the node's requests to us.
    sync: BTreeMap<&'static str, u64>,
    /// Full hex ids of every forged event offered to the node.
    forged_ids: Vec<String>,
    /// See [`Args::gossip_only`].
    gossip_only: bool,
    control_id: Option<String>,
    reconnects: u64,
    /// `--summaries`: the summary topic, the community's tag, victim and event.
    summaries: Option<(IdentTopic, [u8; 8], AuthorId, EventId)>,
    /// The second identity, of "another community".
    foreign: Identity,
}

impl Rogue {
    fn count(map: &mut BTreeMap<&'static str, u64>, key: &'static str) {
        *map.entry(key).or_default() += 1;
    }

    /// Remembers a forged event's id and returns its bytes.
    fn forged(&mut self, e: Event) -> Vec<u8> {
        self.forged_ids.push(e.id().to_hex());
        e.into_bytes()
    }

    /// A valid need with one signature byte flipped.
    fn forged_signature(&mut self) -> Vec<u8> {
        let n = self.rng.next_u64();
        let e = Event::create(
            &self.author,
            Timestamp::from_millis(now_ms()),
            &need(format!("forged signature {n:x}")),
        );
        let id = e.id();
        let mut bytes = e.into_bytes();
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x01;
        }
        self.forged_ids.push(id.to_hex());
        bytes
    }

    /// A correctly signed need stamped a year ahead.
    fn future_stamped(&mut self) -> Vec<u8> {
        let n = self.rng.next_u64();
        let e = Event::create(
            &self.author,
            Timestamp::from_millis(now_ms() + YEAR_MS),
            &need(format!("from the future {n:x}")),
        );
        self.forged(e)
    }

    /// A correctly signed event of the known kind "need" whose body is junk. The ten
    /// 0xff bytes make an over-long varint, so it never decodes by chance.
    fn malformed_body(&mut self) -> Vec<u8> {
        let mut body = vec![0xff; 10];
        body.extend(self.rng.bytes(40));
        let e = Event::create_raw(
            &self.author,
            PROTOCOL_VERSION,
            Timestamp::from_millis(now_ms()),
            BodyKind::Need.code(),
            &body,
        );
        self.forged(e)
    }

    /// A correctly signed need whose title breaks the length limit.
    fn bad_field(&mut self) -> Vec<u8> {
        let e = Event::create(
            &self.author,
            Timestamp::from_millis(now_ms()),
            &need("x".repeat(1000)),
        );
        self.forged(e)
    }

    /// Publishes on the topic, counting the outcome.
    fn publish(&mut self, what: &'static str, data: Vec<u8>) {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
        {
            Ok(_) => Self::count(&mut self.sent, what),
            Err(e) => {
                let key = match e {
                    gossipsub::PublishError::Duplicate => "duplicate",
                    gossipsub::PublishError::SigningError(_) => "signing",
                    gossipsub::PublishError::NoPeersSubscribedToTopic => "no_peers",
                    gossipsub::PublishError::MessageTooLarge => "too_large",
                    gossipsub::PublishError::TransformFailed(_) => "transform",
                    gossipsub::PublishError::AllQueuesFull(_) => "queues_full",
                };
                Self::count(&mut self.publish_errors, key);
            }
        }
    }

    /// Sends a raw sync request to the node.
    fn request(&mut self, what: &'static str, bytes: Vec<u8>) {
        let target = self.target;
        self.swarm.behaviour_mut().sync.send_request(&target, bytes);
        Self::count(&mut self.sent, what);
    }

    /// Publishes the valid control need (`--control`).
    fn publish_control(&mut self) {
        let e = Event::create(
            &self.author,
            Timestamp::from_millis(now_ms()),
            &need("rogue control event".to_string()),
        );
        self.control_id = Some(e.id().to_hex());
        self.publish("control", e.into_bytes());
    }

    /// One round of attacks. `late` adds the oversized payload, which makes the node
    /// drop the gossip stream (and, after a few, gossip with us on this connection).
    fn round(&mut self, late: bool) {
        self.rounds += 1;
        if let Some((topic, tag, victim, event)) = self.summaries.clone() {
            self.summary_round(topic, tag, victim, event);
            return;
        }
        let b = self.forged_signature();
        self.publish("forged_signature", b);
        let b = self.future_stamped();
        self.publish("future", b);
        let b = self.malformed_body();
        self.publish("malformed_body", b);
        let b = self.bad_field();
        self.publish("bad_field", b);
        let len = 1 + (self.rng.next_u64() % 4096) as usize;
        let b = self.rng.bytes(len);
        self.publish("garbage", b);
        if late {
            let b = self.rng.bytes(OVERSIZED);
            self.publish("oversized", b);
        }
        // Sync abuse every other round: each opens a stream on the node.
        if !self.gossip_only && self.rounds % 2 == 1 {
            let len = 1 + (self.rng.next_u64() % 512) as usize;
            let b = self.rng.bytes(len);
            self.request("sync_garbage", b);
            let mut b = vec![0xff; 4];
            b.extend(self.rng.bytes(1024));
            self.request("sync_4gib_prefix", b);
            let ids = (0..TOO_MANY_IDS)
                .map(|_| EventId(self.rng.seed32()))
                .collect();
            let b = frame(&SyncRequest::Fetch { ids }.encode());
            self.request("sync_too_many_ids", b);
            let message = self.rng.bytes(64);
            let b = frame(
                &SyncRequest::Reconcile {
                    wall_ms: now_ms() + YEAR_MS,
                    message,
                }
                .encode(),
            );
            self.request("sync_bad_reconcile", b);
        }
    }

    /// One round of `--summaries`.
    fn summary_round(&mut self, topic: IdentTopic, tag: [u8; 8], victim: AuthorId, event: EventId) {
        let now = now_ms();
        let claim = |community, hub| Summary {
            community,
            hub,
            made_ms: now,
            count: 0,
            base_ms: 0,
            buckets: Vec::new(),
            recent: vec![delivery::prefix(&event)],
        };
        let forged = claim(tag, victim).sign(&self.author);
        let foreign =
            claim(delivery::community_tag(&[0xee; 32]), self.foreign.author()).sign(&self.foreign);
        let own = Summary::make(tag, self.author.author(), now, &[], []).sign(&self.author);
        let len = 1 + (self.rng.next_u64() % 512) as usize;
        let junk = self.rng.bytes(len);
        for (what, data) in [
            ("summary_forged", forged),
            ("summary_foreign", foreign),
            ("summary_junk", junk),
            ("summary_own", own),
        ] {
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic.clone(), data)
            {
                Ok(_) => Self::count(&mut self.sent, what),
                Err(_) => Self::count(&mut self.publish_errors, what),
            }
        }
    }

    /// Answers one of the node's sync requests, in turn with forged events, a length
    /// prefix claiming 4 GiB, or a well-framed message of garbage.
    fn respond(&mut self, channel: ResponseChannel<Vec<u8>>) {
        let served = self.sync.get("requests_from_node").copied().unwrap_or(0);
        let refusal = || {
            let reason = "rogue".to_string();
            (
                "sync_refused",
                frame(&SyncResponse::Refused { reason }.encode()),
            )
        };
        let (what, bytes) = match served % 3 {
            _ if self.gossip_only => refusal(),
            0 => {
                let events = vec![
                    self.forged_signature(),
                    self.future_stamped(),
                    self.malformed_body(),
                    self.bad_field(),
                ];
                (
                    "sync_forged_response",
                    frame(&SyncResponse::Events { events }.encode()),
                )
            }
            1 => {
                let mut b = vec![0xff; 4];
                b.extend(self.rng.bytes(256));
                ("sync_4gib_response", b)
            }
            _ => ("sync_garbage_response", frame(&self.rng.bytes(200))),
        };
        Self::count(&mut self.sync, "requests_from_node");
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, bytes)
            .is_ok()
        {
            Self::count(&mut self.sent, what);
        }
    }

    /// Reacts to whatever the swarm reports; nothing from the node is trusted.
    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == self.target => {
                self.connected = true;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == self.target => {
                self.connected = false;
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                eprintln!("rogue: could not connect: {error}");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) if peer_id == self.target && topic == self.topic.hash() => {
                self.subscribed = true;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                ..
            })) => Self::count(&mut self.sync, "gossip_received"),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => match ev {
                request_response::Event::Message { message, .. } => match message {
                    request_response::Message::Request { channel, .. } => self.respond(channel),
                    request_response::Message::Response { response, .. } => {
                        let key = if response.is_empty() {
                            "empty_responses"
                        } else {
                            "responses"
                        };
                        Self::count(&mut self.sync, key);
                    }
                },
                request_response::Event::OutboundFailure { .. } => {
                    Self::count(&mut self.sync, "outbound_failures")
                }
                request_response::Event::InboundFailure { .. } => {
                    Self::count(&mut self.sync, "inbound_failures")
                }
                request_response::Event::ResponseSent { .. } => {}
            },
            _ => {}
        }
    }

    /// Dials the node.
    fn dial(&mut self) {
        let opts = DialOpts::peer_id(self.target)
            .addresses(vec![self.target_addr.clone()])
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            eprintln!("rogue: dial not started: {e}");
        }
    }

    /// The JSON report.
    fn report(&self) -> serde_json::Value {
        json!({
            "connected": self.connected,
            "subscribed": self.subscribed,
            "rounds": self.rounds,
            "reconnects": self.reconnects,
            "sent": self.sent,
            "publish_errors": self.publish_errors,
            "sync": self.sync,
            "forged_ids": self.forged_ids,
            "control_id": self.control_id,
            "author": self.author.author().to_hex(),
            "foreign_author": self.foreign.author().to_hex(),
        })
    }
}

/// Connects, attacks for `args.seconds`, and returns the report.
async fn run(args: Args) -> Result<serde_json::Value, String> {
    let mut target_addr = args.peer.clone();
    let Some(Protocol::P2p(target)) = target_addr.pop() else {
        return Err(format!("--peer {} must end in /p2p/<peer id>", args.peer));
    };
    let psk = community::derive_key(&args.community, &args.passphrase);
    let topic = IdentTopic::new(community::topic(&args.community));
    let mut rng = Rng::seeded();
    let keypair = identity::Keypair::ed25519_from_bytes(rng.seed32()).map_err(|e| e.to_string())?;
    let author = Identity::from_seed(rng.seed32());
    let foreign = Identity::from_seed(rng.seed32());
    let mut swarm = build_swarm(keypair, psk)?;
    let summaries = match args.summaries {
        Some((victim, event)) => {
            let t = IdentTopic::new(format!("{}/delivery", community::topic(&args.community)));
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&t)
                .map_err(|e| e.to_string())?;
            Some((t, delivery::community_tag(&psk), victim, event))
        }
        None => None,
    };
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| e.to_string())?;
    let mut rogue = Rogue {
        swarm,
        rng,
        author,
        topic,
        target,
        target_addr,
        connected: false,
        subscribed: false,
        rounds: 0,
        sent: BTreeMap::new(),
        publish_errors: BTreeMap::new(),
        sync: BTreeMap::new(),
        forged_ids: Vec::new(),
        control_id: None,
        reconnects: 0,
        gossip_only: args.gossip_only || summaries.is_some(),
        summaries,
        foreign,
    };
    rogue.dial();

    // Wait (bounded) for the connection and the node's subscription to the topic.
    let give_up = Instant::now() + CONNECT_TIMEOUT;
    while !(rogue.connected && rogue.subscribed) {
        tokio::select! {
            ev = rogue.swarm.select_next_some() => rogue.on_event(ev),
            _ = tokio::time::sleep_until(give_up) => {
                eprintln!("rogue: no connection and subscription within {CONNECT_TIMEOUT:?}");
                return Ok(rogue.report());
            }
        }
    }

    if args.control {
        rogue.publish_control();
    }
    let start = Instant::now();
    let run_for = Duration::from_secs(args.seconds);
    let end = start + run_for;
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = rogue.swarm.select_next_some() => rogue.on_event(ev),
            _ = tick.tick() => {
                if rogue.connected {
                    // The last third of the run adds oversized payloads.
                    rogue.round(start.elapsed() >= run_for * 2 / 3);
                } else {
                    rogue.reconnects += 1;
                    rogue.dial();
                }
            }
            _ = tokio::time::sleep_until(end) => break,
        }
    }
    // Let queued messages go out before the connection drops with the process.
    let flush = Instant::now() + Duration::from_millis(300);
    loop {
        tokio::select! {
            ev = rogue.swarm.select_next_some() => rogue.on_event(ev),
            _ = tokio::time::sleep_until(flush) => break,
        }
    }
    Ok(rogue.report())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rogue: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rogue: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sanity check: the oversized payload really is over what the node accepts.
const _: () = assert!(OVERSIZED > MAX_EVENT_BYTES + 1024);
