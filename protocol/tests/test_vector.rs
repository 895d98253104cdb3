//! The worked example of docs/protocol.md §4.3, computed independently of this crate
//! (Python `cryptography` and a reference BLAKE3). If this fails, either the code or
//! the specification changed the wire format.

use aidmesh_protocol::fixture::spec_event;

#[test]
fn spec_test_vector_matches() {
    let e = spec_event();
    let signed = concat!(
        "01",
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        "808080e0868ab1d001",
        "01",
        "2c",
        "057761746572",
        "00",
        "00",
        "0114",
        "066c6974726573",
        "02",
        "0c3132204d696c6c204c616e65",
        "01",
        "809b92eb03",
        "ffbd9201",
        "00",
        "00",
        "00",
    );
    let signature = concat!(
        "63ec4fe8c265ab338bbb7f4843a9fae10c288a6a995e99ac3fd4579f6af3330e",
        "2c7ad491302b8397acbc95a6f62be02663a8f802d7cb7f642f42476761ed1b09",
    );
    assert_eq!(hex::encode(e.bytes()), format!("{signed}{signature}"));
    assert_eq!(
        e.id().to_hex(),
        "8efcd27c91b2c9d282c9e215cd575bb73f388153e05b93b9a0d3c09e2ed1dc01"
    );
    assert_eq!(e.id().short(), "8efcd27c91");
    assert_eq!(e.author().short(), "8a88e3dd");
    assert_eq!(e.bytes().len(), 152);
}
