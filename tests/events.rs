//! Kubernetes Events: both APIs (core `v1` and `events.k8s.io/v1`) over raw HTTP, the
//! recorder's aggregation against a real server, retention (TTL and per-namespace cap), and
//! what a kubectl user sees (`kubectl describe`, `kubectl get events`), skipped with a printed
//! reason where kubectl is not installed.

use std::process::Command;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use sluice_controller::events::{EventType, Note, Recorder, component};
use sluice_test_support::{Sluice, SluiceOptions, kubectl, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const JSON: (&str, &str) = ("content-type", "application/json");

/// A core Event about the Service `about`, as client-go's recorder writes one.
fn core_event(name: &str, about: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": about, "namespace": "default", "uid": format!("{about}-uid")},
        "reason": "Created", "message": format!("Created Configuration \"{about}\""), "type": "Normal",
        "source": {"component": "service-controller"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    })
}

/// Now as an Event's `eventTime` (microseconds), so retention counts from this instant.
fn micro_now() -> String {
    let now = jiff::Timestamp::now();
    format!("{}.{:06}Z", now.strftime("%Y-%m-%dT%H:%M:%S"), now.subsec_microsecond())
}

async fn send(sluice: &Sluice, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}{path}", sluice.api);
    let res = sluice.client().send(method, &url, &[JSON], serde_json::to_vec(body).expect("json")).await.expect("send");
    (res.status.as_u16(), serde_json::from_slice(&res.body).unwrap_or(Value::Null))
}

async fn get(sluice: &Sluice, path: &str) -> Value {
    let (code, body) = send(sluice, Method::GET, path, &Value::Null).await;
    assert_eq!(code, 200, "GET {path}: {body}");
    body
}

fn names(list: &Value) -> Vec<String> {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items.iter().filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string)).collect()
}

#[tokio::test]
async fn both_event_apis_serve_the_same_objects() {
    let sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let groups = get(&sluice, "/apis").await;
    assert!(groups["groups"].as_array().expect("groups").iter().any(|g| g["name"] == "events.k8s.io"), "{groups}");
    let resources = get(&sluice, "/apis/events.k8s.io/v1").await;
    assert_eq!(resources["resources"][0]["name"], "events");
    let core = get(&sluice, "/api/v1").await;
    assert!(
        core["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .any(|r| r["name"] == "events" && r["shortNames"][0] == "ev")
    );

    // Written through the core API, read through events.k8s.io.
    let (code, body) =
        send(&sluice, Method::POST, "/api/v1/namespaces/default/events", &core_event("hello.1", "hello")).await;
    assert_eq!(code, 201, "{body}");
    let v1 = get(&sluice, "/apis/events.k8s.io/v1/namespaces/default/events/hello.1").await;
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["regarding"]["name"], "hello");
    assert_eq!(v1["note"], "Created Configuration \"hello\"");
    assert_eq!(v1["deprecatedCount"], 1);
    assert_eq!(v1["deprecatedSource"]["component"], "service-controller");
    assert!(v1.get("involvedObject").is_none() && v1.get("message").is_none(), "{v1}");

    // Written through events.k8s.io, read through the core API.
    let new_style = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "other.1", "namespace": "default"},
        "regarding": {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "name": "other-00001", "namespace": "default"},
        "note": "Revision \"other-00001\" failed: boom", "type": "Warning", "reason": "ExitCode1",
        "reportingController": "revision-controller", "reportingInstance": "sluice", "action": "Reconcile",
        "eventTime": micro_now(),
    });
    let (code, body) =
        send(&sluice, Method::POST, "/apis/events.k8s.io/v1/namespaces/default/events", &new_style).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["regarding"]["name"], "other-00001", "the answer is in the shape asked for");
    let c = get(&sluice, "/api/v1/namespaces/default/events/other.1").await;
    assert_eq!((c["apiVersion"].as_str(), c["involvedObject"]["kind"].as_str()), (Some("v1"), Some("Revision")));
    assert_eq!(
        (c["message"].as_str(), c["reportingComponent"].as_str()),
        (Some("Revision \"other-00001\" failed: boom"), Some("revision-controller"))
    );

    // Listed across namespaces, and by the fields kubectl describe selects on.
    assert_eq!(names(&get(&sluice, "/api/v1/events").await), ["hello.1", "other.1"]);
    let by_object = get(&sluice, "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dhello,involvedObject.kind%3DService,involvedObject.uid%3Dhello-uid").await;
    assert_eq!(names(&by_object), ["hello.1"]);
    let regarding = get(&sluice, "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dother-00001").await;
    assert_eq!(names(&regarding), ["other.1"]);
    assert_eq!(regarding["items"][0]["note"], "Revision \"other-00001\" failed: boom");
    let (code, body) = send(
        &sluice,
        Method::GET,
        "/api/v1/namespaces/default/configmaps?fieldSelector=involvedObject.name%3Dx",
        &Value::Null,
    )
    .await;
    assert_eq!(code, 400, "{body}");

    // A merge patch through events.k8s.io changes the one stored object.
    let url = format!("{}/apis/events.k8s.io/v1/namespaces/default/events/other.1", sluice.api);
    let patch = json!({"series": {"count": 2, "lastObservedTime": micro_now()}});
    let res = sluice
        .client()
        .send(
            Method::PATCH,
            &url,
            &[("content-type", "application/merge-patch+json")],
            serde_json::to_vec(&patch).expect("json"),
        )
        .await
        .expect("patch");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(get(&sluice, "/api/v1/namespaces/default/events/other.1").await["series"]["count"], 2);

    // A watch through events.k8s.io sends the converted objects.
    let url = format!("{}/apis/events.k8s.io/v1/namespaces/default/events?watch=true&timeoutSeconds=1", sluice.api);
    let stream = sluice.client().get(&url, &[]).await.expect("watch").text();
    let first: Value = serde_json::from_str(stream.lines().next().unwrap_or("")).expect("a watch line");
    assert_eq!((first["type"].as_str(), first["object"]["regarding"]["name"].as_str()), (Some("ADDED"), Some("hello")));

    // kubectl's columns, from the server.
    let url = format!("{}/api/v1/namespaces/default/events", sluice.api);
    let table = sluice
        .client()
        .get(&url, &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")])
        .await
        .expect("table")
        .json();
    let shown: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter(|c| c["priority"] == 0)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(shown, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    assert_eq!(table["rows"][1]["cells"][3], "revision/other-00001");

    // Precise refusals.
    let mut bad = core_event("bad.1", "hello");
    bad["type"] = json!("Info");
    bad.as_object_mut().expect("object").remove("involvedObject");
    let (code, body) = send(&sluice, Method::POST, "/api/v1/namespaces/default/events", &bad).await;
    assert_eq!(code, 422, "{body}");
    let causes: Vec<&str> =
        body["details"]["causes"].as_array().expect("causes").iter().filter_map(|c| c["field"].as_str()).collect();
    assert!(causes.contains(&"involvedObject") && causes.contains(&"type"), "{body}");
    let mut old_fields = new_style.clone();
    old_fields["metadata"]["name"] = json!("other.2");
    old_fields["deprecatedCount"] = json!(4);
    let (code, body) =
        send(&sluice, Method::POST, "/apis/events.k8s.io/v1/namespaces/default/events", &old_fields).await;
    assert_eq!(code, 422, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("needs to be unset: deprecatedCount")), "{body}");
}

