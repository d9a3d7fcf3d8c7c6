//! The API server's error contract over raw HTTP: Kubernetes `Status` bodies with the right code
//! and reason for malformed, oversized, invalid, conflicting and missing things — and nothing
//! stored when a write is refused.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::Sluice;
use sluice_test_support::http::Client;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROUTES: &str = "/apis/serving.knative.dev/v1/namespaces/default/routes";

fn route(name: &str, percents: &[i64]) -> Value {
    let traffic: Vec<Value> = percents
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"revisionName": format!("{name}-0000{}", i + 1), "percent": p}))
        .collect();
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": {"name": name}, "spec": {"traffic": traffic}})
}

async fn send(
    c: &Client,
    s: &Sluice,
    method: Method,
    path: &str,
    ct: &str,
    body: impl Into<bytes::Bytes>,
) -> (StatusCode, Value) {
    let r = c.send(method, &format!("{}{path}", s.api), &[("content-type", ct)], body).await.expect("request");
    (r.status, r.json())
}

fn assert_status(got: &(StatusCode, Value), code: u16, reason: &str) {
    assert_eq!(got.0.as_u16(), code, "{}", got.1);
    assert_eq!(got.1["kind"], "Status", "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert_eq!(got.1["reason"], reason, "{}", got.1);
}

#[tokio::test]
async fn refused_writes_get_kubernetes_status_errors_and_store_nothing() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let json_ct = "application/json";

    let r =
        send(&c, &s, Method::POST, ROUTES, json_ct, "{\"apiVersion\": \"serving.knative.dev/v1\",\n \"kind\": }").await;
    assert_status(&r, 400, "BadRequest");
    assert!(r.1["message"].as_str().is_some_and(|m| m.contains("line 2 column")), "{}", r.1);

    let r = send(&c, &s, Method::POST, ROUTES, "application/yaml", "metadata:\n  name: [a,\nspec: {}\n").await;
    assert_status(&r, 400, "BadRequest");
    assert!(r.1["message"].as_str().is_some_and(|m| m.contains("line")), "{}", r.1);

    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(4 * 1024 * 1024));
    assert_status(&send(&c, &s, Method::POST, ROUTES, json_ct, huge).await, 413, "RequestEntityTooLarge");

    let r = send(&c, &s, Method::POST, ROUTES, json_ct, route("r", &[60, 30]).to_string()).await;
    assert_status(&r, 422, "Invalid");
    assert_eq!(r.1["details"]["causes"][0]["field"], "spec.traffic", "{}", r.1);
    assert!(r.1["message"].as_str().is_some_and(|m| m.contains("Traffic targets sum to 90, want 100")), "{}", r.1);

    let r = send(&c, &s, Method::POST, ROUTES, json_ct, route("r", &[101]).to_string()).await;
    assert_status(&r, 422, "Invalid");
    let fields: Vec<&str> =
        r.1["details"]["causes"].as_array().expect("causes").iter().filter_map(|c| c["field"].as_str()).collect();
    assert!(fields.contains(&"spec.traffic[0].percent"), "{fields:?}");

    // A type error names the field.
    let mut bad = route("r", &[100]);
    bad["spec"]["traffic"][0]["percent"] = json!("all of it");
    let r = send(&c, &s, Method::POST, ROUTES, json_ct, bad.to_string()).await;
    assert_status(&r, 422, "Invalid");
    assert!(
        r.1["details"]["causes"][0]["field"].as_str().is_some_and(|f| f.contains("spec.traffic[0].percent")),
        "{}",
        r.1
    );

    let list = c.get(&format!("{}{ROUTES}", s.api), &[]).await.expect("list").json();
    assert_eq!(list["items"], json!([]), "nothing stored by refused writes");

    assert_status(&send(&c, &s, Method::GET, &format!("{ROUTES}/nope"), json_ct, "").await, 404, "NotFound");
    let created = send(&c, &s, Method::POST, ROUTES, json_ct, route("r", &[100]).to_string()).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    assert_status(
        &send(&c, &s, Method::POST, ROUTES, json_ct, route("r", &[100]).to_string()).await,
        409,
        "AlreadyExists",
    );

    // Stale resourceVersion: refused, stored object unchanged.
    let mut stale = created.1.clone();
    stale["metadata"]["resourceVersion"] = json!("0");
    stale["spec"]["traffic"][0]["revisionName"] = json!("other");
    assert_status(
        &send(&c, &s, Method::PUT, &format!("{ROUTES}/r"), json_ct, stale.to_string()).await,
        409,
        "Conflict",
    );
    let mut no_rv = created.1.clone();
    no_rv["metadata"].as_object_mut().expect("meta").remove("resourceVersion");
    assert_status(&send(&c, &s, Method::PUT, &format!("{ROUTES}/r"), json_ct, no_rv.to_string()).await, 422, "Invalid");
    let stored = c.get(&format!("{}{ROUTES}/r", s.api), &[]).await.expect("get").json();
    assert_eq!(stored["spec"], created.1["spec"]);
    assert_eq!(stored["metadata"]["resourceVersion"], created.1["metadata"]["resourceVersion"]);
}

#[tokio::test]
async fn status_subresource_and_main_resource_each_change_only_their_part() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let json_ct = "application/json";
    let created = send(&c, &s, Method::POST, ROUTES, json_ct, route("r", &[100]).to_string()).await.1;

    let mut body = created.clone();
    body["status"] = json!({"observedGeneration": 1, "url": "http://r.default.example"});
    body["spec"]["traffic"][0]["revisionName"] = json!("ignored-by-status");
    let (code, after_status) =
        send(&c, &s, Method::PUT, &format!("{ROUTES}/r/status"), json_ct, body.to_string()).await;
    assert_eq!(code, StatusCode::OK, "{after_status}");
    assert_eq!(after_status["status"]["url"], "http://r.default.example");
    assert_eq!(after_status["spec"], created["spec"], "status update must not change spec");
    assert_eq!(after_status["metadata"]["generation"], 1);

    let patch = json!({"spec": {"traffic": [{"revisionName": "r-00002", "percent": 100}]}, "status": {"url": "http://ignored"}});
    let (code, after_main) =
        send(&c, &s, Method::PATCH, &format!("{ROUTES}/r"), "application/merge-patch+json", patch.to_string()).await;
    assert_eq!(code, StatusCode::OK, "{after_main}");
    assert_eq!(after_main["status"]["url"], "http://r.default.example", "main resource must not change status");
    assert_eq!(after_main["spec"]["traffic"][0]["revisionName"], "r-00002");
    assert_eq!(after_main["metadata"]["generation"], 2);
    assert_ne!(after_main["metadata"]["resourceVersion"], after_status["metadata"]["resourceVersion"]);
}
