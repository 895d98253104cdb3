//! Catch-up sync over libp2p request-response: the codec for `/aidmesh/sync/1`, the
//! stateless responder, and the initiator's session (reconcile, then fetch in batches).
//!
//! Each side of a connection initiates its own session, so each pulls what it lacks.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aidmesh_protocol::sync::{
    Initiator, SyncRequest, SyncResponse, MAX_EVENTS_RESPONSE_BYTES, MAX_FETCH_IDS,
    MAX_SYNC_MESSAGE,
};
use aidmesh_protocol::EventId;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::engine::{ClockKey, Engine, Origin};

/// The request-response protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/aidmesh/sync/1");

/// Most reconciliation rounds in one session before giving up (a peer feeding us
/// endless rounds is misbehaving).
pub const MAX_ROUNDS: u32 = 64;

/// Most events a relay session (see [`Session::relay`]) hands on by gossip: a small
/// catch-up reaches the other peers at once; the rest of a big one is left to their
/// own periodic anti-entropy, so a catch-up of 100,000 events does not become 100,000
/// gossip messages.
pub const MAX_RELAY: usize = 500;

/// Bytes of sync traffic, for status and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read (frames and length prefixes).
    pub bytes_in: AtomicU64,
    /// Bytes written.
    pub bytes_out: AtomicU64,
}

/// Length-prefixed (u32 big-endian) sync messages, size-checked before reading.
#[derive(Debug, Clone, Default)]
pub struct Codec {
    counters: Arc<Counters>,
}

impl Codec {
    /// A codec counting into `counters`.
    pub fn new(counters: Arc<Counters>) -> Self {
        Self { counters }
    }

    async fn read_frame<T: AsyncRead + Unpin + Send>(&self, io: &mut T) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_SYNC_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sync frame of {n} bytes is over the limit of {MAX_SYNC_MESSAGE}"),
            ));
        }
        let mut buf = vec![0u8; n];
        io.read_exact(&mut buf).await?;
        self.counters
            .bytes_in
            .fetch_add(4 + n as u64, Ordering::Relaxed);
        Ok(buf)
    }

    async fn write_frame<T: AsyncWrite + Unpin + Send>(
        &self,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> io::Result<()> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sync frame too large"))?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&bytes).await?;
        io.flush().await?;
        self.counters
            .bytes_out
            .fetch_add(4 + bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncRequest> {
        SyncRequest::decode(&self.read_frame(io).await?).map_err(invalid)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncResponse> {
        SyncResponse::decode(&self.read_frame(io).await?).map_err(invalid)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()> {
        self.write_frame(io, req.encode()).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()> {
        self.write_frame(io, res.encode()).await
    }
}

/// Answers a peer's request from our store. Stateless. `clock_key` identifies the
/// peer and its host (one vote per host in the mesh clock). The flag is true when the request
/// was malformed (the caller penalises the peer).
pub fn serve(engine: &Engine, clock_key: &ClockKey, req: SyncRequest) -> (SyncResponse, bool) {
    match req {
        SyncRequest::Reconcile { wall_ms, message } => {
            let set = match engine.sync_set() {
                Ok(set) => set,
                Err(e) => {
                    return (
                        SyncResponse::Refused {
                            reason: format!("store error: {e}"),
                        },
                        false,
                    )
                }
            };
            match set.respond(&message) {
                Ok(message) => {
                    // Only a well-formed exchange counts as a clock sample.
                    engine.record_peer_clock(clock_key, wall_ms);
                    (
                        SyncResponse::Reconcile {
                            wall_ms: engine.wall_ms(),
                            message,
                        },
                        false,
                    )
                }
                Err(e) => (
                    SyncResponse::Refused {
                        reason: e.to_string(),
                    },
                    true,
                ),
            }
        }
        SyncRequest::Fetch { ids } => {
            let mut events = Vec::new();
            let mut total = 0;
            for id in ids {
                match engine.store().get(&id) {
                    Ok(Some(bytes)) => {
                        if total + bytes.len() > MAX_EVENTS_RESPONSE_BYTES {
                            break;
                        }
                        total += bytes.len();
                        events.push(bytes);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return (
                            SyncResponse::Refused {
                                reason: format!("store error: {e}"),
                            },
                            false,
                        )
                    }
                }
            }
            (SyncResponse::Events { events }, false)
        }
    }
}

/// Why a session ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the log.
    pub reason: String,
    /// The peer broke the protocol (invalid or unrequested events, bad messages); the
    /// caller penalises it.
    pub misbehaved: bool,
}

impl Failure {
    fn benign(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            misbehaved: false,
        }
    }

    fn misbehaved(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            misbehaved: true,
        }
    }
}

/// What a finished session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Reconciliation rounds.
    pub rounds: u32,
    /// Ids the peer had that we lacked.
    pub missing: usize,
    /// Events newly stored.
    pub fetched: usize,
    /// Events the peer sent that failed validation.
    pub rejected: usize,
    /// Ids we held that the peer lacked.
    pub lacking: usize,
    /// Events stamped too far ahead of our clock: not stored now, and not held against
    /// the peer (they were valid where written); a later sync brings them again.
    pub deferred: usize,
    /// Duration in milliseconds.
    pub millis: u64,
}

