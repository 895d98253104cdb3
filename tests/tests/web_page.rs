//! The web page in a real browser: runs `node --test tests/web/` (playwright-core
//! driving Debian's Chromium against a real node). It needs Chromium, Node.js and
//! `npm ci` in tests/web, so it is `#[ignore]`d: a plain `cargo test` lists it as
//! ignored, `cargo test -- --include-ignored` runs it (`.ci/run` installs what it needs
//! first), and there a missing prerequisite fails the test, naming what to install.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn web_page_in_a_real_browser() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!node_ok).then_some("node"),
        (!Path::new(&chromium).exists()).then_some("chromium"),
        (!web.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci in tests/web)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "the web page test cannot run: missing {}. Install Chromium (or point CHROMIUM at \
         it) and Node.js, and run `npm ci` in tests/web (.ci/run does all three)",
        missing.join(", ")
    );
    let out = Command::new("node")
        .arg("--test")
        .arg(&web)
        .env("AIDMESH_BIN", aidmesh_tests::binary())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node --test");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser test failed:\n{text}");
    assert!(
        text.contains("# pass 1"),
        "browser test did not run:\n{text}"
    );
}
