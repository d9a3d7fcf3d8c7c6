//! The router's own upstream connection pools: HTTP/1.1 keep-alive connections kept per
//! instance, and one shared h2c connection (prior knowledge) per instance.
//!
//! Each router worker has its own [`Upstream`], so its connections live on the worker's runtime
//! and are only ever used from it. A connection runs as a task of hyper's `client::conn`; the
//! pool keeps only its sender. Compared with hyper-util's legacy client this is a smaller path
//! per request: the instance's id (unique for the process) keys the pool, so no URI authority is
//! hashed or compared; a checkout pops the newest idle sender of the instance under one
//! uncontended lock; and a connection goes back to the pool when the response body has ended
//! (see [`Reuse`]), with no task spawned to wait for it.
//!
//! Kept from before: connections to an instance are [`EarlyAnswerIo`] (an answer sent before
//! the request body was read reaches the client); a request handed back unsent by a pooled
//! connection the instance had closed goes on a fresh one; a connection that said
//! `Connection: close`, broke, or whose body did not end is never reused; idle connections
//! expire after `upstream_idle_timeout`, at most `upstream_max_idle_per_instance` are kept per
//! instance, and the connections of instances that are gone expire with the rest.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::header::HOST;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::EarlyAnswerIo;
use super::deadline::HeadDeadline;
use crate::body::{InstanceBody, UpstreamBody};
use crate::config::RouterConfig;
use crate::endpoints::Instance;
use crate::error::UpstreamError;
use crate::table::Protocol;
use raw::{Exchanged, RawConn};
pub(crate) use raw::{Fields, PassedHead, RawBody, RequestHead, blank_line_since};

/// Connection pools to instances, keyed by instance id.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    http1: Arc<Http1Pool>,
    /// Connections of the router's own client ([`raw`]), for bodiless `GET` and `HEAD`.
    raw: Arc<Pool<Box<RawConn>>>,
    h2c: Arc<H2cPool>,
}

/// How one upstream exchange ended, up to the response head.
#[allow(
    clippy::large_enum_variant,
    reason = "the response is the common case; boxing it would cost an allocation per request"
)]
pub(crate) enum Attempt {
    /// A response head arrived; its body returns its connection to the pool once it ends.
    Response(http::Response<InstanceBody>),
    /// The deadline passed first.
    TimedOut,
    /// The exchange failed.
    Failed(UpstreamError),
}

/// An HTTP/1.1 connection whose response is still streaming: it goes back to its pool when the
/// response body has ended ([`Reuse::put`]), and closes when dropped instead.
#[derive(Debug)]
pub(crate) struct Reuse {
    pool: Arc<Http1Pool>,
    instance: u64,
    sender: http1::SendRequest<UpstreamBody>,
}

/// Where a connection of the router's own client goes back once its response has ended.
#[derive(Debug)]
pub(crate) struct Home {
    pool: Arc<Pool<Box<RawConn>>>,
    instance: u64,
}

/// The pool of hyper's HTTP/1.1 connections (their senders).
type Http1Pool = Pool<http1::SendRequest<UpstreamBody>>;

/// Idle HTTP/1.1 connections per instance.
#[derive(Debug)]
struct Pool<C> {
    idle_timeout: Duration,
    max_idle: usize,
    state: Mutex<IdleSet<C>>,
}

#[derive(Debug)]
struct IdleSet<C> {
    by_instance: HashMap<u64, Vec<Idle<C>>, BuildHasherDefault<IdHasher>>,
    /// When idle connections of every instance are next checked for expiry.
    next_sweep: Instant,
}

/// A pooled connection and when it went idle.
#[derive(Debug)]
struct Idle<C> {
    conn: C,
    since: Instant,
}

/// What a pool needs to know of a connection.
trait Pooled {
    /// The connection has closed: it can only be dropped.
    fn is_closed(&self) -> bool;
    /// The connection can take a request now (not still finishing its last exchange).
    fn is_ready(&self) -> bool;
}

/// One shared h2c connection per instance (HTTP/2 multiplexes its requests); closed ones are
/// dropped whenever a new one is made, so the map holds at most one per instance connected to.
#[derive(Debug)]
struct H2cPool {
    senders: Mutex<HashMap<u64, http2::SendRequest<UpstreamBody>, BuildHasherDefault<IdHasher>>>,
}

/// Hashes an instance id: ids are a process-wide counter, so a multiply spreads them enough.
#[derive(Default)]
struct IdHasher(u64);

// === impl Upstream ===

impl Upstream {
    pub(crate) fn new(config: &RouterConfig) -> Self {
        let http1 = Arc::new(Pool::new(config));
        let raw = Arc::new(Pool::new(config));
        let h2c = Arc::new(H2cPool { senders: Mutex::new(HashMap::default()) });
        Self { http1, raw, h2c }
    }

