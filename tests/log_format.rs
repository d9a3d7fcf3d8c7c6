//! `sluice serve --log-format json`: every line serve writes to stderr, from start through a
//! service applied and answering to shutdown, is one JSON object with `timestamp`, `level`,
//! `target` and `fields.message`; the default stays text for people.

use std::time::Duration;

use serde_json::Value;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

const SERVICE: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let args = vec!["--log-format".to_string(), "json".to_string()];
    // Debug too, so the controllers' and the autoscaler's events are among the lines checked.
    let env = vec![("RUST_LOG".to_string(), "debug,hyper=info,kube=info,h2=info,rustls=info".to_string())];
    let mut s = Sluice::start_with(BIN, SluiceOptions { args, env, ..Default::default() }).expect("start sluice");
    apply(BIN, &s, SERVICE).expect("apply");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    traffic.wait_for("hello.default.localhost", WAIT, |b| b == "Hello World!\n").await.expect("serves");
    assert_eq!(traffic.get("hello.default.localhost", "/again").await.expect("get").0, 200);
    let status = s.terminate(WAIT).expect("stops on SIGTERM");
    assert!(status.success(), "{status:?}");

    let log = s.log_text();
    let mut messages = Vec::new();
    for (i, line) in log.lines().enumerate() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("stderr line {} is not JSON ({e}): {line}", i + 1));
        for field in ["timestamp", "level", "target"] {
            assert!(event[field].is_string(), "line {} has no {field}: {line}", i + 1);
        }
        let message = event["fields"]["message"].as_str();
        assert!(message.is_some(), "line {} has no fields.message: {line}", i + 1);
        messages.push(message.unwrap_or_default().to_string());
    }
    for expected in ["sluice is serving", "scaling decision", "sluice stopped"] {
        assert!(messages.iter().any(|m| m == expected), "no {expected:?} among {} lines:\n{log}", messages.len());
    }
    let serving = log.lines().find(|l| l.contains("sluice is serving")).unwrap_or_default();
    let serving: Value = serde_json::from_str(serving).expect("JSON");
    assert_eq!(serving["level"], "INFO");
    assert!(serving["fields"]["api"].as_str().is_some_and(|a| a.starts_with("https://")), "{serving}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_stay_the_default() {
    let mut s = Sluice::start(BIN).expect("start sluice");
    s.terminate(WAIT).expect("stops on SIGTERM");
    let log = s.log_text();
    assert!(log.contains("Sluice is serving.\n  services:"), "the banner for people:\n{log}");
    assert!(log.lines().all(|l| serde_json::from_str::<Value>(l).is_err()), "no JSON lines by default:\n{log}");
}
