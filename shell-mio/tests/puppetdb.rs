//! PuppetDB discovery end to end against a real PuppetDB (`common::puppetdb`): the
//! daemon following the catalogs (the scenario trawl-tokio runs too), then `trawl sd`
//! against the same PuppetDB.

mod common;

use common::puppetdb::*;
use common::*;

#[test]
fn classes_are_followed_through_the_daemon_and_listed_by_trawl_sd() {
    let d = TempDir::new("puppetdb-daemon");
    let Some(pdb) = real(&d.0) else { return };
    puppetdb_classes_follow_the_catalogs(&d.0, &mut daemon, &pdb);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=puppetdb-bad-query")
            && log.contains("server returned HTTP status 400 Bad Request")
            && log.contains("server returned HTTP status 500 Internal Server Error"),
        "the failures are logged with the job and PuppetDB's status:\n{log}"
    );

    let cfg = d.0.join("sd.yml");
    // `instance` from the certname: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: p\n    puppetdb_sd_configs: [{{url: '{}', query: 'resources {{ type = \"Class\" }}', port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_puppetdb_certname, __meta_puppetdb_title], separator: '/', target_label: instance}}]\n",
            pdb.url()
        ),
    )
    .expect("config");
    assert_eq!(
        sd_instances(&cfg),
        [
            "db1.example.com/Postgresql",
            "web1.example.com/Ssh",
            "web3.example.com/Node_exporter",
            "web3.example.com/Ssh",
            "web4.example.com/Node_exporter",
            "web4.example.com/Ssh",
        ]
    );
}
