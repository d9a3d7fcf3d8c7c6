//! What `sluice top` shows, computed from two scrapes of `/metrics` and nothing else: the
//! scrape is read into per-revision totals ([`Snapshot`]), two snapshots give the rows
//! ([`rows`]: requests/s and error share from counter deltas, p50/p99 from the latency
//! histogram's bucket deltas), and a family the router does not export stays `None`, shown
//! as `-`, never as a made-up figure. Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_router::metrics::text::Sample;

/// Responses per revision by code (plan: `revision_request_count`).
pub const REQUEST_COUNT: &str = "revision_request_count";
/// Latency histogram per revision, in milliseconds (`_bucket` samples).
pub const LATENCY_BUCKET: &str = "revision_request_latencies_bucket";
/// Requests in flight to a revision.
pub const CONCURRENCY: &str = "revision_request_concurrency";
/// The autoscaler's wanted instances.
pub const DESIRED_PODS: &str = "autoscaler_desired_pods";
/// Instances running.
pub const ACTUAL_PODS: &str = "autoscaler_actual_pods";
/// Instances ready.
pub const READY_PODS: &str = "autoscaler_ready_pods";
/// Concurrency one instance is meant to carry.
pub const TARGET_PER_POD: &str = "autoscaler_target_concurrency_per_pod";
/// The route's default split, per revision.
pub const TRAFFIC_PERCENT: &str = "route_traffic_percent";

/// A revision: namespace, service, revision name (ordered so, for sorting by name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevKey {
    /// `namespace_name`.
    pub namespace: String,
    /// `service_name` (the route's name when only the route names the revision).
    pub service: String,
    /// `revision_name`.
    pub revision: String,
}

/// One revision's figures in one scrape; `None` where the family is absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// All responses counted.
    pub requests: Option<f64>,
    /// 5xx responses counted.
    pub errors: Option<f64>,
    /// Cumulative latency buckets: upper bound (ms, `+Inf` last) and count.
    pub buckets: Option<Vec<(f64, f64)>>,
    /// Requests in flight.
    pub in_flight: Option<f64>,
    /// Desired instances.
    pub desired: Option<f64>,
    /// Actual instances.
    pub actual: Option<f64>,
    /// Ready instances.
    pub ready: Option<f64>,
    /// Target concurrency per instance.
    pub target_per_pod: Option<f64>,
    /// Percent of the route's default split.
    pub traffic: Option<f64>,
    /// Requests the ready instances are meant to carry (target per instance × ready
    /// instances; for a service, its revisions' summed).
    pub capacity: Option<f64>,
}

/// One scrape, by revision and by service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Revisions seen in any family.
    pub revisions: BTreeMap<RevKey, Totals>,
    /// Each service's revisions summed (histograms bucket by bucket), keyed with an empty
    /// revision name.
    pub services: BTreeMap<RevKey, Totals>,
}

/// A row of the table: a revision (or a service's total, its `key.revision` empty) and what
/// happened to it between two scrapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The revision.
    pub key: RevKey,
    /// Requests per second.
    pub rps: Option<f64>,
    /// Share of 5xx among the requests, 0..=1 (None without requests).
    pub error_rate: Option<f64>,
    /// Median latency, ms.
    pub p50: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99: Option<f64>,
    /// Requests in flight now.
    pub in_flight: Option<f64>,
    /// Requests the ready instances are meant to carry: target per instance × ready instances.
    pub capacity: Option<f64>,
    /// Desired instances.
    pub desired: Option<f64>,
    /// Actual instances.
    pub actual: Option<f64>,
    /// Traffic percent.
    pub traffic: Option<f64>,
}

// === impl Row ===

impl Row {
    /// Whether this is a service's total rather than a revision.
    pub fn is_service(&self) -> bool {
        self.key.revision.is_empty()
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// Reads the families `sluice top` shows from a parsed exposition; samples without a
    /// namespace and revision are not a revision's and are skipped.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut snap = Snapshot::default();
        // Routes name revisions without a service; they are matched after the rest.
        let mut traffic = Vec::new();
        for s in samples {
            let label = |k: &str| s.labels.iter().find(|(lk, _)| lk == k).map(|(_, v)| v.as_str());
            let (Some(ns), Some(rev)) = (label("namespace_name"), label("revision_name")) else { continue };
            if s.name == TRAFFIC_PERCENT {
                traffic.push((ns.to_string(), label("route_name").unwrap_or("").to_string(), rev.to_string(), s.value));
                continue;
            }
            let service = label("service_name").unwrap_or("");
            let key = RevKey { namespace: ns.into(), service: service.into(), revision: rev.into() };
            let add = |slot: &mut Option<f64>| *slot = Some(slot.unwrap_or(0.0) + s.value);
            match s.name.as_str() {
                REQUEST_COUNT => {
                    let t = snap.revisions.entry(key).or_default();
                    add(&mut t.requests);
                    let five = label("response_code_class") == Some("5xx")
                        || label("response_code_class").is_none()
                            && label("response_code").is_some_and(|c| c.starts_with('5'));
                    if five {
                        add(&mut t.errors);
                    } else {
                        t.errors.get_or_insert(0.0);
                    }
                }
                LATENCY_BUCKET => {
                    let Some(le) = label("le").and_then(parse_le) else { continue };
                    let t = snap.revisions.entry(key).or_default();
                    let buckets = t.buckets.get_or_insert_with(Vec::new);
                    match buckets.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, n)) => *n += s.value,
                        None => buckets.push((le, s.value)),
                    }
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
                CONCURRENCY => add(&mut snap.revisions.entry(key).or_default().in_flight),
                DESIRED_PODS => add(&mut snap.revisions.entry(key).or_default().desired),
                ACTUAL_PODS => add(&mut snap.revisions.entry(key).or_default().actual),
                READY_PODS => add(&mut snap.revisions.entry(key).or_default().ready),
                TARGET_PER_POD => add(&mut snap.revisions.entry(key).or_default().target_per_pod),
                _ => {}
            }
        }
        for (ns, route, rev, pct) in traffic {
            let found = snap.revisions.iter_mut().find(|(k, _)| k.namespace == ns && k.revision == rev);
            let totals = match found {
                Some((_, t)) => t,
                None => snap.revisions.entry(RevKey { namespace: ns, service: route, revision: rev }).or_default(),
            };
            totals.traffic = Some(totals.traffic.unwrap_or(0.0) + pct);
        }
        for (k, t) in &mut snap.revisions {
            t.capacity = t.target_per_pod.zip(t.ready).map(|(per, n)| per * n);
            let key = RevKey { namespace: k.namespace.clone(), service: k.service.clone(), revision: String::new() };
            snap.services.entry(key).or_default().add(t);
        }
        snap
    }
}

