//! The request path, top to bottom:
//!
//! 1. [`RouterService`] (one per connection) is the edge: `Error = Infallible`, every failure
//!    becomes a response through [`ProxyError::into_response`].
//! 2. Plain HTTP to a service host is redirected to HTTPS, or refused, when Knative's
//!    `http-protocol` asks (`redirect.rs`). Limits: headers beyond the configured limits get
//!    431 before any routing work.
//! 3. Routing: one `ArcSwap::load` of the table, host lookup, tag or weighted pick of a target,
//!    then [`RevisionEndpoints::pick`](crate::endpoints::RevisionEndpoints::pick) claims an
//!    instance. The request keeps its own `Arc`s from here on, so a table swapped mid-request
//!    does not move it. When the revision has no ready instance, the request is held (up to
//!    `RouterConfig::ready_wait`) and routed again, from a fresh table, whenever the instance
//!    set changes: a crashed instance restarting or a routing edit costs latency, not errors.
//! 4. Rewriting: hop-by-hop headers out, `X-Forwarded-*` in (`X-Forwarded-Proto` says whether
//!    the client came over TLS), origin-form URI for the instance.
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

use crate::activity::Activity;
use crate::body::{BodyEnd, RouterBody};
use crate::config::RouterConfig;
use crate::endpoints::{InstanceGuard, RevisionEndpoints};
use crate::error::ProxyError;
use crate::reason::Reason;
use crate::table::{self, Backend, Protocol, RoutingTable};

mod client;
mod connect;
mod forward;
mod headers;
mod redirect;

/// How often a held request re-reads the routing table.
const HOLD_RECHECK: std::time::Duration = std::time::Duration::from_millis(25);

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
    client: Client,
    /// The connection's requests in flight, for its idle timeout.
    activity: Arc<Activity>,
    /// Whether the current request body has ended (used on HTTP/1 connections only).
    body_end: Arc<BodyEnd>,
}

/// What the router knows of the client's connection.
#[derive(Clone, Debug)]
struct Client {
    /// The client's IP as an `X-Forwarded-For` value, formatted once per connection.
    ip: HeaderValue,
    /// The connection is TLS.
    https: bool,
}

/// What [`RouterService`] returns: always a response.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<RouterBody>, Infallible>> + Send>>;

#[derive(Debug)]
struct Inner {
    table: Arc<ArcSwap<RoutingTable>>,
    config: RouterConfig,
    upstream: client::Upstream,
    too_many_headers: Reason,
    headers_too_large: Reason,
    /// Plain-HTTP redirects: the HTTPS listener, and whether the missing one was warned about.
    redirect: redirect::Redirect,
}

/// Why a request could not be routed now.
enum NotRouted {
    /// For good: answer with the error.
    Fail(ProxyError),
    /// The revision has no ready instance; the request may wait for one.
    /// (Boxed: this is the rare path, and it keeps `Result<Routed, NotRouted>` small.)
    NoInstance(ProxyError, Box<Request<Incoming>>, Arc<RevisionEndpoints>),
}

impl From<ProxyError> for NotRouted {
    fn from(e: ProxyError) -> Self {
        Self::Fail(e)
    }
}

/// A request routed and rewritten, ready to send.
struct Routed {
    backend: Arc<Backend>,
    guard: InstanceGuard,
    parts: http::request::Parts,
    path: PathAndQuery,
    body: Incoming,
    /// For an HTTP/1 client: its connection's [`BodyEnd`].
    body_end: Option<Arc<BodyEnd>>,
}

// === impl Router ===

