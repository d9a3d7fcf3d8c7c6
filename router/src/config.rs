//! Tunables of the router's server and upstream client.

use std::time::Duration;

/// hyper's HTTP/1 header count limit when none is set, parsed without allocating.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Limits and timeouts for [`serve`](crate::server::serve) and the upstream client.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// Largest request header section answered normally, counted as HTTP/1 sends it (each
    /// header's name, value, `": "` and CRLF). Larger requests get 431 with a reason. hyper and
    /// h2 are configured with twice this as a hard limit, above which they answer 431 themselves
    /// (without a body). Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most request headers answered normally; more get 431. Over HTTP/1 hyper enforces this
    /// (431 without a body) when it is 100 or more; below 100, and over h2, the router answers
    /// 431 with a reason. Default 100.
    pub max_headers: usize,
    /// How long a client has to send a complete HTTP/1 request head, and a new connection its
    /// first byte (HTTP/1 or h2c alike). Default 30 s.
    pub header_read_timeout: Duration,
    /// How long a client connection with no request in flight is kept open (an h2
    /// connection without streams; h1 keep-alive is bounded by `header_read_timeout` too).
    /// Default 60 s.
    pub idle_timeout: Duration,
    /// How many idle connections to one instance the pool keeps; a burst of concurrent
    /// requests opens more, and those are closed as they come back idle. Default 32.
    pub upstream_max_idle_per_instance: usize,
    /// How long an idle pooled upstream connection is kept. Default 90 s.
    pub upstream_idle_timeout: Duration,
    /// The HTTPS listener, when there is one: where plain-HTTP requests for service hosts are
    /// sent when Knative's `http-protocol` is `Redirected`. Without one that setting is
    /// ignored (with a warning), so plain HTTP is never redirected to nowhere. Default none.
    pub https: Option<HttpsListener>,
    /// Whether a request forwarded without a valid W3C `traceparent` gets a new one (and loses
    /// its `tracestate`); see [`trace`](crate::trace). Default on.
    pub generate_traceparent: bool,
    /// Told of every forwarded request that carries a valid `traceparent` (for span export).
    /// Default none.
    pub observer: Option<std::sync::Arc<dyn crate::trace::Observer>>,
    /// Whether plain HTTP/1.1 `GET` and `HEAD` requests without a body are served by the
    /// router's own fast lane rather than hyper's server (see `lane.rs`); off sends every
    /// request through hyper, for comparison. Default on.
    pub fast_lane: bool,
}

/// What plain-HTTP redirects need to know of the HTTPS listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsListener {
    /// Its port (left out of `Location` when 443).
    pub port: u16,
    /// The service domain: only hosts under it (`name.namespace.{domain}`) are redirected or
    /// refused; cluster-local hosts (`name.namespace`, `....svc.cluster.local`) keep plain HTTP,
    /// as in Knative, where `http-protocol` applies to the external ingress.
    pub domain: String,
}

// === impl RouterConfig ===

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            upstream_max_idle_per_instance: 32,
            upstream_idle_timeout: Duration::from_secs(90),
            https: None,
            generate_traceparent: true,
            observer: None,
            fast_lane: true,
        }
    }
}

impl RouterConfig {
    /// hyper's HTTP/1 read buffer limit: the hard backstop behind `max_header_bytes` (hyper
    /// refuses anything under 8 KiB).
    pub(crate) fn hard_header_bytes(&self) -> usize {
        self.max_header_bytes.saturating_mul(2).max(8 * 1024)
    }

    /// hyper's HTTP/1 header count limit, when it must differ from hyper's default of 100:
    /// never below that default, because above it hyper parses into a heap buffer per request.
    pub(crate) fn hard_headers(&self) -> Option<usize> {
        (self.max_headers > HYPER_DEFAULT_MAX_HEADERS).then_some(self.max_headers)
    }
}
