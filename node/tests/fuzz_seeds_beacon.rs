//! The seeds of the `beacon` fuzz target (fuzz/seeds/beacon/): a valid AMB2 beacon, a
//! peer-exchange request and an answer, each behind its kind byte. Fails when they no
//! longer match what the node encodes; `AIDMESH_WRITE_SEEDS=1 cargo test -p
//! aidmesh-node --test fuzz_seeds_beacon` writes them anew.

use std::path::PathBuf;

use aidmesh_node::net::beacon::{Beacon, BeaconKey, PeerId};
use aidmesh_node::net::pex::{PexRequest, PexResponse};

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let peer: PeerId = "12D3KooWFe1tHkzdbVqvZwZpWNFigXWvPC4E6MaefTQdqhhSwZ3N"
        .parse()
        .unwrap();
    let other: PeerId = "12D3KooWGEiqSPn1YJnVCCQ1kFpPryNmFFxhJWX2w9QLTmqa6KYh"
        .parse()
        .unwrap();
    // Under the all-zero community key's beacon key, as the fuzz target judges it;
    // sent from 10.0.0.1, the source the target gives.
    let beacon = Beacon {
        peer,
        port: 4610,
        addr: [10, 0, 0, 1].into(),
        boot: 0x0123_4567_89ab_cdef,
        seq: 1,
        time_ms: 1_796_000_000_000,
    }
    .encode(&BeaconKey::of(&[0; 32]));
    let req = PexRequest { ports: vec![4610] }.encode();
    let resp = PexResponse {
        addrs: vec![
            format!("/ip4/192.168.1.20/tcp/4610/p2p/{peer}")
                .parse()
                .unwrap(),
            format!("/ip6/fd00::7/tcp/4610/p2p/{other}")
                .parse()
                .unwrap(),
            format!("/dns4/hall.local/tcp/4610/p2p/{other}")
                .parse()
                .unwrap(),
        ],
    }
    .encode();
    let tagged = |k: u8, b: Vec<u8>| [vec![k], b].concat();
    vec![
        ("beacon", tagged(0, beacon)),
        ("pex_request", tagged(1, req)),
        ("pex_response", tagged(2, resp)),
    ]
}

#[test]
fn beacon_fuzz_seeds_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/beacon");
    let write = std::env::var_os("AIDMESH_WRITE_SEEDS").is_some();
    for (name, bytes) in seeds() {
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let held = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write the seeds with AIDMESH_WRITE_SEEDS=1",
                path.display()
            )
        });
        assert_eq!(
            held,
            bytes,
            "{} is stale; write the seeds anew",
            path.display()
        );
    }
}
