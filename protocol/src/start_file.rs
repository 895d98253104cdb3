//! The start file: what a node's start builds from every stored event (the view, the
//! time index and the counts beside them), written at a clean stop so that the next
//! start reads one file instead of every event (issue 28: 11–14 s at a million events).
//!
//! This module only turns that state into bytes and back; the node writes and reads
//! the file, stores the token and decides when the file may be trusted (see
//! `docs/protocol.md`, "The start file", and `node/src/store/start_file.rs`).
//!
//! Layout (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | [`MAGIC`], `AIDMSTRT` |
//! | 4 | format [`VERSION`] (u32) |
//! | 16 | token: random, also stored in the database; a file whose token the database does not hold is refused |
//! | 8 | length of the body in bytes (u64) |
//! | 32 | BLAKE3 of the body |
//! | n | body: [`StartFile`] in postcard |
//!
//! Nothing read from the file is trusted before the token, the length and the
//! checksum match; even then a view that breaks its own invariants is refused
//! ([`StartFileError::Inconsistent`]). Decoding never panics on any bytes (fuzz
//! target `start_file`).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::EventId;
use crate::identity::AuthorId;
use crate::sync::SyncItem;
use crate::time::Timestamp;
use crate::view::View;

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"AIDMSTRT";

/// The format's version: a file of another version is refused (the node then reads
/// every event, as after an unclean stop).
pub const VERSION: u32 = 1;

/// Bytes before the body: magic, version, token, length, checksum.
pub const HEADER_LEN: usize = 8 + 4 + 16 + 8 + 32;

/// The random token that ties a file to the database that was stopped with it.
pub type Token = [u8; 16];

/// What a start reads from every stored event besides the view: held events of kinds
/// this node does not understand, the newest stamp, counts, every author's newest
/// event and the daily counts of the quota (see the node's engine for each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Held events of unknown kinds, by author.
    pub unknown: HashMap<AuthorId, BTreeSet<(Timestamp, EventId)>>,
    /// The newest stamp held.
    pub newest: Timestamp,
    /// Number of events held.
    pub held: u64,
    /// Of those, events of the welfare kinds.
    pub welfare: u64,
    /// Every author of a held event, with its newest event's time (ms).
    pub authors: HashMap<AuthorId, u64>,
    /// Events counting toward the daily quota, by author and day.
    pub daily: HashMap<(AuthorId, u64), u32>,
}

/// The body of a start file, read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartFile {
    /// The database generation the file was written for (the node's store numbers
    /// them); a file of another generation is refused.
    pub generation: u64,
    /// The time index: every held `(timestamp, id)`, ascending.
    pub time_index: Vec<SyncItem>,
    /// The counts beside the view.
    pub counts: Counts,
    /// The view, without its post source (set again by the reader).
    pub view: View,
}

/// [`StartFile`] by reference, to encode without copying the node's state: the same
/// fields in the same order, so the same bytes.
#[derive(Serialize)]
pub struct StartFileRef<'a> {
    /// See [`StartFile::generation`].
    pub generation: u64,
    /// See [`StartFile::time_index`].
    pub time_index: &'a [SyncItem],
    /// See [`StartFile::counts`].
    pub counts: &'a Counts,
    /// See [`StartFile::view`].
    pub view: &'a View,
}

/// Why a start file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StartFileError {
    /// The state could not be encoded (not expected: every field has an encoding).
    #[error("could not encode: {0}")]
    Encode(String),
    /// Shorter than its header.
    #[error("shorter than its header ({0} bytes)")]
    Short(usize),
    /// Not a start file.
    #[error("not a start file (wrong magic)")]
    Magic,
    /// Written by another format version.
    #[error("format version {0}, this node reads {VERSION}")]
    Version(u32),
    /// The database holds another token (or none): the database changed since.
    #[error("its token is not the one the database holds (written before later changes)")]
    Token,
    /// The body is not as long as the header says.
    #[error("body of {got} bytes, the header says {said}")]
    Length {
        /// What the header says.
        said: u64,
        /// What follows it.
        got: u64,
    },
    /// The body's BLAKE3 does not match.
    #[error("checksum mismatch (damaged)")]
    Checksum,
    /// The body does not decode.
    #[error("body does not decode: {0}")]
    Decode(String),
    /// It decodes but contradicts itself.
    #[error("inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The file's bytes for `state`, under `token`.
pub fn encode(token: &Token, state: &StartFileRef<'_>) -> Result<Vec<u8>, StartFileError> {
    let body = postcard::to_stdvec(state).map_err(|e| StartFileError::Encode(e.to_string()))?;
    Ok(seal(token, &body))
}

/// A start file of `body` (the postcard of a [`StartFile`]) under `token`: the header
/// in front. For [`encode`], and for the fuzz target, which makes bodies of any bytes.
pub fn seal(token: &Token, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(token);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(body).as_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads a start file written under `token`: header, token, length and checksum
/// first, then the body, then its consistency. The view comes back without a post
/// source.
pub fn decode(bytes: &[u8], token: &Token) -> Result<StartFile, StartFileError> {
    let body = open(bytes, token)?;
    let file: StartFile =
        postcard::from_bytes(body).map_err(|e| StartFileError::Decode(e.to_string()))?;
    if !file.time_index.windows(2).all(|w| w[0] < w[1]) {
        return Err(StartFileError::Inconsistent(
            "the time index is not in order",
        ));
    }
    if file.counts.held != file.time_index.len() as u64 {
        return Err(StartFileError::Inconsistent(
            "the count held is not the time index's",
        ));
    }
    file.view
        .check_well_formed()
        .map_err(StartFileError::Inconsistent)?;
    Ok(file)
}

/// The body of a start file whose header, token, length and checksum match.
fn open<'a>(bytes: &'a [u8], token: &Token) -> Result<&'a [u8], StartFileError> {
    let (header, body) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or(StartFileError::Short(bytes.len()))?;
    let (magic, rest) = header.split_at(8);
    if magic != MAGIC {
        return Err(StartFileError::Magic);
    }
    let (version, rest) = rest.split_at(4);
    let version = u32::from_le_bytes(version.try_into().unwrap_or_default());
    if version != VERSION {
        return Err(StartFileError::Version(version));
    }
    let (file_token, rest) = rest.split_at(16);
    if file_token != token {
        return Err(StartFileError::Token);
    }
    let (len, sum) = rest.split_at(8);
    let said = u64::from_le_bytes(len.try_into().unwrap_or_default());
    if said != body.len() as u64 {
        return Err(StartFileError::Length {
            said,
            got: body.len() as u64,
        });
    }
    if blake3::hash(body).as_bytes() != sum {
        return Err(StartFileError::Checksum);
    }
    Ok(body)
}

/// The token a file's header names, if it has a header: for a reader that has no
/// token to compare with (the fuzz target, tests).
pub fn token_of(bytes: &[u8]) -> Option<Token> {
    bytes.get(12..28)?.try_into().ok()
}
