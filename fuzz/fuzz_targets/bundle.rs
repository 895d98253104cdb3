//! A bundle file, as `aidmesh bundle import` or `POST /api/v1/bundle` reads it: the
//! opener must answer chunks or a specific error, never panic, never hand out a chunk
//! that did not authenticate, and every event inside goes through validation. The
//! first byte sets the size of the pieces the file is fed in (uploads arrive in pieces
//! of any size). Seeds (`seeds/bundle/`) are sealed with the community key
//! `FUZZ_KEY`, so the fuzzer starts past the community check.
//!
//! The same bytes are also read as a hub backup (`aidmesh restore`,
//! protocol/src/backup.rs), the other file that arrives on a USB stick: the reader
//! must answer records or a specific error, never panic, and a file it calls whole
//! reads the same fed in one piece. A seed (`seeds/bundle/backup-*`) is a backup.
#![no_main]

use aidmesh_protocol::backup;
use aidmesh_protocol::bundle::Opener;
use aidmesh_protocol::{validate, Rules};
use libfuzzer_sys::fuzz_target;

/// The community key of the seeds (see protocol/tests/fuzz_seeds.rs).
const FUZZ_KEY: [u8; 32] = [0x42; 32];
/// A fixed "now" (2026-11-30) so runs are reproducible.
const NOW_MS: u64 = 1_796_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&step, file)) = data.split_first() else {
        return;
    };
    read_backup(file, usize::from(step).max(1));
    let mut opener = Opener::new(&FUZZ_KEY);
    let mut last_index = None;
    for piece in file.chunks(usize::from(step).max(1)) {
        opener.push(piece);
        loop {
            match opener.next_chunk() {
                Ok(Some(chunk)) => {
                    // Chunks come in order, once each.
                    assert_eq!(chunk.index, last_index.map_or(0, |i: u64| i + 1));
                    last_index = Some(chunk.index);
                    for e in &chunk.events {
                        let _ = validate(e, &Rules::at(NOW_MS), &());
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = opener.finish();
});

/// Reads `file` as a backup in pieces of `step` bytes.
fn read_backup(file: &[u8], step: usize) {
    let mut r = backup::Reader::new();
    let mut records = Vec::new();
    for piece in file.chunks(step) {
        r.feed(piece);
        loop {
            match r.next_record() {
                Ok(Some(rec)) => records.push(rec),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    if r.finish().is_ok() {
        assert_eq!(backup::read_all(file).ok(), Some(records));
    }
}
