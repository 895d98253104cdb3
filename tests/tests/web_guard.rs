//! The HTTP guard in a real browser: runs `node --test tests/web/guard.mjs`
//! (playwright-core driving Debian's Chromium against a real node listening on every
//! address): the page on a phone at the hub's LAN address still works, a hostile page
//! on another origin cannot erase or post, a DNS-rebinding name reads nothing. Needs
//! node, Chromium and playwright-core (`npm ci` in tests/web), as `web_page.rs`: when
//! they are missing it says so loudly and skips (under CI it fails instead).

use std::path::Path;
use std::process::Command;

#[test]
fn the_guard_in_a_real_browser() {
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
    if !missing.is_empty() {
        let msg = format!(
            "browser guard test cannot run: missing {}",
            missing.join(", ")
        );
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("\n*** SKIPPED: {msg} ***\n");
        return;
    }
    let out = Command::new("node")
        .arg("--test")
        .arg(web.join("guard.mjs"))
        .env("AIDMESH_BIN", aidmesh_tests::binary())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node --test");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser guard test failed:\n{text}");
    assert!(
        text.contains("# pass 1"),
        "browser guard test did not run:\n{text}"
    );
}
