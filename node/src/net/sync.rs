//! Catch-up sync over libp2p request-response: the `/aidmesh/sync/1` codec (the shared
//! [`framed`] codec with sync's framing and messages), the stateless responder, and
//! the I/O driver of the initiator's session (whose state
//! machine, reconcile then fetch in batches, is `aidmesh_protocol::session`).
//!
//! Each side of a connection initiates its own session, so each pulls what it lacks.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aidmesh_protocol::event::EventId;
use aidmesh_protocol::session::{self, Step, Stored};
use aidmesh_protocol::sync::{
    SyncRequest, SyncResponse, MAX_EVENTS_RESPONSE_BYTES, MAX_SYNC_MESSAGE,
};
use aidmesh_protocol::DecodeError;
use libp2p::StreamProtocol;
use thiserror::Error;

use super::framed::{self, Framing, Prefix};
use crate::engine::{ClockKey, Engine, Origin};
use crate::store::StoreError;

pub use super::framed::Counters;

/// The request-response protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/aidmesh/sync/1");

/// How sync messages are framed on a stream (docs/protocol.md §8.1): a u32 big-endian
/// length, at most [`MAX_SYNC_MESSAGE`], checked before reading.
pub const FRAMING: Framing = Framing {
    prefix: Prefix::U32,
    limit: MAX_SYNC_MESSAGE,
    name: "sync frame",
};

/// The `/aidmesh/sync/1` codec: one sync message per frame ([`FRAMING`]), counting
/// the bytes into [`Counters`].
pub type Codec = framed::Codec<SyncRequest, SyncResponse>;

/// A sync codec counting into `counters`.
pub fn codec(counters: Arc<Counters>) -> Codec {
    Codec::new(FRAMING, counters)
}

framed::messages!(DecodeError: SyncRequest, SyncResponse);

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

pub use aidmesh_protocol::session::{Failure, Summary, MAX_RELAY, MAX_ROUNDS, WINDOW};

/// What to do after a response.
#[derive(Debug)]
pub enum Next {
    /// Send these requests to the peer, in this order (none: wait for the responses
    /// in flight).
    Send(Vec<SyncRequest>),
    /// The session is complete.
    Done {
        /// What it did.
        summary: Summary,
        /// How long it took, in milliseconds.
        millis: u64,
        /// Where that time went.
        phases: Phases,
    },
}

/// Where a session's time went, in milliseconds (for the log and benchmarks): the
/// rest of its time it waited for the peer's answers or for its turn on the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// From the start until the reconciliation was done.
    pub reconcile_ms: u64,
    /// Looking up which ids we hold (and claiming the rest).
    pub check_ms: u64,
    /// Validating and storing the events fetched.
    pub store_ms: u64,
}

/// The ids each of a node's sessions is fetching now, shared by all of them, so
/// that sessions with several peers at once ask each id of one peer only (a node
/// back from hours away otherwise fetched the same events from every neighbour).
#[derive(Debug, Default)]
pub struct Claims(Mutex<HashMap<EventId, u64>>);

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of ids claimed now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no id is claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a session could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Our set could not be read from the store (tried again soon).
    #[error("{0}")]
    Store(StoreError),
    /// The session refused to start with this set.
    #[error("{}", .0.reason)]
    Session(Failure),
}

/// One initiator-side sync with one peer: the I/O driver of the sans-IO
/// [`aidmesh_protocol::session::Session`]. It answers the session's questions from
/// the engine ("which of these ids do we hold", "store these events") and from the
/// node's [`Claims`], records the peer's clock samples, and hands the requests to
/// send back to the network task (up to [`session::WINDOW`] fetches in flight).
pub struct Session {
    inner: session::Session,
    started: Instant,
    /// Time spent in each phase, in microseconds: reconcile (set once), check, store.
    phase_us: [u64; 3],
    claims: Arc<Claims>,
    /// This session's key in `claims`.
    key: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        let key = self.key;
        self.claims.lock().retain(|_, k| *k != key);
    }
}

static SESSION_KEYS: AtomicU64 = AtomicU64::new(1);

