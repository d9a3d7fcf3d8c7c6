//! One access-log line: a JSON object (strings escaped by `serde_json`) ending in `\n`, with
//! these fields, `null` where they do not apply:
//!
//! - `time`: when the request arrived, RFC 3339 in UTC with milliseconds;
//! - `host` (as the client gave it, port included), `method`, `path` (with its query; cut at
//!   [`MAX_PATH`] bytes), `protocol` (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2`);
//! - `status` (null when the client went away before any response), `duration_ms` (arrival to
//!   the end of the response body, to the microsecond);
//! - `revision` (`namespace/name`) the request was routed to, `instance` (`ip:port`) that
//!   answered, `rule` or `tag` that picked the revision (both null for the default split);
//! - `bytes_in` (request body bytes read from the client), `bytes_out` (response body bytes
//!   sent to it; a body cut short counts what passed);
//! - `trace_id`: the 32 hex digits of the `traceparent` the request was forwarded with (the
//!   client's, for a request never forwarded), null when absent or invalid;
//! - `reason`: why the router answered itself (its error text: unknown host, 502, 503, 504…),
//!   why the body was cut, or that the client went away; null for a complete instance answer.

use std::io::Write;

use http::{HeaderValue, Version};
use serde::Serialize;

use super::Record;
use crate::table::ChoiceKind;

/// The longest path (with query) logged, in bytes; longer ones are cut at a character
/// boundary.
pub const MAX_PATH: usize = 2048;

/// The longest host logged, in bytes.
pub const MAX_HOST: usize = 512;

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    host: Option<&'a str>,
    method: &'a str,
    path: Option<&'a str>,
    protocol: &'static str,
    status: Option<u16>,
    duration_ms: f64,
    revision: Option<String>,
    instance: Option<String>,
    rule: Option<&'a str>,
    tag: Option<&'a str>,
    bytes_in: u64,
    bytes_out: u64,
    trace_id: Option<String>,
    reason: Option<&'a str>,
}

/// Writes the line of `record`, newline included.
pub(super) fn write(out: &mut impl Write, record: &Record) -> std::io::Result<()> {
    let host = record.host.as_ref().map(|h| capped(text(h), MAX_HOST));
    let path = record.path.as_ref().map(|p| capped(p.as_str(), MAX_PATH));
    let choice = record.backend.as_ref().and_then(|b| b.choice.as_ref());
    let picked = |kind| choice.filter(|c| c.kind == kind).map(|c| &*c.name);
    #[allow(clippy::cast_precision_loss)]
    let duration_ms = record.duration.as_micros() as f64 / 1000.0;
    let line = Line {
        time: time(arrival(record)),
        host,
        method: record.method.as_str(),
        path,
        protocol: protocol(record.version),
        status: record.status,
        duration_ms,
        revision: record.backend.as_ref().map(|b| b.target.revision.key.to_string()),
        instance: record.instance.map(|a| a.to_string()),
        rule: picked(ChoiceKind::Rule),
        tag: picked(ChoiceKind::Tag),
        bytes_in: record.bytes_in.get(),
        bytes_out: record.bytes_out,
        trace_id: record.trace.map(|t| t.to_string()),
        reason: record.reason.as_deref(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// When `record`'s request arrived on the wall clock: the writer reads both clocks now (never
/// the request path) and goes back by the time since its arrival on the monotonic clock.
#[allow(clippy::disallowed_methods)]
fn arrival(record: &Record) -> std::time::SystemTime {
    let since = std::time::Instant::now().saturating_duration_since(record.arrived.into_std());
    let now = std::time::SystemTime::now();
    now.checked_sub(since).unwrap_or(now)
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2026-12-01T03:04:05.678Z`.
fn time(t: std::time::SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP",
    }
}

/// A header value as text (a value with bytes beyond ASCII is shown as far as it is valid).
fn text(v: &HeaderValue) -> &str {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&v.as_bytes()[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn capped(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn parent(v: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert("traceparent", HeaderValue::from_str(v).expect("value"));
        crate::trace::sent(&h).map(|t| t.to_string())
    }

    #[test]
    fn only_a_valid_traceparent_gives_a_trace_id() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(parent(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(), Some(id));
        assert_eq!(parent(&format!("01-{id}-00f067aa0ba902b7-01-later")).as_deref(), Some(id), "a later version");
        for bad in [
            format!("00-{id}-00f067aa0ba902b7-01-x"),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{id}-0000000000000000-01"),
            format!("00-{id}-00f067aa0ba902b7"),
            format!("00_{id}-00f067aa0ba902b7-01"),
            "".to_string(),
        ] {
            assert_eq!(parent(&bad), None, "{bad}");
        }
        let mut two = HeaderMap::new();
        two.append("traceparent", HeaderValue::from_str(&format!("00-{id}-00f067aa0ba902b7-01")).expect("v"));
        two.append("traceparent", HeaderValue::from_str(&format!("00-{id}-00f067aa0ba902b7-01")).expect("v"));
        assert_eq!(crate::trace::sent(&two), None, "two headers");
    }

    #[test]
    fn times_are_utc_with_milliseconds_and_long_values_are_cut_at_characters() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_094_245_678);
        assert_eq!(time(t), "2026-12-01T03:04:05.678Z");
        assert_eq!(time(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(capped("aé", 2), "a");
        assert_eq!(capped("abc", 3), "abc");
    }
}
