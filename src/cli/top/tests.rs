//! The model from a recorded exposition covering every family of issue 12's plan (two
//! scrapes two seconds apart, `testdata/`), the keys, and a frame drawn to ratatui's
//! `TestBackend` compared whole.

use std::time::Duration;

use sluice_router::metrics::text;

use super::model::{self, RevKey, Row, Snapshot};
use super::view::{Key, Sort, View};
use super::*;

const BEFORE: &str = include_str!("testdata/before.prom");
const AFTER: &str = include_str!("testdata/after.prom");

fn snapshot(exposition: &str) -> Snapshot {
    Snapshot::from_samples(&text::parse(exposition).expect("the fixture parses"))
}

fn fixture_rows() -> Vec<Row> {
    model::rows(&snapshot(AFTER), Some((&snapshot(BEFORE), Duration::from_secs(2))))
}

fn row<'a>(rows: &'a [Row], revision: &str) -> &'a Row {
    rows.iter().find(|r| r.key.revision == revision).unwrap_or_else(|| panic!("no row for {revision}"))
}

fn view(rows: Vec<Row>, namespace: Option<&str>) -> View {
    View {
        url: "http://127.0.0.1:9090/metrics".into(),
        sort: Sort::Rps,
        namespace: namespace.map(str::to_string),
        rows,
        error: None,
    }
}

#[test]
fn rates_errors_and_percentiles_come_from_the_deltas_between_two_scrapes() {
    let rows = fixture_rows();
    assert_eq!(rows.len(), 5, "three revisions, two services");
    let shop1 = row(&rows, "shop-00001");
    assert_eq!(
        shop1.key,
        RevKey { namespace: "default".into(), service: "shop".into(), revision: "shop-00001".into() }
    );
    // 200 more responses in 2 s, 16 of them 5xx (the 404s are not errors).
    assert_eq!(shop1.rps, Some(100.0));
    assert_eq!(shop1.error_rate, Some(0.08));
    // Of the 200 new observations 80 were ≤ 5 ms and 160 ≤ 10 ms: the 100th is a quarter
    // into (5, 10]; 190 ≤ 50 and 200 ≤ 100: the 198th is 8/10 into (50, 100].
    assert_eq!(shop1.p50, Some(6.25));
    assert_eq!(shop1.p99, Some(90.0));
    assert_eq!(shop1.in_flight, Some(3.0));
    assert_eq!(shop1.capacity, Some(200.0), "target 100 per instance × 2 ready");
    assert_eq!((shop1.desired, shop1.actual), (Some(2.0), Some(2.0)));
    assert_eq!(shop1.traffic, Some(80.0));
    let shop2 = row(&rows, "shop-00002");
    assert_eq!((shop2.rps, shop2.error_rate), (Some(25.0), Some(0.2)));
    // All 50 in (0.05, 1]: the 25th halfway, the 49.5th at 99 %.
    assert_eq!((shop2.p50, shop2.p99), (Some(0.525), Some(0.9905)));
    assert_eq!(shop2.traffic, Some(20.0));
    // The service: both revisions summed, its percentiles from the summed buckets (70 ≤ 1 ms,
    // 130 ≤ 5 ms: the 125th is 55/60 into (1, 5]; 240 ≤ 50, 250 ≤ 100: the 247.5th is 3/4
    // into (50, 100]).
    let shop = rows.iter().find(|r| r.is_service() && r.key.service == "shop").expect("the shop row");
    assert_eq!((shop.rps, shop.error_rate), (Some(125.0), Some(0.104)));
    assert!(shop.p50.is_some_and(|p| (p - (1.0 + 4.0 * 55.0 / 60.0)).abs() < 1e-9), "{:?}", shop.p50);
    assert_eq!(shop.p99, Some(87.5));
    assert_eq!(
        (shop.in_flight, shop.capacity, shop.desired, shop.actual),
        (Some(4.0), Some(300.0), Some(3.0), Some(3.0))
    );
    assert_eq!(shop.traffic, Some(100.0));
}

