//! W3C Trace Context through the real binary: the sample app's `/headers` shows what the
//! router forwarded. A valid `traceparent` (with its `tracestate`) arrives unchanged; none, or
//! an invalid one, is replaced by one generated per request (and `tracestate` dropped); with
//! `--trace-generate off` the router forwards the trace headers exactly as sent. The router's
//! own 504 is logged with the request's trace id.

use std::time::Duration;

use serde_json::Value;
use sluice_router::trace;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply, eventually};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "traced.default.localhost";

/// The spec's example, and its tracestate.
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
/// Invalid: an all-zero trace id; upper-case hex.
const ZERO: &str = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
const UPPER: &str = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";

/// A response head must start within 1 s, so `/sleep?ms=3000` gets the router's 504.
const SERVICE: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: traced
spec:
  template:
    spec:
      responseStartTimeoutSeconds: 1
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
";

async fn start(args: &[&str]) -> (Sluice, Traffic) {
    let args = args.iter().map(ToString::to_string).collect();
    let env = vec![("RUST_LOG".to_string(), "info,sluice_router=debug".to_string())];
    let s = Sluice::start_with(BIN, SluiceOptions { args, env, ..Default::default() }).expect("start sluice");
    apply(BIN, &s, SERVICE).expect("apply");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    traffic.wait_for(HOST, WAIT, |b| b == "Hello World!\n").await.expect("serves");
    (s, traffic)
}

/// The trace headers the app received for a request carrying `sent`.
async fn received(s: &Sluice, traffic: &Traffic, sent: &[(&str, &str)]) -> (Option<String>, Option<String>) {
    let mut headers = vec![("host", HOST)];
    headers.extend_from_slice(sent);
    let res = s.client().get(&format!("http://{}/headers", traffic.router), &headers).await.expect("GET /headers");
    assert_eq!(res.status.as_u16(), 200, "{}", res.text());
    let seen: Value = serde_json::from_str(&res.text()).expect("the app answers JSON");
    let get = |name: &str| seen.get(name).and_then(Value::as_str).map(str::to_string);
    (get("traceparent"), get("tracestate"))
}

/// A generated `traceparent`: valid, version 00, sampled.
fn generated(value: Option<String>) -> String {
    let value = value.expect("a traceparent arrived");
    assert!(trace::parse(value.as_bytes()).is_some(), "{value} is valid");
    assert!(value.starts_with("00-") && value.ends_with("-01"), "{value}");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_is_kept_when_valid_and_generated_otherwise() {
    // JSON logs, to read the 504's line by its fields.
    let (s, traffic) = start(&["--log-format", "json"]).await;

    let sent = [("traceparent", VALID), ("tracestate", STATE)];
    assert_eq!(received(&s, &traffic, &sent).await, (Some(VALID.into()), Some(STATE.into())), "kept");

    let first = generated(received(&s, &traffic, &[]).await.0);
    let second = generated(received(&s, &traffic, &[]).await.0);
    assert_ne!(first[3..35], second[3..35], "a trace id per request");
    assert_ne!(first[36..52], second[36..52], "a parent id per request");

    for invalid in [ZERO, UPPER, &VALID[..54]] {
        let (parent, state) = received(&s, &traffic, &[("traceparent", invalid), ("tracestate", STATE)]).await;
        let parent = generated(parent);
        assert_ne!(parent[3..35], VALID[3..35], "{invalid} replaced by a new trace");
        assert_eq!(state, None, "tracestate of an invalid traceparent dropped");
    }

    // The router's own answer (504: no response head within 1 s) is logged with the trace id.
    let res = s
        .client()
        .get(&format!("http://{}/sleep?ms=3000", traffic.router), &[("host", HOST), ("traceparent", VALID)])
        .await
        .expect("GET /sleep");
    assert_eq!(res.status.as_u16(), 504, "{}", res.text());
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let fields = eventually("the 504's log line with the trace id", WAIT, || {
        let log = s.log_text();
        let mut events = log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok());
        events.find(|e| e["fields"]["trace_id"] == trace_id).map(|e| e["fields"].clone())
    })
    .await
    .expect("logged");
    assert_eq!(fields["message"], "request not proxied", "{fields}");
    assert!(fields["status"].as_str().is_some_and(|s| s.starts_with("504")), "{fields}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_generation_off_trace_headers_pass_as_sent() {
    let (s, traffic) = start(&["--trace-generate", "off"]).await;
    assert_eq!(received(&s, &traffic, &[]).await, (None, None), "none generated");
    for parent in [VALID, ZERO] {
        let sent = [("traceparent", parent), ("tracestate", STATE)];
        assert_eq!(received(&s, &traffic, &sent).await, (Some(parent.into()), Some(STATE.into())), "{parent}");
    }
}

#[test]
fn the_setting_takes_on_or_off_only() {
    let out = std::process::Command::new(BIN).args(["serve", "--trace-generate", "maybe"]).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--trace-generate") && err.contains("on") && err.contains("off"), "{err}");
}
