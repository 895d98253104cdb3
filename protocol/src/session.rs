//! The initiator's side of one sync session as a sans-IO state machine: reconcile,
//! then fetch what we lack in bounded batches.
//!
//! The session never touches a store, a socket or a clock. The driver (the node's
//! `sync.rs`) feeds it the peer's responses and the answers to its questions, and
//! carries out what it returns ([`Step`]):
//!
//! ```text
//! start ──► Send(Reconcile) ──► on_response(Reconcile) ─┬─► Send(Reconcile)   (another round)
//!                                                       └─► Check(ids) ──► checked(held)
//! Check(ids) ──► checked(held) ─┬─► Send(Fetch)  ──► on_response(Events) ──► Store(events)
//!                               ├─► Check(ids)   (all of that batch were held)
//!                               └─► Done(summary)
//! Store(events) ──► stored(outcome) ──► Check(ids) | Done(summary)
//! ```
//!
//! Each input is accepted in exactly one state; anything else (a response out of
//! turn, garbled bytes, events nobody asked for) ends the session with a
//! [`Failure`], never a panic. Every request it returns respects the wire limits of
//! [`crate::sync`].

use std::collections::HashSet;

use crate::event::{Event, EventId};
use crate::sync::{Initiator, SyncRequest, SyncResponse, SyncSet, MAX_FETCH_IDS};

/// Most reconciliation rounds in one session before giving up (a peer feeding us
/// endless rounds is misbehaving).
pub const MAX_ROUNDS: u32 = 64;

/// Most ids a relay session (see [`Session::start`]) keeps of what the peer lacks, to
/// hand on by gossip: a small catch-up reaches the other peers at once; the rest of a
/// big one is left to their own periodic anti-entropy, so a catch-up of 100,000
/// events does not become 100,000 gossip messages.
pub const MAX_RELAY: usize = 500;

/// Why a session ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the log.
    pub reason: String,
    /// The peer broke the protocol (invalid or unrequested events, bad messages); the
    /// driver penalises it.
    pub misbehaved: bool,
}

impl Failure {
    /// A failure that is nobody's fault (a refusal, a store error, a driver bug).
    pub fn benign(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            misbehaved: false,
        }
    }

    /// A failure the peer caused by breaking the protocol.
    pub fn misbehaved(reason: impl Into<String>) -> Self {
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
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request to the peer, then feed its answer to
    /// [`Session::on_response`].
    Send(SyncRequest),
    /// Find which of these ids we already hold (at most [`MAX_FETCH_IDS`]), then call
    /// [`Session::checked`].
    Check(Vec<EventId>),
    /// Validate and store these events (wire bytes, each one we asked for), then call
    /// [`Session::stored`].
    Store(Vec<Vec<u8>>),
    /// The session is complete.
    Done(Summary),
}

/// What one [`Session::on_response`] produced: the next step, and the peer's wall
/// clock when the response was a well-formed reconciliation round (only those count as
/// mesh-clock samples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The peer's uncorrected wall clock, ms since the epoch.
    pub peer_wall_ms: Option<u64>,
    /// What to do next.
    pub step: Step,
}

/// How storing a [`Step::Store`] batch went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// Events newly stored.
    pub new: usize,
    /// Events that failed validation (the peer misbehaved).
    pub rejected: usize,
    /// Events set aside as too far ahead of our clock.
    pub deferred: usize,
}

#[derive(Debug)]
enum State {
    /// Waiting for a reconciliation response.
    Reconciling,
    /// Waiting for [`Session::checked`] on these ids.
    Checking(Vec<EventId>),
    /// Waiting for the events of this fetch.
    Fetching(Vec<EventId>),
    /// Waiting for [`Session::stored`].
    Storing,
    /// Finished or failed: every further input is an error.
    Over,
}

/// One initiator-side sync with one peer.
pub struct Session {
    init: Initiator,
    state: State,
    /// Ids the peer holds that we still have to check and fetch.
    need: Vec<EventId>,
    /// Ids we hold that the peer lacks (kept only for a relay session, at most
    /// [`MAX_RELAY`]).
    have: Vec<EventId>,
    relay: bool,
    summary: Summary,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("need", &self.need.len())
            .field("relay", &self.relay)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts a session over our `set` (a shared snapshot: not copied), at our wall
    /// clock `wall_ms`; returns the first request. A `relay` session also keeps the
    /// ids the peer lacks (at most [`MAX_RELAY`]), for [`Session::lacking`].
    pub fn start(
        set: &SyncSet,
        relay: bool,
        wall_ms: u64,
    ) -> Result<(Session, SyncRequest), Failure> {
        let (init, message) =
            Initiator::start(set.clone()).map_err(|e| Failure::benign(e.to_string()))?;
        let session = Session {
            init,
            state: State::Reconciling,
            need: Vec::new(),
            have: Vec::new(),
            relay,
            summary: Summary::default(),
        };
        Ok((session, SyncRequest::Reconcile { wall_ms, message }))
    }

    /// Whether the session has finished or failed.
    pub fn is_over(&self) -> bool {
        matches!(self.state, State::Over)
    }

    /// What the session has counted so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Once a relay session is done: the ids we hold that the peer lacks (at most
    /// [`MAX_RELAY`]), to read from the store and publish by gossip. Empty for an
    /// ordinary session.
    pub fn lacking(&mut self) -> Vec<EventId> {
        std::mem::take(&mut self.have)
    }

