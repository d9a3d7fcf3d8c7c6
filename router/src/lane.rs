//! The fast lane: the commonest request, a plain HTTP/1.1 `GET` or `HEAD` without a body,
//! read, routed and answered without hyper's server.
//!
//! hyper's server connection is general: it runs every request through its dispatcher (a
//! state machine that polls the service's boxed future, the request body and the response
//! body in turn), reads into a fresh 8 KiB buffer per request, and encodes the response head
//! from a header map after a round of checks. Under callgrind that machinery cost more than
//! routing and the upstream exchange together. The lane does only what the usual request
//! needs: it reads the head into a buffer of its own and parses it once (`httparse`). When the
//! request's route needs no more than its host, it is routed from there and forwarded as lines
//! made from its own fields ([`RouterService::route_lines`]); otherwise its header map is built
//! from slices of the buffer for [`RouterService::route_bodiless`] (the same routing and
//! upstream exchange hyper's requests get). The lane writes the response itself: the
//! instance's head as it came when it is plain (see `PassedHead`), and the body, the head and a
//! small body in one write.
//!
//! The lane takes a request only when nothing about it needs more than that: HTTP/1.1, `GET`
//! or `HEAD`, an origin-form target, exactly one `Host`, no `Content-Length`,
//! `Transfer-Encoding`, `Expect` or `Upgrade`, a `Connection` of `keep-alive` or `close` only,
//! at most [`MAX_FIELDS`] fields; and the router must be able to forward it at once (see
//! `route_bodiless`). Anything else (an error answer of the router's own, a redirect, a
//! request that must wait for capacity, a malformed or oversized head) is handed to hyper with
//! every byte read so far ([`End::Handoff`]): hyper then serves the connection, as it serves
//! every connection without the lane, until it parks ([`crate::park`]) and the lane takes over
//! again.
//!
//! What it keeps of hyper's server: the header-read deadline (a head must be complete within
//! `header_read_timeout` of the last response's end, however the bytes dribble in), the idle
//! timeout, the router's shutdown (an idle connection closes at once; a request in flight
//! finishes with `Connection: close`), `Date` on responses without one, `Content-Length` or
//! `chunked` framing to the client (no body for `HEAD`, 1xx, 204 and 304), a connection
//! dropped when a response body fails midway (the client sees it cut, never a short body framed
//! as complete), and an exchange dropped when its client closes before the answer. Between
//! requests it holds no buffer at all.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use http_body::{Body, Frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::body::{BodyError, RouterBody};
use crate::config::RouterConfig;
use crate::linger::Lingering;
use crate::park::Watchers;
use crate::proxy::{Bodiless, Lined, RouterService, blank_line_since, connection_close, line};

/// The most header fields a request the lane takes may have (more go to hyper).
pub(crate) const MAX_FIELDS: usize = 64;
/// How much room a read asks for.
const READ_SIZE: usize = 4096;
/// A response's body is copied behind its head, for one write, up to this size; a larger
/// frame is written on its own.
const COALESCE: usize = 16 * 1024;

/// How the lane left the connection.
#[derive(Debug)]
pub(crate) enum End {
    /// Done (the client closed or asked to close, the idle timeout, shutdown): shut the socket
    /// down.
    Closed,
    /// Broken, or the head did not arrive in time: drop the socket.
    Dropped,
    /// A request the lane does not take: hyper serves it from these bytes on.
    Handoff(Bytes),
}

/// Where a header field's name and value lie in the head.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// What the bytes read so far hold.
#[derive(Debug)]
enum Scan {
    /// A head the lane takes: its length, method, target and field count.
    Take { len: usize, method: Method, target: (u32, u32), fields: usize, close: bool },
    /// Not all of a head yet.
    Partial,
    /// A head (or garbage) for hyper.
    Hyper,
}

/// What waiting for the client gave.
enum Waited {
    /// More bytes are in the buffer.
    Read,
    /// The client closed its side.
    Eof,
    /// The read failed.
    Failed,
    /// The deadline passed.
    Late,
    /// The router is shutting down.
    Shutdown,
}

/// A step of writing a response body.
enum Step {
    Frame(Frame<Bytes>),
    /// The body has nothing ready: write what is buffered.
    Flush,
    End,
    Failed(BodyError),
}

