//! One client connection: hyper's `client::conn` over a TCP stream (HTTP/1.1 keep-alive or
//! h2c), and a request sent and its body read to the end. The connection's driver is polled in
//! the same task as the request (not spawned): one task wake per event instead of two, which
//! is most of what keeps the generator as cheap as wrk.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::tap::Tap;
use crate::target::{Protocol, Target};

/// A connection: HTTP/1.1 by the generator's own client, h2c by hyper's (its sending half,
/// and the driver that does its I/O).
pub(crate) enum Sender {
    H1(super::h1::Conn),
    Hyper { half: Half, driver: Option<Driver>, tap: Option<Arc<Tap>>, class: Option<u8> },
}

pub(crate) enum Half {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

type Driver = Pin<Box<dyn Future<Output = Result<(), hyper::Error>>>>;

/// What a request looks like, built once per connection.
pub(crate) struct RequestTemplate {
    uri: Uri,
    host: Option<HeaderValue>,
}

// === impl Sender ===

impl Sender {
    /// Connects to `target` and completes the HTTP handshake; `tap`, when given, classifies
    /// each response by its header.
    pub(crate) async fn connect(target: &Target, tap: Option<Arc<Tap>>) -> Result<Self, String> {
        if target.protocol == Protocol::Http1 {
            return Ok(Self::H1(super::h1::Conn::connect(target, tap).await?));
        }
        let stream = TcpStream::connect(target.addr).await.map_err(|e| e.to_string())?;
        // Requests are small and sent whole: do not let Nagle hold them back.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let io = TokioIo::new(stream);
        match target.protocol {
            Protocol::Http1 => {
                let (sender, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
                Ok(Self::Hyper { half: Half::H1(sender), driver: Some(Box::pin(conn)), tap, class: None })
            }
            Protocol::H2c => {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
                Ok(Self::Hyper { half: Half::H2(sender), driver: Some(Box::pin(conn)), tap, class: None })
            }
        }
    }

    /// True once the connection can take no more requests (the server closed it, or it broke).
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Self::H1(c) => c.is_closed(),
            Self::Hyper { driver: None, .. } => true,
            Self::Hyper { half: Half::H1(s), .. } => s.is_closed(),
            Self::Hyper { half: Half::H2(s), .. } => s.is_closed(),
        }
    }

    /// The class of the last response (see [`Tap`]); None without a tap.
    pub(crate) fn class(&self) -> Option<u8> {
        match self {
            Self::H1(c) => c.class(),
            Self::Hyper { class, .. } => *class,
        }
    }

    /// Sends one request and reads its response to the end, driving the connection meanwhile;
    /// the status code. Err when the connection broke (it is closed from then on).
    pub(crate) async fn send(&mut self, template: &RequestTemplate) -> Result<u16, ()> {
        let (half, driver, tap, class) = match self {
            Self::H1(c) => return c.send().await.map_err(drop),
            Self::Hyper { half, driver, tap, class } => (half, driver, tap, class),
        };
        let exchange = exchange(half, template.request(), tap.as_deref(), class);
        tokio::pin!(exchange);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = exchange.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(drop));
            }
            if let Some(d) = driver.as_mut()
                && d.as_mut().poll(cx).is_ready()
            {
                // The connection ended: the exchange fails on its next poll, if it has not.
                *driver = None;
                return exchange.as_mut().poll(cx).map(|r| r.map_err(drop));
            }
            Poll::Pending
        })
        .await
        .inspect_err(|_| *driver = None)
    }
}

async fn exchange(
    half: &mut Half,
    req: Request<Empty<Bytes>>,
    tap: Option<&Tap>,
    class: &mut Option<u8>,
) -> Result<u16, hyper::Error> {
    let res = match half {
        Half::H1(s) => {
            s.ready().await?;
            s.send_request(req).await?
        }
        Half::H2(s) => {
            s.ready().await?;
            s.send_request(req).await?
        }
    };
    let status = res.status().as_u16();
    if let Some(tap) = tap {
        *class = res.headers().get(tap.header()).and_then(|v| tap.classify(tap.header(), v.as_bytes())).flatten();
    }
    let mut body = res.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(status)
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