    /// Sends a bodiless `GET` or `HEAD` (its head as rewritten for the instance) on the
    /// router's own client, and waits for the response head until `deadline`.
    pub(crate) async fn send_bodiless(
        &self,
        instance: &Instance,
        req: &RequestHead<'_>,
        deadline: &mut HeadDeadline,
    ) -> Attempt {
        within(deadline, self.exchange_raw(instance, req)).await
    }

    async fn exchange_raw(
        &self,
        instance: &Instance,
        req: &RequestHead<'_>,
    ) -> Result<http::Response<InstanceBody>, UpstreamError> {
        // A pooled connection the instance has closed meanwhile ends before any byte of the
        // response; the request then goes on the next one, or a new one.
        while let Some(conn) = self.raw.checkout(instance.id) {
            match conn.exchange(req, instance.authority(), self.home(instance.id)).await {
                Exchanged::Response(res) => return Ok(res.map(InstanceBody::Raw)),
                Exchanged::Stale(e) => {
                    tracing::trace!(instance = instance.id, error = %e, "pooled connection ended; trying another")
                }
                Exchanged::Failed(e) => return Err(e.into()),
            }
        }
        let conn = RawConn::new(connect(instance).await?);
        match conn.exchange(req, instance.authority(), self.home(instance.id)).await {
            Exchanged::Response(res) => Ok(res.map(InstanceBody::Raw)),
            Exchanged::Stale(e) | Exchanged::Failed(e) => Err(e.into()),
        }
    }

    fn home(&self, instance: u64) -> Home {
        Home { pool: self.raw.clone(), instance }
    }

    /// Sends `req` (its URI the target as the instance should see it: origin-form for HTTP/1.1,
    /// absolute for h2c) to `instance` and waits for the head until `deadline`.
    pub(crate) async fn send(
        &self,
        protocol: Protocol,
        instance: &Instance,
        req: http::Request<UpstreamBody>,
        deadline: &mut HeadDeadline,
    ) -> Attempt {
        let exchange = async {
            match protocol {
                Protocol::Http1 => self
                    .send_http1(instance, req)
                    .await
                    .map(|(res, reuse)| res.map(|body| InstanceBody::Hyper { body, reuse: Some(reuse) })),
                Protocol::H2c => self
                    .send_h2c(instance, req)
                    .await
                    .map(|res| res.map(|body| InstanceBody::Hyper { body, reuse: None })),
            }
        };
        within(deadline, exchange).await
    }

    async fn send_http1(
        &self,
        instance: &Instance,
        mut req: http::Request<UpstreamBody>,
    ) -> Result<(http::Response<Incoming>, Reuse), UpstreamError> {
        if !req.headers().contains_key(HOST)
            && let Ok(host) = http::HeaderValue::from_str(instance.authority().as_str())
        {
            req.headers_mut().insert(HOST, host);
        }
        // A pooled connection the instance has closed meanwhile hands the request back unsent;
        // it then goes on the next one, or a new one.
        while let Some(mut sender) = self.http1.checkout(instance.id) {
            match sender.try_send_request(req).await {
                Ok(res) => return Ok((res, self.http1.reuse(instance.id, sender))),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
        let mut sender = Box::pin(connect_http1(instance)).await?;
        let res = sender.send_request(req).await.map_err(UpstreamError::Http)?;
        Ok((res, self.http1.reuse(instance.id, sender)))
    }

    async fn send_h2c(
        &self,
        instance: &Instance,
        req: http::Request<UpstreamBody>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let shared = self.h2c.senders.lock().get(&instance.id).filter(|s| s.is_ready()).cloned();
        let mut sender = match shared {
            Some(sender) => sender,
            None => {
                let sender = Box::pin(connect_h2c(instance)).await?;
                let mut senders = self.h2c.senders.lock();
                // Connecting is the rare moment to forget the closed connections, those of
                // instances that are gone among them, so the map holds only live ones.
                senders.retain(|_, s| !s.is_closed());
                senders.insert(instance.id, sender.clone());
                sender
            }
        };
        sender.send_request(req).await.map_err(UpstreamError::Http)
    }
}

/// The attempt of `exchange`, or `TimedOut` once `deadline` has passed.
async fn within(
    deadline: &mut HeadDeadline,
    exchange: impl Future<Output = Result<http::Response<InstanceBody>, UpstreamError>>,
) -> Attempt {
    let mut exchange = std::pin::pin!(exchange);
    let outcome = std::future::poll_fn(|cx| match exchange.as_mut().poll(cx) {
        Poll::Ready(done) => Poll::Ready(Some(done)),
        Poll::Pending => deadline.poll_passed(cx).map(|()| None),
    })
    .await;
    match outcome {
        Some(Ok(res)) => Attempt::Response(res),
        Some(Err(e)) => Attempt::Failed(e),
        None => Attempt::TimedOut,
    }
}

/// A new HTTP/1.1 connection to `instance`, its connection task spawned on this runtime.
async fn connect_http1(instance: &Instance) -> Result<http1::SendRequest<UpstreamBody>, UpstreamError> {
    let stream = connect(instance).await?;
    let (sender, conn) =
        http1::Builder::new().handshake(EarlyAnswerIo::new(stream)).await.map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// A new h2c connection to `instance` (prior knowledge), its connection task spawned here.
async fn connect_h2c(instance: &Instance) -> Result<http2::SendRequest<UpstreamBody>, UpstreamError> {
    let stream = connect(instance).await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream h2c connection ended with an error");
        }
    });
    Ok(sender)
}

