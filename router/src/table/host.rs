//! Host keys: how a `Host` header or `:authority` becomes the key the table is indexed by
//! (lowercase, no port, no trailing dot), without allocating on the hot path.

/// Longest host normalized on the stack; DNS names are at most 253 bytes.
const STACK_HOST: usize = 256;

/// The host part of `raw` (a `Host` header value or URI authority): the port and a trailing
/// dot removed, case unchanged. IPv6 literals keep their brackets.
pub(crate) fn strip(raw: &str) -> &str {
    let host = match raw.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(end) => &raw[..end + 2],
            None => raw,
        },
        None => match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        },
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Calls `f` with the table key for `raw`: [`strip`]ped and ASCII-lowercased. Allocates only
/// for a host that has uppercase letters and is longer than any DNS name.
pub(crate) fn with_key<R>(raw: &str, f: impl FnOnce(&str) -> R) -> R {
    let host = strip(raw);
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(host);
    }
    let mut buf = [0u8; STACK_HOST];
    match buf.get_mut(..host.len()) {
        Some(lower) => {
            lower.copy_from_slice(host.as_bytes());
            lower.make_ascii_lowercase();
            // ASCII case changes keep UTF-8 valid; the fallback only satisfies the type.
            f(std::str::from_utf8(lower).unwrap_or(host))
        }
        None => f(&host.to_ascii_lowercase()),
    }
}

/// The key for a configured host: lowercase, no trailing dot. None when empty.
pub(crate) fn config_key(host: &str) -> Option<Box<str>> {
    let host = host.trim();
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        with_key(raw, str::to_string)
    }

    #[test]
    fn ports_and_trailing_dots_are_stripped() {
        assert_eq!(key("hello.default.localhost:8080"), "hello.default.localhost");
        assert_eq!(key("hello.default.localhost."), "hello.default.localhost");
        assert_eq!(key("hello.default.localhost.:80"), "hello.default.localhost");
        assert_eq!(key("hello.default"), "hello.default");
    }

    #[test]
    fn case_is_folded() {
        assert_eq!(key("Hello.Default.LOCALHOST:80"), "hello.default.localhost");
        let long = format!("{}.example", "A".repeat(300));
        assert_eq!(key(&long), long.to_ascii_lowercase(), "longer than the stack buffer");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets() {
        assert_eq!(key("[::1]:8080"), "[::1]");
        assert_eq!(key("[::1]"), "[::1]");
        assert_eq!(key("[::1"), "[::1", "malformed stays as is and will not match");
    }

    #[test]
    fn a_non_numeric_port_is_not_a_port() {
        assert_eq!(key("a:b"), "a:b");
    }

    #[test]
    fn configured_hosts_are_normalized() {
        assert_eq!(config_key(" Hello.Default. ").as_deref(), Some("hello.default"));
        assert_eq!(config_key(""), None);
        assert_eq!(config_key("."), None);
    }
}
