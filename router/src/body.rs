//! Bodies at the two edges of the proxy. Both stream frame by frame; neither buffers a body.
//!
//! - [`RouterBody`] is what the client receives: an upstream body that holds the request's
//!   [`InstanceGuard`] until the body ends or is dropped, or a precomputed one-line reason. An
//!   upstream body is cut (an error, which aborts the response) when the revision's timeout
//!   ends or the instance sends nothing for its idle timeout, as Knative's queue-proxy does;
//!   the timer is armed only once the body has had to wait, so a body that streams straight
//!   through costs no timer.
//! - [`UpstreamBody`] is what the instance receives: the client's body, which can be handed
//!   back (through a oneshot, on drop) if the upstream client gave up before reading any of it,
//!   so a request refused at connect can be sent to another instance. On an HTTP/1 client
//!   connection it also records in a [`BodyEnd`] whether the client's body has been read to its
//!   end, which decides whether an early answer must close the connection.
//!
//! Both count the body bytes that pass through them for the revision the request went to
//! (`revision_request_bytes_count`, `revision_response_bytes_count`): one relaxed atomic add
//! per data frame on the revision's already-resolved counters. Only body bytes count, never
//! headers or trailers, and a body cut short counts what passed before the cut. The router's
//! own error bodies are not the revision's and are not counted.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::access_log::{BytesIn, Entry};
use crate::activity::ActivityGuard;
use crate::endpoints::{InstanceGuard, RevisionEndpoints};
use crate::error::ExchangeError;
use crate::proxy::{PassedHead, RawBody, Reuse};

/// The body of every response the router sends.
#[derive(Debug)]
pub struct RouterBody {
    kind: Kind,
    /// Keeps the request counted on its client connection until the response is done.
    activity: Option<ActivityGuard>,
    /// The request's access-log line, written when the response ends (only with the log on).
    log: Option<Entry>,
}

#[derive(Debug)]
enum Kind {
    /// Streamed from an instance; the guard keeps the instance's in-flight count until the end.
    /// `drop_trailers` for an HTTP/1 client (see [`RouterBody::upstream`]).
    Upstream { body: InstanceBody, guard: Option<InstanceGuard>, limits: BodyLimits, drop_trailers: bool },
    /// A reason, sent once.
    Reason(Option<Bytes>),
}

/// An instance's response body as its client gives it, returning its connection to the pool
/// once it has ended cleanly.
#[derive(Debug)]
pub(crate) enum InstanceBody {
    /// From hyper's client; `reuse` (an HTTP/1.1 connection) goes back to its pool at the end.
    Hyper { body: Incoming, reuse: Option<Reuse> },
    /// From the router's own client (a bodiless `GET` or `HEAD`).
    Raw(RawBody),
}

/// When an upstream body is cut: the end of the revision's timeout, and the longest gap
/// allowed between its frames.
#[derive(Debug)]
pub(crate) struct BodyLimits {
    end: Instant,
    idle: Option<Duration>,
    /// When the last frame came (tracked only with an idle timeout).
    last: Option<Instant>,
    /// Armed the first time the body has to wait.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Why a response body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The instance's body failed.
    #[error(transparent)]
    Upstream(#[from] hyper::Error),
    /// The instance's body failed (the router's own client).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// The revision's timeout ended before the body did.
    #[error("the revision's timeout ended before the response did")]
    Timeout,
    /// The instance sent nothing for the revision's idle timeout.
    #[error("the instance sent nothing for the revision's idle timeout")]
    Idle,
}

/// The client's request body on its way to an instance.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    body: Option<Incoming>,
    /// Set while the body is untouched and a retry could still use it.
    reclaim: Option<oneshot::Sender<Incoming>>,
    /// Where an HTTP/1 client connection learns that its current request body has ended.
    end: Option<Arc<BodyEnd>>,
    /// The revision whose request bytes this body counts.
    revision: Arc<RevisionEndpoints>,
    /// The request's own count, for the access log (only with the log on).
    bytes_in: Option<BytesIn>,
}

/// Whether the current request body of an HTTP/1 client connection has been read to its end.
/// Such a connection carries one request at a time, so one flag per connection serves them all
/// and a request costs no allocation for it.
#[derive(Debug)]
pub(crate) struct BodyEnd(AtomicBool);

