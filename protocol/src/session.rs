//! The initiator's side of one sync session as a sans-IO state machine: reconcile,
//! then fetch what we lack in bounded batches.
//!
//! The session never touches a store, a socket or a clock. The driver (the node's
//! `node/src/net/sync.rs`) feeds it the peer's responses and the answers to its questions, and
//! carries out what it returns ([`Step`]):
//!
//! ```text
//! start ──► Send(Reconcile) ──► on_response(Reconcile) ─┬─► Send(Reconcile)   (another round)
//!                                                       └─► Check(ids) | Done
//! Check(ids) ──► checked(held, busy) ─┬─► Send(Fetch) ──► after_send() ──► Check | Wait
//!                                     ├─► Check(ids)   (none of that batch to fetch)
//!                                     └─► Wait | Done(summary)
//! on_response(Events) ──► Store(events) ──► stored(outcome) ──► Check | Wait | Done
//! ```
//!
//! Fetching is pipelined: up to [`WINDOW`] fetches are in flight, so the peer reads
//! and sends the next batches while we store one. Responses are fed in the order the
//! requests were sent. Ids another of our sessions is fetching (`busy`) are not asked
//! again, so a node syncing with several peers at once asks each id of one of them.
//!
//! Each input is accepted in exactly one state; anything else (a response out of
//! turn, garbled bytes, events nobody asked for) ends the session with a
//! [`Failure`], never a panic. Every request it returns respects the wire limits of
//! [`crate::sync`].

use std::collections::{HashSet, VecDeque};

use crate::event::{Event, EventId};
use crate::sync::{Initiator, SyncRequest, SyncResponse, SyncSet, MAX_FETCH_IDS};

/// Reconciliation rounds one session may take however little it learns; a session
/// that learns many ids gets more (see [`IDS_PER_EXTRA_ROUND`]). Past that budget a
/// peer feeding us rounds is misbehaving.
pub const MAX_ROUNDS: u32 = 64;

/// One more round is allowed for every this many ids the rounds so far have found
/// missing on either side. A round's message is at most
/// [`crate::sync::RECONCILE_FRAME_LIMIT`] bytes, so two big sets that differ in most
/// of their ids need a round per ~1,800 differing ids on top of the logarithmic ones:
/// two hubs of 100,000 different events each need about 110 rounds, and were cut off
/// at 64. A round that finds nothing adds nothing, so endless empty rounds still end.
pub const IDS_PER_EXTRA_ROUND: usize = 256;

/// Most ids a relay session (see [`Session::start`]) keeps of what the peer lacks, to
/// hand on by gossip: a small catch-up reaches the other peers at once; the rest of a
/// big one is left to their own periodic anti-entropy, so a catch-up of 100,000
/// events does not become 100,000 gossip messages.
pub const MAX_RELAY: usize = 500;

/// Most fetch requests in flight at once in one session: the peer reads the next
/// batch and the wire carries it while we store the last one. Four batches of
/// [`MAX_FETCH_IDS`] typical 300-byte events are about 300 KB in flight per peer.
pub const WINDOW: usize = 4;

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
    /// Ids left to another of our sessions that was still fetching them at the end.
    pub busy: usize,
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
    /// Nothing to do until the next response arrives (fetches are in flight).
    Wait,
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

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a reconciliation response.
    Reconciling,
    /// Fetching what we lack, up to [`WINDOW`] requests in flight.
    Fetching,
    /// Finished or failed: every further input is an error.
    Over,
}

/// What the session waits for from the driver (at most one question at a time).
#[derive(Debug)]
enum Asked {
    /// Nothing: the driver may feed a response or call [`Session::after_send`].
    Nothing,
    /// [`Session::checked`] on these ids.
    Check(Vec<EventId>),
    /// [`Session::stored`].
    Store,
}

