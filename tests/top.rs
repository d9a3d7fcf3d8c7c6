//! `sluice top --once` against a running `sluice serve` whose service is under load: the frame
//! (drawn by ratatui's `TestBackend` in the binary, printed as text) has the service's row with
//! the request rate and 5xx share the router counted, and for each figure whose family the
//! server does not export, `-`.

use std::time::Duration;

use sluice_router::metrics::text;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "shop.default.localhost";

const SHOP: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: shop
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_draws_a_frame_of_a_running_server_under_load() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, SHOP).expect("apply");
    traffic.wait_for(HOST, WAIT, |b| b.contains("Hello")).await.expect("serves");
    let ok = traffic.start_load(HOST, 2);
    let failing = traffic.start_load_on(HOST, "/status/503", 1);
    // Where the metrics are is read from the state directory's endpoints.json, as a user's
    // `sluice top` finds them.
    let mut cmd = s.command(BIN);
    cmd.args(["top", "--once", "--width", "130", "-n", "default"]).env("SLUICE_STATE_DIR", &s.state_dir);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run sluice top");
    let (ok, failing) = (ok.stop().await, failing.stop().await);
    let frame = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{frame}{}", String::from_utf8_lossy(&out.stderr));
    assert!(ok.statuses.get(&200).is_some_and(|n| *n > 0) && failing.statuses.get(&503).is_some_and(|n| *n > 0));

    let metrics = s.metrics.as_deref().expect("metrics address");
    let lines: Vec<&str> = frame.lines().collect();
    assert_eq!(lines[0], format!("sluice top  http://{metrics}/metrics  sort: req/s  namespace: default"), "{frame}");
    assert!(lines[1].starts_with("NAMESPACE") && lines[1].contains("IN FLIGHT/CAP"), "{frame}");
    let total = lines.iter().position(|l| l.split_whitespace().take(3).eq(["default", "shop", "(all)"]));
    let revision = lines.iter().position(|l| l.contains("shop-00001"));
    assert!(total.is_some() && total < revision, "the service's total, then its revision: {frame}");
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.contains("shop-00001"))
        .unwrap_or_else(|| panic!("no row for shop-00001:\n{frame}"))
        .split_whitespace()
        .collect();
    assert_eq!(row.len(), 10, "{frame}");
    assert_eq!(row[..3], ["default", "shop", "shop-00001"], "{frame}");
    let rps: f64 = row[4].parse().unwrap_or_else(|_| panic!("req/s is a figure: {frame}"));
    assert!(rps > 0.0, "{frame}");
    let errors: f64 = row[5].trim_end_matches('%').parse().unwrap_or_else(|_| panic!("5xx is a figure: {frame}"));
    assert!(errors > 0.0 && errors < 100.0, "both 200s and 503s were sent: {frame}");

    // Each other figure is a figure exactly when the server exports its family.
    let body = s.client().get(&format!("http://{metrics}/metrics"), &[]).await.expect("GET /metrics").text();
    let samples = text::parse(&body).unwrap_or_else(|e| panic!("/metrics does not parse: {e}"));
    let has = |name: &str| samples.iter().any(|x| x.name == name);
    let (in_flight, capacity) = row[8].split_once('/').expect("in flight/capacity");
    let (desired, actual) = row[9].split_once('/').expect("desired/actual");
    let cases = [
        ("route_traffic_percent", row[3]),
        ("revision_request_latencies_bucket", row[6]),
        ("revision_request_latencies_bucket", row[7]),
        ("revision_request_concurrency", in_flight),
        ("autoscaler_desired_pods", desired),
        ("autoscaler_actual_pods", actual),
    ];
    let capacity_known = has("autoscaler_ready_pods") && has("autoscaler_target_concurrency_per_pod");
    assert_eq!(capacity == "-", !capacity_known, "capacity is target per instance × ready: {frame}");
    for (family, cell) in cases {
        assert_eq!(cell == "-", !has(family), "{family} exported: {}; cell {cell:?}\n{frame}", has(family));
    }
}
