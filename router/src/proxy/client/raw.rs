//! The router's own HTTP/1.1 exchange for the commonest request: a `GET` or `HEAD` without a
//! body, to an HTTP/1.1 instance.
//!
//! hyper's client runs each connection as a task of its own and passes every request, response
//! head and body chunk to it and back through channels, waking one task for the other each
//! time. A request with nothing to stream needs none of that: the router writes the head on a
//! pooled connection, reads the response head, and reads the body as the client's connection
//! asks for it ([`RawBody`]), all in the client connection's own task. Requests with a body, and
//! h2c, still go through hyper.
//!
//! What the exchange keeps of HTTP/1.1 (RFC 9112):
//! - Framing (§6.3): no body for a response to `HEAD` or a 204 or 304; `chunked` when it is the
//!   last transfer coding, trailers passed on; to the connection's end for any other transfer
//!   coding or when the response gives no length; `Content-Length` otherwise (repeated equal
//!   values are one, different ones are refused). A response with both a transfer coding and a
//!   length loses the length, and its connection is not reused.
//! - Interim 1xx responses (100, 102, 103) are skipped, as hyper's client does; a 101 answers a
//!   request that asked for no upgrade and is refused.
//! - A connection goes back to the pool only when the response was HTTP/1.1, said nothing of
//!   closing, and its body was read exactly to its end (a byte beyond it breaks the stream).
//! - A pooled connection the instance closed while it sat idle ends before any byte of the
//!   response: the request is sent again on another (both methods are safe to repeat).
//!
//! Bounds: a response head of at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields (hyper's
//! client defaults), a chunk-size line of at most [`MAX_CHUNK_LINE`] bytes, trailers within
//! [`MAX_HEAD`].

use std::io;
use std::mem::MaybeUninit;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::Home;
use crate::error::ExchangeError;
use crate::proxy::headers::{self, Forwarded};
use crate::proxy::runs::{self, Runs};

/// The most header fields a response head may carry.
pub(crate) const MAX_HEADERS: usize = 100;
/// The largest response head (and trailer block) read.
pub(crate) const MAX_HEAD: usize = 8192 + 4096 * 100;
/// The longest chunk-size line (size and extensions).
pub(crate) const MAX_CHUNK_LINE: usize = 4096;
/// How much room a read first asks for.
const READ_SIZE: usize = 8192;
/// The most a read asks for, once reads keep filling what they asked (hyper's own bound).
const MAX_READ: usize = MAX_HEAD;

/// The request the router sends: its head as rewritten for the instance.
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a PathAndQuery,
    pub(crate) fields: Fields<'a>,
    /// The response head goes to the client as it came (the fast lane writes it): kept as
    /// [`PassedHead`] bytes rather than read into a header map, when it is plain enough.
    pub(crate) pass_head: bool,
}

/// A request's header fields as the router sends them.
#[derive(Clone, Copy)]
pub(crate) enum Fields<'a> {
    /// As rewritten in a header map, with the `X-Forwarded-*` headers to write beside it
    /// (the map then still holds what the client sent of them).
    Map { headers: &'a HeaderMap, forwarded: Option<&'a Forwarded> },
    /// Header lines ready to send, `Host` and `X-Forwarded-*` among them (the fast lane's,
    /// see [`crate::proxy::lines`]).
    Lines(&'a [u8]),
}

/// A response head for the client as the instance sent it: its status line (HTTP/1.1, the
/// status's canonical reason) and fields, the hop-by-hop ones left out, without the blank line
/// that ends it; the response's header map is then empty.
#[derive(Debug)]
pub(crate) struct PassedHead {
    /// With room behind the head for the fields the lane adds and a small body, so the lane
    /// writes its response into this buffer rather than a copy.
    pub(crate) bytes: Vec<u8>,
    /// It has a `Date`.
    pub(crate) date: bool,
    /// It has one `Content-Length`, of this value.
    pub(crate) length: Option<u64>,
}

/// An HTTP/1.1 connection to an instance.
#[derive(Debug)]
pub(crate) struct RawConn {
    stream: TcpStream,
    /// Bytes read and not yet consumed (empty between exchanges).
    buf: BytesMut,
    /// The request head as written, kept for its capacity.
    out: Vec<u8>,
    /// How much room the next read asks for.
    read_size: usize,
    /// Where the last response head's fields lie in it.
    spans: [Span; MAX_HEADERS],
}

