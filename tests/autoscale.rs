//! Autoscaling through the real binary, with Knative's `autoscale-go` sample image (which runs
//! `sluice sample autoscale`): containerConcurrency holds on every instance, max-scale bounds a
//! scale-up from zero, a burst at zero is queued and served without an error, min-scale keeps
//! instances through idleness, an idle revision scales to zero and starts again on the next
//! request, a scale-down under load loses nothing, and a full queue and a timeout while waiting
//! get 503 and 504 with their reasons. Windows are shortened through `config-autoscaler` (the
//! Knative minimum stable window, 6 s; a 1 s grace period), never by changing defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::api::Api;
use sluice_api::Revision;
use sluice_runtime::instance_pids;
use sluice_test_support::traffic::{InFlight, LoadReport, Traffic};
use sluice_test_support::{Sluice, SluiceOptions, apply, eventually, until};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const AUTOSCALE_GO: &str = "ghcr.io/knative/autoscale-go:latest";
const HELLO: &str = "ghcr.io/knative/helloworld-go:latest";

/// Short windows: the shortest stable window Knative allows, a one-second grace period.
const FAST: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  stable-window: 6s
  scale-to-zero-grace-period: 1s
";
/// The stable window and grace period of [`FAST`].
const IDLE_TO_ZERO: Duration = Duration::from_secs(7);

/// A server with [`FAST`] applied and adopted, its router, and its state directory as the
/// runtime names it.
async fn fast_sluice(args: &[&str]) -> (Sluice, Traffic, PathBuf) {
    let args = args.iter().map(|a| a.to_string()).collect();
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    apply(BIN, &s, FAST).expect("apply config-autoscaler");
    eventually("config-autoscaler to be adopted", WAIT, || {
        s.log_text().contains("config-autoscaler applied").then_some(())
    })
    .await
    .expect("settings adopted");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let state = s.state_dir.canonicalize().unwrap_or_else(|_| s.state_dir.clone());
    (s, traffic, state)
}

/// A Service `name` running `image` with revision annotations and extra `spec` lines.
fn service(name: &str, image: &str, annotations: &[(&str, &str)], spec: &[&str]) -> String {
    let annotations: String =
        annotations.iter().map(|(k, v)| format!("        autoscaling.knative.dev/{k}: \"{v}\"\n")).collect();
    let spec: String = spec.iter().map(|l| format!("      {l}\n")).collect();
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    metadata:
      annotations:
{annotations}    spec:
{spec}      containers:
        - image: {image}
"
    )
}

fn host(name: &str) -> String {
    format!("{name}.default.localhost")
}

/// The ports the revision's instances were started on, from its log.
fn instance_ports(s: &Sluice, rev: &str) -> Vec<u16> {
    let log = std::fs::read_to_string(s.state_dir.join("logs/default").join(format!("{rev}.log"))).unwrap_or_default();
    log.lines().filter_map(|l| l.split(" starting on port ").nth(1)?.split(':').next()?.parse().ok()).collect()
}

async fn actual_replicas(s: &Sluice, rev: &str) -> Option<i32> {
    let revisions: Api<Revision> = Api::namespaced(s.kube_client().ok()?, "default");
    revisions.get(rev).await.ok()?.status?.actual_replicas
}

/// Waits for the service to answer, then for its revision to scale to zero.
async fn serve_then_idle_to_zero(traffic: &Traffic, host: &str, state: &Path) {
    traffic.wait_for(host, WAIT, |_| true).await.expect("the revision serves");
    eventually("the revision to scale to zero", WAIT, || instance_pids(state).is_empty().then_some(()))
        .await
        .expect("scaled to zero");
}

/// Samples the instance count until stopped; the most seen.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Sampler {
    fn start(state: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, state) = (stop.clone(), state.to_path_buf());
        let task = tokio::task::spawn_blocking(move || {
            let mut most = 0;
            while !flag.load(Ordering::Relaxed) {
                most = most.max(instance_pids(&state).len());
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });
        Self { stop, task }
    }

    async fn most(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("sampler")
    }
}

