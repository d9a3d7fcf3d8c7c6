//! The router serving plain HTTP and HTTPS side by side, and TLS clients of it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use sluice_router::table::RoutingTable;
use sluice_router::tls::{CertResolver, HostCertSpec, LocalCa};
use sluice_router::{HttpsListener, Router, RouterConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

/// The router on two listeners (plain and TLS) of 127.0.0.1:0, domain `localhost`.
pub struct TlsProxy {
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    pub table: Arc<ArcSwap<RoutingTable>>,
    /// The local CA's certificate.
    pub ca: CertificateDer<'static>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _state: tempfile::TempDir,
}

impl TlsProxy {
    pub async fn start(table: RoutingTable, config: RouterConfig, given: &[HostCertSpec]) -> TlsProxy {
        let state = tempfile::tempdir().expect("state dir");
        let ca = LocalCa::load_or_create(state.path()).expect("local CA");
        let ca_cert = ca.certificate().clone();
        let resolver = CertResolver::new(given, Some((ca, "localhost"))).expect("resolver");
        let tls_config = sluice_router::tls::server_config(resolver).expect("server config");
        let plain_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tls_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (plain, tls) = (plain_listener.local_addr().expect("addr"), tls_listener.local_addr().expect("addr"));
        let config =
            RouterConfig { https: Some(HttpsListener { port: tls.port(), domain: "localhost".into() }), ..config };
        let table = Arc::new(ArcSwap::from_pointee(table));
        let router = Router::new(table.clone(), config);
        let shutdown = CancellationToken::new();
        let drain = Duration::from_secs(5);
        let tasks = vec![
            tokio::spawn(sluice_router::server::serve(plain_listener, router.clone(), shutdown.clone(), drain)),
            tokio::spawn(sluice_router::server::serve_tls(tls_listener, tls_config, router, shutdown.clone(), drain)),
        ];
        TlsProxy { plain, tls, table, ca: ca_cert, shutdown, tasks, _state: state }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A TLS client trusting `roots` only.
pub struct TlsClient {
    pub roots: Vec<CertificateDer<'static>>,
    pub alpn: Vec<Vec<u8>>,
    pub versions: &'static [&'static SupportedProtocolVersion],
}

impl TlsClient {
    pub fn new(roots: &[&CertificateDer<'static>]) -> TlsClient {
        TlsClient {
            roots: roots.iter().map(|c| (*c).clone()).collect(),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            versions: sluice_router::tls::PROTOCOL_VERSIONS,
        }
    }

    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsClient {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    pub fn versions(mut self, versions: &'static [&'static SupportedProtocolVersion]) -> TlsClient {
        self.versions = versions;
        self
    }

    /// A TLS connection to `addr` asking for `sni`, its certificate verified against the roots.
    pub async fn connect(&self, addr: SocketAddr, sni: &str) -> std::io::Result<TlsStream<TcpStream>> {
        let mut roots = RootCertStore::empty();
        for root in &self.roots {
            roots.add(root.clone()).expect("root certificate");
        }
        let mut config = ClientConfig::builder_with_provider(sluice_router::tls::provider())
            .with_protocol_versions(self.versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = self.alpn.clone();
        let name = ServerName::try_from(sni.to_string()).expect("server name");
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(Arc::new(config)).connect(name, tcp).await
    }
}

/// A self-signed certificate for `names` written to `dir` (`{stem}.crt`, `{stem}.key`), given
/// for `domain`; and the certificate, to trust it.
pub fn given_cert(dir: &Path, stem: &str, domain: &str, names: &[&str]) -> (HostCertSpec, CertificateDer<'static>) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let (cert_path, key_path) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (HostCertSpec { domain: domain.into(), cert: cert_path, key: key_path }, cert.der().clone())
}
