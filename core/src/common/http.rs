//! HTTP client options shared by scrape configs, HTTP SD and remote write
//! (`prometheus/common` `HTTPClientConfig`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::common::paths::{PathResolver, join_dir};
use crate::common::yaml::{Bool11, lenient_string};

/// A secret: never printed. `Debug`, `Display` and `Serialize` all show `<secret>`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret's value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_string(d).map(Secret)
    }
}

/// The JWT bearer grant type of `oauth2.grant_type` (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `basic_auth`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// File holding the user name.
    #[serde(default)]
    pub username_file: String,
    /// The user name's secret in a secret manager (see [`HttpClientConfig::secret_refs`]).
    #[serde(default)]
    pub username_ref: String,
    /// Password.
    #[serde(default)]
    pub password: Secret,
    /// File holding the password.
    #[serde(default)]
    pub password_file: String,
    /// The password's secret in a secret manager.
    #[serde(default)]
    pub password_ref: String,
}

/// `authorization` (an `Authorization:` header).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme, `Bearer` by default.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The credentials.
    #[serde(default)]
    pub credentials: Secret,
    /// File holding the credentials.
    #[serde(default)]
    pub credentials_file: String,
    /// The credentials' secret in a secret manager.
    #[serde(default)]
    pub credentials_ref: String,
}

/// `oauth2` (client credentials, or a JWT bearer grant), as prometheus/common v0.70
/// has it. Parsed and validated; trawl does not fetch tokens yet, and says so
/// ([`HttpClientConfig::not_acted_on`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    /// Client id.
    #[serde(default)]
    pub client_id: String,
    /// Client secret.
    #[serde(default)]
    pub client_secret: Secret,
    /// File holding the client secret.
    #[serde(default)]
    pub client_secret_file: String,
    /// The client secret in a secret manager.
    #[serde(default)]
    pub client_secret_ref: String,
    /// The key id of the JWT bearer grant's signing key.
    #[serde(default)]
    pub client_certificate_key_id: String,
    /// The JWT bearer grant's signing key (PEM).
    #[serde(default)]
    pub client_certificate_key: Secret,
    /// File holding the signing key.
    #[serde(default)]
    pub client_certificate_key_file: String,
    /// The signing key in a secret manager.
    #[serde(default)]
    pub client_certificate_key_ref: String,
    /// `client_credentials` (the default) or `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    #[serde(default)]
    pub grant_type: String,
    /// RS256 (default), RS384 or RS512, for the JWT bearer grant.
    #[serde(default)]
    pub signature_algorithm: String,
    /// The JWT's issuer (default: the client id).
    #[serde(default)]
    pub iss: String,
    /// The JWT's audience (default: the token URL).
    #[serde(default)]
    pub audience: String,
    /// Extra JWT claims.
    #[serde(default)]
    pub claims: BTreeMap<String, serde_yaml::Value>,
    /// Scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_url: String,
    /// Extra token request parameters.
    #[serde(default)]
    pub endpoint_params: BTreeMap<String, String>,
    /// TLS for the token endpoint.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Proxy for the token endpoint.
    #[serde(default)]
    pub proxy_url: String,
}

/// `tls_config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate (PEM text).
    #[serde(default)]
    pub ca: String,
    /// CA certificate file.
    #[serde(default)]
    pub ca_file: String,
    /// CA certificate in a secret manager.
    #[serde(default)]
    pub ca_ref: String,
    /// Client certificate (PEM text).
    #[serde(default)]
    pub cert: String,
    /// Client certificate file.
    #[serde(default)]
    pub cert_file: String,
    /// Client certificate in a secret manager.
    #[serde(default)]
    pub cert_ref: String,
    /// Client key (PEM text).
    #[serde(default)]
    pub key: Secret,
    /// Client key file.
    #[serde(default)]
    pub key_file: String,
    /// Client key in a secret manager.
    #[serde(default)]
    pub key_ref: String,
    /// Server name for SNI and verification.
    #[serde(default)]
    pub server_name: String,
    /// Skip certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: Bool11,
    /// Minimum TLS version (`TLS12`, `TLS13`).
    #[serde(default)]
    pub min_version: String,
    /// Maximum TLS version.
    #[serde(default)]
    pub max_version: String,
}

