//! `sluice serve --https` through the real binary: the sample app over HTTPS with HTTP/2 and
//! HTTP/1.1 by ALPN, trusting the local CA the server keeps in its state directory (key mode
//! 0600, the same CA after a restart); `config-network`'s `http-protocol: Redirected` (or the
//! Service's `networking.knative.dev/http-protocol` annotation) sending plain HTTP to the HTTPS
//! port; and a certificate file that cannot be used stopping `serve`.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::wire::exchange;
use sluice_test_support::{Sluice, SluiceOptions, apply, until, wait_for};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "hello.default.localhost";

const SERVICE: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go
          env:
            - name: TARGET
              value: tls
";

fn network(protocol: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  http-protocol: {protocol}
"
    )
}

fn start(state_dir: Option<std::path::PathBuf>, extra: &[&str]) -> anyhow::Result<Sluice> {
    let mut args = vec!["--https".to_string(), "127.0.0.1:0".to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    Sluice::start_with(BIN, SluiceOptions { state_dir, args, ..Default::default() })
}

/// A TLS connection to the server's HTTPS port for `HOST`, trusting `ca` only.
async fn connect(s: &Sluice, ca: &CertificateDer<'static>, alpn: &[u8]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("CA certificate");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(s.https.as_deref().expect("https address")).await.expect("connect");
    let name = ServerName::try_from(HOST).expect("name");
    TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake verified against the CA")
}

/// `GET /` over HTTPS with ALPN `alpn`: the HTTP version, status and body.
async fn get(s: &Sluice, ca: &CertificateDer<'static>, alpn: &[u8]) -> (http::Version, u16, String) {
    let tls = connect(s, ca, alpn).await;
    let req = Request::get(format!("https://{HOST}/")).header("host", HOST).body(Empty::<bytes::Bytes>::new());
    let res = if alpn == b"h2" {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.expect("h2");
        tokio::spawn(conn);
        let mut req = req.expect("request");
        req.headers_mut().remove("host");
        send.send_request(req).await.expect("response")
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("h1");
        tokio::spawn(conn);
        send.send_request(req.expect("request")).await.expect("response")
    };
    let (version, status) = (res.version(), res.status().as_u16());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (version, status, String::from_utf8_lossy(&body).into_owned())
}

fn read_ca(s: &Sluice) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(s.state_dir.join("tls/router-ca.crt")).expect("the CA certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_is_served_over_h2_and_http11_trusting_the_stored_ca_which_survives_a_restart() {
    let mut s = start(None, &[]).expect("start sluice --https");
    let key = s.state_dir.join("tls/router-ca.key");
    assert_eq!(std::fs::metadata(&key).expect("CA key").permissions().mode() & 0o777, 0o600);
    let ca = read_ca(&s);
    apply(BIN, &s, SERVICE).expect("apply");
    let traffic = Traffic::new(s.http.as_deref().expect("http"));
    traffic.wait_for(HOST, WAIT, |b| b == "Hello tls!\n").await.expect("served over HTTP");

    assert_eq!(get(&s, &ca, b"h2").await, (http::Version::HTTP_2, 200, "Hello tls!\n".into()));
    assert_eq!(get(&s, &ca, b"http/1.1").await, (http::Version::HTTP_11, 200, "Hello tls!\n".into()));

    // The next start reads the same CA: what users trusted once stays trusted.
    let status = s.terminate(WAIT).expect("stop");
    assert!(status.success(), "{status:?}");
    let state = s.keep_state_dir();
    let s = start(Some(s.state_dir.clone()), &[]).expect("restart");
    assert_eq!(read_ca(&s), ca, "the CA is reused");
    let traffic = Traffic::new(s.http.as_deref().expect("http"));
    traffic.wait_for(HOST, WAIT, |b| b == "Hello tls!\n").await.expect("served again");
    assert_eq!(get(&s, &ca, b"h2").await.1, 200);
    drop(s);
    drop(state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protocol_redirected_sends_plain_http_to_the_https_port() {
    let s = start(None, &[]).expect("start sluice --https");
    apply(BIN, &s, SERVICE).expect("apply");
    let http = s.http.clone().expect("http");
    let traffic = Traffic::new(&http);
    traffic.wait_for(HOST, WAIT, |b| b == "Hello tls!\n").await.expect("served over HTTP");

    apply(BIN, &s, &network("Redirected")).expect("config-network");
    let port = s.https.as_deref().and_then(|a| a.rsplit_once(':')).map(|(_, p)| p.to_string()).expect("port");
    let request = format!("GET /path?q=1 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    let res = until("a redirect", WAIT, async || {
        let res = exchange(&http, &request, Duration::from_secs(10)).await.ok()?;
        res.status_line.contains(" 301 ").then_some(res)
    })
    .await
    .expect("redirected");
    let location = format!("location: https://{HOST}:{port}/path?q=1");
    assert!(res.headers.iter().any(|h| h.eq_ignore_ascii_case(&location)), "{:?}", res.headers);
    // HTTPS itself is served, not redirected.
    assert_eq!(get(&s, &read_ca(&s), b"http/1.1").await.1, 200);

    apply(BIN, &s, &network("Enabled")).expect("config-network");
    traffic.wait_for(HOST, WAIT, |b| b == "Hello tls!\n").await.expect("plain HTTP again");

    // The Service's own annotation wins over the cluster's setting.
    let annotated = SERVICE.replace(
        "  name: hello\n",
        "  name: hello\n  annotations:\n    networking.knative.dev/http-protocol: redirected\n",
    );
    apply(BIN, &s, &annotated).expect("annotated service");
    until("a redirect by annotation", WAIT, async || {
        let res = exchange(&http, &request, Duration::from_secs(10)).await.ok()?;
        res.status_line.contains(" 301 ").then_some(())
    })
    .await
    .expect("redirected by the annotation");
}

#[test]
fn a_certificate_file_that_cannot_be_used_stops_serve_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let spec = format!("hello.example.com={}:{}", missing.display(), dir.path().join("missing.key").display());
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(dir.path())
        .args(["--tls-host-cert", &spec])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_for("serve to exit", WAIT, || child.try_wait().ok().flatten());
    if status.is_err() {
        let _ = child.kill();
    }
    let status = status.expect("serve exits");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
    assert!(!status.success(), "{status:?}");
    assert!(stderr.contains(&missing.display().to_string()), "the file is named: {stderr}");
}
