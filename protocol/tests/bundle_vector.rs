//! The bundle test vector of docs/protocol.md §11.6, computed independently of this
//! crate (Python `cryptography`: HMAC-SHA-256 for HKDF-Extract, HKDFExpand, and
//! ChaCha20Poly1305). If this fails, the code or the specification changed the format.

use aidmesh_protocol::bundle::{Opener, Sealer, MIN_CHUNK_SIZE};
use aidmesh_protocol::fixture::spec_event;

const HEADER: &str = concat!(
    "4149444d42554e44",                 // "AIDMBUND"
    "01000000",                         // version 1, reserved
    "00004004",                         // chunk size 16388
    "000001a0c4506c00",                 // created 1790000000000 ms
    "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5", // salt
    "ea5b841e92b3891cfd80e7972f595b58", // check
);

const CHUNK: &str = concat!(
    "000000ac", // 172 bytes: 4 + 152 plaintext, 16 tag
    "0133465e3eaf0440555b1b0304717343dbddd96dcd8c37d60ca3943128a3c080",
    "71b96c7dec09295b959b7c995b2d0b20264cd719e47373129778220c167e1f79",
    "9dad7178467dc12246647abff925000d8dd6d8188bc02d5c2408ad6272c49c5e",
    "3ebcf31613b01976c71cb70ebca0bedbb4a395e4c115e4899c131151d4c345ac",
    "e221151be164365f99642a686296c9ba55aa7e1b73abd487ddca1055b53635da",
    "7abdd3cb3c3f9901ce2cdfa4",
);

#[test]
fn spec_bundle_vector_matches() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let e = spec_event();
    let mut s = Sealer::with_chunk_size(&key, 1_790_000_000_000, [0xa5; 16], MIN_CHUNK_SIZE);
    let mut file = s.header().to_vec();
    assert!(s.add(e.bytes()).is_none());
    file.extend_from_slice(&s.finish());
    assert_eq!(hex::encode(&file[..56]), HEADER);
    assert_eq!(hex::encode(&file[56..]), CHUNK);
    assert_eq!(file.len(), 232);
    // And it reads back to the same event.
    let mut o = Opener::new(&key);
    o.push(&file);
    let c = o.next_chunk().unwrap().expect("one chunk");
    assert!(c.last);
    assert_eq!(c.events, vec![e.bytes().to_vec()]);
    assert_eq!(o.finish(), Ok(1));
}
