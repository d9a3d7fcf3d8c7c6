//! The pooled upstream clients: one for HTTP/1.1 keep-alive, one for h2c with prior knowledge.

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::connect::EarlyAnswerConnector;
use crate::body::UpstreamBody;
use crate::config::RouterConfig;
use crate::table::Protocol;

/// Connection pools to instances, keyed by instance address (the URI authority).
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    /// Its connections relay an answer sent before the request body was read (`connect.rs`).
    http1: Client<EarlyAnswerConnector, UpstreamBody>,
    h2c: Client<HttpConnector, UpstreamBody>,
}

/// How one upstream exchange ended, up to the response head.
pub(crate) enum Attempt {
    /// A response head arrived.
    Response(http::Response<Incoming>),
    /// The deadline passed first.
    TimedOut,
    /// The client failed.
    Failed(hyper_util::client::legacy::Error),
}

// === impl Upstream ===

impl Upstream {
    pub(crate) fn new(config: &RouterConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.upstream_idle_timeout)
            .pool_max_idle_per_host(config.upstream_max_idle_per_instance);
        let http1 = builder.build(EarlyAnswerConnector::new(connector.clone()));
        let h2c = builder.http2_only(true).build(connector);
        Self { http1, h2c }
    }

    /// Sends `req` (absolute URI naming the instance) and waits for the head until `deadline`.
    pub(crate) async fn send(
        &self,
        protocol: Protocol,
        req: http::Request<UpstreamBody>,
        deadline: Instant,
    ) -> Attempt {
        let response = match protocol {
            Protocol::Http1 => self.http1.request(req),
            Protocol::H2c => self.h2c.request(req),
        };
        match tokio::time::timeout_at(deadline, response).await {
            Ok(Ok(res)) => Attempt::Response(res),
            Ok(Err(e)) => Attempt::Failed(e),
            Err(_) => Attempt::TimedOut,
        }
    }
}
