//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>) at the router: the `traceparent`
//! a request is forwarded with, and its trace id for the router's own log lines.
//!
//! The router does not take part in the trace (it records no span): a valid `traceparent` is
//! forwarded unchanged, with its `tracestate`. When generation is on (the default) a request
//! without a valid one gets a new one — version `00`, a random 16-byte trace id and 8-byte
//! parent id (never zero), flags `01` (sampled) — and loses any `tracestate`, which belongs
//! to no trace the router forwards (the spec's processing model: a vendor that cannot parse
//! `traceparent` restarts the trace and must not use `tracestate`). Invalid means the spec's
//! rules: version `ff`, not lowercase hex, wrong length (exactly 55 for version `00`; a later
//! version may be longer, its fields followed by `-`), a zero trace or parent id, or more than
//! one `traceparent` header. With generation off the router leaves both headers as the client
//! sent them (none, valid or invalid).
//!
//! Cost: a valid header is read in place (no allocation); a generated one comes from the
//! thread's random generator and is written straight into the head the router's own client
//! sends ([`Settled::write`]), or is one 55-byte `HeaderValue` (one allocation, and a slot in
//! the header map) for a request hyper's client sends.

use std::fmt;
use std::num::NonZeroU128;

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;

/// The `traceparent` header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Length of a version-00 `traceparent`: `00-{32 hex}-{16 hex}-{2 hex}`.
const LEN: usize = 55;

/// A valid `traceparent`'s fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: TraceId,
    /// The caller's span (never zero).
    pub parent_id: u64,
    /// `trace-flags` (bit 0: sampled).
    pub flags: u8,
}

/// Told of each request the router forwarded, once its response head (or the router's own
/// 502/504 for it) is known: how a binary exports a span per request without the router
/// depending on a tracing SDK. None by default ([`RouterConfig::observer`](crate::RouterConfig)).
pub trait Observer: Send + Sync + fmt::Debug {
    /// One forwarded request.
    fn observe(&self, request: &Observed<'_>);
}

/// What an [`Observer`] is told of one request.
#[derive(Debug)]
pub struct Observed<'a> {
    /// Its `traceparent` as forwarded.
    pub parent: TraceParent,
    /// Its method.
    pub method: &'a http::Method,
    /// The revision that answered or failed it.
    pub revision: &'a crate::endpoints::RevisionKey,
    /// The status the client got.
    pub status: http::StatusCode,
    /// From its arrival to the response head.
    pub elapsed: std::time::Duration,
}

/// A trace id: 16 bytes, not all zero; shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(NonZeroU128);

// === impl TraceId ===

impl TraceId {
    /// The id as a number (big-endian reading of its 16 bytes).
    pub fn get(self) -> u128 {
        self.0.get()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// The trace id of a request as the router forwards it: the client's valid `traceparent`
/// (kept, with its `tracestate`), else — when `generate` — a new one inserted into `headers`
/// (replacing an invalid one and dropping `tracestate`). `None` when there is no valid one and
/// `generate` is off; `headers` are then untouched.
pub fn ensure(headers: &mut HeaderMap, generate: bool) -> Option<TraceId> {
    settle(headers, generate).apply(headers)
}

/// What a request's `traceparent` will be when it is forwarded, decided without touching its
/// headers ([`ensure`] in two steps): the router's own client writes a new one straight into
/// the head it sends ([`Settled::write`]), so the header map never grows for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The client's valid one, forwarded as it is (with its `tracestate`).
    Sent(TraceParent),
    /// A new one replaces whatever the client sent, and its `tracestate` is dropped.
    New(TraceParent),
    /// None is valid and none is generated: the headers go as the client sent them.
    Untraced,
}

/// How `headers`' `traceparent` is settled: see [`ensure`].
pub fn settle(headers: &HeaderMap, generate: bool) -> Settled {
    settle_parent(sent_parent(headers), generate)
}

/// As [`settle`], for a request whose one `traceparent` value is `sent` (None when it has none,
/// or several), already found.
pub fn settle_value(sent: Option<&HeaderValue>, generate: bool) -> Settled {
    settle_parent(sent.and_then(|value| parse_parent(value.as_bytes())), generate)
}

/// As [`settle_value`], from the bytes of the request's one `traceparent` value.
pub(crate) fn settle_bytes(sent: Option<&[u8]>, generate: bool) -> Settled {
    settle_parent(sent.and_then(parse_parent), generate)
}

fn settle_parent(sent: Option<TraceParent>, generate: bool) -> Settled {
    match sent {
        Some(parent) => Settled::Sent(parent),
        None if generate => Settled::New(TraceParent::random(&mut rand::rng())),
        None => Settled::Untraced,
    }
}

impl Settled {
    /// The trace id the request is forwarded with.
    pub fn id(self) -> Option<TraceId> {
        self.parent().map(|p| p.trace_id)
    }

    /// The whole `traceparent` the request is forwarded with.
    pub fn parent(self) -> Option<TraceParent> {
        match self {
            Self::Sent(parent) | Self::New(parent) => Some(parent),
            Self::Untraced => None,
        }
    }

