//! The control plane's and the autoscaler's figures on `/metrics`, through the real binary:
//! after a scripted sequence (config-autoscaler applied, a Service applied at initial scale 0,
//! it got N times and a missing one once, a watch opened and closed, a scale from zero, the
//! Service deleted) the API server's request counters equal what this test's own client did,
//! exactly, for verbs and resources nobody else uses; the other figures (reconciles, store,
//! autoscaler gauges, work queues) are checked against what must hold. The exposition is parsed with
//! `prometheus-parse`, a Prometheus text parser.

use std::time::Duration;

use http::Method;
use prometheus_parse::{Sample, Scrape, Value};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply, eventually, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const REV: &str = "lazy-00001";
/// How many times the test GETs the Service.
const GETS: u64 = 5;

/// Short windows, and initial scale 0 allowed, so the revision starts at zero.
const AUTOSCALER: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  allow-zero-initial-scale: \"true\"
  stable-window: 6s
  scale-to-zero-grace-period: 1s
";

const SERVICE: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: lazy
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: \"0\"
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
";

/// `/metrics`, parsed.
async fn scrape(s: &Sluice) -> Vec<Sample> {
    let url = format!("http://{}/metrics", s.metrics.as_deref().expect("metrics address in endpoints.json"));
    let res = s.client().get(&url, &[]).await.expect("GET /metrics");
    assert_eq!(res.status.as_u16(), 200);
    let body = res.text();
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses");
    scrape.samples
}

/// The value of the one sample of `metric` with `labels` (counter, gauge or untyped); 0 when
/// there is none (a counter not incremented yet is not rendered).
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .collect();
    assert!(found.len() <= 1, "{metric} {labels:?} matches {} samples", found.len());
    found.first().map_or(0.0, |x| match &x.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric} is not a single value: {other:?}"),
    })
}

/// The observation count of the histogram `metric` with `labels` (its `+Inf` bucket).
fn observations(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Histogram(buckets) => buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count),
            other => panic!("{metric} is not a histogram: {other:?}"),
        })
        .sum()
}

fn requests(samples: &[Sample], verb: &str, resource: &str, code: &str) -> f64 {
    value(samples, "apiserver_request_total", &[("verb", verb), ("resource", resource), ("code", code)])
}

fn rev_gauge(samples: &[Sample], metric: &str) -> f64 {
    value(
        samples,
        metric,
        &[
            ("namespace_name", "default"),
            ("service_name", "lazy"),
            ("configuration_name", "lazy"),
            ("revision_name", REV),
        ],
    )
}

