//! Header rewriting at the proxy boundary: hop-by-hop headers removed in both directions,
//! `X-Forwarded-*` added towards the instance, and the request header limits.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    CONNECTION, Entry, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::trace::{Settled, TRACEPARENT};

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static HTTP: HeaderValue = HeaderValue::from_static("http");
static HTTPS: HeaderValue = HeaderValue::from_static("https");
static TRAILERS: HeaderValue = HeaderValue::from_static("trailers");
/// `Connection: close`.
pub(crate) static CLOSE: HeaderValue = HeaderValue::from_static("close");

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1 and the classic
/// proxy list).
const HOP_BY_HOP: [&HeaderName; 9] = [
    &CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &TE,
    &TRAILER,
    &TRANSFER_ENCODING,
    &UPGRADE,
    &PROXY_AUTHENTICATE,
    &PROXY_AUTHORIZATION,
];

/// Removes hop-by-hop headers from a request, keeping `TE: trailers` (gRPC needs it).
pub(crate) fn strip_request(headers: &mut HeaderMap) {
    if !has_hop_by_hop(headers) {
        return;
    }
    let trailers = headers.get_all(TE).iter().any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case("trailers")));
    strip(headers);
    if trailers {
        headers.insert(TE, TRAILERS.clone());
    }
}

/// Removes hop-by-hop headers from a response.
pub(crate) fn strip_response(headers: &mut HeaderMap) {
    if has_hop_by_hop(headers) {
        strip(headers);
    }
}

/// True when `headers` carry `Connection: close`: the sender closes the connection after this
/// message.
pub(crate) fn says_close(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().flat_map(tokens).any(|t| t.eq_ignore_ascii_case("close"))
}

/// Adds `X-Forwarded-For` (appending `client_ip` to any the client sent), and sets
/// `X-Forwarded-Proto` (`https` when the client came over TLS, else `http`; whatever the
/// client sent is replaced) and `X-Forwarded-Host` (the original `Host`).
pub(crate) fn set_forwarded(headers: &mut HeaderMap, client_ip: &HeaderValue, https: bool) {
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Vacant(slot) => {
            slot.insert(client_ip.clone());
        }
        Entry::Occupied(mut slot) => {
            let joined = join(slot.iter(), client_ip);
            slot.insert(joined);
        }
    }
    headers.insert(&X_FORWARDED_PROTO, if https { HTTPS.clone() } else { HTTP.clone() });
    if let Some(host) = headers.get(HOST).cloned() {
        headers.insert(&X_FORWARDED_HOST, host);
    }
}

/// The `X-Forwarded-*` headers of a request whose head the router's own client writes: they
/// go straight into the bytes sent ([`write_forwarded`]) rather than into its `HeaderMap`, whose
/// table would otherwise grow (a reallocation and a rehash) for three more names.
#[derive(Clone, Debug)]
pub(crate) struct Forwarded {
    /// The client's IP, as an `X-Forwarded-For` value.
    pub(crate) client_ip: HeaderValue,
    /// The client came over TLS.
    pub(crate) https: bool,
    /// Its `traceparent`: a new one is written too (the client's and its `tracestate` left out).
    pub(crate) trace: Settled,
}

/// True for the headers [`write_forwarded`] writes itself (whatever the client sent of them is
/// replaced, or joined into the one line written).
pub(crate) fn is_forwarded(name: &HeaderName, forwarded: &Forwarded) -> bool {
    name == X_FORWARDED_FOR || name == X_FORWARDED_PROTO || name == X_FORWARDED_HOST || forwarded.trace.replaces(name)
}

/// What the headers [`write_forwarded`] depends on hold, noted while a head's headers are
/// written anyway: most requests carry no `X-Forwarded-*`, and then none is looked up.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seen<'a> {
    /// The first `Host` value (as `HeaderMap::get` gives it).
    pub(crate) host: Option<&'a HeaderValue>,
    forwarded_for: bool,
    forwarded_host: bool,
}

impl<'a> Seen<'a> {
    /// Notes one header; standard names compare by tag, custom ones by length first.
    pub(crate) fn note(&mut self, name: &HeaderName, value: &'a HeaderValue) {
        if name == HOST {
            self.host.get_or_insert(value);
        } else if name == X_FORWARDED_FOR {
            self.forwarded_for = true;
        } else if name == X_FORWARDED_HOST {
            self.forwarded_host = true;
        }
    }

