//! What every configuration block is built from, below both the configuration model
//! ([`crate::config`]) and the discovery mechanisms' blocks ([`crate::discovery`]), the
//! way Prometheus's `common/config` package sits below its `config` and `discovery`
//! packages:
//!
//! * [`yaml`]: YAML decoding with Prometheus's leniencies and Go's error messages, and
//!   the place (line, column, key path) of every error;
//! * [`http`]: the HTTP client block (`basic_auth`, `authorization`, `oauth2`,
//!   `tls_config`, proxies) with 3.x's validation;
//! * [`paths`]: file paths resolved against the configuration's directory.

pub mod http;
pub mod paths;
pub mod yaml;
