//! What of a revision's pod spec Sluice's local runtime does not honour: fields it accepts
//! (Knative's schema has them, and a manifest that works on Knative must work here) but does not
//! act on. The API server answers each with a `Warning` header, and the Revision carries them in
//! a condition, so nothing is accepted silently and reported Ready as if it were applied.
//!
//! Honoured: each container's `image` (through the image table), `command`, `args`, `env`
//! (values, and `valueFrom` ConfigMap and Secret keys), `envFrom` (ConfigMaps and Secrets,
//! resolved when each instance starts), `workingDir`; the serving container's `ports` (the app
//! gets `PORT`) and its `readinessProbe`, `livenessProbe` and `startupProbe` with their timing;
//! sidecars (the other containers), which run beside each instance and share its life; Knative's
//! `containerConcurrency`, `timeoutSeconds`; `enableServiceLinks` (Knative's default, which has
//! no meaning without Kubernetes Services). A Route's or Service's `spec.traffic` and
//! Sluice's `spec.rules` (header and path rules) are honoured by the router. Everything else
//! present is listed here, and so is a sidecar that looks like it relies on a pod network Sluice
//! does not have.

mod config_maps;

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
    "livenessProbe",
    "startupProbe",
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
];

/// The type of the condition that lists what is not honoured.
pub const CONDITION: &str = "FieldsHonoured";

/// The message for a sidecar that looks like it expects a pod's own network.
pub const SHARED_NETWORK: &str = "sidecars share the machine's network on Sluice's local runtime (there is no pod network namespace): a fixed port clashes between instances, and localhost reaches the serving container only on its $PORT, not on its declared port";

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
    if kind == Kind::ConfigMap {
        return config_maps::not_honoured(obj);
    }
    let mut out = annotations(kind, obj);
    let (spec, prefix) = match kind {
        Kind::Service | Kind::Configuration => (obj.pointer("/spec/template/spec"), "spec.template.spec"),
        Kind::Revision => (obj.get("spec"), "spec"),
        _ => return out,
    };
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
        if i != serving && relies_on_pod_network(container) {
            out.push(NotHonoured { path: at.clone(), message: SHARED_NETWORK });
        }
        let Some(fields) = container.as_object() else { continue };
        for key in fields.keys().filter(|k| !CONTAINER.contains(&k.as_str())) {
            let path = format!("{at}.{key}");
            let message = if unknown.contains(&path) { UNKNOWN } else { container_message(key) };
            out.push(NotHonoured { path, message });
        }
        out.extend(probe_notes(fields, &at));
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

/// The annotations of `obj` (and of its revision template) that Knative acts on and Sluice does
/// not. Knative's validation accepts them, so a manifest carrying them must apply; the user is
/// told what happens instead.
fn annotations(kind: Kind, obj: &Value) -> Vec<NotHonoured> {
    if !Kind::SERVING.contains(&kind) {
        return Vec::new();
    }
    let mut places = vec![("/metadata/annotations", "metadata.annotations")];
    if matches!(kind, Kind::Service | Kind::Configuration) {
        places.push(("/spec/template/metadata/annotations", "spec.template.metadata.annotations"));
    }
    let mut out = Vec::new();
    for (pointer, prefix) in places {
        let Some(annos) = obj.pointer(pointer).and_then(Value::as_object) else { continue };
        for (key, value) in annos {
            if let Some(message) = annotation_message(key, value.as_str().unwrap_or_default()) {
                out.push(NotHonoured { path: format!("{prefix}.{key}"), message });
            }
        }
    }
    out
}

/// What Sluice does instead of what the annotation `key` = `value` asks for; None when it is
/// honoured or not Knative's.
fn annotation_message(key: &str, value: &str) -> Option<&'static str> {
    Some(match key {
        "autoscaling.knative.dev/class" if value != "kpa.autoscaling.knative.dev" => {
            "Sluice runs only Knative's own autoscaler (kpa.autoscaling.knative.dev, on concurrency or rps); this revision is scaled by it, with the cluster's settings"
        }
        "networking.knative.dev/certificate-class"
        | "networking.knative.dev/certificate.class"
        | "networking.knative.dev/disable-auto-tls"
        | "networking.knative.dev/disableAutoTLS"
        | "networking.knative.dev/disable-external-domain-tls" => {
            "certificates are not provisioned per service on Sluice: serve --https uses --tls-host-cert or the local CA for every host"
        }
        "networking.knative.dev/ingress-class" | "networking.knative.dev/ingress.class" => {
            "Sluice's own router is the only ingress; the class is not used"
        }
        _ if key.starts_with("features.knative.dev/") => "Knative's feature flags are not applied on Sluice",
        _ => return None,
    })
}