    /// What `headers` hold.
    #[cfg(test)]
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        let mut seen = Self::default();
        headers.iter().for_each(|(name, value)| seen.note(name, value));
        seen
    }
}

/// Writes, as HTTP/1.1 header lines, the `X-Forwarded-*` headers [`set_forwarded`] would set
/// on `headers` (of which `seen` tells what they hold): the same names and values.
pub(crate) fn write_forwarded(out: &mut Vec<u8>, headers: &HeaderMap, forwarded: &Forwarded, seen: &Seen<'_>) {
    let sent_for = seen.forwarded_for.then(|| headers.get_all(&X_FORWARDED_FOR));
    // Without a `Host` (the router always gives a request one), what the client sent stays.
    let host = seen.host;
    let sent_host = (host.is_none() && seen.forwarded_host).then(|| headers.get_all(&X_FORWARDED_HOST));
    forwarded_lines(
        out,
        sent_for.iter().flatten().map(HeaderValue::as_bytes),
        forwarded,
        host.into_iter().chain(sent_host.iter().flatten()).map(HeaderValue::as_bytes),
    );
}

/// The `X-Forwarded-*` lines (and a new `traceparent`) as both ways of sending write them:
/// `X-Forwarded-For` with the values the client `sent` and then its own address,
/// `X-Forwarded-Proto`, and an `X-Forwarded-Host` line for each of `hosts`.
pub(crate) fn forwarded_lines<'v>(
    out: &mut Vec<u8>,
    sent: impl Iterator<Item = &'v [u8]>,
    forwarded: &Forwarded,
    hosts: impl Iterator<Item = &'v [u8]>,
) {
    out.extend_from_slice(b"x-forwarded-for: ");
    for value in sent {
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(forwarded.client_ip.as_bytes());
    out.extend_from_slice(if forwarded.https {
        b"\r\nx-forwarded-proto: https\r\n"
    } else {
        b"\r\nx-forwarded-proto: http\r\n"
    });
    for host in hosts {
        // Not `line`: the name and its ": " as one literal are one copy fewer per request
        // (callgrind: 40 instructions).
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host);
        out.extend_from_slice(b"\r\n");
    }
    forwarded.trace.write(out);
}

/// True when `headers` fit `max_headers` and `max_bytes`, as [`scan`] counts them.
#[cfg(test)]
pub(crate) fn within_limits(headers: &HeaderMap, max_headers: usize, max_bytes: usize) -> bool {
    scan(headers, max_headers, max_bytes).is_some()
}

/// One pass over a request's headers: `None` when they do not fit `max_headers` and
/// `max_bytes` (each header's name, value, `": "` and CRLF, as HTTP/1 sends them), else the
/// request's `traceparent` value when it has exactly one (what [`crate::trace::sent_parent`]
/// would look up again).
pub(crate) fn scan(headers: &HeaderMap, max_headers: usize, max_bytes: usize) -> Option<Option<&HeaderValue>> {
    if headers.len() > max_headers {
        return None;
    }
    let (mut bytes, mut traceparent, mut traceparents) = (0, None, 0);
    for (name, value) in headers {
        let name = name.as_str();
        bytes += name.len() + value.len() + 4;
        if name == TRACEPARENT.as_str() {
            traceparent = Some(value);
            traceparents += 1;
        }
    }
    (bytes <= max_bytes).then_some(if traceparents == 1 { traceparent } else { None })
}

/// Most messages carry no hop-by-hop header: one pass comparing names (cheap for standard
/// ones) costs far less than nine hashed removals.
fn has_hop_by_hop(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| HOP_BY_HOP.contains(&name))
}

