use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rcgen::{CertificateParams, KeyPair};
use rustls::client::danger::ServerCertVerifier;

use super::*;

/// A self-signed certificate for `names`, written as `{stem}.crt` and `{stem}.key` in `dir`.
fn self_signed(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let (cert_path, key_path) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

fn spec(domain: &str, files: (PathBuf, PathBuf)) -> HostCertSpec {
    HostCertSpec { domain: domain.into(), cert: files.0, key: files.1 }
}

fn leaf(c: &rustls::sign::CertifiedKey) -> Vec<u8> {
    c.cert[0].to_vec()
}

#[test]
fn host_cert_specs_name_a_domain_and_two_files() {
    let s: HostCertSpec = "*.Default.Example.com=/etc/tls/a:b.pem:/etc/tls/a.key".parse().expect("spec");
    assert_eq!(s.domain, "*.default.example.com");
    assert_eq!(s.cert, Path::new("/etc/tls/a:b.pem"), "the last ':' splits");
    assert_eq!(s.key, Path::new("/etc/tls/a.key"));
    assert_eq!(s.wildcard_parent(), Some("default.example.com"));
    let exact: HostCertSpec = "hello.example.com=c.pem:k.pem".parse().expect("spec");
    assert_eq!(exact.wildcard_parent(), None);
    for bad in ["c.pem:k.pem", "a.example.com=c.pem", "a.example.com=:k.pem", "*.*.example.com=c:k", "*=c:k", "a b=c:k"]
    {
        let err = bad.parse::<HostCertSpec>().expect_err(bad).to_string();
        assert!(err.contains("DOMAIN=CERT.pem:KEY.pem"), "{bad}: {err}");
    }
}

#[test]
fn unreadable_or_mismatched_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = self_signed(dir.path(), "a", &["a.example.com"]);
    let b = self_signed(dir.path(), "b", &["b.example.com"]);
    let missing = spec("a.example.com", (dir.path().join("nope.crt"), a.1.clone()));
    assert!(missing.load().expect_err("missing").to_string().contains("nope.crt"));
    let not_pem = dir.path().join("empty.crt");
    std::fs::write(&not_pem, "hello").expect("write");
    let err = spec("a.example.com", (not_pem, a.1.clone())).load().expect_err("no cert").to_string();
    assert!(err.contains("empty.crt") && err.contains("no CERTIFICATE"), "{err}");
    let err = spec("a.example.com", (a.0.clone(), b.1.clone())).load().expect_err("mismatch").to_string();
    assert!(err.contains("b.key") && err.contains("a.crt"), "{err}");
    assert!(spec("a.example.com", a).load().is_ok());
}

#[test]
fn the_local_ca_is_kept_with_a_private_key_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = LocalCa::load_or_create(dir.path()).expect("create");
    let key = dir.path().join(CA_KEY_FILE);
    let mode = std::fs::metadata(&key).expect("key file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(first.cert_path(), dir.path().join(CA_CERT_FILE));
    let again = LocalCa::load_or_create(dir.path()).expect("load");
    assert_eq!(first.certificate(), again.certificate(), "the same CA on the next start");
    // Certificates issued by the CA read back name it as their issuer, and chain to it.
    let issued = again.issue(&["hello.default.localhost".into()]).expect("issue");
    assert_eq!(issued.cert[1], *first.certificate());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(first.certificate().clone()).expect("root");
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider())
        .build()
        .expect("verifier");
    let name = rustls::pki_types::ServerName::try_from("hello.default.localhost").expect("name");
    let now = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
    verifier.verify_server_cert(&issued.cert[0], &issued.cert[1..], &name, &[], now).expect("chains to the stored CA");
}

#[test]
fn one_ca_file_without_the_other_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    LocalCa::load_or_create(dir.path()).expect("create");
    std::fs::remove_file(dir.path().join(CA_CERT_FILE)).expect("remove");
    let err = LocalCa::load_or_create(dir.path()).expect_err("half a CA").to_string();
    assert!(err.contains("router-ca.crt"), "{err}");
    std::fs::write(dir.path().join(CA_CERT_FILE), "garbage").expect("write");
    let err = LocalCa::load_or_create(dir.path()).expect_err("bad CA").to_string();
    assert!(err.contains("router-ca.crt"), "{err}");
}

#[test]
fn sni_picks_the_exact_host_then_the_wildcard_then_the_local_ca_then_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exact = spec("hello.default.example.com", self_signed(dir.path(), "exact", &["hello.default.example.com"]));
    let wild = spec("*.default.example.com", self_signed(dir.path(), "wild", &["*.default.example.com"]));
    let (exact_leaf, wild_leaf) = (leaf(&exact.load().expect("exact")), leaf(&wild.load().expect("wild")));
    let ca = LocalCa::load_or_create(dir.path()).expect("ca");
    let ca_der = ca.certificate().to_vec();
    let resolver = CertResolver::new(&[exact, wild], Some((ca, "example.com"))).expect("resolver");
    let pick = |sni: Option<&str>| resolver.certificate_for(sni).expect("a certificate");
    assert_eq!(leaf(&pick(Some("hello.default.example.com"))), exact_leaf);
    assert_eq!(leaf(&pick(Some("HELLO.default.example.com."))), exact_leaf, "case and a trailing dot do not matter");
    assert_eq!(leaf(&pick(Some("other.default.example.com"))), wild_leaf);
    // A wildcard covers one label only.
    let deeper = pick(Some("a.b.default.example.com"));
    assert_ne!(leaf(&deeper), wild_leaf);
    assert_eq!(deeper.cert[1].to_vec(), ca_der, "issued by the local CA");
    let issued = pick(Some("hello.prod.example.com"));
    assert_eq!(issued.cert[1].to_vec(), ca_der);
    assert_eq!(leaf(&pick(Some("hello.prod.example.com"))), leaf(&issued), "cached");
    // Outside the domain, and without SNI: the default `*.{domain}` certificate.
    let default = pick(None);
    assert_eq!(leaf(&pick(Some("elsewhere.org"))), leaf(&default));
    assert_eq!(resolver.issued(), 2);
}

#[test]
fn without_a_local_ca_the_first_given_certificate_is_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = spec("a.example.com", self_signed(dir.path(), "a", &["a.example.com"]));
    let a_leaf = leaf(&a.load().expect("a"));
    let resolver = CertResolver::new(&[a], None).expect("resolver");
    assert_eq!(leaf(&resolver.certificate_for(Some("hello.default.example.com")).expect("default")), a_leaf);
    assert_eq!(resolver.issued(), 0);
}

#[test]
fn issued_certificates_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = LocalCa::load_or_create(dir.path()).expect("ca");
    let mut resolver = CertResolver::new(&[], Some((ca, "localhost"))).expect("resolver");
    resolver.set_issued_capacity(3);
    for i in 0..10 {
        resolver.certificate_for(Some(&format!("s{i}.default.localhost"))).expect("issued");
        assert!(resolver.issued() <= 3);
    }
    assert_eq!(resolver.issued(), 3);
}

#[test]
fn the_server_config_offers_h2_then_http11() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = LocalCa::load_or_create(dir.path()).expect("ca");
    let config = server_config(CertResolver::new(&[], Some((ca, "localhost"))).expect("resolver")).expect("config");
    assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    let versions: Vec<_> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(versions, [rustls::ProtocolVersion::TLSv1_3, rustls::ProtocolVersion::TLSv1_2]);
}