#[tokio::test]
async fn events_expire_after_the_ttl_and_a_namespace_holds_at_most_the_cap() {
    let args = ["--no-controllers", "--event-ttl", "3s", "--max-events-per-namespace", "3"].map(String::from).to_vec();
    let sluice = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    for i in 1..=5 {
        let mut e = core_event(&format!("hello.{i}"), "hello");
        // Last seen now, to the microsecond, so the TTL counts from here.
        e["eventTime"] = json!(micro_now());
        e["reportingComponent"] = json!("service-controller");
        e["reportingInstance"] = json!("sluice");
        e["action"] = json!("Create");
        let (code, body) = send(&sluice, Method::POST, "/api/v1/namespaces/default/events", &e).await;
        assert_eq!(code, 201, "{body}");
    }
    // The cap: the two written first are gone, in the same write as the ones that replaced them.
    assert_eq!(names(&get(&sluice, "/api/v1/namespaces/default/events").await), ["hello.3", "hello.4", "hello.5"]);
    // Another namespace has its own cap.
    let (code, body) = send(&sluice, Method::POST, "/api/v1/namespaces/knative-serving/events", &{
        let mut e = core_event("other.1", "other");
        e["metadata"]["namespace"] = json!("knative-serving");
        e["involvedObject"]["namespace"] = json!("knative-serving");
        e
    })
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(names(&get(&sluice, "/api/v1/events").await).len(), 4);
    // The TTL: all of them go once 3 s have passed since they were last seen.
    until("the events to expire", WAIT, async || names(&get(&sluice, "/api/v1/events").await).is_empty().then_some(()))
        .await
        .expect("expired events are deleted");
}