#[test]
fn an_absent_family_is_none_never_a_figure() {
    let rows = fixture_rows();
    // The prod revision has counts, concurrency and traffic, but no histogram and no
    // autoscaler figures in the fixture.
    let api = row(&rows, "api-00001");
    assert_eq!((api.rps, api.error_rate, api.in_flight, api.traffic), (Some(1.0), Some(0.0), Some(0.0), Some(100.0)));
    assert_eq!((api.p50, api.p99, api.capacity, api.desired, api.actual), (None, None, None, None, None));
    // Only the request counter (what the router exported before issue 12).
    let only_counts: String =
        AFTER.lines().filter(|l| l.contains("revision_request_count")).collect::<Vec<_>>().join("\n");
    let rows = model::rows(&snapshot(&only_counts), Some((&snapshot(&only_counts), Duration::from_secs(1))));
    let shop1 = row(&rows, "shop-00001");
    assert_eq!((shop1.rps, shop1.error_rate), (Some(0.0), None), "no requests: no error share");
    assert_eq!((shop1.p50, shop1.in_flight, shop1.traffic, shop1.desired), (None, None, None, None));
    // The first scrape has nothing to take a rate from.
    let first = model::rows(&snapshot(AFTER), None);
    assert!(first.iter().all(|r| r.rps.is_none() && r.error_rate.is_none() && r.p99.is_none()));
    assert_eq!(row(&first, "shop-00001").in_flight, Some(3.0), "gauges need one scrape");
}

#[test]
fn a_counter_that_went_back_was_reset_and_counts_from_zero() {
    let rows = model::rows(&snapshot(BEFORE), Some((&snapshot(AFTER), Duration::from_secs(2))));
    // shop-00001 holds 1015 responses after the "restart": all new.
    assert_eq!(row(&rows, "shop-00001").rps, Some(507.5));
}

#[test]
fn quantiles_interpolate_as_histogram_quantile_does() {
    let inf = f64::INFINITY;
    assert_eq!(model::quantile(0.5, &[(10.0, 0.0), (inf, 0.0)]), None, "no observations");
    assert_eq!(model::quantile(0.5, &[(10.0, 4.0)]), None, "no +Inf bucket: not a histogram");
    assert_eq!(model::quantile(0.5, &[(10.0, 4.0), (inf, 4.0)]), Some(5.0));
    // Past the highest finite bound: that bound.
    assert_eq!(model::quantile(0.99, &[(10.0, 1.0), (inf, 4.0)]), Some(10.0));
    assert_eq!(model::quantile(0.5, &[(1.0, 0.0), (2.0, 2.0), (inf, 2.0)]), Some(1.5));
}

#[test]
fn keys_sort_and_filter_by_namespace() {
    let mut v = view(fixture_rows(), None);
    let order = |v: &View| v.shown().iter().map(|r| r.key.revision.clone()).collect::<Vec<_>>();
    // Each service's total ("") first, then its revisions; services and revisions each sorted.
    assert_eq!(order(&v), ["", "shop-00001", "shop-00002", "", "api-00001"], "req/s first");
    assert_eq!(v.shown()[3].key.service, "api");
    assert!(v.press(Key::of_char('e').expect("e")));
    assert_eq!(order(&v), ["", "shop-00002", "shop-00001", "", "api-00001"]);
    v.press(Key::Sort(Sort::P99));
    assert_eq!(order(&v), ["", "shop-00001", "shop-00002", "", "api-00001"], "unknown p99 last");
    v.press(Key::Sort(Sort::Name));
    assert_eq!(order(&v), ["", "shop-00001", "shop-00002", "", "api-00001"], "namespace, service, revision");
    v.press(Key::NextNamespace);
    assert_eq!(v.namespace.as_deref(), Some("default"));
    assert_eq!(order(&v), ["", "shop-00001", "shop-00002"]);
    v.press(Key::NextNamespace);
    assert_eq!(order(&v), ["", "api-00001"]);
    v.press(Key::NextNamespace);
    assert_eq!(v.namespace, None, "after the last namespace: all again");
    assert!(!v.press(Key::of_char('q').expect("q")));
    assert_eq!(Key::of_char('x'), None);
}

#[test]
fn a_frame_of_the_fixture_draws_every_figure_and_dashes_for_the_unknown() {
    let frame = frame_text(&view(fixture_rows(), None), 120, 8);
    let expected = "\
sluice top  http://127.0.0.1:9090/metrics  sort: req/s  namespace: all
NAMESPACE SERVICE REVISION   TRAFFIC REQ/S    5XX    P50       P99       IN FLIGHT/CAP PODS DES/ACT
default   shop    (all)      100%    125.0    10.4%  4.67ms    87.5ms    4/300         3/3
default   shop    shop-00001 80%     100.0    8.0%   6.25ms    90.0ms    3/200         2/2
default   shop    shop-00002 20%     25.0     20.0%  0.53ms    0.99ms    1/100         1/1
prod      api     (all)      100%    1.0      0.0%   -         -         0/-           -/-
prod      api     api-00001  100%    1.0      0.0%   -         -         0/-           -/-
q quit  r/e/p/n sort by req/s, 5xx, p99, name  f next namespace
";
    assert_eq!(frame, expected, "\n{frame}");
}
