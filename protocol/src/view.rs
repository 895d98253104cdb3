//! The board: a pure function of a *set* of events.
//!
//! [`View::insert`] only files an event under the thing it is about; every question
//! ([`View::items`], [`View::people`], ...) is answered by folding the filed events in
//! one total order, `(timestamp, author, id)`. So the answers depend only on which
//! events are present, not on the order they arrived in or how often: two nodes with
//! the same set show the same board. The property tests below check exactly that.
//!
//! ## Status rules for needs and offers
//! Status changes on one item are applied in `(timestamp, author, id)` order:
//!
//! | from                         | change      | to          | who        |
//! |------------------------------|-------------|-------------|------------|
//! | open                         | claimed     | claimed     | anyone     |
//! | open, claimed                | in-progress | in-progress | anyone     |
//! | open, claimed, in-progress   | fulfilled   | fulfilled   | anyone     |
//! | open, claimed, in-progress   | withdrawn   | withdrawn   | the author |
//! | claimed, in-progress, fulfilled | reopened | open        | anyone     |
//! | withdrawn                    | reopened    | open        | the author |
//!
//! Any other change is kept in the history but not applied: a terminal "fulfilled"
//! beats a later "claimed", a second claim does not steal the first, and nobody but the
//! author can withdraw or revive a withdrawn post.
//!
//! A need raised by a "needs help" check-in gets one more change, derived rather than
//! posted: the first later check-in on the same person whose outcome is not "needs
//! help" counts as "fulfilled" at that check-in's place in the order
//! (`View::later_check`; docs/protocol.md, section 7.2).
//!
//! ## Alerts
//! Status changes on an alert: "withdrawn" by its author cancels it (not shown),
//! "fulfilled" by anyone marks it all clear, "reopened" makes it active again (by the
//! author only when it was cancelled). See [`View::alerts`].
//!
//! ## Redaction
//! A redaction removes its target from every answer when the redaction's author is the
//! target's author. Redacting a person also removes every check-in on them. Redactions
//! cannot be undone.
//!
//! ## Why one file of about 1,000 lines
//! The filing ([`View::insert`]) and every fold that answers from it share one private
//! index and one order; the status, alert and redaction rules above are each a few
//! lines inside those folds. Split by kind, each rule would sit away from the index it
//! reads and the order that makes two nodes agree, which is what a reader must check.
//! The tests are in `view_tests.rs` and `view_sharing_tests.rs`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::body::{
    Alert, Body, BodyKind, CheckIn, HubAnnounced, OfficialAlert, Outcome, PersonRegistered, Place,
    Post, Status, StatusChange, Urgency,
};
use crate::category::Category;
use crate::event::{Event, EventId};
use crate::identity::AuthorId;
use crate::time::Timestamp;
use crate::validate::{TargetInfo, TargetLookup};

#[path = "view_map.rs"]
mod map;
use map::SortedMap;

/// Total order of events within one item: timestamp, then author, then id.
type Key = (Timestamp, AuthorId, EventId);

fn key(e: &Event) -> Key {
    (e.timestamp(), e.author(), e.id())
}

/// Events on one thing in [`Key`] order: a sorted vector of exactly its length. Most
/// needs and offers get one or two status changes, and a `BTreeMap` spends a whole
/// node (room for 11, about 1.2 KB here) on the first (issue 28).
type InOrder<T> = Vec<(Key, T)>;

/// Files `t` at `k` in `on` (replacing what is there: the same key is the same event).
fn file_in_order<T>(on: &mut InOrder<T>, k: Key, t: T) {
    match on.binary_search_by(|(x, _)| x.cmp(&k)) {
        Ok(i) => on[i].1 = t,
        Err(i) => {
            on.reserve_exact(1);
            on.insert(i, (k, t));
        }
    }
}

/// The current state of a need or offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemState {
    /// Nobody has taken it on.
    Open,
    /// Someone has.
    Claimed,
    /// Work started.
    InProgress,
    /// Done.
    Fulfilled,
    /// Taken back by its author.
    Withdrawn,
}

impl ItemState {
    /// Name in the API ("open", "claimed", "in-progress", "fulfilled", "withdrawn").
    pub fn name(self) -> &'static str {
        match self {
            ItemState::Open => "open",
            ItemState::Claimed => "claimed",
            ItemState::InProgress => "in-progress",
            ItemState::Fulfilled => "fulfilled",
            ItemState::Withdrawn => "withdrawn",
        }
    }

    /// Whether the item still wants attention (open, claimed or in progress).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ItemState::Open | ItemState::Claimed | ItemState::InProgress
        )
    }
}

/// One status change as shown in an item's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The status-change event.
    pub id: EventId,
    /// Who made it.
    pub author: AuthorId,
    /// When.
    pub at: Timestamp,
    /// What it asked for.
    pub status: Status,
    /// Its note.
    pub note: String,
    /// Whether the rules applied it.
    pub applied: bool,
}

/// A need or offer with its folded status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The posting event.
    pub id: EventId,
    /// [`BodyKind::Need`] or [`BodyKind::Offer`].
    pub kind: BodyKind,
    /// Who posted it.
    pub author: AuthorId,
    /// When it was posted.
    pub created: Timestamp,
    /// What was posted.
    pub post: Post,
    /// Current state.
    pub state: ItemState,
    /// Who claimed it (or started work), while claimed or in progress.
    pub holder: Option<AuthorId>,
    /// Past its `expires_ms` at the time asked, while still active.
    pub expired: bool,
    /// Every status change, in rule order.
    pub history: Vec<Change>,
    /// When this node stored it (ms, local), for an item stamped before the build
    /// floor (see [`View::note_arrival`]); `None` otherwise.
    pub arrived: Option<u64>,
}

