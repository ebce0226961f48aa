//! Any bytes as a configuration file: parsing must return a config or an error, never
//! panic; an accepted config must turn its static targets into targets without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::config::{Config, ParseOptions};
use trawl_core::target::targets_from_group;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = ParseOptions::for_path("/etc/prometheus/prometheus.yml");
    match Config::parse(text, &options) {
        Ok(config) => {
            for job in &config.scrape_configs {
                for sd in &job.sd_configs {
                    if let Some(groups) = sd.static_groups() {
                        for g in groups {
                            let _ = targets_from_group(g, job);
                        }
                    }
                }
            }
        }
        Err(e) => {
            // Errors always render.
            let _ = e.to_string();
        }
    }
});
