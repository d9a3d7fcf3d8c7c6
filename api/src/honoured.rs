//! What of a revision's pod spec Sluice's local runtime does not honour: fields it accepts
//! (Knative's schema has them, and a manifest that works on Knative must work here) but does not
//! act on. The API server answers each with a `Warning` header, and the Revision carries them in
//! a condition, so nothing is accepted silently and reported Ready as if it were applied.
//!
//! Honoured: the serving container's `image` (through the image table), `command`, `args`,
//! `env` (values, and `valueFrom` ConfigMap and Secret keys), `envFrom` (ConfigMaps and Secrets,
//! resolved when each instance starts), `workingDir`, `ports` (the app gets `PORT`) and `readinessProbe`; Knative's
//! `containerConcurrency`, `timeoutSeconds`; `enableServiceLinks` (Knative's default, which has
//! no meaning without Kubernetes Services). Everything else present is listed here.

use serde_json::Value;

use crate::kinds::Kind;

/// Pod-level fields honoured (or meaningless on one machine, so not worth a warning).
const POD: &[&str] = &[
    "containers",
    "containerConcurrency",
    "timeoutSeconds",
    "responseStartTimeoutSeconds",
    "idleTimeoutSeconds",
    "enableServiceLinks",
];
/// Container fields honoured (or harmless: a name, Kubernetes' pull and termination-message
/// policies, which Kubernetes defaults).
const CONTAINER: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "ports",
    "readinessProbe",
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
];

/// The message for a field Knative's schema does not have.
pub const UNKNOWN: &str = "not a field of Knative's schema (misspelled?); ignored";

/// A field present but not honoured: where, and why it matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotHonoured {
    /// The field's path, e.g. `spec.template.spec.containers[0].resources`.
    pub path: String,
    /// What Sluice does instead.
    pub message: &'static str,
}

/// The fields of `obj` (a `kind` object as JSON) that Sluice accepts but does not act on.
pub fn not_honoured(kind: Kind, obj: &Value) -> Vec<NotHonoured> {
    let (spec, prefix) = match kind {
        Kind::Service | Kind::Configuration => (obj.pointer("/spec/template/spec"), "spec.template.spec"),
        Kind::Revision => (obj.get("spec"), "spec"),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let Some(spec) = spec.and_then(Value::as_object) else { return out };
    for key in spec.keys().filter(|k| !POD.contains(&k.as_str())) {
        out.push(NotHonoured { path: format!("{prefix}.{key}"), message: pod_message(key) });
    }
    let containers = spec.get("containers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let serving =
        containers.iter().position(|c| c.get("ports").is_some_and(|p| p.as_array().is_some_and(|a| !a.is_empty())));
    let serving = serving.unwrap_or(0);
    // Fields the schema does not have at all are named as such (the API server reports them
    // under `fieldValidation`).
    let unknown = crate::strict::unknown_fields(kind, obj);
    for note in &mut out {
        if unknown.contains(&note.path) {
            note.message = UNKNOWN;
        }
    }
    for (i, container) in containers.iter().enumerate() {
        let at = format!("{prefix}.containers[{i}]");
        if i != serving {
            out.push(NotHonoured {
                path: at,
                message: "only the container that receives traffic runs on Sluice's local runtime; this one does not start",
            });
            continue;
        }
        let Some(fields) = container.as_object() else { continue };
        for key in fields.keys().filter(|k| !CONTAINER.contains(&k.as_str())) {
            let path = format!("{at}.{key}");
            let message = if unknown.contains(&path) { UNKNOWN } else { container_message(key) };
            out.push(NotHonoured { path, message });
        }
        for (j, var) in fields.get("env").and_then(Value::as_array).into_iter().flatten().enumerate() {
            // ConfigMap and Secret keys are resolved; fieldRef and resourceFieldRef are refused
            // by validation, and anything else would be left unset.
            let sources = var.get("valueFrom").and_then(Value::as_object).into_iter().flat_map(|m| m.keys());
            for source in sources.filter(|k| !matches!(k.as_str(), "configMapKeyRef" | "secretKeyRef")) {
                out.push(NotHonoured {
                    path: format!("{at}.env[{j}].valueFrom.{source}"),
                    message: "not resolved on Sluice's local runtime: the variable is not set",
                });
            }
        }
    }
    out
}

fn pod_message(key: &str) -> &'static str {
    match key {
        "volumes" => "volumes are not mounted on Sluice's local runtime",
        "serviceAccountName" | "automountServiceAccountToken" => {
            "there are no service accounts on Sluice's local runtime; the instance runs as the user of sluice serve"
        }
        "imagePullSecrets" => "images are not pulled on Sluice's local runtime (the image table maps them to commands)",
        _ => "not applied on Sluice's local runtime (there is no Kubernetes node to apply it)",
    }
}

fn container_message(key: &str) -> &'static str {
    match key {
        "resources" => "resource requests and limits are not enforced on Sluice's local runtime",
        "volumeMounts" => "volumes are not mounted on Sluice's local runtime",
        "livenessProbe" | "startupProbe" => "this probe is not run on Sluice's local runtime (only readinessProbe is)",
        "securityContext" => "the instance runs as the user of sluice serve, without this security context",
        _ => "not applied on Sluice's local runtime",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(kind: Kind, obj: &Value) -> Vec<String> {
        not_honoured(kind, obj).into_iter().map(|n| n.path).collect()
    }

    #[test]
    fn what_the_local_runtime_does_not_apply_is_listed_and_what_it_does_is_not() {
        let svc = json!({"spec": {"template": {"spec": {
        "containerConcurrency": 1, "timeoutSeconds": 30, "enableServiceLinks": false,
        "serviceAccountName": "robot", "volumes": [{"name": "v"}],
        "containers": [
            {"image": "app", "ports": [{"containerPort": 8080}], "env": [{"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
             "envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}, "prefix": "S_"}],
             "resources": {"limits": {"memory": "1Gi"}}, "readinessProbe": {"httpGet": {"path": "/"}},
             "livenessProbe": {"httpGet": {"path": "/"}}, "workingDir": "/tmp"},
            {"image": "sidecar"}
        ]}}}});
        assert_eq!(
            paths(Kind::Service, &svc),
            [
                "spec.template.spec.serviceAccountName",
                "spec.template.spec.volumes",
                "spec.template.spec.containers[0].resources",
                "spec.template.spec.containers[0].livenessProbe",
                "spec.template.spec.containers[0].env[3].valueFrom.fieldRef",
                "spec.template.spec.containers[1]",
            ]
        );
    }

    #[test]
    fn a_plain_knative_sample_has_nothing_to_warn_about() {
        let svc = json!({"spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go",
            "env": [{"name": "TARGET", "value": "Go Sample v1"}]}]}}}});
        assert!(not_honoured(Kind::Service, &svc).is_empty());
        assert!(not_honoured(Kind::Route, &json!({"spec": {"traffic": []}})).is_empty());
    }
}