impl TlsConfig {
    /// The checks `prometheus/common` makes when it decodes a `tls_config` block.
    pub(crate) fn validate(&self) -> Result<(), String> {
        // prometheus/common's `TLSConfig.Validate`.
        if count(&[
            !self.ca.is_empty(),
            !self.ca_file.is_empty(),
            !self.ca_ref.is_empty(),
        ]) > 1
        {
            return Err("at most one of ca, ca_file & ca_ref must be configured".into());
        }
        if count(&[
            !self.cert.is_empty(),
            !self.cert_file.is_empty(),
            !self.cert_ref.is_empty(),
        ]) > 1
        {
            return Err("at most one of cert, cert_file & cert_ref must be configured".into());
        }
        if count(&[
            !self.key.is_empty(),
            !self.key_file.is_empty(),
            !self.key_ref.is_empty(),
        ]) > 1
        {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert =
            !self.cert.is_empty() || !self.cert_file.is_empty() || !self.cert_ref.is_empty();
        let has_key = !self.key.is_empty() || !self.key_file.is_empty() || !self.key_ref.is_empty();
        if has_cert && !has_key {
            return Err(
                "exactly one of key or key_file must be configured when a client certificate is configured"
                    .into(),
            );
        }
        if has_key && !has_cert {
            return Err(
                "exactly one of cert or cert_file must be configured when a client key is configured"
                    .into(),
            );
        }
        for v in [&self.min_version, &self.max_version] {
            if !v.is_empty() && !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13") {
                return Err(format!("unknown TLS version: {v}"));
            }
        }
        Ok(())
    }

    /// Resolves the file paths against `dir` (`SetDirectory`).
    pub(crate) fn resolve(&mut self, dir: &str) {
        for p in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file] {
            *p = join_dir(dir, p);
        }
    }
}

/// Declares a raw YAML struct with the HTTP client options added to its fields (serde
/// cannot combine `flatten` with `deny_unknown_fields`), and a method taking them out.
macro_rules! with_http_client {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        $vis struct $name {
            $($body)*
            #[serde(default)]
            basic_auth: Option<$crate::common::http::BasicAuth>,
            #[serde(default)]
            authorization: Option<$crate::common::http::Authorization>,
            #[serde(default)]
            oauth2: Option<$crate::common::http::OAuth2>,
            #[serde(default)]
            bearer_token: $crate::common::http::Secret,
            #[serde(default)]
            bearer_token_file: String,
            #[serde(default)]
            tls_config: Option<$crate::common::http::TlsConfig>,
            #[serde(default)]
            proxy_url: String,
            #[serde(default)]
            no_proxy: String,
            #[serde(default)]
            proxy_from_environment: $crate::common::yaml::Bool11,
            #[serde(default)]
            proxy_connect_header: std::collections::BTreeMap<String, Vec<$crate::common::http::Secret>>,
            #[serde(default)]
            follow_redirects: Option<$crate::common::yaml::Bool11>,
            #[serde(default)]
            enable_http2: Option<$crate::common::yaml::Bool11>,
            #[serde(default, rename = "http_headers")]
            _http_headers: Option<serde_yaml::Value>,
        }

        impl $name {
            fn take_http_client(&mut self) -> $crate::common::http::RawHttpClient {
                $crate::common::http::RawHttpClient {
                    basic_auth: self.basic_auth.take(),
                    authorization: self.authorization.take(),
                    oauth2: self.oauth2.take(),
                    bearer_token: std::mem::take(&mut self.bearer_token),
                    bearer_token_file: std::mem::take(&mut self.bearer_token_file),
                    tls_config: self.tls_config.take(),
                    proxy_url: std::mem::take(&mut self.proxy_url),
                    no_proxy: std::mem::take(&mut self.no_proxy),
                    proxy_from_environment: self.proxy_from_environment,
                    proxy_connect_header: std::mem::take(&mut self.proxy_connect_header),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                }
            }
        }
    };
}
pub(crate) use with_http_client;

