//! The router's data-plane families on `/metrics`, through the real binary: after a scripted
//! mix of answers (the app's 200s and 404s, the router's 504 for a slow head, 503s from a full
//! queue, 504s from a wait past the timeout, a 502 from an instance that died mid-request)
//! every counter moved by exactly what the client saw, the histograms counted every request,
//! the gauges showed the held request and the queue, the body byte counters moved by the bytes
//! the instance exchanged with the client, and the exposition parses both with the
//! project's strict reader and with `prometheus-parse` from crates.io.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use prometheus_parse::{Scrape, Value};
use sluice_router::metrics::text;
use sluice_test_support::http::Client;
use sluice_test_support::traffic::{InFlight, Traffic};
use sluice_test_support::{Sluice, SluiceOptions, apply, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "mix.default.localhost";
const REV: &str = "mix-00001";

/// One instance holding one request at a time; a response head must start within 2 s.
const MIX: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: mix
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/max-scale: \"1\"
    spec:
      containerConcurrency: 1
      timeoutSeconds: 10
      responseStartTimeoutSeconds: 2
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
";

/// The revision's figures at one scrape, read through `prometheus-parse`.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    /// `revision_request_count` by `response_code`, checked against its class.
    codes: BTreeMap<String, f64>,
    /// `revision_proxy_errors_count` by `(response_code, reason)`.
    errors: BTreeMap<(String, String), f64>,
    /// `(+Inf bucket, _count)` of `revision_request_latencies`.
    latency: (f64, f64),
    /// `(+Inf bucket, _count)` of `revision_queue_wait_latencies`.
    queue_wait: (f64, f64),
    concurrency: f64,
    queue_depth: f64,
    /// `revision_request_bytes_count`, `revision_response_bytes_count`.
    bytes: (f64, f64),
}

async fn scrape(s: &Sluice) -> Figures {
    let url = format!("http://{}/metrics", s.metrics.as_deref().expect("metrics address in endpoints.json"));
    let res = s.client().get(&url, &[]).await.expect("GET /metrics");
    assert_eq!(res.status.as_u16(), 200);
    let body = res.text();
    text::parse(&body).unwrap_or_else(|e| panic!("/metrics does not parse strictly: {e}\n{body}"));
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("prometheus-parse reads it");
    let mut f = Figures::default();
    let mut seen = 0;
    // The router's families (the autoscaler's, on the same page, carry the revision too).
    let router =
        |x: &&prometheus_parse::Sample| x.metric.starts_with("revision_") && x.labels.get("revision_name") == Some(REV);
    for sample in scrape.samples.iter().filter(router) {
        seen += 1;
        for (k, v) in [("namespace_name", "default"), ("service_name", "mix"), ("configuration_name", "mix")] {
            assert_eq!(sample.labels.get(k), Some(v), "{k} of {sample:?}");
        }
        let label = |k: &str| sample.labels.get(k).unwrap_or_else(|| panic!("{k} missing in {sample:?}")).to_string();
        match (sample.metric.as_str(), &sample.value) {
            ("revision_request_count", Value::Counter(n)) => {
                let code = label("response_code");
                assert_eq!(label("response_code_class"), format!("{}xx", &code[..1]));
                f.codes.insert(code, *n);
            }
            ("revision_proxy_errors_count", Value::Counter(n)) => {
                f.errors.insert((label("response_code"), label("reason")), *n);
            }
            ("revision_request_latencies", Value::Histogram(b)) => f.latency.0 = inf_bucket(b),
            ("revision_request_latencies_count", Value::Untyped(n)) => f.latency.1 = *n,
            ("revision_queue_wait_latencies", Value::Histogram(b)) => f.queue_wait.0 = inf_bucket(b),
            ("revision_queue_wait_latencies_count", Value::Untyped(n)) => f.queue_wait.1 = *n,
            ("revision_request_concurrency", Value::Gauge(n)) => f.concurrency = *n,
            ("revision_queue_depth", Value::Gauge(n)) => f.queue_depth = *n,
            ("revision_request_bytes_count", Value::Counter(n)) => f.bytes.0 = *n,
            ("revision_response_bytes_count", Value::Counter(n)) => f.bytes.1 = *n,
            ("revision_request_latencies_sum" | "revision_queue_wait_latencies_sum", Value::Untyped(n)) => {
                assert!(*n >= 0.0, "{sample:?}");
            }
            other => panic!("unexpected sample for the revision: {other:?}"),
        }
    }
    assert!(seen > 0, "no sample for {REV}:\n{body}");
    f
}