impl Item {
    /// The last applied change, if any.
    pub fn last_change(&self) -> Option<&Change> {
        self.history.iter().rev().find(|c| c.applied)
    }

    /// The applied change that made [`Item::holder`] the holder: it says since when and,
    /// through [`Change::by`], by what name. Follows the same rules as `holder`.
    pub fn holder_change(&self) -> Option<&Change> {
        let mut held: Option<&Change> = None;
        for c in self.history.iter().filter(|c| c.applied) {
            held = match c.status {
                Status::Claimed => Some(c),
                Status::InProgress => held.or(Some(c)),
                _ => None,
            };
        }
        held
    }
}

impl Change {
    /// The name this change says acted (its note's `by: NAME` line), if any.
    pub fn by(&self) -> Option<&str> {
        StatusChange::split_note(&self.note).0
    }

    /// The note without its `by: NAME` line.
    pub fn text(&self) -> &str {
        StatusChange::split_note(&self.note).1
    }
}

/// One check-in as shown on a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check-in event.
    pub id: EventId,
    /// Whose node recorded it.
    pub author: AuthorId,
    /// When.
    pub at: Timestamp,
    /// What was found, note and volunteer.
    pub check: CheckIn,
}

/// A registered person with their check-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonView {
    /// The registration event.
    pub id: EventId,
    /// Whose node registered them.
    pub author: AuthorId,
    /// When.
    pub registered: Timestamp,
    /// The registration.
    pub person: PersonRegistered,
    /// All check-ins, oldest first.
    pub checks: Vec<Check>,
    /// Whether they agreed to be shared with responders: the newest sharing event on
    /// them by the hub that registered them (see [`crate::body::Sharing`]); no without
    /// one.
    pub shares_with_responders: bool,
}

impl PersonView {
    /// The newest check-in.
    pub fn latest(&self) -> Option<&Check> {
        self.checks.last()
    }

    /// The newest "safe" check-in.
    pub fn last_safe(&self) -> Option<&Check> {
        self.checks
            .iter()
            .rev()
            .find(|c| c.check.outcome == Outcome::Safe)
    }

    /// Where the person is now: the place named by the newest "moved" check-in (a
    /// label only; the registered position no longer applies), else the registered
    /// place. A pure function of the check-ins, so every node shows the same place.
    pub fn place(&self) -> Place {
        self.checks
            .iter()
            .rev()
            .find_map(|c| match &c.check.outcome {
                Outcome::Moved(to) => Some(Place {
                    label: to.clone(),
                    coords: None,
                }),
                _ => None,
            })
            .unwrap_or_else(|| self.person.place.clone())
    }

    /// When the next check is due, in wall-clock ms: the last safe check (or the
    /// registration) plus the interval.
    pub fn due_ms(&self) -> u64 {
        let from = self.last_safe().map_or(self.registered, |c| c.at);
        from.millis()
            .saturating_add(u64::from(self.person.check_every_secs) * 1000)
    }
}

/// A hub announcement (the newest per author and name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubView {
    /// The announcement event.
    pub id: EventId,
    /// Who announced it.
    pub author: AuthorId,
    /// When.
    pub at: Timestamp,
    /// The announcement.
    pub hub: HubAnnounced,
}

/// Where an alert stands (see [`View::alerts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    /// In force.
    Active,
    /// Someone marked the threat over ("fulfilled" status change on the alert).
    AllClear,
    /// Its author took it back ("withdrawn" on the alert); not shown.
    Cancelled,
}

impl AlertState {
    /// Name in the API ("active", "all-clear", "cancelled").
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Active => "active",
            AlertState::AllClear => "all-clear",
            AlertState::Cancelled => "cancelled",
        }
    }
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertView {
    /// The alert event.
    pub id: EventId,
    /// Who raised it.
    pub author: AuthorId,
    /// When.
    pub at: Timestamp,
    /// The alert.
    pub alert: Alert,
    /// Active or all clear (cancelled alerts are not listed).
    pub state: AlertState,
    /// The applied change that set the state (all clear), if any.
    pub ended: Option<Change>,
    /// For an official alert (kind 9): its issuer, urgency and every language.
    pub official: Option<OfficialAlert>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Filed<T> {
    id: EventId,
    author: AuthorId,
    at: Timestamp,
    body: T,
}

impl<T: Clone> Filed<T> {
    fn new(e: &Event, body: &T) -> Self {
        Filed {
            id: e.id(),
            author: e.author(),
            at: e.timestamp(),
            body: body.clone(),
        }
    }
}

/// A need or offer as the view keeps it: the index an answer filters and sorts on,
/// 24 bytes, never the post itself. The post is read back from the view's
/// [`PostSource`] (the node's store) when an answer shows it, or, in a view without
/// one, from the encoded copy in [`View::kept`]. Its `related` check-in, which few
/// posts have, is in [`View::related`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct PostRecord {
    at: Timestamp,
    /// Its post's `expires_ms` when [`EXPIRES`] is set, else 0.
    expires_ms: u64,
    /// Index into [`Authors`]: a few dozen authors write most posts.
    author: u32,
    category: Category,
    urgency: Urgency,
    /// [`OFFER`], [`EXPIRES`], [`RELATED`].
    flags: u8,
}

/// [`PostRecord::flags`] and [`ItemHead`]'s: an offer (else a need).
const OFFER: u8 = 1;
/// The post has an `expires_ms`.
const EXPIRES: u8 = 2;
/// The post has a `related` check-in ([`View::related`]).
const RELATED: u8 = 4;
/// [`ItemHead`]'s: past its expiry at the time folded.
const EXPIRED: u8 = 8;

