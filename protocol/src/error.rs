//! The errors of reading bytes and fields ([`DecodeError`], [`FieldError`]). Every
//! message says what was wrong in terms a user or operator can act on; nothing that
//! comes from outside can make this crate panic. This module depends on nothing else
//! in the crate; why a whole event was refused is [`crate::rejection`].

use thiserror::Error;

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

/// A field value rejected by a limit check, before it is tied to an event id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field name as in `docs/protocol.md`.
    pub field: &'static str,
    /// What is wrong with it, as a stable machine word (docs/api.md, "Refusals field
    /// by field"): `required`, `too_long`, `bad_character`, `out_of_range`, `too_many`,
    /// `duplicate`.
    pub code: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, code: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            code,
            problem: problem.into(),
        }
    }
}