/// How an exchange ended, up to the response head.
#[allow(
    clippy::large_enum_variant,
    reason = "the response is the common case; boxing it would cost an allocation per request"
)]
pub(crate) enum Exchanged {
    /// The response head, its body still to read on the connection it holds.
    Response(Response<RawBody>),
    /// The connection ended before any byte of a response: the request can go on another.
    Stale(ExchangeError),
    /// The exchange failed.
    Failed(ExchangeError),
}

/// A response body read from its connection as it is polled.
#[derive(Debug)]
pub(crate) struct RawBody {
    /// The connection, until the body has ended (then back in the pool, or closed).
    conn: Option<Box<RawConn>>,
    framing: Framing,
    /// Whether the connection can carry another exchange once the body has ended.
    reusable: bool,
    /// Where the connection goes when it can be reused.
    home: Option<Home>,
    /// The response head, when it is passed to the client as it came.
    passed: Option<PassedHead>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes still to come.
    Length(u64),
    /// `chunked`, at this point of a chunk.
    Chunked(Chunk),
    /// Until the instance closes the connection.
    Eof,
    /// Ended (or failed): nothing more to read.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// In a chunk's data, this many bytes still to come.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailers, or the final CRLF; the buffer has been searched this far
    /// for the blank line that ends them.
    Trailers(usize),
    /// The trailers have been read: the body has ended.
    End,
}

/// What one decoding step of a chunked body gave.
enum Step {
    Frame(Frame<Bytes>),
    /// The body has ended.
    End,
    /// More bytes must be read first.
    More,
}

// === impl RawConn ===

impl RawConn {
    /// A connection around `stream` (boxed: it moves between the pool, the exchange and the
    /// response body, and its buffers and field table are a few hundred bytes).
    pub(crate) fn new(stream: TcpStream) -> Box<Self> {
        Box::new(Self {
            stream,
            buf: BytesMut::new(),
            out: Vec::new(),
            read_size: READ_SIZE,
            spans: [Span::default(); MAX_HEADERS],
        })
    }