impl PostRecord {
    fn kind(&self) -> BodyKind {
        if self.flags & OFFER != 0 {
            BodyKind::Offer
        } else {
            BodyKind::Need
        }
    }

    fn expires_ms(&self) -> Option<u64> {
        (self.flags & EXPIRES != 0).then_some(self.expires_ms)
    }
}

/// Where a view reads a need or offer's post back when it shows the item: the node
/// implements it over its store, tests over a map. With one set
/// ([`View::with_source`]) the view keeps no post in memory.
pub trait PostSource: Send + Sync {
    /// The post of the need or offer `id`, or `None` if it is not held (or cannot be
    /// read: the item is then left out of the answer).
    fn post(&self, id: &EventId) -> Option<Post>;
}

/// The view's post source, if any. Not part of what a view *is*: two views of the
/// same events are equal whether or not they read their posts from a source.
#[derive(Clone, Default)]
struct Source(Option<std::sync::Arc<dyn PostSource>>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Source(set)"
        } else {
            "Source(none)"
        })
    }
}

/// Distinct authors of posts, each stored once; records hold an index. In the start
/// file ([`crate::start_file`]) only the list is written, in its order (the numbering
/// is kept exactly); the index is built again when it is read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "Vec<AuthorId>", try_from = "Vec<AuthorId>")]
struct Authors {
    list: Vec<AuthorId>,
    index: BTreeMap<AuthorId, u32>,
}

impl From<Authors> for Vec<AuthorId> {
    fn from(a: Authors) -> Self {
        a.list
    }
}

impl TryFrom<Vec<AuthorId>> for Authors {
    type Error = &'static str;

    fn try_from(list: Vec<AuthorId>) -> Result<Self, Self::Error> {
        let mut index = BTreeMap::new();
        for (i, a) in list.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| "more authors than a view numbers")?;
            if index.insert(*a, i).is_some() {
                return Err("an author numbered twice");
            }
        }
        Ok(Authors { list, index })
    }
}

impl Authors {
    fn intern(&mut self, a: AuthorId) -> u32 {
        if let Some(i) = self.index.get(&a) {
            return *i;
        }
        // More than 4 billion distinct authors cannot be held in memory anyway.
        let i = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        self.list.push(a);
        self.index.insert(a, i);
        i
    }

    fn get(&self, i: u32) -> AuthorId {
        // Every index in a record came from `intern` on this same table.
        self.list
            .get(i as usize)
            .copied()
            .unwrap_or(AuthorId([0; 32]))
    }
}

/// An author of posts as a view numbers them ([`ItemHead::author`]); the view names
/// them ([`View::author`]). Numbers stay the same for the life of a view and in the
/// views that replace it when the node rebuilds ([`View::number_authors_as`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthorIndex(u32);

/// The fields of a need or offer an answer filters and sorts on, folded at a time,
/// without its post (see [`View::heads`]). 48 bytes: a node keeps one for every item,
/// sorted, for its lists (issue 28); when a head stops being true is asked of the view
/// ([`View::heads_until`], [`View::head_until`]), not kept in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemHead {
    /// The posting event.
    pub id: EventId,
    /// When it was posted.
    pub created: Timestamp,
    /// Who posted it, as the view numbers authors.
    author: AuthorIndex,
    /// Its category.
    pub category: Category,
    /// Its urgency.
    pub urgency: Urgency,
    /// Current state.
    pub state: ItemState,
    /// [`OFFER`], [`EXPIRED`].
    flags: u8,
}

impl ItemHead {
    /// [`BodyKind::Need`] or [`BodyKind::Offer`].
    pub fn kind(&self) -> BodyKind {
        if self.flags & OFFER != 0 {
            BodyKind::Offer
        } else {
            BodyKind::Need
        }
    }

    /// Past its `expires_ms` at the time asked, while still active.
    pub fn expired(&self) -> bool {
        self.flags & EXPIRED != 0
    }

    /// Who posted it: [`View::author`] names them.
    pub fn author(&self) -> AuthorIndex {
        self.author
    }
}

/// When `head`, folded from record `p`, stops being true by the clock alone: its
/// post's `expires_ms` while it is active and not yet expired.
fn live_expiry(head: &ItemHead, p: &PostRecord) -> Option<u64> {
    (head.state.is_active() && !head.expired())
        .then(|| p.expires_ms())
        .flatten()
}

/// The set of understood events, filed by what they are about.
///
/// Serialisable for the node's start file ([`crate::start_file`]): everything but its
/// [`PostSource`], which the reader sets again ([`View::set_source`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct View {
    /// Status changes and redactions by id (their author and kind, for
    /// [`TargetLookup`]); every other kind is found in its own map.
    others: BTreeMap<EventId, TargetInfo>,
    /// Needs and offers (issue 28: a sorted vector, about 56 bytes an item).
    posts: SortedMap<EventId, PostRecord>,
    /// Authors of `posts`.
    authors: Authors,
    /// The check-in a need or offer was raised by (its post's `related`), for the
    /// posts that have one ([`RELATED`]).
    related: BTreeMap<EventId, EventId>,
    /// Posts encoded (postcard), in a view without a [`PostSource`] only.
    kept: BTreeMap<EventId, Box<[u8]>>,
    /// Where posts are read back from, if set. Not written to the start file.
    #[serde(skip)]
    source: Source,
    /// Status changes by target, in `(timestamp, author, id)` order ([`InOrder`]).
    changes: BTreeMap<EventId, InOrder<(Status, String)>>,
    people: BTreeMap<EventId, Filed<PersonRegistered>>,
    checkins: BTreeMap<EventId, BTreeMap<Key, CheckIn>>,
    hubs: BTreeMap<EventId, Filed<HubAnnounced>>,
    alerts: BTreeMap<EventId, Filed<Alert>>,
    /// The CAP details of official alerts, by id (also in `alerts`).
    official: BTreeMap<EventId, OfficialAlert>,
    /// target → (redaction id → redaction author)
    redactions: BTreeMap<EventId, BTreeMap<EventId, AuthorId>>,
    /// check-in → (person, check-in author), to follow a post's `related` link
    checkin_of: BTreeMap<EventId, (EventId, AuthorId)>,
    /// person → sharing answers in `(timestamp, author, id)` order
    sharing: BTreeMap<EventId, BTreeMap<Key, bool>>,
    /// When this node stored events stamped before the build floor (ms, the node's
    /// time): local to the node, noted by it, never part of what converges.
    arrived: BTreeMap<EventId, u64>,
}

