//! The gossip verdict, apart from storing: a thread that validates each gossip message
//! (signature, envelope, body limits: pure checks, no disk, no engine lock) and hands
//! the verdict straight back to the network task, so gossipsub forwards a valid event
//! at once; then it queues the event for the ingest worker ([`super::ingest`]) to store.
//!
//! Before, the verdict waited for the store, so a node whose store was busy (a
//! compaction's exclusive phase, a slow fsync) held up every event passing through it.
//! Now only its own copy waits. The store applies every rule again (duplicates, erasure
//! under a redaction it holds); an event it then drops was forwarded anyway, as it
//! would have been had it arrived a moment before the redaction, and every peer applies
//! the same rules when it stores it.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use aidmesh_protocol::{validate, Rules, ValidationError};
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::PeerId;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};

use super::ingest::{Done, Job, Worker};
use crate::engine::Engine;

/// Most gossip messages waiting for a verdict.
pub const QUEUE: usize = 1024;

/// One gossip message to judge.
pub struct Check {
    /// The message's data (an event).
    pub data: Vec<u8>,
    /// Gossipsub's id for it.
    pub id: MessageId,
    /// The peer that forwarded it.
    pub source: PeerId,
}

/// The network task's end of the checker.
pub struct Checker {
    jobs: SyncSender<Check>,
}

impl Checker {
    /// Starts the checker thread: verdicts go to `done`, valid events to `worker`. The
    /// thread ends when the `Checker` is dropped.
    pub fn start(
        engine: Arc<Engine>,
        worker: Worker,
        done: UnboundedSender<Done>,
    ) -> std::io::Result<Checker> {
        let (jobs, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("gossip-check".into())
            .spawn(move || run(&engine, &worker, &rx, &done))?;
        Ok(Checker { jobs })
    }

    /// Queues a message without waiting; gives it back if the queue is full.
    pub fn offer(&self, check: Check) -> Result<(), Box<Check>> {
        self.jobs.try_send(check).map_err(|e| match e {
            TrySendError::Full(c) | TrySendError::Disconnected(c) => Box::new(c),
        })
    }
}

/// The verdict on one gossip message, from pure checks at `now_ms`.
pub fn verdict(data: &[u8], now_ms: u64, source: &PeerId) -> MessageAcceptance {
    match validate(data, &Rules::at(now_ms), &()) {
        Ok(_) => MessageAcceptance::Accept,
        // Valid where it was written, ahead of our clock: not the relay's fault. Not
        // stored now; sync brings it again once we catch up.
        Err(e @ ValidationError::FromTheFuture { .. }) => {
            debug!(peer = %source, error = %e, "event from gossip ahead of our clock; ignored for now");
            MessageAcceptance::Ignore
        }
        Err(e) => {
            warn!(peer = %source, error = %e, "rejected an invalid event from gossip; the peer is penalised");
            MessageAcceptance::Reject
        }
    }
}

fn run(engine: &Engine, worker: &Worker, jobs: &Receiver<Check>, done: &UnboundedSender<Done>) {
    while let Ok(Check { data, id, source }) = jobs.recv() {
        let mut acceptance = verdict(&data, engine.now_ms_unlocked(), &source);
        // Valid, but its author signed its day's quota already: not forwarded, so a
        // flood from one key stops here (see `aidmesh_protocol::quota`). Not the
        // relay's fault: ignored, not penalised.
        if matches!(acceptance, MessageAcceptance::Accept) && engine.over_daily_quota(&data) {
            debug!(peer = %source, "gossip event past its author's daily quota; not forwarded");
            acceptance = MessageAcceptance::Ignore;
        }
        let store = matches!(acceptance, MessageAcceptance::Accept);
        if done
            .send(Done::Gossip {
                id,
                source,
                acceptance,
            })
            .is_err()
        {
            return; // the network task stopped
        }
        if store && worker.offer(Job::Gossip { data, source }).is_err() {
            debug!(peer = %source, "ingest queue full; anti-entropy will fetch this event");
        }
    }
}
