//! One client connection: hyper's `client::conn` over a TCP stream (HTTP/1.1 keep-alive or
//! h2c), its driver spawned on the thread's local set, and a request sent and its body read
//! to the end.

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::target::{Protocol, Target};

/// The sending half of a connection.
pub(crate) enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

/// What a request looks like, built once per connection.
pub(crate) struct RequestTemplate {
    uri: Uri,
    host: Option<HeaderValue>,
}

// === impl Sender ===

impl Sender {
    /// Connects to `target` and completes the HTTP handshake.
    pub(crate) async fn connect(target: &Target) -> Result<Self, String> {
        let stream = TcpStream::connect(target.addr).await.map_err(|e| e.to_string())?;
        // Requests are small and sent whole: do not let Nagle hold them back.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let io = TokioIo::new(stream);
        match target.protocol {
            Protocol::Http1 => {
                let (sender, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
                tokio::task::spawn_local(conn);
                Ok(Self::H1(sender))
            }
            Protocol::H2c => {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
                tokio::task::spawn_local(conn);
                Ok(Self::H2(sender))
            }
        }
    }

    /// True once the connection can take no more requests (the server closed it, or it broke).
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Self::H1(s) => s.is_closed(),
            Self::H2(s) => s.is_closed(),
        }
    }

    /// Sends one request and reads its response to the end; the status code.
    pub(crate) async fn send(&mut self, template: &RequestTemplate) -> Result<u16, hyper::Error> {
        let req = template.request();
        let res = match self {
            Self::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Self::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let status = res.status().as_u16();
        let mut body = res.into_body();
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok(status)
    }
}

// === impl RequestTemplate ===

impl RequestTemplate {
    /// GET `target`'s path with its Host (HTTP/1.1) or `:authority` (h2c).
    pub(crate) fn new(target: &Target) -> Self {
        let host = (target.protocol == Protocol::Http1).then(|| target.host.clone());
        Self { uri: target.request_uri(), host }
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut req = Request::new(Empty::new());
        *req.uri_mut() = self.uri.clone();
        if let Some(host) = &self.host {
            req.headers_mut().insert(HOST, host.clone());
        }
        req
    }
}
