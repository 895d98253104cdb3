//! A long history, two hubs: how the real sync session ([`Session`]) scales with the
//! number of events both already hold. The town simulation gives every hub its own
//! store, which caps it at tens of thousands of events; here the common history is
//! `base` ids that both sets hold (synthetic: random ids at increasing times, never
//! fetched, so never signed), and the `missing` events the returning hub lacks are
//! real signed needs written in the last `away_h` hours. The session, the
//! responder's [`SyncSet::respond`] and the fetches are the node's own code; the links
//! are not simulated: the report gives rounds and bytes, and the CPU time both sides
//! spent, measured.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use aidmesh_protocol::session::{Session, Step, Stored};
use aidmesh_protocol::sync::{SyncRequest, SyncResponse, SyncSet, MAX_EVENTS_RESPONSE_BYTES};
use aidmesh_protocol::{Body, Category, Event, EventId, Identity, Place, Post, Timestamp, Urgency};

use super::bytes::{events_bytes, fetch_bytes, reconcile_bytes, STREAM};
use super::{Rng, EPOCH_MS};

/// What one catch-up over a long history cost.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Ids both hubs held.
    pub base: usize,
    /// Events the returning hub lacked.
    pub missing: usize,
    /// Reconciliation rounds.
    pub rounds: u32,
    /// Reconciliation bytes: sent by the returning hub, received by it.
    pub reconcile: (u64, u64),
    /// Fetch requests sent.
    pub fetches: usize,
    /// Fetch bytes: requests sent, events received.
    pub fetch: (u64, u64),
    /// Events stored.
    pub stored: usize,
    /// The missing events' own bytes.
    pub event_bytes: u64,
    /// CPU seconds: building the two sets, the reconciliation (both sides), the fetches.
    pub secs: (f64, f64, f64),
    /// Peak resident memory of this process, MB (`VmHWM`).
    pub peak_mb: f64,
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.reconcile.0 + self.reconcile.1 + self.fetch.0 + self.fetch.1;
        writeln!(
            f,
            "history {} + {} missing: {} rounds, reconcile {} B out / {} B in ({:.1} B per missing event), {} fetches ({} B out, {} B in), {} stored; {:.2}x the missing events' {} B; CPU: sets {:.2} s, reconcile {:.2} s, fetch {:.2} s; peak RSS {:.0} MB",
            self.base,
            self.missing,
            self.rounds,
            self.reconcile.0,
            self.reconcile.1,
            (self.reconcile.0 + self.reconcile.1) as f64 / self.missing.max(1) as f64,
            self.fetches,
            self.fetch.0,
            self.fetch.1,
            self.stored,
            total as f64 / self.event_bytes.max(1) as f64,
            self.event_bytes,
            self.secs.0,
            self.secs.1,
            self.secs.2,
            self.peak_mb
        )
    }
}

fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A need of 120 characters of details, as the town's.
fn need(who: &Identity, wall_ms: u64, n: usize) -> Event {
    let details: String = (0..120)
        .map(|i| (b'a' + ((i + n) % 26) as u8) as char)
        .collect();
    let body = Body::Need(Post {
        title: format!("Drinking water for 4 people, request {n:08}"),
        category: Category::Water,
        details,
        quantity: Some(20),
        unit: "l".into(),
        urgency: Urgency::Normal,
        place: Place {
            label: format!("Hub {:04}", n % 3_000),
            coords: None,
        },
        contact: String::new(),
        expires_ms: None,
        related: None,
    });
    Event::create(who, Timestamp(wall_ms << 16), &body)
}

