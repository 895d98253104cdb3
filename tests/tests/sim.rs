//! The simulated town (tests/src/sim.rs): its invariants, its determinism, and a short
//! run of the 300-hub report (the long one is `bench_sim`).

use std::time::Instant;

use aidmesh_tests::sim::{self, Churn, Config, Sim};

#[test]
fn a_town_of_300_hubs_in_under_a_minute() {
    let t0 = Instant::now();
    let mut cfg = Config::town(300, 7);
    cfg.churn = Some(Churn {
        mean_up_s: 7_200.0,
        mean_down_s: 600.0,
    });
    let p = sim::propagation(&cfg, 20, 2_000, 40);
    println!("{p}");
    println!("propagation took {:.1} s", t0.elapsed().as_secs_f64());
    let c = sim::partition(&Config::town(30, 7), 120, 1, 200);
    println!("{c}");
    let r = sim::returning_hub(&Config::town(30, 7), 4.0, 2.0, 200);
    println!("{r}");
    println!("took {:.1} s", t0.elapsed().as_secs_f64());
}