impl View {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty view that keeps no post in memory and reads each from `source` when
    /// an answer shows it. Answers are the same as a view without one, as long as
    /// `source` gives back the post of every need and offer filed.
    pub fn with_source(source: std::sync::Arc<dyn PostSource>) -> Self {
        View {
            source: Source(Some(source)),
            ..View::default()
        }
    }

    /// Reads posts from `source` from now on (a view read back from the start file has
    /// none: [`crate::start_file`]). A copy kept in memory is dropped: with a source
    /// the view keeps no post.
    pub fn set_source(&mut self, source: std::sync::Arc<dyn PostSource>) {
        self.source = Source(Some(source));
        self.kept = BTreeMap::new();
    }

    /// Whether what the answers rely on holds, for a view read from outside (the
    /// start file): the needs and offers sorted, each naming an author of the table,
    /// each item's status changes in order. A view built by [`View::insert`] always
    /// passes.
    pub(crate) fn check_well_formed(&self) -> Result<(), &'static str> {
        if !self.posts.is_well_formed() {
            return Err("the needs and offers are not in order");
        }
        let authors = self.authors.list.len();
        if self.posts.iter().any(|(_, p)| p.author as usize >= authors) {
            return Err("a need or offer names an author the view does not number");
        }
        if !self
            .changes
            .values()
            .all(|on| on.windows(2).all(|w| w[0].0 < w[1].0))
        {
            return Err("an item's status changes are not in order");
        }
        Ok(())
    }

    /// The check-in need or offer `id` (filed as `p`) was raised by, if any.
    fn related_of(&self, id: &EventId, p: &PostRecord) -> Option<EventId> {
        if p.flags & RELATED == 0 {
            return None;
        }
        self.related.get(id).copied()
    }

    /// The author a head names ([`ItemHead::author`]).
    pub fn author(&self, a: AuthorIndex) -> AuthorId {
        self.authors.get(a.0)
    }

    /// How this view numbers `author`, if it filed a post of theirs: to compare
    /// with [`ItemHead::author`] without naming every head's author.
    pub fn author_index(&self, author: &AuthorId) -> Option<AuthorIndex> {
        self.authors.index.get(author).copied().map(AuthorIndex)
    }

    /// Numbers this view's authors as `old` does (and those `old` does not know after
    /// its own), for a view built again from the store that replaces `old`: heads
    /// folded from `old` and kept (the node's lists keep theirs from one change to the
    /// next) then still name the same authors in this view. Changes no answer.
    pub fn number_authors_as(&mut self, old: &View) {
        let mut table = old.authors.clone();
        let map: Vec<u32> = self.authors.list.iter().map(|a| table.intern(*a)).collect();
        for p in self.posts.values_mut() {
            // Every index in a record came from this view's table.
            p.author = map.get(p.author as usize).copied().unwrap_or(p.author);
        }
        self.authors = table;
    }

    /// The post of need or offer `id`: from the source, else from the kept copy.
    fn post_of(&self, id: &EventId) -> Option<Post> {
        match &self.source.0 {
            Some(src) => src.post(id),
            None => postcard::from_bytes(self.kept.get(id)?).ok(),
        }
    }

    fn file_post(&mut self, e: &Event, kind: BodyKind, post: &Post) {
        let id = e.id();
        let mut flags = if kind == BodyKind::Offer { OFFER } else { 0 };
        flags |= if post.expires_ms.is_some() {
            EXPIRES
        } else {
            0
        };
        if let Some(r) = post.related {
            flags |= RELATED;
            self.related.insert(id, r);
        }
        let record = PostRecord {
            at: e.timestamp(),
            expires_ms: post.expires_ms.unwrap_or(0),
            author: self.authors.intern(e.author()),
            category: post.category,
            urgency: post.urgency,
            flags,
        };
        self.posts.insert(id, record);
        if self.source.0.is_none() {
            // Encoding a decoded post cannot fail (no maps, no unsized types); an
            // empty body would only make `post_of` say None, hiding the item.
            let bytes = postcard::to_stdvec(post).unwrap_or_default();
            self.kept.insert(id, bytes.into());
        }
    }

    /// Notes when this node stored event `id` (ms), for an event whose own stamp
    /// cannot be trusted (before the build floor: an older node's clock in 1970). Shown
    /// as [`Item::arrived`]; local, so it takes no part in anything that converges.
    pub fn note_arrival(&mut self, id: EventId, at_ms: u64) {
        self.arrived.insert(id, at_ms);
    }

    /// Builds the view of a collection of events with their bodies.
    pub fn from_events<'a>(events: impl IntoIterator<Item = (&'a Event, &'a Body)>) -> Self {
        let mut v = View::new();
        for (e, b) in events {
            v.insert(e, b);
        }
        v
    }

    /// Files one validated event. Idempotent: inserting an event twice changes nothing.
    pub fn insert(&mut self, e: &Event, body: &Body) {
        let id = e.id();
        if matches!(body, Body::Status(_) | Body::Redaction(_)) {
            self.others.insert(
                id,
                TargetInfo {
                    author: e.author(),
                    kind: body.kind().code(),
                },
            );
        }
        match body {
            Body::Need(p) => self.file_post(e, BodyKind::Need, p),
            Body::Offer(p) => self.file_post(e, BodyKind::Offer, p),
            Body::Status(s) => {
                let on = self.changes.entry(s.target).or_default();
                file_in_order(on, key(e), (s.status, s.note.clone()));
            }
            Body::Person(p) => {
                self.people.insert(id, Filed::new(e, p));
            }
            Body::CheckIn(c) => {
                self.checkin_of.insert(id, (c.person, e.author()));
                self.checkins
                    .entry(c.person)
                    .or_default()
                    .insert(key(e), c.clone());
            }
            Body::Hub(h) => {
                self.hubs.insert(id, Filed::new(e, h));
            }
            Body::Alert(a) => {
                self.alerts.insert(id, Filed::new(e, a));
            }
            Body::OfficialAlert(a) => {
                // Filed as an alert in its first language (states, expiry, order as
                // any alert); the other languages and CAP fields ride alongside.
                self.alerts.insert(id, Filed::new(e, &a.as_alert()));
                self.official.insert(id, a.clone());
            }
            Body::Redaction(r) => {
                self.redactions
                    .entry(r.target)
                    .or_default()
                    .insert(id, e.author());
            }
            Body::Sharing(c) => {
                self.sharing
                    .entry(c.person)
                    .or_default()
                    .insert(key(e), c.share);
            }
        }
    }

    /// Rebuilds the per-event maps in one sorted pass, so that their nodes are full.
    /// A map filled in random key order (ids, as a start reads events in time order)
    /// leaves its nodes about two-thirds full; at 100,000 needs and offers that is
    /// 3 MB (issue 14). The needs and offers' vector gets its last inserts merged in
    /// and no spare room. Changes no answer. For after a bulk load.
    pub fn pack(&mut self) {
        self.posts.pack();
        self.others = std::mem::take(&mut self.others).into_iter().collect();
        self.changes = std::mem::take(&mut self.changes).into_iter().collect();
        self.kept = std::mem::take(&mut self.kept).into_iter().collect();
    }

    /// Number of distinct understood events filed.
    pub fn len(&self) -> usize {
        // An id names one event, so it is filed in exactly one of these.
        self.posts.len()
            + self.people.len()
            + self.checkin_of.len()
            + self.hubs.len()
            + self.alerts.len()
            + self.others.len()
    }

    /// Whether no event is filed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a redaction by `author` targets `target`: the test for "an event by
    /// `author` with id `target` must not be shown or stored".
    pub fn redacted_by(&self, target: &EventId, author: &AuthorId) -> bool {
        self.redactions
            .get(target)
            .is_some_and(|rs| rs.values().any(|a| a == author))
    }

    /// Whether a check-in's content must not be shown or stored: it or its person
    /// has been redacted.
    pub fn checkin_hidden(&self, checkin: &EventId, author: &AuthorId, person: &EventId) -> bool {
        if self.redacted_by(checkin, author) {
            return true;
        }
        self.people
            .get(person)
            .is_some_and(|p| self.redacted_by(person, &p.author))
    }

    /// Whether the check-in `id` (if held) is hidden by a redaction of itself or of
    /// its person.
    fn checkin_id_hidden(&self, id: &EventId) -> bool {
        self.checkin_of
            .get(id)
            .is_some_and(|(person, author)| self.checkin_hidden(id, author, person))
    }

    /// Whether a post is hidden: redacted itself, or linked (`related`) to a hidden
    /// check-in (a need raised by a check-in goes when the person is forgotten).
    fn post_hidden(&self, id: &EventId, author: &AuthorId, related: Option<EventId>) -> bool {
        self.redacted_by(id, author) || related.is_some_and(|r| self.checkin_id_hidden(&r))
    }

    /// Every need and offer that is not redacted, folded at wall-clock time `now_ms`,
    /// in id order.
    pub fn items(&self, now_ms: u64) -> Vec<Item> {
        self.posts
            .keys()
            .filter_map(|id| self.item(id, now_ms))
            .collect()
    }

    /// Ids of every need and offer filed (including hidden ones: [`View::item`] says
    /// which are shown), without folding them.
    pub fn post_ids(&self) -> impl Iterator<Item = &EventId> {
        self.posts.keys()
    }

    /// One need or offer, folded at `now_ms`.
    pub fn item(&self, id: &EventId, now_ms: u64) -> Option<Item> {
        let (head, holder, history) = self.fold(id, now_ms)?;
        let post = self.post_of(id)?;
        Some(Item {
            id: head.id,
            kind: head.kind(),
            author: self.authors.get(head.author.0),
            created: head.created,
            post,
            state: head.state,
            holder,
            expired: head.expired(),
            history,
            arrived: self.arrived.get(id).copied(),
        })
    }

    /// Every need and offer that is not redacted, folded at `now_ms`, in id order,
    /// without their posts: what a list filters and sorts on before it reads the
    /// posts of the items it shows ([`View::item`]). The same items as
    /// [`View::items`], with the same state, expiry, kind, category and urgency.
    pub fn heads(&self, now_ms: u64) -> Vec<ItemHead> {
        self.heads_until(now_ms).0
    }

    /// [`View::heads`] at `now_ms`, and until when they stay true: the first
    /// `expires_ms` of an item among them still active and not yet expired
    /// (`u64::MAX` if none has one).
    pub fn heads_until(&self, now_ms: u64) -> (Vec<ItemHead>, u64) {
        // Sized once (hidden items are few): a vector grown by doubling would keep
        // up to as much again, and the lists keep this one (issue 28).
        let mut out = Vec::with_capacity(self.posts.len());
        let mut until = u64::MAX;
        for (id, p) in self.posts.iter() {
            if let Some((head, ..)) = self.fold_record(id, p, now_ms) {
                if let Some(exp) = live_expiry(&head, p) {
                    until = until.min(exp);
                }
                out.push(head);
            }
        }
        (out, until)
    }

    /// The head of need or offer `id` folded at `now_ms`, as [`View::heads`] has it,
    /// or `None` when it is not shown.
    pub fn head(&self, id: &EventId, now_ms: u64) -> Option<ItemHead> {
        Some(self.fold(id, now_ms)?.0)
    }

    /// Until when the head of `id` folded at `now_ms` stays true, as
    /// [`View::heads_until`] counts it: its post's `expires_ms` if it is shown, still
    /// active and not yet expired; `None` otherwise.
    pub fn head_until(&self, id: &EventId, now_ms: u64) -> Option<u64> {
        let p = self.posts.get(id)?;
        live_expiry(&self.fold_record(id, p, now_ms)?.0, p)
    }

    /// The needs and offers whose head ([`View::heads`]) filing event `e` may
    /// change: `Some` of them (a need or offer itself, a status change's target; none
    /// for a hub announcement or an alert), or `None` when it may change any (a
    /// redaction, a person, a check-in or a sharing answer reach posts through the
    /// links a fold follows). What lets a list keep its sorted heads and fold again
    /// only what a change reached (issue 28).
    pub fn heads_touched(e: &Event, body: &Body) -> Option<Vec<EventId>> {
        match body {
            Body::Need(_) | Body::Offer(_) => Some(vec![e.id()]),
            Body::Status(s) => Some(vec![s.target]),
            Body::Hub(_) | Body::Alert(_) | Body::OfficialAlert(_) => Some(Vec::new()),
            Body::Redaction(_) | Body::Person(_) | Body::CheckIn(_) | Body::Sharing(_) => None,
        }
    }

    /// Brings `heads` up to date for the needs and offers in `touched`: `heads` was
    /// [`View::heads`] of an earlier view sorted by `order` (of each item's urgency,
    /// creation time and id, which never change), `touched` holds every item whose
    /// head may have changed since ([`View::heads_touched`] of each event filed
    /// meanwhile), and the heads of the other items must still hold at `now_ms` (none
    /// of them expired in between). Afterwards `heads` is [`View::heads`] at `now_ms`
    /// sorted by `order`; the work is a fold of each touched item, not of every item.
    pub fn refold_heads<K: Ord>(
        &self,
        heads: &mut Vec<ItemHead>,
        touched: &BTreeSet<EventId>,
        now_ms: u64,
        order: impl Fn(Urgency, Timestamp, EventId) -> K,
    ) {
        let of = |h: &ItemHead| order(h.urgency, h.created, h.id);
        let mut add = Vec::new();
        for id in touched {
            let Some(p) = self.posts.get(id) else {
                continue;
            };
            let key = order(p.urgency, p.at, *id);
            let at = heads.binary_search_by(|h| of(h).cmp(&key));
            match (at, self.head(id, now_ms)) {
                (Ok(i), Some(h)) => heads[i] = h,
                (Ok(i), None) => {
                    heads.remove(i);
                }
                (Err(_), Some(h)) => add.push(h),
                (Err(_), None) => {}
            }
        }
        if add.len() <= 4 {
            for h in add {
                let i = heads.partition_point(|x| of(x) < of(&h));
                heads.insert(i, h);
            }
            return;
        }
        add.sort_unstable_by_key(&of);
        // Merge from the back into the grown vector: each old head moves once.
        let old = heads.len();
        heads.extend(add.iter().cloned());
        let (mut i, mut j, mut w) = (old, add.len(), heads.len());
        while j > 0 {
            if i > 0 && of(&heads[i - 1]) > of(&add[j - 1]) {
                heads.swap(i - 1, w - 1);
                i -= 1;
            } else {
                heads[w - 1] = add[j - 1];
                j -= 1;
            }
            w -= 1;
        }
    }

    /// Folds the status changes of need or offer `id` at `now_ms` (see the module
    /// doc): its head, holder and history, or `None` when it is not shown.
    fn fold(&self, id: &EventId, now_ms: u64) -> Option<(ItemHead, Option<AuthorId>, Vec<Change>)> {
        self.fold_record(id, self.posts.get(id)?, now_ms)
    }

    /// [`View::fold`] of need or offer `id` filed as `p`.
    fn fold_record(
        &self,
        id: &EventId,
        p: &PostRecord,
        now_ms: u64,
    ) -> Option<(ItemHead, Option<AuthorId>, Vec<Change>)> {
        let author = self.authors.get(p.author);
        let related = self.related_of(id, p);
        if self.post_hidden(id, &author, related) {
            return None;
        }
        let mut state = ItemState::Open;
        let mut holder = None;
        let mut history = Vec::new();
        let mut changes: BTreeMap<Key, (Status, String)> = self
            .changes
            .get(id)
            .into_iter()
            .flatten()
            .filter(|((_, author, cid), _)| !self.redacted_by(cid, author))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        if let Some(close) = related.and_then(|r| self.later_check(&r)) {
            changes.insert(close.0, close.1);
        }
        for ((at, by, cid), (status, note)) in &changes {
            let by_author = *by == author;
            let next = match (state, status) {
                (ItemState::Open, Status::Claimed) => Some(ItemState::Claimed),
                (ItemState::Open | ItemState::Claimed, Status::InProgress) => {
                    Some(ItemState::InProgress)
                }
                (
                    ItemState::Open | ItemState::Claimed | ItemState::InProgress,
                    Status::Fulfilled,
                ) => Some(ItemState::Fulfilled),
                (
                    ItemState::Open | ItemState::Claimed | ItemState::InProgress,
                    Status::Withdrawn,
                ) if by_author => Some(ItemState::Withdrawn),
                (
                    ItemState::Claimed | ItemState::InProgress | ItemState::Fulfilled,
                    Status::Reopened,
                ) => Some(ItemState::Open),
                (ItemState::Withdrawn, Status::Reopened) if by_author => Some(ItemState::Open),
                _ => None,
            };
            if let Some(next) = next {
                holder = match next {
                    ItemState::Claimed => Some(*by),
                    ItemState::InProgress => holder.or(Some(*by)),
                    _ => None,
                };
                state = next;
            }
            history.push(Change {
                id: *cid,
                author: *by,
                at: *at,
                status: *status,
                note: note.clone(),
                applied: next.is_some(),
            });
        }
        let expired = state.is_active() && p.expires_ms().is_some_and(|exp| now_ms > exp);
        let head = ItemHead {
            id: *id,
            created: p.at,
            author: AuthorIndex(p.author),
            category: p.category,
            urgency: p.urgency,
            state,
            flags: (p.flags & OFFER) | if expired { EXPIRED } else { 0 },
        };
        Some((head, holder, history))
    }

    /// The check-in that closes a need raised by check-in `raised`: the first visible
    /// check-in on the same person after it (in `(timestamp, author, id)` order) whose
    /// outcome is not "needs help". Folded into the need's history as a "fulfilled"
    /// change at that check-in's place in the order, so the rule depends only on the
    /// set of events and a later "reopened" still applies.
    fn later_check(&self, raised: &EventId) -> Option<(Key, (Status, String))> {
        let (person, _) = self.checkin_of.get(raised)?;
        let checks = self.checkins.get(person)?;
        let (start, _) = checks.iter().find(|((_, _, cid), _)| cid == raised)?;
        checks
            .range(start..)
            .skip(1)
            .filter(|((_, author, cid), _)| !self.redacted_by(cid, author))
            .find(|(_, c)| !matches!(c.outcome, Outcome::NeedsHelp(_)))
            .map(|(k, c)| {
                let note = format!("closed by a later check-in: {}", c.outcome.name());
                (*k, (Status::Fulfilled, note))
            })
    }

    /// Folds the status changes on an alert, in `(timestamp, author, id)` order:
    /// "withdrawn" by its author cancels an active alert, "fulfilled" by anyone marks
    /// it all clear, "reopened" makes it active again (by its author only when it was
    /// cancelled). Anything else is ignored.
    fn alert_state(&self, a: &Filed<Alert>) -> (AlertState, Option<Change>) {
        let mut state = AlertState::Active;
        let mut ended = None;
        for ((at, author, cid), (status, note)) in self.changes.get(&a.id).into_iter().flatten() {
            if self.redacted_by(cid, author) {
                continue;
            }
            let by_author = *author == a.author;
            let next = match (state, status) {
                (AlertState::Active, Status::Withdrawn) if by_author => AlertState::Cancelled,
                (AlertState::Active, Status::Fulfilled) => AlertState::AllClear,
                (AlertState::AllClear, Status::Reopened) => AlertState::Active,
                (AlertState::Cancelled, Status::Reopened) if by_author => AlertState::Active,
                _ => continue,
            };
            state = next;
            ended = (next != AlertState::Active).then(|| Change {
                id: *cid,
                author: *author,
                at: *at,
                status: *status,
                note: note.clone(),
                applied: true,
            });
        }
        (state, ended)
    }

    /// Every registered person who is not redacted, with their visible check-ins.
    pub fn people(&self) -> Vec<PersonView> {
        self.people
            .keys()
            .filter_map(|id| self.person(id))
            .collect()
    }

    /// One person.
    pub fn person(&self, id: &EventId) -> Option<PersonView> {
        let p = self.people.get(id)?;
        if self.redacted_by(id, &p.author) {
            return None;
        }
        let checks = self
            .checkins
            .get(id)
            .into_iter()
            .flatten()
            .filter(|((_, author, cid), _)| !self.redacted_by(cid, author))
            .map(|((at, author, cid), c)| Check {
                id: *cid,
                author: *author,
                at: *at,
                check: c.clone(),
            })
            .collect();
        // Only the registering hub's answers count (as validation refuses others'
        // locally); a redacted answer does not.
        let shares_with_responders = self
            .sharing
            .get(id)
            .into_iter()
            .flatten()
            .rfind(|((_, author, sid), _)| *author == p.author && !self.redacted_by(sid, author))
            .is_some_and(|(_, share)| *share);
        Some(PersonView {
            id: *id,
            author: p.author,
            registered: p.at,
            person: p.body.clone(),
            checks,
            shares_with_responders,
        })
    }

    /// Hubs: the newest announcement per author and name, in name order.
    pub fn hubs(&self) -> Vec<HubView> {
        let mut newest: BTreeMap<(String, AuthorId), &Filed<HubAnnounced>> = BTreeMap::new();
        for h in self.hubs.values() {
            if self.redacted_by(&h.id, &h.author) {
                continue;
            }
            let slot = newest
                .entry((h.body.name.to_lowercase(), h.author))
                .or_insert(h);
            if (h.at, h.id) > (slot.at, slot.id) {
                *slot = h;
            }
        }
        newest
            .into_values()
            .map(|h| HubView {
                id: h.id,
                author: h.author,
                at: h.at,
                hub: h.body.clone(),
            })
            .collect()
    }

    /// Alerts not redacted, not cancelled and not expired at `now_ms` (all clear ones
    /// included, marked so), most severe then newest first.
    pub fn alerts(&self, now_ms: u64) -> Vec<AlertView> {
        let mut out: Vec<AlertView> = self
            .alerts
            .keys()
            .filter_map(|id| self.alert(id))
            .filter(|a| a.alert.expires_ms.is_none_or(|exp| now_ms <= exp))
            .filter(|a| a.state != AlertState::Cancelled)
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse((a.alert.severity, a.at, a.id)));
        out
    }

    /// Ids of every alert filed (including hidden ones), without folding them.
    pub fn alert_ids(&self) -> impl Iterator<Item = &EventId> {
        self.alerts.keys()
    }

    /// One alert unless redacted, whatever its state or expiry.
    pub fn alert(&self, id: &EventId) -> Option<AlertView> {
        let a = self.alerts.get(id)?;
        if self.redacted_by(&a.id, &a.author) {
            return None;
        }
        let (state, ended) = self.alert_state(a);
        Some(AlertView {
            id: a.id,
            author: a.author,
            at: a.at,
            alert: a.body.clone(),
            state,
            ended,
            official: self.official.get(id).cloned(),
        })
    }

    /// Ids of filed events whose content must be purged from storage because a valid
    /// redaction covers them (including check-ins on a redacted person).
    pub fn purgeable(&self) -> BTreeSet<EventId> {
        let mut out = BTreeSet::new();
        let redacted = self.redactions.keys();
        for (target, info) in redacted.filter_map(|t| Some((t, self.target(t)?))) {
            // A redaction of a redaction is void: redactions cannot be undone.
            let void = info.kind == BodyKind::Redaction.code();
            if !void && self.redacted_by(target, &info.author) {
                out.insert(*target);
                if info.kind == BodyKind::Person.code() {
                    let checks = self.checkins.get(target).into_iter().flatten();
                    out.extend(checks.map(|((_, _, cid), _)| *cid));
                    let answers = self.sharing.get(target).into_iter().flatten();
                    out.extend(answers.map(|((_, _, sid), _)| *sid));
                }
            }
        }
        for (id, r) in &self.related {
            if self.checkin_id_hidden(r) {
                out.insert(*id);
            }
        }
        out
    }
}

