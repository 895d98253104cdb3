//! A PMTiles map file, as `aidmesh map add FILE` checks it and the node reads it before
//! serving (`node/src/doors/pmtiles.rs`): header, root directory and metadata must give
//! a map or a specific error, never a panic or an unbounded allocation. The same bytes
//! are also decoded as a bare directory, and as the root directory (uncompressed) of a
//! well-formed header, so the directory checks are reached without the fuzzer having
//! to find a valid header first. The printed board's overview (`doors/overview.rs`) is
//! fuzzed here too: the bytes as a vector tile, and the overview drawn from the map
//! whose root directory they are (tile lookup, leaf directories, tile decoding). Seeds (`seeds/pmtiles/`) are the test town that
//! tippecanoe builds from tests/data/map.
#![no_main]

use aidmesh_node::doors::overview::{decode_mvt, render, Pin};
use aidmesh_node::doors::pmtiles::{decode_directory, inspect, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    if let Ok(info) = inspect(data) {
        let [lon, lat] = info.center();
        let pins = [Pin {
            number: 0,
            lat,
            lon,
        }];
        let _ = render(
            &info,
            &pins,
            |offset, length| {
                let start = usize::try_from(offset).ok()?;
                data.get(start..start.checked_add(usize::try_from(length).ok()?)?)
                    .map(<[u8]>::to_vec)
            },
            "map",
        );
        let [w, s, e, n] = info.bounds();
        assert!((-180.0..=180.0).contains(&w) && (-180.0..=180.0).contains(&e));
        assert!((-90.0..=90.0).contains(&s) && (-90.0..=90.0).contains(&n) && s <= n);
        assert!(info.header.min_zoom <= info.header.max_zoom);
        assert!(info.bytes == data.len() as u64);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let _ = decode_directory(data);
    let _ = decode_mvt(data, &["water", "roads"], 10_000);
    // A header whose root directory is `data`, uncompressed, with 64 bytes of tiles.
    let root_offset = HEADER_LEN as u64;
    let data_offset = root_offset + data.len() as u64;
    let mut file = b"PMTiles\x03".to_vec();
    for v in [
        root_offset,
        data.len() as u64,
        data_offset,
        0,
        data_offset,
        0,
        data_offset,
        64,
        1,
        1,
        1,
    ] {
        file.extend(v.to_le_bytes());
    }
    file.extend([1, 1, 1, 1, 0, 14]);
    for v in [-37_000_000i32, 404_000_000, -36_800_000, 404_150_000] {
        file.extend(v.to_le_bytes());
    }
    file.push(14);
    file.extend((-36_900_000i32).to_le_bytes());
    file.extend(404_070_000i32.to_le_bytes());
    file.extend(data);
    file.extend([0u8; 64]);
    check(&file);
});