    /// Sends `req` and reads the response head. `home` takes the connection back once the
    /// response body has ended, if the connection can carry another exchange.
    pub(crate) async fn exchange(
        mut self: Box<Self>,
        req: &RequestHead<'_>,
        authority: &Authority,
        home: Home,
    ) -> Exchanged {
        let mut out = std::mem::take(&mut self.out);
        encode(&mut out, req, authority);
        let written = self.stream.write_all(&out).await;
        out.clear();
        self.out = out;
        if let Err(e) = written {
            return Exchanged::Stale(ExchangeError::Io(e));
        }
        let mut received = false;
        loop {
            let (head, parsed) = match self.read_head(&mut received).await {
                Ok(read) => read,
                Err(e) if received => return Exchanged::Failed(e),
                Err(e) => return Exchanged::Stale(e),
            };
            let Parsed { status, version, fields } = parsed;
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Exchanged::Failed(ExchangeError::Malformed(
                    "101 Switching Protocols to a request without an upgrade",
                ));
            }
            if status.is_informational() {
                continue;
            }
            if req.pass_head
                && let Some((passed, framing, close)) = pass_head(&head, status, req.method, &self.spans[..fields])
            {
                let reusable = version == Version::HTTP_11 && framing != Framing::Eof && !close;
                let mut body = RawBody { conn: Some(self), framing, reusable, home: Some(home), passed: Some(passed) };
                if framing == Framing::Length(0) {
                    body.finish();
                }
                let mut res = Response::new(body);
                *res.status_mut() = status;
                *res.version_mut() = version;
                return Exchanged::Response(res);
            }
            let (mut headers, noted) = match header_map(&head, &self.spans[..fields]) {
                Ok(read) => read,
                Err(e) => return Exchanged::Failed(e),
            };
            let (framing, length_dropped) = match framing(req.method, status, &headers, noted) {
                Ok(framing) => framing,
                Err(e) => return Exchanged::Failed(e),
            };
            if length_dropped {
                headers.remove(CONTENT_LENGTH);
            }
            let reusable = version == Version::HTTP_11
                && !length_dropped
                && framing != Framing::Eof
                && !(noted.connection && headers::says_close(&headers));
            let mut body = RawBody { conn: Some(self), framing, reusable, home: Some(home), passed: None };
            if framing == Framing::Length(0) {
                body.finish();
            }
            let mut res = Response::new(body);
            *res.status_mut() = status;
            *res.version_mut() = version;
            *res.headers_mut() = headers;
            return Exchanged::Response(res);
        }
    }

    /// Reads until a whole response head is buffered and returns it, its header fields'
    /// places in `self.spans`; `received` is set once any byte of a response has come.
    async fn read_head(&mut self, received: &mut bool) -> Result<(Bytes, Parsed), ExchangeError> {
        // How far the buffer has been searched for the blank line that ends a head: a head
        // trickled in byte by byte is searched once, not parsed again on every read.
        let mut searched = 0;
        loop {
            if !self.buf.is_empty() {
                *received = true;
                if !blank_line_since(&self.buf, &mut searched) {
                    if self.buf.len() > MAX_HEAD {
                        return Err(ExchangeError::HeadTooLarge(MAX_HEAD));
                    }
                } else {
                    match scan_head(&self.buf, &mut self.spans)? {
                        Some((len, parsed)) if len <= MAX_HEAD => {
                            return Ok((self.buf.split_to(len).freeze(), parsed));
                        }
                        Some(_) => return Err(ExchangeError::HeadTooLarge(MAX_HEAD)),
                        None if self.buf.len() > MAX_HEAD => return Err(ExchangeError::HeadTooLarge(MAX_HEAD)),
                        None => {}
                    }
                }
            }
            // At most one byte beyond the limit, to tell a head that fits from one that does not.
            let room = MAX_HEAD + 1 - self.buf.len();
            let read = std::future::poll_fn(|cx| self.poll_fill(cx, room)).await.map_err(ExchangeError::Io)?;
            if read == 0 {
                return Err(ExchangeError::Closed(if *received { "head ended" } else { "began" }));
            }
        }
    }

    /// Forgets the socket's read readiness left from the response just read to its end: tokio's
    /// cached flag, no syscall. From here on the flag is set only by what arrives while the
    /// connection is idle (the instance closing it, or sending bytes unasked), which
    /// [`is_idle_and_open`](Self::is_idle_and_open) then sees, as nginx's idle upstream
    /// connections watch their read events. The next exchange's first read waits for the
    /// instance's answer instead of trying a socket that has nothing yet.
    fn settle(&self) {
        let _ = self.stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    }

    /// True while nothing has arrived on the connection since its last response ended: the
    /// instance has neither closed it nor sent bytes unasked (which would be read as the next
    /// request's response). No syscall: tokio's readiness flag, as the I/O driver last set it.
    pub(crate) fn is_idle_and_open(&self) -> bool {
        let mut arrived = false;
        let _ = self.stream.try_io(Interest::READABLE, || {
            arrived = true;
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        !arrived
    }

    /// Whether tokio's readiness flag says something arrived, without clearing it.
    #[cfg(test)]
    pub(crate) fn has_news(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.stream.poll_read_ready(&mut cx).is_ready()
    }

    /// Reads what the socket has, at most `max` bytes, into the buffer; `Ok(0)` at the
    /// connection's end.
    fn poll_fill(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < self.read_size / 8 {
            self.buf.reserve(self.read_size);
        }
        loop {
            match self.stream.try_read_buf(&mut (&mut self.buf).limit(max)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(self.stream.poll_read_ready(cx))?,
                Ok(n) => {
                    // A read that filled what it asked for: a large body; ask for more next time.
                    if n >= self.read_size {
                        self.read_size = (self.read_size * 2).min(MAX_READ);
                    }
                    return Poll::Ready(Ok(n));
                }
                failed => return Poll::Ready(failed),
            }
        }
    }
}

/// Writes the request head: request line, the rewritten headers, `Host` from the instance's
/// authority when the request has none (one that came without `Host` and without an authority
/// to take it from: the router sets it from the request's authority otherwise). Whether there
/// is one is seen while the headers are written, so it comes last then.
fn encode(out: &mut Vec<u8>, req: &RequestHead<'_>, authority: &Authority) {
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let (headers, forwarded) = match req.fields {
        Fields::Map { headers, forwarded } => (headers, forwarded),
        Fields::Lines(lines) => {
            out.extend_from_slice(lines);
            out.extend_from_slice(b"\r\n");
            return;
        }
    };
    let mut seen = headers::Seen::default();
    for (name, value) in headers {
        seen.note(name, value);
        if forwarded.is_some_and(|f| headers::is_forwarded(name, f)) {
            continue;
        }
        runs::line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if seen.host.is_none() {
        runs::line(out, b"host", authority.as_str().as_bytes());
    }
    if let Some(forwarded) = forwarded {
        headers::write_forwarded(out, headers, forwarded, &seen);
    }
    out.extend_from_slice(b"\r\n");
}

/// True when `buf` holds a blank line (`\n\n` or `\n\r\n`, the end of a head or trailer
/// block) that starts at or after `*searched` less two; moves `*searched` to the end, so each
/// byte is looked at a bounded number of times however the block arrives.
pub(crate) fn blank_line_since(buf: &[u8], searched: &mut usize) -> bool {
    let from = searched.saturating_sub(2);
    *searched = buf.len();
    let tail = buf.get(from..).unwrap_or_default();
    // Line ends found by memchr, each checked for the blank line after it: the search stops
    // at the head's end instead of running through the body bytes read with it.
    memchr::memchr_iter(b'\n', tail).any(|i| matches!(tail.get(i + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..])))
}

/// Where a header field's name and value lie in its head (start and end offsets).
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// A response head's status line, and how many header fields it has.
#[derive(Clone, Copy, Debug)]
struct Parsed {
    status: StatusCode,
    version: Version,
    fields: usize,
}

/// The length and status line of the response head at the start of `buf`, once it is all
/// there, with its header fields' places in `spans`. One parse: the fields are taken from the
/// head by their places once it has been split off the buffer.
fn scan_head(buf: &[u8], spans: &mut [Span; MAX_HEADERS]) -> Result<Option<(usize, Parsed)>, ExchangeError> {
    let mut fields = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(e)),
    };
    let status =
        res.code.and_then(|c| StatusCode::from_u16(c).ok()).ok_or(ExchangeError::Malformed("invalid status code"))?;
    let version = match res.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    // The fields are slices of `buf`; their offsets fit u32 (a head is at most MAX_HEAD + 1).
    let base = buf.as_ptr() as usize;
    let place = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        (start as u32, (start + s.len()) as u32)
    };
    for (span, field) in spans.iter_mut().zip(res.headers.iter()) {
        *span = Span { name: place(field.name.as_bytes()), value: place(field.value) };
    }
    Ok(Some((len, Parsed { status, version, fields: res.headers.len() })))
}

