//! The router's figures for Prometheus: per revision, `revision_request_count` by
//! `response_code_class`, with Knative's metric and label names (its queue-proxy's
//! `revision_request_count`; labels `namespace_name`, `service_name`, `configuration_name`,
//! `revision_name`, `response_code_class`).
//!
//! Rendered by hand in the text format ([`text`]) from the counters the revisions' endpoints
//! hold, at scrape time only; nothing here runs per request. Each family is one function that
//! appends to the exposition, so moving to the `metrics` facade later replaces these
//! functions, not their callers.

use std::fmt::Write as _;

use crate::endpoints::Endpoints;

pub mod text;

/// Knative's name for requests per revision.
pub const REVISION_REQUEST_COUNT: &str = "revision_request_count";

/// Status classes always exposed, even at zero, so a rate over them never starts mid-series.
const CLASSES: std::ops::RangeInclusive<u16> = 1..=5;

/// Appends every family the router exposes to `out`.
pub fn render(endpoints: &Endpoints, out: &mut String) {
    revision_request_count(endpoints, out);
}

/// `revision_request_count`: responses sent on behalf of each revision (its instances' and the
/// router's own 502/503/504 for it), by status class; revisions in name order.
pub fn revision_request_count(endpoints: &Endpoints, out: &mut String) {
    let mut revisions = endpoints.all();
    revisions.sort_by(|a, b| (&a.key.namespace, &a.key.name).cmp(&(&b.key.namespace, &b.key.name)));
    text::header(
        out,
        REVISION_REQUEST_COUNT,
        "counter",
        "Responses sent on behalf of a revision, by status class (its instances' and the router's own).",
    );
    for rev in revisions {
        let owners = rev.owners().get();
        for (class, count) in rev.responses().snapshot() {
            if count == 0 && !CLASSES.contains(&class) {
                continue;
            }
            let mut class_label = String::with_capacity(3);
            let _ = write!(class_label, "{class}xx");
            text::sample(
                out,
                REVISION_REQUEST_COUNT,
                &[
                    ("namespace_name", rev.key.namespace.as_str()),
                    ("service_name", owners.service.as_str()),
                    ("configuration_name", owners.configuration.as_str()),
                    ("revision_name", rev.key.name.as_str()),
                    ("response_code_class", class_label.as_str()),
                ],
                count,
            );
        }
    }
}

#[cfg(test)]
mod tests;
