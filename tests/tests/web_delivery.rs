//! Honest delivery on the page (issue 11): runs `node --test tests/web/delivery.mjs`
//! (the "2/2" badge updated live when a second hub connects, the hub roster, the
//! unreached flag). `#[ignore]`d like `web_page.rs`; run with `--include-ignored`.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn known_counts_roster_and_unreached_flag_on_the_page() {
    aidmesh_tests::run_browser_test("delivery.mjs", 1);
}
