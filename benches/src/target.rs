//! What is measured: a name, an `http://` URL, the Host header sent there, and the protocol.

use std::net::{SocketAddr, ToSocketAddrs};

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Uri};

/// A target spec or URL that cannot be used; the message names the part at fault.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL does not parse, or is not `http://host:port/path`.
    #[error("target {name:?}: {reason}")]
    Url {
        /// The target's name.
        name: String,
        /// What is wrong with its URL.
        reason: String,
    },
    /// `name=url[,host=H]` was malformed.
    #[error("target spec {spec:?}: {reason} (expected NAME=URL[,host=HOST])")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The HTTP version spoken to a target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 over cleartext TCP with prior knowledge (h2c).
    H2c,
}

/// One target of a run.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its name in reports.
    pub name: String,
    /// The URL as given.
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The Host header (HTTP/1.1) or `:authority` (h2c) sent.
    pub host: HeaderValue,
    /// The path and query requested.
    pub path: PathAndQuery,
    /// HTTP/1.1 or h2c.
    pub protocol: Protocol,
}

// === impl Target ===

impl Target {
    /// A target from an `http://` URL; `host` overrides the Host header (default: the URL's
    /// authority).
    pub fn new(name: &str, url: &str, host: Option<&str>, protocol: Protocol) -> Result<Self, TargetError> {
        let bad = |reason: String| TargetError::Url { name: name.to_string(), reason };
        let uri: Uri = url.parse().map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(bad(format!("{url:?}: only http:// is supported (h2c with --h2c)")));
        }
        let authority = uri.authority().ok_or_else(|| bad(format!("{url:?} has no host")))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host(), port)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve {}: {e}", authority.host())))?
            .next()
            .ok_or_else(|| bad(format!("{} resolves to no address", authority.host())))?;
        let host = host.unwrap_or(authority.as_str());
        let host = HeaderValue::from_str(host).map_err(|_| bad(format!("host {host:?} is not a header value")))?;
        let path = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Self { name: name.to_string(), url: url.to_string(), addr, host, path, protocol })
    }

    /// A target from `NAME=URL[,host=HOST]`.
    pub fn parse_spec(spec: &str, protocol: Protocol) -> Result<Self, TargetError> {
        let bad = |reason: &str| TargetError::Spec { spec: spec.to_string(), reason: reason.to_string() };
        let (name, rest) = spec.split_once('=').ok_or_else(|| bad("no '='"))?;
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        let mut parts = rest.split(',');
        let url = parts.next().filter(|u| !u.is_empty()).ok_or_else(|| bad("the URL is empty"))?;
        let mut host = None;
        for part in parts {
            match part.split_once('=') {
                Some(("host", h)) if !h.is_empty() => host = Some(h),
                _ => return Err(bad(&format!("unknown option {part:?} (only host=HOST)"))),
            }
        }
        Self::new(name, url, host, protocol)
    }

    /// The request URI: origin-form for HTTP/1.1, absolute (carrying `:authority`) for h2c.
    pub fn request_uri(&self) -> Uri {
        let origin = Uri::from(self.path.clone());
        match self.protocol {
            Protocol::Http1 => origin,
            Protocol::H2c => {
                let authority = self.host.to_str().ok().and_then(|h| h.parse::<http::uri::Authority>().ok());
                match authority {
                    Some(a) => Uri::builder()
                        .scheme(Scheme::HTTP)
                        .authority(a)
                        .path_and_query(self.path.clone())
                        .build()
                        .unwrap_or(origin),
                    None => origin,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_the_url_and_an_optional_host() {
        let t = Target::parse_spec("sluice=http://127.0.0.1:8080/x?y=1,host=hello.default.localhost", Protocol::Http1)
            .expect("parses");
        assert_eq!(t.name, "sluice");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.host, "hello.default.localhost");
        assert_eq!(t.path.as_str(), "/x?y=1");
        let direct = Target::parse_spec("direct=http://127.0.0.1:9", Protocol::H2c).expect("parses");
        assert_eq!(direct.host, "127.0.0.1:9");
        assert_eq!(direct.request_uri().to_string(), "http://127.0.0.1:9/");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, needle) in [
            ("http://x", "no '='"),
            ("=http://127.0.0.1:1", "name is empty"),
            ("a=http://127.0.0.1:1,port=3", "unknown option"),
            ("a=https://127.0.0.1:1", "only http://"),
            ("a=", "URL is empty"),
        ] {
            let err = Target::parse_spec(spec, Protocol::Http1).expect_err(spec).to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