/// Which of the headers that frame a response or close its connection a head has, noted as
/// its fields are read: the usual response (one plain `Content-Length`, no `Connection`) is
/// then not looked up again for any of them.
#[derive(Clone, Copy, Debug, Default)]
struct Noted {
    transfer_encoding: bool,
    connection: bool,
    /// How many `Content-Length` fields.
    content_lengths: usize,
    /// The last one's value, when it is plain digits that fit a u64 (anything else, a list
    /// included, is read by [`framing`] the long way).
    plain_length: Option<u64>,
}

impl Noted {
    /// Notes one field (standard names compare by tag, no hashing).
    fn note(&mut self, name: &HeaderName, value: &[u8]) {
        if name == TRANSFER_ENCODING {
            self.transfer_encoding = true;
        } else if name == CONTENT_LENGTH {
            self.content_lengths += 1;
            self.plain_length = plain_digits(value);
        } else if name == CONNECTION {
            self.connection = true;
        }
    }

    /// What `headers` has.
    #[cfg(test)]
    fn of(headers: &HeaderMap) -> Self {
        let mut noted = Self::default();
        headers.iter().for_each(|(name, value)| noted.note(name, value.as_bytes()));
        noted
    }
}

/// `bytes` as a number when they are one or more ASCII digits whose value fits a u64.
fn plain_digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// The header fields at `spans` of `head`, and what they say about framing; the values share
/// `head`'s memory.
fn header_map(head: &Bytes, spans: &[Span]) -> Result<(HeaderMap, Noted), ExchangeError> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    let mut noted = Noted::default();
    for span in spans {
        let (start, end) = (span.name.0 as usize, span.name.1 as usize);
        let name = head
            .get(start..end)
            .and_then(|name| HeaderName::from_bytes(name).ok())
            .ok_or(ExchangeError::Malformed("invalid header name"))?;
        let (start, end) = (span.value.0 as usize, span.value.1 as usize);
        if end > head.len() || start > end {
            return Err(ExchangeError::Malformed("invalid header value"));
        }
        let value = HeaderValue::from_maybe_shared(head.slice(start..end))
            .map_err(|_| ExchangeError::Malformed("invalid header value"))?;
        noted.note(&name, value.as_bytes());
        headers.append(name, value);
    }
    Ok((headers, noted))
}