// === impl Totals ===

impl Totals {
    /// Adds another revision's figures (a figure stays None only when both lack it).
    fn add(&mut self, other: &Totals) {
        let sum = |a: &mut Option<f64>, b: Option<f64>| {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0.0) + b);
            }
        };
        sum(&mut self.requests, other.requests);
        sum(&mut self.errors, other.errors);
        sum(&mut self.in_flight, other.in_flight);
        sum(&mut self.desired, other.desired);
        sum(&mut self.actual, other.actual);
        sum(&mut self.ready, other.ready);
        sum(&mut self.traffic, other.traffic);
        sum(&mut self.capacity, other.capacity);
        if let Some(theirs) = &other.buckets {
            let mine = self.buckets.get_or_insert_with(Vec::new);
            for &(le, n) in theirs {
                match mine.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, m)) => *m += n,
                    None => mine.push((le, n)),
                }
            }
            mine.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
}

/// The rows for `now`, given the scrape `elapsed` before it (None for the first: no rates
/// yet): one per revision, then one per service.
pub fn rows(now: &Snapshot, before: Option<(&Snapshot, Duration)>) -> Vec<Row> {
    let mut rows = rows_of(&now.revisions, before.map(|(b, e)| (&b.revisions, e)));
    rows.extend(rows_of(&now.services, before.map(|(b, e)| (&b.services, e))));
    rows
}

fn rows_of(now: &BTreeMap<RevKey, Totals>, before: Option<(&BTreeMap<RevKey, Totals>, Duration)>) -> Vec<Row> {
    now.iter()
        .map(|(key, t)| {
            let prev = before.map(|(b, elapsed)| (b.get(key), elapsed));
            let (mut rps, mut error_rate, mut p50, mut p99) = (None, None, None, None);
            if let Some((prev, elapsed)) = prev {
                let secs = elapsed.as_secs_f64();
                let requests = delta(t.requests, prev.map_or(Some(0.0), |p| p.requests));
                rps = requests.filter(|_| secs > 0.0).map(|n| n / secs);
                let errors = delta(t.errors, prev.map_or(Some(0.0), |p| p.errors));
                error_rate = requests.zip(errors).filter(|(n, _)| *n > 0.0).map(|(n, e)| e / n);
                if let Some(buckets) = &t.buckets {
                    let earlier = prev.and_then(|p| p.buckets.as_deref()).unwrap_or(&[]);
                    let window = bucket_delta(buckets, earlier);
                    p50 = quantile(0.5, &window);
                    p99 = quantile(0.99, &window);
                }
            }
            Row {
                key: key.clone(),
                rps,
                error_rate,
                p50,
                p99,
                in_flight: t.in_flight,
                capacity: t.capacity,
                desired: t.desired,
                actual: t.actual,
                traffic: t.traffic,
            }
        })
        .collect()
}

/// A counter's increase; a counter that went back was reset (a restarted router), and all it
/// holds now is new, as Prometheus' `rate` reads it.
fn delta(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    let now = now?;
    match before {
        Some(b) if now >= b => Some(now - b),
        _ => Some(now),
    }
}

/// Per-bucket increases of a cumulative histogram (a reset reads as everything new).
fn bucket_delta(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let reset = now.iter().any(|(le, n)| before.iter().any(|(ble, b)| ble == le && b > n));
    now.iter()
        .map(|&(le, n)| {
            let b = if reset { 0.0 } else { before.iter().find(|(ble, _)| *ble == le).map_or(0.0, |&(_, b)| b) };
            (le, n - b)
        })
        .collect()
}

/// The `q` quantile of cumulative buckets sorted by bound, interpolated linearly inside the
/// bucket it falls in, as PromQL's `histogram_quantile`; in the `+Inf` bucket it is the
/// highest finite bound. None without observations.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last().filter(|(le, _)| le.is_infinite())?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            if n == lower.1 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / (n - lower.1));
        }
        lower = (le, n);
    }
    None
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        s => s.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}
