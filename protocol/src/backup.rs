//! Hub backups: one file holding everything that makes a hub that hub, so it can be
//! restored on another computer (`aidmesh backup`, `aidmesh restore`; docs/hub.md,
//! "Backing up and upgrading a laptop hub").
//!
//! This module is the file format only, with no I/O: [`Writer`] turns records into
//! bytes, [`Reader`] turns bytes (fed in any pieces) back into records and says exactly
//! what is wrong with a file that is cut short, damaged or not a backup at all. The
//! file is not encrypted: it holds the hub's identity and the community key, so it is
//! a secret (the node writes it readable by its owner only). Byte-level
//! specification: `docs/protocol.md` section 13.
//!
//! ```text
//! file    = header (16 bytes) ‖ record* ‖ end
//! header  = "AIDMBACK" ‖ version 01 ‖ 00 00 00 ‖ 00 00 00 00
//! record  = tag u8 ‖ len u32 BE ‖ payload (len bytes, at most 1 MiB)
//!   (in this order: the profile, then erasures, events and files)
//!   tag 1 profile : seed (32) ‖ community key (32) ‖ name len u16 BE ‖ name ‖ passphrase
//!   tag 2 event   : the event's wire bytes (at most MAX_EVENT_BYTES)
//!   tag 3 erased  : event id (32) ‖ kind u16 BE (an erasure the store remembers)
//!   tag 4 file    : name len u8 ‖ name ‖ contents (a local file of the data directory)
//! end     = FF ‖ 00 00 00 28 ‖ records u64 BE ‖ BLAKE3(every byte before `end`)
//! ```
//!
//! The profile is the first record and comes once. The hash at the end covers the whole
//! file, so a copy cut short (no `end`) or altered anywhere is refused before anything
//! from it is used.

use thiserror::Error;

use crate::event::MAX_EVENT_BYTES;
use crate::EventId;

/// The first 8 bytes of every backup.
pub const MAGIC: &[u8; 8] = b"AIDMBACK";
/// The format version this code writes and reads.
pub const BACKUP_VERSION: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 16;
/// Largest payload of one record.
pub const MAX_RECORD: usize = 1024 * 1024;
/// Longest name of a local file.
pub const MAX_FILE_NAME: usize = 64;

const TAG_PROFILE: u8 = 1;
const TAG_EVENT: u8 = 2;
const TAG_ERASED: u8 = 3;
const TAG_FILE: u8 = 4;
const TAG_END: u8 = 0xFF;
const END_LEN: usize = 8 + 32;

/// The hub's identity and community, as a backup carries them.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// Ed25519 seed: the hub's identity.
    pub seed: [u8; 32],
    /// The community key.
    pub psk: [u8; 32],
    /// Community name.
    pub community: String,
    /// Community passphrase.
    pub passphrase: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed or the key.
        f.debug_struct("Profile")
            .field("community", &self.community)
            .finish_non_exhaustive()
    }
}

/// One record of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The identity and community (first, once).
    Profile(Profile),
    /// An event's wire bytes (not checked here: the node validates each).
    Event(Vec<u8>),
    /// An event whose content was erased, and its kind.
    Erased(EventId, u16),
    /// A local file of the data directory: its name (no path) and contents.
    File(String, Vec<u8>),
}

/// What is wrong with a backup file. Byte offsets count from the file's start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackupError {
    /// A bundle given where a backup was wanted.
    #[error("this is a bundle (written by aidmesh bundle export), not a backup: a bundle carries events to other hubs and is taken in with `aidmesh bundle import` on a running hub; a backup is written by `aidmesh backup`")]
    Bundle,
    /// It does not start with [`MAGIC`].
    #[error("this is not an aidmesh backup (it does not start with the backup signature); pick the file written by aidmesh backup")]
    NotABackup,
    /// A format version this code does not read.
    #[error("this backup has format version {0}; this aidmesh reads version {BACKUP_VERSION}. Restore it with the aidmesh version that wrote it, or a newer one")]
    Version(u8),
    /// The file ends before its end record.
    #[error("this backup is cut short after {0} bytes (its end is missing): the copy was interrupted or its disk was full. Take a new backup, or use an older complete one")]
    Truncated(u64),
    /// The file breaks the format or its hash does not match.
    #[error("this backup is damaged at byte {at}: {what}. Nothing from it was used; take a new backup, or use an older one")]
    Damaged {
        /// Where.
        at: u64,
        /// What was wrong.
        what: &'static str,
    },
}