// === impl RouterBody ===

impl RouterBody {
    /// An instance's response body, holding `guard` until the body ends or is dropped.
    /// `reuse` (an HTTP/1.1 connection) goes back to its pool if the body ends cleanly.
    ///
    /// With `drop_trailers` (an HTTP/1 client) the body's trailer fields are left out, as RFC
    /// 9110 §6.5.1 allows a recipient to: hyper sends trailers on HTTP/1.1 only for fields the
    /// response declared in a `Trailer` header to a client that sent `TE: trailers`, and
    /// otherwise leaves the chunked body without its last chunk, which the client then sees cut
    /// short. HTTP/2 clients get them.
    pub(crate) fn upstream(body: InstanceBody, guard: InstanceGuard, limits: BodyLimits, drop_trailers: bool) -> Self {
        let kind = Kind::Upstream { body, guard: Some(guard), limits, drop_trailers };
        Self { kind, activity: None, log: None }
    }

    /// The same body, keeping `activity` (its request's claim on the client connection) until
    /// the body ends or is dropped.
    pub(crate) fn counted(mut self, activity: ActivityGuard) -> Self {
        self.activity = Some(activity);
        self
    }

    /// A complete body of `text`.
    pub(crate) fn reason(text: Bytes) -> Self {
        Self { kind: Kind::Reason(Some(text)), activity: None, log: None }
    }

    /// The same body, writing `log` (the request's access-log line) when it ends or is
    /// dropped.
    pub(crate) fn logged(mut self, log: Option<Entry>) -> Self {
        self.log = log;
        self
    }

    /// The instance's response head as it came, when the router's own client kept it that way
    /// for the fast lane (see [`PassedHead`]); once.
    pub(crate) fn take_passed_head(&mut self) -> Option<PassedHead> {
        match &mut self.kind {
            Kind::Upstream { body: InstanceBody::Raw(raw), .. } => raw.take_passed_head(),
            _ => None,
        }
    }

    /// The instance this body comes from, while it holds the instance.
    fn instance(&self) -> Option<std::net::SocketAddr> {
        match &self.kind {
            Kind::Upstream { guard: Some(guard), .. } => Some(guard.instance().addr),
            _ => None,
        }
    }
}

