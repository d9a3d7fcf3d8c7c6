//! The access log (`sluice serve --access-log FILE|-`): one JSON line per request, written when
//! its response ends — the body finished or cut, or dropped because the client went away (a
//! request dropped before any response is logged too, with no status).
//!
//! Off the request path: each request carries an [`Entry`] (only while the log is on), filled
//! in as the request is routed and answered. When it is dropped, its record (already boxed) is
//! handed with `try_send` to a bounded channel ([`QUEUE`] records); one [`Writer`], on a thread
//! of its own, takes what is queued every [`TICK`], formats the lines and writes them through a
//! 64 KB buffer, flushed after each batch. A full channel drops the record and counts it
//! (`sluice_access_log_dropped_total`, [`AccessLog::dropped`]): a request never waits for the
//! disk, and formatting costs it nothing. The wall clock is read by the writer, not per
//! request: a line's time is its arrival on the monotonic clock, placed against the writer's
//! reading of both clocks.
//!
//! The fields are listed in [`line`].

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, Version};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::body::RouterBody;
use crate::error::ProxyError;
use crate::table::Backend;
use crate::trace::TraceId;

pub mod line;

/// Records waiting for the writer at most; more are dropped and counted.
pub const QUEUE: usize = 65_536;

/// How often the writer takes what is queued, writes it and flushes (so a line is on disk
/// within about this long of its response's end).
pub const TICK: Duration = Duration::from_millis(10);

/// Size of the writer's buffer.
const BUFFER: usize = 64 * 1024;

/// The process's access log: cheap to clone, shared by every connection.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: SyncSender<Box<Record>>,
    dropped: Arc<AtomicU64>,
}

/// Formats and writes the lines, in the order their records were handed over; run it on a
/// thread of its own ([`Writer::run`] blocks).
pub struct Writer {
    rx: Receiver<Box<Record>>,
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    dropped: Arc<AtomicU64>,
}

/// One request's line in the making; handed to the writer when dropped.
#[derive(Debug)]
pub(crate) struct Entry {
    log: AccessLog,
    record: Option<Box<Record>>,
}

/// What a line says about its request.
#[derive(Debug)]
pub(crate) struct Record {
    arrived: Instant,
    /// Arrival to the end of the response (set when the entry is dropped).
    duration: Duration,
    method: Method,
    host: Option<HeaderValue>,
    path: Option<http::uri::PathAndQuery>,
    version: Version,
    /// The trace id of the request's `traceparent` (as forwarded, once it is).
    trace: Option<crate::trace::TraceId>,
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
    /// A log writing to `out` through a channel of [`QUEUE`] records.
    pub fn new(out: impl Write + Send + 'static) -> (Self, Writer) {
        Self::with_capacity(out, QUEUE)
    }

    /// A log writing to `out` through a channel of `capacity` records.
    pub fn with_capacity(out: impl Write + Send + 'static, capacity: usize) -> (Self, Writer) {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let out: Box<dyn Write + Send> = Box::new(out);
        let writer = Writer { rx, out: std::io::BufWriter::with_capacity(BUFFER, out), dropped: dropped.clone() };
        (Self { tx, dropped }, writer)
    }

    /// Lines dropped so far: the channel was full, or writing failed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The entry of a request just arrived; its body's byte counter goes into its extensions.
    pub(crate) fn begin<B>(&self, req: &mut Request<B>) -> Entry {
        let bytes_in = BytesIn::default();
        req.extensions_mut().insert(bytes_in.clone());
        let host = match req.uri().authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => req.headers().get(http::header::HOST).cloned(),
        };
        let record = Box::new(Record {
            arrived: Instant::now(),
            duration: Duration::ZERO,
            method: req.method().clone(),
            host,
            path: req.uri().path_and_query().cloned(),
            version: req.version(),
            trace: crate::trace::sent(req.headers()),
            backend: None,
            instance: None,
            status: None,
            reason: None,
            bytes_in,
            bytes_out: 0,
        });
        Entry { log: self.clone(), record: Some(record) }
    }

    fn send(&self, record: Box<Record>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// === impl Writer ===

impl Writer {
    /// Writes lines until every [`AccessLog`] is gone or `stop` is cancelled (checked every
    /// [`TICK`]); then writes what is queued and flushes. Blocks: run it on a
    /// thread of its own.
    pub fn run(mut self, stop: &CancellationToken) {
        let mut failed = false;
        loop {
            // Polled, not woken per record: a blocking receive would make every request's send
            // wake this thread (a syscall and a context switch per line).
            let mut wrote = false;
            loop {
                match self.rx.try_recv() {
                    Ok(record) => {
                        self.write(&record, &mut failed);
                        wrote = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush(&mut failed);
                        return;
                    }
                }
            }
            if wrote {
                self.flush(&mut failed);
            }
            if stop.is_cancelled() {
                break;
            }
            std::thread::sleep(TICK);
        }
        while let Ok(record) = self.rx.try_recv() {
            self.write(&record, &mut failed);
        }
        self.flush(&mut failed);
    }

    fn write(&mut self, record: &Record, failed: &mut bool) {
        if let Err(e) = line::write(&mut self.out, record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !std::mem::replace(failed, true) {
                tracing::warn!(error = %e, "the access log cannot be written; its lines are dropped and counted");
            }
        }
    }

    fn flush(&mut self, failed: &mut bool) {
        if let Err(e) = self.out.flush()
            && !std::mem::replace(failed, true)
        {
            tracing::warn!(error = %e, "the access log cannot be written; its lines are dropped and counted");
        }
    }
}

// === impl Entry ===

impl Entry {
    fn record(&mut self) -> Option<&mut Record> {
        self.record.as_deref_mut()
    }

    /// The request was routed to `backend` (and `instance`, once it has one), and is (or will
    /// be) forwarded with the `traceparent` of `trace`.
    pub(crate) fn routed(&mut self, backend: &Arc<Backend>, instance: Option<SocketAddr>, trace: Option<TraceId>) {
        if let Some(r) = self.record() {
            r.backend = Some(backend.clone());
            r.instance = instance;
            r.trace = trace;
        }
    }

    /// The response head: its status, and the router's reason when the router made it.
    pub(crate) fn responded(&mut self, res: &Response<RouterBody>) {
        if let Some(r) = self.record() {
            r.status = Some(res.status().as_u16());
            r.reason = res.extensions().get::<Arc<ProxyError>>().map(|e| e.to_string());
        }
    }

    /// `n` body bytes went to the client.
    pub(crate) fn sent(&mut self, n: usize) {
        if let Some(r) = self.record() {
            r.bytes_out += n as u64;
        }
    }

    /// The response ended; `instance` served it (if one did), `problem` says why it ended
    /// early (if it did).
    pub(crate) fn ended(&mut self, instance: Option<SocketAddr>, problem: Option<String>) {
        if let Some(r) = self.record() {
            if instance.is_some() {
                r.instance = instance;
            }
            if problem.is_some() {
                r.reason = problem;
            }
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = record.arrived.elapsed();
            if record.status.is_none() && record.reason.is_none() {
                record.reason = Some("the client went away before the response".into());
            }
            self.log.send(record);
        }
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
