//! The API server's watch limits over HTTP through the real binary: `timeoutSeconds` is parsed
//! strictly (400 on garbage, huge values clamped to a working watch).

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::Sluice;
use sluice_test_support::http::Client;
use sluice_test_support::wire::{exchange, lines};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": value}})
}

/// Creates ConfigMap `name` holding `value`.
async fn create(c: &Client, s: &Sluice, name: &str, value: &str) {
    let res = c
        .send(
            Method::POST,
            &format!("{}{CONFIGMAPS}", s.api),
            &[("content-type", "application/json")],
            config_map(name, value).to_string(),
        )
        .await
        .expect("create");
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

fn authority(s: &Sluice) -> &str {
    s.api.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_timeout_seconds_garbage_is_a_bad_request_and_huge_values_still_watch() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    for bad in ["abc", "-1", "1.5"] {
        let req = format!(
            "GET {CONFIGMAPS}?watch=true&timeoutSeconds={bad} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let res = exchange(authority(&s), &req, Duration::from_secs(5)).await.expect("a complete answer, not a watch");
        assert!(res.status_line.starts_with("HTTP/1.1 400"), "{bad}: {}", res.status_line);
        let status: Value = serde_json::from_str(&res.body).expect("Status JSON");
        assert_eq!((&status["kind"], &status["reason"]), (&json!("Status"), &json!("BadRequest")), "{status}");
    }

    let c = Client::new();
    for (i, huge) in ["9223372036854775807", "99999999999999999999999"].into_iter().enumerate() {
        let (status, mut events) =
            lines(&format!("{}{CONFIGMAPS}?watch=true&resourceVersion=0&timeoutSeconds={huge}", s.api))
                .await
                .expect("watch");
        assert_eq!(status, StatusCode::OK);
        let name = format!("after-{i}");
        create(&c, &s, &name, "v").await;
        // The watch task is alive: it delivers the change (before the fix it panicked at once
        // computing its deadline, and the stream ended empty).
        let event = loop {
            let line = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .unwrap_or_else(|_| panic!("no event within 10s on timeoutSeconds={huge}"))
                .unwrap_or_else(|| panic!("the watch with timeoutSeconds={huge} ended"));
            let e: Value = serde_json::from_str(&line).expect("event JSON");
            if e["object"]["metadata"]["name"] == json!(name) {
                break e;
            }
        };
        assert_eq!(event["type"], "ADDED", "{event}");
    }
    let version = c.get(&format!("{}/version", s.api), &[]).await.expect("the server still answers");
    assert_eq!(version.status, StatusCode::OK);
}