    /// Puts a new `traceparent` into `headers` (replacing any and dropping `tracestate`);
    /// the trace id forwarded.
    pub fn apply(self, headers: &mut HeaderMap) -> Option<TraceId> {
        if let Self::New(parent) = self {
            let value =
                HeaderValue::from_bytes(&parent.encode()).expect("hex digits and dashes are a valid header value");
            headers.insert(&TRACEPARENT, value);
            headers.remove(&TRACESTATE);
        }
        self.id()
    }

    /// True for a header that [`write`](Self::write) replaces: the client's `traceparent` and
    /// `tracestate` when a new one is written.
    pub fn replaces(self, name: &HeaderName) -> bool {
        matches!(self, Self::New(_)) && (name == TRACEPARENT || name == TRACESTATE)
    }

    /// As [`replaces`](Self::replaces), for a field name as sent (any case).
    pub(crate) fn replaces_name(self, name: &[u8]) -> bool {
        matches!(self, Self::New(_))
            && (name.eq_ignore_ascii_case(TRACEPARENT.as_str().as_bytes())
                || name.eq_ignore_ascii_case(TRACESTATE.as_str().as_bytes()))
    }

    /// Writes a new `traceparent` as an HTTP/1.1 header line (nothing otherwise): what
    /// [`apply`](Self::apply) would have put into the headers.
    pub fn write(self, out: &mut Vec<u8>) {
        if let Self::New(parent) = self {
            out.extend_from_slice(b"traceparent: ");
            out.extend_from_slice(&parent.encode());
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl TraceParent {
    /// A new sampled version-00 parent with random non-zero ids.
    pub fn random(rng: &mut impl Rng) -> Self {
        let trace_id = loop {
            if let Some(id) = NonZeroU128::new(rng.random()) {
                break TraceId(id);
            }
        };
        let parent_id = loop {
            let id = rng.random();
            if id != 0 {
                break id;
            }
        };
        Self { trace_id, parent_id, flags: 1 }
    }

    /// As a version-00 `traceparent` value.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..3].copy_from_slice(b"00-");
        put_hex(&mut out[3..35], self.trace_id.get());
        out[35] = b'-';
        put_hex(&mut out[36..52], u128::from(self.parent_id));
        out[52] = b'-';
        put_hex(&mut out[53..], u128::from(self.flags));
        out
    }
}

/// The trace id of the one valid `traceparent` in `headers`, if there is exactly one.
pub fn sent(headers: &HeaderMap) -> Option<TraceId> {
    sent_parent(headers).map(|p| p.trace_id)
}

/// The trace id of a `traceparent` value, if it is valid by the spec (see the module docs).
pub fn parse(value: &[u8]) -> Option<TraceId> {
    parse_parent(value).map(|p| p.trace_id)
}

/// The one valid `traceparent` in `headers`, whole.
pub fn sent_parent(headers: &HeaderMap) -> Option<TraceParent> {
    let mut values = headers.get_all(&TRACEPARENT).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => parse_parent(value.as_bytes()),
        _ => None,
    }
}

/// A `traceparent` value's fields, if it is valid by the spec (see the module docs).
pub fn parse_parent(value: &[u8]) -> Option<TraceParent> {
    if value.len() < LEN {
        return None;
    }
    let version = hex(&value[0..2])?;
    let well_formed = match version {
        0xff => false,
        0 => value.len() == LEN,
        // A later version: parsed as 00 where its fields are, which it may extend after a `-`.
        _ => value.len() == LEN || value[LEN] == b'-',
    };
    if !well_formed || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace = NonZeroU128::new(hex(&value[3..35])?)?;
    let parent = hex(&value[36..52]).filter(|parent| *parent != 0)?;
    let flags = hex(&value[53..55])?;
    Some(TraceParent {
        trace_id: TraceId(trace),
        parent_id: u64::try_from(parent).ok()?,
        flags: u8::try_from(flags).ok()?,
    })
}

/// A new version-00 `traceparent` (sampled) with random non-zero ids, and its trace id.
pub fn generate_traceparent(rng: &mut impl Rng) -> (HeaderValue, TraceId) {
    let parent = TraceParent::random(rng);
    let value = HeaderValue::from_bytes(&parent.encode()).expect("hex digits and dashes are a valid header value");
    (value, parent.trace_id)
}

/// The number written in `digits` (lowercase hex only, at most 32 of them).
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(v))
    })
}

/// Writes the low `out.len() / 2` bytes of `n` into `out` as lowercase hex, most significant
/// first (two digits a byte: `out` has an even length of at most 32).
fn put_hex(out: &mut [u8], n: u128) {
    let bytes = n.to_be_bytes();
    let low = &bytes[bytes.len().saturating_sub(out.len() / 2)..];
    for (pair, byte) in out.chunks_exact_mut(2).zip(low) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
}

/// Each byte's two lowercase hex digits: one load per byte instead of two shifts, two masks
/// and two loads.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
        byte += 1;
    }
    pairs
};

#[cfg(test)]
mod tests;