/// The `FieldsHonoured` condition for `notes`: False with each path and what Sluice does
/// instead, or None when there is nothing to say (the condition is then removed). It is a
/// warning beside Ready, which it does not take part in.
pub fn condition(notes: &[NotHonoured]) -> Option<crate::conditions::ConditionUpdate> {
    if notes.is_empty() {
        return None;
    }
    let message: Vec<String> = notes.iter().map(|n| format!("{}: {}", n.path, n.message)).collect();
    Some(crate::conditions::ConditionUpdate::failed(CONDITION, "NotHonoured", message.join("; ")))
}

/// Writes the `FieldsHonoured` condition of `obj` (a `kind` object as JSON) into `conditions`,
/// or removes it when everything present is honoured.
pub fn set_condition(conditions: &mut Vec<crate::conditions::Condition>, kind: Kind, obj: &Value, now: &str) {
    match condition(&not_honoured(kind, obj)) {
        None => conditions.retain(|c| c.type_ != CONDITION),
        Some(update) => {
            crate::conditions::set_condition(conditions, update, now);
            if let Some(c) = conditions.iter_mut().find(|c| c.type_ == CONDITION) {
                c.severity = Some("Warning".into());
            }
        }
    }
}

/// A sidecar that sets its own `PORT` (so listens on a fixed port, which every instance's copy
/// would share) or names `localhost`/`127.0.0.1` in its command, args or env values (so expects
/// the serving container at its declared port).
fn relies_on_pod_network(container: &Value) -> bool {
    let env = container.get("env").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let sets_port = env.iter().any(|v| v.get("name").and_then(Value::as_str) == Some("PORT"));
    let texts = ["command", "args"]
        .iter()
        .filter_map(|k| container.get(*k).and_then(Value::as_array))
        .flatten()
        .chain(env.iter().filter_map(|v| v.get("value")))
        .filter_map(Value::as_str);
    sets_port || texts.into_iter().any(|t| t.contains("localhost") || t.contains("127.0.0.1"))
}