/// The `+Inf` bucket of a histogram, after checking the buckets are cumulative.
fn inf_bucket(buckets: &[prometheus_parse::HistogramCount]) -> f64 {
    assert_eq!(buckets.len(), 21, "20 bounds and +Inf: {buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count), "{buckets:?}");
    assert_eq!(buckets[0].less_than, 0.05);
    assert_eq!(buckets[19].less_than, 60_000.0);
    let last = buckets.last().expect("+Inf");
    assert!(last.less_than.is_infinite());
    last.count
}

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), (v - before.get(k).copied().unwrap_or(0.0)) as u64))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_plane_figure_equals_what_was_sent() {
    let opts = SluiceOptions { args: vec!["--queue-depth".into(), "2".into()], ..Default::default() };
    let s = Sluice::start_with(BIN, opts).expect("start sluice");
    let router = s.http.clone().expect("router");
    let traffic = Traffic::new(&router);
    apply(BIN, &s, MIX).expect("apply");
    traffic.wait_for(HOST, WAIT, |b| b == "Hello World!\n").await.expect("serves");
    let before = scrape(&s).await;
    assert_eq!((before.concurrency, before.queue_depth), (0.0, 0.0), "idle");

    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    let mut count = |code: u16| *sent.entry(code.to_string()).or_default() += 1;
    // Body bytes the instance exchanged with the client: (request, response). The router's own
    // error bodies are not the revision's.
    let mut bytes = (0, 0);
    for _ in 0..5 {
        let (code, body) = traffic.get(HOST, "/").await.expect("get");
        assert_eq!(code, 200);
        count(code);
        bytes.1 += body.len();
    }
    for _ in 0..3 {
        let (code, body) = traffic.get(HOST, "/status/404").await.expect("get");
        assert_eq!(code, 404);
        count(code);
        bytes.1 += body.len();
    }
    let upload = "x".repeat(70_000);
    let url = format!("http://{router}/echo");
    let echoed = Client::new().send(Method::POST, &url, &[("host", HOST)], upload.clone()).await.expect("post");
    assert_eq!((echoed.status.as_u16(), echoed.body.len()), (200, upload.len()));
    count(200);
    bytes = (bytes.0 + upload.len(), bytes.1 + upload.len());
    // No response head within responseStartTimeoutSeconds: the router's own 504.
    let (code, _) = traffic.get(HOST, "/sleep?ms=4000").await.expect("get");
    assert_eq!(code, 504);
    count(code);

    // The only slot held; five more: two wait in the queue of two (and time out, 504), three
    // are refused at once (503). Both gauges show it meanwhile.
    let held = InFlight::start(&router, HOST, "held;", WAIT).await.expect("held");
    assert_eq!(held.status, 200);
    count(200);
    let tries: Vec<_> = (0..5)
        .map(|_| {
            let traffic = Traffic::new(&router);
            tokio::spawn(async move { traffic.get(HOST, "/").await.expect("answer").0 })
        })
        .collect();
    let busy = until("the held request and two queued ones on the gauges", WAIT, async || {
        let f = scrape(&s).await;
        (f.concurrency == 1.0 && f.queue_depth == 2.0).then_some(f)
    })
    .await
    .expect("gauges");
    assert_eq!((busy.concurrency, busy.queue_depth), (1.0, 2.0));
    let mut answers = Vec::new();
    for t in tries {
        answers.push(t.await.expect("join"));
    }
    answers.sort_unstable();
    assert_eq!(answers, vec![503, 503, 503, 504, 504], "three refused, two timed out in the queue");
    for code in answers {
        count(code);
    }
    assert_eq!(held.finish("done").await.expect("finish"), "held;done");
    bytes = (bytes.0 + 9, bytes.1 + 9);

    // The instance dies with the request on it: the router's 502.
    let (code, _) = traffic.get(HOST, "/crash?code=3").await.expect("get");
    assert_eq!(code, 502);
    count(code);

    let after = until("the gauges back at zero", WAIT, async || {
        let f = scrape(&s).await;
        (f.concurrency == 0.0 && f.queue_depth == 0.0).then_some(f)
    })
    .await
    .expect("idle again");
    let total: u64 = sent.values().sum();
    assert_eq!(delta(&after.codes, &before.codes), sent, "revision_request_count by code");
    let errors = |f: &Figures, code: &str, reason: &str| {
        f.errors.get(&(code.to_string(), reason.to_string())).copied().unwrap_or(f64::NAN)
    };
    let moved = |code: &str, reason: &str| (errors(&after, code, reason) - errors(&before, code, reason)) as u64;
    assert_eq!(
        [
            moved("504", "timeout"),
            moved("503", "queue_full"),
            moved("504", "no_capacity"),
            moved("502", "upstream_failed") + moved("502", "unreachable")
        ],
        [1, 3, 2, 1],
        "revision_proxy_errors_count: {:?}",
        after.errors
    );
    assert_eq!(after.errors.len(), 5, "every reason exposed: {:?}", after.errors);
    assert_eq!(after.latency.0, after.latency.1, "+Inf bucket equals _count");
    assert_eq!((after.latency.1 - before.latency.1) as u64, total, "one latency per response");
    let moved_bytes = ((after.bytes.0 - before.bytes.0) as usize, (after.bytes.1 - before.bytes.1) as usize);
    assert_eq!(moved_bytes, bytes, "revision_request_bytes_count, revision_response_bytes_count");
    assert_eq!(after.queue_wait.0, after.queue_wait.1);
    let waited = (after.queue_wait.1 - before.queue_wait.1) as u64;
    assert!((2..=total - 3).contains(&waited), "the two that timed out waited, the refused did not: {waited}");
}