/// One initiator-side sync with one peer.
pub struct Session {
    /// The reconciliation, while it runs: it holds a snapshot of our set, and every
    /// change of the store's index while a snapshot is alive copies the index (40 MB
    /// at a million events, every few thousand events filed), so it is let go as soon
    /// as reconciling ends, before the fetching (issue 28).
    init: Option<Initiator>,
    phase: Phase,
    asked: Asked,
    /// The ids of each fetch sent and not yet answered, oldest first (responses are
    /// fed in the order the requests were sent).
    in_flight: VecDeque<Vec<EventId>>,
    /// Ids the peer holds that we still have to check and fetch.
    need: Vec<EventId>,
    /// Ids another of our sessions was fetching when we checked them: looked at again
    /// once, when everything else is done.
    later: Vec<EventId>,
    /// Whether `later` was looked at again already.
    relooked: bool,
    /// Ids we hold that the peer lacks (kept only for a relay session, at most
    /// [`MAX_RELAY`]).
    have: Vec<EventId>,
    relay: bool,
    summary: Summary,
    /// Distinct ids found missing here so far, while reconciling (dropped after): a
    /// peer repeating the same ids earns no extra rounds and no longer `need` list.
    seen_need: HashSet<EventId>,
    /// How many ids our set holds: at most that many can be lacking at the peer.
    our_len: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("asked", &self.asked)
            .field("in_flight", &self.in_flight.len())
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
            init: Some(init),
            phase: Phase::Reconciling,
            asked: Asked::Nothing,
            in_flight: VecDeque::new(),
            need: Vec::new(),
            later: Vec::new(),
            relooked: false,
            have: Vec::new(),
            relay,
            summary: Summary::default(),
            seen_need: HashSet::new(),
            our_len: set.len(),
        };
        Ok((session, SyncRequest::Reconcile { wall_ms, message }))
    }

    /// Whether the session has finished or failed.
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
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

    /// Feeds the peer's response to the oldest request not yet answered (responses
    /// are fed in the order the requests were sent); `wall_ms` is our wall clock now
    /// (for the next reconciliation request). An `Err` ends the session.
    pub fn on_response(&mut self, resp: SyncResponse, wall_ms: u64) -> Result<Output, Failure> {
        let r = self.response(resp, wall_ms);
        self.settle(r)
    }

    fn response(&mut self, resp: SyncResponse, wall_ms: u64) -> Result<Output, Failure> {
        if let SyncResponse::Refused { reason } = resp {
            return Err(Failure::benign(format!("peer refused: {reason}")));
        }
        let free = matches!(self.asked, Asked::Nothing);
        match (self.phase, resp) {
            (
                Phase::Reconciling,
                SyncResponse::Reconcile {
                    wall_ms: peer,
                    message,
                },
            ) if free => {
                self.summary.rounds += 1;
                let learned = self.seen_need.len() + self.summary.lacking.min(self.our_len);
                let budget = MAX_ROUNDS.saturating_add(
                    u32::try_from(learned / IDS_PER_EXTRA_ROUND).unwrap_or(u32::MAX),
                );
                if self.summary.rounds > budget {
                    return Err(Failure::misbehaved(format!(
                        "more than {budget} reconciliation rounds for {learned} differing ids"
                    )));
                }
                let Some(init) = self.init.as_mut() else {
                    // Reconciling always has its initiator; kept total all the same.
                    return Err(Failure::benign("the reconciliation has ended"));
                };
                let round = init
                    .step(&message)
                    .map_err(|e| Failure::misbehaved(e.to_string()))?;
                self.summary.lacking += round.have.len();
                if self.relay {
                    let room = MAX_RELAY.saturating_sub(self.have.len());
                    self.have.extend(round.have.into_iter().take(room));
                }
                let before = self.need.len();
                self.need.extend(
                    round
                        .need
                        .into_iter()
                        .filter(|id| self.seen_need.insert(*id)),
                );
                self.summary.missing += self.need.len() - before;
                let step = match round.next {
                    Some(message) => Step::Send(SyncRequest::Reconcile { wall_ms, message }),
                    None => {
                        self.phase = Phase::Fetching;
                        self.init = None;
                        self.seen_need = HashSet::new();
                        self.advance()
                    }
                };
                Ok(Output {
                    peer_wall_ms: Some(peer),
                    step,
                })
            }
            (Phase::Fetching, SyncResponse::Events { events })
                if free && !self.in_flight.is_empty() =>
            {
                let asked = self.in_flight.pop_front().unwrap_or_default();
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
                self.asked = Asked::Store;
                Ok(Output {
                    peer_wall_ms: None,
                    step: Step::Store(events),
                })
            }
            (phase, resp) => {
                let got = match resp {
                    SyncResponse::Reconcile { .. } => "a reconciliation message",
                    SyncResponse::Events { .. } => "events",
                    SyncResponse::Refused { .. } => "a refusal",
                };
                let waiting = match (phase, &self.asked) {
                    (Phase::Over, _) => "nothing: the session is over",
                    (_, Asked::Check(_) | Asked::Store) => "nothing from the peer",
                    (Phase::Reconciling, _) => "a reconciliation message",
                    (Phase::Fetching, _) if self.in_flight.is_empty() => "nothing from the peer",
                    (Phase::Fetching, _) => "events",
                };
                Err(Failure::misbehaved(format!(
                    "peer sent {got} while the session was waiting for {waiting}"
                )))
            }
        }
    }

    /// Answers a [`Step::Check`]: `held` are the asked ids we already hold, `busy`
    /// those another of our sessions is fetching now (others in either list are
    /// ignored). Busy ids are not asked for now, and looked at once more when the rest
    /// is done: so concurrent sessions ask each id once. Returns the fetch request,
    /// another check, a wait or the end.
    pub fn checked(&mut self, held: &[EventId], busy: &[EventId]) -> Result<Step, Failure> {
        let r = match std::mem::replace(&mut self.asked, Asked::Nothing) {
            Asked::Check(asked) if self.phase == Phase::Fetching => {
                let held: HashSet<&EventId> = held.iter().collect();
                let busy: HashSet<&EventId> = busy.iter().collect();
                let mut ids = Vec::with_capacity(asked.len());
                for id in asked {
                    if held.contains(&id) {
                        continue;
                    }
                    if busy.contains(&id) {
                        // Looked at once more at the end; after that, left to the
                        // session fetching it (or to the next periodic sync).
                        if self.relooked {
                            self.summary.busy += 1;
                        } else {
                            self.later.push(id);
                        }
                        continue;
                    }
                    ids.push(id);
                }
                if ids.is_empty() {
                    Ok(self.advance())
                } else {
                    self.in_flight.push_back(ids.clone());
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
        let r = match std::mem::replace(&mut self.asked, Asked::Nothing) {
            Asked::Store if self.phase != Phase::Over => {
                self.summary.fetched += outcome.new;
                self.summary.rejected += outcome.rejected;
                self.summary.deferred += outcome.deferred;
                if outcome.rejected > 0 {
                    Err(Failure::misbehaved(format!(
                        "{} invalid events",
                        outcome.rejected
                    )))
                } else {
                    Ok(self.advance())
                }
            }
            _ => Err(Failure::benign(
                "stored() called while nothing was to store",
            )),
        };
        self.settle(r)
    }

    /// After carrying out a [`Step::Send`] of a fetch: what else the session wants
    /// now. While fewer than [`WINDOW`] fetches are in flight and ids remain, another
    /// [`Step::Check`] (leading to another fetch); otherwise [`Step::Wait`] (feed the
    /// next response) or [`Step::Done`]. A driver that never calls it keeps one
    /// request in flight.
    pub fn after_send(&mut self) -> Result<Step, Failure> {
        let r = match (self.phase, &self.asked) {
            (Phase::Fetching, Asked::Nothing) => Ok(self.advance()),
            (Phase::Reconciling, Asked::Nothing) => Ok(Step::Wait),
            _ => Err(Failure::benign(
                "after_send() called while the session waits for an answer, or is over",
            )),
        };
        self.settle(r)
    }

    /// While fetching: the next batch of needed ids to check if the window has room,
    /// else a wait for the responses in flight, else the end.
    fn advance(&mut self) -> Step {
        if self.in_flight.len() < WINDOW {
            if self.need.is_empty() && self.in_flight.is_empty() && !self.relooked {
                // Everything else is done: look once more at what another session
                // was fetching (most of it is stored by now).
                self.relooked = true;
                self.need = std::mem::take(&mut self.later);
            }
            let take = self.need.len().min(MAX_FETCH_IDS);
            if take > 0 {
                let ids = self.need.split_off(self.need.len() - take);
                self.asked = Asked::Check(ids.clone());
                return Step::Check(ids);
            }
        }
        if !self.in_flight.is_empty() {
            return Step::Wait;
        }
        self.phase = Phase::Over;
        Step::Done(self.summary.clone())
    }

    /// Any failure ends the session for good.
    fn settle<T>(&mut self, r: Result<T, Failure>) -> Result<T, Failure> {
        if r.is_err() {
            // Over for good: no question stays open (a late `stored()` or `checked()`
            // must not revive it).
            self.phase = Phase::Over;
            self.asked = Asked::Nothing;
        }
        r
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