/// How the response body is framed for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (`HEAD`, 1xx, 204, 304).
    None,
    /// This many bytes still to send.
    Length(u64),
    Chunked,
}

/// Serves requests on `stream` while the lane takes them; `since` is when the connection was
/// last busy (its deadlines count from then).
pub(crate) async fn serve(
    stream: &mut Lingering<TcpStream>,
    service: &RouterService,
    config: &RouterConfig,
    shutdown: &CancellationToken,
    mut since: Instant,
) -> End {
    let mut buf = BytesMut::new();
    // The connection's one timer and its shutdown watch, kept across requests and polled only
    // when they woke the task; the timer is moved to the current deadline when it fires.
    let timer = tokio::time::sleep_until(deadline(since, config));
    let cancelled = shutdown.cancelled();
    let mut timer = pin!(timer);
    let mut cancelled = pin!(cancelled);
    let mut watchers = Watchers::default();
    loop {
        // Where the search for a head's end resumes: a head that arrives in pieces is parsed
        // again only once a piece could have ended it, so dribbled bytes cost no parse each.
        let mut searched = 0;
        let (routed, head_only, close) = loop {
            // The first bytes are parsed at once (garbage goes to hyper, which answers 400).
            let first = searched == 0;
            if !buf.is_empty() && (blank_line_since(&buf, &mut searched) || first) {
                match take(&mut buf, service) {
                    Taken::Routed(routed, head_only, close) => break (routed, head_only, close),
                    Taken::Request(head, req, close) => {
                        let head_only = req.method() == Method::HEAD;
                        match service.route_bodiless(req) {
                            Some(routed) => break (routed, head_only, close),
                            None => return End::Handoff(rejoin(head, buf)),
                        }
                    }
                    Taken::Hyper(bytes) => return End::Handoff(bytes),
                    Taken::Partial => {}
                }
            }
            if buf.len() >= config.hard_header_bytes() {
                return End::Handoff(buf.freeze());
            }
            let waited = poll_fn(|cx| {
                loop {
                    match stream.get_ref().poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(_)) => return Poll::Ready(Waited::Failed),
                        Poll::Pending => break,
                    }
                    if buf.capacity() - buf.len() < READ_SIZE / 4 {
                        buf.reserve(READ_SIZE);
                    }
                    let room = buf.capacity() - buf.len();
                    match stream.get_ref().try_read_buf(&mut buf) {
                        Ok(0) => return Poll::Ready(Waited::Eof),
                        Ok(n) => {
                            // A read short of the room it had drained the socket: forget the
                            // readiness, as tokio's own `poll_read` does, so the next look
                            // (the watch for the client's going away during the exchange, the
                            // next head) waits for news instead of trying the socket again.
                            if n < room {
                                let drained = || Err::<(), _>(io::ErrorKind::WouldBlock.into());
                                let _ = stream.get_ref().try_io(tokio::io::Interest::READABLE, drained);
                            }
                            return Poll::Ready(Waited::Read);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return Poll::Ready(Waited::Failed),
                    }
                }
                let Some(mut cx) = watchers.woken(cx) else {
                    return Poll::Pending;
                };
                if cancelled.as_mut().poll(&mut cx).is_ready() {
                    return Poll::Ready(Waited::Shutdown);
                }
                if timer.as_mut().poll(&mut cx).is_ready() {
                    return Poll::Ready(Waited::Late);
                }
                Poll::Pending
            })
            .await;
            match waited {
                Waited::Read => {}
                Waited::Eof | Waited::Shutdown if buf.is_empty() => return End::Closed,
                // Set for an earlier wait: the connection has been busy since. Moved only now,
                // so the usual request costs the timer nothing.
                Waited::Late if Instant::now() < deadline(since, config) => {
                    timer.as_mut().reset(deadline(since, config));
                    // A fresh gate polls the timer again, to register it anew.
                    watchers = Watchers::default();
                }
                Waited::Late if buf.is_empty() => {
                    tracing::debug!("idle connection closed");
                    return End::Closed;
                }
                Waited::Late => {
                    tracing::debug!("no request head within the header read timeout");
                    return End::Dropped;
                }
                Waited::Eof | Waited::Shutdown | Waited::Failed => return End::Dropped,
            }
        };
        // One box for the exchange and the answer, freed once the response is written: held in
        // this future, their state (some kilobytes) would stay resident while the connection
        // idles.
        let answered = Box::pin(async {
            // Pinned where it is (tokio's `pin!` moves nothing): the exchange is some
            // kilobytes, and each move of it is a `memcpy`. In a block of its own, so that its
            // place in this future is shared with the response's writing (this future was
            // 3,392 bytes to box and copy per request otherwise, 2,576 so, and 1,616 with the
            // routed request boxed).
            let answer = {
                let exchange = routed.forward();
                tokio::pin!(exchange);
                until_gone(stream, exchange).await
            };
            let Some(Ok(res)) = answer else {
                return Err(io::Error::other("the client closed the connection before the answer"));
            };
            let close = close || shutdown.is_cancelled();
            respond(stream, res, head_only, close).await
        });
        match answered.await {
            Ok(true) => {}
            Ok(false) => return End::Closed,
            Err(e) => {
                tracing::debug!(error = %e, "response not written");
                return End::Dropped;
            }
        }
        since = Instant::now();
        if buf.is_empty() {
            // Nothing read ahead: give the buffer's memory back while the connection waits.
            buf = BytesMut::new();
        }
    }
}