impl View {
    /// Welfare records past retention at `now_ms`: every person whose last activity
    /// (newest check-in, else registration) is more than `retention_ms` ago, with
    /// their check-ins and the needs those check-ins raised. Each node erases these
    /// by the same rule, so personal data does not outlive its use.
    ///
    /// A last activity stamped before `floor_ms` (the build-time floor: a stamp an
    /// older node with its clock in 1970 wrote) says nothing about its age, so it
    /// never makes a record expire: such a record stays until a check-in with a real
    /// time (which then counts) or until someone forgets it.
    pub fn welfare_expired(
        &self,
        now_ms: u64,
        retention_ms: u64,
        floor_ms: u64,
    ) -> BTreeSet<EventId> {
        let mut out = BTreeSet::new();
        for (pid, p) in &self.people {
            let checks = self.checkins.get(pid);
            let last = checks
                .and_then(|c| c.keys().next_back())
                .map_or(p.at, |(at, _, _)| (*at).max(p.at));
            if last.millis() < floor_ms || now_ms.saturating_sub(last.millis()) <= retention_ms {
                continue;
            }
            out.insert(*pid);
            out.extend(checks.into_iter().flatten().map(|((_, _, cid), _)| *cid));
            let answers = self.sharing.get(pid).into_iter().flatten();
            out.extend(answers.map(|((_, _, sid), _)| *sid));
        }
        let raised: Vec<EventId> = (self.related.iter())
            .filter(|(_, r)| out.contains(*r))
            .map(|(id, _)| *id)
            .collect();
        out.extend(raised);
        out
    }
}

