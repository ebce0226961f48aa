//! TLS client settings from a scrape config's `tls_config`, with rustls: the system's
//! trust store or `ca`/`ca_file`, a client certificate (`cert`/`key` or their files),
//! `server_name` and `insecure_skip_verify`. Built once per distinct `tls_config`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use trawl_core::config::TlsConfig;

/// Accepts any certificate (`insecure_skip_verify: true`), still checking signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The most a CA bundle, certificate or key file may hold (a full system CA bundle is
/// about 200 KiB); regular files only, opened without blocking.
pub const TLS_FILE_LIMIT: u64 = 16 << 20;

fn pem_or_file(pem: &str, file: &str, what: &str) -> Result<Option<Vec<u8>>, String> {
    if !pem.is_empty() {
        return Ok(Some(pem.as_bytes().to_vec()));
    }
    if file.is_empty() {
        return Ok(None);
    }
    match crate::files::read_limited(file, TLS_FILE_LIMIT) {
        Ok(Some(b)) => Ok(Some(b)),
        Ok(None) => Err(format!(
            "unable to load specified {what} file {file}: larger than {TLS_FILE_LIMIT} bytes"
        )),
        Err(e) => Err(format!("unable to load specified {what} file {file}: {e}")),
    }
}

/// Builds the rustls configuration for one `tls_config`.
pub fn client_config(t: &TlsConfig) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_str() {
        "TLS13" => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = if t.insecure_skip_verify.0 {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match pem_or_file(&t.ca, &t.ca_file, "CA")? {
            Some(pem) => {
                for c in CertificateDer::pem_slice_iter(&pem) {
                    let c = c.map_err(|e| format!("unable to use specified CA cert: {e}"))?;
                    roots
                        .add(c)
                        .map_err(|e| format!("unable to use specified CA cert: {e}"))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let cert = pem_or_file(&t.cert, &t.cert_file, "client certificate")?;
    let key = pem_or_file(t.key.expose(), &t.key_file, "client key")?;
    let config = match (cert, key) {
        (Some(c), Some(k)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&c)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("unable to use client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&k)
                .map_err(|e| format!("unable to use client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("unable to use client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Client configurations by `tls_config` (a handful per daemon), each rebuilt when one
/// of its files (`ca_file`, `cert_file`, `key_file`) changes, as Prometheus's TLS round
/// tripper re-reads them: rotated certificates take effect without a reload.
#[derive(Debug, Default)]
pub struct TlsConfigs {
    by_config: BTreeMap<String, (Arc<ClientConfig>, Vec<Stamp>)>,
}

/// What identifies a file's content without reading it: size, modification time, inode.
type Stamp = Option<(u64, std::time::SystemTime, u64)>;

fn stamps(t: &TlsConfig) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    [&t.ca_file, &t.cert_file, &t.key_file]
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?, m.ino())))
        })
        .collect()
}

impl TlsConfigs {
    /// The client configuration for `t`, built on first use.
    pub fn get(&mut self, t: &TlsConfig) -> Result<Arc<ClientConfig>, String> {
        let key = format!("{t:?}");
        let now = stamps(t);
        if let Some((c, seen)) = self.by_config.get(&key)
            && *seen == now
        {
            return Ok(c.clone());
        }
        let c = client_config(t)?;
        self.by_config.insert(key, (c.clone(), now));
        Ok(c)
    }
}
