//! HTTPS for service traffic: a rustls server configuration (ring provider, TLS 1.3 and 1.2
//! only, ALPN `h2` and `http/1.1`) whose certificate is chosen per connection by SNI
//! ([`CertResolver`]) among certificates given per host ([`HostCertSpec`]) and ones issued on
//! demand by a local certificate authority ([`LocalCa`]).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ServerConfig, SupportedProtocolVersion};

mod ca;
mod host_cert;
mod resolve;

pub use ca::{CA_CERT_FILE, CA_KEY_FILE, LocalCa};
pub use host_cert::HostCertSpec;
pub use resolve::CertResolver;

/// The TLS versions the router speaks: 1.3, then 1.2; nothing older.
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The application protocols offered in ALPN, in order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why TLS could not be set up. Each names the file or the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or used.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--tls-host-cert` value is not `DOMAIN=CERT.pem:KEY.pem`.
    #[error("{0}")]
    Spec(String),
    /// Making a certificate failed.
    #[error("issuing a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    /// rustls refused the configuration or a key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

// === impl TlsError ===

impl TlsError {
    /// The file at `path` cannot be used, for `reason`.
    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Self::File { path: path.into(), reason: reason.to_string() }
    }
}

/// The crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The router's TLS server configuration, choosing certificates with `resolver`.
pub fn server_config(resolver: CertResolver) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