/// One revision reached three ways besides the default split: a named rule, an unnamed one,
/// and its tag.
const PICKS: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: picks
spec:
  template:
    metadata:
      name: picks-one
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
  traffic:
    - revisionName: picks-one
      percent: 100
      tag: canary
  rules:
    - name: beta
      match:
        path:
          prefix: /beta
      traffic:
        - revisionName: picks-one
          percent: 100
    - match:
        headers:
          - name: x-api
            present: true
      traffic:
        - tag: canary
          percent: 100
";

/// Requests of one kind: host, path, extra headers, how many.
type Picks = (&'static str, &'static str, &'static [(&'static str, &'static str)], u32);

/// The route families of route `picks`, by metric and their labels besides the namespace and
/// route (checked), from `prometheus-parse`, each with its exact label set checked.
async fn route_figures(s: &Sluice) -> BTreeMap<(String, String), f64> {
    let url = format!("http://{}/metrics", s.metrics.as_deref().expect("metrics address"));
    let body = s.client().get(&url, &[]).await.expect("GET /metrics").text();
    text::parse(&body).unwrap_or_else(|e| panic!("/metrics does not parse strictly: {e}\n{body}"));
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("prometheus-parse reads it");
    let mut figures = BTreeMap::new();
    for sample in scrape.samples.iter().filter(|x| x.labels.get("route_name") == Some("picks")) {
        assert_eq!(sample.labels.get("namespace_name"), Some("default"), "{sample:?}");
        let (value, label) = match (sample.metric.as_str(), &sample.value) {
            ("route_rule_request_count", Value::Counter(n)) => (*n, "rule"),
            ("route_tag_request_count", Value::Counter(n)) => (*n, "tag"),
            ("route_traffic_percent", Value::Gauge(n)) => (*n, ""),
            other => panic!("unexpected sample for the route: {other:?}"),
        };
        let mut labels: Vec<&str> = ["namespace_name", "route_name", "revision_name"].to_vec();
        let mut key = sample.labels.get("revision_name").expect("revision_name").to_string();
        if !label.is_empty() {
            labels.push(label);
            key = format!("{}/{key}", sample.labels.get(label).expect("rule or tag"));
        }
        let mut have: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
        have.sort_unstable();
        labels.sort_unstable();
        assert_eq!(have, labels, "exactly these labels: {sample:?}");
        figures.insert((sample.metric.clone(), key), value);
    }
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_and_tag_counts_and_the_traffic_percent_equal_what_was_sent() {
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    let traffic = Traffic::new(&router);
    apply(BIN, &s, PICKS).expect("apply");
    let hello = |b: &str| b == "Hello World!\n";
    traffic.wait_for("picks.default.localhost", WAIT, hello).await.expect("serves");
    traffic.wait_for("canary-picks.default.localhost", WAIT, hello).await.expect("the tag host serves");
    let before = route_figures(&s).await;

    let sends: [Picks; 4] = [
        ("picks.default.localhost", "/beta/x", &[], 3),
        ("picks.default.localhost", "/", &[("x-api", "1")], 2),
        ("canary-picks.default.localhost", "/", &[], 4),
        ("picks.default.localhost", "/", &[], 5),
    ];
    let client = Client::new();
    for (host, path, headers, n) in sends {
        for _ in 0..n {
            let mut all = vec![("host", host)];
            all.extend_from_slice(headers);
            let res = client.get(&format!("http://{router}{path}"), &all).await.expect("get");
            assert_eq!(res.status.as_u16(), 200, "{host}{path}");
        }
    }

    let after = route_figures(&s).await;
    let moved: BTreeMap<(String, String), f64> =
        after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0))).collect();
    let key = |m: &str, k: &str| (m.to_string(), k.to_string());
    let want = BTreeMap::from([
        (key("route_rule_request_count", "beta/picks-one"), 3.0),
        (key("route_rule_request_count", "rules[1]/picks-one"), 2.0),
        (key("route_tag_request_count", "canary/picks-one"), 4.0),
        (key("route_traffic_percent", "picks-one"), 0.0),
    ]);
    assert_eq!(moved, want, "the default split's five counted for no rule or tag");
    assert_eq!(after.get(&key("route_traffic_percent", "picks-one")), Some(&100.0));
}