/// The room a [`PassedHead`] keeps behind the head: a `Date`, `Connection: close` and a body
/// of some hundred bytes.
const PASSED_ROOM: usize = 512;

/// The head at `spans` of `head` as a [`PassedHead`], its body's framing, and whether it said
/// `Connection: close`; None when it needs the long way (a transfer coding, several or unplain
/// `Content-Length`s, a `Connection` naming other fields).
fn pass_head(head: &Bytes, status: StatusCode, method: &Method, spans: &[Span]) -> Option<(PassedHead, Framing, bool)> {
    let mut out = Vec::with_capacity(head.len() + PASSED_ROOM);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let (mut date, mut close, mut lengths, mut length) = (false, false, 0, None);
    let mut runs = Runs::new(head);
    for span in spans {
        let name = head.get(span.name.0 as usize..span.name.1 as usize)?;
        let value = head.get(span.value.0 as usize..span.value.1 as usize)?;
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        match name.len() {
            4 if is("date") => date = true,
            14 if is("content-length") => {
                lengths += 1;
                length = Some(plain_digits(value)?);
            }
            10 if is("connection") => {
                close |= headers::connection_close(value)?;
                continue;
            }
            17 if is("transfer-encoding") => return None,
            _ if headers::is_hop_by_hop_name(name) => continue,
            _ => {}
        }
        runs.push(&mut out, name, value);
    }
    runs.flush(&mut out);
    if lengths > 1 {
        return None;
    }
    let framing = if method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Framing::Length(0)
    } else {
        length.map_or(Framing::Eof, Framing::Length)
    };
    Some((PassedHead { bytes: out, date, length }, framing, close))
}

fn malformed(e: httparse::Error) -> ExchangeError {
    match e {
        httparse::Error::TooManyHeaders => ExchangeError::TooManyHeaders(MAX_HEADERS),
        httparse::Error::HeaderName => ExchangeError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => ExchangeError::Malformed("invalid header value"),
        httparse::Error::Status => ExchangeError::Malformed("invalid status line"),
        httparse::Error::Version => ExchangeError::Malformed("invalid HTTP version"),
        _ => ExchangeError::Malformed("invalid response head"),
    }
}

/// How the body of a response to `method` with `status` and `headers` (which has what
/// `noted` says) is delimited, and whether a `Content-Length` beside a transfer coding must be
/// dropped (RFC 9112 §6.3).
fn framing(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    noted: Noted,
) -> Result<(Framing, bool), ExchangeError> {
    if method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Length(0), false));
    }
    if noted.transfer_encoding {
        let last = headers.get_all(TRANSFER_ENCODING).iter().flat_map(headers::tokens).last();
        let chunked = last.is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let framing = if chunked { Framing::Chunked(Chunk::Size) } else { Framing::Eof };
        return Ok((framing, noted.content_lengths > 0));
    }
    match (noted.content_lengths, noted.plain_length) {
        (0, _) => return Ok((Framing::Eof, false)),
        (1, Some(n)) => return Ok((Framing::Length(n), false)),
        _ => {}
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| ExchangeError::Malformed("invalid Content-Length"))?;
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ExchangeError::Malformed("invalid Content-Length"));
            }
            let n: u64 = item.parse().map_err(|_| ExchangeError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ExchangeError::Malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok((length.map_or(Framing::Eof, Framing::Length), false))
}

// === impl RawBody ===

