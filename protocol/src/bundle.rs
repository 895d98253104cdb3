//! Sneakernet bundles: many events in one file, encrypted and authenticated with a key
//! derived from the community key, for hubs that never share a network.
//!
//! This module is the file format only, with no I/O: [`Sealer`] turns events into
//! bytes, [`Opener`] turns bytes (fed in any pieces) back into events, chunk by chunk,
//! and says exactly what is wrong with a damaged file. The salt and the creation time
//! are passed in. The events inside stay individually signed: the node validates each
//! as if a peer had sent it. Byte-level specification: `docs/protocol.md` section 11.
//!
//! ```text
//! file   = header (56 bytes) ‖ chunk 0 ‖ chunk 1 ‖ … ‖ chunk n (the final one)
//! header = "AIDMBUND" ‖ version 01 ‖ 00 00 00 ‖ chunk_size u32 BE ‖ created_ms u64 BE
//!          ‖ salt (16) ‖ check (16)
//! prk    = HKDF-Extract(SHA-256, salt, community key)
//! key    = HKDF-Expand(prk, "aidmesh bundle v1 key", 32)
//! check  = HKDF-Expand(prk, "aidmesh bundle v1 check", 16)
//! chunk  = len u32 BE ‖ ChaCha20-Poly1305(key, nonce_i, aad = header, plaintext)
//! nonce_i = i u64 BE ‖ 00 00 00 ‖ final (00 or 01)
//! plaintext = (event length u32 BE ‖ event bytes)*
//! ```
//!
//! The chunk index and the final flag are in the nonce, so chunks cannot be reordered,
//! dropped or cut off at the end without a failed tag or a missing final chunk.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use thiserror::Error;

use crate::event::MAX_EVENT_BYTES;

/// The first 8 bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"AIDMBUND";
/// The format version this code writes and reads.
pub const BUNDLE_VERSION: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 56;
/// Length of the Poly1305 tag at the end of every chunk.
pub const TAG_LEN: usize = 16;
/// Plaintext bytes per chunk that [`Sealer`] aims for.
pub const CHUNK_SIZE: u32 = 64 * 1024;
/// Smallest chunk size a reader accepts: any event (with its length) must fit one.
pub const MIN_CHUNK_SIZE: u32 = MAX_EVENT_BYTES as u32 + 4;
/// Largest chunk size a reader accepts, which bounds its memory.
pub const MAX_CHUNK_SIZE: u32 = 1024 * 1024;

const KEY_INFO: &[u8] = b"aidmesh bundle v1 key";
const CHECK_INFO: &[u8] = b"aidmesh bundle v1 check";

/// What is wrong with a bundle. Chunks are numbered from 0.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// It does not start with [`MAGIC`].
    #[error("this is not an aidmesh bundle (it does not start with the bundle signature); pick the file written by aidmesh bundle export")]
    NotABundle,
    /// A format version this code does not read.
    #[error("this bundle has format version {0}; this node reads version {BUNDLE_VERSION}. Update aidmesh on this computer")]
    Version(u8),
    /// The header breaks the format (not from the check value).
    #[error("the bundle header is damaged: {0}")]
    BadHeader(String),
    /// The community check value does not match this node's community key.
    #[error("this bundle was written by another community (or with another passphrase): it cannot be read here, and nothing was imported")]
    OtherCommunity,
    /// The file ends inside the header.
    #[error("the file is cut short inside its header ({0} of {HEADER_LEN} bytes): copy it again from the other hub")]
    TruncatedHeader(usize),
    /// The file ends inside a chunk.
    #[error("the file is cut short inside chunk {chunk}: the copy was not finished. Chunks before it were read; copy the file again for the rest")]
    Truncated {
        /// The chunk cut short.
        chunk: u64,
    },
    /// The file ends after a complete chunk that is not the final one.
    #[error("the file is cut short after chunk {last}: its final chunk is missing. Chunks up to {last} were read; copy the file again for the rest")]
    NoFinalChunk {
        /// The last chunk read.
        last: u64,
    },
    /// A chunk's length field is out of range.
    #[error("chunk {chunk} (at byte {offset}) is damaged: its length {len} is impossible. Chunks before it were read")]
    BadLength {
        /// The chunk.
        chunk: u64,
        /// Where it starts in the file.
        offset: u64,
        /// The length it claims.
        len: u32,
    },
    /// A chunk failed authentication: corrupted or altered.
    #[error("chunk {chunk} (at byte {offset}) failed authentication: the file was corrupted or altered after it was written. Nothing from that chunk on was read; chunks before it were")]
    BadTag {
        /// The chunk.
        chunk: u64,
        /// Where it starts in the file.
        offset: u64,
    },
    /// A chunk authenticated but its contents break the format (a faulty writer).
    #[error("chunk {chunk} authenticated but its contents are malformed ({reason}); it was written by faulty software")]
    BadContent {
        /// The chunk.
        chunk: u64,
        /// What is wrong.
        reason: String,
    },
    /// Bytes follow the final chunk.
    #[error("{extra} unexpected bytes follow the final chunk {last}: the file was altered after it was written. Every chunk was read")]
    TrailingBytes {
        /// The final chunk.
        last: u64,
        /// How many bytes follow it (at least).
        extra: usize,
    },
}

