//! The map view in a real browser (issue 27): runs `node --test tests/web/map.mjs`
//! against a node with the test town installed (built by tippecanoe,
//! `aidmesh_tests::test_town_pmtiles`), Chromium drawing it with software WebGL.
//! `#[ignore]`d like the other browser tests; run with `--include-ignored`, where a
//! missing prerequisite (chromium, tippecanoe) fails it.

#[test]
#[ignore = "needs chromium, npm ci in tests/web and tippecanoe (tests/run.sh)"]
fn map_view_pins_cards_placing_and_no_request_beyond_the_node() {
    let town = aidmesh_tests::test_town_pmtiles();
    // Read by map.mjs (the one test in this binary: nothing else reads the environment).
    std::env::set_var("AIDMESH_TEST_TOWN", &town);
    aidmesh_tests::run_browser_test("map.mjs", 2);
}