/// `clients` concurrent loops, each sending `each` `GET path` requests; every status.
async fn concurrent(traffic: &Traffic, host: &str, path: &str, clients: usize, each: usize) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (traffic, host, path) = (traffic.clone(), host.to_string(), path.to_string());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..each {
                    answers.push(match traffic.get(&host, &path).await {
                        Ok(answer) => answer,
                        Err(e) => (0, e.to_string()),
                    });
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in futures::future::join_all(tasks).await {
        answers.extend(t.expect("client task"));
    }
    answers
}

fn assert_all_ok(answers: &[(u16, String)]) {
    let bad: Vec<_> = answers.iter().filter(|(code, _)| *code != 200).take(5).collect();
    assert!(
        bad.is_empty(),
        "{} of {} not 200, e.g. {bad:?}",
        answers.iter().filter(|a| a.0 != 200).count(),
        answers.len()
    );
}

fn assert_load_ok(what: &str, report: &LoadReport) {
    let total: u64 = report.statuses.values().sum();
    assert!(total > 0, "{what}: no request sent");
    assert_eq!(
        report.statuses.keys().copied().collect::<Vec<_>>(),
        [200],
        "{what}: every response 200: {:?} {:?} {:?}",
        report.statuses,
        report.failures,
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_concurrency_1_never_puts_two_requests_on_one_instance() {
    let (s, traffic, _) = fast_sluice(&[]).await;
    // Three instances from start to end: none is scaled away (taking its counts with it) before
    // it is asked below.
    let bounds = [("min-scale", "3"), ("max-scale", "3")];
    apply(BIN, &s, &service("one", AUTOSCALE_GO, &bounds, &["containerConcurrency: 1"])).expect("apply");
    let host = host("one");
    traffic.wait_for(&host, WAIT, |_| true).await.expect("serves");
    until("min-scale's three instances", WAIT, async || {
        (actual_replicas(&s, "one-00001").await == Some(3)).then_some(())
    })
    .await
    .expect("three instances");
    let answers = concurrent(&traffic, &host, "/?sleep=200", 5, 4).await;
    assert_all_ok(&answers);
    assert!(answers.iter().all(|(_, b)| b == "Slept for 200 milliseconds.\n"), "{answers:?}");

    // Every instance, asked directly: none ever held two requests, and together they served
    // every request (so none is missing from the count).
    // Each of the three instances wrote its port in the revision's log when it started.
    let ports = until("the three instances' ports in the log", WAIT, async || {
        let ports = instance_ports(&s, "one-00001");
        (ports.len() >= 3).then_some(ports)
    })
    .await
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(s.state_dir.join("logs/default/one-00001.log")).unwrap_or_default();
        panic!("{e}; the revision's log:\n{log}")
    });
    let (mut served, mut peaks) = (0, Vec::new());
    for port in &ports {
        let direct = Traffic::new(&format!("127.0.0.1:{port}"));
        // (An instance started as the load ended may only now be listening.)
        let body = until("the instance's stats", WAIT, async || match direct.get(&host, "/stats").await {
            Ok((200, body)) => Some(body),
            _ => None,
        })
        .await
        .expect("stats");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
        served += stats["served"].as_u64().expect("served");
        peaks.push(stats["max_in_flight"].as_u64().expect("max_in_flight"));
    }
    println!("instances {}, their peaks in flight {peaks:?}", ports.len());
    if served != 21 {
        let log = std::fs::read_to_string(s.state_dir.join("logs/default/one-00001.log")).unwrap_or_default();
        panic!(
            "served {served}, not the 20 requests and the first one, over instances on ports {ports:?}; the log:\n{log}"
        );
    }
    assert!(peaks.iter().all(|p| *p <= 1), "an instance held more than one request: {peaks:?}");
    assert!(peaks.contains(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_scale_10_bounds_100_concurrent_requests_from_zero_and_all_are_served() {
    let (s, traffic, state) = fast_sluice(&[]).await;
    let svc = service("ten", AUTOSCALE_GO, &[("max-scale", "10")], &["containerConcurrency: 1"]);
    apply(BIN, &s, &svc).expect("apply");
    let host = host("ten");
    serve_then_idle_to_zero(&traffic, &host, &state).await;

    let sampler = Sampler::start(&state);
    let answers = concurrent(&traffic, &host, "/?sleep=300", 100, 1).await;
    let most = sampler.most().await;
    println!("100 requests at zero: at most {most} instances");
    assert_eq!(answers.len(), 100);
    assert_all_ok(&answers);
    assert!(most <= 10, "max-scale 10, but {most} instances ran");
    assert!(most >= 2, "it scaled up from zero under 100 requests ({most} instances)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_requests_at_zero_is_queued_and_served_without_an_error() {
    let (s, traffic, state) = fast_sluice(&[]).await;
    // max-scale keeps this machine's load sane; the queue is what is under test.
    apply(BIN, &s, &service("burst", AUTOSCALE_GO, &[("max-scale", "3")], &[])).expect("apply");
    let host = host("burst");
    serve_then_idle_to_zero(&traffic, &host, &state).await;

    // 1,000 requests at once over 8 h2c connections (125 streams each, within the server's
    // stream limit), so the client needs no thousand sockets.
    let router = s.http.clone().expect("router");
    let mut senders = Vec::new();
    for _ in 0..8 {
        let stream = tokio::net::TcpStream::connect(&router).await.expect("connect");
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let started = Instant::now();
    let requests = (0..1000).map(|i| {
        let mut sender = senders[i % senders.len()].clone();
        let host = host.clone();
        async move {
            let req = Request::get(format!("http://{host}/?sleep=10")).body(Empty::<Bytes>::new()).expect("request");
            match sender.send_request(req).await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let body = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    (status, String::from_utf8_lossy(&body).into_owned())
                }
                Err(e) => (0, e.to_string()),
            }
        }
    });
    let answers = futures::future::join_all(requests).await;
    println!("1000 requests from zero answered in {:?}", started.elapsed());
    assert_eq!(answers.len(), 1000);
    assert!(!answers.iter().any(|(code, _)| *code == 503), "the queue (bound 10,000) refused some");
    assert_all_ok(&answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_scale_2_keeps_two_instances_through_idleness() {
    let (s, traffic, state) = fast_sluice(&[]).await;
    apply(BIN, &s, &service("pinned", AUTOSCALE_GO, &[("min-scale", "2")], &[])).expect("apply");
    let host = host("pinned");
    traffic.wait_for(&host, WAIT, |_| true).await.expect("serves");
    let pids = eventually("two instances", WAIT, || Some(instance_pids(&state)).filter(|p| p.len() == 2))
        .await
        .expect("min-scale 2 starts two");
    until("actualReplicas 2", WAIT, async || (actual_replicas(&s, "pinned-00001").await == Some(2)).then_some(()))
        .await
        .expect("status says two");
    // Idle past the stable window and the grace period, with room to spare.
    tokio::time::sleep(IDLE_TO_ZERO + Duration::from_secs(3)).await;
    let mut now = instance_pids(&state);
    now.sort_unstable();
    let mut before = pids;
    before.sort_unstable();
    assert_eq!(now, before, "the same two instances after {:?} idle", IDLE_TO_ZERO + Duration::from_secs(3));
    assert_eq!(actual_replicas(&s, "pinned-00001").await, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_revision_scales_to_zero_after_the_grace_period_and_serves_the_next_request() {
    let (s, traffic, state) = fast_sluice(&[]).await;
    apply(BIN, &s, &service("idle", AUTOSCALE_GO, &[], &[])).expect("apply");
    let host = host("idle");
    traffic.wait_for(&host, WAIT, |_| true).await.expect("serves");
    let last = Instant::now();
    eventually("the revision to scale to zero", WAIT, || instance_pids(&state).is_empty().then_some(()))
        .await
        .expect("scaled to zero");
    let idle = last.elapsed();
    println!("scaled to zero {idle:?} after the last request");
    assert!(idle >= Duration::from_secs(6), "not before the stable window passed: {idle:?}");
    until("actualReplicas 0", WAIT, async || (actual_replicas(&s, "idle-00001").await == Some(0)).then_some(()))
        .await
        .expect("status says zero");

    let cold = Instant::now();
    let answer = traffic.get(&host, "/?sleep=1").await.expect("answer");
    let took = cold.elapsed();
    println!("cold start: {} ms", took.as_millis());
    assert_eq!(answer, (200, "Slept for 1 milliseconds.\n".to_string()));
    assert_eq!(instance_pids(&state).len(), 1, "one instance started for it");
}

/// Scale to zero is Knative's default, so a blue-green edit usually names a revision that has
/// gone idle: the route must take it at once (requests wake it), not wait for an instance that
/// only traffic would start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_edit_naming_a_revision_at_zero_is_assigned_and_its_request_wakes_it() {
    let (s, traffic, state) = fast_sluice(&[]).await;
    apply(BIN, &s, &service("bg", HELLO, &[], &[])).expect("apply v1");
    let host = host("bg");
    serve_then_idle_to_zero(&traffic, &host, &state).await;
    until("actualReplicas 0", WAIT, async || (actual_replicas(&s, "bg-00001").await == Some(0)).then_some(()))
        .await
        .expect("status says zero");
    // v2, with v1 kept at half the traffic under a tag.
    let v2 = service("bg", HELLO, &[], &[]).replace(
        "      containers:\n        - image: ghcr.io/knative/helloworld-go:latest\n",
        "      containers:\n        - image: ghcr.io/knative/helloworld-go:latest\n          env: [{name: TARGET, value: v2}]\n  traffic:\n    - {revisionName: bg-00001, percent: 50, tag: old}\n    - {latestRevision: true, percent: 50}\n",
    );
    assert!(v2.contains("tag: old"), "{v2}");
    apply(BIN, &s, &v2).expect("apply v2");
    let old = format!("old-{host}");
    let answer = traffic.wait_for(&old, WAIT, |_| true).await.expect("the tag serves");
    assert_eq!(answer, "Hello World!\n", "the old revision, woken by the request");
    let services: Api<sluice_api::Service> = Api::namespaced(s.kube_client().expect("client"), "default");
    until("the service Ready with both targets", WAIT, async || {
        let svc = services.get("bg").await.ok()?;
        let status = svc.status?;
        let ready = sluice_api::conditions::is_true(&status.conditions, "Ready");
        (ready && status.traffic.len() == 2).then_some(())
    })
    .await
    .expect("the route took the revision at zero");
}

/// `initial-scale: 0` is refused until the cluster's `config-autoscaler` allows it; then the
/// revision is Ready without ever starting an instance, and the first request starts one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_scale_zero_needs_the_cluster_s_leave_and_is_ready_without_an_instance() {
    let s = Sluice::start(BIN).expect("start sluice");
    let state = s.state_dir.canonicalize().unwrap_or_else(|_| s.state_dir.clone());
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let svc = service("lazy", HELLO, &[("initial-scale", "0")], &[]);
    let refused = apply(BIN, &s, &svc).expect_err("the stock config-autoscaler does not allow it");
    assert!(
        refused.to_string().contains("autoscaling.knative.dev/initial-scale=0 not allowed by cluster"),
        "{refused}"
    );

    let allow = FAST.replace("\ndata:\n", "\ndata:\n  allow-zero-initial-scale: \"true\"\n");
    apply(BIN, &s, &allow).expect("apply config-autoscaler");
    // Admission reads the stored map; the autoscaler must have adopted it too.
    eventually("config-autoscaler to be adopted", WAIT, || {
        s.log_text().contains("config-autoscaler applied").then_some(())
    })
    .await
    .expect("settings adopted");
    apply(BIN, &s, &svc).expect("allowed now");
    let services: Api<sluice_api::Service> = Api::namespaced(s.kube_client().expect("client"), "default");
    until("the service Ready", WAIT, async || {
        let status = services.get("lazy").await.ok()?.status?;
        sluice_api::conditions::is_true(&status.conditions, "Ready").then_some(())
    })
    .await
    .expect("Ready at zero");
    assert!(instance_pids(&state).is_empty(), "no instance was started");
    assert_eq!(actual_replicas(&s, "lazy-00001").await, Some(0));

    let answer = traffic.get(&host("lazy"), "/").await.expect("answer");
    assert_eq!(answer, (200, "Hello World!\n".to_string()), "the first request starts it");
    assert_eq!(instance_pids(&state).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_under_load_loses_no_request() {
    let (s, traffic, state) = fast_sluice(&[]).await;
    let svc = service(
        "shrink",
        AUTOSCALE_GO,
        &[("max-scale", "4"), ("target-utilization-percentage", "100")],
        &["containerConcurrency: 1"],
    );
    apply(BIN, &s, &svc).expect("apply");
    let host = host("shrink");
    traffic.wait_for(&host, WAIT, |_| true).await.expect("serves");

    let steady = traffic.start_load_on(&host, "/?sleep=50", 1);
    let surge = traffic.start_load_on(&host, "/?sleep=100", 4);
    let peak = eventually("a scale-up to at least three instances", WAIT, || {
        Some(instance_pids(&state).len()).filter(|n| *n >= 3)
    })
    .await
    .expect("scaled up");
    let surge = surge.stop().await;
    assert_load_ok("the surge", &surge);
    // The steady client alone needs one instance: the rest leave routing, drain and stop
    // while its requests keep coming.
    let least = Arc::new(AtomicUsize::new(peak));
    let seen = least.clone();
    eventually("a scale-down to one instance", WAIT, || {
        let n = instance_pids(&state).len();
        seen.fetch_min(n, Ordering::Relaxed);
        (n == 1).then_some(())
    })
    .await
    .expect("scaled down");
    let more = steady.sent();
    until("more requests after the scale-down", WAIT, async || (steady.sent() >= more + 5).then_some(()))
        .await
        .expect("more");
    let steady = steady.stop().await;
    println!("scaled {peak} → 1 under load; steady {:?}, surge {:?}", steady.statuses, surge.statuses);
    assert_load_ok("the steady load", &steady);
    assert_eq!(least.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_and_a_wait_past_the_timeout_504() {
    let (s, traffic, state) = fast_sluice(&["--queue-depth", "2"]).await;
    // Waiting counts against the response-start timeout (2 s); the held request's body runs
    // under the longer hard cap (10 s), so its slot stays taken while the others wait.
    let svc = service(
        "full",
        HELLO,
        &[("max-scale", "1")],
        &["containerConcurrency: 1", "timeoutSeconds: 10", "responseStartTimeoutSeconds: 2"],
    );
    apply(BIN, &s, &svc).expect("apply");
    let host = host("full");
    traffic.wait_for(&host, WAIT, |b| b == "Hello World!\n").await.expect("serves");
    // The only slot of the only instance, held: its answer has begun, its upload has not ended.
    let held = InFlight::start(s.http.as_deref().expect("router"), &host, "held;", WAIT).await.expect("held");
    assert_eq!(held.status, 200);

    let client = sluice_test_support::http::Client::new();
    let url = format!("http://{}/", traffic.router);
    let tries = (0..5).map(|_| {
        let (client, url, host) = (client.clone(), url.clone(), host.clone());
        async move {
            let start = Instant::now();
            let res = client.get(&url, &[("host", &host)]).await.expect("answer");
            let retry = res.headers.get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            (res.status.as_u16(), retry, res.text(), start.elapsed())
        }
    });
    let answers = futures::future::join_all(tries).await;
    let full: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    let late: Vec<_> = answers.iter().filter(|a| a.0 == 504).collect();
    assert_eq!((full.len(), late.len()), (3, 2), "two wait in the queue of two, three are refused: {answers:?}");
    for (_, retry, body, took) in &full {
        assert_eq!(retry.as_deref(), Some("1"), "503 says when to retry");
        assert_eq!(body, "too many requests are waiting for revision default/full-00001; retry later\n");
        assert!(*took < Duration::from_millis(1500), "refused at once, not after {took:?}");
    }
    for (_, _, body, took) in &late {
        assert_eq!(
            body,
            "no instance of revision default/full-00001 could take the request within its timeout of 2s\n"
        );
        assert!(*took >= Duration::from_millis(1900), "waited its timeout, not {took:?}");
    }
    assert_eq!(instance_pids(&state).len(), 1, "max-scale 1");
    assert_eq!(held.finish("done").await.expect("finish"), "held;done");
    assert_eq!(traffic.get(&host, "/").await.expect("answer"), (200, "Hello World!\n".to_string()));
}
