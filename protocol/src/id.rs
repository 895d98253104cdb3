//! Event ids: the BLAKE3 hash that names an event, its printable forms, and the
//! 64-hex-character parsing it shares with author ids.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;

/// The `Debug` form (`Name(short)`) and the 64-hex-character `FromStr` of a 32-byte
/// name with a `short()` method: [`EventId`] and [`crate::AuthorId`].
macro_rules! hex32_name {
    ($name:ident) => {
        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::DecodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::id::parse_hex32(s).map($name)
            }
        }
    };
}
pub(crate) use hex32_name;

/// Number of hex characters in [`EventId::short`].
pub const ID_SHORT_LEN: usize = 10;

/// BLAKE3 hash of an event's signed part.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub [u8; 32]);

impl EventId {
    /// Full lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Short printable form: the first [`ID_SHORT_LEN`] hex characters.
    pub fn short(&self) -> String {
        self.to_hex()[..ID_SHORT_LEN].to_string()
    }

    /// Whether the lowercase hex form starts with `prefix` (lowercase hex), encoding
    /// only as many bytes as the prefix needs.
    pub fn has_hex_prefix(&self, prefix: &str) -> bool {
        let bytes = prefix.len().div_ceil(2).min(self.0.len());
        hex::encode(&self.0[..bytes]).starts_with(prefix)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

hex32_name!(EventId);

/// Parses exactly 64 hex characters into 32 bytes.
pub(crate) fn parse_hex32(s: &str) -> Result<[u8; 32], DecodeError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| DecodeError::BadHex {
        expected: 64,
        got: s.trim().len(),
    })?;
    Ok(out)
}