/// Polls `exchange` until it is done, or None once the client has closed the connection: the
/// exchange is dropped then, which frees the instance at once (hyper's server, without
/// half-close support, drops a request whose client closed too). Bytes the client sent ahead
/// (a pipelined request) are left for later, and the watch stops there: its end cannot be seen
/// without reading them.
async fn until_gone<F: Future>(stream: &Lingering<TcpStream>, mut exchange: Pin<&mut F>) -> Option<F::Output> {
    let mut watching = true;
    poll_fn(|cx| {
        if let Poll::Ready(done) = exchange.as_mut().poll(cx) {
            return Poll::Ready(Some(done));
        }
        if watching {
            let mut byte = [0u8; 1];
            let mut peeked = tokio::io::ReadBuf::new(&mut byte);
            match stream.get_ref().poll_peek(cx, &mut peeked) {
                Poll::Ready(Ok(0)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => watching = false,
                // A reset or other failure: the answer has nowhere to go either.
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// When the connection, last busy at `since`, is closed if no complete head has come.
fn deadline(since: Instant, config: &RouterConfig) -> Instant {
    since + config.header_read_timeout.min(config.idle_timeout)
}

/// A request head split off the buffer.
#[allow(
    clippy::large_enum_variant,
    reason = "the request is the common case, taken once per request; boxing it would cost an allocation"
)]
enum Taken {
    /// Routed from its fields as they came (see [`crate::proxy::lines`]); whether it is a
    /// `HEAD`, whether it asked to close.
    Routed(Bodiless, bool, bool),
    /// For the long way: the head's bytes, the request (its header values share them), whether
    /// it asked to close.
    Request(Bytes, Request<()>, bool),
    Partial,
    /// For hyper: every byte read.
    Hyper(Bytes),
}

/// The request at the start of `buf`, when it is complete and the lane takes it: routed from
/// its fields as they came when its route allows, else as a request for
/// [`RouterService::route_bodiless`].
fn take(buf: &mut BytesMut, service: &RouterService) -> Taken {
    let mut spans = [Span::default(); MAX_FIELDS];
    let (len, method, target, fields, close) = match scan(buf, &mut spans) {
        Scan::Take { len, method, target, fields, close } => (len, method, target, fields, close),
        Scan::Partial => return Taken::Partial,
        Scan::Hyper => return Taken::Hyper(std::mem::take(buf).freeze()),
    };
    let range = |(start, end): (u32, u32)| start as usize..end as usize;
    let head_only = method == Method::HEAD;
    let bytes = &buf[..len];
    let pairs = spans[..fields].iter().map(|span| (&bytes[range(span.name)], &bytes[range(span.value)]));
    match service.route_lines(method.clone(), bytes, &bytes[range(target)], pairs) {
        Lined::Routed(routed) => {
            buf.advance(len);
            return Taken::Routed(routed, head_only, close);
        }
        Lined::Hyper => return Taken::Hyper(std::mem::take(buf).freeze()),
        Lined::Map => {}
    }
    let head = buf.split_to(len).freeze();
    match request(&head, method, target, &spans[..fields]) {
        Some(req) => Taken::Request(head, req, close),
        None => Taken::Hyper(rejoin(head, std::mem::take(buf))),
    }
}

/// `head` and the bytes after it, as one.
fn rejoin(head: Bytes, rest: BytesMut) -> Bytes {
    if rest.is_empty() {
        return head;
    }
    let mut all = BytesMut::with_capacity(head.len() + rest.len());
    all.extend_from_slice(&head);
    all.extend_from_slice(&rest);
    all.freeze()
}

/// Parses the head at the start of `buf` once, noting its fields' places in `spans`.
fn scan(buf: &[u8], spans: &mut [Span; MAX_FIELDS]) -> Scan {
    let mut fields = [MaybeUninit::uninit(); MAX_FIELDS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Scan::Partial,
        Err(_) => return Scan::Hyper,
    };
    if req.version != Some(1) {
        return Scan::Hyper;
    }
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Scan::Hyper,
    };
    // The fields are slices of `buf`, whose length hyper's limit bounds far below u32::MAX.
    let base = buf.as_ptr() as usize;
    let place = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        (start as u32, (start + s.len()) as u32)
    };
    let Some(target) = req.path.filter(|p| p.starts_with('/')).map(|p| place(p.as_bytes())) else {
        return Scan::Hyper;
    };
    let (mut hosts, mut close) = (0, false);
    for (span, field) in spans.iter_mut().zip(req.headers.iter()) {
        let name = field.name.as_bytes();
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => hosts += 1,
            6 if name.eq_ignore_ascii_case(b"expect") => return Scan::Hyper,
            7 if name.eq_ignore_ascii_case(b"upgrade") => return Scan::Hyper,
            10 if name.eq_ignore_ascii_case(b"connection") => match connection_close(field.value) {
                Some(closes) => close |= closes,
                None => return Scan::Hyper,
            },
            14 if name.eq_ignore_ascii_case(b"content-length") => return Scan::Hyper,
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => return Scan::Hyper,
            _ => {}
        }
        *span = Span { name: place(name), value: place(field.value) };
    }
    if hosts != 1 {
        return Scan::Hyper;
    }
    Scan::Take { len, method, target, fields: req.headers.len(), close }
}

/// The request whose head is `head`, its header values slices of it; None when a part does
/// not convert (hyper then answers it).
fn request(head: &Bytes, method: Method, target: (u32, u32), spans: &[Span]) -> Option<Request<()>> {
    let range = |(start, end): (u32, u32)| start as usize..end as usize;
    let path = PathAndQuery::from_maybe_shared(head.slice(range(target))).ok()?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for span in spans {
        let name = HeaderName::from_bytes(head.get(range(span.name))?).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(range(span.value))).ok()?;
        headers.append(name, value);
    }
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = Uri::from(path);
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Some(req)
}

