//! The API server's README claims over raw HTTP through the real binary: watch bookmarks (the
//! end of the initial events, and an idle watch's periodic one, only when asked for), 410 Gone
//! (`Expired`) for a watch from a resource version the store no longer keeps, and 415 for a
//! write in a media type it does not read — each with a Kubernetes `Status` body.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::http::Client;
use sluice_test_support::wire::lines;
use sluice_test_support::{Sluice, SluiceOptions};
use tokio::sync::mpsc::Receiver;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const ROUTES: &str = "/apis/serving.knative.dev/v1/namespaces/default/routes";

/// Creates ConfigMap `name`; returns its resourceVersion.
async fn create_config_map(c: &Client, s: &Sluice, name: &str) -> String {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}});
    let res = c
        .send(
            Method::POST,
            &format!("{}{CONFIGMAPS}", s.api),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
        .expect("create");
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["metadata"]["resourceVersion"].as_str().expect("resourceVersion").to_string()
}

/// The next watch event, as JSON, within `deadline`.
async fn next_event(rx: &mut Receiver<String>, deadline: Duration) -> Value {
    let line = tokio::time::timeout(deadline, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no watch event within {deadline:?}"))
        .expect("the watch stream ended");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

async fn watch(s: &Sluice, query: &str) -> Receiver<String> {
    let (status, rx) =
        lines(&format!("{}{CONFIGMAPS}?watch=true&{query}", s.api), Some(s.token())).await.expect("watch");
    assert_eq!(status, StatusCode::OK);
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_events_end_with_a_bookmark_at_the_version_they_were_read_at() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    create_config_map(&c, &s, "a").await;
    let rv = create_config_map(&c, &s, "b").await;
    let mut events =
        watch(&s, "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan").await;
    for name in ["a", "b"] {
        let e = next_event(&mut events, Duration::from_secs(10)).await;
        assert_eq!((&e["type"], &e["object"]["metadata"]["name"]), (&json!("ADDED"), &json!(name)), "{e}");
    }
    let bookmark = next_event(&mut events, Duration::from_secs(10)).await;
    assert_eq!(
        bookmark,
        json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
            "resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}}}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_gets_a_bookmark_only_when_it_allows_them() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let first = create_config_map(&c, &s, "first").await;
    let mut with = watch(&s, &format!("resourceVersion={first}&allowWatchBookmarks=true")).await;
    let mut without = watch(&s, &format!("resourceVersion={first}")).await;
    let second = create_config_map(&c, &s, "second").await;
    for events in [&mut with, &mut without] {
        let e = next_event(events, Duration::from_secs(10)).await;
        assert_eq!((&e["type"], &e["object"]["metadata"]["name"]), (&json!("ADDED"), &json!("second")), "{e}");
    }
    // Idle watches get one every 30 s, at the version they have seen.
    let bookmark = next_event(&mut with, Duration::from_secs(45)).await;
    assert_eq!(
        bookmark,
        json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"resourceVersion": second}}})
    );
    let nothing = tokio::time::timeout(Duration::from_secs(2), without.recv()).await;
    assert!(nothing.is_err(), "no bookmark unless allowWatchBookmarks: {nothing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_trimmed_resource_version_gets_410_expired() {
    let args = ["--no-controllers", "--watch-history", "10"].map(String::from).to_vec();
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    let c = s.client();
    let mut versions = Vec::new();
    for i in 0..15 {
        versions.push(create_config_map(&c, &s, &format!("c{i}")).await);
    }
    let mut events = watch(&s, &format!("resourceVersion={}", versions[0])).await;
    let e = next_event(&mut events, Duration::from_secs(10)).await;
    assert_eq!(e["type"], "ERROR", "{e}");
    let status = &e["object"];
    assert_eq!(
        (&status["kind"], &status["apiVersion"], &status["status"], &status["code"], &status["reason"]),
        (&json!("Status"), &json!("v1"), &json!("Failure"), &json!(410), &json!("Expired")),
        "{e}"
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("too old resource version: {} (", versions[0])), "{message}");
    assert!(events.recv().await.is_none(), "the stream ends after the error");

    // A version still kept resumes with the next change.
    let mut events = watch(&s, &format!("resourceVersion={}", versions[13])).await;
    let e = next_event(&mut events, Duration::from_secs(10)).await;
    assert_eq!((&e["type"], &e["object"]["metadata"]["name"]), (&json!("ADDED"), &json!("c14")), "{e}");
}

fn unsupported(got: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 415,
        "reason": "UnsupportedMediaType",
        "message": format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {got:?})")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_an_unsupported_media_type_gets_415_and_changes_nothing() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let url = format!("{}{ROUTES}", s.api);
    let route = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": {"name": "r"},
        "spec": {"traffic": [{"revisionName": "r-00001", "percent": 100}]}});
    let send = async |method: Method, url: &str, ct: &str, body: String| {
        let res = c.send(method, url, &[("content-type", ct)], body).await.expect("request");
        (res.status, res.json())
    };

    let refused = send(Method::POST, &url, "text/plain; charset=utf-8", route.to_string()).await;
    assert_eq!(refused, (StatusCode::UNSUPPORTED_MEDIA_TYPE, unsupported("text/plain")));
    let list = c.get(&url, &[]).await.expect("list").json();
    assert_eq!(list["items"], json!([]), "nothing stored");

    let (code, created) = send(Method::POST, &url, "application/json", route.to_string()).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let mut edited = created.clone();
    edited["spec"]["traffic"][0]["revisionName"] = json!("r-00002");
    let refused = send(Method::PUT, &format!("{url}/r"), "application/cbor", edited.to_string()).await;
    assert_eq!(refused, (StatusCode::UNSUPPORTED_MEDIA_TYPE, unsupported("application/cbor")));
    // A PATCH must name a patch format; plain JSON is not one.
    let patch = json!({"spec": {"traffic": [{"revisionName": "r-00002", "percent": 100}]}}).to_string();
    let refused = send(Method::PATCH, &format!("{url}/r"), "application/json", patch).await;
    assert_eq!(refused, (StatusCode::UNSUPPORTED_MEDIA_TYPE, unsupported("application/json")));

    let stored = c.get(&format!("{url}/r"), &[]).await.expect("get").json();
    assert_eq!(stored["spec"], created["spec"]);
    assert_eq!(stored["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
}
