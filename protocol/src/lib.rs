//! # aidmesh-protocol
//!
//! Everything two aidmesh nodes must agree on, with no I/O: no sockets, no files and no
//! clock reads. The node crate feeds this crate bytes and times and gets back decisions.
//!
//! - [`identity`]: Ed25519 identities; an author *is* a public key.
//! - [`time`]: the hybrid logical clock and the mesh-clock skew estimate.
//! - [`calendar`]: UTC dates and times from ms since the epoch, and back.
//! - [`error`]: what could not be read (bytes, fields); [`rejection`]: why an event was
//!   not accepted.
//! - [`id`]: the event id, a BLAKE3 hash, and its printable forms.
//! - [`event`]: the signed event envelope and its wire bytes.
//! - [`body`] and [`category`]: what an event says (needs, offers, status changes,
//!   welfare records, hubs, alerts, redactions) and the limits on each field.
//! - [`validate()`]: the one function every entry point uses to accept an event.
//! - [`view`]: the board, a pure function of a *set* of events.
//! - [`quota`]: the per-author bound on events of kinds this node does not know.
//! - [`retention`]: which content a node must not keep (redactions, erasures).
//! - [`bundle`]: the encrypted file format that carries events between hubs by hand.
//! - [`sync`]: the messages of range-based set reconciliation and event fetching.
//! - [`session`]: the initiator's sync session as a sans-IO state machine.
//! - [`delivery`]: signed hub summaries and what they prove ("known at 3 of 4 hubs").
//! - [`start_file`]: the view and the time index as bytes, written at a clean stop so
//!   the next start need not read every event.
//!
//! - `fixture` (feature `test-util`): the posts and events tests and benches share.
//!
//! The byte-level specification lives in `docs/protocol.md`.

pub mod backup;
pub mod body;
pub mod bundle;
pub mod calendar;
pub mod category;
pub mod community;
pub mod delivery;
pub mod error;
pub mod event;
#[cfg(any(test, feature = "test-util"))]
pub mod fixture;
pub mod id;
pub mod identity;
pub mod matching;
pub mod quota;
pub mod rejection;
pub mod retention;
pub mod session;
pub mod sms;
pub mod start_file;
pub mod sync;
pub mod text;
pub mod time;
pub mod validate;
pub mod view;
pub mod welfare;

pub use body::{
    Alert, AlertText, AlertUrgency, Body, BodyKind, CheckIn, Consent, Coords, HubAnnounced,
    OfficialAlert, Outcome, PersonRegistered, Place, Post, Redaction, Severity, Sharing, Status,
    StatusChange, Urgency,
};
pub use category::Category;
pub use error::DecodeError;
pub use event::{Event, MAX_EVENT_BYTES, PROTOCOL_VERSION};
pub use id::EventId;
pub use identity::{AuthorId, Identity};
pub use rejection::ValidationError;
pub use time::{Clock, ClockReading, ClockStatus, MeshClock, TimeSource, Timestamp};
pub use validate::{validate, Rules, TargetInfo, TargetLookup};
pub use view::View;
