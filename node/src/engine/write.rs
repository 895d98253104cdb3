//! The write path: signing our events, validating everyone's, and filing them into
//! the store and the view under the daily quota and the bound on unknown kinds.

use aidmesh_protocol::body::{BodyKind, CheckIn, Outcome};
use aidmesh_protocol::quota::{self, admit_unknown, Admit, DAILY_EVENTS_PER_AUTHOR};
use aidmesh_protocol::validate::{validate, Rules, Verified};
use aidmesh_protocol::{AuthorId, Body, Event, Timestamp, ValidationError, View};
use tracing::warn;

use super::{BatchResult, Engine, IngestError, Ingested, NewEvent, Origin, State, BUILD_MS};
use crate::store::StoreError;

impl Engine {
    /// Signs a new event with this node's identity, stores it durably and announces it.
    pub fn post(&self, body: Body) -> Result<Event, IngestError> {
        let event = self.sign(&body)?;
        self.ingest_durable(event.bytes(), Origin::Local)?;
        Ok(event)
    }

    /// Signs and stores several new events with one flush at the end (taking back a
    /// flood: one fsync per erasure made thousands of them outlast the CLI's wait on an
    /// SD card). Stops at the first refusal; what was stored before it is flushed too.
    /// Returns how many were stored.
    pub fn post_all(&self, bodies: impl IntoIterator<Item = Body>) -> Result<usize, IngestError> {
        let mut stored = 0;
        let r = bodies.into_iter().try_for_each(|body| {
            self.ingest(self.sign(&body)?.bytes(), Origin::Local)?;
            stored += 1;
            Ok::<_, IngestError>(())
        });
        self.store.flush()?;
        r.map(|()| stored)
    }

    /// A new event of ours with `body`, stamped by our clock. Every limit is checked
    /// before signing: an oversized field is an error naming the field, never a panic.
    fn sign(&self, body: &Body) -> Result<Event, IngestError> {
        let now = self.now_ms();
        let mut st = self.lock();
        let ts = st.clock.now(now);
        Ok(Event::try_create(&self.identity, ts, body)?)
    }

    /// Records a welfare check-in. A "needs help" check-in also posts a linked need on
    /// the open board, as [`aidmesh_protocol::welfare::follow_up`] words it: the kind
    /// of help and the coarse area of where the person is, never who, which door or
    /// the volunteer's text (those stay in the check-in, behind the volunteer PIN).
    /// Returns the check-in and the need.
    pub fn check_in(&self, check: CheckIn) -> Result<(Event, Option<Event>), IngestError> {
        let help = match &check.outcome {
            Outcome::NeedsHelp(what) => Some(what.clone()),
            _ => None,
        };
        let person = check.person;
        let c = self.post(Body::CheckIn(check))?;
        let Some(what) = help else {
            return Ok((c, None));
        };
        let place = self
            .with_view(|v| v.person(&person))
            .map(|p| p.place())
            .unwrap_or_default();
        let need = self.post(Body::Need(aidmesh_protocol::welfare::follow_up(
            &what,
            &place,
            c.id(),
        )))?;
        Ok((c, Some(need)))
    }

    /// Validates and stores one event, then flushes it to disk.
    pub fn ingest_durable(&self, bytes: &[u8], origin: Origin) -> Result<Ingested, IngestError> {
        let r = self.ingest(bytes, origin)?;
        self.store.flush()?;
        Ok(r)
    }

