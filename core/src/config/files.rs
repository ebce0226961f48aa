//! `scrape_config_files`: more scrape configs in other files, merged into the main
//! configuration as 3.x's `Config.GetScrapeConfigs` merges them. The shell expands the
//! patterns and reads the files ([`Config::scrape_config_files`] says which); the core
//! parses and validates what it is handed:
//!
//! - a file holds `scrape_configs` and nothing else;
//! - each job is validated against the main file's `global` section, and its relative
//!   paths resolve against its own file's directory;
//! - a job name already used (in the main file or an earlier file, the same file listed
//!   twice included) is an error naming both places.

use serde::Deserialize;

use super::yaml::{self, Path};
use super::{Config, ConfigError, Ctx, ParseOptions, RawScrapeConfig, go_type_name, scrape_config};
use crate::goquote::quote;
use crate::relabel::RegexCache;

/// A file named by `scrape_config_files`, as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScrapeConfigs {
    #[serde(default)]
    scrape_configs: Option<Vec<Option<RawScrapeConfig>>>,
}

/// True if a `rule_files` / `scrape_config_files` entry is a valid pattern:
/// `^[^*]*(\*[^/]*)?$`, a `*` only in the last path element.
pub(crate) fn valid_file_pattern(p: &str) -> bool {
    match p.find('*') {
        None => true,
        Some(i) => !p[i + 1..].contains('/'),
    }
}

/// Where a job was first defined, for the duplicate-name error.
fn origin(file: Option<&str>) -> String {
    match file {
        None => "main config file".to_owned(),
        Some(f) => quote(f),
    }
}

impl Config {
    /// Adds the jobs of one scrape config file (`path`, absolute, as the shell expanded
    /// the patterns; `text`, its contents). Files are added in the order 3.x reads them:
    /// patterns in order, each pattern's matches sorted.
    pub fn add_scrape_config_file(&mut self, path: &str, text: &str) -> Result<(), ConfigError> {
        let options = ParseOptions::for_path(path);
        let type_name = |p: &Path| {
            if p.0.len() <= 1 {
                "config.ScrapeConfigs"
            } else {
                go_type_name(p)
            }
        };
        let at = |line: Option<usize>, column: Option<usize>, node: String, message: String| {
            ConfigError {
                file_name: options.file_name.clone(),
                line,
                column,
                path: node,
                message,
            }
        };
        let raw: RawScrapeConfigs = yaml::from_yaml(text, &type_name).map_err(|e| {
            at(
                e.position.map(|p| p.0),
                e.position.map(|p| p.1),
                e.path.to_string(),
                e.message,
            )
        })?;
        let mut ctx = Ctx {
            options: &options,
            cache: RegexCache::default(),
        };
        let located = |(p, message): (Path, String)| {
            let pos = yaml::locate(text, &p);
            at(pos.map(|p| p.0), pos.map(|p| p.1), p.to_string(), message)
        };
        let list = Path::default().key("scrape_configs");
        for (i, sc) in raw
            .scrape_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let p = list.index(i);
            let Some(sc) = sc else {
                return Err(located((p, "empty or null scrape config section".into())));
            };
            let mut sc = scrape_config(sc, &p, &self.global, &mut ctx).map_err(located)?;
            if let Some(first) = self
                .scrape_configs
                .iter()
                .find(|j| j.job_name == sc.job_name)
            {
                return Err(located((
                    p.key("job_name"),
                    format!(
                        "found multiple scrape configs with job name {}, first found in {}",
                        quote(&sc.job_name),
                        origin(first.file.as_deref()),
                    ),
                )));
            }
            sc.file = Some(path.into());
            self.scrape_configs.push(sc);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main(text: &str) -> Config {
        Config::parse(
            text,
            &ParseOptions::for_path("/etc/prometheus/prometheus.yml"),
        )
        .unwrap()
    }

    #[test]
    fn files_add_jobs_validated_against_the_main_global() {
        let mut c = main(
            "global: {scrape_interval: 20s}\nscrape_configs: [{job_name: a}]\nscrape_config_files: ['jobs/*.yml']\n",
        );
        assert_eq!(c.scrape_config_files, vec!["/etc/prometheus/jobs/*.yml"]);
        c.add_scrape_config_file(
            "/etc/prometheus/jobs/b.yml",
            "scrape_configs:\n  - job_name: b\n    file_sd_configs: [{files: ['sd/*.json']}]\n",
        )
        .unwrap();
        let b = c.job("b").unwrap();
        assert_eq!(b.scrape_interval.to_string(), "20s");
        assert_eq!(b.file.as_deref(), Some("/etc/prometheus/jobs/b.yml"));
        assert_eq!(c.job("a").unwrap().file, None);
        // Relative paths resolve against the file's own directory.
        let f = b.sd_configs[0]
            .get::<crate::config::FileSdConfig>()
            .unwrap();
        assert_eq!(f.files, vec!["/etc/prometheus/jobs/sd/*.json"]);
    }

    #[test]
    fn duplicate_jobs_name_both_places() {
        let mut c = main("scrape_configs: [{job_name: a}]\n");
        let e = c
            .add_scrape_config_file("/x/one.yml", "scrape_configs:\n  - job_name: a\n")
            .unwrap_err();
        assert_eq!(e.file_name, "/x/one.yml");
        assert_eq!(e.line, Some(2));
        assert_eq!(
            e.message,
            r#"found multiple scrape configs with job name "a", first found in main config file"#
        );
        c.add_scrape_config_file("/x/one.yml", "scrape_configs:\n  - job_name: b\n")
            .unwrap();
        // The same file listed twice.
        let e = c
            .add_scrape_config_file("/x/one.yml", "scrape_configs:\n  - job_name: b\n")
            .unwrap_err();
        assert_eq!(
            e.message,
            r#"found multiple scrape configs with job name "b", first found in "/x/one.yml""#
        );
    }

    #[test]
    fn a_file_holds_scrape_configs_only() {
        let mut c = main("");
        let e = c
            .add_scrape_config_file("/x/g.yml", "global: {scrape_interval: 1s}\n")
            .unwrap_err();
        assert_eq!(
            e.message,
            "field global not found in type config.ScrapeConfigs"
        );
        assert_eq!(e.file_name, "/x/g.yml");
        let e = c
            .add_scrape_config_file("/x/n.yml", "scrape_configs: [~]\n")
            .unwrap_err();
        assert_eq!(e.message, "empty or null scrape config section");
        let e = c
            .add_scrape_config_file(
                "/x/t.yml",
                "scrape_configs: [{job_name: t, scrape_interval: 1s, scrape_timeout: 2s}]\n",
            )
            .unwrap_err();
        assert!(
            e.message
                .starts_with("scrape timeout greater than scrape interval"),
            "{e}"
        );
        // An empty file adds nothing.
        c.add_scrape_config_file("/x/e.yml", "").unwrap();
        assert!(c.scrape_configs.is_empty());
    }

    #[test]
    fn patterns() {
        for ok in ["a.yml", "dir/*.yml", "/x/y/*", "*"] {
            assert!(valid_file_pattern(ok), "{ok}");
        }
        for bad in ["*/a.yml", "a*/b/*.yml"] {
            assert!(!valid_file_pattern(bad), "{bad}");
        }
    }
}
