//! Sending a routed request to its instance: deadline for the response head, one retry on
//! another instance when the connect failed (nothing was sent), and the response wrapped so
//! the instance stays claimed until its body ends, and the body is cut when the revision's
//! timeout or idle timeout runs out.

use std::convert::Infallible;
use std::error::Error as _;
use std::sync::Arc;

use http::header::CONNECTION;
use http::request::Parts;
use http::uri::{self, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::client::{Attempt, Fields, RequestHead, Upstream};
use super::deadline::{HeadDeadline, Spare};
use super::headers;
use super::{BodilessHead, Payload, Routed, Router};
use crate::access_log::{BytesIn, Entry};
use crate::activity::ActivityGuard;
use crate::body::{BodyEnd, BodyLimits, InstanceBody, RouterBody, UpstreamBody};
use crate::endpoints::{Instance, InstanceGuard};
use crate::error::{ProxyError, UpstreamError};
use crate::table::{Backend, Protocol};
use crate::trace::Observed;

/// What a retry needs of the request: its head, cloned before the first attempt consumes it.
struct Replay {
    parts: Parts,
    path: PathAndQuery,
}

/// Proxies `routed`; every failure is already a response, counted for the revision as the
/// instance's own responses are.
///
/// A bodiless request to an HTTP/1.1 instance is sent by the router's own client right here; any
/// other goes through hyper's client in a boxed future of its own ([`send_streaming`]): hyper's
/// exchange makes a future of some kilobytes, which would otherwise be part of every request's
/// (and be copied with it each time the request's future moves).
///
/// With `edge` (a request [`RouterService`](super::RouterService) forwards at once), the
/// response keeps the request's claim on its connection and its access-log line, as
/// [`super::finish`] makes it: done here rather than in a future around this one, which would
/// hold a second `Routed` until this one took it.
///
/// `routed` comes boxed: this future keeps it for the whole exchange, and the future is moved
/// (into its box, into the lane's) more than once; a pointer keeps it ~540 bytes smaller.
#[allow(clippy::manual_async_fn, reason = "an `async fn` would hold a second copy of `routed`")]
pub(super) fn forward(
    router: Router,
    mut routed: Box<Routed>,
    edge: Option<(ActivityGuard, Option<Entry>)>,
) -> impl Future<Output = Result<Response<RouterBody>, Infallible>> {
    async move {
        let inner = &*router.inner;
        let (upstream, observer) = (&inner.upstream, inner.config.observer.as_deref());
        // `routed` is used in place, its fields moved out one by one: an `async fn` keeps its
        // arguments' slots and copies them into locals, and so would destructuring it here.
        let arrived = *routed.arrived.get_or_insert_with(Instant::now);
        // Only with an observer (span export): its parent and method, before sending takes them.
        let observed = observer.and_then(|o| Some((o, routed.trace.parent()?, routed.parts.method.clone())));
        let (backend, trace) = (routed.backend.clone(), routed.trace.id());
        let sent = match routed.payload {
            Payload::Streaming(body) => {
                let Routed { guard, parts, path, body_end, spare, .. } = *routed;
                let sending = Sending { guard, parts, path, body, body_end, arrived, spare };
                Box::pin(send_streaming(upstream, &backend, sending)).await
            }
            Payload::Bodiless { ref head, ref body } => {
                let mut deadline = HeadDeadline::new(Some(routed.spare), arrived + backend.target.head_timeout());
                if let Some(end) = &routed.body_end {
                    end.set(true);
                }
                let fields = match head {
                    BodilessHead::Forwarded(forwarded) => {
                        Fields::Map { headers: &routed.parts.headers, forwarded: Some(forwarded) }
                    }
                    BodilessHead::Lines(lines) => Fields::Lines(lines),
                };
                let req = RequestHead {
                    method: &routed.parts.method,
                    path: &routed.path,
                    fields,
                    // A request the fast lane read (hyper has no body for it): the lane writes
                    // the response head as it came.
                    pass_head: body.is_none(),
                };
                send_bodiless(
                    upstream,
                    &backend,
                    routed.guard,
                    &req,
                    &mut deadline,
                    routed.body_end.as_deref(),
                    arrived,
                )
                .await
            }
        };
        let res = match sent {
            Ok(res) => {
                backend.target.revision.responses().record_timed(res.status(), arrived.elapsed());
                res
            }
            Err(e) => super::refused(&backend, e, arrived, trace),
        };
        if let Some((observer, parent, method)) = observed {
            let revision = &backend.target.revision.key;
            observer.observe(&Observed {
                parent,
                method: &method,
                revision,
                status: res.status(),
                elapsed: arrived.elapsed(),
            });
        }
        Ok(match edge {
            Some((activity, log)) => super::finish(res, activity, log),
            None => res,
        })
    }
}

/// A routed request for hyper's client, without its backend (which the caller keeps, to count
/// the response).
struct Sending {
    guard: InstanceGuard,
    parts: Parts,
    path: PathAndQuery,
    body: Incoming,
    body_end: Option<Arc<BodyEnd>>,
    /// When the request arrived; its timeouts count from then.
    arrived: Instant,
    /// Its client connection's spare timer.
    spare: Arc<Spare>,
}

/// [`forward`] through hyper's client, for a request with a body (or to an h2c instance).
async fn send_streaming(
    upstream: &Upstream,
    backend: &Backend,
    sending: Sending,
) -> Result<Response<RouterBody>, ProxyError> {
    let Sending { guard, parts, path, body, body_end, arrived, spare, .. } = sending;
    let mut deadline = HeadDeadline::new(Some(spare), arrived + backend.target.head_timeout());
    // Cloning the head costs allocations, so only when there is another instance to retry on.
    let replay = (backend.target.revision.ready_count() > 1).then(|| Replay::of(&parts, &path));
    // Only with the access log on (and then an Arc): the request's own byte count.
    let bytes_in = parts.extensions.get::<BytesIn>().cloned();
    let revision = backend.target.revision.clone();
    let (body, reclaimed) = UpstreamBody::new(body, replay.is_some(), body_end.clone(), revision, bytes_in.clone());
    let protocol = backend.target.protocol;
    let req = request(parts, path, protocol, guard.instance(), body)?;
    let error = match upstream.send(protocol, guard.instance(), req, &mut deadline).await {
        Attempt::Failed(e) if e.is_connect() => e,
        other => return finish(other, guard, backend, body_end.as_deref(), arrived),
    };
    // The connect failed, so no byte was sent: the body is handed back untouched (if the
    // revision has another instance) and the request goes there instead.
    let body = reclaimed.and_then(|mut rx| rx.try_recv().ok());
    // The request's admission goes with it to the other instance.
    let mut guard = guard;
    let mut permit = guard.take_permit();
    let retry = replay.zip(body).and_then(|(replay, body)| {
        let next = backend.target.revision.pick_other(guard.instance().id, permit.take())?;
        Some((replay, body, next))
    });
    let Some((replay, body, next)) = retry else {
        return Err(ProxyError::Unreachable { reason: backend.unreachable(), source: error });
    };
    tracing::debug!(revision = %backend.target.revision.key, instance = guard.instance().id, error = %error, "connect failed; retrying on another instance");
    drop(guard);
    let (body, _) = UpstreamBody::new(body, false, body_end.clone(), backend.target.revision.clone(), bytes_in);
    let req = request(replay.parts, replay.path, protocol, next.instance(), body)?;
    // Boxed: a retry is rare, and a second exchange held in this future would double its size
    // (and the bytes moved) for every request.
    let attempt = Box::pin(upstream.send(protocol, next.instance(), req, &mut deadline)).await;
    finish(attempt, next, backend, body_end.as_deref(), arrived)
}

/// True for a request the router's own client sends: a `GET` or `HEAD` whose body has ended
/// before it began (no `Content-Length` beyond 0, no chunks).
pub(super) fn bodiless(parts: &Parts, body: &Incoming) -> bool {
    use http_body::Body as _;
    (parts.method == http::Method::GET || parts.method == http::Method::HEAD) && body.is_end_stream()
}

/// [`forward`] for a bodiless request: nothing to hand back when the connect fails, so the retry
/// on another instance needs no copy of the head.
async fn send_bodiless(
    upstream: &Upstream,
    backend: &Backend,
    guard: InstanceGuard,
    req: &RequestHead<'_>,
    deadline: &mut HeadDeadline,
    body_end: Option<&BodyEnd>,
    arrived: Instant,
) -> Result<Response<RouterBody>, ProxyError> {
    let error = match upstream.send_bodiless(guard.instance(), req, deadline).await {
        Attempt::Failed(e) if e.is_connect() => e,
        other => return finish(other, guard, backend, body_end, arrived),
    };
    let mut guard = guard;
    let permit = guard.take_permit();
    let Some(next) = backend.target.revision.pick_other(guard.instance().id, permit) else {
        return Err(ProxyError::Unreachable { reason: backend.unreachable(), source: error });
    };
    tracing::debug!(revision = %backend.target.revision.key, instance = guard.instance().id, error = %error, "connect failed; retrying on another instance");
    drop(guard);
    // Boxed: a retry is rare.
    let attempt = Box::pin(upstream.send_bodiless(next.instance(), req, deadline)).await;
    finish(attempt, next, backend, body_end, arrived)
}

/// The client's response, or the error for a failed attempt.
fn finish(
    attempt: Attempt,
    guard: InstanceGuard,
    backend: &Backend,
    body_end: Option<&BodyEnd>,
    arrived: Instant,
) -> Result<Response<RouterBody>, ProxyError> {
    match attempt {
        Attempt::Response(res) => {
            let limits = BodyLimits::new(arrived + backend.target.timeout, backend.target.idle);
            Ok(respond(res, guard, backend.target.protocol, body_end, limits))
        }
        Attempt::TimedOut => Err(ProxyError::Timeout(backend.timed_out())),
        Attempt::Failed(source) if source.is_connect() => {
            Err(ProxyError::Unreachable { reason: backend.unreachable(), source })
        }
        // The client's own body broke (malformed chunking, or cut short): its fault, not the
        // instance's.
        Attempt::Failed(source) if client_body_failed(&source) => Err(ProxyError::RequestBody),
        Attempt::Failed(source) => Err(ProxyError::Upstream { reason: backend.failed(), source }),
    }
}

/// True when sending failed because reading the client's request body failed: hyper reports
/// an error of the body it was given (ours, streaming the client's), whose cause is the
/// client connection's own hyper error.
fn client_body_failed(error: &UpstreamError) -> bool {
    let UpstreamError::Http(error) = error else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_user()
        {
            return h.source().is_some_and(|s| s.is::<hyper::Error>());
        }
        cause = e.source();
    }
    false
}

