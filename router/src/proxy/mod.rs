//! The request path, top to bottom:
//!
//! 1. [`RouterService`] (one per connection) is the edge: `Error = Infallible`, every failure
//!    becomes a response through [`ProxyError::into_response`]. The fast lane ([`crate::lane`])
//!    comes in beside it, for a bodiless `GET` or `HEAD` it parsed itself
//!    ([`RouterService::route_bodiless`]): steps 2–5 as below, or back to hyper.
//! 2. Plain HTTP to a service host is redirected to HTTPS, or refused, when Knative's
//!    `http-protocol` asks (`redirect.rs`). Limits: headers beyond the configured limits get
//!    431 before any routing work.
//! 3. Routing: one `ArcSwap::load` of the table, host lookup, tag or weighted pick of a target,
//!    then [`RevisionEndpoints::pick`](crate::endpoints::RevisionEndpoints::pick) claims an
//!    instance, after the revision's activator gate admitted the request (one compare-and-swap
//!    while capacity is free). The request keeps its own `Arc`s from here on, so a table
//!    swapped mid-request does not move it. Beyond capacity, or for a revision at zero, the
//!    request waits in the gate's FIFO queue for the target its split picked (it is not split
//!    again; the wait pokes the autoscaler): forwarded as soon as capacity appears, 503 with
//!    `Retry-After` when the queue is full, 504 when the revision's `timeoutSeconds` (which the
//!    wait counts against) runs out, and out of the queue at once when the client goes away.
//! 4. Rewriting: hop-by-hop headers out, `X-Forwarded-*` in (`X-Forwarded-Proto` says whether
//!    the client came over TLS), origin-form URI for the instance.
//! 5. Forwarding (`forward.rs`): the pooled client, a deadline for the response head, one retry on another
//!    instance when the connect was refused, and the response body that holds the instance's
//!    claim until it ends.
//!
//! With the access log on, each request carries its line ([`crate::access_log`]) from here on:
//! filled in as it is routed and answered, written when its response body ends or is dropped.
//!
//! Every response sent on behalf of a revision — its instance's, or the router's own 502, 503
//! or 504 for it — is counted once by status class on the revision's endpoints (one relaxed
//! atomic add on the `Arc` the snapshot resolved; `forward.rs` and [`refused`]). Answers that
//! belong to no revision (unknown host, 400s before routing, redirects, a host whose route was
//! deleted while the request waited) are not.

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

use crate::access_log::{AccessLog, BytesIn, Entry};
use crate::activity::{Activity, ActivityGuard};
use crate::body::{BodyEnd, RouterBody};
use crate::config::RouterConfig;
use crate::endpoints::{InstanceGuard, Refused};
use crate::error::ProxyError;
use crate::reason::Reason;
use crate::table::{self, Backend, Protocol, RoutingTable};
use crate::trace::{self, Settled, TraceId};
use deadline::Spare;

/// How often a waiting request checks that its host is still served.
const ROUTE_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a request whose revision was deleted while it waited pauses before it is routed
/// again (the table naming the revision is being replaced).
const REROUTE_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

mod client;
pub(crate) use client::{PassedHead, RawBody, Reuse, blank_line_since};
mod connect;
mod deadline;
mod forward;
mod headers;
pub(crate) use headers::connection_close;
mod lines;
pub(crate) use lines::Lined;
mod redirect;
mod runs;
pub(crate) use runs::line;

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
    /// Its timer for response-head deadlines, kept between requests.
    spare: Arc<Spare>,
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
    redirect: Arc<redirect::Redirect>,
    /// Where each request's line goes, when the access log is on.
    access_log: Option<AccessLog>,
}

/// Why a request could not be routed now.
enum NotRouted {
    /// For good: answer with the error.
    Fail(ProxyError),
    /// The revision has no capacity now; the request waits for it, for this backend.
    /// (Boxed: this is the rare path, and it keeps `Result<Routed, NotRouted>` small.)
    Wait(Box<Request<Incoming>>, Arc<Backend>),
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
    payload: Payload,
    /// For an HTTP/1 client: its connection's [`BodyEnd`].
    body_end: Option<Arc<BodyEnd>>,
    /// When a request that waited arrived (its timeouts count the wait); otherwise they start
    /// when it is sent.
    arrived: Option<tokio::time::Instant>,
    /// Its `traceparent` as forwarded, for the router's log lines and the observer.
    trace: Settled,
    /// Its client connection's spare timer (see [`deadline`]).
    spare: Arc<Spare>,
}

