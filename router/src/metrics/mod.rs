//! The router's figures for Prometheus, per revision, with Knative's metric and label names
//! (its queue-proxy's; labels `namespace_name`, `service_name`, `configuration_name`,
//! `revision_name`): `revision_request_count` by `response_code` and `response_code_class`,
//! `revision_request_latencies` (ms), `revision_request_concurrency`, `revision_queue_depth`,
//! `revision_queue_wait_latencies` (ms), `revision_proxy_errors_count` by `reason`, and
//! `revision_request_bytes_count` / `revision_response_bytes_count` (body bytes each way).
//! Per route, from the routing table in force at the scrape: `route_rule_request_count` and
//! `route_tag_request_count` (requests a rule or a tag picked, per revision) and
//! `route_traffic_percent` (the default split as programmed).
//!
//! Rendered by hand in the text format ([`text`]) from the atomics the revisions' endpoints
//! hold, at scrape time only; nothing here runs per request.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::endpoints::{Endpoints, HistogramSnapshot, LATENCY_BUCKETS_MS, Owners, RevisionEndpoints};
use crate::table::{Choice, ChoiceKind, RoutingTable};

pub mod text;

/// Knative's name for requests per revision.
pub const REVISION_REQUEST_COUNT: &str = "revision_request_count";
/// Latency from a request's arrival at the router to its response head, in milliseconds.
pub const REVISION_REQUEST_LATENCIES: &str = "revision_request_latencies";
/// Requests in flight to a revision's instances.
pub const REVISION_REQUEST_CONCURRENCY: &str = "revision_request_concurrency";
/// Requests waiting at a revision's gate.
pub const REVISION_QUEUE_DEPTH: &str = "revision_queue_depth";
/// Time spent waiting at a revision's gate, in milliseconds.
pub const REVISION_QUEUE_WAIT_LATENCIES: &str = "revision_queue_wait_latencies";
/// The router's own 502/503/504 for a revision, by reason.
pub const REVISION_PROXY_ERRORS_COUNT: &str = "revision_proxy_errors_count";
/// Request body bytes read from clients for a revision's instances.
pub const REVISION_REQUEST_BYTES_COUNT: &str = "revision_request_bytes_count";
/// Response body bytes of a revision's instances sent on to clients.
pub const REVISION_RESPONSE_BYTES_COUNT: &str = "revision_response_bytes_count";

/// Requests a rule picked, per revision.
pub const ROUTE_RULE_REQUEST_COUNT: &str = "route_rule_request_count";
/// Requests a tag (tag host or `Knative-Serving-Tag`) picked, per revision.
pub const ROUTE_TAG_REQUEST_COUNT: &str = "route_tag_request_count";
/// Each revision's percent of a route's default split, as programmed.
pub const ROUTE_TRAFFIC_PERCENT: &str = "route_traffic_percent";

/// Access-log lines dropped (queue full or write failed).
pub const SLUICE_ACCESS_LOG_DROPPED_TOTAL: &str = "sluice_access_log_dropped_total";

/// A revision with its owners, read once per scrape.
struct Row {
    rev: Arc<RevisionEndpoints>,
    owners: Owners,
}

/// Appends every family the router exposes to `out`: the revisions' (in name order) from
/// `endpoints`, the routes' from `table`.
pub fn render(endpoints: &Endpoints, table: &RoutingTable, out: &mut String) {
    render_revisions(endpoints, out);
    render_routes(table, out);
}

/// The access log's family: lines dropped because its queue was full or writing failed.
pub fn render_access_log(log: &AccessLog, out: &mut String) {
    text::header(
        out,
        SLUICE_ACCESS_LOG_DROPPED_TOTAL,
        "counter",
        "Access-log lines dropped: the writer's queue was full, or writing failed.",
    );
    text::sample(out, SLUICE_ACCESS_LOG_DROPPED_TOTAL, &[], log.dropped());
}

/// The routes' families: rule and tag counters, then traffic percents.
fn render_routes(table: &RoutingTable, out: &mut String) {
    let mut choices: Vec<&Arc<Choice>> = table.choices().collect();
    choices.sort_by(|a, b| {
        (&a.namespace, &a.route, &a.name, &a.revision).cmp(&(&b.namespace, &b.route, &b.name, &b.revision))
    });
    for (kind, name, label, help) in [
        (
            ChoiceKind::Rule,
            ROUTE_RULE_REQUEST_COUNT,
            "rule",
            "Requests a route's rule picked, per revision it sent them to.",
        ),
        (
            ChoiceKind::Tag,
            ROUTE_TAG_REQUEST_COUNT,
            "tag",
            "Requests a route's tag (its host or the Knative-Serving-Tag header) picked, per revision.",
        ),
    ] {
        text::header(out, name, "counter", help);
        for c in choices.iter().filter(|c| c.kind == kind) {
            let l = [
                ("namespace_name", &*c.namespace),
                ("route_name", &*c.route),
                (label, &*c.name),
                ("revision_name", &*c.revision),
            ];
            text::sample(out, name, &l, c.count());
        }
    }
    let mut percents: Vec<_> = table.traffic_percents().collect();
    percents.sort_unstable();
    text::header(
        out,
        ROUTE_TRAFFIC_PERCENT,
        "gauge",
        "A revision's percent of a route's default split, as programmed.",
    );
    for (namespace, route, revision, percent) in percents {
        let l = [("namespace_name", namespace), ("route_name", route), ("revision_name", revision)];
        text::sample(out, ROUTE_TRAFFIC_PERCENT, &l, u64::from(percent));
    }
}