fn strip(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too. Collected only when a token names
    // something beyond the fixed list (rare), so the usual request allocates nothing.
    let mut listed: Vec<HeaderName> = Vec::new();
    for token in headers.get_all(CONNECTION).iter().flat_map(tokens) {
        let fixed =
            token.eq_ignore_ascii_case("close") || HOP_BY_HOP.iter().any(|h| h.as_str().eq_ignore_ascii_case(token));
        // `Host` stays: the instance must see the host the client asked for.
        if !fixed
            && !token.eq_ignore_ascii_case(HOST.as_str())
            && let Ok(name) = HeaderName::from_bytes(token.as_bytes())
        {
            listed.push(name);
        }
    }
    for name in listed.iter().chain(HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// True for a hop-by-hop field name as sent, in any case: one of [`HOP_BY_HOP`] (names a
/// `Connection` value lists are the caller's, see [`connection_close`]).
pub(crate) fn is_hop_by_hop_name(name: &[u8]) -> bool {
    // The lengths of HOP_BY_HOP's names: most fields are ruled out without a comparison.
    matches!(name.len(), 2 | 7 | 10 | 16 | 17 | 18 | 19)
        && HOP_BY_HOP.iter().any(|known| name.eq_ignore_ascii_case(known.as_str().as_bytes()))
}

/// Whether a `Connection` value (as sent) asks to close, when its tokens are only `close` and
/// `keep-alive`; None when it lists anything else (fields that are then hop-by-hop too, or an
/// upgrade), which only the header-map path handles.
pub(crate) fn connection_close(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for token in byte_tokens(value) {
        if token.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !token.eq_ignore_ascii_case(b"keep-alive") {
            return None;
        }
    }
    Some(close)
}

/// As [`tokens`], for a value as sent.
pub(crate) fn byte_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .filter_map(|t| t.split(|&b| b == b';').next().map(<[u8]>::trim_ascii))
        .filter(|t| !t.is_empty())
}

/// The comma-separated tokens of a header value, trimmed, parameters dropped.
pub(crate) fn tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value.to_str().unwrap_or("").split(',').filter_map(|t| t.split(';').next().map(str::trim)).filter(|t| !t.is_empty())
}

