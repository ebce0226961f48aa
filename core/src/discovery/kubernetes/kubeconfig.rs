//! A kubeconfig file turned into the server URL and client options, as 3.x builds its
//! client with `clientcmd.BuildConfigFromFlags("", kubeconfig_file)`: only that file
//! (`$KUBECONFIG` and `~/.kube/config` play no part), its `current-context`'s cluster
//! and user (the context's namespace is ignored: namespaces come from the SD block),
//! paths inside it relative to its own directory, and credentials and CA only applied
//! when the server is `https` (client-go's `IsConfigTransportTLS`).
//!
//! trawl reads the file when the provider starts (a later edit needs a reload, as in
//! 3.x). A `tokenFile` is re-read on every request, so a rotated token is picked up.
//! Credential plugins (`exec`, `auth-provider`) are refused with an error saying so:
//! trawl does not run programs named in a kubeconfig.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::common::http::{Authorization, BasicAuth, HttpClientConfig, Secret};
use crate::common::paths::join_dir;

/// What a kubeconfig gives the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// The server URL (no trailing slash).
    pub base: String,
    /// TLS, authentication and proxy.
    pub client: HttpClientConfig,
    /// Extra headers (impersonation).
    pub headers: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
struct Named<T> {
    #[serde(default)]
    name: String,
    /// The body, under `cluster`, `user` or `context`.
    #[serde(default, alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    #[serde(default)]
    server: String,
    #[serde(default)]
    certificate_authority: String,
    #[serde(default)]
    certificate_authority_data: String,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    #[serde(default)]
    tls_server_name: String,
    #[serde(default)]
    proxy_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    #[serde(default)]
    token: String,
    #[serde(default, rename = "tokenFile")]
    token_file: String,
    #[serde(default)]
    client_certificate: String,
    #[serde(default)]
    client_certificate_data: String,
    #[serde(default)]
    client_key: String,
    #[serde(default)]
    client_key_data: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "as")]
    impersonate: String,
    #[serde(default, rename = "as-uid")]
    impersonate_uid: String,
    #[serde(default, rename = "as-groups")]
    impersonate_groups: Option<Vec<String>>,
    #[serde(default, rename = "as-user-extra")]
    impersonate_extra: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    exec: Option<serde_yaml::Value>,
    #[serde(default)]
    auth_provider: Option<serde_yaml::Value>,
}