/// The instance's response for the client: hop-by-hop headers out, body holding the claim.
///
/// An HTTP/1 client whose request body has not ended when the instance gives an early answer
/// is told `Connection: close`: the router stops reading that body once the instance has
/// dropped it, so the connection cannot carry another request, and the client must learn that
/// before it sends one. An early answer is one from an HTTP/1.1 instance that says it is
/// closing, or an error status from an h2c instance (which then resets the stream); a success
/// before the body ends is taken for a full-duplex exchange and keeps the connection.
fn respond(
    res: Response<InstanceBody>,
    guard: InstanceGuard,
    protocol: Protocol,
    body_end: Option<&BodyEnd>,
    limits: BodyLimits,
) -> Response<RouterBody> {
    let (mut parts, body) = res.into_parts();
    let close = body_end.is_some_and(|end| !end.ended())
        && match protocol {
            Protocol::Http1 => headers::says_close(&parts.headers),
            Protocol::H2c => parts.status.is_client_error() || parts.status.is_server_error(),
        };
    headers::strip_response(&mut parts.headers);
    if close {
        parts.headers.insert(CONNECTION, headers::CLOSE.clone());
    }
    // hyper speaks the client's protocol whatever this says; HTTP/1.1 takes its fast path.
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, RouterBody::upstream(body, guard, limits, body_end.is_some()))
}

/// The upstream request, head as rewritten: its target `{path}` (origin-form) for HTTP/1.1,
/// `http://{instance}{path}` for h2c (whose `:authority` it becomes).
fn request(
    mut parts: Parts,
    path: PathAndQuery,
    protocol: Protocol,
    instance: &Instance,
    body: UpstreamBody,
) -> Result<Request<UpstreamBody>, ProxyError> {
    if protocol == Protocol::Http1 {
        parts.uri = Uri::from(path);
        return Ok(Request::from_parts(parts, body));
    }
    let mut uri = uri::Parts::default();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(instance.authority().clone());
    uri.path_and_query = Some(path);
    parts.uri = Uri::from_parts(uri).map_err(|_| ProxyError::InvalidTarget)?;
    Ok(Request::from_parts(parts, body))
}

// === impl Replay ===

impl Replay {
    fn of(parts: &Parts, path: &PathAndQuery) -> Self {
        let mut head = Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        let (parts, ()) = head.into_parts();
        Self { parts, path: path.clone() }
    }
}
