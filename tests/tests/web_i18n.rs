//! Languages on the web page in a real browser (issue 13): runs
//! `node --test tests/web/i18n.mjs` (playwright-core driving Debian's Chromium against a
//! real node). `#[ignore]`d like `web_page.rs`; run with `--include-ignored`, where a
//! missing prerequisite fails it.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn spanish_and_english_on_the_page_in_a_real_browser() {
    aidmesh_tests::run_browser_test("i18n.mjs", 1);
}
