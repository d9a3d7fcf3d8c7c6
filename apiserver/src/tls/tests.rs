//! The local CA kept across starts, the server certificate issued again only when it must be,
//! and the user's own certificate files, with errors that name the file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustls::pki_types::UnixTime;

use super::local::covers;
use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

fn in_days(days: u64) -> UnixTime {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock");
    UnixTime::since_unix_epoch(now + Duration::from_secs(days * 24 * 3600))
}

#[test]
fn the_local_ca_is_made_once_and_the_server_certificate_reissued_for_new_names_or_near_expiry() {
    let state = tempfile::tempdir().expect("tempdir");
    let tls = state.path().join(TLS_DIR);
    let first = Identity::local(state.path(), &[]).expect("first start");
    for key in [CA_KEY, SERVER_KEY] {
        assert_eq!(mode(&tls.join(key)), 0o600, "{key}");
    }
    for cert in [CA_CERT, SERVER_CERT] {
        assert_eq!(mode(&tls.join(cert)), 0o644, "{cert}");
    }
    let ca = first.authority_certificates();
    assert_eq!(ca.len(), 1);
    assert_eq!(first.authority_pem(), Some(std::fs::read_to_string(tls.join(CA_CERT)).expect("ca").as_str()));
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    assert!(covers(&ca[0], &first.chain()[0], &names, UnixTime::now()));
    assert!(covers(&ca[0], &first.chain()[0], &names, in_days(300)), "valid for about a year");
    assert!(!covers(&ca[0], &first.chain()[0], &names, in_days(400)));
    assert!(!covers(&ca[0], &first.chain()[0], &["192.0.2.7".to_string()], UnixTime::now()));

    let again = Identity::local(state.path(), &[]).expect("second start");
    assert_eq!(again.authority_pem(), first.authority_pem(), "the CA is kept");
    assert_eq!(again.chain(), first.chain(), "a certificate that still covers the names is kept");
    // One that would expire before the renewal horizon is issued again, by the same CA.
    let renewed = Identity::local_renewing_at(state.path(), &[], in_days(400)).expect("renewal");
    assert_eq!(renewed.authority_pem(), first.authority_pem());
    assert_ne!(renewed.chain(), first.chain(), "a certificate expiring within 30 days is reissued");
    assert!(covers(&ca[0], &renewed.chain()[0], &names, UnixTime::now()));

    // Bound to another address: a new server certificate covering it, from the same CA.
    std::fs::set_permissions(tls.join(CA_KEY), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let wider = Identity::local(state.path(), &["192.0.2.7".into(), "build-box".into()]).expect("third start");
    assert_eq!(wider.authority_pem(), first.authority_pem());
    assert_ne!(wider.chain(), renewed.chain());
    let all = ["localhost", "127.0.0.1", "::1", "192.0.2.7", "build-box"].map(String::from);
    assert!(covers(&ca[0], &wider.chain()[0], &all, UnixTime::now()));
    assert_eq!(mode(&tls.join(CA_KEY)), 0o600, "a CA key others could read is narrowed");
    wider.acceptor().expect("rustls takes the certificate and key");
}

#[test]
fn a_ca_key_that_is_not_the_certificates_is_an_error_naming_it() {
    let state = tempfile::tempdir().expect("tempdir");
    let tls = state.path().join(TLS_DIR);
    Identity::local(state.path(), &[]).expect("first start");
    let other = rcgen::KeyPair::generate().expect("key");
    std::fs::write(tls.join(CA_KEY), other.serialize_pem()).expect("replace the CA key");
    std::fs::remove_file(tls.join(SERVER_CERT)).expect("force a new server certificate");
    let err = Identity::local(state.path(), &[]).err().expect("a mismatched CA key is refused").to_string();
    assert!(err.contains(CA_KEY) && err.contains("delete"), "{err}");
}

/// A self-signed certificate for `name` and its key, written as PEM into `dir`.
fn user_files(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("certificate");
    let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, signing_key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

#[test]
fn the_users_certificate_is_used_and_errors_name_the_file_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = user_files(dir.path(), "api.example.test");
    let id = Identity::from_files(&cert, &key, None).expect("the user's certificate");
    assert_eq!(id.authority_data(), None, "no CA given: clients use the system trust store");
    assert!(id.authority_certificates().is_empty());
    id.acceptor().expect("acceptor");
    let with_ca = Identity::from_files(&cert, &key, Some(&cert)).expect("with a CA file");
    assert_eq!(with_ca.authority_certificates(), id.chain().to_vec());
    assert!(with_ca.authority_data().is_some());

    let (_, other_key) = user_files(dir.path(), "other.example.test");
    let err = Identity::from_files(&cert, &other_key, None).err().expect("mismatch").to_string();
    assert!(err.contains("api.example.test.crt") && err.contains("other.example.test.key"), "{err}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not pem\n").expect("write");
    let err = Identity::from_files(&empty, &key, None).err().expect("no certificate").to_string();
    assert!(err.contains("empty.pem") && err.contains("no certificate"), "{err}");
    let err = Identity::from_files(&cert, &empty, None).err().expect("no key").to_string();
    assert!(err.contains("empty.pem") && err.contains("no private key"), "{err}");
    let missing = dir.path().join("missing.crt");
    let err = Identity::from_files(&missing, &key, None).err().expect("missing").to_string();
    assert!(err.contains("missing.crt"), "{err}");
}