/// Writes a backup, record by record; each call returns the bytes to append.
pub struct Writer {
    hash: blake3::Hasher,
    records: u64,
}

impl Writer {
    /// A backup file starts with the returned header.
    pub fn new() -> (Writer, Vec<u8>) {
        let mut w = Writer {
            hash: blake3::Hasher::new(),
            records: 0,
        };
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&[BACKUP_VERSION, 0, 0, 0, 0, 0, 0, 0]);
        w.hash.update(&header);
        (w, header)
    }

    fn record(&mut self, tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(tag);
        // Callers keep payloads under MAX_RECORD (see each method).
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        self.hash.update(&out);
        self.records += 1;
        out
    }

    /// The profile record (write it first). `None` if the name and passphrase are
    /// longer than a record can hold (never, for a node's own).
    pub fn profile(&mut self, p: &Profile) -> Option<Vec<u8>> {
        let name = p.community.as_bytes();
        let len = u16::try_from(name.len()).ok()?;
        let mut b = Vec::with_capacity(66 + name.len() + p.passphrase.len());
        b.extend_from_slice(&p.seed);
        b.extend_from_slice(&p.psk);
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(name);
        b.extend_from_slice(p.passphrase.as_bytes());
        (b.len() <= MAX_RECORD).then(|| self.record(TAG_PROFILE, &b))
    }

    /// An event record; `None` (nothing written) for bytes longer than an event may be.
    pub fn event(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        (bytes.len() <= MAX_EVENT_BYTES).then(|| self.record(TAG_EVENT, bytes))
    }

    /// An erasure record.
    pub fn erased(&mut self, id: &EventId, kind: u16) -> Vec<u8> {
        let mut b = id.0.to_vec();
        b.extend_from_slice(&kind.to_be_bytes());
        self.record(TAG_ERASED, &b)
    }

    /// A local file's record; `None` if the name is not a plain file name (see
    /// [`plain_name`]) or the file is too large for a record.
    pub fn file(&mut self, name: &str, contents: &[u8]) -> Option<Vec<u8>> {
        if !plain_name(name) || contents.len() + 1 + name.len() > MAX_RECORD {
            return None;
        }
        let mut b = vec![name.len() as u8];
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(contents);
        Some(self.record(TAG_FILE, &b))
    }

    /// The end record: the number of records and the hash of everything before it.
    pub fn finish(self) -> Vec<u8> {
        let mut out = vec![TAG_END];
        out.extend_from_slice(&(END_LEN as u32).to_be_bytes());
        out.extend_from_slice(&self.records.to_be_bytes());
        out.extend_from_slice(self.hash.finalize().as_bytes());
        out
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// Whether `name` may name a local file in a backup: 1 to [`MAX_FILE_NAME`] bytes of
/// ASCII letters, digits, `.`, `-`, `_`, not starting with `.` (no path, no `..`).
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Reads a backup fed in any pieces: [`Reader::feed`] the bytes, take records with
/// [`Reader::next_record`] until it answers `Ok(None)`, feed more, and at the end of the
/// input call [`Reader::finish`]. Memory is bounded by one record.
pub struct Reader {
    buf: Vec<u8>,
    /// Bytes of the file consumed before `buf`.
    at: u64,
    header: bool,
    profile: bool,
    ended: bool,
    records: u64,
    hash: blake3::Hasher,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new()
    }
}

impl Reader {
    /// A reader at the start of a file.
    pub fn new() -> Reader {
        Reader {
            buf: Vec::new(),
            at: 0,
            header: false,
            profile: false,
            ended: false,
            records: 0,
            hash: blake3::Hasher::new(),
        }
    }

