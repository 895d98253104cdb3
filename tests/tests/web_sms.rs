//! The main page's link to the SMS gateway's panel, in a real browser: runs
//! `node --test tests/web/sms.mjs` (playwright-core driving Debian's Chromium against
//! real nodes, one with a gateway on a files-backend configuration, one without).
//! `#[ignore]`d like `web_page.rs`; run with `--include-ignored`, where a missing
//! prerequisite fails it.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn the_sms_panel_link_on_the_page_in_a_real_browser() {
    aidmesh_tests::run_browser_test("sms.mjs", 1);
}
