//! `aidmesh export` and consent to share with responders, with the real binary against
//! a real node (issue 12): a file written whole to `--out`, standard output without it,
//! the PFIF export following `welfare add --share-with-responders` and `welfare share`,
//! and clear refusals.

use aidmesh_tests::Opts;

mod common;

use common::*;

#[test]
fn export_writes_files_and_follows_the_sharing_answers() {
    let node = start_node("export-cli", Opts::default());
    let dir = node.dir();
    ok(
        dir,
        &[
            "need",
            "add",
            "@ drinking water",
            "--category",
            "water",
            "--lat",
            "51.5",
            "--lon",
            "-0.12",
        ],
    );
    ok(
        dir,
        &[
            "welfare",
            "add",
            "Ada Okafor",
            "--where",
            "14 River Rd",
            "--every",
            "12h",
            "--share-with-responders",
        ],
    );
    ok(
        dir,
        &[
            "welfare",
            "add",
            "Bo Lindqvist",
            "--where",
            "2 Mill Lane",
            "--every",
            "12h",
        ],
    );
    ok(dir, &["welfare", "check", "Ada", "--safe", "--by", "Sam"]);

    // To a file: written whole, and said so.
    let out_dir = tempfile::tempdir().expect("temp dir");
    let file = out_dir.path().join("board.csv");
    let file_s = file.to_str().expect("UTF-8 path");
    let said = ok(dir, &["export", "--format", "csv", "--out", file_s]);
    assert!(said.starts_with(&format!("wrote {file_s} (")), "{said}");
    let csv = std::fs::read_to_string(&file).expect("the file is there");
    assert!(
        csv.starts_with("id,kind,title,"),
        "row 1 is the header: {csv}"
    );
    assert!(
        csv.contains("'@ drinking water"),
        "formula-like title escaped: {csv}"
    );
    let leftovers = std::fs::read_dir(out_dir.path()).expect("list").count();
    assert_eq!(leftovers, 1, "no temporary file left beside the export");

    // Into a directory: under the node's name for it (hub, node, when).
    let into = tempfile::tempdir().expect("temp dir");
    let into_s = into.path().to_str().expect("UTF-8 path");
    let said = ok(dir, &["export", "--format", "hxl", "--out", into_s]);
    let names: Vec<String> = std::fs::read_dir(into.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("aidmesh-") && names[0].ends_with("Z.hxl.csv"),
        "{names:?}"
    );
    assert!(said.contains(&names[0]), "{said}");

    // To standard output; the hub computer needs no PIN for PFIF.
    let pfif = ok(dir, &["export", "--format", "pfif"]);
    assert!(
        pfif.contains(r#"<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4">"#),
        "{pfif}"
    );
    assert!(
        pfif.contains("<pfif:full_name>Ada Okafor</pfif:full_name>"),
        "{pfif}"
    );
    assert!(
        pfif.contains("<pfif:status>believed_alive</pfif:status>"),
        "{pfif}"
    );
    assert!(!pfif.contains("Bo Lindqvist"), "Bo never agreed: {pfif}");

    // Answers change later, by name.
    let said = ok(dir, &["welfare", "share", "Bo", "yes"]);
    assert_eq!(
        said,
        "Bo Lindqvist will be shared with responders (pfif export)\n"
    );
    let said = ok(dir, &["welfare", "share", "Ada", "no"]);
    assert_eq!(said, "Ada Okafor will not be shared with responders\n");
    let pfif = ok(dir, &["export", "--format", "pfif"]);
    assert!(
        pfif.contains("Bo Lindqvist") && !pfif.contains("Ada Okafor"),
        "{pfif}"
    );
    let people = json(dir, &["welfare", "list", "--json"]);
    let shared: Vec<(&str, bool)> = array(&people)
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or(""),
                p["share_with_responders"] == true,
            )
        })
        .collect();
    assert!(
        shared.contains(&("Ada Okafor", false)) && shared.contains(&("Bo Lindqvist", true)),
        "{shared:?}"
    );

    // Refusals.
    fails(
        dir,
        &["export", "--format", "xls"],
        1,
        &["unknown format 'xls'; formats: csv, hxl, geojson, pfif"],
    );
    fails(
        dir,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            "/nonexistent/dir/x.csv",
        ],
        1,
        &["cannot write /nonexistent/dir/x.csv"],
    );
    fails(
        dir,
        &["welfare", "share", "Ada", "maybe"],
        2,
        &["invalid value 'maybe'"],
    );
    fails(
        dir,
        &["welfare", "share", "Nobody", "yes"],
        1,
        &["nobody registered matches 'Nobody'"],
    );
}