/// What to do after a response.
#[derive(Debug)]
pub enum Next {
    /// Send this request to the peer.
    Send(SyncRequest),
    /// The session is complete.
    Done(Summary),
}

/// One initiator-side sync with one peer.
pub struct Session {
    init: Initiator,
    need: Vec<EventId>,
    requested: Vec<EventId>,
    /// Ids we hold that the peer lacks (kept only for a relay session, at most
    /// [`MAX_RELAY`]).
    have: Vec<EventId>,
    relay: bool,
    summary: Summary,
    started: Instant,
}

impl Session {
    /// Starts a session from our current set; returns the first request.
    pub fn start(engine: &Engine) -> Result<(Session, SyncRequest), String> {
        let set = engine.sync_set().map_err(|e| e.to_string())?;
        let (init, message) = Initiator::start((*set).clone()).map_err(|e| e.to_string())?;
        let req = SyncRequest::Reconcile {
            wall_ms: engine.wall_ms(),
            message,
        };
        Ok((
            Session {
                init,
                need: Vec::new(),
                requested: Vec::new(),
                have: Vec::new(),
                relay: false,
                summary: Summary::default(),
                started: Instant::now(),
            },
            req,
        ))
    }

    /// Feeds the peer's response. An `Err` ends the session.
    pub fn on_response(
        &mut self,
        engine: &Engine,
        clock_key: &ClockKey,
        resp: SyncResponse,
    ) -> Result<Next, Failure> {
        match resp {
            SyncResponse::Reconcile { wall_ms, message } => {
                self.summary.rounds += 1;
                if self.summary.rounds > MAX_ROUNDS {
                    return Err(Failure::misbehaved(format!(
                        "more than {MAX_ROUNDS} reconciliation rounds"
                    )));
                }
                let round = self
                    .init
                    .step(&message)
                    .map_err(|e| Failure::misbehaved(e.to_string()))?;
                // Only a well-formed exchange counts as a clock sample.
                engine.record_peer_clock(clock_key, wall_ms);
                self.summary.missing += round.need.len();
                self.summary.lacking += round.have.len();
                if self.relay {
                    let room = MAX_RELAY.saturating_sub(self.have.len());
                    self.have.extend(round.have.into_iter().take(room));
                }
                self.need.extend(round.need);
                match round.next {
                    Some(message) => Ok(Next::Send(SyncRequest::Reconcile {
                        wall_ms: engine.wall_ms(),
                        message,
                    })),
                    None => self.next_fetch(engine),
                }
            }
            SyncResponse::Events { events } => {
                // Only what we asked for: an unrequested event is a protocol breach.
                let asked: std::collections::HashSet<EventId> =
                    self.requested.iter().copied().collect();
                let received: std::collections::HashSet<EventId> = events
                    .iter()
                    .filter_map(|b| aidmesh_protocol::Event::decode(b).ok())
                    .map(|e| e.id())
                    .collect();
                let unrequested = events
                    .iter()
                    .filter(|b| {
                        aidmesh_protocol::Event::decode(b)
                            .map_or(true, |e| !asked.contains(&e.id()))
                    })
                    .count();
                if unrequested > 0 {
                    return Err(Failure::misbehaved(format!(
                        "{unrequested} events that were not requested"
                    )));
                }
                let r = engine
                    .ingest_batch(&events, Origin::Sync)
                    .map_err(|e| Failure::benign(e.to_string()))?;
                self.summary.fetched += r.new;
                self.summary.rejected += r.rejected.len();
                self.summary.deferred += r.deferred.len();
                if let Some(first) = r.rejected.first() {
                    tracing::warn!(rejected = r.rejected.len(), first = %first, "peer sent invalid events during sync");
                    return Err(Failure::misbehaved(format!(
                        "{} invalid events",
                        r.rejected.len()
                    )));
                }
                // A response cut short by the byte budget: ask again for the rest (not
                // for what came, stored or deferred as too far ahead of our clock). An
                // empty one means the peer no longer has them (erased): stop asking.
                if !received.is_empty() {
                    let requested = std::mem::take(&mut self.requested);
                    self.need
                        .extend(requested.into_iter().filter(|id| !received.contains(id)));
                }
                self.next_fetch(engine)
            }
            SyncResponse::Refused { reason } => {
                Err(Failure::benign(format!("peer refused: {reason}")))
            }
        }
    }