/// A request the fast lane parsed, routed and ready to send ([`RouterService::route_bodiless`]).
pub(crate) struct Bodiless {
    router: Router,
    /// Boxed: the lane moves a routed request four times before it is sent, and [`forward`]
    /// keeps it for the whole exchange; a pointer is cheaper to move than the ~550 bytes.
    routed: Box<Routed>,
}

impl Bodiless {
    /// Sends it and waits for the response head (every failure is a response, as for hyper's
    /// requests).
    pub(crate) fn forward(self) -> impl Future<Output = Result<Response<RouterBody>, Infallible>> + Send {
        forward::forward(self.router, self.routed, None)
    }
}

/// How a routed request goes to its instance.
enum Payload {
    /// Through hyper's client, its body streamed.
    Streaming(Incoming),
    /// A bodiless `GET` or `HEAD` to an HTTP/1.1 instance, which the router's own client sends:
    /// its header fields, and the request's body when hyper read the request (ended before it
    /// began; kept until the answer, as a request hyper's client sends keeps its own). The fast
    /// lane ([`crate::lane`]) has none.
    Bodiless { head: BodilessHead, body: Option<Incoming> },
}

/// The header fields of a [`Payload::Bodiless`] request.
enum BodilessHead {
    /// `parts`' headers, and the `X-Forwarded-*` headers the client writes beside them
    /// (`parts` lacks them).
    Forwarded(headers::Forwarded),
    /// Lines ready to send, made by the fast lane from the client's own ([`lines`]); `parts`'
    /// headers are empty.
    Lines(Vec<u8>),
}

// === impl Router ===

impl Router {
    /// A router reading `table` (which the controller keeps storing new snapshots into).
    pub fn new(table: Arc<ArcSwap<RoutingTable>>, config: RouterConfig) -> Self {
        Self::with_access_log(table, config, None)
    }

