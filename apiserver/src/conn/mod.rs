//! The API port's connections: accept, tell TLS from plain HTTP by the first byte, hold each
//! step to a deadline (first byte, TLS handshake, request head), pick HTTP/1.1 or h2 by ALPN
//! after TLS, refuse plain HTTP where the policy says TLS is required, and close a connection
//! that has had no request in flight for the idle timeout (h2 with a GOAWAY). A connection
//! that sends nothing, stalls in a handshake or holds an h2 session with no stream therefore
//! never holds its socket for good.

mod activity;
mod body;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Ctx, tls, watch};
use activity::Activity;
use body::Tracked;

/// How open requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// What Kubernetes answers a plain HTTP request on its TLS port (Go's `net/http`).
const PLAIN_REFUSED: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
/// How long a refused plain connection is read (and discarded) so the client, still sending
/// its request, sees the 400 rather than a reset.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Whether a connection that does not open with a TLS handshake is served (only matters when
/// the server has a TLS identity; without one every connection is plain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Served on every connection.
    #[default]
    Served,
    /// Served only on connections made to a loopback address (which come from this machine);
    /// what `sluice serve` uses, so a listener on `0.0.0.0` requires TLS from other machines
    /// and still answers local clients either way.
    LoopbackOnly,
    /// Never served: answered 400 "Client sent an HTTP request to an HTTPS server." and closed.
    Refused,
}

/// Deadlines and policy for the API port's connections.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// How long a new connection has to send its first byte, and an HTTP/1 request its head.
    pub(crate) header_read_timeout: Duration,
    /// How long a TLS handshake may take.
    pub(crate) tls_handshake_timeout: Duration,
    /// How long a connection may have no request in flight before it is closed.
    pub(crate) idle_timeout: Duration,
    /// Plain HTTP beside TLS.
    pub(crate) plain_http: PlainHttp,
}

/// The connection builders: sniffing (plain HTTP: HTTP/1.1 or h2 with prior knowledge), and
/// one per ALPN protocol for TLS, which needs no sniffing and so no unbounded read.
struct Builders {
    sniff: Builder,
    h1: Builder,
    h2: Builder,
}

type Builder = hyper_util::server::conn::auto::Builder<TokioExecutor>;

// === impl Settings ===

impl Default for Settings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            plain_http: PlainHttp::Served,
        }
    }
}

// === impl Builders ===

impl Builders {
    fn new(settings: &Settings) -> Self {
        let mut sniff = Builder::new(TokioExecutor::new());
        sniff.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
        sniff.http2().timer(TokioTimer::new());
        Self { h1: sniff.clone().http1_only(), h2: sniff.clone().http2_only(), sniff }
    }
}

/// Serves connections from `listener` until `ctx.shutdown`; then stops accepting, lets open
/// requests finish (watches end at once) for up to [`DRAIN`], closes what is left and
/// returns. Every connection task is owned here and has ended when this returns.
pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    settings: Settings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    listener: TcpListener,
) {
    let settings = Arc::new(settings);
    let builders = Arc::new(Builders::new(&settings));
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    loop {
        tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if std::mem::take(&mut accept_failing) {
                        tracing::info!("api server accepting connections again");
                    }
                    let (ctx, settings, builders, tls) = (ctx.clone(), settings.clone(), builders.clone(), tls.clone());
                    connections.spawn(accept(ctx, settings, builders, tls, stream));
                }
                Err(e) => {
                    if !std::mem::replace(&mut accept_failing, true) {
                        tracing::warn!(error = %e, open = connections.len(), "api server accept failed; serving open connections and retrying");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    // Each connection saw the shutdown and is closing gracefully.
    let drained = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("api server: connections still open after {DRAIN:?}; closing");
    }
    connections.shutdown().await;
}

/// One accepted connection: TLS or plain by its first byte, each step under its deadline.
async fn accept(
    ctx: Arc<Ctx>,
    settings: Arc<Settings>,
    builders: Arc<Builders>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stream: TcpStream,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(settings.header_read_timeout, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let _ = stream.set_nodelay(true);
    let idle = settings.idle_timeout;
    let Some(tls) = tls else {
        return serve_connection(ctx, &builders.sniff, stream, idle).await;
    };
    if first[0] != tls::HANDSHAKE {
        return if plain_allowed(settings.plain_http, &stream) {
            serve_connection(ctx, &builders.sniff, stream, idle).await
        } else {
            refuse_plain(stream).await
        };
    }
    match tokio::time::timeout(settings.tls_handshake_timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => {
            // RFC 9113 §3.2: h2 over TLS is chosen by ALPN; a client that offers none speaks
            // HTTP/1.1.
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            serve_connection(ctx, if h2 { &builders.h2 } else { &builders.h1 }, stream, idle).await
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "api TLS handshake failed"),
        Err(_) => tracing::debug!("api TLS handshake timed out"),
    }
}

/// Whether `policy` lets `stream` speak plain HTTP: a connection to a loopback address came
/// from this machine (an IPv4-mapped one on a dual-stack socket too).
fn plain_allowed(policy: PlainHttp, stream: &TcpStream) -> bool {
    match policy {
        PlainHttp::Served => true,
        PlainHttp::Refused => false,
        PlainHttp::LoopbackOnly => stream.local_addr().is_ok_and(|a| a.ip().to_canonical().is_loopback()),
    }
}

/// Answers a plain HTTP connection on a TLS-only port as Kubernetes does, then closes it.
async fn refuse_plain(mut stream: TcpStream) {
    tracing::debug!(peer = ?stream.peer_addr().ok(), "api: plain HTTP refused; TLS is required on this address");
    let answer = async {
        stream.write_all(PLAIN_REFUSED).await?;
        stream.shutdown().await?;
        // Read what the client is still sending (bounded), so closing does not reset the
        // connection before it has read the answer.
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024usize;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSE_LINGER, answer).await;
}

/// Serves one connection (plain or TLS) until it ends, a watch on it falls behind, or it has
/// had no request in flight for `idle` (then it is closed gracefully: an h2 GOAWAY, or an
/// HTTP/1 close; and dropped if still open after another `idle` with nothing in flight).
async fn serve_connection<I>(ctx: Arc<Ctx>, builder: &Builder, io: I, idle: Duration)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Cancelled by a watch on this connection that falls behind.
    let close = CancellationToken::new();
    let activity = Activity::new();
    let svc = {
        let (ctx, close, activity) = (ctx.clone(), close.clone(), activity.clone());
        hyper::service::service_fn(move |req| {
            let guard = activity.begin();
            let handled = watch::CONNECTION.scope(close.clone(), crate::handle(ctx.clone(), req));
            async move { handled.await.map(|res| res.map(|body| Tracked::new(body, guard))) }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "api connection ended");
                }
                return;
            }
            () = close.cancelled() => {
                tracing::debug!("api connection closed: its watch fell behind");
                return;
            }
            () = activity.idle_for(idle) => {
                if closing {
                    tracing::debug!("api connection still open after its graceful close; dropping it");
                    return;
                }
                tracing::debug!(?idle, "api connection idle; closing");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = ctx.shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests;
