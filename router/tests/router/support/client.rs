//! Clients of the proxy: HTTP/1.1 and h2c connections, and whole replies.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::TestBody;

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub async fn read(res: Response<Incoming>) -> Reply {
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Which backend answered.
    pub fn backend(&self) -> &str {
        self.headers.get("x-backend").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// One HTTP/1.1 keep-alive connection to the proxy.
pub struct H1 {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
    _conn: JoinHandle<()>,
}

impl H1 {
    pub async fn connect(addr: SocketAddr) -> H1 {
        Self::over(TcpStream::connect(addr).await.expect("connect to proxy")).await
    }

    /// HTTP/1.1 over an open connection (e.g. TLS).
    pub async fn over<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I) -> H1 {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.expect("h1 handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        H1 { sender, _conn: conn }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Response<Incoming> {
        self.try_send(req).await.expect("response head")
    }

    pub async fn try_send(&mut self, req: Request<TestBody>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    /// Whether the connection can take another request (false once either side closed it).
    pub async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    pub async fn get(&mut self, host: &str) -> Reply {
        Reply::read(self.send(get(host)).await).await
    }
}

impl Drop for H1 {
    fn drop(&mut self) {
        self._conn.abort();
    }
}

/// One h2c (prior knowledge) connection to the proxy.
pub struct H2 {
    pub sender: hyper::client::conn::http2::SendRequest<TestBody>,
    _conn: JoinHandle<()>,
}

impl H2 {
    pub async fn connect(addr: SocketAddr) -> H2 {
        Self::over(TcpStream::connect(addr).await.expect("connect to proxy")).await
    }

    /// HTTP/2 over an open connection (e.g. TLS with ALPN h2).
    pub async fn over<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I) -> H2 {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.expect("h2 handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        H2 { sender, _conn: conn }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Response<Incoming> {
        self.sender.ready().await.expect("connection ready");
        self.sender.send_request(req).await.expect("response head")
    }
}

impl Drop for H2 {
    fn drop(&mut self) {
        self._conn.abort();
    }
}

/// `GET /` for `host` on a fresh connection.
pub async fn fetch(addr: SocketAddr, host: &str) -> Reply {
    H1::connect(addr).await.get(host).await
}

pub fn get(host: &str) -> Request<TestBody> {
    Request::get("/").header("host", host).body(empty()).expect("request")
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|e: Infallible| match e {}).boxed_unsync()
}

pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).map_err(|e: Infallible| match e {}).boxed_unsync()
}
