//! Plain HTTP/1.1 client connections that give their memory back while idle.
//!
//! hyper keeps a connection's buffers for as long as it lives: an 8 KiB write buffer from the
//! start, an 8 KiB read buffer once a request was read, a cached header map and the boxed slot
//! of the service's future. An idle keep-alive connection held about 23 KB of the router's
//! memory that way (`scripts/idle-conn-memory.py`), against nginx's ~1 KiB, which frees its
//! buffers between requests.
//!
//! So a plain HTTP/1.1 connection that has had no request in flight for [`PARK_AFTER`] is
//! *parked*: hyper's connection is told to close, which for an idle HTTP/1.1 connection ends it
//! at once without touching the socket (`poll_without_shutdown`); `into_parts` hands back the
//! socket, any bytes read ahead of a request, and the service. Only the socket is then kept,
//! until it becomes readable (the client's next request: a new hyper connection serves it), the
//! keep-alive ends, or the router shuts down. A connection busy with requests never parks, so
//! the request path pays nothing; one parked after a pause pays a new hyper connection.
//!
//! With the fast lane on ([`crate::lane`]), the lane serves the connection first and whenever a
//! hyper connection has parked: it takes the usual bodiless `GET` and `HEAD` itself, holds no
//! buffer between requests (so a connection it serves is as good as parked while idle), and
//! hands any other request to a new hyper connection with every byte it read. hyper then serves
//! the connection until it parks, and the lane takes over again.
//!
//! Two races are settled in the client's favour: a request whose head arrives just as a park
//! begins is answered with `Connection: close` (hyper disables keep-alive for a request in
//! progress), and bytes read ahead of a request are served by the next connection at once, which
//! then never parks again, so a client cannot reset the header-read deadline by dribbling bytes.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, Quiet, Watch};
use crate::config::RouterConfig;
use crate::linger::Lingering;
use crate::proxy::RouterService;

/// How long an HTTP/1.1 connection has no request in flight before it parks.
pub(crate) const PARK_AFTER: Duration = Duration::from_secs(1);

/// The socket as hyper reads it: bytes read ahead by a previous connection first.
type Io = Rewind<Lingering<TcpStream>>;
type Connection = http1::Connection<TokioIo<Io>, RouterService>;

/// A stream with bytes already read from it put back in front.
#[derive(Debug)]
pub(crate) struct Rewind<S> {
    ahead: Bytes,
    stream: S,
}

/// How one hyper connection over the socket ended.
enum End {
    /// Done (the client closed, asked to close, the idle timeout or shutdown): the socket is
    /// shut down.
    Closed,
    /// Failed, or the client did not close in time: the socket is dropped.
    Dropped,
    /// Parked at the router's request.
    Parked,
}

/// Serves HTTP/1.1 on `stream` until the client closes, the keep-alive ends, or `shutdown`
/// (requests in flight finish): by the fast lane while it takes the requests, else by hyper,
/// parked whenever it is idle for [`PARK_AFTER`].
pub(crate) async fn serve(
    builder: &http1::Builder,
    stream: TcpStream,
    remote: SocketAddr,
    service: RouterService,
    config: &RouterConfig,
    shutdown: &CancellationToken,
) {
    // The header-read deadline bounds an idle keep-alive connection too; a parked one is
    // closed when that would have happened.
    let activity = service.activity().clone();
    let keep_alive = config.idle_timeout.min(config.header_read_timeout).saturating_sub(PARK_AFTER);
    let lane = service.takes_lane();
    let (mut stream, mut service, mut ahead, mut may_park) = (Lingering::new(stream), service, Bytes::new(), true);
    // When the connection was last busy, for the lane's deadlines.
    let mut since = tokio::time::Instant::now();
    loop {
        // The lane serves while it takes the requests, and hands the rest to hyper; a hyper
        // connection that parks gives the socket back to it.
        if lane && may_park {
            match crate::lane::serve(&mut stream, &service, config, shutdown, since).await {
                crate::lane::End::Closed => return close(stream, config.header_read_timeout).await,
                crate::lane::End::Dropped => return,
                crate::lane::End::Handoff(bytes) => ahead = bytes,
            }
        }
        let io = Rewind::new(stream, std::mem::take(&mut ahead));
        let mut conn = Box::pin(builder.serve_connection(TokioIo::new(io), service));
        let end = drive(&mut conn, &activity, remote, config, shutdown, may_park).await;
        let parts = Pin::into_inner(conn).into_parts();
        let (rest, io) = parts.io.into_inner().into_parts();
        stream = io;
        match end {
            End::Dropped => return,
            End::Closed => return close(stream, config.header_read_timeout).await,
            End::Parked => {}
        }
        service = parts.service;
        ahead = [rest, parts.read_buf].concat().into();
        let now = tokio::time::Instant::now();
        since = now.checked_sub(PARK_AFTER).unwrap_or(now);
        if !ahead.is_empty() {
            may_park = false;
        } else if !lane {
            tokio::select! {
                readable = stream.get_ref().readable() => if readable.is_err() { return },
                () = tokio::time::sleep(keep_alive) => return close(stream, config.header_read_timeout).await,
                () = shutdown.cancelled() => return close(stream, config.header_read_timeout).await,
            }
        }
    }
}