    /// Marks this as a relay session: one started because we just caught up from
    /// another peer. Besides pulling, it notes what the peer lacks, for
    /// [`Session::lacking_events`] to hand on.
    pub fn relay(&mut self) {
        self.relay = true;
    }

    /// Once a relay session is done: the wire bytes of the events we hold that the
    /// peer lacks (at most [`MAX_RELAY`]), to publish by gossip. Empty for an
    /// ordinary session. Reads the store.
    pub fn lacking_events(&mut self, engine: &Engine) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.have)
            .iter()
            .filter_map(|id| engine.store().get(id).ok().flatten())
            .collect()
    }

    fn next_fetch(&mut self, engine: &Engine) -> Result<Next, Failure> {
        let mut ids = Vec::new();
        while ids.len() < MAX_FETCH_IDS {
            let Some(id) = self.need.pop() else { break };
            if !engine
                .knows(&id)
                .map_err(|e| Failure::benign(e.to_string()))?
            {
                ids.push(id);
            }
        }
        self.requested.clone_from(&ids);
        if ids.is_empty() {
            self.summary.millis = self.started.elapsed().as_millis() as u64;
            return Ok(Next::Done(self.summary.clone()));
        }
        Ok(Next::Send(SyncRequest::Fetch { ids }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use aidmesh_protocol::{Body, Category, Identity, Place, Post, Urgency};

    fn engine(dir: &std::path::Path, seed: u8) -> Engine {
        let store = Store::open(dir).unwrap();
        Engine::open(store, Identity::from_seed([seed; 32]), "t".into(), 0).unwrap()
    }

    fn need(title: String) -> Body {
        Body::Need(Post {
            title,
            category: Category::Water,
            details: String::new(),
            quantity: None,
            unit: String::new(),
            urgency: Urgency::Normal,
            place: Place::default(),
            contact: String::new(),
            expires_ms: None,
            related: None,
        })
    }

    /// Runs `session` (ours, on `us`) against `peer` answering, to the end.
    fn run(us: &Engine, peer: &Engine, session: &mut Session, first: SyncRequest) -> Summary {
        let key = ClockKey {
            peer: vec![1],
            host: vec![1],
        };
        let mut req = first;
        loop {
            let (resp, bad) = serve(peer, &key, req);
            assert!(!bad);
            match session.on_response(us, &key, resp).unwrap() {
                Next::Send(r) => req = r,
                Next::Done(s) => return s,
            }
        }
    }

    #[test]
    fn a_relay_session_names_what_the_peer_lacks_up_to_the_bound() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (us, peer) = (engine(d1.path(), 1), engine(d2.path(), 2));
        let shared = peer.post(need("both have it".into())).unwrap();
        us.ingest(&shared.into_bytes(), Origin::Sync).unwrap();
        for i in 0..MAX_RELAY + 20 {
            us.post(need(format!("need {i}"))).unwrap();
        }

        // An ordinary session keeps nothing: the peer pulls for itself.
        let (mut s, first) = Session::start(&us).unwrap();
        let summary = run(&us, &peer, &mut s, first);
        assert_eq!(summary.lacking, MAX_RELAY + 20);
        assert!(s.lacking_events(&us).is_empty());

        // A relay session names only what the peer lacks, at most MAX_RELAY of it.
        let (mut s, first) = Session::start(&us).unwrap();
        s.relay();
        run(&us, &peer, &mut s, first);
        let lacking = s.lacking_events(&us);
        assert_eq!(lacking.len(), MAX_RELAY);
        for bytes in &lacking {
            let id = aidmesh_protocol::Event::decode(bytes).unwrap().id();
            assert!(!peer.knows(&id).unwrap(), "relayed an event the peer has");
        }
    }
}
