//! Knative's blue-green rollout, end to end through the real binary: a Configuration with two
//! revisions and the four Route steps of `manifests/samples/knative/blue-green-*.yaml`. After
//! each step every one of 2,000 requests reaches the revision at 100 %, a 50/50 split lands
//! within two requests of 1,000 each (the README's promise), and the `v2` tag URL reaches only
//! the second revision; a load from several clients running across every edit sees no answer
//! but 200.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::Api;
use sluice_api::Route;
use sluice_test_support::http::settled;
use sluice_test_support::traffic::{LoadReport, Traffic};
use sluice_test_support::{Sluice, apply, sample};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MAIN: &str = "blue-green-demo.default.localhost";
const V2: &str = "v2-blue-green-demo.default.localhost";
const BLUE: &str = "Hello blue!";
const GREEN: &str = "Hello green!";
const WAIT: Duration = Duration::from_secs(60);

fn configuration(target: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Configuration
metadata:
  name: blue-green-demo
  namespace: default
spec:
  template:
    spec:
      containers:
      - image: ghcr.io/knative/helloworld-go:latest
        env:
        - name: TARGET
          value: {target}
"
    )
}

/// Waits until the route has assigned exactly `want` (revision, percent) pairs.
async fn assigned(routes: &Api<Route>, want: &[(&str, i64)]) {
    let start = tokio::time::Instant::now();
    loop {
        if let Ok(rt) = routes.get("blue-green-demo").await {
            let got: Vec<(String, i64)> = rt
                .status
                .map(|s| {
                    s.traffic
                        .iter()
                        .map(|t| (t.revision_name.clone().unwrap_or_default(), t.percent_or_zero()))
                        .collect()
                })
                .unwrap_or_default();
            if got.iter().map(|(r, p)| (r.as_str(), *p)).eq(want.iter().copied()) {
                return;
            }
            assert!(start.elapsed() < WAIT, "route never assigned {want:?}; has {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every one of the `n` requests answered with `body`.
fn all(counts: &BTreeMap<String, usize>, body: &str, n: usize) {
    assert_eq!(counts, &BTreeMap::from([(body.to_string(), n)]), "all {n} from {body:?}");
}

/// `body` answered `want` of the requests, give or take two.
fn within_two(counts: &BTreeMap<String, usize>, body: &str, want: usize) {
    let got = counts.get(body).copied().unwrap_or(0);
    assert!(got.abs_diff(want) <= 2, "{body}: {got} (want {want} ±2): {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_by_route_edits_with_zero_failed_requests() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router address"));
    let client = s.kube_client().expect("client");
    let routes: Api<Route> = Api::namespaced(client, "default");

    // Step 1: blue, and a route sending it everything.
    apply(BIN, &s, &configuration("blue")).expect("blue configuration");
    apply(BIN, &s, &sample(ROOT, "blue-green-1-route-100-first.yaml", "blue-green-demo").expect("sample"))
        .expect("step 1");
    traffic.wait_for(MAIN, WAIT, |b| b.contains(BLUE)).await.expect("blue serves");
    // The load runs across every edit. It shares the route's split sequence, which does not
    // matter where one revision takes 100 % (every answer must come from it, whoever sent the
    // request) but would make a 50/50 count inexact, so it is stopped for that measurement.
    let load = traffic.start_load(MAIN, 4);

    all(&traffic.split(MAIN, 2000, 8).await, BLUE, 2000);

    // Green is stamped; traffic does not move until the route says so.
    apply(BIN, &s, &configuration("green")).expect("green configuration");
    all(&traffic.split(MAIN, 500, 8).await, BLUE, 500);

    // Step 2: green staged under the v2 tag at 0%. The router is programmed before the route's
    // status says so, so every request below is sent after the edit reached the router.
    apply(BIN, &s, &sample(ROOT, "blue-green-2-route-stage-v2-0pct.yaml", "blue-green-demo").expect("sample"))
        .expect("step 2");
    assigned(&routes, &[("blue-green-demo-00001", 100), ("blue-green-demo-00002", 0)]).await;
    all(&traffic.split(MAIN, 2000, 8).await, BLUE, 2000);
    all(&traffic.split(V2, 500, 4).await, GREEN, 500);

    // Step 3: half and half, measured with the load stopped: the 2,000 requests are then a
    // consecutive run of the route's sequence, all sent after the 50/50 table was in place.
    apply(BIN, &s, &sample(ROOT, "blue-green-3-route-50-50.yaml", "blue-green-demo").expect("sample")).expect("step 3");
    assigned(&routes, &[("blue-green-demo-00001", 50), ("blue-green-demo-00002", 50)]).await;
    let before = load.stop().await;
    let counts = traffic.split(MAIN, 2000, 8).await;
    assert_eq!(counts.len(), 2, "only blue and green answer: {counts:?}");
    within_two(&counts, BLUE, 1000);
    within_two(&counts, GREEN, 1000);
    all(&traffic.split(V2, 500, 4).await, GREEN, 500);

    // Step 4: all green, under load again.
    let load = traffic.start_load(MAIN, 4);
    apply(BIN, &s, &sample(ROOT, "blue-green-4-route-0-100.yaml", "blue-green-demo").expect("sample")).expect("step 4");
    assigned(&routes, &[("blue-green-demo-00001", 0), ("blue-green-demo-00002", 100)]).await;
    all(&traffic.split(MAIN, 2000, 8).await, GREEN, 2000);
    all(&traffic.split(V2, 500, 4).await, GREEN, 500);
    let after = load.stop().await;

    let total = |r: &LoadReport| r.statuses.values().sum::<u64>();
    assert!(total(&before) + total(&after) > 1000, "the background load ran: {before:?} {after:?}");
    for (edits, report) in [("green, steps 2 and 3", before), ("step 4", after)] {
        assert!(total(&report) > 100, "the background load ran across {edits}: {report:?}");
        assert_eq!(
            report.statuses.keys().copied().collect::<Vec<_>>(),
            vec![200],
            "every request across {edits} answered 200: {report:?}"
        );
    }
    // And the controllers agree: once the last edit is in, nothing keeps rewriting objects.
    settled(&s, Duration::from_millis(500), Duration::from_secs(10)).await.expect("the store settles");
}