/// Writes `res` to the client: its head (with `Date` when it has none, its framing, and
/// `Connection: close` when `close`), then its body. Ok(false) when the connection must close
/// after it; an error when the body failed midway (the connection is then dropped).
async fn respond(
    stream: &mut Lingering<TcpStream>,
    res: http::Response<RouterBody>,
    head_only: bool,
    close: bool,
) -> io::Result<bool> {
    let (parts, mut body) = res.into_parts();
    let close = close || parts.headers.contains_key(CONNECTION);
    let exact = body.size_hint().exact();
    // The passed head's buffer, with room to spare, becomes the response's.
    let (mut out, mut framing) = match body.take_passed_head() {
        Some(passed) => {
            let mut out = passed.bytes;
            let fields = Fields { date: passed.date, length: passed.length, connection: false };
            let framing = end_head(&mut out, parts.status, fields, head_only, exact, close);
            (out, framing)
        }
        None => {
            let mut out = Vec::with_capacity(512);
            let framing = write_head(&mut out, parts.status, &parts.headers, head_only, exact, close);
            (out, framing)
        }
    };
    let mut body = pin!(body);
    loop {
        let step = poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Step::Frame(frame)),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Step::Failed(e)),
            Poll::Ready(None) => Poll::Ready(Step::End),
            Poll::Pending if !out.is_empty() => Poll::Ready(Step::Flush),
            Poll::Pending => Poll::Pending,
        })
        .await;
        match step {
            Step::Frame(frame) => {
                let Ok(data) = frame.into_data() else { continue };
                if let Some(large) = encode(&mut out, &mut framing, data)? {
                    stream.write_all(&out).await?;
                    out.clear();
                    stream.write_all(&large).await?;
                    if framing == Framing::Chunked {
                        out.extend_from_slice(b"\r\n");
                    }
                }
                // As hyper does: a body that says it has ended is not polled again.
                if body.is_end_stream() {
                    break;
                }
            }
            Step::Flush => {
                stream.write_all(&out).await?;
                out.clear();
            }
            Step::End => break,
            Step::Failed(e) => return Err(io::Error::other(e)),
        }
    }
    match framing {
        Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        Framing::Length(0) | Framing::None => {}
        Framing::Length(_) => return Err(io::Error::other("the response body ended before its Content-Length")),
    }
    if !out.is_empty() {
        stream.write_all(&out).await?;
    }
    Ok(!close)
}