/// One hub back after `away_h` hours catches up with a peer: both hold `base` events
/// written over the `span_days` before it left; the peer also holds `missing` written
/// while it was away.
pub fn history(base: usize, missing: usize, span_days: u64, away_h: f64, seed: u64) -> History {
    let mut rng = Rng::new(seed ^ 0x6869_7374_6f72_7900);
    let t0 = Instant::now();
    let span_ms = span_days * 86_400_000;
    let left_ms = EPOCH_MS + span_ms;
    // Increasing times over the span, random ids (the id is a hash in the node).
    let mut items: Vec<(Timestamp, EventId)> = (0..base)
        .map(|i| {
            let ms = EPOCH_MS + (i as u64 * span_ms) / base.max(1) as u64;
            let mut id = [0u8; 32];
            for c in id.chunks_mut(8) {
                c.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
            (Timestamp((ms << 16) | (i as u64 & 0xffff)), EventId(id))
        })
        .collect();
    let authors: Vec<Identity> = (0..16u8)
        .map(|i| Identity::from_seed([i.wrapping_add(seed as u8); 32]))
        .collect();
    let away_ms = (away_h * 3_600_000.0) as u64;
    let new: Vec<Event> = (0..missing)
        .map(|i| {
            let ms = left_ms + (i as u64 * away_ms) / missing.max(1) as u64;
            need(&authors[i % authors.len()], ms, i)
        })
        .collect();
    let ours = SyncSet::new(items.iter().copied()).expect("our set");
    items.extend(new.iter().map(|e| (e.timestamp(), e.id())));
    let theirs = SyncSet::new(items).expect("their set");
    let wires: HashMap<EventId, &[u8]> = new.iter().map(|e| (e.id(), e.bytes())).collect();
    let event_bytes: u64 = new.iter().map(|e| e.bytes().len() as u64).sum();
    let sets_s = t0.elapsed().as_secs_f64();

    let wall = left_ms + away_ms;
    let (mut reconcile, mut fetch, mut fetches, mut stored) = ((0, 0), (0, 0), 0, 0);
    let (mut rec_s, mut fetch_s) = (0.0, 0.0);
    let (mut session, first) = Session::start(&ours, false, wall).expect("a session");
    let mut queue = vec![first];
    let mut rounds = 0;
    // The driver, as `node/src/net/sync.rs`: requests answered in order.
    while !queue.is_empty() {
        let req = queue.remove(0);
        let resp = match req {
            SyncRequest::Reconcile { message, .. } => {
                let tr = Instant::now();
                reconcile.0 += reconcile_bytes(&message) + STREAM;
                let reply = theirs.respond(&message).expect("a reply");
                reconcile.1 += reconcile_bytes(&reply) + STREAM;
                rec_s += tr.elapsed().as_secs_f64();
                SyncResponse::Reconcile {
                    wall_ms: wall,
                    message: reply,
                }
            }
            SyncRequest::Fetch { ids } => {
                fetches += 1;
                fetch.0 += fetch_bytes(ids.len()) + 4 + STREAM;
                let mut events = Vec::new();
                let mut total = 0;
                for id in ids {
                    if let Some(w) = wires.get(&id) {
                        if total + w.len() > MAX_EVENTS_RESPONSE_BYTES {
                            break;
                        }
                        total += w.len();
                        events.push(w.to_vec());
                    }
                }
                fetch.1 += events_bytes(events.iter().map(|e| e.len() as u64)) + 4 + STREAM;
                SyncResponse::Events { events }
            }
        };
        let mut step = session.on_response(resp, wall).map(|o| o.step);
        loop {
            step = match step {
                Ok(Step::Send(req)) => {
                    queue.push(req);
                    session.after_send()
                }
                Ok(Step::Check(_)) => session.checked(&[], &[]),
                Ok(Step::Store(events)) => {
                    let tf = Instant::now();
                    let new = events.iter().filter(|b| Event::decode(b).is_ok()).count();
                    fetch_s += tf.elapsed().as_secs_f64();
                    stored += new;
                    session.stored(Stored {
                        new,
                        ..Stored::default()
                    })
                }
                Ok(Step::Wait) => break,
                Ok(Step::Done(s)) => {
                    rounds = s.rounds;
                    break;
                }
                Err(e) => panic!("the session failed: {e:?}"),
            };
        }
    }
    History {
        base,
        missing,
        rounds,
        reconcile,
        fetches,
        fetch,
        stored,
        event_bytes,
        secs: (sets_s, rec_s, fetch_s),
        peak_mb: peak_mb(),
    }
}
