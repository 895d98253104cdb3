//! What arrives from the LAN before any connection, and what a member says in peer
//! exchange: a beacon datagram (node/src/net/beacon.rs, format AMB2, from anyone on the
//! subnet; judged with the beacon key of the all-zero community key, which the seed
//! is made with, so that the fuzzer reaches past the MAC) when the first byte is 0, a peer-exchange request when 1, an answer when 2 (net/pex.rs,
//! from a connected member). Decoding must answer a value or an error, never panic;
//! what decodes encodes back to the same bytes. Seeds (`seeds/beacon/`) are written by
//! `node/tests/fuzz_seeds_beacon.rs`.
#![no_main]

use aidmesh_node::net::beacon::{hear, Beacon, BeaconKey, Freshness, PeerId};
use aidmesh_node::net::pex::{PexRequest, PexResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    match kind {
        0 => {
            let key = BeaconKey::of(&[0; 32]);
            if let Ok(b) = Beacon::decode(rest, &key) {
                assert_eq!(b.encode(&key), rest);
            }
            let me: PeerId = "12D3KooWFe1tHkzdbVqvZwZpWNFigXWvPC4E6MaefTQdqhhSwZ3N"
                .parse()
                .expect("a valid peer id");
            let from = "10.0.0.1:4612".parse().expect("a socket address");
            let mut fresh = Freshness::default();
            let now = std::time::Instant::now();
            let _ = hear(rest, from, &me, &key, &mut fresh, now);
            // Heard twice: never dialled twice.
            let again = hear(rest, from, &me, &key, &mut fresh, now);
            assert!(!matches!(again, aidmesh_node::net::beacon::Heard::Dial(..)));
        }
        1 => {
            if let Ok(r) = PexRequest::decode(rest) {
                assert_eq!(r.encode(), rest);
            }
        }
        _ => {
            if let Ok(r) = PexResponse::decode(rest) {
                assert_eq!(PexResponse::decode(&r.encode()), Ok(r));
            }
        }
    }
});