    /// Adds the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn damaged(&self, at: u64, what: &'static str) -> BackupError {
        BackupError::Damaged { at, what }
    }

    /// Takes `n` bytes off the front of the buffer, into the hash.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        let head = std::mem::replace(&mut self.buf, rest);
        self.hash.update(&head);
        self.at += n as u64;
        head
    }

    /// The next complete record, `Ok(None)` when more bytes are needed (or the end
    /// record was read), or what is wrong. A record is returned before the file's hash
    /// is checked: use nothing from a file until [`Reader::finish`] said it is whole
    /// (the node reads a file twice: once to check it, once to restore it).
    pub fn next_record(&mut self) -> Result<Option<Record>, BackupError> {
        if !self.header {
            // The signature is checked as soon as its bytes are there, so a foreign file
            // is named as such even when it is short.
            let n = self.buf.len().min(MAGIC.len());
            if self.buf[..n] != MAGIC[..n] {
                return Err(if self.buf[..n] == crate::bundle::MAGIC[..n] {
                    BackupError::Bundle
                } else {
                    BackupError::NotABackup
                });
            }
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            if self.buf[8] != BACKUP_VERSION {
                return Err(BackupError::Version(self.buf[8]));
            }
            if self.buf[9..HEADER_LEN].iter().any(|&b| b != 0) {
                return Err(self.damaged(9, "the header's reserved bytes are not zero"));
            }
            self.take(HEADER_LEN);
            self.header = true;
        }
        if self.ended {
            return if self.buf.is_empty() {
                Ok(None)
            } else {
                Err(self.damaged(self.at, "bytes after the end record"))
            };
        }
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let start = self.at;
        let tag = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        let limit = match tag {
            TAG_PROFILE | TAG_FILE => MAX_RECORD,
            TAG_EVENT => MAX_EVENT_BYTES,
            TAG_ERASED => 34,
            TAG_END => END_LEN,
            _ => return Err(self.damaged(start, "a record of unknown type")),
        };
        if len > limit || (tag == TAG_END && len != END_LEN) || (tag == TAG_ERASED && len != 34) {
            return Err(self.damaged(start, "a record of impossible length"));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        if tag == TAG_END {
            let digest = self.hash.clone().finalize();
            let rec = self.buf[5..5 + len].to_vec();
            let records = u64::from_be_bytes(rec[..8].try_into().unwrap_or_default());
            if records != self.records {
                return Err(
                    self.damaged(start, "the number of records does not match the end record")
                );
            }
            if rec[8..] != digest.as_bytes()[..] {
                return Err(self.damaged(
                    start,
                    "the file's content does not match its hash (altered or corrupted)",
                ));
            }
            if !self.profile {
                return Err(self.damaged(start, "it holds no hub identity"));
            }
            self.take(5 + len);
            self.ended = true;
            return self.next_record();
        }
        let payload = self.take(5 + len).split_off(5);
        if (tag == TAG_PROFILE) == self.profile {
            return Err(self.damaged(
                start,
                if self.profile {
                    "a second hub identity"
                } else {
                    "it does not start with the hub's identity"
                },
            ));
        }
        self.records += 1;
        let rec = match tag {
            TAG_PROFILE => {
                if payload.len() < 66 {
                    return Err(self.damaged(start, "a hub identity of wrong length"));
                }
                let name_len = u16::from_be_bytes([payload[64], payload[65]]) as usize;
                let Some(name) = payload.get(66..66 + name_len) else {
                    return Err(self.damaged(start, "a community name past its record"));
                };
                let (Ok(community), Ok(passphrase)) = (
                    String::from_utf8(name.to_vec()),
                    String::from_utf8(payload[66 + name_len..].to_vec()),
                ) else {
                    return Err(self.damaged(start, "a community name or passphrase not in UTF-8"));
                };
                let mut seed = [0u8; 32];
                let mut psk = [0u8; 32];
                seed.copy_from_slice(&payload[..32]);
                psk.copy_from_slice(&payload[32..64]);
                self.profile = true;
                Record::Profile(Profile {
                    seed,
                    psk,
                    community,
                    passphrase,
                })
            }
            TAG_EVENT => Record::Event(payload),
            TAG_ERASED => {
                let mut id = [0u8; 32];
                id.copy_from_slice(&payload[..32]);
                Record::Erased(EventId(id), u16::from_be_bytes([payload[32], payload[33]]))
            }
            _ => {
                let n = *payload.first().unwrap_or(&0) as usize;
                let name = payload
                    .get(1..1 + n)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .filter(|s| plain_name(s));
                let Some(name) = name else {
                    return Err(self.damaged(
                        start,
                        "a local file with a name that is not a plain file name",
                    ));
                };
                Record::File(name.to_string(), payload[1 + n..].to_vec())
            }
        };
        Ok(Some(rec))
    }

    /// At the end of the input: whether the file was whole (its end record read and
    /// its hash matched). Returns the number of records.
    pub fn finish(&self) -> Result<u64, BackupError> {
        if !self.header {
            let n = self.buf.len().min(MAGIC.len());
            if self.buf[..n] != MAGIC[..n] {
                return Err(BackupError::NotABackup);
            }
        }
        if !self.ended {
            return Err(BackupError::Truncated(self.at + self.buf.len() as u64));
        }
        Ok(self.records)
    }
}