    /// A router as [`new`](Self::new) makes it, writing a line per request to `access_log`
    /// when given.
    pub fn with_access_log(
        table: Arc<ArcSwap<RoutingTable>>,
        config: RouterConfig,
        access_log: Option<AccessLog>,
    ) -> Self {
        let inner = Inner {
            table,
            upstream: client::Upstream::new(&config),
            too_many_headers: Reason::new(format_args!("request has more than {} headers", config.max_headers)),
            headers_too_large: Reason::new(format_args!("request headers exceed {} bytes", config.max_header_bytes)),
            redirect: Arc::new(redirect::Redirect::new(config.https.clone())),
            config,
            access_log,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The same router (table, configuration) with upstream connection pools of its own, for
    /// a worker thread: a pooled connection is driven by a task on the runtime that opened it,
    /// so each worker's runtime keeps its own.
    pub fn with_own_pools(&self) -> Self {
        let inner = &*self.inner;
        let inner = Inner {
            table: inner.table.clone(),
            upstream: client::Upstream::new(&inner.config),
            too_many_headers: inner.too_many_headers.clone(),
            headers_too_large: inner.headers_too_large.clone(),
            redirect: inner.redirect.clone(),
            config: inner.config.clone(),
            access_log: inner.access_log.clone(),
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
            client: Client { ip, https, spare: Spare::new() },
            activity: Activity::new(),
            body_end: BodyEnd::new(),
        }
    }

    /// Steps 2–4 of the module docs: everything up to the upstream call, without awaiting.
    fn route(&self, mut req: Request<Incoming>, client: &Client, body_end: &Arc<BodyEnd>) -> Result<Routed, NotRouted> {
        let inner = &*self.inner;
        let Some(traceparent) = headers::scan(req.headers(), inner.config.max_headers, inner.config.max_header_bytes)
        else {
            let reason = if req.headers().len() > inner.config.max_headers {
                &inner.too_many_headers
            } else {
                &inner.headers_too_large
            };
            return Err(ProxyError::HeadersTooLarge(reason.clone()).into());
        };
        if req.method() == Method::CONNECT {
            return Err(ProxyError::Connect.into());
        }
        let backend = inner.table.load().resolve(&req).map_err(miss)?.clone();
        // Before it may wait, so the access log and the router's answers name the same trace.
        let trace = trace::settle_value(traceparent, inner.config.generate_traceparent);
        let Some(guard) = backend.target.revision.pick() else {
            // A waiting request carries its trace in its headers (it may be routed again).
            trace.apply(req.headers_mut());
            return Err(NotRouted::Wait(Box::new(req), backend));
        };
        Ok(routed(req, client, body_end, backend, guard, None, trace))
    }

    /// Waits in the gate of the revision `backend` picked until it admits the request and an
    /// instance has a free slot, then forwards it; or answers 503 (queue full) or 504 (the
    /// revision's timeout ran out while waiting). A revision deleted meanwhile closes its gate:
    /// the request is routed again from the table as it is then (404 once its route is gone).
    /// Dropping this future (the client went away) leaves the queue.
    async fn wait(
        self,
        mut req: Box<Request<Incoming>>,
        client: Client,
        body_end: Arc<BodyEnd>,
        mut backend: Arc<Backend>,
    ) -> Response<RouterBody> {
        let arrived = tokio::time::Instant::now();
        let deadline = arrived + backend.target.head_timeout();
        // `route` put its `traceparent` into its headers; routing it again keeps that one.
        let settled = trace::sent_parent(req.headers()).map_or(Settled::Untraced, Settled::Sent);
        let trace = settled.id();
        loop {
            let revision = backend.target.revision.clone();
            let acquire = revision.gate().acquire(deadline);
            tokio::pin!(acquire);
            let mut check = tokio::time::interval(ROUTE_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let admitted = loop {
                tokio::select! {
                    admitted = &mut acquire => break admitted,
                    // A waiting request keeps its revision, but not a host that is no longer
                    // served (its service deleted): that is answered as a new request would be.
                    _ = check.tick() => {
                        if let Err(gone) = self.inner.table.load().resolve(&req) {
                            return miss(gone).into_response();
                        }
                    }
                }
            };
            let permit = match admitted {
                Ok(permit) => permit,
                Err(Refused::QueueFull { .. }) => {
                    return refused(&backend, ProxyError::QueueFull(backend.queue_full()), arrived, trace);
                }
                Err(Refused::Timeout { .. }) => return no_capacity(&backend, arrived, trace),
                Err(Refused::Closed) => {
                    // The table that still names the deleted revision is replaced right after
                    // its endpoints are forgotten; give that a moment, within the deadline.
                    tokio::select! {
                        () = tokio::time::sleep(REROUTE_PAUSE) => {}
                        () = tokio::time::sleep_until(deadline) => return no_capacity(&backend, arrived, trace),
                    }
                    match self.route(*req, &client, &body_end) {
                        Ok(routed) => {
                            let Ok(res) = forward::forward(self.clone(), Box::new(routed), None).await;
                            return res;
                        }
                        Err(NotRouted::Fail(e)) => return e.into_response(),
                        Err(NotRouted::Wait(again, next)) => {
                            (req, backend) = (again, next);
                            continue;
                        }
                    }
                }
            };
            match revision.pick_admitted(permit) {
                Ok(guard) => {
                    revision.responses().record_queue_wait(arrived.elapsed());
                    let routed = routed(*req, &client, &body_end, backend, guard, Some(arrived), settled);
                    let Ok(res) = forward::forward(self.clone(), Box::new(routed), None).await;
                    return res;
                }
                // Admitted, but every instance was full or draining (one leaving routing just
                // now): give the permit back and wait for the instance set to change.
                Err(permit) => {
                    let changed = revision.changed();
                    drop(permit);
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(deadline) => return no_capacity(&backend, arrived, trace),
                    }
                }
            }
        }
    }
}

/// The request rewritten for `guard`'s instance, with its `traceparent` as settled; `arrived`
/// when time already counts against the revision's timeouts (a request that waited).
fn routed(
    req: Request<Incoming>,
    client: &Client,
    body_end: &Arc<BodyEnd>,
    backend: Arc<Backend>,
    guard: InstanceGuard,
    arrived: Option<tokio::time::Instant>,
    settled: Settled,
) -> Routed {
    let body_end = (req.version() < Version::HTTP_2).then(|| body_end.clone());
    let (parts, body) = req.into_parts();
    let bodiless = backend.target.protocol == Protocol::Http1 && forward::bodiless(&parts, &body);
    let (mut parts, path) = rewrite(parts, bodiless, client, backend.target.protocol, settled);
    // hyper's client sends a `GET` or `HEAD` body of unknown length only when the request says
    // `chunked` (it assumes none otherwise), and the client's own `Transfer-Encoding` was
    // stripped as hop-by-hop: without this the instance would get the head and not the body.
    if !bodiless
        && backend.target.protocol == Protocol::Http1
        && (parts.method == Method::GET || parts.method == Method::HEAD)
        && http_body::Body::size_hint(&body).exact().is_none()
    {
        parts.headers.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
    let payload = if bodiless {
        Payload::Bodiless { head: BodilessHead::Forwarded(client.forwarded(settled)), body: Some(body) }
    } else {
        Payload::Streaming(body)
    };
    let spare = client.spare.clone();
    Routed { backend, guard, parts, path, payload, body_end, arrived, trace: settled, spare }
}

// === impl Client ===

impl Client {
    /// The `X-Forwarded-*` headers (and `traceparent`) the router's own client writes for a
    /// request from this client.
    fn forwarded(&self, trace: Settled) -> headers::Forwarded {
        headers::Forwarded { client_ip: self.ip.clone(), https: self.https, trace }
    }
}

// === impl RouterService ===

impl RouterService {
    /// The connection's requests in flight.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl RouterService {
    /// Whether the fast lane ([`crate::lane`]) may serve this connection's plain HTTP/1.1
    /// requests: it is on, and no access log wants their lines.
    pub(crate) fn takes_lane(&self) -> bool {
        let inner = &*self.router.inner;
        inner.config.fast_lane && inner.access_log.is_none() && !self.client.https
    }

    /// The fast lane's way in ([`crate::lane`]): a bodiless `GET` or `HEAD` from an HTTP/1.1
    /// client, whose head the lane parsed, routed as [`call`](Self::call) would route it,
    /// when an instance of an HTTP/1.1 revision can take it at once. `None` for anything else
    /// (a redirect, a 4xx of the router's own, a revision without a
    /// free slot, an h2c revision): hyper then serves the request, as every other one.
    pub(crate) fn route_bodiless(&self, req: Request<()>) -> Option<Bodiless> {
        let inner = &*self.router.inner;
        let traceparent = headers::scan(req.headers(), inner.config.max_headers, inner.config.max_header_bytes)?;
        let table = inner.table.load();
        if !self.client.https && inner.redirect.answer(&table, &req).is_some() {
            return None;
        }
        let backend = table.resolve(&req).ok()?;
        if backend.target.protocol != Protocol::Http1 {
            return None;
        }
        let guard = backend.target.revision.pick()?;
        let backend = backend.clone();
        drop(table);
        let trace = trace::settle_value(traceparent, inner.config.generate_traceparent);
        let (parts, ()) = req.into_parts();
        let (parts, path) = rewrite(parts, true, &self.client, Protocol::Http1, trace);
        let head = BodilessHead::Forwarded(self.client.forwarded(trace));
        Some(self.bodiless(head, backend, guard, parts, path, trace))
    }

    /// A fast-lane request routed to `backend` and claiming `guard`'s instance, counted as
    /// picked.
    fn bodiless(
        &self,
        head: BodilessHead,
        backend: Arc<Backend>,
        guard: InstanceGuard,
        parts: http::request::Parts,
        path: PathAndQuery,
        trace: Settled,
    ) -> Bodiless {
        backend.picked();
        let routed = Box::new(Routed {
            payload: Payload::Bodiless { head, body: None },
            backend,
            guard,
            parts,
            path,
            body_end: Some(self.body_end.clone()),
            arrived: None,
            trace,
            spare: self.client.spare.clone(),
        });
        Bodiless { router: self.router.clone(), routed }
    }
}

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = Response<RouterBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        // Counted from here until the response body is done, so the idle timeout never cuts it.
        let activity = self.activity.begin();
        // The access-log line travels with the request and is written when its response ends.
        let mut log = self.router.inner.access_log.as_ref().map(|l| l.begin(&mut req));
        if !self.client.https
            && let Some(res) = self.router.inner.redirect.answer(&self.router.inner.table.load(), &req)
        {
            return Box::pin(ready(Ok(finish(res, activity, log))));
        }
        match self.router.route(req, &self.client, &self.body_end) {
            Ok(routed) => {
                // Counted here, not in `route`, which a waiting request may enter again.
                routed.backend.picked();
                if let Some(log) = &mut log {
                    log.routed(&routed.backend, Some(routed.guard.instance().addr), routed.trace.id());
                }
                Box::pin(forward::forward(self.router.clone(), Box::new(routed), Some((activity, log))))
            }
            Err(NotRouted::Wait(req, backend)) => {
                backend.picked();
                if let Some(log) = &mut log {
                    log.routed(&backend, None, trace::sent(req.headers()));
                }
                let (router, client, end) = (self.router.clone(), self.client.clone(), self.body_end.clone());
                Box::pin(async move { Ok(finish(router.wait(req, client, end, backend).await, activity, log)) })
            }
            Err(NotRouted::Fail(err)) => Box::pin(ready(Ok(finish(err.into_response(), activity, log)))),
        }
    }
}

/// The response as sent: it keeps the request's claim on the connection (`activity`) and
/// its access-log line until its body is done.
fn finish(res: Response<RouterBody>, activity: ActivityGuard, log: Option<Entry>) -> Response<RouterBody> {
    let log = log.map(|mut log| {
        log.responded(&res);
        log
    });
    res.map(|b| b.counted(activity).logged(log))
}

/// The 504 for a request that waited at `backend`'s gate from `arrived` until its timeout ran
/// out, its wait and response counted for the revision.
fn no_capacity(backend: &Backend, arrived: tokio::time::Instant, trace: Option<TraceId>) -> Response<RouterBody> {
    backend.target.revision.responses().record_queue_wait(arrived.elapsed());
    refused(backend, ProxyError::NoCapacity(backend.no_capacity()), arrived, trace)
}

/// The response for a request `backend`'s revision could not take after it arrived at
/// `arrived`, counted for it, and logged with the request's `trace` id.
fn refused(
    backend: &Backend,
    error: ProxyError,
    arrived: tokio::time::Instant,
    trace: Option<TraceId>,
) -> Response<RouterBody> {
    let responses = backend.target.revision.responses();
    if let Some(failure) = error.failure() {
        responses.record_failure(failure);
    }
    let res = error.into_traced_response(trace);
    responses.record_timed(res.status(), arrived.elapsed());
    res
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

/// Rewrites the request's head for forwarding (`bodiless`: a request the router's own client
/// sends, see [`Payload::Bodiless`]): hop-by-hop headers out, `Host` kept (taken from the
/// authority for h2 clients), `X-Forwarded-*` and a new `traceparent` (when `trace` is one) in,
/// the version the instance speaks, and the path and query as the origin-form target. For the
/// router's own client the added headers are left to [`headers::Forwarded`], which it writes.
fn rewrite(
    mut parts: http::request::Parts,
    bodiless: bool,
    client: &Client,
    protocol: Protocol,
    trace: Settled,
) -> (http::request::Parts, PathAndQuery) {
    let uri = std::mem::take(&mut parts.uri).into_parts();
    // Only a target with an authority (absolute-form, or HTTP/2's `:authority`) can give a
    // `Host`: the usual origin-form request is not looked up.
    if let Some(authority) = uri.authority.as_ref()
        && !parts.headers.contains_key(HOST)
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(HOST, host);
    }
    headers::strip_request(&mut parts.headers);
    if !bodiless {
        headers::set_forwarded(&mut parts.headers, &client.ip, client.https);
        trace.apply(&mut parts.headers);
    }
    parts.version = match protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    // Only the access log's byte counter goes on with the request (to the body sent upstream).
    let bytes_in = parts.extensions.remove::<BytesIn>();
    parts.extensions.clear();
    if let Some(bytes_in) = bytes_in {
        parts.extensions.insert(bytes_in);
    }
    (parts, uri.path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/")))
}
