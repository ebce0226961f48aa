//! The simulator in `cargo test`: 500 seeds of three simulated hours each, checked after
//! every step, plus digest reproducibility (library and binary).

use trawl_tests::sim;

const HOURS: f64 = 3.0;

/// Runs `seeds`, reporting every failure with its replay command.
fn run_seeds(seeds: std::ops::Range<u64>) {
    let failures: Vec<String> = seeds
        .filter_map(|seed| sim::run(seed, HOURS).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// Four tests so the harness spreads the 500 seeds over the cores.
#[test]
fn seeds_0_to_124() {
    run_seeds(0..125);
}

#[test]
fn seeds_125_to_249() {
    run_seeds(125..250);
}

#[test]
fn seeds_250_to_374() {
    run_seeds(250..375);
}

#[test]
fn seeds_375_to_499() {
    run_seeds(375..500);
}

#[test]
fn same_seed_same_digest() {
    let a = sim::run(42, 1.0).expect("seed 42 passes");
    let b = sim::run(42, 1.0).expect("seed 42 passes");
    assert_eq!(a, b);
    let c = sim::run(43, 1.0).expect("seed 43 passes");
    assert_ne!(a.digest, c.digest, "different seeds, different runs");
    assert!(a.scrapes > 100 && a.deliveries > 0, "{a:?}");
    // The storage invariants had something to check.
    assert!(
        a.batches > 100 && a.stale_markers > 10 && a.failed_scrapes > 10,
        "{a:?}"
    );
}

#[test]
fn sim_binary_prints_a_reproducible_digest() {
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(["--seed", "7", "--hours", "0.5"])
            .output()
            .expect("the sim binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    };
    let first = run();
    assert!(first.contains("digest "), "{first}");
    assert_eq!(first, run());
    let lib = sim::run(7, 0.5).expect("seed 7 passes");
    assert!(
        first.contains(&format!("digest {:016x}", lib.digest)),
        "{first}"
    );
}

/// Every mechanism that runs has a fake world in the simulator (static configurations
/// need none): adding a mechanism means adding its world.
#[test]
fn every_running_mechanism_has_a_world() {
    let mut running: Vec<&str> = trawl_core::discovery::registry::MECHANISMS
        .iter()
        .filter(|m| m.runs && m.key != "static_configs")
        .map(|m| m.key)
        .collect();
    running.sort_unstable();
    assert_eq!(running, sim::worlds::world_keys());
    // ...and every world is in play: in an hour each answers its mechanism's requests.
    let r = sim::run(11, 1.0).expect("seed 11 passes");
    for k in sim::worlds::world_keys() {
        assert!(
            r.sd_answers.get(k).is_some_and(|n| *n > 10),
            "{k} answered {:?}",
            r.sd_answers
        );
    }
}