/// The file key and the community check value for one bundle's salt.
struct Keys {
    cipher: ChaCha20Poly1305,
    check: [u8; 16],
}

fn keys(community_key: &[u8; 32], salt: &[u8; 16]) -> Keys {
    let hk = Hkdf::<Sha256>::new(Some(salt), community_key);
    let mut key = [0u8; 32];
    let mut check = [0u8; 16];
    // Both lengths are far below HKDF-SHA-256's 8160-byte limit.
    let _ = hk.expand(KEY_INFO, &mut key);
    let _ = hk.expand(CHECK_INFO, &mut check);
    Keys {
        cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        check,
    }
}

fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The parsed header of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Largest plaintext of one chunk.
    pub chunk_size: u32,
    /// When the bundle was written, ms since the Unix epoch (the writer's clock).
    pub created_ms: u64,
    /// Random per bundle: makes the key and check value unique to this file.
    pub salt: [u8; 16],
    /// Proves the writer had the community key, without revealing it.
    pub check: [u8; 16],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = BUNDLE_VERSION;
        h[12..16].copy_from_slice(&self.chunk_size.to_be_bytes());
        h[16..24].copy_from_slice(&self.created_ms.to_be_bytes());
        h[24..40].copy_from_slice(&self.salt);
        h[40..56].copy_from_slice(&self.check);
        h
    }

    fn decode(h: &[u8; HEADER_LEN]) -> Result<Header, BundleError> {
        if &h[..8] != MAGIC {
            return Err(BundleError::NotABundle);
        }
        if h[8] != BUNDLE_VERSION {
            return Err(BundleError::Version(h[8]));
        }
        if h[9..12] != [0, 0, 0] {
            return Err(BundleError::BadHeader(
                "reserved bytes 9 to 11 are not zero".into(),
            ));
        }
        let chunk_size = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(BundleError::BadHeader(format!(
                "chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"
            )));
        }
        let mut created = [0u8; 8];
        created.copy_from_slice(&h[16..24]);
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&h[24..40]);
        let mut check = [0u8; 16];
        check.copy_from_slice(&h[40..56]);
        Ok(Header {
            chunk_size,
            created_ms: u64::from_be_bytes(created),
            salt,
            check,
        })
    }
}

/// Writes a bundle: the header first ([`Sealer::header`]), then each sealed chunk
/// returned by [`Sealer::add`], then [`Sealer::finish`]'s final chunk.
pub struct Sealer {
    keys: Keys,
    header: [u8; HEADER_LEN],
    chunk_size: usize,
    index: u64,
    buf: Vec<u8>,
    events: u64,
}

impl Sealer {
    /// A bundle for the community with `community_key`, written at `created_ms`, with a
    /// fresh random `salt` from the caller (never reuse one: with the same salt, the
    /// same key would seal different files).
    pub fn new(community_key: &[u8; 32], created_ms: u64, salt: [u8; 16]) -> Sealer {
        Self::with_chunk_size(community_key, created_ms, salt, CHUNK_SIZE)
    }

    /// As [`Sealer::new`] with another chunk size (tests and test vectors), clamped to
    /// what readers accept.
    pub fn with_chunk_size(
        community_key: &[u8; 32],
        created_ms: u64,
        salt: [u8; 16],
        chunk_size: u32,
    ) -> Sealer {
        let chunk_size = chunk_size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
        let keys = keys(community_key, &salt);
        let header = Header {
            chunk_size,
            created_ms,
            salt,
            check: keys.check,
        }
        .encode();
        Sealer {
            keys,
            header,
            chunk_size: chunk_size as usize,
            index: 0,
            buf: Vec::with_capacity(chunk_size as usize),
            events: 0,
        }
    }

