//! The HTTP guard in a real browser: runs `node --test tests/web/guard.mjs`
//! (playwright-core driving Debian's Chromium against a real node listening on every
//! address): the page on a phone at the hub's LAN address still works, a hostile page
//! on another origin cannot erase or post, a DNS-rebinding name reads nothing. Needs
//! Node.js, Chromium and `npm ci` in tests/web, so it is `#[ignore]`d like
//! `web_page.rs`; run with `--include-ignored`, a missing prerequisite fails it.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn the_guard_in_a_real_browser() {
    aidmesh_tests::run_browser_test("guard.mjs", 1);
}
