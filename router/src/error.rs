//! Why a request got no upstream response, who is to blame, and the one place that turns it
//! into an HTTP response: a status and a one-line plain-text reason.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};

use crate::body::RouterBody;
use crate::endpoints::Failure;
use crate::reason::Reason;
use crate::trace::TraceId;

/// A request that was not proxied, or whose upstream failed before sending a response head.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request named no host (no `Host` header and no URI authority).
    #[error("request names no host")]
    MissingHost,
    /// The request carries more than one `Host` header.
    #[error("request has more than one Host header")]
    DuplicateHost,
    /// No route serves the requested host.
    #[error("no route for host {0:?}")]
    UnknownHost(Box<str>),
    /// The host is served over HTTPS only (Knative's `http-protocol: Disabled`).
    #[error("host {0:?} is served over HTTPS only")]
    HttpsOnly(Box<str>),
    /// `CONNECT` tunnels are not proxied.
    #[error("method CONNECT is not supported")]
    Connect,
    /// The request target cannot be forwarded.
    #[error("invalid request target")]
    InvalidTarget,
    /// The client's request body could not be read (malformed chunked encoding, or the client
    /// stopped sending it) while it was being forwarded.
    #[error("request body is malformed or incomplete")]
    RequestBody,
    /// The request's headers exceed a configured limit.
    #[error("{0}")]
    HeadersTooLarge(Reason),
    /// The route has no traffic target (its split is empty).
    #[error("{0}")]
    NoTraffic(Reason),
    /// The picked revision's queue of requests waiting for capacity is full.
    #[error("{0}")]
    QueueFull(Reason),
    /// The request waited for capacity until the revision's timeout ran out.
    #[error("{0}")]
    NoCapacity(Reason),
    /// No connection could be made to an instance; nothing was sent.
    #[error("{reason}")]
    Unreachable {
        /// The response body.
        reason: Reason,
        /// What the upstream client reported.
        #[source]
        source: UpstreamError,
    },
    /// The instance refused, reset or closed the exchange before a response head.
    #[error("{reason}")]
    Upstream {
        /// The response body.
        reason: Reason,
        /// What the upstream client reported.
        #[source]
        source: UpstreamError,
    },
    /// No response head arrived within the target's timeout.
    #[error("{0}")]
    Timeout(Reason),
}

