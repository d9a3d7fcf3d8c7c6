//! The fast lane's request forwarded from the client's own header lines.
//!
//! When a request's route needs no more of it than its host (no header or path rules, no
//! plain-HTTP redirect in force), the fields the lane parsed are routed and turned straight into
//! the lines the instance gets, with no header map in between: building one cost more than the
//! routing decision itself. The lines say what the router's rewrite of a map would say
//! ([`super::rewrite`], [`super::headers`]): hop-by-hop fields out (`TE: trailers` kept),
//! `X-Forwarded-For` joined with the client's address, `X-Forwarded-Proto` and
//! `X-Forwarded-Host` set, a new `traceparent` in place of a missing or invalid one (and the
//! client's `tracestate` out then). Field names keep the client's case.

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{Method, Request, Version};

use super::runs::Runs;
use super::{Bodiless, BodilessHead, RouterService, headers};
use crate::table::{HttpProtocol, Protocol};
use crate::trace;

/// How [`RouterService::route_lines`] left a request.
#[allow(
    clippy::large_enum_variant,
    reason = "routed is the common case, once per request; boxing it would cost an allocation"
)]
pub(crate) enum Lined {
    /// Routed and ready to send.
    Routed(Bodiless),
    /// Its route (or the router's settings) needs the request as a header map: try
    /// [`RouterService::route_bodiless`].
    Map,
    /// Not one the lane forwards now (an error answer, a wait for capacity): hyper's.
    Hyper,
}

impl RouterService {
    /// Routes a bodiless `GET` or `HEAD` (`method`) for `target` with header `fields` (name and
    /// value as sent, in order) from its host alone, and makes the lines it is sent with. The
    /// fields are slices of `head` (runs of them are copied from there as they lie, see
    /// [`super::runs`]); any that are not are written out.
    pub(crate) fn route_lines<'f>(
        &self,
        method: Method,
        head: &[u8],
        target: &[u8],
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])> + Clone,
    ) -> Lined {
        let inner = &*self.router.inner;
        let config = &inner.config;
        let (mut count, mut size, mut host, mut parents, mut parent) = (0, 0, None, 0, None);
        for (name, value) in fields.clone() {
            count += 1;
            size += name.len() + value.len() + 4;
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => host = Some(value),
                11 if name.eq_ignore_ascii_case(b"traceparent") => (parents, parent) = (parents + 1, Some(value)),
                _ => {}
            }
        }
        // Beyond the limits: the map path answers 431 with its reason.
        if count > config.max_headers || size > config.max_header_bytes || config.https.is_some() {
            return Lined::Map;
        }
        let Some(host) = host.and_then(|h| std::str::from_utf8(h).ok()) else { return Lined::Map };
        let Ok(path) = PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(target)) else { return Lined::Map };
        let table = inner.table.load();
        // A plain-HTTP policy other than the default is the map path's (it warns about it).
        if table.http_protocol() != HttpProtocol::Enabled {
            return Lined::Map;
        }
        let tag = || {
            let mut tags = fields.clone().filter(|(name, _)| name.eq_ignore_ascii_case(b"knative-serving-tag"));
            tags.next().and_then(|(_, value)| std::str::from_utf8(value).ok())
        };
        let backend = match table.decide_host(host, tag) {
            Ok(Some(resolved)) => resolved.backend,
            Ok(None) => return Lined::Map,
            Err(_) => return Lined::Hyper,
        };
        if backend.target.protocol != Protocol::Http1 {
            return Lined::Hyper;
        }
        let Some(guard) = backend.target.revision.pick() else { return Lined::Hyper };
        let backend = backend.clone();
        drop(table);
        let trace = trace::settle_bytes(if parents == 1 { parent } else { None }, config.generate_traceparent);
        let lines = write_lines(head, fields, host, &self.client.forwarded(trace), size);
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = method;
        parts.version = Version::HTTP_11;
        Lined::Routed(self.bodiless(BodilessHead::Lines(lines), backend, guard, parts, path, trace))
    }
}

/// The header lines for the instance (see the module docs); `size` is what the fields take as
/// sent.
fn write_lines<'f>(
    head: &[u8],
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])> + Clone,
    host: &str,
    forwarded: &headers::Forwarded,
    size: usize,
) -> Vec<u8> {
    let trace = forwarded.trace;
    let mut out = Vec::with_capacity(size + 160);
    let mut runs = Runs::new(head);
    let (mut forwarded_for, mut trailers) = (false, false);
    for (name, value) in fields.clone() {
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        let skip = match name.len() {
            2 if is(b"te") => {
                trailers |= headers::byte_tokens(value).any(|t| t.eq_ignore_ascii_case(b"trailers"));
                true
            }
            15 if is(b"x-forwarded-for") => {
                forwarded_for = true;
                true
            }
            _ => {
                headers::is_hop_by_hop_name(name)
                    || is(b"x-forwarded-host")
                    || is(b"x-forwarded-proto")
                    || trace.replaces_name(name)
            }
        };
        if !skip {
            runs.push(&mut out, name, value);
        }
    }
    runs.flush(&mut out);
    if trailers {
        out.extend_from_slice(b"te: trailers\r\n");
    }
    let sent = fields.filter(|(name, _)| forwarded_for && name.eq_ignore_ascii_case(b"x-forwarded-for"));
    headers::forwarded_lines(&mut out, sent.map(|(_, value)| value), forwarded, std::iter::once(host.as_bytes()));
    out
}

#[cfg(test)]
mod tests;