/// Raw HTTP client options as written in YAML.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawHttpClient {
    pub(crate) basic_auth: Option<BasicAuth>,
    pub(crate) authorization: Option<Authorization>,
    pub(crate) oauth2: Option<OAuth2>,
    pub(crate) bearer_token: Secret,
    pub(crate) bearer_token_file: String,
    pub(crate) tls_config: Option<TlsConfig>,
    pub(crate) proxy_url: String,
    pub(crate) no_proxy: String,
    pub(crate) proxy_from_environment: Bool11,
    pub(crate) proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    pub(crate) follow_redirects: Option<Bool11>,
    pub(crate) enable_http2: Option<Bool11>,
}

/// Validated HTTP client options. A `bearer_token`/`bearer_token_file` is folded into
/// `authorization` of type `Bearer`, as Prometheus does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// Authorization header.
    pub authorization: Option<Authorization>,
    /// OAuth 2 client credentials.
    pub oauth2: Option<OAuth2>,
    /// TLS settings.
    pub tls_config: TlsConfig,
    /// Proxy URL.
    pub proxy_url: String,
    /// Hosts not to proxy.
    pub no_proxy: String,
    /// Take the proxy from the environment.
    pub proxy_from_environment: bool,
    /// Headers for the proxy CONNECT request.
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    /// Follow HTTP redirects (default true).
    pub follow_redirects: bool,
    /// Allow HTTP/2 (default true).
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            tls_config: TlsConfig::default(),
            proxy_url: String::new(),
            no_proxy: String::new(),
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

impl HttpClientConfig {
    /// What the block asks for that trawl does not do, one sentence each (empty when
    /// trawl does everything it says): an operator sees these at load and in
    /// `trawl check config`, never silence.
    pub fn not_acted_on(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.oauth2.is_some() {
            out.push("oauth2 is validated, but trawl does not fetch OAuth 2 tokens yet: requests go without one".to_owned());
        }
        let refs = self.secret_refs();
        if !refs.is_empty() {
            out.push(format!(
                "{} name secrets in a secret manager, which Prometheus does not configure either (it fails to build this client: \"cannot use secret ref without manager\"); trawl sends without them",
                refs.join(", ")
            ));
        }
        out
    }

    /// The `*_ref` fields set (secrets to fetch from a secret manager).
    pub fn secret_refs(&self) -> Vec<&'static str> {
        let mut refs = Vec::new();
        let tls = |t: &TlsConfig, refs: &mut Vec<&'static str>| {
            for (name, v) in [
                ("ca_ref", &t.ca_ref),
                ("cert_ref", &t.cert_ref),
                ("key_ref", &t.key_ref),
            ] {
                if !v.is_empty() {
                    refs.push(name);
                }
            }
        };
        if let Some(b) = &self.basic_auth {
            if !b.username_ref.is_empty() {
                refs.push("username_ref");
            }
            if !b.password_ref.is_empty() {
                refs.push("password_ref");
            }
        }
        if self
            .authorization
            .as_ref()
            .is_some_and(|a| !a.credentials_ref.is_empty())
        {
            refs.push("credentials_ref");
        }
        if let Some(o) = &self.oauth2 {
            if !o.client_secret_ref.is_empty() {
                refs.push("client_secret_ref");
            }
            if !o.client_certificate_key_ref.is_empty() {
                refs.push("client_certificate_key_ref");
            }
            if let Some(t) = &o.tls_config {
                tls(t, &mut refs);
            }
        }
        tls(&self.tls_config, &mut refs);
        refs
    }

    /// Resolves every file path against `dir`, as `HTTPClientConfig.SetDirectory` does.
    pub(crate) fn set_directory(&mut self, dir: &str) {
        self.tls_config.resolve(dir);
        if let Some(b) = &mut self.basic_auth {
            b.username_file = join_dir(dir, &b.username_file);
            b.password_file = join_dir(dir, &b.password_file);
        }
        if let Some(a) = &mut self.authorization {
            a.credentials_file = join_dir(dir, &a.credentials_file);
        }
        if let Some(o) = &mut self.oauth2 {
            o.client_secret_file = join_dir(dir, &o.client_secret_file);
            o.client_certificate_key_file = join_dir(dir, &o.client_certificate_key_file);
            if let Some(t) = &mut o.tls_config {
                t.resolve(dir);
            }
        }
    }
}

