//! Objects for the reconcilers' unit tests.

use serde_json::{Value, json};
use sluice_api::{Configuration, Revision, Route, Service};

pub fn service(name: &str, extra_spec: Value) -> Service {
    let mut spec = json!({"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}}});
    sluice_controller_merge(&mut spec, extra_spec);
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "uid": "svc-uid", "generation": 1,
                     "labels": {"team": "a"}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"}},
        "spec": spec
    }))
    .expect("service")
}

pub fn configuration(name: &str, generation: i64, status: Value) -> Configuration {
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
        "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"), "generation": generation,
                     "labels": {"serving.knative.dev/service": name, "serving.knative.dev/serviceUID": "svc-uid"}},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}}},
        "status": status
    }))
    .expect("configuration")
}

/// A revision of configuration `cfg` at `generation`, Ready as given ("True"/"False"/"Unknown").
pub fn revision(cfg: &str, generation: i64, ready: &str) -> Revision {
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": format!("{cfg}-{generation:05}"), "namespace": "default",
                     "labels": {"serving.knative.dev/configuration": cfg, "serving.knative.dev/configurationGeneration": generation.to_string(),
                                "serving.knative.dev/service": cfg},
                     "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": cfg, "uid": format!("{cfg}-uid"), "controller": true}]},
        "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]},
        "status": {"conditions": [{"type": "Ready", "status": ready, "message": if ready == "False" { "boom" } else { "" }}]}
    }))
    .expect("revision")
}

pub fn route(name: &str, traffic: Value, labels: Value) -> Route {
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Route",
        "metadata": {"name": name, "namespace": "default", "generation": 1, "labels": labels},
        "spec": {"traffic": traffic}
    }))
    .expect("route")
}

/// JSON merge patch (RFC 7386), enough for fixtures: objects merge, anything else replaces.
fn sluice_controller_merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    sluice_controller_merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}
