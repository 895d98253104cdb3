//! The ingest worker: everything the network task would otherwise wait on disk for
//! (storing gossip once [`crate::gossip`] has judged it, answering and driving sync,
//! the peer book) runs here, on one dedicated thread, so the swarm loop never blocks.
//!
//! One thread, jobs in arrival order: gossip messages are stored in the order they
//! came, and each sync session's steps stay sequential (a session is moved into its
//! job and handed back with the result). The queue is bounded; when it is full the
//! network task sheds load without waiting (gossip is ignored, to be fetched by
//! anti-entropy; a sync request is refused as busy; a sync session ends and runs again
//! at the next round).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};

use crate::engine::{ClockKey, Engine, IngestError, Ingested, Origin};
use crate::store::PeerRecord;
use crate::sync::{self, Failure, Next, Session};

/// Most jobs waiting for the worker.
pub const QUEUE: usize = 1024;

/// Work handed to the worker.
pub enum Job {
    /// Store a gossip message (already judged valid by [`crate::gossip`]).
    Gossip {
        /// The message's data (an event).
        data: Vec<u8>,
        /// The peer that forwarded it.
        source: PeerId,
    },
    /// Answer a peer's sync request.
    Serve {
        /// The peer.
        peer: PeerId,
        /// Its mesh-clock key.
        clock_key: ClockKey,
        /// Its request.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// Start a sync session with a peer (computes the reconciliation set).
    Start {
        /// The peer.
        peer: PeerId,
        /// Which session of the peer's this is.
        generation: u64,
        /// A relay session (see [`Session::start`]).
        relay: bool,
    },
    /// Feed a peer's sync response to our session with it.
    Step {
        /// The peer.
        peer: PeerId,
        /// Which session of the peer's this is.
        generation: u64,
        /// Its mesh-clock key.
        clock_key: ClockKey,
        /// The session.
        session: Box<Session>,
        /// The peer's response.
        response: SyncResponse,
    },
    /// Record in the peer book that a peer connected from `addr`.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The connection's remote address.
        addr: String,
    },
    /// Record in the peer book that a sync with a peer finished at `wall_ms`.
    Synced {
        /// The peer.
        peer: PeerId,
        /// Wall-clock ms.
        wall_ms: u64,
    },
}

/// What the worker hands back to the network task.
pub enum Done {
    /// How to report a gossip message to gossipsub.
    Gossip {
        /// Gossipsub's id.
        id: MessageId,
        /// The peer that forwarded it.
        source: PeerId,
        /// The verdict.
        acceptance: MessageAcceptance,
    },
    /// An answer to send.
    Served {
        /// The peer.
        peer: PeerId,
        /// Where it goes.
        channel: ResponseChannel<SyncResponse>,
        /// The answer.
        response: SyncResponse,
        /// The request was malformed (the peer is banned).
        misbehaved: bool,
    },
    /// A session started (or could not).
    Started {
        /// The peer.
        peer: PeerId,
        /// Which session.
        generation: u64,
        /// The session and its first request.
        result: Result<(Box<Session>, SyncRequest), String>,
    },
    /// A session took a step.
    Stepped {
        /// The peer.
        peer: PeerId,
        /// Which session.
        generation: u64,
        /// The session, to keep for the next response.
        session: Box<Session>,
        /// What to do next.
        next: Result<Next, Failure>,
        /// Once a relay session is done: events the peer lacks, to gossip.
        lacking: Vec<Vec<u8>>,
    },
}

/// The network task's end of the worker (and the gossip checker's).
#[derive(Clone)]
pub struct Worker {
    jobs: SyncSender<Job>,
}

impl Worker {
    /// Starts the worker thread; results arrive on `done`. The thread ends when every
    /// clone of the `Worker` is dropped (after the jobs already queued).
    pub fn start(engine: Arc<Engine>, done: UnboundedSender<Done>) -> std::io::Result<Worker> {
        let (jobs, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || run(&engine, &rx, &done, &Default::default()))?;
        Ok(Worker { jobs })
    }

    /// Queues a job without waiting; gives it back if the queue is full (or the
    /// worker is gone).
    pub fn offer(&self, job: Job) -> Result<(), Box<Job>> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(j) | TrySendError::Disconnected(j) => Box::new(j),
        })
    }
}

/// `claims`: what this node's sync sessions are fetching (each id asked once).
fn run(
    engine: &Engine,
    jobs: &Receiver<Job>,
    done: &UnboundedSender<Done>,
    claims: &Arc<sync::Claims>,
) {
    while let Ok(job) = jobs.recv() {
        let out = match job {
            Job::Gossip { data, source } => {
                gossip(engine, &data, &source);
                None
            }
            Job::Serve {
                peer,
                clock_key,
                request,
                channel,
            } => {
                let (response, misbehaved) = sync::serve(engine, &clock_key, request);
                Some(Done::Served {
                    peer,
                    channel,
                    response,
                    misbehaved,
                })
            }
            Job::Start {
                peer,
                generation,
                relay,
            } => Some(Done::Started {
                peer,
                generation,
                result: Session::start(engine, relay, claims).map(|(s, r)| (Box::new(s), r)),
            }),
            Job::Step {
                peer,
                generation,
                clock_key,
                mut session,
                response,
            } => {
                let next = session.on_response(engine, &clock_key, response);
                let lacking = match next {
                    Ok(Next::Done { .. }) => session.lacking_events(engine),
                    _ => Vec::new(),
                };
                Some(Done::Stepped {
                    peer,
                    generation,
                    session,
                    next,
                    lacking,
                })
            }
            Job::Connected { peer, addr } => {
                update_peer(engine, &peer, |rec| {
                    rec.addrs.retain(|x| x != &addr);
                    rec.addrs.insert(0, addr);
                    rec.addrs.truncate(4);
                });
                None
            }
            Job::Synced { peer, wall_ms } => {
                update_peer(engine, &peer, |rec| rec.last_sync_ms = Some(wall_ms));
                engine.after_sync();
                None
            }
        };
        if let Some(d) = out {
            if done.send(d).is_err() {
                return; // the network task stopped
            }
        }
    }
}

/// Stores a gossip event. Its verdict was given already ([`crate::gossip`]); the
/// store applies every rule again (duplicates, erasure under a redaction).
fn gossip(engine: &Engine, data: &[u8], source: &PeerId) {
    match engine.ingest(data, Origin::Gossip) {
        Ok(Ingested::New(id)) => debug!(peer = %source, id = %id, "event by gossip"),
        Ok(_) => {}
        Err(IngestError::Invalid(e)) => {
            debug!(peer = %source, error = %e, "a gossip event was not stored");
        }
        Err(IngestError::Store(e)) => {
            warn!(error = %e, "could not store an event from gossip; anti-entropy fetches it again");
        }
    }
}

fn update_peer(engine: &Engine, peer: &PeerId, f: impl FnOnce(&mut PeerRecord)) {
    let key = peer.to_string();
    let mut rec = engine.store().peer(&key).ok().flatten().unwrap_or_default();
    f(&mut rec);
    if let Err(e) = engine.store().set_peer(&key, &rec) {
        debug!(%peer, error = %e, "could not update the peer book");
    }
}