impl Body for RouterBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match &mut this.kind {
            Kind::Upstream { body, guard, limits, drop_trailers } => {
                let next = loop {
                    match Pin::new(&mut *body).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) if *drop_trailers && frame.is_trailers() => {}
                        next => break next,
                    }
                };
                let polled = match next {
                    Poll::Pending => match limits.poll_expired(cx) {
                        Poll::Ready(cut) => Poll::Ready(Some(Err(cut))),
                        Poll::Pending => return Poll::Pending,
                    },
                    Poll::Ready(Some(Ok(frame))) => {
                        limits.touch();
                        if let (Some(guard), Some(data)) = (guard.as_ref(), frame.data_ref()) {
                            guard.revision().responses().add_response_bytes(data.len());
                            if let Some(log) = &mut this.log {
                                log.sent(data.len());
                            }
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(other) => Poll::Ready(other),
                };
                // The exchange is over: release the instance now rather than when hyper gets
                // round to dropping the body.
                if let Some(mut log) = this.log.take() {
                    let problem = match &polled {
                        Poll::Ready(Some(Err(e))) => Some(format!("response body cut: {e}")),
                        _ => None,
                    };
                    log.ended(guard.as_ref().map(|g| g.instance().addr), problem);
                }
                guard.take();
                this.activity.take();
                polled
            }
            Kind::Reason(text) => {
                let frame = text.take();
                match &frame {
                    Some(t) => {
                        if let Some(log) = &mut this.log {
                            log.sent(t.len());
                        }
                    }
                    None => {
                        this.log.take();
                        this.activity.take();
                    }
                }
                Poll::Ready(frame.map(|t| Ok(Frame::data(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream { body, .. } => body.is_end_stream(),
            Kind::Reason(text) => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream { body, .. } => body.size_hint(),
            Kind::Reason(text) => SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64)),
        }
    }
}

impl Drop for RouterBody {
    fn drop(&mut self) {
        // hyper drops a body it has read to its end without asking for the end; one dropped
        // before then was abandoned (the client went away).
        if let Some(mut log) = self.log.take() {
            let abandoned = matches!(self.kind, Kind::Upstream { .. }) && !self.is_end_stream();
            let problem = abandoned.then(|| "the client went away before the response ended".to_string());
            log.ended(self.instance(), problem);
        }
    }
}

// === impl InstanceBody ===

impl Body for InstanceBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut *self {
            Self::Hyper { body, reuse } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                // Only a body that ended cleanly leaves its connection fit for another request.
                if let Poll::Ready(None) = polled
                    && let Some(reuse) = reuse.take()
                {
                    reuse.put();
                }
                polled.map(|frame| frame.map(|r| r.map_err(BodyError::from)))
            }
            Self::Raw(body) => body.poll_frame(cx).map(|frame| frame.map(|r| r.map_err(BodyError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper { body, .. } => body.is_end_stream(),
            Self::Raw(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper { body, .. } => body.size_hint(),
            Self::Raw(body) => body.size_hint(),
        }
    }
}

impl Drop for InstanceBody {
    fn drop(&mut self) {
        // hyper drops a body whose last frame said it was the end without polling it again.
        if let Self::Hyper { body, reuse } = self
            && body.is_end_stream()
            && let Some(reuse) = reuse.take()
        {
            reuse.put();
        }
    }
}

// === impl BodyLimits ===

impl BodyLimits {
    /// Limits ending at `end`, with `idle` the longest gap between frames (none: no limit).
    pub(crate) fn new(end: Instant, idle: Option<Duration>) -> Self {
        Self { end, idle, last: idle.map(|_| Instant::now()), timer: None }
    }

    /// A frame came.
    fn touch(&mut self) {
        if self.idle.is_some() {
            self.last = Some(Instant::now());
        }
    }

    /// Ready with the reason once the body must be cut; the waker is registered otherwise.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<BodyError> {
        let idle_end = self.last.zip(self.idle).map(|(last, idle)| last + idle);
        let due = idle_end.map_or(self.end, |i| i.min(self.end));
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) if due == self.end => Poll::Ready(BodyError::Timeout),
            Poll::Ready(()) => Poll::Ready(BodyError::Idle),
        }
    }
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// `body` as sent upstream to an instance of `revision` (which counts its bytes, as does
    /// `bytes_in` for the access log), recording its end in `end` (if given); with `reclaimable`, also the receiver that gets
    /// it back if the upstream client drops it unread.
    pub(crate) fn new(
        body: Incoming,
        reclaimable: bool,
        end: Option<Arc<BodyEnd>>,
        revision: Arc<RevisionEndpoints>,
        bytes_in: Option<BytesIn>,
    ) -> (Self, Option<oneshot::Receiver<Incoming>>) {
        if let Some(end) = &end {
            end.set(body.is_end_stream());
        }
        if !reclaimable {
            return (Self { body: Some(body), reclaim: None, end, revision, bytes_in }, None);
        }
        let (tx, rx) = oneshot::channel();
        (Self { body: Some(body), reclaim: Some(tx), end, revision, bytes_in }, Some(rx))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        // Once a frame may have gone upstream, the body can no longer be replayed.
        let this = &mut *self;
        this.reclaim = None;
        let Some(body) = &mut this.body else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *body).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.revision.responses().add_request_bytes(data.len());
                    if let Some(bytes_in) = &this.bytes_in {
                        bytes_in.add(data.len());
                    }
                }
                body.is_end_stream()
            }
            _ => false,
        };
        if ended && let Some(end) = &this.end {
            end.set(true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let (Some(tx), Some(body)) = (self.reclaim.take(), self.body.take()) {
            // The receiver is gone when the request already ended; nothing to hand back then.
            let _ = tx.send(body);
        }
    }
}

// === impl BodyEnd ===

impl BodyEnd {
    /// A flag for one connection (the body of a request not begun counts as ended).
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(AtomicBool::new(true)))
    }

    /// True once the current request's body has been read to its end.
    pub(crate) fn ended(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, ended: bool) {
        self.0.store(ended, Ordering::Release);
    }
}