#[derive(Deserialize, Default)]
struct Context {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Raw {
    #[serde(default)]
    current_context: String,
    #[serde(default)]
    clusters: Option<Vec<Named<Cluster>>>,
    #[serde(default)]
    users: Option<Vec<Named<User>>>,
    #[serde(default)]
    contexts: Option<Vec<Named<Context>>>,
}

fn pem(data: &str, what: &str, path: &str) -> Result<String, String> {
    let bytes = crate::bytes::base64_decode(data.trim())
        .ok_or_else(|| format!("{path}: {what} is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("{path}: {what} is not PEM text"))
}

/// Parses the kubeconfig at `path` (its text `text`).
pub fn parse(path: &str, text: &str) -> Result<ClientSettings, String> {
    let err = |m: String| format!("invalid kubeconfig {path}: {m}");
    crate::common::yaml::check_expansion(text).map_err(|e| err(e.message))?;
    let raw: Raw = if text.trim().is_empty() {
        Raw::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| err(e.to_string()))?
    };
    if raw.current_context.is_empty() {
        return Err(err(
            "no current-context: the configuration is empty or names no context".into(),
        ));
    }
    let ctx = raw
        .contexts
        .and_then(|l| l.into_iter().find(|n| n.name == raw.current_context))
        .ok_or_else(|| err(format!("context {:?} not found", raw.current_context)))?
        .value
        .unwrap_or_default();
    let cluster = raw
        .clusters
        .and_then(|l| l.into_iter().find(|n| n.name == ctx.cluster))
        .ok_or_else(|| err(format!("cluster {:?} not found", ctx.cluster)))?
        .value
        .unwrap_or_default();
    // client-go tolerates a context whose user is not listed (no credentials).
    let user = raw
        .users
        .and_then(|l| l.into_iter().find(|n| n.name == ctx.user))
        .and_then(|n| n.value)
        .unwrap_or_default();
    if cluster.server.is_empty() {
        return Err(err(format!("cluster {:?} has no server", ctx.cluster)));
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..i.max(1)],
        None => ".",
    };
    let file = |p: &str| {
        if p.is_empty() {
            String::new()
        } else {
            join_dir(dir, p)
        }
    };
    let mut client = HttpClientConfig::default();
    let mut headers = Vec::new();
    let parsed = crate::gourl::parse(&cluster.server).map_err(err)?;
    let tls = parsed.scheme == "https";
    if !cluster.proxy_url.is_empty() {
        client.proxy_url = cluster.proxy_url.clone();
    } else {
        // client-go takes the proxy from the environment when the file names none.
        client.proxy_from_environment = true;
    }
    if tls {
        let t = &mut client.tls_config;
        if !cluster.certificate_authority_data.is_empty() {
            t.ca = pem(
                &cluster.certificate_authority_data,
                "certificate-authority-data",
                path,
            )?;
        } else {
            t.ca_file = file(&cluster.certificate_authority);
        }
        t.insecure_skip_verify = crate::common::yaml::Bool11(cluster.insecure_skip_tls_verify);
        t.server_name = cluster.tls_server_name.clone();
        if !user.client_certificate_data.is_empty() {
            t.cert = pem(
                &user.client_certificate_data,
                "client-certificate-data",
                path,
            )?;
        } else {
            t.cert_file = file(&user.client_certificate);
        }
        if !user.client_key_data.is_empty() {
            t.key = Secret::new(pem(&user.client_key_data, "client-key-data", path)?);
        } else {
            t.key_file = file(&user.client_key);
        }
        let token = !user.token.is_empty() || !user.token_file.is_empty();
        if token && (!user.username.is_empty() || !user.password.is_empty()) {
            return Err(err(
                "username/password or bearer token may be set, but not both".into(),
            ));
        }
        if user.exec.is_some() {
            return Err(err(
                "the user runs an exec credential plugin, which trawl does not run; use a token, tokenFile or client certificate".into(),
            ));
        }
        if user.auth_provider.is_some() {
            return Err(err(
                "the user names an auth-provider, which trawl (like 3.x, whose only one is the removed gcp plugin) does not support".into(),
            ));
        }
        if !user.token_file.is_empty() {
            client.authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials_file: file(&user.token_file),
                ..Authorization::default()
            });
        } else if !user.token.is_empty() {
            client.authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: Secret::new(user.token.clone()),
                ..Authorization::default()
            });
        } else if !user.username.is_empty() || !user.password.is_empty() {
            client.basic_auth = Some(BasicAuth {
                username: user.username.clone(),
                password: Secret::new(user.password.clone()),
                ..BasicAuth::default()
            });
        }
    }
    if !user.impersonate.is_empty() {
        headers.push(("Impersonate-User".to_owned(), user.impersonate.clone()));
    }
    if !user.impersonate_uid.is_empty() {
        headers.push(("Impersonate-Uid".to_owned(), user.impersonate_uid.clone()));
    }
    for g in user.impersonate_groups.unwrap_or_default() {
        headers.push(("Impersonate-Group".to_owned(), g));
    }
    for (k, vs) in user.impersonate_extra.unwrap_or_default() {
        for v in vs {
            headers.push((format!("Impersonate-Extra-{k}"), v));
        }
    }
    let mut base = cluster.server.clone();
    // Requests append their own path and query (client-go's `DefaultServerURL` drops a
    // server's query and fragment).
    if let Some(i) = base.find(['?', '#']) {
        base.truncate(i);
    }
    while base.ends_with('/') {
        base.pop();
    }
    Ok(ClientSettings {
        base,
        client,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: ignored}
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: ca.pem
users:
- name: u1
  user:
    tokenFile: secrets/token
    as: admin
    as-groups: [g1, g2]
";

    #[test]
    fn the_current_contexts_cluster_and_user() {
        let s = parse("/etc/prometheus/kube.yml", CFG).expect("valid");
        assert_eq!(s.base, "https://127.0.0.1:6443");
        assert_eq!(s.client.tls_config.ca_file, "/etc/prometheus/ca.pem");
        let a = s.client.authorization.expect("token file");
        assert_eq!(a.credentials_file, "/etc/prometheus/secrets/token");
        assert_eq!(
            s.headers,
            vec![
                ("Impersonate-User".to_owned(), "admin".to_owned()),
                ("Impersonate-Group".to_owned(), "g1".to_owned()),
                ("Impersonate-Group".to_owned(), "g2".to_owned()),
            ]
        );
    }

    #[test]
    fn plain_http_sends_no_credentials() {
        let s = parse("k", &CFG.replace("https://", "http://")).expect("valid");
        assert!(s.client.authorization.is_none());
        assert!(s.client.tls_config.ca_file.is_empty());
    }

    #[test]
    fn refusals_name_the_file_and_the_reason() {
        let e = parse("/k", "").expect_err("empty");
        assert!(
            e.starts_with("invalid kubeconfig /k: no current-context"),
            "{e}"
        );
        let e = parse(
            "/k",
            &CFG.replace("current-context: dev", "current-context: x"),
        )
        .expect_err("no context");
        assert!(e.contains("context \"x\" not found"), "{e}");
        let e = parse(
            "/k",
            &CFG.replace(
                "    tokenFile: secrets/token",
                "    exec: {command: /bin/x}",
            ),
        )
        .expect_err("exec");
        assert!(e.contains("exec credential plugin"), "{e}");
        let e = parse("/k", "a: &a [*a]").expect_err("bad yaml");
        assert!(e.starts_with("invalid kubeconfig /k: "), "{e}");
    }
}
