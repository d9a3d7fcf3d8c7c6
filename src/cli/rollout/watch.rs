//! What the router measured during a rollout step: `revision_request_count` read from its
//! `/metrics`, summed for the new revision and for the service's other revisions, and the
//! figures between two readings (requests per second, share of 5xx).

use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sluice_router::metrics::REVISION_REQUEST_COUNT;
use sluice_router::metrics::text::{self, Sample};

/// How long one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest exposition read (a scrape bigger than this is refused, not buffered).
const MAX_SCRAPE_BYTES: usize = 16 << 20;

/// Responses counted so far, all and 5xx.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// All responses.
    pub total: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
}

/// One reading: the new revision's counts and the rest of the service's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The revision being rolled out.
    pub to: Counts,
    /// The service's other revisions.
    pub rest: Counts,
}

/// Reads a router's `/metrics`.
pub struct Scraper {
    url: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
}

// === impl Counts ===

impl Counts {
    /// What was counted since `before` (counters never go back; a router restart resets them,
    /// which reads as nothing new rather than a negative count).
    pub fn since(self, before: Counts) -> Counts {
        Counts { total: self.total.saturating_sub(before.total), errors: self.errors.saturating_sub(before.errors) }
    }

    /// The share of 5xx, 0..=1; None without requests.
    pub fn error_rate(self) -> Option<f64> {
        (self.total > 0).then(|| self.errors as f64 / self.total as f64)
    }

    /// `12.0 req/s, 0.0% 5xx` over `elapsed`.
    pub fn describe(self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = self.error_rate().map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0));
        format!("{:.1} req/s, {rate} 5xx", self.total as f64 / secs)
    }
}

// === impl Reading ===

impl Reading {
    /// From an exposition: `to`'s counts, and those of the other revisions labelled with
    /// service `service` in `ns`.
    pub fn from_samples(samples: &[Sample], ns: &str, service: &str, to: &str) -> Self {
        let mut reading = Reading::default();
        for s in samples.iter().filter(|s| s.name == REVISION_REQUEST_COUNT) {
            let label = |k: &str| s.labels.iter().find(|(lk, _)| lk == k).map(|(_, v)| v.as_str());
            if label("namespace_name") != Some(ns) {
                continue;
            }
            let counts = if label("revision_name") == Some(to) {
                &mut reading.to
            } else if label("service_name") == Some(service) {
                &mut reading.rest
            } else {
                continue;
            };
            // Counters are whole numbers; anything else is not a count to add.
            let n = if s.value.is_finite() && s.value >= 0.0 { s.value as u64 } else { 0 };
            counts.total += n;
            if label("response_code_class") == Some("5xx") {
                counts.errors += n;
            }
        }
        reading
    }

    /// What was counted since `before`.
    pub fn since(self, before: Reading) -> Reading {
        Reading { to: self.to.since(before.to), rest: self.rest.since(before.rest) }
    }
}

// === impl Scraper ===

impl Scraper {
    /// A scraper of `url` (`http://HOST:PORT/metrics`).
    pub fn new(url: String) -> Self {
        Self { url, client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Where it reads.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads the exposition now.
    pub async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let uri: http::Uri = self.url.parse().with_context(|| format!("invalid metrics URL {:?}", self.url))?;
        let get = async {
            let res = self.client.get(uri).await.with_context(|| format!("reading {}", self.url))?;
            if !res.status().is_success() {
                return Err(anyhow!("{} answered {}", self.url, res.status()));
            }
            let body = http_body_util::Limited::new(res.into_body(), MAX_SCRAPE_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow!("reading {}: {e}", self.url))?
                .to_bytes();
            let text = std::str::from_utf8(&body).with_context(|| format!("{} is not UTF-8", self.url))?;
            text::parse(text).with_context(|| format!("{} is not Prometheus text", self.url))
        };
        tokio::time::timeout(SCRAPE_TIMEOUT, get)
            .await
            .map_err(|_| anyhow!("{} did not answer within {SCRAPE_TIMEOUT:?}", self.url))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_splits_the_new_revision_from_the_rest_of_its_service() {
        let exposition = "\
# TYPE revision_request_count counter
revision_request_count{namespace_name=\"default\",service_name=\"shop\",revision_name=\"shop-00002\",response_code_class=\"2xx\"} 8
revision_request_count{namespace_name=\"default\",service_name=\"shop\",revision_name=\"shop-00002\",response_code_class=\"5xx\"} 2
revision_request_count{namespace_name=\"default\",service_name=\"shop\",revision_name=\"shop-00001\",response_code_class=\"2xx\"} 30
revision_request_count{namespace_name=\"default\",service_name=\"other\",revision_name=\"other-00001\",response_code_class=\"5xx\"} 99
revision_request_count{namespace_name=\"prod\",service_name=\"shop\",revision_name=\"shop-00001\",response_code_class=\"2xx\"} 99
";
        let samples = text::parse(exposition).expect("parses");
        let r = Reading::from_samples(&samples, "default", "shop", "shop-00002");
        assert_eq!(r, Reading { to: Counts { total: 10, errors: 2 }, rest: Counts { total: 30, errors: 0 } });
        assert_eq!(r.to.error_rate(), Some(0.2));
        let later = Reading { to: Counts { total: 15, errors: 2 }, ..r };
        assert_eq!(later.since(r).to, Counts { total: 5, errors: 0 });
        assert_eq!(Counts::default().error_rate(), None);
        assert_eq!(Counts { total: 10, errors: 1 }.describe(Duration::from_secs(2)), "5.0 req/s, 10.0% 5xx");
    }
}
