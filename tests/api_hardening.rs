//! The API server against the requests of an attack on it, over raw HTTP through the real
//! binary: patches that amplify themselves, query parameters and metadata Kubernetes refuses.
//! Each is answered with the Kubernetes `Status` Kubernetes would give, promptly, and stores
//! nothing.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::Sluice;
use sluice_test_support::http::Client;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn send(c: &Client, s: &Sluice, method: Method, path: &str, ct: &str, body: impl Into<bytes::Bytes>) -> Answer {
    let r = c.send(method, &format!("{}{path}", s.api), &[("content-type", ct)], body).await.expect("request");
    Answer { code: r.status, len: r.body.len(), body: r.json() }
}

/// A response: status, body length, body as JSON.
struct Answer {
    code: StatusCode,
    len: usize,
    body: Value,
}

// === impl Answer ===

impl Answer {
    fn assert_status(&self, code: u16, reason: &str) {
        assert_eq!(self.code.as_u16(), code, "{}", self.body);
        assert_eq!(
            (&self.body["kind"], &self.body["code"], &self.body["reason"]),
            (&json!("Status"), &json!(code), &json!(reason)),
            "{}",
            self.body
        );
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

fn config_map(name: &str, data: Value) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doubling_json_patch_copies_are_refused_promptly_without_echoing_the_value() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let secret = "s".repeat(1024);
    let created =
        send(&c, &s, Method::POST, CONFIGMAPS, "application/json", config_map("cm", json!({"k": secret}))).await;
    assert_eq!(created.code, StatusCode::CREATED, "{}", created.body);

    // CVE-2019-1002100's pattern: each copy of /data into itself doubles the object; 17 of
    // them, under 1 KiB of request, would make it 128 MiB (and the error that echoed it more).
    let ops: Vec<Value> =
        (0..17).map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/d{i}")})).collect();
    let patch = Value::Array(ops).to_string();
    assert!(patch.len() < 1024, "{}", patch.len());
    let started = tokio::time::Instant::now();
    let r = send(&c, &s, Method::PATCH, &format!("{CONFIGMAPS}/cm"), "application/json-patch+json", patch).await;
    r.assert_status(422, "Invalid");
    assert!(r.message().contains("operation 11: Unable to complete the copy"), "{}", r.message());
    assert!(r.len < 1024 && !r.message().contains("sss"), "the value is not echoed: {} bytes", r.len);
    // Before the bound this took seconds; what is left is one round trip.
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());

    let ops = vec![json!({"op": "test", "path": "/data/k", "value": "x"}); 10_001];
    let r =
        send(&c, &s, Method::PATCH, &format!("{CONFIGMAPS}/cm"), "application/json-patch+json", json!(ops).to_string())
            .await;
    r.assert_status(413, "RequestEntityTooLarge");
    assert_eq!(r.message(), "The allowed maximum operations in a JSON patch is 10000, got 10001");

    // A merge patch cannot make an object larger than a create could send either: 1 MiB of
    // data and a 2.5 MiB patch, each within the body limit, would store 3.5 MiB.
    let mib = "x".repeat(1024 * 1024 - 64);
    let big = send(&c, &s, Method::POST, CONFIGMAPS, "application/json", config_map("big", json!({"k": mib}))).await;
    assert_eq!(big.code, StatusCode::CREATED, "{}", big.body);
    let pad = json!({"pad": "p".repeat(5 * 512 * 1024)}).to_string();
    let r = send(&c, &s, Method::PATCH, &format!("{CONFIGMAPS}/big"), "application/merge-patch+json", pad).await;
    r.assert_status(413, "RequestEntityTooLarge");
    assert_eq!(r.message(), "the patched object is larger than the limit of 3145728 bytes");
    let stored = c.get(&format!("{}{CONFIGMAPS}/big", s.api), &[]).await.expect("get").json();
    assert_eq!(stored["metadata"]["resourceVersion"], big.body["metadata"]["resourceVersion"], "nothing stored");

