//! The ingest worker: everything the network task would otherwise wait on disk for
//! (storing gossip once [`super::gossip`] has judged it, answering and driving sync,
//! the peer book) runs here, off the swarm loop, so the swarm loop never blocks.
//!
//! Two threads, each taking its jobs in arrival order:
//! - **gossip**: stores gossip messages, in the order they came. It has a thread of its
//!   own so that a fresh event never waits behind a bulk catch-up: a sync batch of 256
//!   events takes tens of milliseconds to validate and file, and with one queue every
//!   gossip message behind it waited that long (issue 14: propagation under ingest
//!   load). Filing still takes turns with sync at the engine lock, which a batch lets
//!   go every few events.
//! - **sync** (and the peer book): answers peers' sync requests and drives our sessions;
//!   each session's steps stay sequential (a session is moved into its job and handed
//!   back with the result).
//!
//! Both queues are bounded; when one is full the network task sheds load without
//! waiting (gossip is ignored, to be fetched by anti-entropy; a sync request is refused
//! as busy; a sync session ends and runs again at the next round).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use aidmesh_protocol::sync::{SyncRequest, SyncResponse};
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};

use super::sync::{self, Failure, Next, Session};
use crate::engine::{ClockKey, Engine, IngestError, Ingested, Origin};
use crate::store::PeerRecord;

/// Most jobs waiting for each of the worker's threads.
pub const QUEUE: usize = 1024;

/// Work handed to the worker.
pub enum Job {
    /// Store a gossip message (already judged valid by [`super::gossip`]).
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
    /// Tests: keeps the sync thread busy until the sender is dropped or sends.
    #[cfg(test)]
    Hold(std::sync::mpsc::Receiver<()>),
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
    /// Sync work, for the sync driver ([`super::sessions`]).
    Sync(SyncDone),
}

/// What the worker hands back to the sync driver.
pub enum SyncDone {
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
        result: Result<(Box<Session>, SyncRequest), sync::StartError>,
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
    /// To the sync thread: everything but gossip.
    jobs: SyncSender<Job>,
    /// To the gossip thread.
    gossip: SyncSender<(Vec<u8>, PeerId)>,
}

impl Worker {
    /// Starts the worker's threads; results arrive on `done`. They end when every
    /// clone of the `Worker` is dropped (after the jobs already queued).
    pub fn start(engine: Arc<Engine>, done: UnboundedSender<Done>) -> std::io::Result<Worker> {
        let (gossip_tx, gossip_rx) = sync_channel::<(Vec<u8>, PeerId)>(QUEUE);
        let eng = engine.clone();
        std::thread::Builder::new()
            .name("ingest-gossip".into())
            .spawn(move || {
                while let Ok((data, source)) = gossip_rx.recv() {
                    gossip(&eng, &data, &source);
                }
            })?;
        let (jobs, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || run(&engine, &rx, &done, &Default::default()))?;
        Ok(Worker {
            jobs,
            gossip: gossip_tx,
        })
    }

    /// Queues a job without waiting; gives it back if its queue is full (or the
    /// worker is gone).
    pub fn offer(&self, job: Job) -> Result<(), Box<Job>> {
        if let Job::Gossip { data, source } = job {
            return self.gossip.try_send((data, source)).map_err(|e| {
                let (data, source) = match e {
                    TrySendError::Full(g) | TrySendError::Disconnected(g) => g,
                };
                Box::new(Job::Gossip { data, source })
            });
        }
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
            // Not sent here by `Worker::offer`; stored all the same if it came.
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
                Some(Done::Sync(SyncDone::Served {
                    peer,
                    channel,
                    response,
                    misbehaved,
                }))
            }
            Job::Start {
                peer,
                generation,
                relay,
            } => Some(Done::Sync(SyncDone::Started {
                peer,
                generation,
                result: Session::start(engine, relay, claims).map(|(s, r)| (Box::new(s), r)),
            })),
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
                Some(Done::Sync(SyncDone::Stepped {
                    peer,
                    generation,
                    session,
                    next,
                    lacking,
                }))
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
            #[cfg(test)]
            Job::Hold(release) => {
                let _ = release.recv();
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

/// Stores a gossip event. Its verdict was given already ([`super::gossip`]); the
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
        Err(e @ IngestError::OverQuota { .. }) => {
            debug!(error = %e, "a gossip event was not stored")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use aidmesh_protocol::{Body, Category, Event, Identity, Post, Timestamp, Urgency};
    use std::time::{Duration, Instant};

    fn need(title: &str, author: &Identity, at_ms: u64) -> Event {
        let body = Body::Need(Post::new(title, Category::Water, Urgency::Normal));
        Event::try_create(author, Timestamp::from_millis(at_ms), &body).unwrap()
    }

    /// A gossip message is stored while the sync thread is busy (as during a bulk
    /// catch-up): it does not wait in line behind sync work.
    #[test]
    fn gossip_is_stored_while_the_sync_thread_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let engine =
            Arc::new(Engine::open(store, Identity::from_seed([1; 32]), "t".into(), 0).unwrap());
        let (done, _done_rx) = tokio::sync::mpsc::unbounded_channel();
        let worker = Worker::start(engine.clone(), done).unwrap();
        let (release, hold) = std::sync::mpsc::channel();
        assert!(worker.offer(Job::Hold(hold)).is_ok());
        let e = need("water", &Identity::from_seed([2; 32]), engine.now_ms());
        let source = PeerId::random();
        assert!(worker
            .offer(Job::Gossip {
                data: e.bytes().to_vec(),
                source,
            })
            .is_ok());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !engine.knows(&e.id()).unwrap() {
            assert!(
                Instant::now() < deadline,
                "the gossip event was not stored in 20 s while a sync job ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(release);
    }
}
