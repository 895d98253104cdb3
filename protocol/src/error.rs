//! Typed errors. Every message says what was wrong in terms a user or operator can act
//! on; nothing that comes from outside can make this crate panic.

use thiserror::Error;

use crate::event::EventId;

/// Bytes that could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// More bytes than the hard limit for this kind of message; checked before decoding.
    #[error("{what} is {len} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer bytes than the smallest valid message.
    #[error("{what} is truncated: {len} bytes")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A version this node cannot read at all (0, or a sync message version it lacks).
    #[error("{what} has version {version}, this node reads versions {supported}")]
    Version {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
        /// The versions understood, for the message.
        supported: &'static str,
    },
    /// postcard rejected the bytes (bad varint, bad UTF-8, unknown enum tag, ...).
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// postcard's reason.
        reason: String,
    },
    /// A valid value followed by extra bytes.
    #[error("{what} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A hex string of the wrong length or with non-hex characters.
    #[error("expected {expected} hex characters, got {got} characters or invalid hex")]
    BadHex {
        /// Expected number of hex characters.
        expected: usize,
        /// Length of what was given.
        got: usize,
    },
}

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

/// A field value rejected by a limit check, before it is tied to an event id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field name as in `docs/protocol.md`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}
