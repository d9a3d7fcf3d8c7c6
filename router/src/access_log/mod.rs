//! The access log (`sluice serve --access-log FILE|-`): one JSON line per request, written when
//! its response ends — the body finished or cut, or dropped because the client went away (a
//! request dropped before any response is logged too, with no status).
//!
//! Off the request path: each request carries an [`Entry`] (only while the log is on), filled
//! in as the request is routed and answered; when the entry is dropped its line is formatted
//! and handed with `try_send` to a bounded channel ([`QUEUE`] lines), which one [`Writer`]
//! task drains to the file. A full channel drops the line and counts it
//! (`sluice_access_log_dropped_total`, [`AccessLog::dropped`]); a request never waits on the
//! disk.
//!
//! The fields are listed in [`line`]. A line's time is its arrival on tokio's clock placed on
//! the wall clock through an anchor (one wall-clock reading and the tokio instant it was
//! taken at), since the request path does not read the wall clock; the writer takes a new
//! anchor at most every [`REANCHOR`], so the clocks cannot drift apart for long.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::body::RouterBody;
use crate::error::ProxyError;
use crate::table::Backend;

pub mod line;

/// Lines waiting for the writer at most; more are dropped and counted.
pub const QUEUE: usize = 65_536;

/// How often the writer reads the wall clock again for the lines' times.
pub const REANCHOR: std::time::Duration = std::time::Duration::from_secs(10);

/// The process's access log: cheap to clone, shared by every connection.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
    anchor: Arc<ArcSwap<Anchor>>,
}

/// A wall-clock reading and the instant it was taken at.
#[derive(Debug)]
struct Anchor {
    wall: SystemTime,
    at: Instant,
}

/// The task that writes the lines out, in the order they were handed over.
pub struct Writer {
    rx: mpsc::Receiver<String>,
    out: Pin<Box<dyn AsyncWrite + Send>>,
    dropped: Arc<AtomicU64>,
    anchor: Arc<ArcSwap<Anchor>>,
}

/// One request's line in the making; written when dropped.
#[derive(Debug)]
pub(crate) struct Entry {
    log: AccessLog,
    time: SystemTime,
    arrived: Instant,
    method: Method,
    host: Option<HeaderValue>,
    path: Option<http::uri::PathAndQuery>,
    version: Version,
    /// The trace id of the request's `traceparent` (as forwarded, once it is).
    trace: Option<line::TraceId>,
    backend: Option<Arc<Backend>>,
    instance: Option<SocketAddr>,
    status: Option<u16>,
    reason: Option<String>,
    bytes_in: BytesIn,
    bytes_out: u64,
}

/// Request body bytes read from the client for one request, counted by the body that carries
/// them upstream (it travels in the request's extensions).
#[derive(Clone, Debug, Default)]
pub(crate) struct BytesIn(Arc<AtomicU64>);

// === impl AccessLog ===

impl AccessLog {
    /// A log writing to `out` through a channel of [`QUEUE`] lines.
    pub fn new(out: impl AsyncWrite + Send + 'static) -> (Self, Writer) {
        Self::with_capacity(out, QUEUE)
    }

    /// A log writing to `out` through a channel of `capacity` lines.
    pub fn with_capacity(out: impl AsyncWrite + Send + 'static, capacity: usize) -> (Self, Writer) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let anchor = Arc::new(ArcSwap::from_pointee(Anchor::now()));
        let writer = Writer { rx, out: Box::pin(out), dropped: dropped.clone(), anchor: anchor.clone() };
        (Self { tx, dropped, anchor }, writer)
    }

    /// Lines dropped so far: the channel was full, or writing failed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The entry of a request just arrived; its body's byte counter goes into its extensions.
    pub(crate) fn begin<B>(&self, req: &mut Request<B>) -> Box<Entry> {
        let bytes_in = BytesIn::default();
        req.extensions_mut().insert(bytes_in.clone());
        let host = match req.uri().authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => req.headers().get(http::header::HOST).cloned(),
        };
        let arrived = Instant::now();
        let anchor = self.anchor.load();
        let time = anchor.wall + arrived.saturating_duration_since(anchor.at);
        Box::new(Entry {
            log: self.clone(),
            time,
            arrived,
            method: req.method().clone(),
            host,
            path: req.uri().path_and_query().cloned(),
            version: req.version(),
            trace: line::trace_id(req.headers()),
            backend: None,
            instance: None,
            status: None,
            reason: None,
            bytes_in,
            bytes_out: 0,
        })
    }

    fn send(&self, line: String) {
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// === impl Writer ===

impl Writer {
    /// Writes lines until every [`AccessLog`] is gone or `stop` is cancelled; then writes what
    /// is queued and flushes. Flushes whenever the queue runs empty, so a quiet log is on disk.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut failed = false;
        loop {
            let line = tokio::select! {
                line = self.rx.recv() => line,
                () = stop.cancelled() => None,
            };
            let Some(line) = line else { break };
            self.write(line, &mut failed).await;
            while let Ok(line) = self.rx.try_recv() {
                self.write(line, &mut failed).await;
            }
            self.flush(&mut failed).await;
            if self.anchor.load().at.elapsed() >= REANCHOR {
                self.anchor.store(Arc::new(Anchor::now()));
            }
        }
        self.rx.close();
        while let Ok(line) = self.rx.try_recv() {
            self.write(line, &mut failed).await;
        }
        self.flush(&mut failed).await;
    }

    async fn write(&mut self, line: String, failed: &mut bool) {
        if let Err(e) = self.out.write_all(line.as_bytes()).await {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !std::mem::replace(failed, true) {
                tracing::warn!(error = %e, "the access log cannot be written; its lines are dropped and counted");
            }
        }
    }

    async fn flush(&mut self, failed: &mut bool) {
        if let Err(e) = self.out.flush().await
            && !std::mem::replace(failed, true)
        {
            tracing::warn!(error = %e, "the access log cannot be written; its lines are dropped and counted");
        }
    }
}

// === impl Anchor ===

impl Anchor {
    // The writer's task (or the log's creation), never a request.
    #[allow(clippy::disallowed_methods)]
    fn now() -> Self {
        Self { wall: SystemTime::now(), at: Instant::now() }
    }
}

// === impl Entry ===

impl Entry {
    /// The request was routed to `backend` (and `instance`, once it has one), and is (or will
    /// be) forwarded with `sent`.
    pub(crate) fn routed(&mut self, backend: &Arc<Backend>, instance: Option<SocketAddr>, sent: &HeaderMap) {
        self.backend = Some(backend.clone());
        self.instance = instance;
        self.trace = line::trace_id(sent);
    }

    /// The response head: its status, and the router's reason when the router made it.
    pub(crate) fn responded(&mut self, res: &Response<RouterBody>) {
        self.status = Some(res.status().as_u16());
        self.reason = res.extensions().get::<Arc<ProxyError>>().map(|e| e.to_string());
    }

    /// `n` body bytes went to the client.
    pub(crate) fn sent(&mut self, n: usize) {
        self.bytes_out += n as u64;
    }

    /// The response ended; `instance` served it (if one did), `problem` says why it ended
    /// early (if it did).
    pub(crate) fn ended(&mut self, instance: Option<SocketAddr>, problem: Option<String>) {
        if instance.is_some() {
            self.instance = instance;
        }
        if problem.is_some() {
            self.reason = problem;
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.status.is_none() && self.reason.is_none() {
            self.reason = Some("the client went away before the response".into());
        }
        let line = line::format(self);
        self.log.send(line);
    }
}

// === impl BytesIn ===

impl BytesIn {
    /// `n` more bytes read.
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