impl Session {
    /// Starts a session over a shared snapshot of our set (not a copy of it: any
    /// number of sessions read the one [`Engine::sync_set`]); returns the first
    /// request. A `relay` session also notes what the peer lacks, for
    /// [`Session::lacking_events`] to hand on. Sessions sharing `claims` ask each
    /// id once between them.
    pub fn start(
        engine: &Engine,
        relay: bool,
        claims: &Arc<Claims>,
    ) -> Result<(Session, SyncRequest), StartError> {
        let set = engine.sync_set().map_err(StartError::Store)?;
        let (inner, req) =
            session::Session::start(&set, relay, engine.wall_ms()).map_err(StartError::Session)?;
        Ok((
            Session {
                inner,
                started: Instant::now(),
                phase_us: [0; 3],
                claims: claims.clone(),
                key: SESSION_KEYS.fetch_add(1, Ordering::Relaxed),
            },
            req,
        ))
    }

    /// Feeds the peer's response (to the oldest request in flight), answering the
    /// session's questions from the engine until it has requests to send, waits for
    /// more responses, or is done. An `Err` ends the session.
    pub fn on_response(
        &mut self,
        engine: &Engine,
        clock_key: &ClockKey,
        resp: SyncResponse,
    ) -> Result<Next, Failure> {
        let out = self.inner.on_response(resp, engine.wall_ms())?;
        if let Some(wall_ms) = out.peer_wall_ms {
            // Only a well-formed exchange counts as a clock sample.
            engine.record_peer_clock(clock_key, wall_ms);
        }
        let mut step = out.step;
        let mut send = Vec::new();
        if self.phase_us[0] == 0 && !matches!(step, Step::Send(SyncRequest::Reconcile { .. })) {
            self.phase_us[0] = (self.started.elapsed().as_micros() as u64).max(1);
        }
        loop {
            let t = Instant::now();
            step = match step {
                Step::Send(req) => {
                    send.push(req);
                    self.inner.after_send()?
                }
                Step::Wait => return Ok(Next::Send(send)),
                Step::Done(summary) => {
                    let [r, c, s] = self.phase_us.map(|us| us / 1000);
                    return Ok(Next::Done {
                        summary,
                        millis: self.started.elapsed().as_millis() as u64,
                        phases: Phases {
                            reconcile_ms: r,
                            check_ms: c,
                            store_ms: s,
                        },
                    });
                }
                Step::Check(ids) => {
                    let (held, busy) = self.check(engine, &ids)?;
                    let next = self.inner.checked(&held, &busy)?;
                    self.phase_us[1] += t.elapsed().as_micros() as u64;
                    next
                }
                Step::Store(events) => {
                    let r = engine
                        .ingest_batch(&events, Origin::Sync)
                        .map_err(|e| Failure::benign(e.to_string()))?;
                    if let Some(first) = r.rejected.first() {
                        tracing::warn!(rejected = r.rejected.len(), first = %first, "peer sent invalid events during sync");
                    }
                    let next = self.inner.stored(Stored {
                        new: r.new,
                        rejected: r.rejected.len(),
                        deferred: r.deferred.len(),
                    })?;
                    self.phase_us[2] += t.elapsed().as_micros() as u64;
                    next
                }
            }
        }
    }

    /// Which of `ids` we hold, and which another session is fetching; claims the
    /// rest for this one.
    fn check(
        &self,
        engine: &Engine,
        ids: &[EventId],
    ) -> Result<(Vec<EventId>, Vec<EventId>), Failure> {
        let mut held = Vec::new();
        let mut want = Vec::new();
        for id in ids {
            if engine
                .knows(id)
                .map_err(|e| Failure::benign(e.to_string()))?
            {
                held.push(*id);
            } else {
                want.push(*id);
            }
        }
        let mut busy = Vec::new();
        let mut claims = self.claims.lock();
        for id in want {
            match claims.entry(id) {
                Entry::Occupied(o) if *o.get() != self.key => busy.push(id),
                Entry::Occupied(_) => {}
                Entry::Vacant(v) => {
                    v.insert(self.key);
                }
            }
        }
        Ok((held, busy))
    }

