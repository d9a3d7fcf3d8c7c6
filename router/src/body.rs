//! Bodies at the two edges of the proxy. Both stream frame by frame; neither buffers a body.
//!
//! - [`RouterBody`] is what the client receives: an upstream body that holds the request's
//!   [`InstanceGuard`] until the body ends or is dropped, or a precomputed one-line reason.
//! - [`UpstreamBody`] is what the instance receives: the client's body, which can be handed
//!   back (through a oneshot, on drop) if the upstream client gave up before reading any of it,
//!   so a request refused at connect can be sent to another instance. On an HTTP/1 client
//!   connection it also records in a [`BodyEnd`] whether the client's body has been read to its
//!   end, which decides whether an early answer must close the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use crate::activity::ActivityGuard;
use crate::endpoints::InstanceGuard;

/// The body of every response the router sends.
#[derive(Debug)]
pub struct RouterBody {
    kind: Kind,
    /// Keeps the request counted on its client connection until the response is done.
    activity: Option<ActivityGuard>,
}

#[derive(Debug)]
enum Kind {
    /// Streamed from an instance; the guard keeps the instance's in-flight count until the end.
    Upstream { body: Incoming, guard: Option<InstanceGuard> },
    /// A reason, sent once.
    Reason(Option<Bytes>),
}

/// The client's request body on its way to an instance.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    body: Option<Incoming>,
    /// Set while the body is untouched and a retry could still use it.
    reclaim: Option<oneshot::Sender<Incoming>>,
    /// Where an HTTP/1 client connection learns that its current request body has ended.
    end: Option<Arc<BodyEnd>>,
}

/// Whether the current request body of an HTTP/1 client connection has been read to its end.
/// Such a connection carries one request at a time, so one flag per connection serves them all
/// and a request costs no allocation for it.
#[derive(Debug)]
pub(crate) struct BodyEnd(AtomicBool);

// === impl RouterBody ===

impl RouterBody {
    /// An instance's response body, holding `guard` until the body ends or is dropped.
    pub(crate) fn upstream(body: Incoming, guard: InstanceGuard) -> Self {
        Self { kind: Kind::Upstream { body, guard: Some(guard) }, activity: None }
    }

    /// The same body, keeping `activity` (its request's claim on the client connection) until
    /// the body ends or is dropped.
    pub(crate) fn counted(mut self, activity: ActivityGuard) -> Self {
        self.activity = Some(activity);
        self
    }

    /// A complete body of `text`.
    pub(crate) fn reason(text: Bytes) -> Self {
        Self { kind: Kind::Reason(Some(text)), activity: None }
    }
}

impl Body for RouterBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.kind {
            Kind::Upstream { body, guard } => {
                let polled = Pin::new(body).poll_frame(cx);
                if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
                    // The exchange is over: release the instance now rather than when hyper
                    // gets round to dropping the body.
                    guard.take();
                    self.activity.take();
                }
                polled
            }
            Kind::Reason(text) => {
                let frame = text.take();
                if frame.is_none() {
                    self.activity.take();
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

// === impl UpstreamBody ===

impl UpstreamBody {
    /// `body` as sent upstream, recording its end in `end` (if given); with `reclaimable`, also
    /// the receiver that gets it back if the upstream client drops it unread.
    pub(crate) fn new(
        body: Incoming,
        reclaimable: bool,
        end: Option<Arc<BodyEnd>>,
    ) -> (Self, Option<oneshot::Receiver<Incoming>>) {
        if let Some(end) = &end {
            end.set(body.is_end_stream());
        }
        if !reclaimable {
            return (Self { body: Some(body), reclaim: None, end }, None);
        }
        let (tx, rx) = oneshot::channel();
        (Self { body: Some(body), reclaim: Some(tx), end }, Some(rx))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        // Once a frame may have gone upstream, the body can no longer be replayed.
        self.reclaim = None;
        let Some(body) = &mut self.body else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *body).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
            _ => false,
        };
        if ended && let Some(end) = &self.end {
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

    fn set(&self, ended: bool) {
        self.0.store(ended, Ordering::Release);
    }
}