/// Why an exchange with an instance failed before its response head.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No TCP connection could be made; nothing was sent.
    #[error("connecting to the instance: {0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP/2 connection preface failed; no request was sent.
    #[error("starting the connection: {0}")]
    Handshake(#[source] hyper::Error),
    /// The exchange failed after the request was handed to the connection.
    #[error(transparent)]
    Http(hyper::Error),
    /// A bodiless exchange on the router's own HTTP/1.1 client failed before the head.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

/// Why an exchange on the router's own HTTP/1.1 client (bodiless GET and HEAD requests) failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Reading from or writing to the instance failed.
    #[error("talking to the instance: {0}")]
    Io(#[source] std::io::Error),
    /// The instance closed the connection early.
    #[error("the instance closed the connection before its response {0}")]
    Closed(&'static str),
    /// The response broke HTTP/1.1's syntax.
    #[error("the instance's response is malformed: {0}")]
    Malformed(&'static str),
    /// The response head did not fit the router's limit.
    #[error("the instance's response head is larger than {0} bytes")]
    HeadTooLarge(usize),
    /// The response head has more header fields than the router takes.
    #[error("the instance's response has more than {0} header fields")]
    TooManyHeaders(usize),
}

impl UpstreamError {
    /// True when no connection was made, so no byte of the request reached the instance.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Handshake(_))
    }
}

/// Who a [`ProxyError`] is down to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The client sent something the router cannot route.
    Downstream,
    /// Nothing is ready to serve the request yet (routing or scale has not caught up).
    Unavailable,
    /// The revision's instance failed.
    Upstream,
}

// === impl ProxyError ===

impl ProxyError {
    /// The status the client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingHost | Self::DuplicateHost | Self::InvalidTarget | Self::RequestBody => {
                StatusCode::BAD_REQUEST
            }
            Self::UnknownHost(_) | Self::HttpsOnly(_) => StatusCode::NOT_FOUND,
            Self::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NoTraffic(_) | Self::QueueFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unreachable { .. } | Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Timeout(_) | Self::NoCapacity(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Who failed.
    pub fn blame(&self) -> Blame {
        match self {
            Self::MissingHost
            | Self::DuplicateHost
            | Self::RequestBody
            | Self::UnknownHost(_)
            | Self::HttpsOnly(_)
            | Self::Connect
            | Self::InvalidTarget
            | Self::HeadersTooLarge(_) => Blame::Downstream,
            Self::NoTraffic(_) | Self::QueueFull(_) | Self::NoCapacity(_) => Blame::Unavailable,
            Self::Unreachable { .. } | Self::Upstream { .. } | Self::Timeout(_) => Blame::Upstream,
        }
    }

    /// The response: status, one-line body, `Retry-After` where waiting helps, and the error
    /// itself in the extensions for an access log.
    pub fn into_response(self) -> Response<RouterBody> {
        self.into_traced_response(None)
    }

    /// [`into_response`](Self::into_response) for a request forwarded with the W3C trace id
    /// `trace`, which the log line names as `trace_id`.
    pub fn into_traced_response(self, trace: Option<TraceId>) -> Response<RouterBody> {
        static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
        static ONE_SECOND: HeaderValue = HeaderValue::from_static("1");
        let body = match self.reason() {
            Some(reason) => reason.body().clone(),
            None => Bytes::from(format!("{self}\n")),
        };
        let mut res = Response::new(RouterBody::reason(body));
        *res.status_mut() = self.status();
        res.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN.clone());
        if self.blame() == Blame::Unavailable {
            res.headers_mut().insert(RETRY_AFTER, ONE_SECOND.clone());
        }
        let trace_id = trace.map(tracing::field::display);
        tracing::debug!(error = %self, status = %res.status(), trace_id, "request not proxied");
        res.extensions_mut().insert(Arc::new(self));
        res
    }

    /// The router's own failure for a revision this error is, for its metrics; `None` for
    /// errors that are the client's or happen before a revision is picked.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            Self::Unreachable { .. } => Some(Failure::Unreachable),
            Self::Upstream { .. } => Some(Failure::UpstreamFailed),
            Self::Timeout(_) => Some(Failure::Timeout),
            Self::QueueFull(_) => Some(Failure::QueueFull),
            Self::NoCapacity(_) => Some(Failure::NoCapacity),
            _ => None,
        }
    }

    fn reason(&self) -> Option<&Reason> {
        match self {
            Self::HeadersTooLarge(r)
            | Self::NoTraffic(r)
            | Self::QueueFull(r)
            | Self::NoCapacity(r)
            | Self::Timeout(r) => Some(r),
            Self::Unreachable { reason, .. } | Self::Upstream { reason, .. } => Some(reason),
            Self::MissingHost
            | Self::DuplicateHost
            | Self::RequestBody
            | Self::UnknownHost(_)
            | Self::HttpsOnly(_)
            | Self::Connect
            | Self::InvalidTarget => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_host_quotes_the_host() {
        let e = ProxyError::UnknownHost("x.default.localhost".into());
        assert_eq!(e.to_string(), "no route for host \"x.default.localhost\"");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.blame(), Blame::Downstream);
    }

    #[test]
    fn unavailable_responses_ask_to_retry_after_a_second() {
        let res = ProxyError::QueueFull(Reason::new("too many requests are waiting")).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        let res = ProxyError::NoCapacity(Reason::new("no instance could take it")).into_response();
        assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
        let res = ProxyError::UnknownHost("h".into()).into_response();
        assert!(res.headers().get(RETRY_AFTER).is_none());
    }
}
