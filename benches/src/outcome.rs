//! What one run of load against one target measured: responses by status, errors by kind,
//! latency from the intended send time (and, open loop, from the actual one), throughput, and
//! CPU time per request of the processes watched.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::latency::{Latencies, Percentiles};

/// Why a request got no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection or the HTTP handshake failed.
    Connect,
    /// The connection broke while the request was sent or its response read.
    Io,
    /// No response by the end of the run's grace period (or the request timeout).
    Timeout,
}

/// Counts and distributions gathered by one generator thread or a whole run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Latency from the intended send time (closed loop: the actual one).
    pub latency: Latencies,
    /// Latency from the actual send time (open loop only; equal to `latency` closed loop).
    pub service: Latencies,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
}

/// The result of one run against one target.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The target's name.
    pub target: String,
    /// What was counted.
    pub tally: Tally,
    /// The length of the measured window (warm-up excluded).
    pub elapsed: Duration,
    /// CPU time per response of each watched process, in microseconds, by name.
    pub cpu_us_per_request: BTreeMap<String, f64>,
}

/// The machine-readable summary of an [`Outcome`] (`--json`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// The target's name.
    pub target: String,
    /// Responses received in the measured window (any status).
    pub requests: u64,
    /// Responses per second.
    pub rps: f64,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Latency from the intended send time, µs.
    pub latency_us: Percentiles,
    /// Latency from the actual send time, µs (differs from `latency_us` in open loop only).
    pub service_time_us: Percentiles,
    /// Responses by status code (as strings, for JSON).
    pub statuses: BTreeMap<String, u64>,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// CPU µs per response of each watched process.
    pub cpu_us_per_request: BTreeMap<String, f64>,
}

// === impl Tally ===

impl Tally {
    /// Counts one response.
    pub fn response(&mut self, status: u16, latency: Duration, service: Duration) {
        *self.statuses.entry(status).or_default() += 1;
        self.latency.record(latency);
        self.service.record(service);
    }

    /// Counts one failed request.
    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Adds another tally's counts.
    pub fn merge(&mut self, other: &Tally) {
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        for (k, n) in &other.errors {
            *self.errors.entry(*k).or_default() += n;
        }
    }

    /// Responses of any status.
    pub fn responses(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Responses whose status was not 2xx.
    pub fn non_2xx(&self) -> u64 {
        self.statuses.iter().filter(|(s, _)| !(200..300).contains(*s)).map(|(_, n)| n).sum()
    }

    /// Failed requests of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

// === impl Outcome ===

impl Outcome {
    /// Responses per second over the measured window.
    pub fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.tally.responses() as f64 / secs } else { 0.0 }
    }

    /// The summary `--json` prints.
    pub fn summary(&self) -> Summary {
        Summary {
            target: self.target.clone(),
            requests: self.tally.responses(),
            rps: self.rps(),
            seconds: self.elapsed.as_secs_f64(),
            latency_us: self.tally.latency.percentiles(),
            service_time_us: self.tally.service.percentiles(),
            statuses: self.tally.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            non_2xx: self.tally.non_2xx(),
            errors: self.tally.errors.clone(),
            cpu_us_per_request: self.cpu_us_per_request.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_and_error_is_counted_and_merged() {
        let d = Duration::from_micros(10);
        let mut a = Tally::default();
        a.response(200, d, d);
        a.response(404, d, d);
        a.error(ErrorKind::Connect);
        let mut b = Tally::default();
        b.response(200, d, d);
        b.response(503, d, d);
        b.error(ErrorKind::Connect);
        b.error(ErrorKind::Timeout);
        a.merge(&b);
        assert_eq!(a.statuses, BTreeMap::from([(200, 2), (404, 1), (503, 1)]));
        assert_eq!((a.responses(), a.non_2xx(), a.errors_total()), (4, 2, 3));
        assert_eq!(a.errors[&ErrorKind::Connect], 2);
        let o = Outcome {
            target: "t".into(),
            tally: a,
            elapsed: Duration::from_secs(2),
            cpu_us_per_request: BTreeMap::new(),
        };
        let s = serde_json::to_value(o.summary()).expect("json");
        assert_eq!(s["rps"], 2.0);
        assert_eq!(s["statuses"]["503"], 1);
        assert_eq!(s["errors"]["connect"], 2);
        assert_eq!(s["non_2xx"], 2);
    }
}