impl Router {
    /// A router reading `table` (which the controller keeps storing new snapshots into).
    pub fn new(table: Arc<ArcSwap<RoutingTable>>, config: RouterConfig) -> Self {
        let inner = Inner {
            table,
            upstream: client::Upstream::new(&config),
            too_many_headers: Reason::new(format_args!("request has more than {} headers", config.max_headers)),
            headers_too_large: Reason::new(format_args!("request headers exceed {} bytes", config.max_header_bytes)),
            redirect: redirect::Redirect::new(config.https.clone()),
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

    /// The service for one plain-HTTP connection from `remote`.
    pub fn service(&self, remote: SocketAddr) -> RouterService {
        self.service_for(remote, false)
    }

    /// The service for one TLS connection from `remote`.
    pub fn tls_service(&self, remote: SocketAddr) -> RouterService {
        self.service_for(remote, true)
    }

    fn service_for(&self, remote: SocketAddr, https: bool) -> RouterService {
        let ip = remote.ip().to_canonical().to_string();
        let ip = HeaderValue::try_from(ip).expect("an IP address is a valid header value");
        RouterService {
            router: self.clone(),
            client: Client { ip, https },
            activity: Activity::new(),
            body_end: BodyEnd::new(),
        }
    }

    /// Steps 2–4 of the module docs: everything up to the upstream call, without awaiting.
    fn route(&self, req: Request<Incoming>, client: &Client, body_end: &Arc<BodyEnd>) -> Result<Routed, NotRouted> {
        let inner = &*self.inner;
        if !headers::within_limits(req.headers(), inner.config.max_headers, inner.config.max_header_bytes) {
            let reason = if req.headers().len() > inner.config.max_headers {
                &inner.too_many_headers
            } else {
                &inner.headers_too_large
            };
            return Err(ProxyError::HeadersTooLarge(reason.clone()).into());
        }
        if req.method() == Method::CONNECT {
            return Err(ProxyError::Connect.into());
        }
        let backend = inner.table.load().resolve(&req).map_err(miss)?.clone();
        let Some(guard) = backend.target.revision.pick() else {
            let err = ProxyError::NoReadyInstance(backend.no_instance.clone());
            return Err(NotRouted::NoInstance(err, Box::new(req), backend.target.revision.clone()));
        };
        let body_end = (req.version() < Version::HTTP_2).then(|| body_end.clone());
        let (parts, path, body) = rewrite(req, client, backend.target.protocol);
        Ok(Routed { backend, guard, parts, path, body, body_end })
    }

    /// Holds a request whose revision has no ready instance, routing it again (from the table
    /// as it is then) each time the revision's instances change, until `ready_wait` ends.
    async fn hold(
        self,
        mut req: Box<Request<Incoming>>,
        client: Client,
        body_end: Arc<BodyEnd>,
        mut err: ProxyError,
        mut revision: Arc<RevisionEndpoints>,
    ) -> Response<RouterBody> {
        let deadline = tokio::time::Instant::now() + self.inner.config.ready_wait;
        loop {
            tokio::select! {
                () = revision.changed() => {}
                // A routing edit swaps the table without touching this revision.
                () = tokio::time::sleep(HOLD_RECHECK) => {}
                () = tokio::time::sleep_until(deadline) => return err.into_response(),
            }
            match self.route(*req, &client, &body_end) {
                Ok(routed) => return forward::forward(&self.inner.upstream, routed).await,
                Err(NotRouted::Fail(e)) => return e.into_response(),
                Err(NotRouted::NoInstance(e, r, rev)) => (err, req, revision) = (e, r, rev),
            }
        }
    }
}

// === impl RouterService ===

impl RouterService {
    /// The connection's requests in flight.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = Response<RouterBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        // Counted from here until the response body is done, so the idle timeout never cuts it.
        let activity = self.activity.begin();
        if !self.client.https
            && let Some(res) = self.router.inner.redirect.answer(&self.router.inner.table.load(), &req)
        {
            return Box::pin(ready(Ok(res.map(|b| b.counted(activity)))));
        }
        match self.router.route(req, &self.client, &self.body_end) {
            Ok(routed) => {
                let router = self.router.clone();
                Box::pin(async move {
                    Ok(forward::forward(&router.inner.upstream, routed).await.map(|b| b.counted(activity)))
                })
            }
            Err(NotRouted::NoInstance(err, req, revision)) if !self.router.inner.config.ready_wait.is_zero() => {
                let (router, client, end) = (self.router.clone(), self.client.clone(), self.body_end.clone());
                Box::pin(
                    async move { Ok(router.hold(req, client, end, err, revision).await.map(|b| b.counted(activity))) },
                )
            }
            Err(NotRouted::NoInstance(err, ..) | NotRouted::Fail(err)) => {
                Box::pin(ready(Ok(err.into_response().map(|b| b.counted(activity)))))
            }
        }
    }
}

/// The error a table miss is answered with.
fn miss(miss: table::Miss) -> ProxyError {
    match miss {
        table::Miss::MissingHost => ProxyError::MissingHost,
        table::Miss::DuplicateHost => ProxyError::DuplicateHost,
        table::Miss::UnknownHost(host) => ProxyError::UnknownHost(host),
        table::Miss::NoTraffic(reason) => ProxyError::NoTraffic(reason),
    }
}

/// Splits the request for forwarding: hop-by-hop headers out, `Host` kept (taken from the
/// authority for h2 clients), `X-Forwarded-*` in, the version the instance speaks, and the
/// path and query as the origin-form target.
fn rewrite(
    req: Request<Incoming>,
    client: &Client,
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
    headers::set_forwarded(&mut parts.headers, &client.ip, client.https);
    parts.version = match protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    parts.extensions.clear();
    (parts, uri.path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/")), body)
}