    /// Once a relay session is done: the wire bytes of the events we hold that the
    /// peer lacks (at most [`MAX_RELAY`]), to publish by gossip. Empty for an
    /// ordinary session. Reads the store.
    pub fn lacking_events(&mut self, engine: &Engine) -> Vec<Vec<u8>> {
        self.inner
            .lacking()
            .iter()
            .filter_map(|id| engine.store().get(id).ok().flatten())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use aidmesh_protocol::{Body, Category, Identity, Post, Urgency};
    use std::collections::VecDeque;

    fn engine(dir: &std::path::Path, seed: u8) -> Engine {
        let store = Store::open(dir).unwrap();
        Engine::open(store, Identity::from_seed([seed; 32]), "t".into(), 0).unwrap()
    }

    fn need(title: String) -> Body {
        Body::Need(Post::new(title, Category::Water, Urgency::Normal))
    }

    fn key() -> ClockKey {
        ClockKey {
            peer: vec![1],
            host: vec![1],
        }
    }

    /// Runs `session` (ours, on `us`) against `peer` answering, to the end.
    fn run(us: &Engine, peer: &Engine, session: &mut Session, first: SyncRequest) -> Summary {
        let mut in_flight = VecDeque::from([first]);
        while let Some(req) = in_flight.pop_front() {
            let (resp, bad) = serve(peer, &key(), req);
            assert!(!bad);
            match session.on_response(us, &key(), resp).unwrap() {
                Next::Send(reqs) => in_flight.extend(reqs),
                Next::Done { summary, .. } => return summary,
            }
        }
        panic!("the session waits with nothing in flight")
    }

    /// Two sessions of one node, with two peers holding the same events, answered in
    /// turn: every event comes once, and the work is shared.
    #[test]
    fn concurrent_sessions_fetch_each_event_once() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let us = engine(dirs[0].path(), 1);
        let peers = [engine(dirs[1].path(), 2), engine(dirs[2].path(), 3)];
        for i in 0..1_500 {
            let e = peers[0].post(need(format!("need {i}"))).unwrap();
            peers[1].ingest(&e.into_bytes(), Origin::Sync).unwrap();
        }
        let claims = Arc::new(Claims::default());
        let mut sessions: Vec<_> = (0..2)
            .map(|_| {
                let (s, first) = Session::start(&us, false, &claims).unwrap();
                (s, VecDeque::from([first]), None::<Summary>)
            })
            .collect();
        let mut received = 0;
        while sessions.iter().any(|s| s.2.is_none()) {
            for (k, (s, in_flight, done)) in sessions.iter_mut().enumerate() {
                let Some(req) = in_flight.pop_front() else {
                    continue;
                };
                let (resp, _) = serve(&peers[k], &key(), req);
                if let SyncResponse::Events { events } = &resp {
                    received += events.len();
                }
                match s.on_response(&us, &key(), resp).unwrap() {
                    Next::Send(reqs) => in_flight.extend(reqs),
                    Next::Done { summary, .. } => *done = Some(summary),
                }
            }
        }
        assert_eq!(us.sync_set().unwrap().len(), 1_500, "every event arrived");
        assert_eq!(received, 1_500, "events fetched more than once");
        let fetched: Vec<usize> = sessions
            .iter()
            .map(|s| s.2.as_ref().unwrap().fetched)
            .collect();
        assert!(fetched.iter().all(|f| *f > 0), "not shared: {fetched:?}");
        drop(sessions);
        assert!(claims.is_empty(), "claims outlived their sessions");
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
        let (mut s, first) = Session::start(&us, false, &Default::default()).unwrap();
        let summary = run(&us, &peer, &mut s, first);
        assert_eq!(summary.lacking, MAX_RELAY + 20);
        assert!(s.lacking_events(&us).is_empty());

        // A relay session names only what the peer lacks, at most MAX_RELAY of it.
        let (mut s, first) = Session::start(&us, true, &Default::default()).unwrap();
        run(&us, &peer, &mut s, first);
        let lacking = s.lacking_events(&us);
        assert_eq!(lacking.len(), MAX_RELAY);
        for bytes in &lacking {
            let id = aidmesh_protocol::Event::decode(bytes).unwrap().id();
            assert!(!peer.knows(&id).unwrap(), "relayed an event the peer has");
        }
    }
}
