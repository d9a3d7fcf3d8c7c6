//! The request path, top to bottom:
//!
//! 1. [`RouterService`] (one per connection) is the edge: `Error = Infallible`, every failure
//!    becomes a response through [`ProxyError::into_response`].
//! 2. Limits: headers beyond the configured limits get 431 before any routing work.
//! 3. Routing: one `ArcSwap::load` of the table, host lookup, tag or weighted pick of a target,
//!    then [`RevisionEndpoints::pick`](crate::endpoints::RevisionEndpoints::pick) claims an
//!    instance. The request keeps its own `Arc`s from here on, so a table swapped mid-request
//!    does not move it.
//! 4. Rewriting: hop-by-hop headers out, `X-Forwarded-*` in, origin-form URI for the instance.
//! 5. Forwarding (`forward.rs`): the pooled client, a deadline for the response head, one retry on another
//!    instance when the connect was refused, and the response body that holds the instance's
//!    claim until it ends.

use std::convert::Infallible;
use std::future::{Future, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, Version};
use hyper::body::Incoming;

use crate::config::RouterConfig;
use crate::endpoints::InstanceGuard;
use crate::error::{ProxyError, Reason};
use crate::table::{Backend, Protocol, Roller, RoutingTable};

mod body;
mod client;
mod forward;
mod headers;

pub use body::RouterBody;

/// The data plane: shares the controller's routing table and the upstream connection pools.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Router {
    inner: Arc<Inner>,
}

/// The router as a hyper service for one client connection (it knows the client's address).
#[derive(Clone, Debug)]
pub struct RouterService {
    router: Router,
    /// The client's IP as an `X-Forwarded-For` value, formatted once per connection.
    client_ip: HeaderValue,
}

/// What [`RouterService`] returns: always a response.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<RouterBody>, Infallible>> + Send>>;

#[derive(Debug)]
struct Inner {
    table: Arc<ArcSwap<RoutingTable>>,
    config: RouterConfig,
    upstream: client::Upstream,
    roller: Roller,
    too_many_headers: Reason,
    headers_too_large: Reason,
}

/// A request routed and rewritten, ready to send.
struct Routed {
    backend: Arc<Backend>,
    guard: InstanceGuard,
    parts: http::request::Parts,
    path: PathAndQuery,
    body: Incoming,
}

// === impl Router ===

impl Router {
    /// A router reading `table` (which the controller keeps storing new snapshots into).
    pub fn new(table: Arc<ArcSwap<RoutingTable>>, config: RouterConfig) -> Self {
        let roller = config.split_seed.map_or_else(Roller::random, Roller::new);
        let inner = Inner {
            table,
            upstream: client::Upstream::new(&config),
            roller,
            too_many_headers: Reason::new(format_args!("request has more than {} headers", config.max_headers)),
            headers_too_large: Reason::new(format_args!("request headers exceed {} bytes", config.max_header_bytes)),
            config,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// The routing table it reads.
    pub fn table(&self) -> &Arc<ArcSwap<RoutingTable>> {
        &self.inner.table
    }

    /// The service for one connection from `remote`.
    pub fn service(&self, remote: SocketAddr) -> RouterService {
        let ip = remote.ip().to_canonical().to_string();
        let client_ip = HeaderValue::try_from(ip).expect("an IP address is a valid header value");
        RouterService { router: self.clone(), client_ip }
    }

    /// Steps 2–4 of the module docs: everything up to the upstream call, without awaiting.
    fn route(&self, req: Request<Incoming>, client_ip: &HeaderValue) -> Result<Routed, ProxyError> {
        let inner = &*self.inner;
        if !headers::within_limits(req.headers(), inner.config.max_headers, inner.config.max_header_bytes) {
            let reason = if req.headers().len() > inner.config.max_headers {
                &inner.too_many_headers
            } else {
                &inner.headers_too_large
            };
            return Err(ProxyError::HeadersTooLarge(reason.clone()));
        }
        if req.method() == Method::CONNECT {
            return Err(ProxyError::Connect);
        }
        let (backend, guard) = {
            let host = request_host(&req).ok_or(ProxyError::MissingHost)?;
            let tag = || req.headers().get(&headers::KNATIVE_SERVING_TAG).and_then(|v| v.to_str().ok());
            let table = inner.table.load();
            let backend = table.resolve(host, tag, || inner.roller.roll())?;
            let guard = backend
                .target
                .revision
                .pick()
                .ok_or_else(|| ProxyError::NoReadyInstance(backend.no_instance.clone()))?;
            (backend.clone(), guard)
        };
        let (parts, path, body) = rewrite(req, client_ip, backend.target.protocol);
        Ok(Routed { backend, guard, parts, path, body })
    }
}

// === impl RouterService ===

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = Response<RouterBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        match self.router.route(req, &self.client_ip) {
            Ok(routed) => {
                let router = self.router.clone();
                Box::pin(async move { Ok(forward::forward(&router.inner.upstream, routed).await) })
            }
            Err(e) => Box::pin(ready(Ok(e.into_response()))),
        }
    }
}

/// The host the client asked for: the URI authority (h2's `:authority`, or an absolute-form
/// HTTP/1 target), else the `Host` header.
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    match req.uri().authority() {
        Some(authority) => Some(authority.host()),
        None => req.headers().get(HOST)?.to_str().ok(),
    }
}

/// Splits the request for forwarding: hop-by-hop headers out, `Host` kept (taken from the
/// authority for h2 clients), `X-Forwarded-*` in, the version the instance speaks, and the
/// path and query as the origin-form target.
fn rewrite(
    req: Request<Incoming>,
    client_ip: &HeaderValue,
    protocol: Protocol,
) -> (http::request::Parts, PathAndQuery, Incoming) {
    let (mut parts, body) = req.into_parts();
    let uri = std::mem::take(&mut parts.uri).into_parts();
    if !parts.headers.contains_key(HOST)
        && let Some(host) = uri.authority.as_ref().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(HOST, host);
    }
    headers::strip_request(&mut parts.headers);
    headers::set_forwarded(&mut parts.headers, client_ip);
    parts.version = match protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    parts.extensions.clear();
    (parts, uri.path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/")), body)
}
