//! The web page in a real browser: runs `node --test tests/web/` (`page.test.mjs` and
//! `live.test.mjs`: playwright-core driving Debian's Chromium against a real node). It needs Chromium, Node.js and
//! `npm ci` in tests/web, so it is `#[ignore]`d: a plain `cargo test` lists it as
//! ignored, `cargo test -- --include-ignored` runs it (`tests/run.sh` installs what it needs
//! first), and there a missing prerequisite fails the test, naming what to install.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn web_page_in_a_real_browser() {
    aidmesh_tests::run_browser_test("", 7);
}
