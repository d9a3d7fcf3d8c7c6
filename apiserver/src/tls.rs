//! TLS for kubectl: client-go sends a kubeconfig's credentials only to an `https://` server,
//! so the API server also speaks TLS on its port (a connection opening with a TLS handshake
//! is served over TLS, any other as plain HTTP). Each start makes a new self-signed P-256
//! certificate for the loopback names, kept in memory; the kubeconfig carries it as the
//! cluster's certificate authority.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The first byte of a TLS record carrying a handshake.
pub(crate) const HANDSHAKE: u8 = 0x16;

const ECDSA_WITH_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
const SUBJECT_ALT_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];

/// The API server's certificate and key.
#[derive(Clone)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key: Arc<PrivatePkcs8KeyDer<'static>>,
}

/// Making the certificate failed (the system's random source, or rustls refusing it).
#[derive(Debug, thiserror::Error)]
#[error("creating the API server's TLS certificate: {0}")]
pub struct CertificateError(String);

// === impl Identity ===

impl Identity {
    /// A new self-signed certificate for `localhost`, `127.0.0.1`, `::1` and `extra` (the
    /// address the server is bound to, when it is not one of those).
    pub fn generate(extra: Option<IpAddr>) -> Result<Self, CertificateError> {
        let fail = |what: &str| CertificateError(what.to_string());
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| fail("no key from the random source"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| fail("the generated key does not parse"))?;
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&rng, &mut serial).map_err(|_| fail("no serial from the random source"))?;
        serial[0] &= 0x7f; // a positive INTEGER
        serial[0] |= 0x01; // with no leading zero octet to strip
        let tbs = tbs_certificate(&serial, pair.public_key().as_ref(), extra);
        let signature = pair.sign(&rng, &tbs).map_err(|_| fail("signing the certificate failed"))?;
        let cert = der(0x30, &[tbs, der(0x30, ECDSA_WITH_SHA256), bit_string(signature.as_ref())].concat());
        Ok(Self { cert: CertificateDer::from(cert), key: Arc::new(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec())) })
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate in PEM, base64-encoded again: a kubeconfig's `certificate-authority-data`.
    pub fn authority_data(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = b64.encode(self.cert.as_ref());
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
        b64.encode(pem)
    }

    /// A TLS acceptor with this identity (HTTP/2 and HTTP/1.1 by ALPN, as kubectl asks).
    pub(crate) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, CertificateError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CertificateError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))
            .map_err(|e| CertificateError(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// The part of the certificate that is signed: v3, serial, issuer = subject = `CN=sluice`,
/// valid 2020–2049 (the loopback names it covers do not expire; a new one is made each start),
/// the P-256 key, and the names as subjectAltName (Go's TLS ignores the common name).
fn tbs_certificate(serial: &[u8], public_key: &[u8], extra: Option<IpAddr>) -> Vec<u8> {
    let name = der(0x30, &der(0x31, &der(0x30, &[COMMON_NAME, &der(0x0c, b"sluice")].concat())));
    let validity = der(0x30, &[der(0x17, b"200101000000Z"), der(0x17, b"491231235959Z")].concat());
    let key_info = der(0x30, &[der(0x30, &[EC_PUBLIC_KEY, PRIME256V1].concat()), bit_string(public_key)].concat());
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    ips.extend(extra.filter(|ip| !ip.is_unspecified() && !ips.contains(ip)));
    let mut names = der(0x82, b"localhost");
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => names.extend(der(0x87, &v4.octets())),
            IpAddr::V6(v6) => names.extend(der(0x87, &v6.octets())),
        }
    }
    let san = der(0x30, &[SUBJECT_ALT_NAME, &der(0x04, &der(0x30, &names))].concat());
    let extensions = der(0xa3, &der(0x30, &san));
    der(
        0x30,
        &[
            der(0xa0, &der(0x02, &[2])),
            der(0x02, serial),
            der(0x30, ECDSA_WITH_SHA256),
            name.clone(),
            validity,
            name,
            key_info,
            extensions,
        ]
        .concat(),
    )
}

/// A DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A BIT STRING of whole bytes.
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    der(0x03, &[&[0u8][..], bytes].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_der() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(&der(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&der(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn the_certificate_is_accepted_by_rustls() {
        let id = Identity::generate(Some([10, 0, 0, 1].into())).expect("certificate");
        id.acceptor().expect("rustls takes the certificate and key");
        assert!(!id.authority_data().is_empty());
    }
}
