//! Knative's `http-protocol` for plain-HTTP requests to service hosts: `Redirected` answers
//! `301 Moved Permanently` with the same URL on the HTTPS listener, `Disabled` answers 404.
//! The route's own setting (Knative's `networking.knative.dev/http-protocol` annotation) wins
//! over the cluster's (`config-network`). Only hosts under the service domain are affected,
//! and only when the router has an HTTPS listener to send clients to; without one the
//! cluster's setting is logged once and ignored.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};

use crate::body::RouterBody;
use crate::config::HttpsListener;
use crate::error::ProxyError;
use crate::table::{HttpProtocol, RoutingTable};

/// The router's plain-HTTP policy.
#[derive(Debug)]
pub(crate) struct Redirect {
    https: Option<HttpsListener>,
    /// `.{domain}`, lowercase.
    suffix: String,
    /// The missing HTTPS listener was logged.
    warned: AtomicBool,
}

// === impl Redirect ===

impl Redirect {
    pub(crate) fn new(https: Option<HttpsListener>) -> Self {
        let suffix = https.as_ref().map(|h| format!(".{}", h.domain.trim_end_matches('.').to_ascii_lowercase()));
        Self { https, suffix: suffix.unwrap_or_default(), warned: AtomicBool::new(false) }
    }

    /// The answer to a plain-HTTP request that must not be proxied, or None to proxy it.
    pub(crate) fn answer<B>(&self, table: &RoutingTable, req: &Request<B>) -> Option<Response<RouterBody>> {
        let Some(https) = &self.https else {
            let protocol = table.http_protocol();
            if protocol != HttpProtocol::Enabled && !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    ?protocol,
                    "config-network asks for http-protocol {protocol:?}, but the router has no HTTPS listener (serve --https); plain HTTP is served as before"
                );
            }
            return None;
        };
        let (host, protocol) = table.served_host(req)?;
        if protocol == HttpProtocol::Enabled || !ends_with_ignore_case(host, &self.suffix) {
            return None;
        }
        match protocol {
            HttpProtocol::Enabled => None,
            HttpProtocol::Disabled => Some(ProxyError::HttpsOnly(host.into()).into_response()),
            HttpProtocol::Redirected => moved(host, https.port, req),
        }
    }
}

/// `301` to `https://host[:port]/path?query`; None if that is not a valid header value.
fn moved<B>(host: &str, port: u16, req: &Request<B>) -> Option<Response<RouterBody>> {
    static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 { format!("https://{host}{path}") } else { format!("https://{host}:{port}{path}") };
    let value = HeaderValue::try_from(location.as_str()).ok()?;
    let mut res = Response::new(RouterBody::reason(Bytes::from(format!("moved to {location}\n"))));
    *res.status_mut() = StatusCode::MOVED_PERMANENTLY;
    res.headers_mut().insert(LOCATION, value);
    res.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN.clone());
    Some(res)
}

fn ends_with_ignore_case(host: &str, suffix: &str) -> bool {
    let (h, s) = (host.as_bytes(), suffix.as_bytes());
    h.len() > s.len() && h[h.len() - s.len()..].eq_ignore_ascii_case(s)
}

#[cfg(test)]
mod tests;
