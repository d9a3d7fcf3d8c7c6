//! `sluice serve --access-log FILE` through the real binary: a mix of requests (the default
//! split's 200, a 404 for an unknown host, a rule's and a tag host's 200, an upload echoed back,
//! the app's own 404, the router's 502 for an instance that died) gives exactly one JSON line
//! each, with the status, revision, instance, rule or tag, body bytes, the client's trace id
//! and the router's reason that request had; no line was dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use prometheus_parse::{Scrape, Value};
use serde_json::Value as Json;
use sluice_test_support::http::Client;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "picks.default.localhost";
const TAG_HOST: &str = "canary-picks.default.localhost";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// One revision, reached by the default split, a rule `beta` on `/beta` and the tag `canary`.
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
";

/// One request of the mix: method, host, path, body, an extra header, the status the client
/// must see.
type Step<'a> = (Method, &'a str, String, String, Option<(&'a str, &'a str)>, u16);

/// The lines of the log so far that carry the mix's `n=` marker, by marker.
fn marked(path: &std::path::Path) -> BTreeMap<usize, Vec<Json>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: BTreeMap<usize, Vec<Json>> = BTreeMap::new();
    // Only whole lines: the writer may be in the middle of one.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let json: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let n = json["path"].as_str().and_then(|p| p.split_once("n=")).and_then(|(_, n)| n.parse().ok());
        if let Some(n) = n {
            lines.entry(n).or_default().push(json);
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_exactly_one_line_with_what_happened_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let args = vec!["--access-log".into(), path.display().to_string()];
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    let router = s.http.clone().expect("router");
    let traffic = Traffic::new(&router);
    apply(BIN, &s, PICKS).expect("apply");
    let hello = |b: &str| b == "Hello World!\n";
    traffic.wait_for(HOST, WAIT, hello).await.expect("serves");
    traffic.wait_for(TAG_HOST, WAIT, hello).await.expect("the tag host serves");

    let client = Client::new();
    let upload = "u".repeat(1000);
    let parent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let mix: Vec<Step> = vec![
        (Method::GET, HOST, "/?n=0".into(), String::new(), Some(("traceparent", &parent)), 200),
        (Method::GET, "nobody.default.localhost", "/?n=1".into(), String::new(), None, 404),
        (Method::GET, HOST, "/beta/x?n=2".into(), String::new(), None, 200),
        (Method::GET, TAG_HOST, "/?n=3".into(), String::new(), None, 200),
        (Method::POST, HOST, "/echo?n=4".into(), upload.clone(), None, 200),
        (Method::GET, HOST, "/status/404?n=5".into(), String::new(), None, 404),
        (Method::GET, HOST, "/crash?code=3&n=6".into(), String::new(), None, 502),
    ];
    let mut bodies = Vec::new();
    for (method, host, path, body, extra, status) in &mix {
        let mut headers = vec![("host", *host)];
        headers.extend(extra.iter().copied());
        let url = format!("http://{router}{path}");
        let res = client.send(method.clone(), &url, &headers, body.clone()).await.expect("send");
        assert_eq!(res.status.as_u16(), *status, "{host}{path}: {}", res.text());
        bodies.push(res.body.len());
    }

    let lines = until("a line for every request of the mix", WAIT, async || {
        let lines = marked(&path);
        (lines.len() == mix.len()).then_some(lines)
    })
    .await
    .expect("lines");
    let line = |n: usize| -> &Json {
        assert_eq!(lines[&n].len(), 1, "exactly one line for request {n}: {:?}", lines[&n]);
        &lines[&n][0]
    };
    for (n, (method, host, path, body, _, status)) in mix.iter().enumerate() {
        let l = line(n);
        assert_eq!(l["status"], *status, "{l}");
        assert_eq!((&l["method"], &l["host"], &l["path"]), (&json(method.as_str()), &json(host), &json(path)), "{l}");
        assert_eq!(l["protocol"], "HTTP/1.1", "{l}");
        assert_eq!(l["bytes_in"], body.len(), "{l}");
        let time = l["time"].as_str().expect("time");
        assert!(time.ends_with('Z') && time.len() == "2026-12-01T03:04:05.678Z".len(), "{l}");
        assert!(time.parse::<jiff::Timestamp>().is_ok(), "{l}");
        assert!(l["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{l}");
        let routed = n != 1;
        assert_eq!(l["revision"] == "default/picks-one", routed, "{l}");
        let instance = l["instance"].as_str().unwrap_or_default();
        assert_eq!(instance.starts_with("127.0.0.1:"), routed, "{l}");
        let (rule, tag) = match n {
            2 => (json("beta"), Json::Null),
            3 => (Json::Null, json("canary")),
            _ => (Json::Null, Json::Null),
        };
        assert_eq!((&l["rule"], &l["tag"]), (&rule, &tag), "{l}");
        // The instance's bodies count; the router's own answers have theirs too.
        assert_eq!(l["bytes_out"], bodies[n], "{l}");
        let router_made = matches!(n, 1 | 6);
        assert_eq!(l["reason"].is_string(), router_made, "{l}");
    }
    assert_eq!(line(0)["trace_id"], TRACE_ID);
    assert!(line(1)["reason"].as_str().is_some_and(|r| r.contains("nobody.default.localhost")), "{}", line(1));

    let url = format!("http://{}/metrics", s.metrics.as_deref().expect("metrics address"));
    let body = s.client().get(&url, &[]).await.expect("GET /metrics").text();
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("prometheus-parse reads it");
    let dropped: Vec<_> = scrape.samples.iter().filter(|x| x.metric == "sluice_access_log_dropped_total").collect();
    assert_eq!(dropped.len(), 1, "{body}");
    assert!(matches!(dropped[0].value, Value::Counter(n) if n == 0.0), "{:?}", dropped[0]);
}

fn json(s: &str) -> Json {
    Json::String(s.to_string())
}
