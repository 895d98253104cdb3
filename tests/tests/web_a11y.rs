//! Eyes and hands on the web page in a real browser (issue 13): runs
//! `node --test tests/web/a11y.mjs` (axe-core on every tab in English and Spanish,
//! keyboard alone, 320 px and 200 % zoom). `#[ignore]`d like `web_page.rs`; run with
//! `--include-ignored`, where a missing prerequisite fails it.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn axe_keyboard_and_small_screens_in_a_real_browser() {
    aidmesh_tests::run_browser_test("a11y.mjs", 3);
}