/// Reads a whole backup held in memory: every record, or what is wrong (fuzzed).
pub fn read_all(bytes: &[u8]) -> Result<Vec<Record>, BackupError> {
    let mut r = Reader::new();
    r.feed(bytes);
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(rec);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let (mut w, mut out) = Writer::new();
        out.extend(
            w.profile(&Profile {
                seed: [7; 32],
                psk: [9; 32],
                community: "Elm Street".into(),
                passphrase: "river lantern otter".into(),
            })
            .unwrap(),
        );
        out.extend(w.event(b"an event's bytes").unwrap());
        out.extend(w.erased(&EventId([3; 32]), 4));
        out.extend(w.file("peers", b"/ip4/10.0.0.2/tcp/4610\n").unwrap());
        out.extend(w.finish());
        out
    }

    #[test]
    fn a_backup_reads_back_in_any_pieces() {
        let file = sample();
        let whole = read_all(&file).unwrap();
        assert_eq!(whole.len(), 4);
        assert!(
            matches!(&whole[0], Record::Profile(p) if p.community == "Elm Street" && p.seed == [7; 32])
        );
        assert_eq!(whole[1], Record::Event(b"an event's bytes".to_vec()));
        assert_eq!(whole[2], Record::Erased(EventId([3; 32]), 4));
        assert_eq!(
            whole[3],
            Record::File("peers".into(), b"/ip4/10.0.0.2/tcp/4610\n".to_vec())
        );
        for piece in [1, 3, 7, 64] {
            let mut r = Reader::new();
            let mut got = Vec::new();
            for c in file.chunks(piece) {
                r.feed(c);
                while let Some(rec) = r.next_record().unwrap() {
                    got.push(rec);
                }
            }
            assert_eq!(r.finish().unwrap(), 4);
            assert_eq!(got, whole);
        }
    }

    #[test]
    fn cut_altered_and_foreign_files_are_named() {
        let file = sample();
        for cut in [0, 5, HEADER_LEN, HEADER_LEN + 3, file.len() - 1] {
            let e = read_all(&file[..cut]).unwrap_err();
            assert!(
                matches!(e, BackupError::Truncated(_)) || (cut < 8 && e == BackupError::NotABackup),
                "{cut}: {e}"
            );
        }
        // Every single byte changed is caught.
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x20;
            assert!(read_all(&bad).is_err(), "byte {i} changed went unnoticed");
        }
        let mut more = file.clone();
        more.push(0);
        assert!(matches!(read_all(&more), Err(BackupError::Damaged { .. })));
        let mut bundle = crate::bundle::MAGIC.to_vec();
        bundle.extend_from_slice(&[1; 60]);
        assert_eq!(read_all(&bundle), Err(BackupError::Bundle));
        assert_eq!(read_all(b"PK\x03\x04 a zip"), Err(BackupError::NotABackup));
        let mut v2 = file.clone();
        v2[8] = 2;
        assert_eq!(read_all(&v2), Err(BackupError::Version(2)));
    }

    #[test]
    fn local_file_names_are_plain() {
        for ok in ["peers", "a.b", "x_1-2"] {
            assert!(plain_name(ok), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "../peers", "é", &"x".repeat(65)] {
            assert!(!plain_name(bad), "{bad}");
        }
        let (mut w, _) = Writer::new();
        assert!(w.file("../etc/passwd", b"").is_none());
    }
}