fn count(flags: &[bool]) -> usize {
    flags.iter().filter(|b| **b).count()
}

impl RawHttpClient {
    /// Validates with `prometheus/common`'s rules and resolves file paths.
    pub(crate) fn validate(self, paths: &PathResolver<'_>) -> Result<HttpClientConfig, String> {
        let mut config = self.check()?;
        config.set_directory(paths.dir);
        Ok(config)
    }

    /// The checks `prometheus/common` makes while it decodes the options (each
    /// `tls_config`), before the block around them is validated.
    pub(crate) fn check_tls(&self) -> Result<(), String> {
        if let Some(t) = &self.tls_config {
            t.validate()?;
        }
        if let Some(t) = self.oauth2.as_ref().and_then(|o| o.tls_config.as_ref()) {
            t.validate()?;
        }
        Ok(())
    }

    /// The options as written, for a block that never calls `HTTPClientConfig.Validate`:
    /// only the decoding checks apply ([`RawHttpClient::check_tls`]); a bearer token
    /// still becomes an `authorization`. `go_zero` gives the unwritten booleans Go's zero
    /// value (false) instead of `DefaultHTTPClientConfig`'s (true). Paths are not
    /// resolved.
    pub(crate) fn unchecked(self, go_zero: bool) -> Result<HttpClientConfig, String> {
        self.check_tls()?;
        let authorization = match self.authorization {
            Some(a) => Some(a),
            None if !self.bearer_token.is_empty() => Some(Authorization {
                kind: "Bearer".into(),
                credentials: self.bearer_token,
                credentials_file: String::new(),
                credentials_ref: String::new(),
            }),
            None if !self.bearer_token_file.is_empty() => Some(Authorization {
                kind: "Bearer".into(),
                credentials: Secret::default(),
                credentials_file: self.bearer_token_file,
                credentials_ref: String::new(),
            }),
            None => None,
        };
        let flag = |b: Option<Bool11>| b.map_or(!go_zero, |b| b.0);
        Ok(HttpClientConfig {
            basic_auth: self.basic_auth,
            authorization,
            oauth2: self.oauth2,
            tls_config: self.tls_config.unwrap_or_default(),
            proxy_url: self.proxy_url,
            no_proxy: self.no_proxy,
            proxy_from_environment: self.proxy_from_environment.0,
            proxy_connect_header: self.proxy_connect_header,
            follow_redirects: flag(self.follow_redirects),
            enable_http2: flag(self.enable_http2),
        })
    }

