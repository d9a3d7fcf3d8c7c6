//! Serving through the real binary: Knative's samples applied unchanged answer on their URLs,
//! a latest + named-revision split holds its percents, a route naming a missing revision keeps
//! its old traffic and says why, and a 100 MiB upload streams through without the server
//! holding it in memory.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use sluice_api::conditions::{ConditionStatus, find};
use sluice_api::{Route, Service};
use sluice_test_support::http::settled;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply, sample, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(60);

fn client(s: &Sluice) -> kube::Client {
    s.kube_client().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helloworld_sample_answers_on_its_url_and_reports_ready() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    let host = "helloworld-go.default.localhost";
    let body = traffic.wait_for(host, WAIT, |b| b.contains("Hello")).await.expect("served");
    assert_eq!(body, "Hello Go Sample v1!\n");
    // The instance sees Knative's environment.
    assert_eq!(traffic.get(host, "/env/K_REVISION").await.expect("env").1, "helloworld-go-00001");
    assert_eq!(traffic.get(host, "/env/K_SERVICE").await.expect("env").1, "helloworld-go");
    assert_eq!(traffic.get(host, "/env/K_CONFIGURATION").await.expect("env").1, "helloworld-go");
    assert!(traffic.get(host, "/env/PORT").await.expect("env").1.parse::<u16>().is_ok());

    let services: Api<Service> = Api::namespaced(client(&s), "default");
    let svc = until("the service to be Ready", WAIT, async || {
        let svc = services.get("helloworld-go").await.ok()?;
        let ready = find(&svc.status.as_ref()?.conditions, "Ready")?.status == ConditionStatus::True;
        ready.then_some(svc)
    })
    .await
    .expect("the service to be Ready");
    let st = svc.status.expect("status");
    assert_eq!(st.url.as_deref(), Some("http://helloworld-go.default.localhost"));
    assert_eq!(st.latest_created_revision_name.as_deref(), Some("helloworld-go-00001"));
    assert_eq!(st.latest_ready_revision_name.as_deref(), Some("helloworld-go-00001"));
    assert_eq!(st.traffic[0].percent, Some(100));
    // Once Ready, nothing rewrites anything: the controllers agree on every object.
    settled(&s, Duration::from_millis(500), Duration::from_secs(10)).await.expect("the store settles");
    // Unknown hosts get a 404 that names them.
    let (code, body) = traffic.get("nope.default.localhost", "/").await.expect("404");
    assert_eq!(code, 404);
    assert!(body.contains("nope.default.localhost"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_and_named_revision_split_fifty_fifty() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let host = "hello.default.localhost";
    // Knative's tutorial: first revision says World, the sample then splits with the second.
    let first = sample(ROOT, "first-traffic-split-hello.yaml", "").expect("sample");
    let v1 = first.replace("value: \"Knative\"", "value: \"World\"");
    let v1 = &v1[..v1.find("  traffic:").expect("traffic block")];
    apply(BIN, &s, v1).expect("first revision");
    traffic.wait_for(host, WAIT, |b| b.contains("Hello World!")).await.expect("v1 serves");
    apply(BIN, &s, &first).expect("split");
    let routes: Api<Route> = Api::namespaced(client(&s), "default");
    until("the 50/50 split to be assigned", WAIT, async || {
        let rt = routes.get("hello").await.ok()?;
        let t = rt.status?.traffic;
        (t.len() == 2
            && t[0].revision_name.as_deref() == Some("hello-00002")
            && t[1].revision_name.as_deref() == Some("hello-00001"))
        .then_some(())
    })
    .await
    .expect("the 50/50 split to be assigned");
    // The router is programmed before the route's status says so, and nothing else sends to the
    // route meanwhile: the 2,000 requests are a consecutive run of its split sequence, all
    // through the 50/50 table, so each revision gets 1,000 of them to within two.
    let counts = traffic.split(host, 2000, 8).await;
    assert_eq!(counts.len(), 2, "only the two revisions answer: {counts:?}");
    for body in ["Hello World!", "Hello Knative!"] {
        let got = counts.get(body).copied().unwrap_or(0);
        assert!(got.abs_diff(1000) <= 2, "{body}: {got} of 2000 (want 1000 ±2): {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_naming_a_missing_revision_keeps_its_traffic_and_says_why() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    let host = "helloworld-go.default.localhost";
    traffic.wait_for(host, WAIT, |b| b.contains("Hello")).await.expect("served");

    let services: Api<Service> = Api::namespaced(client(&s), "default");
    let patch = json!({"spec": {"traffic": [{"revisionName": "foobar", "percent": 100}]}});
    services.patch("helloworld-go", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    let routes: Api<Route> = Api::namespaced(client(&s), "default");
    let cond = until("the route to report the missing revision", WAIT, async || {
        let rt = routes.get("helloworld-go").await.ok()?;
        let st = rt.status?;
        (st.observed_generation == rt.metadata.generation).then_some(())?;
        find(&st.conditions, "AllTrafficAssigned").filter(|c| c.status == ConditionStatus::False).cloned()
    })
    .await
    .expect("the route to report the missing revision");
    assert_eq!(cond.reason.as_deref(), Some("RevisionMissing"));
    assert_eq!(cond.message.as_deref(), Some(r#"Revision "foobar" referenced in traffic not found."#));
    let rt = routes.get("helloworld-go").await.expect("route");
    assert_eq!(
        find(&rt.status.as_ref().expect("status").conditions, "Ready").map(|c| c.status),
        Some(ConditionStatus::False)
    );
    assert_eq!(
        rt.status.expect("status").traffic[0].revision_name.as_deref(),
        Some("helloworld-go-00001"),
        "old traffic kept"
    );
    let counts = traffic.split(host, 200, 4).await;
    assert_eq!(counts.get("Hello Go Sample v1!"), Some(&200), "still served by the old revision: {counts:?}");
    let routes_ready = until("the service to mirror the route", WAIT, async || {
        let svc = services.get("helloworld-go").await.ok()?;
        find(&svc.status?.conditions, "RoutesReady").filter(|c| c.status == ConditionStatus::False).cloned()
    })
    .await
    .expect("the service to mirror the route");
    assert_eq!(routes_ready.reason.as_deref(), Some("RevisionMissing"));
}

/// The resident set of `pid` in KiB, from `/proc/{pid}/status`; an error (never 0) when it
/// cannot be read, so the memory check cannot pass without measuring.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS line in {path}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_upload_streams_through_with_flat_memory() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 100 * 1024 * 1024;
    if !std::path::Path::new("/proc/self/status").is_file() {
        eprintln!("skipping: memory is read from /proc/PID/status, and this machine has no /proc");
        return;
    }
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    let traffic = Traffic::new(&router);
    apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    let host = "helloworld-go.default.localhost";
    traffic.wait_for(host, WAIT, |b| b.contains("Hello")).await.expect("served");
    let pid = s.pid().expect("pid");
    let before = rss_kib(pid).expect("the server's memory before the upload");

    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let body = StreamBody::new(futures::stream::iter(
        (0..TOTAL / CHUNK).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))),
    ));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let req = http::Request::post(format!("http://{router}/echo")).header("host", host).body(body).expect("request");
    let res = client.request(req).await.expect("response");
    assert_eq!(res.status(), 200);
    let mut received = 0usize;
    let mut peak = before;
    let mut frames = res.into_body().into_data_stream();
    while let Some(chunk) = frames.next().await {
        received += chunk.expect("body").len();
        if received % (8 * 1024 * 1024) < CHUNK {
            peak = peak.max(rss_kib(pid).expect("the server's memory during the upload"));
        }
    }
    assert_eq!(received, TOTAL, "every byte echoed back");
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(growth_mib < 32, "the server grew {growth_mib} MiB while streaming 100 MiB (from {before} KiB)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_deleted_mid_rollout_leaves_no_route_and_no_instance() {
    let s = Sluice::start(BIN).expect("start sluice");
    let state = s.state_dir.canonicalize().expect("state dir");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let services: Api<Service> = Api::namespaced(client(&s), "default");
    for round in 0..3 {
        apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
        let host = "helloworld-go.default.localhost";
        traffic.wait_for(host, WAIT, |b| b.contains("Hello")).await.expect("served");
        // A new revision, and the service deleted while the controllers are busy with it.
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"image": "ghcr.io/knative/helloworld-go", "env": [{"name": "TARGET", "value": format!("round {round}")}]}]}}}});
        services.patch("helloworld-go", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
        services.delete("helloworld-go", &DeleteParams::default()).await.expect("delete");

        let (code, body) = until("the URL to be gone", WAIT, async || {
            let (code, body) = traffic.get(host, "/").await.ok()?;
            (code == 404).then_some((code, body))
        })
        .await
        .expect("the URL to be gone");
        assert!(body.contains("helloworld-go.default.localhost"), "{code} {body}");
        until("every instance to stop", WAIT, async || sluice_runtime::instance_pids(&state).is_empty().then_some(()))
            .await
            .expect("every instance to stop");
        settled(&s, Duration::from_millis(500), Duration::from_secs(10)).await.expect("the store settles");
        // Nothing the controllers were writing survives its owner.
        for kind in ["configurations", "routes", "revisions"] {
            let out = s.command(BIN).args(["get", kind, "--api", &s.api, "-o", "json"]).output().expect("get");
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{kind} left behind: {list}");
        }
        // And the route stays gone (no late reconcile publishes it again).
        assert_eq!(traffic.get(host, "/").await.expect("answer").0, 404);
    }
}