    /// The header bytes, to write first.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Adds one event's wire bytes; returns a sealed chunk to write when one is full.
    /// Events larger than [`MAX_EVENT_BYTES`] are skipped (no node stores one).
    pub fn add(&mut self, event: &[u8]) -> Option<Vec<u8>> {
        if event.is_empty() || event.len() > MAX_EVENT_BYTES {
            return None;
        }
        let out = if self.buf.len() + 4 + event.len() > self.chunk_size {
            Some(self.seal(false))
        } else {
            None
        };
        self.buf
            .extend_from_slice(&(event.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(event);
        self.events += 1;
        out
    }

    /// Events added so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The final chunk (possibly with no events), to write last.
    pub fn finish(mut self) -> Vec<u8> {
        self.seal(true)
    }

    fn seal(&mut self, last: bool) -> Vec<u8> {
        let n = nonce(self.index, last);
        self.index += 1;
        let sealed = self
            .keys
            .cipher
            .encrypt(
                Nonce::from_slice(&n),
                Payload {
                    msg: &self.buf,
                    aad: &self.header,
                },
            )
            // ChaCha20-Poly1305 fails only beyond 256 GiB per message.
            .unwrap_or_default();
        self.buf.clear();
        let mut out = Vec::with_capacity(4 + sealed.len());
        out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        out.extend_from_slice(&sealed);
        out
    }
}

/// One authenticated chunk's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its number, from 0.
    pub index: u64,
    /// Whether it is the final chunk.
    pub last: bool,
    /// The events' wire bytes (not yet validated).
    pub events: Vec<Vec<u8>>,
}

/// Reads a bundle fed in pieces of any size: [`Opener::push`] the bytes, take every
/// authenticated [`Chunk`] from [`Opener::next_chunk`], then [`Opener::finish`] at the
/// end of the file. A chunk is returned only once its tag verified, so nothing from a
/// chunk that fails authentication ever leaves this type. Memory is bounded by the
/// header's chunk size (at most [`MAX_CHUNK_SIZE`]).
pub struct Opener {
    community_key: [u8; 32],
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    offset: u64,
    state: OpenState,
}

enum OpenState {
    Header,
    Chunks {
        keys: Box<Keys>,
        header: Box<Header>,
        raw: [u8; HEADER_LEN],
        next: u64,
    },
    Done {
        last: u64,
        header: Box<Header>,
    },
    Failed(BundleError),
}

impl Opener {
    /// A reader for the community with `community_key`.
    pub fn new(community_key: &[u8; 32]) -> Opener {
        Opener {
            community_key: *community_key,
            buf: Vec::new(),
            offset: 0,
            state: OpenState::Header,
        }
    }

    /// The header, once read and checked (also after the final chunk).
    pub fn header(&self) -> Option<Header> {
        match &self.state {
            OpenState::Chunks { header, .. } | OpenState::Done { header, .. } => Some(**header),
            _ => None,
        }
    }

    /// Adds the next bytes of the file.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete, authenticated chunk, `Ok(None)` if more bytes are needed (or
    /// the final chunk was read), or what is wrong. After an error, every call returns
    /// the same error.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, BundleError> {
        let r = self.step();
        if let Err(e) = &r {
            self.state = OpenState::Failed(e.clone());
            self.buf = Vec::new();
        }
        r
    }

