//! The Grafana dashboard in `manifests/grafana/sluice.json`: valid JSON, every panel queries
//! Prometheus, every metric its PromQL names is one issue 12's plan lists (Knative's and
//! Kubernetes' names), the figures `sluice top` shows are all on it, and the only variables it
//! uses are the ones it defines.

use std::collections::BTreeSet;

use serde_json::Value;

const DASHBOARD: &str = include_str!("../manifests/grafana/sluice.json");

/// Every family of the plan (histograms by their `_bucket`, `_sum`, `_count` series).
const PLAN: &[&str] = &[
    "revision_request_count",
    "revision_request_concurrency",
    "revision_queue_depth",
    "revision_proxy_errors_count",
    "revision_request_bytes_count",
    "revision_response_bytes_count",
    "route_rule_request_count",
    "route_tag_request_count",
    "route_traffic_percent",
    "autoscaler_desired_pods",
    "autoscaler_actual_pods",
    "autoscaler_ready_pods",
    "autoscaler_stable_request_concurrency",
    "autoscaler_panic_request_concurrency",
    "autoscaler_target_concurrency_per_pod",
    "autoscaler_panic_mode",
    "autoscaler_excess_burst_capacity",
    "autoscaler_stable_requests_per_second",
    "autoscaler_panic_requests_per_second",
    "autoscaler_target_requests_per_second",
    "sluice_reconcile_count",
    "sluice_workqueue_depth",
    "apiserver_request_total",
    "apiserver_longrunning_requests",
    "sluice_store_objects",
];

const PLAN_HISTOGRAMS: &[&str] = &[
    "revision_request_latencies",
    "revision_queue_wait_latencies",
    "sluice_reconcile_duration_seconds",
    "sluice_store_write_duration_seconds",
];

/// What `sluice top` shows, which the dashboard must show too.
const TOP: &[&str] = &[
    "revision_request_count",
    "revision_request_latencies_bucket",
    "revision_request_concurrency",
    "autoscaler_target_concurrency_per_pod",
    "autoscaler_ready_pods",
    "autoscaler_desired_pods",
    "autoscaler_actual_pods",
    "route_traffic_percent",
];

/// Words of PromQL that are not metrics (aggregations may be followed by `by (...)` before
/// their parenthesis, so they are not recognised as calls).
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
];

/// The metric names a PromQL expression selects: identifiers outside label matchers, range
/// selectors, strings and grouping clauses, not called as functions, not keywords.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        let skip_to = |close: char, from: usize| {
            chars[from..].iter().position(|&x| x == close).map_or(chars.len(), |p| from + p + 1)
        };
        if c == '"' {
            i = skip_to('"', i + 1);
        } else if c == '{' {
            i = skip_to('}', i + 1);
        } else if c == '[' {
            i = skip_to(']', i + 1);
        } else if c == '(' && after_grouping {
            i = skip_to(')', i + 1);
            after_grouping = false;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&word.as_str()) {
                after_grouping = true;
            } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                names.push(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

fn planned(name: &str) -> bool {
    PLAN.contains(&name)
        || PLAN_HISTOGRAMS.iter().any(|h| ["_bucket", "_sum", "_count"].iter().any(|s| name == format!("{h}{s}")))
}

fn exprs(dashboard: &Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut out = Vec::new();
    for p in panels {
        let title = p["title"].as_str().expect("every panel has a title");
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        let targets =
            p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{title}: no queries"));
        for t in targets {
            out.push(t["expr"].as_str().unwrap_or_else(|| panic!("{title}: a query without expr")).to_string());
        }
    }
    out
}

#[test]
fn the_dashboard_queries_only_the_plans_metrics_and_every_figure_of_top() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("sluice.json is JSON");
    assert_eq!(dashboard["uid"], "sluice-overview");
    let mut queried = BTreeSet::new();
    for expr in exprs(&dashboard) {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(planned(&name), "{name} (in {expr}) is not a metric of the plan");
            queried.insert(name);
        }
    }
    for name in TOP {
        assert!(queried.contains(*name), "the dashboard does not show {name}");
    }
    // Variables used are variables defined.
    let defined: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for var in DASHBOARD.split('$').skip(1) {
        let name: String =
            var.trim_start_matches('{').chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        assert!(defined.contains(&name.as_str()), "${name} is not a variable of the dashboard");
    }
}

#[test]
fn metric_names_are_read_from_promql_and_an_unplanned_one_is_caught() {
    let expr = "histogram_quantile(0.99, sum by (revision_name, le) (rate(revision_request_latencies_bucket{a=\"x{y\"}[1m]))) / on (revision_name) group_left autoscaler_ready_pods";
    assert_eq!(metric_names(expr), ["revision_request_latencies_bucket", "autoscaler_ready_pods"]);
    assert!(planned("revision_request_latencies_count"));
    assert!(!planned("revision_request_latencies"), "a histogram is queried by its series");
    assert!(!planned("knative_requests_total"));
    assert_eq!(metric_names("sum(rate(http_requests_total[5m]))"), ["http_requests_total"]);
}