/// What of a container's probes is approximated: a gRPC probe is a TCP connect, an HTTPS one
/// is sent as plain HTTP.
fn probe_notes(container: &serde_json::Map<String, Value>, at: &str) -> Vec<NotHonoured> {
    let mut out = Vec::new();
    for kind in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let Some(probe) = container.get(kind) else { continue };
        if probe.get("grpc").is_some() {
            out.push(NotHonoured {
                path: format!("{at}.{kind}.grpc"),
                message: "checked as a TCP connect to its port on Sluice's local runtime, not with gRPC's health service",
            });
        }
        if probe.pointer("/httpGet/scheme").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
            out.push(NotHonoured {
                path: format!("{at}.{kind}.httpGet.scheme"),
                message: "probed over plain HTTP on Sluice's local runtime",
            });
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
             "livenessProbe": {"httpGet": {"path": "/"}}, "startupProbe": {"tcpSocket": {}}, "workingDir": "/tmp"},
            {"image": "sidecar", "command": ["logger"], "resources": {}}
        ]}}}});
        assert_eq!(
            paths(Kind::Service, &svc),
            [
                "spec.template.spec.serviceAccountName",
                "spec.template.spec.volumes",
                "spec.template.spec.containers[0].resources",
                "spec.template.spec.containers[0].env[3].valueFrom.fieldRef",
                "spec.template.spec.containers[1].resources",
            ]
        );
    }

    #[test]
    fn a_sidecar_that_expects_a_pod_network_is_warned_and_a_plain_one_is_not() {
        let with = |sidecar: Value| {
            json!({"spec": {"template": {"spec": {"containers": [
                {"image": "app", "ports": [{"containerPort": 8080}]}, sidecar]}}}})
        };
        let plain = with(json!({"image": "logger", "command": ["tail", "-f", "/dev/null"]}));
        assert!(not_honoured(Kind::Service, &plain).is_empty());
        for sidecar in [
            json!({"image": "proxy", "env": [{"name": "PORT", "value": "9000"}]}),
            json!({"image": "poller", "args": ["--target=http://localhost:8080/"]}),
            json!({"image": "poller", "env": [{"name": "UPSTREAM", "value": "127.0.0.1:8080"}]}),
        ] {
            let notes = not_honoured(Kind::Service, &with(sidecar.clone()));
            assert_eq!(
                notes,
                [NotHonoured { path: "spec.template.spec.containers[1]".into(), message: SHARED_NETWORK }],
                "{sidecar}"
            );
        }
    }

    #[test]
    fn a_plain_knative_sample_has_nothing_to_warn_about() {
        let svc = json!({"spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go",
            "env": [{"name": "TARGET", "value": "Go Sample v1"}]}]}}}});
        assert!(not_honoured(Kind::Service, &svc).is_empty());
        assert!(not_honoured(Kind::Route, &json!({"spec": {"traffic": []}})).is_empty());
    }

    #[test]
    fn header_and_path_rules_are_honoured_and_not_warned_about() {
        let rules = json!([{"name": "iphone", "match": {"headers": [{"name": "user-agent", "regex": ".*iPhone.*"}],
            "path": {"prefix": "/"}}, "traffic": [{"tag": "alpha", "percent": 100}]}]);
        let route =
            json!({"spec": {"traffic": [{"revisionName": "a", "percent": 100, "tag": "alpha"}], "rules": rules}});
        assert!(not_honoured(Kind::Route, &route).is_empty());
        assert!(crate::strict::unknown_fields(Kind::Route, &route).is_empty());
        let svc = json!({"spec": {"template": {"spec": {"containers": [{"image": "app"}]}}, "rules": rules}});
        assert!(not_honoured(Kind::Service, &svc).is_empty());
        assert!(crate::strict::unknown_fields(Kind::Service, &svc).is_empty());
    }

    #[test]
    fn knative_annotations_sluice_does_not_act_on_are_listed_where_they_are() {
        let svc = json!({"metadata": {"annotations": {
            "networking.knative.dev/ingress-class": "kourier.ingress.networking.knative.dev",
            "serving.knative.dev/creator": "me"}},
        "spec": {"template": {"metadata": {"annotations": {
            "autoscaling.knative.dev/min-scale": "1",
            "autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
            "features.knative.dev/http-full-duplex": "Enabled",
            "networking.knative.dev/disable-auto-tls": "true"}},
        "spec": {"containers": [{"image": "app"}]}}}});
        assert_eq!(
            paths(Kind::Service, &svc),
            [
                "metadata.annotations.networking.knative.dev/ingress-class",
                "spec.template.metadata.annotations.autoscaling.knative.dev/class",
                "spec.template.metadata.annotations.features.knative.dev/http-full-duplex",
                "spec.template.metadata.annotations.networking.knative.dev/disable-auto-tls",
            ]
        );
        let route = json!({"metadata": {"annotations": {"serving.knative.dev/rollout-duration": "60s",
            "networking.knative.dev/disable-auto-tls": "true"}},
            "spec": {"traffic": []}});
        assert_eq!(
            paths(Kind::Route, &route),
            ["metadata.annotations.networking.knative.dev/disable-auto-tls"],
            "a gradual rollout is done"
        );
        assert!(not_honoured(Kind::ConfigMap, &route).is_empty(), "only Knative's kinds");
        let kpa =
            json!({"metadata": {"annotations": {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"}}});
        assert!(not_honoured(Kind::Revision, &kpa).is_empty(), "the KPA is what runs");
    }

    #[test]
    fn the_condition_is_a_warning_that_goes_once_nothing_is_left_to_say() {
        let route = json!({"metadata": {"annotations": {"networking.knative.dev/ingress-class": "x"}}});
        let mut conditions = Vec::new();
        set_condition(&mut conditions, Kind::Route, &route, "2026-01-01T00:00:00Z");
        let c = &conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.reason.as_deref(), c.severity.as_deref()),
            (CONDITION, Some("NotHonoured"), Some("Warning"))
        );
        assert!(c.message.as_deref().unwrap_or_default().contains("the class is not used"), "{c:?}");
        set_condition(&mut conditions, Kind::Route, &json!({"metadata": {}}), "2026-01-01T00:00:01Z");
        assert!(conditions.is_empty());
    }

    #[test]
    fn probes_that_are_only_approximated_are_named() {
        let svc = json!({"spec": {"template": {"spec": {"containers": [{"image": "app",
            "readinessProbe": {"grpc": {"port": 8080}},
            "livenessProbe": {"httpGet": {"path": "/", "scheme": "HTTPS"}},
            "startupProbe": {"httpGet": {"path": "/", "scheme": "HTTP"}}}]}}}});
        assert_eq!(
            paths(Kind::Service, &svc),
            [
                "spec.template.spec.containers[0].readinessProbe.grpc",
                "spec.template.spec.containers[0].livenessProbe.httpGet.scheme",
            ]
        );
    }
}
