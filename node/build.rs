//! Records when the node was built, as `AIDMESH_BUILD_MS` (ms since the Unix epoch): the
//! mesh clock's plausibility floor (no real time can be earlier than the build). Honours
//! `SOURCE_DATE_EPOCH` for reproducible builds.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    // No rerun-if line on purpose: then cargo reruns this whenever a file of the
    // package changes, so the floor follows the last change of the node's code.
    let ms = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        });
    println!("cargo:rustc-env=AIDMESH_BUILD_MS={ms}");
}