/// Polls one hyper connection until it ends; closes it on shutdown or after the idle timeout,
/// and parks it (when `may_park`) after [`PARK_AFTER`] without a request.
async fn drive(
    conn: &mut Pin<Box<Connection>>,
    activity: &Activity,
    remote: SocketAddr,
    config: &RouterConfig,
    shutdown: &CancellationToken,
    may_park: bool,
) -> End {
    let (mut closing, mut parking) = (false, false);
    // As for any connection (see `server::serve_connection`): an idle one closed gracefully
    // still needs the client's part; one that does not play along is dropped.
    let gone_by = tokio::time::sleep(Duration::MAX);
    tokio::pin!(gone_by);
    let mut idle_closing = false;
    // The header-read deadline is this loop's, not hyper's (whose timer costs a boxed sleep,
    // armed and dropped, per request): a head not read within `header_read_timeout` of the
    // last request's end (or of this hyper connection's start) drops the connection, as
    // hyper's timer did.
    let started = tokio::time::Instant::now();
    loop {
        let watch = Watch {
            head: Some((config.header_read_timeout, started)),
            idle: (!closing).then_some(config.idle_timeout),
            park: (may_park && !parking && !closing).then_some(PARK_AFTER),
        };
        let cancelled = shutdown.cancelled();
        let quiet = activity.quiet(watch);
        tokio::pin!(cancelled, quiet);
        let mut watchers = Watchers::default();
        // The connection first, every time the task wakes; the watchers (shutdown and the
        // deadlines, which stay pending through thousands of requests) only when one of them
        // woke it: polling them on each of the connection's wake-ups cost ~600 instructions
        // per request.
        let event = poll_fn(|cx| {
            if let Poll::Ready(ended) = conn.as_mut().get_mut().poll_without_shutdown(cx) {
                return Poll::Ready(Event::Ended(ended));
            }
            let Some(mut cx) = watchers.woken(cx) else {
                return Poll::Pending;
            };
            if !closing && cancelled.as_mut().poll(&mut cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            if !idle_closing && let Poll::Ready(quiet) = quiet.as_mut().poll(&mut cx) {
                return Poll::Ready(Event::Quiet(quiet));
            }
            if idle_closing && gone_by.as_mut().poll(&mut cx).is_ready() {
                return Poll::Ready(Event::GoneBy);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Ended(Err(e)) => {
                tracing::debug!(error = %e, client = %remote, "connection ended with an error");
                return End::Dropped;
            }
            Event::Ended(Ok(())) if parking && !closing => return End::Parked,
            Event::Ended(Ok(())) => return End::Closed,
            Event::Shutdown => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            Event::Quiet(Quiet::Head) => {
                tracing::debug!(client = %remote, "no request head within the header read timeout");
                return End::Dropped;
            }
            Event::Quiet(Quiet::Idle) => {
                tracing::debug!(client = %remote, "idle connection closed");
                closing = true;
                idle_closing = true;
                gone_by.as_mut().reset(tokio::time::Instant::now() + config.header_read_timeout);
                conn.as_mut().graceful_shutdown();
            }
            Event::Quiet(Quiet::Park) => {
                parking = true;
                conn.as_mut().graceful_shutdown();
            }
            Event::GoneBy => return End::Dropped,
        }
    }
}

/// What [`drive`] waits for.
enum Event {
    /// The hyper connection ended.
    Ended(Result<(), hyper::Error>),
    /// The router is shutting down.
    Shutdown,
    /// One of the connection's deadlines passed.
    Quiet(Quiet),
    /// A connection closed for idleness did not finish closing in time.
    GoneBy,
}

/// The waker [`drive`]'s watchers are polled with: it notes that one of them woke the task, so
/// they are polled again only then (and once at first, to register).
#[derive(Default)]
pub(crate) struct Watchers {
    /// The flag and the waker made of it, for the task's waker as last seen.
    gate: Option<(Arc<Gate>, Waker)>,
}

/// A watcher's wake-up: noted, then passed on to the task.
struct Gate {
    woken: AtomicBool,
    task: Waker,
}

impl Watchers {
    /// A context to poll the watchers with, when one of them has woken the task since they
    /// were last polled (or the task's waker changed, so they must register anew).
    pub(crate) fn woken(&mut self, cx: &Context<'_>) -> Option<Context<'_>> {
        let current = self.gate.as_ref().is_some_and(|(gate, _)| gate.task.will_wake(cx.waker()));
        if !current {
            let gate = Arc::new(Gate { woken: AtomicBool::new(true), task: cx.waker().clone() });
            let waker = Waker::from(gate.clone());
            self.gate = Some((gate, waker));
        }
        let (gate, waker) = self.gate.as_ref()?;
        gate.woken.swap(false, Ordering::AcqRel).then(|| Context::from_waker(waker))
    }
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

/// Shuts the router's side and lingers (see [`Lingering`]), for at most `bound`.
async fn close(mut stream: Lingering<TcpStream>, bound: Duration) {
    let _ = tokio::time::timeout(bound, stream.shutdown()).await;
}

// === impl Rewind ===

impl<S> Rewind<S> {
    pub(crate) fn new(stream: S, ahead: Bytes) -> Self {
        Self { ahead, stream }
    }

    /// The bytes not yet read back, and the stream.
    pub(crate) fn into_parts(self) -> (Bytes, S) {
        (self.ahead, self.stream)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.ahead.is_empty() {
            let n = self.ahead.len().min(buf.remaining());
            buf.put_slice(&self.ahead[..n]);
            self.ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn bytes_read_ahead_come_first() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.expect("write");
        drop(client);
        let mut rewind = Rewind::new(server, Bytes::from_static(b"hello"));
        let mut text = String::new();
        rewind.read_to_string(&mut text).await.expect("read");
        assert_eq!(text, "hello world");
        let (ahead, _) = rewind.into_parts();
        assert!(ahead.is_empty());
    }
}