#[tokio::test]
async fn the_recorder_aggregates_repeats_on_one_stored_event() {
    let sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let (recorder, writer) = Recorder::new(sluice.kube_client().expect("client"));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(writer.run(stop.clone()));
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("serving.knative.dev/v1".into()),
        kind: Some("Revision".into()),
        name: Some("hello-00001".into()),
        namespace: Some("default".into()),
        uid: Some("u1".into()),
        ..Default::default()
    };
    let note = |message: &str| {
        Note::about(regarding.clone(), EventType::Normal, component::AUTOSCALER, "Scale", "Scaled", message)
    };
    for _ in 0..3 {
        recorder.publish(note("Scaled from 0 to 1"));
    }
    recorder.publish(note("Scaled from 1 to 0"));
    let list = until("two events, one counted three times", WAIT, async || {
        let list =
            get(&sluice, "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dhello-00001").await;
        let items = list["items"].as_array()?.clone();
        let counts: Vec<(String, i64)> = items
            .iter()
            .map(|i| (i["message"].as_str().unwrap_or("").to_string(), i["count"].as_i64().unwrap_or(0)))
            .collect();
        (counts.len() == 2 && counts.iter().any(|(m, c)| m == "Scaled from 0 to 1" && *c == 3)).then_some(list)
    })
    .await
    .expect("repeats aggregated");
    let repeated =
        list["items"].as_array().expect("items").iter().find(|i| i["count"] == 3).expect("the repeat").clone();
    assert_eq!(repeated["source"]["component"], "autoscaler");
    assert_eq!(repeated["involvedObject"]["uid"], "u1");
    assert!(repeated["lastTimestamp"].as_str() >= repeated["firstTimestamp"].as_str());
    stop.cancel();
    task.await.expect("the writer ends when cancelled");
}

fn kubectl_out(sluice: &Sluice, args: &[&str]) -> (bool, String) {
    let kubectl = kubectl().expect("checked by the caller");
    let out = Command::new(kubectl).args(args).env("KUBECONFIG", sluice.kubeconfig()).output().expect("run kubectl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Polls `kubectl args` until its output contains every one of `wanted`; returns the output.
async fn kubectl_until(sluice: &Sluice, args: &[&str], wanted: &[&str]) -> String {
    let what = format!("kubectl {} to show {wanted:?}", args.join(" "));
    let mut last = String::new();
    let found = until(&what, WAIT, async || {
        let (ok, text) = kubectl_out(sluice, args);
        last = text.clone();
        (ok && wanted.iter().all(|w| text.contains(w))).then_some(text)
    })
    .await;
    found.unwrap_or_else(|e| panic!("{e}; last output:\n{last}"))
}

#[tokio::test]
async fn kubectl_describe_and_get_events_show_what_the_controllers_did() {
    if kubectl().is_none() {
        eprintln!("skipping: kubectl is not installed on this machine");
        return;
    }
    let sluice = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("services.yaml");
    let service = |name: &str, image: &str| {
        format!(
            "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n      - image: {image}\n"
        )
    };
    let text = format!(
        "{}---\n{}",
        service("hello", "ghcr.io/knative/helloworld-go"),
        service("stranger", "example.com/team/stranger:v1")
    );
    std::fs::write(&manifest, text).expect("write manifest");
    let (ok, out) = kubectl_out(&sluice, &["apply", "-f", &manifest.display().to_string()]);
    assert!(ok, "{out}");

    let svc = kubectl_until(
        &sluice,
        &["describe", "ksvc", "hello"],
        &["Created Configuration \"hello\"", "Created Route \"hello\""],
    )
    .await;
    assert!(svc.contains("Events:") && svc.contains("service-controller"), "{svc}");
    kubectl_until(
        &sluice,
        &["describe", "configuration", "hello"],
        &["Created Revision \"hello-00001\"", "LatestReadyUpdate"],
    )
    .await;
    let rev =
        kubectl_until(&sluice, &["describe", "revision", "hello-00001"], &["RevisionReady", "Scaled from 0 to 1"])
            .await;
    assert!(rev.contains("autoscaler") && rev.contains("revision-controller"), "{rev}");
    kubectl_until(&sluice, &["describe", "route", "hello"], &["TrafficMoved", "Traffic now goes 100% to hello-00001"])
        .await;
    let failed =
        kubectl_until(&sluice, &["describe", "revision", "stranger-00001"], &["Warning", "ContainerMissing"]).await;
    assert!(failed.contains("is not in the local image table"), "{failed}");

    let (ok, events) = kubectl_out(&sluice, &["get", "events"]);
    assert!(ok, "{events}");
    let header: Vec<&str> = events.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "{events}");
    assert!(events.lines().any(|l| l.contains("Warning") && l.contains("revision/stranger-00001")), "{events}");
    assert!(events.lines().any(|l| l.contains("Normal") && l.contains("service/hello")), "{events}");
    let (ok, v1) =
        kubectl_out(&sluice, &["get", "events.v1.events.k8s.io", "-o", "jsonpath={.items[*].regarding.kind}"]);
    assert!(ok && v1.contains("Revision") && v1.contains("Service"), "{v1}");
}
