//! The listeners: HTTP/1.1 and h2c (prior knowledge) on one port ([`serve`]), HTTPS with
//! HTTP/2 or HTTP/1.1 by ALPN on another ([`serve_tls`]); header limits, and a graceful
//! shutdown driven by a [`CancellationToken`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::RouterConfig;
use crate::linger::Lingering;
use crate::proxy::Router;
use crate::workers::Workers;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The first bytes of HTTP/2's connection preface; no HTTP/1.1 request starts with them.
const H2_PREFACE_START: &[u8; 4] = b"PRI ";

/// hyper's connection builders, made once per listener.
struct Builders {
    /// Plain TCP, HTTP/1.1 (told apart by the first bytes): parked when idle (module `park`).
    http1: hyper::server::conn::http1::Builder,
    /// Plain TCP: h2c, or HTTP/1.1 when the first bytes did not tell.
    auto: auto::Builder<TokioExecutor>,
    /// TLS with ALPN `h2`.
    h2: auto::Builder<TokioExecutor>,
    /// TLS with ALPN `http/1.1` or none.
    h1: auto::Builder<TokioExecutor>,
}

/// How a listener's connections begin.
#[derive(Clone)]
enum Transport {
    Plain,
    Tls(TlsAcceptor),
}

/// Serves `router` on `listener` until `shutdown` is cancelled; then stops accepting (the
/// listener is closed at once), lets in-flight requests finish for up to `drain` (idle
/// keep-alive connections close, h2 connections get GOAWAY), closes whatever is left, and
/// returns. Every connection task is owned here and has ended when this returns.
///
/// A connection that sends no byte within `header_read_timeout`, or has no request in flight
/// for `idle_timeout`, is closed (gracefully: GOAWAY for h2). When accepting fails (e.g. the
/// process is out of file descriptors) the router keeps serving the connections it has,
/// retries, and logs once per episode rather than per failure.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken, drain: Duration) {
    accept(listener, Transport::Plain, Workers::current(router), shutdown, drain).await;
}

/// [`serve`], each connection handed to one of `workers` (in turn) and served there.
pub async fn serve_on(listener: TcpListener, workers: Arc<Workers>, shutdown: CancellationToken, drain: Duration) {
    accept(listener, Transport::Plain, workers, shutdown, drain).await;
}

/// [`serve`] for HTTPS: each connection's TLS handshake must finish within
/// `header_read_timeout` (a client that opens a connection and sends nothing, or half a
/// handshake, is dropped); then it is served as HTTP/2 when ALPN chose `h2`, else as
/// HTTP/1.1, with the same limits, timeouts and shutdown as plain connections. Requests reach
/// the router marked as HTTPS (`X-Forwarded-Proto: https`, and never redirected).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) {
    accept(listener, Transport::Tls(TlsAcceptor::from(tls)), Workers::current(router), shutdown, drain).await;
}

/// [`serve_tls`], each connection handed to one of `workers` (in turn) and served there.
pub async fn serve_tls_on(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    workers: Arc<Workers>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    accept(listener, Transport::Tls(TlsAcceptor::from(tls)), workers, shutdown, drain).await;
}

async fn accept(
    listener: TcpListener,
    transport: Transport,
    workers: Arc<Workers>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let builder = builder(workers.router().config());
    let builders = Arc::new(Builders {
        http1: http1_builder(workers.router().config()),
        h2: builder.clone().http2_only(),
        h1: builder.clone().http1_only(),
        auto: builder,
    });
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    if std::mem::take(&mut accept_failing) {
                        tracing::info!("accepting connections again");
                    }
                    // The socket is registered anew on the worker's own reactor, so its readiness
                    // wakes that thread and no other.
                    let stream = match stream.into_std() {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::debug!(error = %e, client = %remote, "accepted connection unusable");
                            continue;
                        }
                    };
                    let (handle, router) = workers.next();
                    let connection = connection(stream, remote, transport.clone(), builders.clone(), router.clone(), shutdown.clone());
                    connections.spawn_on(connection, handle);
                }
                Err(e) => {
                    if !std::mem::replace(&mut accept_failing, true) {
                        tracing::warn!(error = %e, open = connections.len(), "accept failed; serving open connections and retrying");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(drain = ?drain, "drain deadline passed; closing connections with requests in flight");
    }
    connections.shutdown().await;
}

