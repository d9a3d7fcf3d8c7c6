//! The listener: HTTP/1.1 and h2c (prior knowledge) on one port, header limits, and a
//! graceful shutdown driven by a [`CancellationToken`].

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::RouterConfig;
use crate::proxy::Router;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` is cancelled; then stops accepting (the
/// listener is closed at once), lets in-flight requests finish for up to `drain` (idle
/// keep-alive connections close, h2 connections get GOAWAY), closes whatever is left, and
/// returns. Every connection task is owned here and has ended when this returns.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken, drain: Duration) {
    let builder = builder(router.config());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    // Small responses must not wait for Nagle; failure only costs latency.
                    let _ = stream.set_nodelay(true);
                    let conn = builder.serve_connection(TokioIo::new(stream), router.service(remote)).into_owned();
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, client = %remote, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(drain = ?drain, "drain deadline passed; closing connections with requests in flight");
    }
    connections.shutdown().await;
}

/// hyper's server settings from `config`. hyper's and h2's header size limits are hard
/// backstops at twice the configured one, so the router answers 431 with a reason below them;
/// see [`RouterConfig::max_headers`] for the count.
fn builder(config: &RouterConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.hard_header_bytes());
    if let Some(max) = config.hard_headers() {
        http1.max_headers(max);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.hard_header_bytes()).unwrap_or(u32::MAX));
    builder
}
