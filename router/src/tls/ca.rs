//! The local certificate authority: a self-signed CA kept in the state directory (so a user
//! trusts it once, e.g. `curl --cacert`), which issues a certificate for each service host
//! no given certificate covers.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// The CA certificate, under the state directory.
pub const CA_CERT_FILE: &str = "tls/router-ca.crt";
/// The CA private key (mode 0600), under the state directory.
pub const CA_KEY_FILE: &str = "tls/router-ca.key";

/// A CA that signs server certificates; its certificate is sent with each as the chain.
pub struct LocalCa {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    cert_path: PathBuf,
}

// === impl LocalCa ===

impl LocalCa {
    /// The CA kept under `state_dir`: read when both files are there, created (key first,
    /// each written whole and renamed into place) when neither is. One file without the other,
    /// or a file that does not parse, is an error naming it: a CA users may already trust is
    /// never replaced behind their back.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (state_dir.join(CA_CERT_FILE), state_dir.join(CA_KEY_FILE));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::load(cert_path, &key_path),
            (false, false) => Self::create(cert_path, &key_path),
            (false, true) => {
                Err(TlsError::file(&cert_path, "missing while the CA key exists; remove both to make a new CA"))
            }
            (true, false) => {
                Err(TlsError::file(&key_path, "missing while the CA certificate exists; remove both to make a new CA"))
            }
        }
    }

    /// Where the CA certificate is, for users to trust.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The CA certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A new server certificate for `names` (DNS names; wildcards allowed), with a fresh key.
    pub fn issue(&self, names: &[String]) -> Result<Arc<CertifiedKey>, TlsError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name = DistinguishedName::new();
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let certified =
            CertifiedKey::from_der(vec![cert.der().clone(), self.cert.clone()], key_der, &super::provider())?;
        Ok(Arc::new(certified))
    }

    fn load(cert_path: PathBuf, key_path: &Path) -> Result<Self, TlsError> {
        let cert = CertificateDer::from_pem_file(&cert_path).map_err(|e| TlsError::file(&cert_path, e))?;
        let key_der = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::file(key_path, e))?;
        // The pair must match, or every certificate issued would fail to verify.
        CertifiedKey::from_der(vec![cert.clone()], key_der.clone_key(), &super::provider())
            .map_err(|e| TlsError::file(key_path, format!("not the key of {}: {e}", cert_path.display())))?;
        let key = KeyPair::try_from(&key_der).map_err(|e| TlsError::file(key_path, e))?;
        Ok(Self { cert, issuer: Issuer::new(ca_params(), key), cert_path })
    }

    fn create(cert_path: PathBuf, key_path: &Path) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        if let Some(dir) = cert_path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| TlsError::file(dir, e))?;
        }
        write_atomically(key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomically(&cert_path, cert.pem().as_bytes(), 0o644)?;
        tracing::info!(ca = %cert_path.display(), "created the router's local certificate authority");
        Ok(Self { cert: cert.der().clone(), issuer: Issuer::new(ca_params(), key), cert_path })
    }
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa").field("cert_path", &self.cert_path).finish_non_exhaustive()
    }
}

/// The CA's own parameters. Certificates are issued from these and the stored key (the
/// subject becomes their issuer, the key their authority key identifier), so they are
/// rebuilt, not parsed, when the CA is read back.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Sluice");
    dn.push(DnType::CommonName, "Sluice local router CA");
    params.distinguished_name = dn;
    // It signs server certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

/// Writes `bytes` to a temporary file created with `mode`, syncs it and renames it over
/// `path`, so a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| TlsError::file(path, e))
}
