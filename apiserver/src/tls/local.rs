//! The local CA: made once into `<state-dir>/tls/` and kept, so the kubeconfig and every client
//! that trusts it keep working across restarts; and the API server's certificate it issues,
//! issued again when it no longer covers the names the server is reached by or expires within
//! 30 days.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::{Identity, TlsError};
use crate::auth;

/// The state directory's folder for TLS files.
pub const TLS_DIR: &str = "tls";
/// The local CA's certificate (PEM), what clients trust.
pub const CA_CERT: &str = "ca.crt";
/// The local CA's private key (PEM, mode 0600).
pub const CA_KEY: &str = "ca.key";
/// The API server's certificate (PEM), issued by the local CA.
pub const SERVER_CERT: &str = "apiserver.crt";
/// The API server's private key (PEM, mode 0600).
pub const SERVER_KEY: &str = "apiserver.key";

/// Certificates are public: readable by all, writable by the owner.
const PUBLIC: u32 = 0o644;
/// A server certificate expiring sooner than this is issued again.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 365;
const CA_NAME: &str = "sluice local CA";

// === impl Identity ===

impl Identity {
    /// The identity from the local CA in `<state_dir>/tls/`, made there on the first start:
    /// a server certificate for `localhost`, `127.0.0.1`, `::1` and `names` (the address the
    /// server is bound to and the host's name, when it listens beyond loopback), reused while
    /// it covers them and is valid for 30 more days, else issued again.
    pub fn local(state_dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        Self::local_renewing_at(state_dir, names, UnixTime::since_unix_epoch(now_since_epoch() + RENEW_BEFORE))
    }

    /// [`Identity::local`], keeping the server certificate only if it is still valid at
    /// `renew_at`.
    pub(super) fn local_renewing_at(state_dir: &Path, names: &[String], renew_at: UnixTime) -> Result<Self, TlsError> {
        let dir = state_dir.join(TLS_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| TlsError::Io { path: dir.clone(), source })?;
        let (ca_pem, issuer) = load_or_create_ca(&dir)?;
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| invalid(&dir.join(CA_CERT), format!("not a PEM certificate: {e}")))?;
        let names = server_names(names);
        let (cert_path, key_path) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
        if let Some((cert, key)) = read_pair(&cert_path, &key_path)
            && covers(&ca, &cert, &names, renew_at)
        {
            auth::keep_private(&key_path, "the API server's TLS key").map_err(|source| io(&key_path, source))?;
            return Ok(Self { chain: vec![cert], key: Arc::new(key), authority: Some(ca_pem) });
        }
        let (cert, key) = issue(&issuer, &names)?;
        auth::write_private(&key_path, key.serialize_pem().as_bytes()).map_err(|source| io(&key_path, source))?;
        auth::write_atomic(&cert_path, cert.pem().as_bytes(), PUBLIC).map_err(|source| io(&cert_path, source))?;
        tracing::info!(path = %cert_path.display(), names = ?names, "issued the API server's TLS certificate");
        let cert = cert.der().clone();
        if !covers(&ca, &cert, &names, UnixTime::now()) {
            return Err(invalid(
                &dir.join(CA_KEY),
                format!(
                    "is not the key of {CA_CERT} (a certificate it signs does not verify); delete {} to have a new CA made, and give clients the new {CA_CERT}",
                    dir.display()
                ),
            ));
        }
        let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(Self { chain: vec![cert], key: Arc::new(key), authority: Some(ca_pem) })
    }
}

/// The CA's certificate (PEM) and an issuer signing with its key: read from `dir`, or made
/// there (key first, so a certificate is never on disk without its key).
fn load_or_create_ca(dir: &Path) -> Result<(String, Issuer<'static, KeyPair>), TlsError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if cert_path.exists() && key_path.exists() {
        let key_pem = std::fs::read_to_string(&key_path).map_err(|source| io(&key_path, source))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| invalid(&key_path, format!("not a PEM private key: {e}")))?;
        auth::keep_private(&key_path, "the local CA's key").map_err(|source| io(&key_path, source))?;
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(|source| io(&cert_path, source))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| invalid(&cert_path, format!("not a CA certificate: {e}")))?;
        return Ok((cert_pem, issuer));
    }
    if cert_path.exists() || key_path.exists() {
        tracing::warn!(dir = %dir.display(), "half of the local CA is missing ({CA_CERT} or {CA_KEY}); making a new CA: clients must be given the new {CA_CERT}");
    }
    let key = KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, CA_DAYS);
    let cert = params.self_signed(&key).map_err(|e| TlsError::Generate(e.to_string()))?;
    auth::write_private(&key_path, key.serialize_pem().as_bytes()).map_err(|source| io(&key_path, source))?;
    auth::write_atomic(&cert_path, cert.pem().as_bytes(), PUBLIC).map_err(|source| io(&cert_path, source))?;
    tracing::info!(path = %cert_path.display(), "made the local CA for the API server's TLS certificate");
    Ok((cert.pem(), Issuer::new(params, key)))
}

/// A new server key and a certificate for `names` signed by `issuer`.
fn issue(issuer: &Issuer<'_, KeyPair>, names: &[String]) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
    let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name("sluice apiserver");
    params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>().map_err(fail)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVER_DAYS);
    let cert = params.signed_by(&key, issuer).map_err(fail)?;
    Ok((cert, key))
}

/// The names every certificate covers, then `extra` (duplicates and blanks dropped).
fn server_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    for name in extra.iter().map(|n| n.trim()) {
        if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_string());
        }
    }
    names
}

fn san(name: &str) -> Result<SanType, rcgen::Error> {
    Ok(match name.parse() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.to_string().try_into()?),
    })
}

/// True when `cert` chains to `ca` and is valid for every one of `names` at `at`.
pub(super) fn covers(ca: &CertificateDer<'_>, cert: &CertificateDer<'_>, names: &[String], at: UnixTime) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca.clone().into_owned()).is_err() {
        return false;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()
    else {
        return false;
    };
    names.iter().all(|name| {
        ServerName::try_from(name.as_str())
            .is_ok_and(|server| verifier.verify_server_cert(cert, &[], &server, &[], at).is_ok())
    })
}

/// The server certificate and key on disk, when both are there and parse.
fn read_pair(cert: &Path, key: &Path) -> Option<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    Some((CertificateDer::from_pem_file(cert).ok()?, PrivateKeyDer::from_pem_file(key).ok()?))
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "sluice");
    name
}

/// Valid from yesterday (a client whose clock is a little behind still accepts it) for `days`.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(i32::from(d.year()), d.month().unsigned_abs(), d.day().unsigned_abs())
    };
    let shift = |n: i64| today.checked_add(jiff::Span::new().days(n)).unwrap_or(today);
    params.not_before = ymd(shift(-1));
    params.not_after = ymd(shift(days));
}

fn now_since_epoch() -> Duration {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

fn io(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io { path: path.to_path_buf(), source }
}

fn invalid(path: &Path, reason: String) -> TlsError {
    TlsError::Invalid { path: path.to_path_buf(), reason }
}