/// The revisions' families, in name order.
fn render_revisions(endpoints: &Endpoints, out: &mut String) {
    let mut revisions = endpoints.all();
    revisions.sort_by(|a, b| (&a.key.namespace, &a.key.name).cmp(&(&b.key.namespace, &b.key.name)));
    let rows: Vec<Row> = revisions
        .into_iter()
        .map(|rev| {
            let owners = rev.owners().get();
            Row { rev, owners }
        })
        .collect();
    revision_request_count(&rows, out);
    histogram(
        &rows,
        out,
        REVISION_REQUEST_LATENCIES,
        "Time from a request's arrival at the router to its response head, in milliseconds.",
        |r| r.responses_so_far().latency(),
    );
    gauge(&rows, out, REVISION_REQUEST_CONCURRENCY, "Requests in flight to the revision's instances.", |r| {
        r.inflight() as u64
    });
    gauge(&rows, out, REVISION_QUEUE_DEPTH, "Requests waiting at the revision's gate for capacity.", |r| {
        r.gate().waiting() as u64
    });
    histogram(
        &rows,
        out,
        REVISION_QUEUE_WAIT_LATENCIES,
        "Time requests spent waiting at the revision's gate, in milliseconds.",
        |r| r.responses_so_far().queue_wait(),
    );
    revision_proxy_errors_count(&rows, out);
    counter(
        &rows,
        out,
        REVISION_REQUEST_BYTES_COUNT,
        "Request body bytes read from clients and sent on to the revision's instances.",
        |r| r.responses_so_far().request_bytes(),
    );
    counter(
        &rows,
        out,
        REVISION_RESPONSE_BYTES_COUNT,
        "Response body bytes of the revision's instances sent on to clients.",
        |r| r.responses_so_far().response_bytes(),
    );
}

/// Knative's four revision labels for `row`, then `extra`.
fn labels<'a>(row: &'a Row, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut l = vec![
        ("namespace_name", row.rev.key.namespace.as_str()),
        ("service_name", row.owners.service.as_str()),
        ("configuration_name", row.owners.configuration.as_str()),
        ("revision_name", row.rev.key.name.as_str()),
    ];
    l.extend_from_slice(extra);
    l
}

/// `revision_request_count`: responses sent on behalf of each revision (its instances' and the
/// router's own 502/503/504 for it), by exact code and class; codes never answered are left out.
fn revision_request_count(rows: &[Row], out: &mut String) {
    text::header(
        out,
        REVISION_REQUEST_COUNT,
        "counter",
        "Responses sent on behalf of a revision, by status code (its instances' and the router's own).",
    );
    for row in rows {
        for (code, count) in row.rev.responses_so_far().codes() {
            let code_label = code.to_string();
            let class_label = format!("{}xx", code / 100);
            let l = labels(row, &[("response_code", &code_label), ("response_code_class", &class_label)]);
            text::sample(out, REVISION_REQUEST_COUNT, &l, count);
        }
    }
}

/// `revision_proxy_errors_count`: the router's own errors for each revision, every reason
/// always present.
fn revision_proxy_errors_count(rows: &[Row], out: &mut String) {
    text::header(
        out,
        REVISION_PROXY_ERRORS_COUNT,
        "counter",
        "The router's own 502/503/504 responses for a revision, by reason.",
    );
    for row in rows {
        for (failure, count) in row.rev.responses_so_far().failures() {
            let code_label = failure.status().to_string();
            let l = labels(row, &[("response_code", &code_label), ("reason", failure.reason())]);
            text::sample(out, REVISION_PROXY_ERRORS_COUNT, &l, count);
        }
    }
}

fn gauge(rows: &[Row], out: &mut String, name: &str, help: &str, value: impl Fn(&RevisionEndpoints) -> u64) {
    per_revision(rows, out, name, "gauge", help, value);
}

fn counter(rows: &[Row], out: &mut String, name: &str, help: &str, value: impl Fn(&RevisionEndpoints) -> u64) {
    per_revision(rows, out, name, "counter", help, value);
}

/// One sample per revision, with the revision labels only.
fn per_revision(
    rows: &[Row],
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&RevisionEndpoints) -> u64,
) {
    text::header(out, name, kind, help);
    for row in rows {
        text::sample(out, name, &labels(row, &[]), value(&row.rev));
    }
}

fn histogram(
    rows: &[Row],
    out: &mut String,
    name: &str,
    help: &str,
    value: impl Fn(&RevisionEndpoints) -> HistogramSnapshot,
) {
    text::header(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    let bounds: Vec<String> = LATENCY_BUCKETS_MS.iter().map(|b| b.to_string()).chain(["+Inf".to_string()]).collect();
    for row in rows {
        let h = value(&row.rev);
        for (le, count) in bounds.iter().zip(h.cumulative) {
            text::sample(out, &bucket, &labels(row, &[("le", le)]), count);
        }
        let l = labels(row, &[]);
        let mut sum = String::new();
        let _ = write!(sum, "{}", h.sum_ms);
        text::sample_raw(out, &format!("{name}_sum"), &l, &sum);
        text::sample(out, &format!("{name}_count"), &l, h.count());
    }
}

#[cfg(test)]
mod tests;