/// `text` without its ANSI colour sequences (the log is coloured as for a terminal).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ending at a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_and_autoscaler_figures_count_what_was_done() {
    // The scaling-decision events are at debug; ask for them.
    let env = vec![("RUST_LOG".to_string(), "info,kube=warn,hyper=warn,sluice::autoscaler=debug".to_string())];
    let s = Sluice::start_with(BIN, SluiceOptions { env, ..Default::default() }).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let api = s.api.clone();
    let client = s.client();
    apply(BIN, &s, AUTOSCALER).expect("apply config-autoscaler");
    eventually("config-autoscaler to be adopted", WAIT, || {
        s.log_text().contains("config-autoscaler applied").then_some(())
    })
    .await
    .expect("settings adopted");
    apply(BIN, &s, SERVICE).expect("apply the service");
    let service_url = format!("{api}/apis/serving.knative.dev/v1/namespaces/default/services/lazy");
    until("the service Ready at zero", WAIT, async || {
        let res = client.get(&service_url, &[]).await.ok()?;
        let ready = res.json()["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    })
    .await
    .expect("Ready");

    // At zero: the autoscaler has decided, and wants nothing.
    let samples = until("the autoscaler's first figures", WAIT, async || {
        let samples = scrape(&s).await;
        samples.iter().any(|x| x.metric == "autoscaler_desired_pods").then_some(samples)
    })
    .await
    .expect("autoscaler figures");
    assert_eq!(rev_gauge(&samples, "autoscaler_desired_pods"), 0.0);
    assert_eq!(rev_gauge(&samples, "autoscaler_ready_pods"), 0.0);
    // containerConcurrency 0: Knative's default target 100 at 70 % utilization.
    assert_eq!(rev_gauge(&samples, "autoscaler_target_concurrency_per_pod"), 70.0);
    assert_eq!(rev_gauge(&samples, "autoscaler_panic_mode"), 0.0);
    // Knative reports the metric scaled on alone: no rps gauges for a concurrency revision.
    assert!(
        samples.iter().all(|x| !x.metric.starts_with("autoscaler_") || !x.metric.contains("requests_per_second")),
        "rps gauges for a concurrency revision"
    );
    assert_eq!(value(&samples, "sluice_store_objects", &[("resource", "services")]), 1.0);
    assert_eq!(value(&samples, "sluice_store_objects", &[("resource", "revisions")]), 1.0);

    // GETs of the Service and of a missing one, by this client alone (the controllers read
    // Services through their watch, never by name).
    let before = scrape(&s).await;
    for _ in 0..GETS {
        assert_eq!(client.get(&service_url, &[]).await.expect("get").status.as_u16(), 200);
    }
    let missing = format!("{api}/apis/serving.knative.dev/v1/namespaces/default/services/nobody");
    assert_eq!(client.get(&missing, &[]).await.expect("get").status.as_u16(), 404);
    // A request without the token: refused, counted with its code.
    let anonymous = sluice_test_support::http::Client::new();
    assert_eq!(anonymous.get(&service_url, &[]).await.expect("get").status.as_u16(), 401);
    let after = scrape(&s).await;
    let delta = |verb, resource, code| requests(&after, verb, resource, code) - requests(&before, verb, resource, code);
    assert_eq!(delta("GET", "services", "200"), GETS as f64, "GETs of the service");
    assert_eq!(delta("GET", "services", "404"), 1.0, "the GET of a missing service");
    assert_eq!(delta("GET", "services", "401"), 1.0, "the GET without a token");
    // No label comes from a path: the missing service's name is nowhere.
    assert!(after.iter().all(|x| x.labels.values().all(|v| v != "nobody")), "a name from a path became a label");

    // A watch opened (the gauge counts it) and ended by its timeout (the gauge drops back).
    let open = |samples: &[Sample]| {
        value(samples, "apiserver_longrunning_requests", &[("verb", "WATCH"), ("resource", "namespaces")])
    };
    let watches_before = open(&after);
    let (status, mut lines) = sluice_test_support::wire::lines(
        &format!("{api}/api/v1/namespaces?watch=true&timeoutSeconds=2"),
        Some(s.token()),
    )
    .await
    .expect("watch");
    assert_eq!(status.as_u16(), 200);
    lines.recv().await.expect("the watch sends the existing namespaces");
    let during = scrape(&s).await;
    assert_eq!(open(&during), watches_before + 1.0, "the open watch is counted");
    drop(lines);
    let closed = until("the watch to be counted closed", WAIT, async || {
        let samples = scrape(&s).await;
        (open(&samples) == watches_before).then_some(samples)
    })
    .await
    .expect("watch closed");
    assert_eq!(
        requests(&closed, "WATCH", "namespaces", "200") - requests(&before, "WATCH", "namespaces", "200"),
        1.0,
        "one watch of namespaces"
    );

    // Scale from zero: the first request starts an instance, and the figures follow.
    let answer = traffic.get("lazy.default.localhost", "/").await.expect("answer");
    assert_eq!(answer, (200, "Hello World!\n".to_string()));
    let scaled = until("the autoscaler's figures at one instance", WAIT, async || {
        let samples = scrape(&s).await;
        (rev_gauge(&samples, "autoscaler_ready_pods") == 1.0).then_some(samples)
    })
    .await
    .expect("ready at one");
    assert!(rev_gauge(&scaled, "autoscaler_desired_pods") >= 1.0);
    assert!(rev_gauge(&scaled, "autoscaler_actual_pods") >= 1.0);
    let log = plain(&s.log_text());
    let decision = log
        .lines()
        .find(|l| {
            l.contains("scaling decision") && l.contains(&format!("revision=default/{REV}")) && l.contains("desired=1")
        })
        .unwrap_or_else(|| panic!("no scaling decision to 1 in the log:\n{log}"));
    for input in ["stable=", "panic=", "target=70", "ready=", "panicking=", "reason="] {
        assert!(decision.contains(input), "the decision event has no {input}: {decision}");
    }

    // Reconciles: counted per kind, each one timed. A reconcile still running when a scrape
    // renders can show its count before its duration (or the other way round), so the figures
    // are compared on a scrape where the controllers were between reconciles.
    let counted = |samples: &[Sample], kind: &str| {
        ["success", "error", "requeue"]
            .iter()
            .map(|r| value(samples, "sluice_reconcile_count", &[("kind", kind), ("result", r)]))
            .sum::<f64>()
    };
    let kinds = ["Service", "Configuration", "Route", "Revision"];
    let settled = until("a scrape between reconciles", WAIT, async || {
        let samples = scrape(&s).await;
        kinds
            .iter()
            .all(|kind| {
                observations(&samples, "sluice_reconcile_duration_seconds", &[("kind", kind)])
                    == counted(&samples, kind)
            })
            .then_some(samples)
    })
    .await;
    let settled = settled.unwrap_or_else(|e| {
        let samples = &scaled;
        let figures: Vec<_> = kinds
            .iter()
            .map(|k| {
                (k, counted(samples, k), observations(samples, "sluice_reconcile_duration_seconds", &[("kind", k)]))
            })
            .collect();
        panic!("{e}: reconciles counted vs timed per kind: {figures:?}")
    });
    for kind in kinds {
        assert!(value(&settled, "sluice_reconcile_count", &[("kind", kind), ("result", "success")]) >= 1.0, "{kind}");
        assert!(counted(&settled, kind) >= counted(&scaled, kind), "{kind}: counts only grow");
    }
    assert!(observations(&scaled, "sluice_store_write_duration_seconds", &[]) >= 3.0, "store writes are timed");

    // Delete the service: its objects leave the store, its revision's figures read zero.
    let deleted = client.send(Method::DELETE, &service_url, &[], "").await.expect("delete");
    assert_eq!(deleted.status.as_u16(), 200);
    let gone = until("the revision's figures zeroed", WAIT, async || {
        let samples = scrape(&s).await;
        let zero = ["autoscaler_desired_pods", "autoscaler_actual_pods", "autoscaler_ready_pods"]
            .iter()
            .all(|m| rev_gauge(&samples, m) == 0.0);
        let empty = value(&samples, "sluice_store_objects", &[("resource", "revisions")]) == 0.0;
        (zero && empty).then_some(samples)
    })
    .await
    .expect("zeroed after delete");
    assert_eq!(value(&gone, "sluice_store_objects", &[("resource", "services")]), 0.0);
    assert_eq!(requests(&gone, "DELETE", "services", "200") - requests(&before, "DELETE", "services", "200"), 1.0);

    // Work queues: a gauge per kind, back at 0 once the deletion's reconciles (owners, and
    // requests for objects no longer there) are done.
    let kinds = ["Service", "Configuration", "Route", "Revision"];
    let mut last = Vec::new();
    let idle = until("every kind's work queue empty", WAIT, async || {
        let samples = scrape(&s).await;
        last = kinds
            .iter()
            .map(|kind| {
                let depth = samples
                    .iter()
                    .find(|x| x.metric == "sluice_workqueue_depth" && x.labels.get("kind") == Some(*kind));
                depth.map(|x| match x.value {
                    Value::Gauge(v) => v,
                    ref other => panic!("sluice_workqueue_depth is not a gauge: {other:?}"),
                })
            })
            .collect();
        last.iter().all(|d| *d == Some(0.0)).then_some(())
    })
    .await;
    assert!(idle.is_ok(), "work queue depths by kind {kinds:?}: {last:?}");
}