impl RawBody {
    /// The next frame of the body, reading from the connection when nothing is buffered.
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match decode(&mut self.framing, &mut conn.buf) {
                Ok(Step::Frame(frame)) => {
                    if self.framing.ended() {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(Step::End) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(e) => {
                    self.fail();
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let filled = ready!(conn.poll_fill(cx, MAX_READ));
            match filled {
                Ok(0) if self.framing == Framing::Eof => {
                    self.fail();
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    self.fail();
                    return Poll::Ready(Some(Err(ExchangeError::Closed("body ended"))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.fail();
                    return Poll::Ready(Some(Err(ExchangeError::Io(e))));
                }
            }
        }
    }

    /// The response head as it came, when it is passed to the client that way (once).
    pub(crate) fn take_passed_head(&mut self) -> Option<PassedHead> {
        self.passed.take()
    }

    /// True once the body has ended.
    pub(crate) fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// The body has ended: the connection goes home if it can carry another exchange.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        let Some(conn) = self.conn.take() else { return };
        // A byte beyond the body's end means the stream is out of step: never reuse it.
        if self.reusable
            && conn.buf.is_empty()
            && let Some(home) = self.home.take()
        {
            conn.settle();
            home.put(conn);
        }
    }

    /// The body failed, or ended with its connection: the connection closes.
    fn fail(&mut self) {
        self.framing = Framing::Done;
        self.conn = None;
    }
}

// === impl Framing ===

impl Framing {
    /// True when the last frame has been decoded (the connection can go home).
    fn ended(self) -> bool {
        matches!(self, Self::Length(0) | Self::Chunked(Chunk::End) | Self::Done)
    }
}

/// Decodes one step of the body from what is buffered.
fn decode(framing: &mut Framing, buf: &mut BytesMut) -> Result<Step, ExchangeError> {
    loop {
        let chunk = match framing {
            Framing::Done | Framing::Length(0) | Framing::Chunked(Chunk::End) => return Ok(Step::End),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                return Ok(Step::Frame(Frame::data(buf.split_to(n).freeze())));
            }
            Framing::Eof if buf.is_empty() => return Ok(Step::More),
            Framing::Eof => return Ok(Step::Frame(Frame::data(buf.split().freeze()))),
            Framing::Chunked(chunk) => chunk,
        };
        match chunk {
            Chunk::Size => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, size))) => {
                    buf.advance(used);
                    *chunk = if size == 0 { Chunk::Trailers(0) } else { Chunk::Data(size) };
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                    return Err(ExchangeError::Malformed("chunk-size line too long"));
                }
                Ok(httparse::Status::Partial) => return Ok(Step::More),
                Err(_) => return Err(ExchangeError::Malformed("invalid chunk size")),
            },
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                if *left == 0 {
                    *chunk = Chunk::DataEnd;
                }
                return Ok(Step::Frame(Frame::data(buf.split_to(n).freeze())));
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Step::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ExchangeError::Malformed("chunk data not followed by CRLF"));
                }
                buf.advance(2);
                *chunk = Chunk::Size;
            }
            Chunk::Trailers(searched) => {
                if buf.starts_with(b"\r\n") {
                    buf.advance(2);
                    *chunk = Chunk::End;
                    return Ok(Step::End);
                }
                if buf.len() < 2 {
                    return Ok(Step::More);
                }
                // Parsed only once the block can be whole: a block trickled in byte by byte is
                // searched once, not parsed again on every read.
                if !blank_line_since(buf, searched) {
                    if buf.len() > MAX_HEAD {
                        return Err(ExchangeError::HeadTooLarge(MAX_HEAD));
                    }
                    return Ok(Step::More);
                }
                let Some((used, trailers)) = parse_trailers(buf)? else {
                    return Ok(Step::More);
                };
                buf.advance(used);
                *chunk = Chunk::End;
                return Ok(Step::Frame(Frame::trailers(trailers)));
            }
            Chunk::End => return Ok(Step::End),
        }
    }
}

/// The trailer block at the start of `buf` and its length, once it is all there.
fn parse_trailers(buf: &[u8]) -> Result<Option<(usize, HeaderMap)>, ExchangeError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete((used, fields))) => {
            let mut trailers = HeaderMap::with_capacity(fields.len());
            for field in fields {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| ExchangeError::Malformed("invalid trailer name"))?;
                let value = HeaderValue::from_bytes(field.value)
                    .map_err(|_| ExchangeError::Malformed("invalid trailer value"))?;
                trailers.append(name, value);
            }
            Ok(Some((used, trailers)))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(ExchangeError::HeadTooLarge(MAX_HEAD)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ExchangeError::TooManyHeaders(MAX_HEADERS)),
        Err(_) => Err(ExchangeError::Malformed("invalid trailers")),
    }
}

#[cfg(test)]
mod tests;
