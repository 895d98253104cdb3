//! The load harness is kept in step with the page (issue 17): the real page in
//! Chromium and a harness phone (`aidmesh_tests::phones`) go through the same
//! lifecycle against a real node (start; a need posted by the hub computer; the
//! refresh timer, twice), and must make the same requests in each phase. If the
//! page's requests change and the harness does not follow, this fails.

use std::process::Command;
use std::time::Duration;

use aidmesh_tests::phones::{PagePlan, Phone, Target};
use aidmesh_tests::{wait_for_async, Node, Opts};

/// Phases of requests, each sorted (requests in one phase may go out in any order).
type Phases = Vec<Vec<String>>;

fn harness_lifecycle(node: &Node) -> Phases {
    let api = node
        .api_url()
        .trim_start_matches("http://")
        .parse()
        .expect("API address");
    let base = node.api_url().to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let mut plan = PagePlan::from_page();
        // Fired by hand (`tick`), as the Chromium side fast-forwards the page's clock.
        plan.refresh_ms = 3_600_000;
        let stream = format!("GET {}", plan.stream);
        let phone = Phone::open(0, plan, Target::new(api), None, Some(tx));
        assert!(
            phone.wait_served(Duration::from_secs(20)).await,
            "{:?}",
            phone.stats()
        );
        // As record_requests.mjs: the stream asked for, then the same 300 ms window,
        // in which whatever the start-up still asks for falls in this phase on both
        // sides (a window, not a wait: an absence of requests is only seen over one).
        wait_for_async(
            "the phone to ask for the stream",
            Duration::from_secs(10),
            || phone.stats().requests.contains(&stream).then_some(()),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut phases = Vec::new();
        let mut mark = 0;
        let mut phase = |phone: &Phone| {
            let r = phone.stats().requests;
            let mut p = r[mark..].to_vec();
            p.sort();
            mark = r.len();
            phases.push(p);
        };
        phase(&phone);
        let id = tokio::task::spawn_blocking(move || {
            aidmesh_tests::try_post_need(&aidmesh_tests::http(), &base, "Harness need")
        })
        .await
        .unwrap()
        .expect("post");
        loop {
            let s = tokio::time::timeout(Duration::from_secs(10), seen.recv())
                .await
                .expect("the need reached the phone within 10 s")
                .expect("phone running");
            if s.id == id {
                break;
            }
        }
        // The phase's window, as record_requests.mjs's 300 ms: a new need must make no
        // request, and an absence is only seen over a window.
        tokio::time::sleep(Duration::from_millis(300)).await;
        phase(&phone);
        for _ in 0..2 {
            phone.tick().await;
            phase(&phone);
        }
        phases
    })
}

fn browser_lifecycle(node: &Node) -> Phases {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists()
            && web.join("node_modules/playwright-core").exists(),
        "needs Chromium (or CHROMIUM pointing at it), Node.js and `npm ci` in tests/web"
    );
    let out = Command::new("node")
        .arg(web.join("record_requests.mjs"))
        .arg(node.api_url())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node record_requests.mjs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "record_requests.mjs failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
#[ignore = "needs chromium and npm ci in tests/web"]
fn the_harness_makes_the_same_requests_as_the_page_in_chromium() {
    let node = Node::start("hub", Opts::default());
    node.need("A need already on the board");
    let page = browser_lifecycle(&node);
    let phone = harness_lifecycle(&node);
    let names = ["start", "a need posted", "timer", "timer again"];
    assert_eq!(page.len(), names.len(), "{page:?}");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            phone[i], page[i],
            "phase '{name}': the harness (left) and the page in Chromium (right) differ; \
             update tests/src/phones.rs to follow app.js"
        );
    }
    // The lifecycle says something: files, the board and the stream at start, nothing
    // for a new need, conditional refreshes on the timer.
    assert!(page[0].iter().any(|r| r.contains("/api/v1/board")));
    assert!(page[1].is_empty(), "{:?}", page[1]);
    assert!(page[2].iter().all(|r| r.ends_with("(conditional)")));
}