/// `a, b, client_ip` from the values the client sent.
fn join<'a>(sent: impl Iterator<Item = &'a HeaderValue>, client_ip: &'a HeaderValue) -> HeaderValue {
    let mut out = BytesMut::new();
    for value in sent.chain(std::iter::once(client_ip)) {
        if !out.is_empty() {
            out.put_slice(b", ");
        }
        out.put_slice(value.as_bytes());
    }
    let out: Bytes = out.freeze();
    // Valid values joined by ", " are valid; the fallback only satisfies the type.
    HeaderValue::from_maybe_shared(out).unwrap_or_else(|_| client_ip.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header lines of `out` (an HTTP/1.1 header block without its final CRLF), parsed.
    fn lines(out: &[u8]) -> Vec<(String, String)> {
        let text = std::str::from_utf8(out).expect("text");
        text.split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("a header line");
                (n.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn the_forwarded_headers_written_are_those_set_forwarded_sets() {
        let ip = HeaderValue::from_static("10.0.0.9");
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cases: [&[(&str, &str)]; 6] = [
            &[("host", "hello.default:8080")],
            &[("host", "h"), ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8, 9.9.9.9")],
            &[("x-forwarded-proto", "ftp"), ("x-forwarded-host", "spoofed"), ("accept", "*/*")],
            &[],
            &[("host", "h"), ("traceparent", "00-bad"), ("tracestate", "a=b"), ("accept", "*/*")],
            &[("host", "h"), ("traceparent", valid), ("tracestate", "a=b")],
        ];
        let new = Settled::New(crate::trace::TraceParent::random(&mut rand::rng()));
        for pairs in cases {
            for https in [false, true] {
                for generate in [false, true] {
                    // As hyper's client sends it: everything in the header map.
                    let mut set = map(pairs);
                    set_forwarded(&mut set, &ip, https);
                    let trace = match crate::trace::sent_parent(&set) {
                        Some(parent) => Settled::Sent(parent),
                        None if generate => new,
                        None => Settled::Untraced,
                    };
                    trace.apply(&mut set);
                    let mut expected: Vec<(String, String)> =
                        set.iter().map(|(n, v)| (n.to_string(), v.to_str().expect("value").to_string())).collect();
                    // As the router's own client writes it: the client's headers the written
                    // ones replace are left out, then the written ones.
                    let forwarded = Forwarded { client_ip: ip.clone(), https, trace };
                    let sent = map(pairs);
                    let mut written: Vec<(String, String)> = sent
                        .iter()
                        .filter(|(n, _)| !is_forwarded(n, &forwarded))
                        .map(|(n, v)| (n.to_string(), v.to_str().expect("value").to_string()))
                        .collect();
                    let mut out = Vec::new();
                    write_forwarded(&mut out, &sent, &forwarded, &Seen::of(&sent));
                    written.extend(lines(&out));
                    written.sort();
                    expected.sort();
                    assert_eq!(written, expected, "{pairs:?} https={https} generate={generate}");
                }
            }
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Custom-Hop"),
            ("connection", "Upgrade"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eA=="),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-end-to-end", "kept"),
            ("host", "a.b"),
        ]);
        strip_request(&mut h);
        let names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-end-to-end", "host"]);
    }

    #[test]
    fn te_trailers_survives_alone() {
        let mut h = map(&[("te", "trailers, deflate;q=0.5")]);
        strip_request(&mut h);
        assert_eq!(h.get_all(TE).iter().collect::<Vec<_>>(), ["trailers"]);
        let mut h = map(&[("te", "deflate")]);
        strip_request(&mut h);
        assert!(h.get(TE).is_none());
    }

    #[test]
    fn connection_cannot_remove_host() {
        let mut h = map(&[("connection", "host"), ("host", "a.b")]);
        strip_request(&mut h);
        assert_eq!(h[HOST], "a.b");
    }

    #[test]
    fn forwarded_headers_are_set_and_appended() {
        let ip = HeaderValue::from_static("10.0.0.9");
        let mut h =
            map(&[("host", "hello.default:8080"), ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")]);
        set_forwarded(&mut h, &ip, false);
        assert_eq!(h.get_all(&X_FORWARDED_FOR).iter().collect::<Vec<_>>(), ["1.2.3.4, 5.6.7.8, 10.0.0.9"]);
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "hello.default:8080");
        let mut h = map(&[("x-forwarded-proto", "http")]);
        set_forwarded(&mut h, &ip, true);
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.9");
        assert_eq!(h.get_all(&X_FORWARDED_PROTO).iter().collect::<Vec<_>>(), ["https"]);
    }

    #[test]
    fn close_is_found_among_connection_tokens() {
        assert!(says_close(&map(&[("connection", "keep-alive"), ("connection", "Upgrade, Close")])));
        assert!(!says_close(&map(&[("connection", "keep-alive, closed")])));
        assert!(!says_close(&HeaderMap::new()));
    }

    #[test]
    fn limits_count_headers_and_bytes() {
        let h = map(&[("a", "12345")]);
        assert!(within_limits(&h, 1, 10));
        assert!(!within_limits(&h, 1, 9));
        assert!(!within_limits(&h, 0, 100));
    }

    #[test]
    fn the_scan_finds_one_traceparent_and_only_one() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let one = map(&[("host", "a"), ("traceparent", parent), ("x-other", "b")]);
        assert_eq!(scan(&one, 10, 1000).flatten().map(HeaderValue::as_bytes), Some(parent.as_bytes()));
        let two = map(&[("traceparent", parent), ("traceparent", parent)]);
        assert_eq!(scan(&two, 10, 1000), Some(None), "two are none, as sent_parent says");
        assert_eq!(scan(&map(&[("tracestate", "x=1"), ("traceparents", parent)]), 10, 1000), Some(None));
        assert_eq!(scan(&one, 2, 1000), None, "too many headers");
        assert_eq!(scan(&one, 10, 80), None, "too many bytes");
    }

    #[test]
    fn hop_by_hop_names_as_sent_are_the_list_in_any_case() {
        for known in HOP_BY_HOP {
            assert!(is_hop_by_hop_name(known.as_str().as_bytes()), "{known}");
            assert!(is_hop_by_hop_name(known.as_str().to_ascii_uppercase().as_bytes()), "{known}");
        }
        for other in ["host", "user-agent", "tracestate", "x-forwarded-for", "content-length", "t", ""] {
            assert!(!is_hop_by_hop_name(other.as_bytes()), "{other}");
        }
    }
}