    fn step(&mut self) -> Result<Option<Chunk>, BundleError> {
        match &mut self.state {
            OpenState::Failed(e) => Err(e.clone()),
            OpenState::Done { last, .. } => {
                if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(BundleError::TrailingBytes {
                        last: *last,
                        extra: self.buf.len(),
                    })
                }
            }
            OpenState::Header => {
                // Refuse a stranger file as soon as its first bytes differ.
                let n = self.buf.len().min(MAGIC.len());
                if self.buf[..n] != MAGIC[..n] {
                    return Err(BundleError::NotABundle);
                }
                if self.buf.len() < HEADER_LEN {
                    return Ok(None);
                }
                let mut raw = [0u8; HEADER_LEN];
                raw.copy_from_slice(&self.buf[..HEADER_LEN]);
                let header = Header::decode(&raw)?;
                let keys = keys(&self.community_key, &header.salt);
                if !constant_time_eq(&keys.check, &header.check) {
                    return Err(BundleError::OtherCommunity);
                }
                self.consume(HEADER_LEN);
                self.state = OpenState::Chunks {
                    keys: Box::new(keys),
                    header: Box::new(header),
                    raw,
                    next: 0,
                };
                self.step()
            }
            OpenState::Chunks {
                keys,
                header,
                raw,
                next,
            } => {
                let index = *next;
                if self.buf.len() < 4 {
                    return Ok(None);
                }
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if (len as usize) < TAG_LEN || len > header.chunk_size + TAG_LEN as u32 {
                    return Err(BundleError::BadLength {
                        chunk: index,
                        offset: self.offset,
                        len,
                    });
                }
                let end = 4 + len as usize;
                if self.buf.len() < end {
                    return Ok(None);
                }
                let sealed = &self.buf[4..end];
                // The final flag is in the nonce: try "not final", then "final".
                let open = |last: bool| {
                    keys.cipher
                        .decrypt(
                            Nonce::from_slice(&nonce(index, last)),
                            Payload {
                                msg: sealed,
                                aad: raw,
                            },
                        )
                        .ok()
                        .map(|p| (p, last))
                };
                let Some((plain, last)) = open(false).or_else(|| open(true)) else {
                    return Err(BundleError::BadTag {
                        chunk: index,
                        offset: self.offset,
                    });
                };
                let events = split_events(&plain).map_err(|reason| BundleError::BadContent {
                    chunk: index,
                    reason,
                })?;
                *next += 1;
                self.buf.drain(..end);
                self.offset += end as u64;
                if last {
                    let header = header.clone();
                    self.state = OpenState::Done {
                        last: index,
                        header,
                    };
                }
                Ok(Some(Chunk {
                    index,
                    last,
                    events,
                }))
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.offset += n as u64;
    }

    /// Call at the end of the file: `Ok` with the number of chunks if the final chunk
    /// was read and nothing follows it, else what is wrong. Take every chunk from
    /// [`Opener::next_chunk`] first.
    pub fn finish(&mut self) -> Result<u64, BundleError> {
        // Anything still complete in the buffer is read first.
        while self.next_chunk()?.is_some() {}
        match &self.state {
            OpenState::Done { last, .. } => Ok(last + 1),
            OpenState::Failed(e) => Err(e.clone()),
            OpenState::Header if self.buf.is_empty() => Err(BundleError::NotABundle),
            OpenState::Header => Err(BundleError::TruncatedHeader(self.buf.len())),
            OpenState::Chunks { next, .. } if self.buf.is_empty() && *next > 0 => {
                Err(BundleError::NoFinalChunk { last: next - 1 })
            }
            OpenState::Chunks { next, .. } => Err(BundleError::Truncated { chunk: *next }),
        }
    }
}

fn split_events(mut plain: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !plain.is_empty() {
        if plain.len() < 4 {
            return Err("an event length is cut short".into());
        }
        let len = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]) as usize;
        if len == 0 || len > MAX_EVENT_BYTES {
            return Err(format!("an event of {len} bytes"));
        }
        if plain.len() < 4 + len {
            return Err("an event is cut short".into());
        }
        out.push(plain[4..4 + len].to_vec());
        plain = &plain[4 + len..];
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn events(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("event number {i} ").repeat(1 + i % 50).into_bytes())
            .collect()
    }

    fn write(evs: &[Vec<u8>], chunk_size: u32) -> Vec<u8> {
        let mut s = Sealer::with_chunk_size(&KEY, 1_790_000_000_000, [9; 16], chunk_size);
        let mut out = s.header().to_vec();
        for e in evs {
            if let Some(c) = s.add(e) {
                out.extend_from_slice(&c);
            }
        }
        out.extend_from_slice(&s.finish());
        out
    }

    /// Reads `file` in pieces of `step` bytes; returns the events read and the result.
    fn read(file: &[u8], key: &[u8; 32], step: usize) -> (Vec<Vec<u8>>, Result<u64, BundleError>) {
        let mut o = Opener::new(key);
        let mut got = Vec::new();
        for piece in file.chunks(step.max(1)) {
            o.push(piece);
            loop {
                match o.next_chunk() {
                    Ok(Some(c)) => got.extend(c.events),
                    Ok(None) => break,
                    Err(e) => return (got, Err(e)),
                }
            }
        }
        let r = o.finish();
        (got, r)
    }

    #[test]
    fn round_trip_in_any_piece_size() {
        let evs = events(2_000);
        let file = write(&evs, MIN_CHUNK_SIZE);
        for step in [7, 4096, file.len()] {
            let (got, r) = read(&file, &KEY, step);
            assert!(r.unwrap() > 3, "several chunks");
            assert_eq!(got, evs, "step {step}");
        }
        let few = write(&evs[..100], MIN_CHUNK_SIZE);
        assert_eq!(read(&few, &KEY, 1).0, evs[..100]);
        // An empty bundle is a header and one empty final chunk.
        let empty = write(&[], CHUNK_SIZE);
        assert_eq!(empty.len(), HEADER_LEN + 4 + TAG_LEN);
        assert_eq!(read(&empty, &KEY, 100), (vec![], Ok(1)));
    }

    #[test]
    fn another_community_and_strangers_are_refused_by_name() {
        let file = write(&events(10), CHUNK_SIZE);
        assert_eq!(
            read(&file, &[8; 32], 1000).1,
            Err(BundleError::OtherCommunity)
        );
        assert_eq!(
            read(b"<?xml version=\"1.0\"?>", &KEY, 5).1,
            Err(BundleError::NotABundle)
        );
        assert_eq!(read(b"", &KEY, 5).1, Err(BundleError::NotABundle));
        assert_eq!(
            read(&file[..20], &KEY, 5).1,
            Err(BundleError::TruncatedHeader(20))
        );
        let mut v2 = file.clone();
        v2[8] = 2;
        assert_eq!(read(&v2, &KEY, 100).1, Err(BundleError::Version(2)));
    }

    #[test]
    fn truncation_anywhere_is_detected_and_only_whole_chunks_are_read() {
        let evs = events(600);
        let file = write(&evs, MIN_CHUNK_SIZE);
        for cut in (HEADER_LEN..file.len())
            .step_by(997)
            .chain([file.len() - 1])
        {
            let (got, r) = read(&file[..cut], &KEY, 4096);
            let err = r.unwrap_err();
            assert!(
                matches!(
                    err,
                    BundleError::Truncated { .. } | BundleError::NoFinalChunk { .. }
                ),
                "cut at {cut}: {err}"
            );
            assert_eq!(got[..], evs[..got.len()], "a prefix of whole chunks");
        }
    }

    #[test]
    fn any_flipped_bit_fails_authentication_and_names_the_chunk() {
        let evs = events(300);
        let file = write(&evs, MIN_CHUNK_SIZE);
        let (whole, _) = read(&file, &KEY, file.len());
        assert_eq!(whole.len(), 300);
        for at in (HEADER_LEN..file.len()).step_by(131) {
            let mut bad = file.clone();
            bad[at] ^= 0x10;
            let (got, r) = read(&bad, &KEY, 4096);
            match r {
                Err(BundleError::BadTag { chunk, .. })
                | Err(BundleError::BadLength { chunk, .. }) => {
                    assert!(got.len() < 300, "{at}: chunk {chunk}");
                }
                // A flipped length can also make the file look cut short.
                Err(BundleError::Truncated { .. }) => {}
                other => panic!("byte {at}: {other:?}"),
            }
            assert_eq!(got[..], evs[..got.len()]);
        }
        // The creation time is authenticated too (as associated data).
        let mut bad = file.clone();
        bad[20] ^= 1;
        assert_eq!(
            read(&bad, &KEY, 4096).1,
            Err(BundleError::BadTag {
                chunk: 0,
                offset: HEADER_LEN as u64
            })
        );
        // Swapping two chunks, or dropping the final one, does not go unnoticed.
        let mut extra = file.clone();
        extra.extend_from_slice(b"x");
        assert!(matches!(
            read(&extra, &KEY, 4096).1,
            Err(BundleError::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn dropped_or_reordered_chunks_are_detected() {
        let evs = events(300);
        let file = write(&evs, MIN_CHUNK_SIZE);
        // Split into chunks by their length fields.
        let mut chunks = Vec::new();
        let mut at = HEADER_LEN;
        while at < file.len() {
            let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            chunks.push(file[at..at + 4 + len].to_vec());
            at += 4 + len;
        }
        assert!(chunks.len() >= 3);
        let assemble = |cs: &[Vec<u8>]| {
            let mut f = file[..HEADER_LEN].to_vec();
            for c in cs {
                f.extend_from_slice(c);
            }
            f
        };
        let mut swapped = chunks.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            read(&assemble(&swapped), &KEY, 9999).1,
            Err(BundleError::BadTag { chunk: 0, .. })
        ));
        let without_last = &chunks[..chunks.len() - 1];
        assert_eq!(
            read(&assemble(without_last), &KEY, 9999).1,
            Err(BundleError::NoFinalChunk {
                last: chunks.len() as u64 - 2
            })
        );
    }
}