    /// `HTTPClientConfig.Validate`: checks the options and folds a bearer token into
    /// `authorization`; paths are left as written.
    pub(crate) fn check(self) -> Result<HttpClientConfig, String> {
        // What decoding refuses comes first.
        self.check_tls()?;
        let bearer = !self.bearer_token.is_empty();
        let bearer_file = !self.bearer_token_file.is_empty();
        if bearer && bearer_file {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && (bearer || bearer_file) {
            return Err(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
                    .into(),
            );
        }
        if let Some(b) = &self.basic_auth {
            if count(&[
                !b.username.is_empty(),
                !b.username_file.is_empty(),
                !b.username_ref.is_empty(),
            ]) > 1
            {
                return Err(
                    "at most one of basic_auth username, username_file & username_ref must be configured"
                        .into(),
                );
            }
            if count(&[
                !b.password.is_empty(),
                !b.password_file.is_empty(),
                !b.password_ref.is_empty(),
            ]) > 1
            {
                return Err(
                    "at most one of basic_auth password, password_file & password_ref must be configured"
                        .into(),
                );
            }
        }
        let mut authorization = self.authorization;
        if let Some(a) = &mut authorization {
            if bearer || bearer_file {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if count(&[
                !a.credentials.is_empty(),
                !a.credentials_file.is_empty(),
                !a.credentials_ref.is_empty(),
            ]) > 1
            {
                return Err(
                    "at most one of authorization credentials & credentials_file must be configured"
                        .into(),
                );
            }
            a.kind = a.kind.trim().to_owned();
            if a.kind.is_empty() {
                a.kind = "Bearer".into();
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        } else if bearer {
            authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: self.bearer_token,
                credentials_file: String::new(),
                credentials_ref: String::new(),
            });
        } else if bearer_file {
            authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: Secret::default(),
                credentials_file: self.bearer_token_file,
                credentials_ref: String::new(),
            });
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if o.client_id.is_empty() {
                return Err("oauth2 client_id must be configured".into());
            }
            if o.token_url.is_empty() {
                return Err("oauth2 token_url must be configured".into());
            }
            if o.grant_type == JWT_BEARER {
                let keys = [
                    !o.client_certificate_key.is_empty(),
                    !o.client_certificate_key_file.is_empty(),
                    !o.client_certificate_key_ref.is_empty(),
                ];
                if count(&keys) > 1 {
                    return Err("at most one of oauth2 client_certificate_key, client_certificate_key_file & client_certificate_key_ref must be configured using grant-type=urn:ietf:params:oauth:grant-type:jwt-bearer".into());
                }
                if !o.signature_algorithm.is_empty()
                    && !["RS256", "RS384", "RS512"].contains(&o.signature_algorithm.as_str())
                {
                    return Err("valid signature algorithms are RS256, RS384 and RS512".into());
                }
            } else if count(&[
                !o.client_secret.is_empty(),
                !o.client_secret_file.is_empty(),
                !o.client_secret_ref.is_empty(),
            ]) > 1
            {
                return Err(
                    "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials"
                        .into(),
                );
            }
        }
        // `ProxyConfig.Validate`, in its order.
        if !self.proxy_connect_header.is_empty()
            && !self.proxy_from_environment.0
            && self.proxy_url.is_empty()
        {
            return Err("if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured".into());
        }
        if self.proxy_from_environment.0 && !self.proxy_url.is_empty() {
            return Err(
                "if proxy_from_environment is configured, proxy_url must not be configured".into(),
            );
        }
        if self.proxy_from_environment.0 && !self.no_proxy.is_empty() {
            return Err(
                "if proxy_from_environment is configured, no_proxy must not be configured".into(),
            );
        }
        if self.proxy_url.is_empty() && !self.no_proxy.is_empty() {
            return Err("if no_proxy is configured, proxy_url must also be configured".into());
        }
        if !self.proxy_url.is_empty() && !self.proxy_url.contains("://") {
            return Err(format!(
                "parse {:?}: missing protocol scheme",
                self.proxy_url
            ));
        }
        let tls = self.tls_config.unwrap_or_default();
        Ok(HttpClientConfig {
            basic_auth: self.basic_auth,
            authorization,
            oauth2: self.oauth2,
            tls_config: tls,
            proxy_url: self.proxy_url,
            no_proxy: self.no_proxy,
            proxy_from_environment: self.proxy_from_environment.0,
            proxy_connect_header: self.proxy_connect_header,
            follow_redirects: self.follow_redirects.is_none_or(|b| b.0),
            enable_http2: self.enable_http2.is_none_or(|b| b.0),
        })
    }
}