/// One client connection, from its first byte to its close.
async fn connection(
    stream: std::net::TcpStream,
    remote: SocketAddr,
    transport: Transport,
    builders: Arc<Builders>,
    router: Router,
    shutdown: CancellationToken,
) {
    let stream = match TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(error = %e, client = %remote, "accepted connection could not be registered");
            return;
        }
    };
    let deadline = router.config().header_read_timeout;
    // Small responses must not wait for Nagle; failure only costs latency.
    let _ = stream.set_nodelay(true);
    match transport {
        Transport::Plain => {
            // The version sniffing reads without a deadline: a client that never sends a
            // byte would hold the socket for good.
            let mut first = [0u8; H2_PREFACE_START.len()];
            let n = tokio::select! {
                peeked = tokio::time::timeout(deadline, stream.peek(&mut first)) => match peeked {
                    Ok(Ok(n)) if n > 0 => n,
                    _ => return,
                },
                () = shutdown.cancelled() => return,
            };
            let service = router.service(remote);
            if H2_PREFACE_START.starts_with(&first[..n]) {
                // h2c, or too few bytes yet to tell: hyper's own sniffing decides.
                serve_connection(&builders.auto, stream, remote, service, &router, &shutdown).await;
            } else {
                crate::park::serve(&builders.http1, stream, remote, service, router.config(), &shutdown).await;
            }
        }
        Transport::Tls(acceptor) => {
            let stream = tokio::select! {
                accepted = tokio::time::timeout(deadline, acceptor.accept(stream)) => match accepted {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, client = %remote, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client = %remote, "TLS handshake not finished in time");
                        return;
                    }
                },
                () = shutdown.cancelled() => return,
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let builder = if h2 { &builders.h2 } else { &builders.h1 };
            let service = router.tls_service(remote);
            serve_connection(builder, stream, remote, service, &router, &shutdown).await;
        }
    }
}

/// HTTP on an open connection (plain or TLS) until it ends, is idle too long, or shutdown
/// closes it.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    remote: SocketAddr,
    service: crate::RouterService,
    router: &Router,
    shutdown: &CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = router.config();
    let activity = service.activity().clone();
    let idle_timeout = config.idle_timeout;
    let conn = builder.serve_connection(TokioIo::new(Lingering::new(io)), service);
    tokio::pin!(conn);
    let mut closing = false;
    // An idle connection closed gracefully still needs the client's part (h2 waits for the
    // PING that follows GOAWAY to be acknowledged); one that does not play along is dropped.
    let gone_by = tokio::time::sleep(Duration::MAX);
    tokio::pin!(gone_by);
    let mut idle_closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, client = %remote, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(idle_timeout), if !closing => {
                tracing::debug!(client = %remote, "idle connection closed");
                closing = true;
                idle_closing = true;
                gone_by.as_mut().reset(tokio::time::Instant::now() + config.header_read_timeout);
                conn.as_mut().graceful_shutdown();
            }
            () = gone_by.as_mut(), if idle_closing => return,
        }
    }
}

/// hyper's HTTP/1.1 settings from `config` for plain connections: those [`builder`] gives its
/// HTTP/1.1 side, but without hyper's header-read timer: [`crate::park`] keeps that deadline
/// with the connection's one timer instead of a sleep per request. The response's head and body
/// are copied into one buffer and written with one `write` (hyper's "flatten" strategy), not
/// queued for `writev`: for the usual small answer the copy costs less than the queue (about
/// 600 instructions per request under callgrind), and the system calls are as many.
fn http1_builder(config: &RouterConfig) -> hyper::server::conn::http1::Builder {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.header_read_timeout(None).max_buf_size(config.hard_header_bytes()).writev(false);
    if let Some(max) = config.hard_headers() {
        http1.max_headers(max);
    }
    http1
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
