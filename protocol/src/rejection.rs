//! Why an event was not accepted: [`ValidationError`], what [`crate::validate()`] and
//! [`crate::Event::try_create`] report, built on the decode and field errors of
//! [`crate::error`].

use thiserror::Error;

use crate::error::DecodeError;
use crate::id::EventId;

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The signature does not match the author's key and the bytes.
    #[error("event {id}: signature does not verify for author {author}")]
    BadSignature {
        /// Short id of the event.
        id: String,
        /// Short author.
        author: String,
    },
    /// Stamped too far ahead of the receiver's clock.
    #[error("event {id}: timestamp is {ahead_ms} ms ahead of this node's clock (limit {limit_ms} ms); check the sender's clock")]
    FromTheFuture {
        /// Short id of the event.
        id: String,
        /// How far ahead.
        ahead_ms: u64,
        /// The limit.
        limit_ms: u64,
    },
    /// A field breaks its documented limit or an enum value is out of range.
    #[error("event {id}: {field}: {problem}")]
    Field {
        /// Short id of the event.
        id: String,
        /// The field name as in `docs/protocol.md`.
        field: &'static str,
        /// What is wrong, as a machine word ([`crate::error::FieldError::code`]).
        code: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The author is not allowed to do this to the target.
    #[error("event {id}: {action} of {target} is only allowed to its author")]
    NotAllowed {
        /// Short id of the event.
        id: String,
        /// What was attempted.
        action: &'static str,
        /// The target event.
        target: EventId,
    },
    /// The target exists but is the wrong kind of event.
    #[error("event {id}: target {target} is a {found}, expected {expected}")]
    WrongTarget {
        /// Short id of the event.
        id: String,
        /// The target event.
        target: EventId,
        /// What the target is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
}