    /// Validates and stores a batch with one flush at the end. Peers' events are
    /// validated before the engine lock is taken, in parallel across the cores (the
    /// Ed25519 check is most of the cost); only filing them takes the lock.
    pub fn ingest_batch(
        &self,
        batch: &[Vec<u8>],
        origin: Origin,
    ) -> Result<BatchResult, StoreError> {
        let mut out = BatchResult::default();
        let tally = |out: &mut BatchResult, r: Result<Ingested, IngestError>, bytes: &[u8]| {
            match r {
                Ok(Ingested::New(_)) => out.new += 1,
                Ok(_) => out.known += 1,
                Err(IngestError::Invalid(ValidationError::FromTheFuture { .. })) => {
                    if let Ok(e) = Event::decode(bytes) {
                        out.deferred.push(e.id());
                    }
                }
                Err(IngestError::Invalid(e)) => out.rejected.push(e.to_string()),
                Err(e @ IngestError::OverQuota { .. }) => out.rejected.push(e.to_string()),
                Err(IngestError::Store(e)) => return Err(e),
            }
            Ok(())
        };
        if origin == Origin::Local {
            // Local writes are checked against the view (rights on held targets),
            // which needs the lock: one at a time.
            for bytes in batch {
                tally(&mut out, self.ingest(bytes, origin), bytes)?;
            }
        } else {
            // A nearly full disk leaves peers' and imported events where they came from
            // (the batch fails as a whole; catch-up fetches it again once there is room).
            self.disk.admit(false)?;
            let now = self.now_ms();
            let rules = Rules::at(now);
            // Filed a chunk at a time as validation (on every core) hands chunks over
            // in order: while this thread files one, the next ones are checked. The
            // lock is let go after each chunk, so a page or a local post waits for a
            // few events' filing, not a whole batch's.
            validate_chunks(batch, &rules, |part, checked| {
                let mut announce = Vec::new();
                let mut st = self.lock();
                for (bytes, v) in part.iter().zip(checked) {
                    let r = match v {
                        Ok(v) => self.file(&mut st, v, origin, now, &mut announce),
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = tally(&mut out, r, bytes) {
                        drop(st);
                        self.announce(announce);
                        return Err(e);
                    }
                }
                drop(st);
                self.announce(announce);
                Ok(())
            })?;
        }
        self.store.flush()?;
        Ok(out)
    }

    /// Validates and stores one event (not yet flushed).
    pub fn ingest(&self, bytes: &[u8], origin: Origin) -> Result<Ingested, IngestError> {
        // Before anything is written: a full disk refuses local posts (HTTP 507) and
        // leaves peers' events with the peers until there is room.
        // Erasures are taken nearly to the last byte: they free space.
        let erasure = Event::decode(bytes).is_ok_and(|e| e.kind() == BodyKind::Redaction.code());
        if erasure {
            self.disk.admit_erasure()
        } else {
            self.disk.admit(origin == Origin::Local)
        }
        .map_err(StoreError::from)?;
        let now = self.now_ms();
        // Rights against held targets are checked for local writes only, under the
        // lock; see `aidmesh_protocol::TargetLookup` for why peers' events are not.
        // Theirs are validated before the lock is taken.
        let (mut st, verified) = if origin == Origin::Local {
            let st = self.lock();
            let v = validate(bytes, &Rules::at(now), &st.view)?;
            (st, v)
        } else {
            let v = validate(bytes, &Rules::at(now), &())?;
            (self.lock(), v)
        };
        let mut announce = Vec::new();
        let r = self.file(&mut st, verified, origin, now, &mut announce);
        drop(st);
        self.announce(announce);
        match r {
            // Our own write past the quota: refused, so that we never sign what
            // peers would drop.
            Ok(Ingested::OverQuota(_)) if origin == Origin::Local => Err(IngestError::OverQuota {
                limit: DAILY_EVENTS_PER_AUTHOR,
            }),
            r => r,
        }
    }

    /// Events `author` signed on the UTC day of `at` that count toward the daily quota.
    pub fn signed_on_day(&self, author: &AuthorId, at: Timestamp) -> u32 {
        let daily = self.daily.lock().unwrap_or_else(|p| p.into_inner());
        daily
            .get(&(*author, quota::day_of(at)))
            .map_or(0, |n| (*n).min(DAILY_EVENTS_PER_AUTHOR))
    }

    /// Whether the event in `bytes` (valid) is one its author may not sign any more
    /// today: the gossip checker does not forward it (it is not stored either).
    pub fn over_daily_quota(&self, bytes: &[u8]) -> bool {
        let Ok(event) = Event::decode(bytes) else {
            return false;
        };
        let body = event.body().ok().flatten();
        quota::counts_toward_daily(body.as_ref())
            && self.signed_on_day(&event.author(), event.timestamp()) >= DAILY_EVENTS_PER_AUTHOR
    }

    /// Tells subscribers about newly stored events (after the lock is released).
    fn announce(&self, events: Vec<NewEvent>) {
        for e in events {
            // No subscriber is fine (e.g. no page open, network not started yet).
            let _ = self.tx.send(e);
        }
    }

    /// Files one validated event: duplicate and erasure checks, the store (one write
    /// per tree, not yet flushed), the view. A new event is pushed to `announce`.
    fn file(
        &self,
        st: &mut State,
        verified: Verified,
        origin: Origin,
        now: u64,
        announce: &mut Vec<NewEvent>,
    ) -> Result<Ingested, IngestError> {
        let Verified { event, body } = verified;
        let id = event.id();
        if self.store.contains_at(event.timestamp(), &id)? {
            return Ok(Ingested::Duplicate(id));
        }
        if self.store.erased_kind(&id)?.is_some() {
            return Ok(Ingested::Erased(id));
        }
        if let Some(body) = &body {
            if self.covered_by_redaction(&st.view, &event, body)? {
                self.store.erase(&id, event.kind())?;
                return Ok(Ingested::Erased(id));
            }
        }
        let day = (event.author(), quota::day_of(event.timestamp()));
        let counted = quota::counts_toward_daily(body.as_ref());
        if counted {
            let mut daily = self.daily.lock().unwrap_or_else(|p| p.into_inner());
            let n = daily.entry(day).or_default();
            if *n >= DAILY_EVENTS_PER_AUTHOR {
                if *n == DAILY_EVENTS_PER_AUTHOR {
                    *n += 1; // logged once a day and author
                    warn!(
                        author = %event.author().short(),
                        limit = DAILY_EVENTS_PER_AUTHOR,
                        "an author signed its day's quota of events; more of its events of that day are not kept nor forwarded (a flood? see docs/security.md)"
                    );
                }
                return Ok(Ingested::OverQuota(id));
            }
        }
        let key = (event.timestamp(), id);
        if body.is_none() {
            // The per-author bound on events nobody here can read or redact.
            let held = st.unknown.entry(event.author()).or_default();
            match admit_unknown(held, key) {
                Admit::Keep => {}
                Admit::KeepDropping(later) => {
                    let kind = self
                        .store
                        .get(&later)?
                        .and_then(|b| Event::decode(&b).ok())
                        .map_or(0, |e| e.kind());
                    held.retain(|(_, i)| *i != later);
                    if self.store.erase(&later, kind)? {
                        self.compactor.request(false);
                    }
                }
                Admit::Drop => {
                    self.store.erase(&id, event.kind())?;
                    return Ok(Ingested::Erased(id));
                }
            }
        }
        // Checked just above, under the lock: no second look-up in the store.
        self.store.insert_new(&event)?;
        let newest = st.authors.entry(event.author()).or_default();
        *newest = (*newest).max(event.timestamp().millis());
        if counted {
            *self
                .daily
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(day)
                .or_default() += 1;
        }
        // A stamp before the build floor (an older node's clock in 1970) says nothing
        // about when it happened: remember when it reached us, to show that instead.
        if event.timestamp().millis() < BUILD_MS {
            self.store.set_arrival(&id, now)?;
            st.view.note_arrival(id, now);
        }
        if body.is_none() {
            st.unknown.entry(event.author()).or_default().insert(key);
        }
        st.clock.observe(event.timestamp(), now);
        st.digest = None;
        st.generation += 1;
        if let Some(body) = &body {
            let touched = View::heads_touched(&event, body);
            st.head_changes.note(st.generation, touched);
            st.view.insert(&event, body);
            if let Some(log) = &mut st.rebuild_log {
                log.push((event.clone(), body.clone()));
            }
            if matches!(body, Body::Redaction(_)) {
                self.purge(st)?;
            }
        }
        announce.push(NewEvent {
            event,
            body,
            origin,
        });
        Ok(Ingested::New(id))
    }
}

/// Most events filed under one hold of the engine lock by [`Engine::ingest_batch`].
const FILE_CHUNK: usize = 64;

/// Validates peers' events (no target look-up, see
/// [`aidmesh_protocol::TargetLookup`]) on every core, [`FILE_CHUNK`] at a time, and
/// hands each chunk with its results to `file` in input order, on this thread, while
/// the next chunks are being validated: decoding and the Ed25519 check are
/// independent per event, and filing (the store and the view, under the engine's
/// lock) overlaps them instead of waiting for the whole batch (issue 28). Stops at
/// the first error `file` returns.
///
/// Each event is checked with `verify_strict` on its own, not with
/// `ed25519_dalek::verify_batch`: its cofactorless equation with coefficients derived
/// from the batch can accept, about one time in eight per try, a crafted signature
/// whose points carry a small-torsion component that `verify_strict` rejects. Whether
/// such an event were stored would then depend on which batch it arrived in, and two
/// nodes could hold different sets for good.
fn validate_chunks<E>(
    batch: &[Vec<u8>],
    rules: &Rules,
    mut file: impl FnMut(&[Vec<u8>], Vec<Result<Verified, ValidationError>>) -> Result<(), E>,
) -> Result<(), E> {
    /// Below this, starting threads costs more than it saves.
    const MIN_PARALLEL: usize = 64;
    let one = |bytes: &Vec<u8>| validate(bytes, rules, &());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks: Vec<&[Vec<u8>]> = batch.chunks(FILE_CHUNK).collect();
    if cores < 2 || batch.len() < MIN_PARALLEL {
        for part in chunks {
            file(part, part.iter().map(one).collect())?;
        }
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut workers = 0;
        for _ in 0..cores {
            let (tx, next, chunks) = (tx.clone(), &next, &chunks);
            let started = std::thread::Builder::new()
                .name("validate".into())
                .spawn_scoped(s, move || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(part) = chunks.get(i) else { break };
                    // The receiver gone (an error stopped the filing): stop too.
                    if tx
                        .send((i, part.iter().map(one).collect::<Vec<_>>()))
                        .is_err()
                    {
                        break;
                    }
                });
            workers += usize::from(started.is_ok());
        }
        drop(tx);
        let mut ready = std::collections::BTreeMap::new();
        let mut want = 0;
        while want < chunks.len() {
            if let Some(checked) = ready.remove(&want) {
                file(chunks[want], checked)?;
                want += 1;
                continue;
            }
            match (workers > 0).then(|| rx.recv().ok()).flatten() {
                Some((i, checked)) => {
                    ready.insert(i, checked);
                }
                // No thread could be started, or one died (a panic in validation
                // would be a bug): this thread validates what is left.
                None => {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match chunks.get(i) {
                        Some(part) => {
                            ready.insert(i, part.iter().map(one).collect());
                        }
                        None => {
                            // Taken by a worker that is gone: validate it here.
                            let part = chunks[want];
                            ready.insert(want, part.iter().map(one).collect());
                        }
                    }
                }
            }
        }
        Ok(())
    })
}
