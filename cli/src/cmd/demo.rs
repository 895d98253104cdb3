//! `aidmesh demo`: a small flooded neighbourhood on this machine. Three hubs (nodes on
//! loopback, in temporary directories, joined in a chain so events must hop), a
//! realistic board, and an urgent need posted at one hub timed as it reaches the
//! others. Everything is removed at the end.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use aidmesh_node::node::{self, NodeConfig, Started};
use serde_json::{json, Value};

use crate::error::{CliError, DemoError};
use crate::output;

struct Hub {
    name: &'static str,
    api: String,
    addr: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(a: &ureq::Agent, url: &str) -> Result<Value, CliError> {
    a.get(url)
        .call()
        .map_err(DemoError::NoAnswer)?
        .body_mut()
        .read_json()
        .map_err(|e| DemoError::BadJson(e).into())
}

fn post(a: &ureq::Agent, url: &str, body: Value) -> Result<Value, CliError> {
    let mut r = a.post(url).send_json(body).map_err(DemoError::NoAnswer)?;
    let ok = r.status().is_success();
    let v: Value = r.body_mut().read_json().map_err(DemoError::BadBody)?;
    if !ok {
        return Err(DemoError::Refused(v["detail"].clone()).into());
    }
    Ok(v)
}

fn wait(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<bool, CliError>,
) -> Result<Duration, CliError> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(DemoError::TimedOut(what.to_string()).into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The demo's choices: whether the hubs stay up after the tour, and the first hub's
/// web and peer ports (the other hubs take the next two; 0: any free port).
#[derive(Debug, Clone, Copy)]
pub struct DemoArgs {
    /// Keep the hubs up after the tour, until Ctrl-C.
    pub keep: bool,
    /// The first hub's web (API) port.
    pub api: u16,
    /// The first hub's peer port.
    pub port: u16,
}

/// The port of hub `i` when the first takes `first` (0: any free port).
fn nth_port(first: u16, i: usize) -> u16 {
    if first == 0 {
        0
    } else {
        first.saturating_add(i as u16)
    }
}

/// Runs the demo; with `keep`, the hubs stay up after the tour until Ctrl-C.
pub fn run(args: DemoArgs) -> Result<(), CliError> {
    let root = std::env::temp_dir().join(format!("aidmesh-demo-{}", std::process::id()));
    let result = run_in(&root, args);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn run_in(root: &std::path::Path, args: DemoArgs) -> Result<(), CliError> {
    let keep = args.keep;
    println!("aidmesh demo: a flooded neighbourhood with three hubs on this machine.\n");
    let rt = tokio::runtime::Runtime::new().map_err(DemoError::Runtime)?;
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let names = ["Elm St church hall", "Riverside school gym", "Fire station"];
    let passphrase = "demo harbor lantern river otter maple";
    let mut hubs: Vec<Hub> = Vec::new();
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let dir = root.join(format!("hub{i}"));
        node::init(&dir, "Riverside", Some(passphrase))?;
        let mut cfg = NodeConfig::new(dir);
        cfg.listen = vec![format!("/ip4/127.0.0.1/tcp/{}", nth_port(args.port, i))
            .parse()
            .map_err(|_| DemoError::BadAddress)?];
        cfg.api = std::net::SocketAddr::from(([127, 0, 0, 1], nth_port(args.api, i)));
        // Only its own hubs: no discovery on the network, so a real node beside it
        // (this machine's or the LAN's) neither finds it nor hears of it.
        cfg.mdns = false;
        cfg.beacon = false;
        cfg.peer_exchange = false;
        // A chain: each hub knows only the previous one, so events must hop.
        if let Some(prev) = hubs.last() {
            cfg.peers = vec![prev.addr.parse().map_err(|_| DemoError::BadAddress)?];
        }
        let (tx, rx) = mpsc::channel::<Started>();
        let mut stop = stop_tx.subscribe();
        tasks.push(rt.spawn(node::run(
            cfg,
            async move {
                let _ = stop.recv().await;
            },
            move |s| {
                let _ = tx.send(s.clone());
            },
        )));
        let s = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(s) => s,
            // The hub stopped before it started (a port in use): say why, at once.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = stop_tx.send(());
                let task = tasks.pop().expect("this hub's task");
                if let Ok(Err(e)) = rt.block_on(task) {
                    return Err(e.into());
                }
                return Err(DemoError::HubDidNotStart(name).into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(DemoError::HubDidNotStart(name).into())
            }
        };
        let addr = format!(
            "{}/p2p/{}",
            s.listen.first().cloned().unwrap_or_default(),
            s.peer_id
        );
        println!(
            "  started hub {:<22} peer {}…  web http://{}/",
            name,
            &s.peer_id[..16],
            s.api
        );
        hubs.push(Hub {
            name,
            api: format!("http://{}", s.api),
            addr,
        });
    }
    if keep {
        println!("  (these web pages stay open after the tour, until Ctrl-C)");
    } else {
        println!("  (these web pages answer while the demo runs and close when it exits;\n   `aidmesh demo --keep` keeps them open until Ctrl-C)");
    }
    let a = agent();
    let mid = &hubs[1];
    wait("the hubs to connect", Duration::from_secs(20), || {
        Ok(get(&a, &format!("{}/api/v1/status", mid.api))?["peers"].as_u64() == Some(2))
    })?;
    println!(
        "\n  hubs connected: {} <-> {} <-> {}\n",
        hubs[0].name, hubs[1].name, hubs[2].name
    );

    let board: [(usize, &str, Value); 9] = [
        (
            0,
            "hubs",
            json!({"name": names[0], "place": "Elm St", "services": ["water", "charging", "first aid"]}),
        ),
        (
            1,
            "hubs",
            json!({"name": names[1], "place": "Riverside school", "services": ["beds", "food"]}),
        ),
        (
            0,
            "needs",
            json!({"title": "Sandbags for 12 Mill Lane", "category": "cleanup", "urgency": "high", "qty": 60, "unit": "bags", "place": "12 Mill Lane", "lat": 29.951, "lon": -90.071}),
        ),
        (
            1,
            "needs",
            json!({"title": "Dry blankets for 8 people", "category": "shelter", "qty": 8, "place": "Riverside school gym"}),
        ),
        (
            2,
            "needs",
            json!({"title": "Ride to dialysis tomorrow 9am", "category": "transport", "urgency": "high", "place": "Oak Ave"}),
        ),
        (
            0,
            "offers",
            json!({"title": "Boat with driver", "category": "rescue", "place": "Elm St", "contact": "ask for Sam"}),
        ),
        (
            1,
            "offers",
            json!({"title": "Blankets", "category": "shelter", "qty": 40, "place": "Riverside school gym"}),
        ),
        (
            2,
            "offers",
            json!({"title": "Generator, 2 kW", "category": "power", "place": "Fire station", "lat": 29.955, "lon": -90.075}),
        ),
        (
            2,
            "alerts",
            json!({"headline": "Water rising on River Road", "severity": "severe", "area": "River Road", "expires": "12h"}),
        ),
    ];
    for (hub, path, body) in board {
        post(&a, &format!("{}/api/v1/{path}", hubs[hub].api), body)?;
    }
    // People to check on, and a first round of visits.
    let people = [
        (
            0,
            json!({"name": "Mrs Ada Okafor", "place": "14 River Rd, 3rd floor", "every": "12h", "risks": ["oxygen", "lives alone"], "consent": "self"}),
        ),
        (
            1,
            json!({"name": "Mr Bo Lindqvist", "place": "2 Mill Lane", "every": "6h", "risks": ["wheelchair"], "consent": "relative"}),
        ),
        (
            2,
            json!({"name": "Cy and baby", "place": "7 Oak Ave", "every": "24h", "risks": ["newborn"], "consent": "self"}),
        ),
    ];
    let mut ids = Vec::new();
    for (hub, body) in people {
        let v = post(&a, &format!("{}/api/v1/people", hubs[hub].api), body)?;
        ids.push((hub, v["short_id"].as_str().unwrap_or("").to_string()));
    }
    post(
        &a,
        &format!("{}/api/v1/people/{}/checkins", hubs[0].api, ids[0].1),
        json!({"outcome": "needs-help", "detail": "oxygen concentrator needs power", "by": "Sam"}),
    )?;
    post(
        &a,
        &format!("{}/api/v1/people/{}/checkins", hubs[1].api, ids[1].1),
        json!({"outcome": "no-answer", "by": "Priya"}),
    )?;
    post(
        &a,
        &format!("{}/api/v1/people/{}/checkins", hubs[2].api, ids[2].1),
        json!({"outcome": "safe", "by": "Jo"}),
    )?;
    // 9 board posts, 3 people, 3 check-ins and the need the "needs help" visit raised.
    let total = 16;
    let took = wait(
        "the board to reach every hub",
        Duration::from_secs(30),
        || {
            let mut digests = Vec::new();
            for h in &hubs {
                let s = get(&a, &format!("{}/api/v1/status", h.api))?;
                if s["events"].as_u64() != Some(total) {
                    return Ok(false);
                }
                digests.push(s["digest"].as_str().unwrap_or("").to_string());
            }
            Ok(digests.windows(2).all(|w| w[0] == w[1]))
        },
    )?;
    println!("  {total} records (needs, offers, hubs, an alert, people to check on and visits) made at different hubs; every hub holds all of them (same digest) after {} ms\n", took.as_millis());

    println!("  An urgent need is posted at the {}:", hubs[2].name);
    let sent = Instant::now();
    let need = post(
        &a,
        &format!("{}/api/v1/needs", hubs[2].api),
        json!({"title": "Insulin for Mrs Ada, 3rd floor", "category": "medical", "urgency": "life-threatening", "qty": 2, "unit": "pens", "place": "14 River Rd", "lat": 29.952, "lon": -90.072}),
    )?;
    let id = need["id"].as_str().unwrap_or("").to_string();
    println!(
        "    posted {} (acknowledged, on disk) after {} ms",
        &id[..10.min(id.len())],
        sent.elapsed().as_millis()
    );
    for h in hubs.iter().take(2).rev() {
        wait(
            &format!("the need to reach {}", h.name),
            Duration::from_secs(10),
            || {
                let r = a.get(format!("{}/api/v1/items/{id}", h.api)).call();
                Ok(r.is_ok_and(|r| r.status().is_success()))
            },
        )?;
        println!(
            "    arrived at {:<22} {} ms after it was posted",
            h.name,
            sent.elapsed().as_millis()
        );
    }
    post(
        &a,
        &format!("{}/api/v1/offers", hubs[0].api),
        json!({"title": "Fridge with insulin pens", "category": "medical", "qty": 5, "unit": "pens", "place": "Elm St pharmacy", "lat": 29.9515, "lon": -90.0712}),
    )?;
    wait(
        "the offer to reach the middle hub",
        Duration::from_secs(10),
        || {
            let m = get(&a, &format!("{}/api/v1/match", hubs[1].api))?;
            Ok(m["matches"][0]["offers"]
                .as_array()
                .is_some_and(|o| !o.is_empty()))
        },
    )?;
    let m = get(&a, &format!("{}/api/v1/match", hubs[1].api))?;
    println!("\n  What `aidmesh match` shows at the {}:\n", hubs[1].name);
    for line in output::matches(m["matches"].as_array().map_or(&[][..], Vec::as_slice)).lines() {
        println!("    {line}");
    }
    let overdue = get(&a, &format!("{}/api/v1/people/overdue", hubs[2].api))?;
    println!(
        "\n  What `aidmesh welfare overdue` shows at the {}:\n",
        hubs[2].name
    );
    for line in output::people(overdue["people"].as_array().map_or(&[][..], Vec::as_slice)).lines()
    {
        println!("    {line}");
    }
    if keep {
        println!(
            "\n  The hubs keep running: open a web page above in a browser. Ctrl-C stops them."
        );
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = stop_tx.send(());
    rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    println!("\n  Demo finished; its temporary hubs were removed. Run your own with `aidmesh up`.");
    Ok(())
}
