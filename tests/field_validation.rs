//! Kubernetes' `fieldValidation` through the real binary: `Strict` refuses a misspelled field
//! with 422 naming its path, `Warn` (the default) stores the object and answers a `Warning`
//! header per field, `Ignore` stores it silently; duplicate JSON keys count too. kubectl (which
//! sends `Strict`) refuses a misspelled manifest and prints the path; `sluice apply` does the
//! same. kubectl parts skip with a printed reason where kubectl is not installed.

use std::process::Command;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::{Sluice, kubectl};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const SERVICES: &str = "/apis/serving.knative.dev/v1/namespaces/default/services";

fn misspelled(name: &str) -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
        "spec": {
            "trafic": [{"percent": 100, "latestRevision": true}],
            "template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go", "enviroment": [{"name": "TARGET", "value": "x"}]}]}}
        }
    })
}

const PATHS: [&str; 2] = ["spec.template.spec.containers[0].enviroment", "spec.trafic"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_warn_warns_ignore_keeps_and_duplicates_count() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let post = |query: &'static str, body: String| {
        let c = c.clone();
        let url = format!("{}{SERVICES}{query}", s.api);
        async move { c.send(Method::POST, &url, &[("content-type", "application/json")], body).await.expect("request") }
    };

    let r = post("?fieldValidation=Strict", misspelled("strict").to_string()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let status = r.json();
    let causes: Vec<&str> =
        status["details"]["causes"].as_array().expect("causes").iter().filter_map(|c| c["field"].as_str()).collect();
    assert_eq!(causes, PATHS);
    assert!(
        status["message"].as_str().unwrap_or_default().contains("strict decoding error: unknown field"),
        "{status}"
    );
    let gone = c.get(&format!("{}{SERVICES}/strict", s.api), &[]).await.expect("get");
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "nothing stored");

    for query in ["", "?fieldValidation=Warn"] {
        let name = if query.is_empty() { "default" } else { "warn" };
        let r = post(query, misspelled(name).to_string()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let warnings: Vec<&str> = r.headers.get_all("warning").iter().filter_map(|v| v.to_str().ok()).collect();
        let want: Vec<String> = PATHS.iter().map(|p| format!("299 - \"unknown field \\\"{p}\\\"\"")).collect();
        assert_eq!(warnings, want, "{query}");
    }

    let r = post("?fieldValidation=Ignore", misspelled("ignore").to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.headers.get("warning").is_none());
    assert!(r.json()["spec"]["trafic"].is_array(), "Ignore keeps the field as written: {}", r.text());

    let twice = r#"{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "twice"},
        "spec": {"template": {"spec": {"containers": [{"image": "a", "image": "b"}]}}}}"#;
    let r = post("?fieldValidation=Strict", twice.to_string()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains(r#"duplicate field \"spec.template.spec.containers[0].image\""#), "{}", r.text());

    let r = post("?fieldValidation=strict", misspelled("bad").to_string()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an unknown directive: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_is_checked_for_what_it_adds() {
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    let c = s.client();
    let url = format!("{}{SERVICES}", s.api);
    let ignore = format!("{url}?fieldValidation=Ignore");
    let created =
        c.send(Method::POST, &ignore, &[("content-type", "application/json")], misspelled("p").to_string()).await;
    assert_eq!(created.expect("create").status, StatusCode::CREATED);
    let patch = |body: Value| {
        let c = c.clone();
        let url = format!("{url}/p?fieldValidation=Strict");
        async move {
            c.send(Method::PATCH, &url, &[("content-type", "application/merge-patch+json")], body.to_string())
                .await
                .expect("patch")
        }
    };
    // Fields stored before are not this patch's doing.
    let r = patch(json!({"metadata": {"labels": {"a": "b"}}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = patch(json!({"spec": {"templat": {}}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains(r#"unknown field \"spec.templat\""#), "{}", r.text());
}

#[test]
fn kubectl_and_sluice_apply_refuse_a_misspelled_manifest_naming_the_field() {
    let s = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("svc.json");
    std::fs::write(&file, misspelled("typo").to_string()).expect("write");

    let out = s.command(BIN).args(["apply", "-f"]).arg(&file).output().expect("sluice apply");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(r#"unknown field "spec.trafic""#), "{stderr}");

    let Some(kubectl) = kubectl() else {
        eprintln!("skipping the kubectl half: kubectl is not installed");
        return;
    };
    let out = Command::new(kubectl)
        .args(["apply", "-f"])
        .arg(&file)
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .expect("kubectl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("spec.trafic"), "kubectl names the field: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_sluice_does_not_apply_are_warned_at_admission_and_in_the_revision() {
    let s = Sluice::start(BIN).expect("start sluice");
    let c = s.client();
    let svc = json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "limited"},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go",
            "resources": {"limits": {"memory": "64Mi"}}}]}}}
    });
    let (r, warnings) = create(&c, &format!("{}{SERVICES}?fieldValidation=Strict", s.api), &svc).await;
    assert_eq!(r.status, StatusCode::CREATED, "a known field, just not applied: {}", r.text());
    assert_eq!(
        warnings,
        [
            "299 - \"spec.template.spec.containers[0].resources: resource requests and limits are not enforced on Sluice's local runtime\""
        ]
    );
    let url = format!("{}/apis/serving.knative.dev/v1/namespaces/default/revisions/limited-00001", s.api);
    let message = fields_honoured_warning(&c, &url).await;
    assert!(message.contains("spec.containers[0].resources"), "{message}");
}

/// The message of the `FieldsHonoured` condition of the object at `url`, once it is there, after
/// checking it is the warning it should be (False, severity Warning).
async fn fields_honoured_warning(c: &sluice_test_support::http::Client, url: &str) -> String {
    let condition = sluice_test_support::until(
        &format!("the FieldsHonoured condition of {url}"),
        std::time::Duration::from_secs(30),
        async || {
            let obj = c.get(url, &[]).await.ok()?.json();
            obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "FieldsHonoured").cloned()
        },
    )
    .await
    .expect("condition");
    assert_eq!(
        (condition["status"].as_str(), condition["severity"].as_str()),
        (Some("False"), Some("Warning")),
        "{condition}"
    );
    condition["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knative_annotations_sluice_does_not_act_on_are_warned_and_shown_on_the_service_and_route() {
    let s = Sluice::start(BIN).expect("start sluice");
    let c = s.client();
    let svc = json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "gradual", "annotations": {"networking.knative.dev/ingress-class": "kourier.ingress.networking.knative.dev"}},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}}}
    });
    let (r, warnings) = create(&c, &format!("{}{SERVICES}?fieldValidation=Strict", s.api), &svc).await;
    assert_eq!(r.status, StatusCode::CREATED, "Knative accepts it, so Sluice does: {}", r.text());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "metadata.annotations.networking.knative.dev/ingress-class: Sluice's own router is the only ingress"
        ),
        "{warnings:?}"
    );
    for url in [
        format!("{}{SERVICES}/gradual", s.api),
        format!("{}/apis/serving.knative.dev/v1/namespaces/default/routes/gradual", s.api),
    ] {
        let message = fields_honoured_warning(&c, &url).await;
        assert!(message.contains("ingress-class"), "{url}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knative_config_map_keys_sluice_does_not_read_are_warned_about() {
    let s = Sluice::start(BIN).expect("start sluice");
    let c = s.client();
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "config-network", "namespace": "knative-serving"},
        "data": {"ingress-class": "kourier.ingress.networking.knative.dev", "rollout-duration": "380s",
            "http-protocol": "Enabled", "_example": "documentation"}
    });
    let (r, warnings) = create(&c, &format!("{}/api/v1/namespaces/knative-serving/configmaps", s.api), &cm).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(warnings.len(), 1, "only the key Sluice does not read: {warnings:?}");
    assert!(warnings[0].contains("data[ingress-class]: not applied on Sluice"), "{warnings:?}");

    let Some(kubectl) = kubectl() else {
        eprintln!("skipping the kubectl half: kubectl is not installed");
        return;
    };
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/samples/knative/serving-config-defaults.yaml");
    let out = Command::new(&kubectl)
        .args(["apply", "-f", sample])
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "Knative's own map applies: {stderr}");
    // The stock map holds only `_example`: nothing is set, so there is nothing to warn about.
    assert!(!stderr.contains("Warning"), "{stderr}");
    let out = Command::new(&kubectl)
        .args(["-n", "knative-serving", "patch", "configmap", "config-defaults", "--type", "merge", "-p"])
        .arg(r#"{"data":{"revision-timeout-seconds":"600"}}"#)
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: data[revision-timeout-seconds]: Sluice applies Knative's stock defaults"),
        "{stderr}"
    );
}

/// POSTs `body` as JSON to `url`: the response and its `Warning` header values.
async fn create(
    c: &sluice_test_support::http::Client,
    url: &str,
    body: &Value,
) -> (sluice_test_support::http::Response, Vec<String>) {
    let r = c.send(Method::POST, url, &[("content-type", "application/json")], body.to_string()).await.expect("create");
    let warnings = r.headers.get_all("warning").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
    (r, warnings)
}
