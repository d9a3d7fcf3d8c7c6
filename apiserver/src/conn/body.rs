//! A response body that keeps its request counted as in flight on the connection until the
//! body has been sent or dropped, so a long watch keeps its connection from looking idle.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::activity::ActivityGuard;
use crate::ApiBody;

/// An [`ApiBody`] holding its request's claim on the connection's activity.
pub(crate) struct Tracked {
    inner: ApiBody,
    _guard: ActivityGuard,
}

// === impl Tracked ===

impl Tracked {
    /// `inner`, counted in flight until dropped.
    pub(crate) fn new(inner: ApiBody, guard: ActivityGuard) -> Self {
        Self { inner, _guard: guard }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