    let stored = c.get(&format!("{}{CONFIGMAPS}/cm", s.api), &[]).await.expect("get").json();
    assert_eq!(stored["metadata"]["resourceVersion"], created.body["metadata"]["resourceVersion"], "nothing stored");
}

fn unsupported_dry_run(options: &str, given: &str) -> Value {
    let cause = format!("Unsupported value: []string{{{given}}}: supported values: \"All\"");
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 422,
        "reason": "Invalid", "message": format!("{options}.meta.k8s.io \"\" is invalid: dryRun: {cause}"),
        "details": {"group": "meta.k8s.io", "kind": options,
            "causes": [{"reason": "FieldValueNotSupported", "message": cause, "field": "dryRun"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_value_other_than_all_is_refused_and_nothing_is_written() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let json_ct = "application/json";
    let item = format!("{CONFIGMAPS}/cm");

    let r =
        send(&c, &s, Method::POST, &format!("{CONFIGMAPS}?dryRun=Bogus"), json_ct, config_map("cm", json!({}))).await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("CreateOptions", "\"Bogus\"")));
    let path = format!("{CONFIGMAPS}?dryRun=All&dryRun=Bogus");
    let r = send(&c, &s, Method::POST, &path, json_ct, config_map("cm", json!({}))).await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("CreateOptions", "\"All\", \"Bogus\"")));
    let path = format!("{CONFIGMAPS}?dryRun=All&dryRun=All");
    let r = send(&c, &s, Method::POST, &path, json_ct, config_map("cm", json!({}))).await;
    assert_eq!(r.code, StatusCode::CREATED, "a real dry run answers as a create: {}", r.body);
    let r = send(&c, &s, Method::GET, &item, json_ct, "").await;
    r.assert_status(404, "NotFound");

    let created = send(&c, &s, Method::POST, CONFIGMAPS, json_ct, config_map("cm", json!({"k": "v"}))).await;
    assert_eq!(created.code, StatusCode::CREATED, "{}", created.body);
    let mut edited = created.body.clone();
    edited["data"]["k"] = json!("edited");
    let r = send(&c, &s, Method::PUT, &format!("{item}?dryRun=Bogus"), json_ct, edited.to_string()).await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("UpdateOptions", "\"Bogus\"")));
    let merge = json!({"data": {"k": "edited"}}).to_string();
    let path = format!("{item}?dryRun=Bogus");
    let r = send(&c, &s, Method::PATCH, &path, "application/merge-patch+json", merge).await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("PatchOptions", "\"Bogus\"")));
    let r = send(&c, &s, Method::DELETE, &format!("{item}?dryRun=Bogus"), json_ct, "").await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("DeleteOptions", "\"Bogus\"")));
    let r = send(&c, &s, Method::DELETE, &item, json_ct, json!({"dryRun": ["Bogus"]}).to_string()).await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("DeleteOptions", "\"Bogus\"")));
    let r = send(&c, &s, Method::DELETE, &format!("{CONFIGMAPS}?dryRun=Bogus"), json_ct, "").await;
    assert_eq!((r.code.as_u16(), r.body), (422, unsupported_dry_run("DeleteOptions", "\"Bogus\"")));

    let stored = send(&c, &s, Method::GET, &item, json_ct, "").await;
    assert_eq!(stored.body, created.body, "unchanged by the refused writes");
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_options_that_are_not_what_kubernetes_accepts_get_400() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    for name in ["a", "b"] {
        let r = send(&c, &s, Method::POST, CONFIGMAPS, "application/json", config_map(name, json!({}))).await;
        assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    }
    let list = async |query: &str| send(&c, &s, Method::GET, &format!("{CONFIGMAPS}?{query}"), "", "").await;

    let r = list("resourceVersion=abc").await;
    r.assert_status(400, "BadRequest");
    assert_eq!(r.message(), r#"invalid resource version "abc""#);
    let r = list("limit=-1").await;
    r.assert_status(400, "BadRequest");
    assert_eq!(r.message(), r#"invalid limit "-1": must be a non-negative integer"#);
    list("limit=abc").await.assert_status(400, "BadRequest");

    // Paging still works, and its token is the only kind accepted.
    let first = list("limit=1").await;
    assert_eq!(first.code, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(1), "{}", first.body);
    let token = first.body["metadata"]["continue"].as_str().expect("a continue token").to_string();
    let second = list(&format!("limit=1&continue={token}")).await;
    assert_eq!(second.body["items"][0]["metadata"]["name"], "b", "{}", second.body);
    let rv = first.body["metadata"]["resourceVersion"].as_str().expect("rv");
    let r = list(&format!("limit=1&continue={token}&resourceVersion={rv}")).await;
    r.assert_status(400, "BadRequest");
    assert_eq!(r.message(), "specifying resource version is not allowed when using continue");

    let garbage =
        ["zz", "abc", &hex("zzzz"), &hex("configmaps/other/a"), &hex("routes/default/a"), &hex("configmaps/default/")];
    for token in garbage {
        let r = list(&format!("continue={token}")).await;
        r.assert_status(400, "BadRequest");
        assert!(r.message().contains("continue key is not valid"), "{token}: {}", r.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_annotation_keys_and_label_values_kubernetes_refuses_get_422_on_every_kind() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let json_ct = "application/json";
    let services = "/apis/serving.knative.dev/v1/namespaces/default/services";
    let service = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "svc"},
        "spec": {"template": {"spec": {"containers": [{"image": "img"}]}}}});
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    let kinds = [
        (CONFIGMAPS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})),
        ("/api/v1/namespaces", namespace),
        (services, service),
    ];
    let bad = [
        ("labels", json!({"bad key!": "v"}), "\"bad key!\"", "name part must consist of alphanumeric characters"),
        ("labels", json!({"app": "v".repeat(100)}), "\"vvvv", "must be no more than 63 characters"),
        ("annotations", json!({"bad key!": "v"}), "\"bad key!\"", "name part must consist of alphanumeric characters"),
    ];
    for (path, obj) in &kinds {
        for (field, map, quoted, why) in &bad {
            let mut obj = obj.clone();
            obj["metadata"][field] = map.clone();
            let r = send(&c, &s, Method::POST, path, json_ct, obj.to_string()).await;
            r.assert_status(422, "Invalid");
            let cause = &r.body["details"]["causes"][0];
            assert_eq!(cause["field"], format!("metadata.{field}"), "{path}: {}", r.body);
            let message = cause["message"].as_str().unwrap_or_default();
            assert!(message.starts_with(&format!("invalid value: {quoted}")) && message.contains(why), "{message}");
        }
        let list = send(&c, &s, Method::GET, path, json_ct, "").await;
        let stored: Vec<&str> = list.body["items"]
            .as_array()
            .map(|items| items.iter().filter_map(|i| i["metadata"]["name"].as_str()).collect())
            .unwrap_or_default();
        // Only the namespaces that always exist.
        let builtin: &[&str] = if path.ends_with("/namespaces") { &["default", "knative-serving"] } else { &[] };
        assert_eq!(stored, builtin, "{path}: nothing stored");
    }

    // A patch cannot bring them in either; a valid label still goes in.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"app": "web"}}});
    let created = send(&c, &s, Method::POST, CONFIGMAPS, json_ct, cm.to_string()).await;
    assert_eq!(created.code, StatusCode::CREATED, "{}", created.body);
    let patch = json!({"metadata": {"labels": {"bad key!": "v"}}}).to_string();
    let r = send(&c, &s, Method::PATCH, &format!("{CONFIGMAPS}/cm"), "application/merge-patch+json", patch).await;
    r.assert_status(422, "Invalid");
    let stored = send(&c, &s, Method::GET, &format!("{CONFIGMAPS}/cm"), json_ct, "").await;
    assert_eq!(stored.body, created.body);
}
