//! HTTP for tests: blocking readiness probes (plain and https), and an async pooled client that returns
//! status, headers and the whole body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Legacy;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// True when `GET url` answers 200 within a second.
pub fn blocking_get_ok(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let Ok(mut s) = TcpStream::connect(authority) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if write!(s, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

/// True when `GET url` (`https://`) answers 200 within a second, the server's certificate
/// verified against the CA in `ca` (PEM).
pub fn blocking_get_ok_tls(url: &str, ca: &std::path::Path) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let Some(rest) = url.strip_prefix("https://") else { return false };
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let Some((host, _)) = authority.rsplit_once(':') else { return false };
    let Ok(name) = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()) else {
        return false;
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).into_iter().flatten().flatten() {
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let Ok(builder) = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    else {
        return false;
    };
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    let Ok(conn) = rustls::ClientConnection::new(std::sync::Arc::new(config), name) else { return false };
    let Ok(tcp) = TcpStream::connect(authority) else { return false };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    if write!(tls, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// A pooled HTTP/1.1 client; with a token ([`Client::with_token`], `Sluice::client`) it sends
/// `Authorization: Bearer <token>` on every request that does not set its own.
#[derive(Clone)]
pub struct Client {
    inner: Legacy<HttpConnector, Full<Bytes>>,
    authorization: Option<HeaderValue>,
}

// === impl Response ===

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

// === impl Client ===

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A new client that sends no credentials (for the router, or to test the API's refusals).
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self { inner: Legacy::builder(TokioExecutor::new()).build(connector), authorization: None }
    }

    /// A new client that shows the API server `token`.
    pub fn with_token(token: &str) -> Self {
        let authorization = HeaderValue::from_str(&format!("Bearer {token}")).ok();
        Self { authorization, ..Self::new() }
    }

    /// Sends a request; `headers` are added as given (e.g. `("host", "hello.default.localhost")`).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Response> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let own = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(header::AUTHORIZATION.as_str()));
        if let Some(auth) = self.authorization.as_ref().filter(|_| !own) {
            req = req.header(header::AUTHORIZATION, auth.clone());
        }
        let res = self.inner.request(req.body(Full::new(body.into()))?).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response { status: parts.status, headers: parts.headers, body })
    }

    /// `GET url` with headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Response> {
        self.send(Method::GET, url, headers, Bytes::new()).await
    }
}

/// Waits until the API server of `sluice` stops writing: its resourceVersion (one counter for
/// every write) unchanged across `quiet`. Controllers that disagree about an object rewrite
/// it in turn forever; this is how a test notices. Errors after `deadline` with the last two
/// versions seen.
pub async fn settled(sluice: &crate::Sluice, quiet: Duration, deadline: Duration) -> anyhow::Result<()> {
    let client = sluice.client();
    let url = format!("{}/apis/serving.knative.dev/v1/services?limit=1", sluice.api);
    let version = async || -> anyhow::Result<String> {
        let res = client.get(&url, &[]).await?;
        anyhow::ensure!(res.status == StatusCode::OK, "GET {url}: {}", res.status);
        Ok(res.json()["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string())
    };
    let start = tokio::time::Instant::now();
    loop {
        let before = version().await?;
        tokio::time::sleep(quiet).await;
        let after = version().await?;
        if before == after {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < deadline,
            "the API server kept writing for {deadline:?} (resourceVersion {before} → {after} in {quiet:?})"
        );
    }
}