/// What a response head's fields already say, for [`end_head`].
#[derive(Clone, Copy, Debug)]
struct Fields {
    date: bool,
    /// Its one `Content-Length`.
    length: Option<u64>,
    connection: bool,
}

/// Writes the status line and fields of a response into `out`, then [`end_head`].
fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    head_only: bool,
    exact: Option<u64>,
    close: bool,
) -> Framing {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut fields = Fields { date: false, length: None, connection: false };
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            fields.length = std::str::from_utf8(value.as_bytes()).ok().and_then(|v| v.parse::<u64>().ok());
        } else if name == DATE {
            fields.date = true;
        } else if name == CONNECTION {
            fields.connection = true;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    end_head(out, status, fields, head_only, exact, close)
}

/// Ends a response head whose status line and `fields` are in `out`: `Date` when it has none,
/// `Connection: close` when `close`, its framing, the blank line. Returns the body's framing:
/// none for `HEAD` (whose fields are kept as given), 1xx, 204 and 304; its `Content-Length`,
/// or the body's `exact` length, or `chunked`.
fn end_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    fields: Fields,
    head_only: bool,
    exact: Option<u64>,
    close: bool,
) -> Framing {
    if !fields.date {
        date::with(|date| line(out, b"date", date));
    }
    if close && !fields.connection {
        line(out, b"connection", b"close");
    }
    let no_body = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::None
    } else if let Some(n) = fields.length {
        Framing::Length(n)
    } else if let Some(n) = exact {
        line(out, b"content-length", n.to_string().as_bytes());
        Framing::Length(n)
    } else {
        line(out, b"transfer-encoding", b"chunked");
        Framing::Chunked
    };
    out.extend_from_slice(b"\r\n");
    framing
}

/// Frames `data` into `out`; a large frame is given back to be written on its own (after
/// `out`), its framing already in `out`.
fn encode(out: &mut Vec<u8>, framing: &mut Framing, data: Bytes) -> io::Result<Option<Bytes>> {
    if data.is_empty() {
        return Ok(None);
    }
    match framing {
        Framing::None => return Ok(None),
        Framing::Length(left) => {
            let n = data.len() as u64;
            if n > *left {
                return Err(io::Error::other("the response body is longer than its Content-Length"));
            }
            *left -= n;
        }
        Framing::Chunked => out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes()),
    }
    if out.len() + data.len() > COALESCE {
        // A chunk's CRLF goes into `out` once the data is written.
        return Ok(Some(data));
    }
    out.extend_from_slice(&data);
    if *framing == Framing::Chunked {
        out.extend_from_slice(b"\r\n");
    }
    Ok(None)
}

/// `Date` values, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    /// Calls `f` with the current time as an HTTP date.
    #[allow(
        clippy::disallowed_methods,
        reason = "an HTTP `Date` is wall-clock time; it is only read for a response without one, and formatted once a second"
    )]
    pub(super) fn with<R>(f: impl FnOnce(&[u8]) -> R) -> R {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != second || cached.1.is_empty() {
                *cached = (second, httpdate::fmt_http_date(now));
            }
            f(cached.1.as_bytes())
        })
    }
}

#[cfg(test)]
mod tests;