    /// Feeds the peer's response; `wall_ms` is our wall clock now (for the next
    /// reconciliation request). An `Err` ends the session.
    pub fn on_response(&mut self, resp: SyncResponse, wall_ms: u64) -> Result<Output, Failure> {
        let r = self.response(resp, wall_ms);
        self.settle(r)
    }

    fn response(&mut self, resp: SyncResponse, wall_ms: u64) -> Result<Output, Failure> {
        let state = std::mem::replace(&mut self.state, State::Over);
        match (state, resp) {
            (_, SyncResponse::Refused { reason }) => {
                Err(Failure::benign(format!("peer refused: {reason}")))
            }
            (
                State::Reconciling,
                SyncResponse::Reconcile {
                    wall_ms: peer,
                    message,
                },
            ) => {
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
                self.summary.missing += round.need.len();
                self.summary.lacking += round.have.len();
                if self.relay {
                    let room = MAX_RELAY.saturating_sub(self.have.len());
                    self.have.extend(round.have.into_iter().take(room));
                }
                self.need.extend(round.need);
                let step = match round.next {
                    Some(message) => {
                        self.state = State::Reconciling;
                        Step::Send(SyncRequest::Reconcile { wall_ms, message })
                    }
                    None => self.next_check(),
                };
                Ok(Output {
                    peer_wall_ms: Some(peer),
                    step,
                })
            }
            (State::Fetching(asked), SyncResponse::Events { events }) => {
                // Only what we asked for: an unrequested (or undecodable) event is a
                // protocol breach.
                let asked_set: HashSet<EventId> = asked.iter().copied().collect();
                let mut received = HashSet::with_capacity(events.len());
                for bytes in &events {
                    match Event::decode(bytes) {
                        Ok(e) if asked_set.contains(&e.id()) => {
                            received.insert(e.id());
                        }
                        _ => {
                            let unrequested = events
                                .iter()
                                .filter(|b| {
                                    Event::decode(b).map_or(true, |e| !asked_set.contains(&e.id()))
                                })
                                .count();
                            return Err(Failure::misbehaved(format!(
                                "{unrequested} events that were not requested"
                            )));
                        }
                    }
                }
                // A response cut short by the byte budget: ask again for the rest (not
                // for what came, stored or deferred). An empty one means the peer no
                // longer has them (erased): stop asking.
                if !received.is_empty() {
                    self.need
                        .extend(asked.into_iter().filter(|id| !received.contains(id)));
                }
                self.state = State::Storing;
                Ok(Output {
                    peer_wall_ms: None,
                    step: Step::Store(events),
                })
            }
            (state, resp) => {
                let got = match resp {
                    SyncResponse::Reconcile { .. } => "a reconciliation message",
                    SyncResponse::Events { .. } => "events",
                    SyncResponse::Refused { .. } => "a refusal",
                };
                let waiting = match state {
                    State::Reconciling => "a reconciliation message",
                    State::Fetching(_) => "events",
                    State::Checking(_) | State::Storing => "nothing from the peer",
                    State::Over => "nothing: the session is over",
                };
                Err(Failure::misbehaved(format!(
                    "peer sent {got} while the session was waiting for {waiting}"
                )))
            }
        }
    }

    /// Answers a [`Step::Check`]: `held` are the asked ids we already hold (others are
    /// ignored). Returns the fetch request, another check, or the end.
    pub fn checked(&mut self, held: &[EventId]) -> Result<Step, Failure> {
        let r = match std::mem::replace(&mut self.state, State::Over) {
            State::Checking(asked) => {
                let held: HashSet<&EventId> = held.iter().collect();
                let ids: Vec<EventId> = asked.into_iter().filter(|i| !held.contains(i)).collect();
                if ids.is_empty() {
                    Ok(self.next_check())
                } else {
                    self.state = State::Fetching(ids.clone());
                    Ok(Step::Send(SyncRequest::Fetch { ids }))
                }
            }
            _ => Err(Failure::benign("checked() called while no check was asked")),
        };
        self.settle(r)
    }

    /// Answers a [`Step::Store`]: how storing the batch went. Rejected events end the
    /// session (the peer misbehaved); otherwise the fetching goes on.
    pub fn stored(&mut self, outcome: Stored) -> Result<Step, Failure> {
        let r = match std::mem::replace(&mut self.state, State::Over) {
            State::Storing => {
                self.summary.fetched += outcome.new;
                self.summary.rejected += outcome.rejected;
                self.summary.deferred += outcome.deferred;
                if outcome.rejected > 0 {
                    Err(Failure::misbehaved(format!(
                        "{} invalid events",
                        outcome.rejected
                    )))
                } else {
                    Ok(self.next_check())
                }
            }
            _ => Err(Failure::benign(
                "stored() called while nothing was to store",
            )),
        };
        self.settle(r)
    }

    /// The next batch of needed ids to check, or the end.
    fn next_check(&mut self) -> Step {
        let take = self.need.len().min(MAX_FETCH_IDS);
        if take == 0 {
            self.state = State::Over;
            return Step::Done(self.summary.clone());
        }
        let ids = self.need.split_off(self.need.len() - take);
        self.state = State::Checking(ids.clone());
        Step::Check(ids)
    }

    /// Any failure ends the session for good.
    fn settle<T>(&mut self, r: Result<T, Failure>) -> Result<T, Failure> {
        if r.is_err() {
            self.state = State::Over;
        }
        r
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
