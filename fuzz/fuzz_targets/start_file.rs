//! The start file (`protocol/src/start_file.rs`), read at a node's start from its own
//! data directory: damaged on disk, or written by a buggy node. The bytes are tried as
//! a whole file (under the token its header names, so the token check passes), and
//! as a body sealed with a matching length and checksum, which reaches the decoder and
//! the consistency checks the checksum otherwise keeps random bytes from. A view that
//! is accepted is asked every question a node asks of it.
#![no_main]

use aidmesh_protocol::start_file::{decode, seal, token_of, HEADER_LEN, MAGIC};
use libfuzzer_sys::fuzz_target;

const NOW_MS: u64 = 1_796_000_000_000;

fuzz_target!(|data: &[u8]| {
    let token = token_of(data).unwrap_or([0; 16]);
    let _ = decode(data, &token);
    // A seed is a whole file: its body is what is worth mutating.
    let body = if data.starts_with(&MAGIC) {
        data.get(HEADER_LEN..).unwrap_or_default()
    } else {
        data
    };
    if let Ok(file) = decode(&seal(&token, body), &token) {
        assert!(file.time_index.windows(2).all(|w| w[0] < w[1]));
        let v = &file.view;
        let _ = v.items(NOW_MS);
        for h in v.heads(NOW_MS) {
            let _ = v.author(h.author());
            let _ = v.item(&h.id, NOW_MS);
        }
        let _ = v.people();
        let _ = v.hubs();
        let _ = v.alerts(NOW_MS);
        let _ = v.purgeable();
        let _ = v.welfare_expired(NOW_MS, 86_400_000, 0);
        let _ = v.len();
    }
});
