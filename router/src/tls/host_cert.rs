//! Certificates given per host: `DOMAIN=CERT.pem:KEY.pem`, read with rustls' PEM parser.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// One `--tls-host-cert` value: the host (or `*.` wildcard of one label) it serves, and the
/// PEM files of its certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCertSpec {
    /// An exact host (`hello.default.example.com`) or a wildcard (`*.default.example.com`),
    /// lowercase.
    pub domain: String,
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

// === impl HostCertSpec ===

impl HostCertSpec {
    /// The wildcard's parent domain (`default.example.com` for `*.default.example.com`), or
    /// None for an exact host.
    pub fn wildcard_parent(&self) -> Option<&str> {
        self.domain.strip_prefix("*.")
    }

    /// Reads the chain and key, and checks that the key belongs to the leaf certificate.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| TlsError::file(&self.cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::file(&self.cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::file(&self.cert, "no CERTIFICATE block in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::file(&self.key, e))?;
        let certified = CertifiedKey::from_der(chain, key, &super::provider())
            .map_err(|e| TlsError::file(&self.key, format!("not usable with {}: {e}", self.cert.display())))?;
        Ok(Arc::new(certified))
    }
}

impl FromStr for HostCertSpec {
    type Err = TlsError;

    /// `DOMAIN=CERT.pem:KEY.pem`; the last `:` separates the two paths.
    fn from_str(s: &str) -> Result<Self, TlsError> {
        let bad = |why: &str| TlsError::Spec(format!("{s:?}: {why} (expected DOMAIN=CERT.pem:KEY.pem)"));
        let (domain, files) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (cert, key) = files.rsplit_once(':').ok_or_else(|| bad("no ':' between the certificate and key files"))?;
        if cert.is_empty() || key.is_empty() {
            return Err(bad("a file name is empty"));
        }
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let name = domain.strip_prefix("*.").unwrap_or(&domain);
        if name.contains('*') || DnsName::try_from(name).is_err() || !name.contains('.') && domain.starts_with('*') {
            return Err(bad("DOMAIN must be a host name or *. and a domain"));
        }
        Ok(Self { domain, cert: cert.into(), key: key.into() })
    }
}