async fn connect(instance: &Instance) -> Result<TcpStream, UpstreamError> {
    let stream = TcpStream::connect(instance.addr).await.map_err(UpstreamError::Connect)?;
    stream.set_nodelay(true).map_err(UpstreamError::Connect)?;
    Ok(stream)
}

// === impl Pool ===

impl<C: Pooled> Pool<C> {
    fn new(config: &RouterConfig) -> Self {
        Self {
            idle_timeout: config.upstream_idle_timeout,
            max_idle: config.upstream_max_idle_per_instance,
            state: Mutex::new(IdleSet { by_instance: HashMap::default(), next_sweep: Instant::now() }),
        }
    }

    /// The newest idle connection of `instance` that can take a request now. Closed and
    /// expired ones are dropped on the way; one still finishing its last exchange stays pooled.
    fn checkout(&self, instance: u64) -> Option<C> {
        let mut state = self.state.lock();
        let idle = state.by_instance.get_mut(&instance)?;
        let now = Instant::now();
        let mut busy = None;
        let found = loop {
            let Some(entry) = idle.pop() else { break None };
            if entry.conn.is_closed() || now.saturating_duration_since(entry.since) >= self.idle_timeout {
                continue;
            }
            if entry.conn.is_ready() {
                break Some(entry.conn);
            }
            busy = Some(entry);
        };
        idle.extend(busy);
        found
    }

    /// Pools `conn` unless it is closed or the instance has enough idle connections; now and
    /// then drops the expired and closed connections of every instance (those of instances
    /// that are gone among them).
    fn put(&self, instance: u64, conn: C) {
        if conn.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut state = self.state.lock();
        if now >= state.next_sweep {
            let timeout = self.idle_timeout;
            state.by_instance.retain(|_, idle| {
                idle.retain(|e| !e.conn.is_closed() && now.saturating_duration_since(e.since) < timeout);
                !idle.is_empty()
            });
            state.next_sweep = now + timeout.min(Duration::from_secs(10));
        }
        let idle = state.by_instance.entry(instance).or_default();
        if idle.len() < self.max_idle {
            idle.push(Idle { conn, since: now });
        }
    }

    #[cfg(test)]
    fn idle_count(&self, instance: u64) -> usize {
        self.state.lock().by_instance.get(&instance).map_or(0, Vec::len)
    }
}

impl Http1Pool {
    fn reuse(self: &Arc<Self>, instance: u64, sender: http1::SendRequest<UpstreamBody>) -> Reuse {
        Reuse { pool: self.clone(), instance, sender }
    }
}

impl Pooled for http1::SendRequest<UpstreamBody> {
    fn is_closed(&self) -> bool {
        http1::SendRequest::is_closed(self)
    }

    fn is_ready(&self) -> bool {
        http1::SendRequest::is_ready(self)
    }
}

/// A connection of the router's own client carries one exchange at a time and is pooled only
/// between them. No task watches it while idle; tokio's I/O driver records anything that
/// arrives on it (see [`RawConn::is_idle_and_open`]), and a checkout or the periodic sweep
/// drops such a connection. One the instance closed after the driver last looked is found out
/// when it is used (the request, safe to repeat, goes on another).
impl Pooled for Box<RawConn> {
    fn is_closed(&self) -> bool {
        !self.is_idle_and_open()
    }

    fn is_ready(&self) -> bool {
        true
    }
}

// === impl Home ===

impl Home {
    /// `conn`'s response has ended and it can carry another exchange.
    pub(crate) fn put(self, conn: Box<RawConn>) {
        self.pool.put(self.instance, conn);
    }
}

// === impl Reuse ===

impl Reuse {
    /// The response body ended cleanly: the connection can carry another request.
    pub(crate) fn put(self) {
        self.pool.put(self.instance, self.sender);
    }
}

// === impl IdHasher ===

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

mod raw;
#[cfg(test)]
mod tests;