/// Two views are equal when they file the same events: the same index and posts,
/// whatever order authors were first seen in and wherever the posts are read from.
impl PartialEq for View {
    fn eq(&self, other: &Self) -> bool {
        let posts = |v: &View| -> Vec<_> {
            v.posts
                .iter()
                .map(|(id, p)| {
                    let r = (
                        p.kind(),
                        p.category,
                        p.urgency,
                        p.at,
                        p.expires_ms(),
                        v.related_of(id, p),
                    );
                    (*id, v.authors.get(p.author), r, v.post_of(id))
                })
                .collect()
        };
        self.others == other.others
            && self.changes == other.changes
            && self.people == other.people
            && self.checkins == other.checkins
            && self.hubs == other.hubs
            && self.alerts == other.alerts
            && self.official == other.official
            && self.redactions == other.redactions
            && self.checkin_of == other.checkin_of
            && self.sharing == other.sharing
            && self.arrived == other.arrived
            && posts(self) == posts(other)
    }
}

impl Eq for View {}

impl TargetLookup for View {
    fn target(&self, id: &EventId) -> Option<TargetInfo> {
        let info = |author, kind: BodyKind| TargetInfo {
            author,
            kind: kind.code(),
        };
        if let Some(p) = self.posts.get(id) {
            return Some(info(self.authors.get(p.author), p.kind()));
        }
        if let Some((_, author)) = self.checkin_of.get(id) {
            return Some(info(*author, BodyKind::CheckIn));
        }
        let found = (self
            .people
            .get(id)
            .map(|p| info(p.author, BodyKind::Person)))
        .or_else(|| self.hubs.get(id).map(|h| info(h.author, BodyKind::Hub)))
        .or_else(|| self.alerts.get(id).map(|a| info(a.author, BodyKind::Alert)));
        found.or_else(|| self.others.get(id).copied())
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "view_sharing_tests.rs"]
mod sharing_tests;
