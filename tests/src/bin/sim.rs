//! Runs one simulation and prints the digest of its output trace.
//!
//! `cargo run -p trawl-tests --bin sim -- --seed N --hours H`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut seed = 1u64;
    let mut hours = 3.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let parsed = match (a.as_str(), value.as_deref()) {
            ("--seed", Some(v)) => v.parse().map(|v| seed = v).is_ok(),
            ("--hours", Some(v)) => v.parse().map(|v| hours = v).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!("usage: sim --seed N --hours H");
            return ExitCode::from(2);
        }
    }
    match trawl_tests::sim::run(seed, hours) {
        Ok(r) => {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "seed {seed} hours {hours}: digest {:016x} steps {} scrapes {} deliveries {} reloads {} world changes {} batches {} stale markers {} failed scrapes {} discovery answers {:?}",
                    r.digest,
                    r.steps,
                    r.scrapes,
                    r.deliveries,
                    r.reloads,
                    r.world_changes,
                    r.batches,
                    r.stale_markers,
                    r.failed_scrapes,
                    r.sd_answers
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
