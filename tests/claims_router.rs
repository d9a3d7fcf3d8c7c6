//! The router's README claims through the real binary: a container port named `h2c` is reached
//! over HTTP/2 prior knowledge, `timeoutSeconds` ends in a 504 naming the revision, the
//! `config-features` ConfigMap turns `Knative-Serving-Tag` routing on and off, `CONNECT` gets
//! 405, and a host claimed by a second route stays with the route that served it first.

use std::time::Duration;

use kube::api::Api;
use sluice_api::Route;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::wire::{exchange, h2c_get};
use sluice_test_support::{Sluice, apply, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

/// A Service `name` running the sample app (`Hello {name}!`); `spec` is YAML added to the
/// template's spec, `container` to its container, `traffic` under `spec.traffic`.
fn service(name: &str, spec: &str, container: &str, traffic: &str) -> String {
    let traffic = if traffic.is_empty() { String::new() } else { format!("  traffic:\n{traffic}") };
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    spec:
{spec}      containers:
        - image: ghcr.io/knative/helloworld-go
          env:
            - name: TARGET
              value: {name}
{container}{traffic}"
    )
}

fn client(s: &Sluice) -> kube::Client {
    s.kube_client().expect("client")
}

fn router(s: &Sluice) -> String {
    s.http.clone().expect("router address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_port_named_h2c_is_reached_over_http2_prior_knowledge() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(&router(&s));
    let h2c_port = "          ports:\n            - name: h2c\n              containerPort: 8080\n";
    apply(BIN, &s, &service("streams", "", h2c_port, "")).expect("h2c service");
    apply(BIN, &s, &service("plain", "", "", "")).expect("plain service");
    traffic.wait_for("streams.default.localhost", WAIT, |b| b == "Hello streams!\n").await.expect("h2c serves");
    traffic.wait_for("plain.default.localhost", WAIT, |b| b == "Hello plain!\n").await.expect("plain serves");

    // Whatever the client speaks, the instance sees the protocol its port names.
    assert_eq!(
        traffic.get("streams.default.localhost", "/version").await.expect("h1 → h2c"),
        (200, "HTTP/2.0\n".to_string())
    );
    assert_eq!(
        traffic.get("plain.default.localhost", "/version").await.expect("h1 → h1"),
        (200, "HTTP/1.1\n".to_string())
    );
    let (code, body) = h2c_get(&router(&s), "streams.default.localhost", "/version").await.expect("h2c → h2c");
    assert_eq!((code.as_u16(), body.as_str()), (200, "HTTP/2.0\n"));
    let (code, body) = h2c_get(&router(&s), "plain.default.localhost", "/version").await.expect("h2c → h1");
    assert_eq!((code.as_u16(), body.as_str()), (200, "HTTP/1.1\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_slower_than_timeout_seconds_gets_504_naming_the_revision() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(&router(&s));
    apply(BIN, &s, &service("slow", "      timeoutSeconds: 1\n", "", "")).expect("apply");
    let host = "slow.default.localhost";
    traffic.wait_for(host, WAIT, |b| b == "Hello slow!\n").await.expect("served");

    assert_eq!(traffic.get(host, "/sleep?ms=200").await.expect("fast"), (200, "slept 200 ms\n".to_string()));
    let started = tokio::time::Instant::now();
    let (code, body) = traffic.get(host, "/sleep?ms=4000").await.expect("slow");
    let took = started.elapsed();
    assert_eq!((code, body.as_str()), (504, "revision default/slow-00001 did not respond within 1s\n"));
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gets_405_even_on_a_served_host() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(&router(&s));
    apply(BIN, &s, &service("hello", "", "", "")).expect("apply");
    let host = "hello.default.localhost";
    traffic.wait_for(host, WAIT, |b| b == "Hello hello!\n").await.expect("served");

    let request = format!("CONNECT {host}:80 HTTP/1.1\r\nHost: {host}:80\r\nConnection: close\r\n\r\n");
    let res = exchange(&router(&s), &request, Duration::from_secs(10)).await.expect("answer");
    assert_eq!(res.status_line, "HTTP/1.1 405 Method Not Allowed", "{res:?}");
    assert_eq!(res.body, "method CONNECT is not supported\n");
    // The same host still answers other methods.
    assert_eq!(traffic.get(host, "/").await.expect("GET").0, 200);
}

/// Sends `n` requests to `host` with `Knative-Serving-Tag: tag` and returns the bodies seen.
async fn with_tag_header(traffic: &Traffic, host: &str, tag: &str, n: usize) -> Vec<String> {
    let client = sluice_test_support::http::Client::new();
    let mut bodies = Vec::with_capacity(n);
    for _ in 0..n {
        let res = client
            .get(&format!("http://{}/", traffic.router), &[("host", host), ("knative-serving-tag", tag)])
            .await
            .expect("request");
        bodies.push(format!("{} {}", res.status.as_u16(), res.text()));
    }
    bodies.sort();
    bodies.dedup();
    bodies
}

/// Polls until a request with the tag header answers `want`.
async fn until_tag_header_answers(traffic: &Traffic, host: &str, tag: &str, want: &str) {
    until(&format!("tag header {tag} on {host} to answer {want:?}"), WAIT, async || {
        (with_tag_header(traffic, host, tag, 1).await == [format!("200 {want}")]).then_some(())
    })
    .await
    .expect("the tag header routing to change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_features_config_map_turns_tag_header_routing_on_and_off() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(&router(&s));
    let rev = |n: u8, target: &str| {
        format!(
            "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: tagged
spec:
  template:
    metadata:
      name: tagged-rev{n}
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go
          env:
            - name: TARGET
              value: {target}
"
        )
    };
    let host = "tagged.default.localhost";
    apply(BIN, &s, &rev(1, "first")).expect("first revision");
    traffic.wait_for(host, WAIT, |b| b == "Hello first!\n").await.expect("first serves");
    // Knative's sample: the first revision keeps a tag and 0 %, the second takes everything.
    let split = "    - revisionName: tagged-rev1\n      percent: 0\n      tag: rev1\n    - revisionName: tagged-rev2\n      percent: 100\n";
    apply(BIN, &s, &format!("{}  traffic:\n{split}", rev(2, "second"))).expect("second revision");
    traffic.wait_for(host, WAIT, |b| b == "Hello second!\n").await.expect("second serves");
    traffic.wait_for("rev1-tagged.default.localhost", WAIT, |b| b == "Hello first!\n").await.expect("tag host");

    // Off by default: the header is ignored.
    assert_eq!(with_tag_header(&traffic, host, "rev1", 20).await, ["200 Hello second!\n"]);

    let features = |value: &str| {
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-features
  namespace: knative-serving
data:
  tag-header-based-routing: {value}
"
        )
    };
    apply(BIN, &s, &features("enabled")).expect("enable");
    until_tag_header_answers(&traffic, host, "rev1", "Hello first!\n").await;
    assert_eq!(with_tag_header(&traffic, host, "rev1", 20).await, ["200 Hello first!\n"]);
    // An unknown tag falls back to the split; no header, the split.
    assert_eq!(with_tag_header(&traffic, host, "nope", 10).await, ["200 Hello second!\n"]);
    assert_eq!(traffic.get(host, "/").await.expect("no header"), (200, "Hello second!\n".to_string()));

    apply(BIN, &s, &features("disabled")).expect("disable");
    until_tag_header_answers(&traffic, host, "rev1", "Hello second!\n").await;
    assert_eq!(with_tag_header(&traffic, host, "rev1", 20).await, ["200 Hello second!\n"]);

    apply(BIN, &s, &features("Enabled")).expect("enable again");
    until_tag_header_answers(&traffic, host, "rev1", "Hello first!\n").await;
    let out = s
        .command(BIN)
        .args(["delete", "configmap", "config-features", "-n", "knative-serving", "--api", &s.api])
        .output()
        .expect("sluice delete");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    until_tag_header_answers(&traffic, host, "rev1", "Hello second!\n").await;
    assert_eq!(with_tag_header(&traffic, host, "rev1", 20).await, ["200 Hello second!\n"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_claimed_by_a_second_route_stays_with_the_route_that_served_it_first() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(&router(&s));
    // Route `b-a` serves b-a.default.localhost; then route `a` tags a target `b`, whose host
    // is b-a.default.localhost too.
    apply(BIN, &s, &service("b-a", "", "", "")).expect("b-a");
    traffic.wait_for("b-a.default.localhost", WAIT, |b| b == "Hello b-a!\n").await.expect("b-a serves");
    apply(BIN, &s, &service("a", "", "", "    - latestRevision: true\n      percent: 100\n      tag: b\n")).expect("a");
    // The router is programmed before the Route's status shows the traffic.
    let routes: Api<Route> = Api::namespaced(client(&s), "default");
    until("route a to be assigned its traffic", WAIT, async || {
        let st = routes.get("a").await.ok()?.status?;
        st.traffic.iter().any(|t| t.tag.as_deref() == Some("b") && t.revision_name.is_some()).then_some(())
    })
    .await
    .expect("route a assigned");

    let counts = traffic.split("b-a.default.localhost", 50, 2).await;
    assert_eq!(counts.get("Hello b-a!"), Some(&50), "the first route keeps its host: {counts:?}");
    assert_eq!(
        traffic.get("a.default.localhost", "/").await.expect("a"),
        (404, "no route for host \"a.default.localhost\"\n".to_string()),
        "the second route is not published"
    );
    assert!(s.log_text().contains("route not published"), "{}", s.log_text());

    // Once the first route is gone, the second is published whole.
    let out = s.command(BIN).args(["delete", "ksvc", "b-a", "--api", &s.api]).output().expect("sluice delete");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    traffic.wait_for("a.default.localhost", WAIT, |b| b == "Hello a!\n").await.expect("a serves");
    traffic.wait_for("b-a.default.localhost", WAIT, |b| b == "Hello a!\n").await.expect("tag b of a");
}
