//! Request signing and token computations cloud APIs require, done here because they are
//! computation: the shells read the credentials and the clock and send the requests.

pub mod sigv4;

/// A validated `sigv4:` block (`github.com/prometheus/sigv4`'s `SigV4Config`), also what
/// AWS discovery signs with: empty fields come from AWS's default credential chain
/// (environment, shared files). Re-exported as `trawl_core::config::SigV4Config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigV4Config {
    /// The region (else `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's).
    pub region: String,
    /// A static access key (with `secret_key`).
    pub access_key: String,
    /// A static secret key.
    pub secret_key: crate::common::http::Secret,
    /// The shared-files profile (else `AWS_PROFILE`, else `default`).
    pub profile: String,
    /// A role to assume through STS.
    pub role_arn: String,
    /// The external id of the role to assume.
    pub external_id: String,
    /// Use STS's FIPS endpoint.
    pub use_fips_sts_endpoint: bool,
    /// The service signed for (`aps` when empty).
    pub service_name: String,
}
