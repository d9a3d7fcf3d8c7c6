//! What a kubectl user expects of any cluster: the `default` namespace, Kubernetes' answer to an
//! update without a resourceVersion, and kubectl's own message for a kind Sluice does not serve
//! (it needs an `/openapi/v2` document to get that far). Skipped with a printed reason where
//! kubectl is not installed; the raw-HTTP half runs everywhere.

use std::process::Command;

use http::Method;
use serde_json::{Value, json};
use sluice_test_support::{Sluice, kubectl};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn kubectl_out(sluice: &Sluice, args: &[&str]) -> (bool, String) {
    let kubectl = kubectl().expect("checked by the caller");
    let out = Command::new(kubectl).args(args).env("KUBECONFIG", sluice.kubeconfig()).output().expect("run kubectl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn service() -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}}},
    })
}

#[tokio::test]
async fn an_update_without_a_resource_version_is_refused_as_kubernetes_refuses_it_for_custom_resources() {
    let sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let client = sluice.client();
    let json = [("content-type", "application/json")];
    let body = serde_json::to_vec(&service()).expect("json");
    let url = format!("{}/apis/serving.knative.dev/v1/namespaces/default/services", sluice.api);
    let res = client.send(Method::POST, &url, &json, body.clone()).await.expect("create");
    assert_eq!(res.status, 201, "{}", res.text());
    let res = client.send(Method::PUT, &format!("{url}/hello"), &json, body).await.expect("replace");
    assert_eq!(res.status, 422, "{}", res.text());
    let status = res.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        "Service.serving.knative.dev \"hello\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.resourceVersion");
    assert_eq!(status["details"]["causes"][0]["message"], "Invalid value: 0x0: must be specified for an update");
}

#[test]
fn kubectl_sees_the_default_namespace_the_update_rule_and_unserved_kinds_named() {
    if kubectl().is_none() {
        eprintln!("skipping: kubectl is not installed on this machine");
        return;
    }
    let sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let (ok, namespaces) = kubectl_out(&sluice, &["get", "ns"]);
    assert!(ok && namespaces.lines().any(|l| l.starts_with("default ") && l.contains("Active")), "{namespaces}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hello.json");
    std::fs::write(&file, service().to_string()).expect("write");
    let file = file.display().to_string();
    let (ok, out) = kubectl_out(&sluice, &["create", "-f", &file]);
    assert!(ok, "{out}");
    // Sent as written, without a resourceVersion: refused, as for a Knative custom resource.
    let (ok, out) = kubectl_out(
        &sluice,
        &["replace", "--raw", "/apis/serving.knative.dev/v1/namespaces/default/services/hello", "-f", &file],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("The Service \"hello\" is invalid") && out.contains("must be specified for an update"),
        "{out}"
    );
    // `kubectl replace -f` reads the stored version first and sends it, as against Kubernetes.
    let (ok, out) = kubectl_out(&sluice, &["replace", "-f", &file]);
    assert!(ok && out.contains("service.serving.knative.dev/hello replaced"), "{out}");

    for (manifest, kind, version) in [
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n", "Deployment", "apps/v1"),
        (
            "apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata: {name: app.example.com}\nspec: {ref: {name: hello, kind: Service, apiVersion: serving.knative.dev/v1}}\n",
            "DomainMapping",
            "serving.knative.dev/v1beta1",
        ),
    ] {
        let path = dir.path().join(format!("{kind}.yaml"));
        std::fs::write(&path, manifest).expect("write");
        let (ok, out) = kubectl_out(&sluice, &["apply", "-f", &path.display().to_string()]);
        assert!(!ok, "{out}");
        assert!(out.contains(&format!("no matches for kind \"{kind}\" in version \"{version}\"")), "{out}");
    }
}
