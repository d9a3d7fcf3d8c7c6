//! TLS for the API port. client-go sends a kubeconfig's credentials only to an `https://`
//! server, and a token sent beyond this machine must not travel in clear text, so the API
//! server speaks TLS with one of two identities: a server certificate issued by a local CA kept
//! in the state directory ([`Identity::local`], the default), or the user's own certificate
//! chain and key ([`Identity::from_files`], `serve --tls-cert/--tls-key`).

mod local;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use local::{CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, TLS_DIR};

/// The first byte of a TLS record carrying a handshake.
pub(crate) const HANDSHAKE: u8 = 0x16;

/// The API server's certificate chain and key, and the CA clients should trust for it.
#[derive(Clone)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    /// PEM of the certificates clients should trust; None: the system's trust store.
    authority: Option<String>,
}

/// Why the API server has no TLS identity: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Making a key or certificate failed (the random source, or the signer).
    #[error("creating the API server's TLS certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key (e.g. the key is not the certificate's).
    #[error("the certificate {} and key {} cannot be used together: {reason}", cert.display(), key.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

// === impl Identity ===

impl Identity {
    /// The user's certificate chain (`cert`, PEM, leaf first) and private key (`key`, PEM:
    /// PKCS#8, PKCS#1 or SEC1). `ca` (PEM) names what clients should trust; without it the
    /// kubeconfig carries no certificate authority and clients use the system's trust store
    /// (right for a certificate from a public or company CA the machines already trust).
    pub fn from_files(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Self, TlsError> {
        let chain = read_certificates(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Invalid {
            path: key.to_path_buf(),
            reason: format!("no private key (PEM: PKCS#8, PKCS#1 or SEC1): {e}"),
        })?;
        let authority = match ca {
            // Only its certificates, re-encoded: whatever else the file holds stays out of
            // the kubeconfig.
            Some(ca) => Some(read_certificates(ca)?.iter().map(pem_certificate).collect()),
            None => None,
        };
        let identity = Self { chain, key: Arc::new(key_der), authority };
        identity.server_config().map_err(|reason| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason,
        })?;
        Ok(identity)
    }

    /// The server's certificate chain, leaf first (DER).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The certificates clients should trust, in PEM; None when they should use the system's
    /// trust store.
    pub fn authority_pem(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    /// The certificates clients should trust (DER); empty for the system's trust store.
    pub fn authority_certificates(&self) -> Vec<CertificateDer<'static>> {
        let pem = self.authority.as_deref().unwrap_or_default();
        CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).collect()
    }

    /// A kubeconfig's `certificate-authority-data`: the authority's PEM, base64-encoded.
    pub fn authority_data(&self) -> Option<String> {
        self.authority.as_ref().map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
    }

    /// A TLS acceptor with this identity (HTTP/2 and HTTP/1.1 by ALPN, as kubectl asks).
    pub(crate) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let config = self.server_config().map_err(TlsError::Generate)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// One certificate as PEM text.
fn pem_certificate(cert: &CertificateDer<'_>) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let lines: Vec<&str> = body.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// The certificates of a PEM file; an error naming it when it has none or cannot be read.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let invalid = |reason: String| TlsError::Invalid { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests;
