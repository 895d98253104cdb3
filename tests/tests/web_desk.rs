//! The desk form in a real browser (issue 13): runs `node --test tests/web/desk.mjs`
//! (one-tap categories, the draft kept across a node restart). `#[ignore]`d like
//! `web_page.rs`; run with `--include-ignored`, where a missing prerequisite fails it.

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn desk_form_keeps_its_draft_across_a_node_restart() {
    aidmesh_tests::run_browser_test("desk.mjs", 1);
}
