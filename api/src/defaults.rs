//! Knative's defaults, applied when an object is created or updated, with the stock
//! `config-defaults` (timeout 300s, unbounded concurrency, container name `user-container`).

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::naming::child_name;
use crate::operation::Operation;
use crate::podspec::{Container, Probe, TcpSocketAction};
use crate::{
    Configuration, DEFAULT_CONTAINER_NAME, DEFAULT_TIMEOUT_SECONDS, Revision, RevisionSpec, Route, Service,
    TrafficTarget,
};

/// Knative's default `responseStartTimeoutSeconds`, applied only below a longer `timeoutSeconds`.
const DEFAULT_RESPONSE_START_TIMEOUT_SECONDS: i64 = 300;

/// Defaults a Service: its template, and traffic (100% to the latest revision when empty).
pub fn service(svc: &mut Service, op: Operation) {
    revision_spec(&mut svc.spec.template.spec, op);
    if svc.spec.traffic.is_empty() {
        svc.spec.traffic =
            vec![TrafficTarget { percent: Some(100), latest_revision: Some(true), ..TrafficTarget::default() }];
    }
    svc.spec.traffic.iter_mut().for_each(traffic_target);
}

/// Defaults a Configuration's template.
pub fn configuration(cfg: &mut Configuration, op: Operation) {
    revision_spec(&mut cfg.spec.template.spec, op);
}

/// Defaults a Route's traffic targets. An empty list stays empty (and fails validation), as in
/// Knative: only a Service knows which configuration "latest" means.
pub fn route(rt: &mut Route, _op: Operation) {
    rt.spec.traffic.iter_mut().for_each(traffic_target);
}

/// Defaults a Revision on creation; its spec is immutable afterwards, so updates are left alone.
pub fn revision(rev: &mut Revision, op: Operation) {
    if op == Operation::Create {
        revision_spec(&mut rev.spec, op);
    }
}

fn traffic_target(tt: &mut TrafficTarget) {
    if tt.latest_revision.is_none() {
        tt.latest_revision = Some(tt.revision_name.as_deref().unwrap_or("").is_empty());
    }
    tt.percent.get_or_insert(0);
}

/// `RevisionSpec.SetDefaults`.
fn revision_spec(spec: &mut RevisionSpec, op: Operation) {
    let timeout = *spec.timeout_seconds.insert(match spec.timeout_seconds {
        None | Some(0) => DEFAULT_TIMEOUT_SECONDS,
        Some(t) => t,
    });
    if spec.response_start_timeout_seconds.is_none() && DEFAULT_RESPONSE_START_TIMEOUT_SECONDS < timeout {
        spec.response_start_timeout_seconds = Some(DEFAULT_RESPONSE_START_TIMEOUT_SECONDS);
    }
    spec.container_concurrency.get_or_insert(0);
    container_names(spec);
    let writable = writable_volumes(spec);
    let single = spec.containers.len() == 1;
    for c in &mut spec.containers {
        if single || !c.ports.is_empty() {
            serving_readiness_probe(c);
        }
        if let Some(p) = &mut c.readiness_probe {
            readiness_probe_defaults(p);
        }
        grpc_service_defaults(c);
        read_only_mounts(c, &writable);
    }
    if !spec.containers.is_empty() && op == Operation::Create {
        spec.enable_service_links.get_or_insert(false);
    }
}

/// Names unnamed containers: `user-container` for a lone one, else `user-container-<n>`,
/// skipping names already taken.
fn container_names(spec: &mut RevisionSpec) {
    let init = spec.extra.get("initContainers").and_then(Value::as_array);
    let init_names = init.into_iter().flatten().map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""));
    let mut taken: BTreeSet<String> =
        spec.containers.iter().map(|c| c.name.as_str()).chain(init_names).map(str::to_string).collect();
    let several = spec.containers.len() > 1;
    let mut next = 0;
    for c in spec.containers.iter_mut().filter(|c| c.name.is_empty()) {
        let mut name = DEFAULT_CONTAINER_NAME.to_string();
        if several || taken.contains(&name) {
            loop {
                name = child_name(DEFAULT_CONTAINER_NAME, &format!("-{next}"));
                next += 1;
                if !taken.contains(&name) {
                    break;
                }
            }
        }
        taken.insert(name.clone());
        c.name = name;
    }
}

/// The serving container gets a TCP readiness probe on its port when it has no handler.
fn serving_readiness_probe(c: &mut Container) {
    let p = c.readiness_probe.get_or_insert_with(Probe::default);
    if p.tcp_socket.is_none() && p.http_get.is_none() && p.exec.is_none() && p.grpc.is_none() {
        // Port 0 means "the serving port", as Knative's empty TCPSocketAction does.
        p.tcp_socket = Some(TcpSocketAction { port: Some(IntOrString::Int(0)), ..TcpSocketAction::default() });
    }
}

fn readiness_probe_defaults(p: &mut Probe) {
    if p.success_threshold.unwrap_or(0) == 0 {
        p.success_threshold = Some(1);
    }
    // Kubernetes' own defaults, when the user opts out of Knative's aggressive probing.
    if p.period_seconds.unwrap_or(0) != 0 {
        if p.failure_threshold.unwrap_or(0) == 0 {
            p.failure_threshold = Some(3);
        }
        if p.timeout_seconds.unwrap_or(0) == 0 {
            p.timeout_seconds = Some(1);
        }
    }
}

fn grpc_service_defaults(c: &mut Container) {
    for p in [&mut c.readiness_probe, &mut c.liveness_probe].into_iter().flatten() {
        if let Some(grpc) = &mut p.grpc {
            grpc.service.get_or_insert_with(String::new);
        }
    }
    if let Some(grpc) = c.extra.get_mut("startupProbe").and_then(|p| p.get_mut("grpc")).and_then(Value::as_object_mut) {
        grpc.entry("service").or_insert_with(|| Value::String(String::new()));
    }
}

/// Volumes a container may write to: emptyDir, persistentVolumeClaim and ephemeral ones.
fn writable_volumes(spec: &RevisionSpec) -> BTreeSet<String> {
    let volumes = spec.extra.get("volumes").and_then(Value::as_array).into_iter().flatten();
    volumes
        .filter(|v| {
            ["emptyDir", "persistentVolumeClaim", "ephemeral"].iter().any(|k| v.get(k).is_some_and(|s| !s.is_null()))
        })
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Mounts of any other volume are made read-only.
fn read_only_mounts(c: &mut Container, writable: &BTreeSet<String>) {
    let mounts = c.extra.get_mut("volumeMounts").and_then(Value::as_array_mut).into_iter().flatten();
    for m in mounts.filter_map(Value::as_object_mut) {
        let name = m.get("name").and_then(Value::as_str).unwrap_or("");
        if !writable.contains(name) {
            m.insert("readOnly".to_string(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> RevisionSpec {
        serde_json::from_value(v).expect("a RevisionSpec")
    }

    fn defaulted(v: Value, op: Operation) -> Value {
        let mut s = spec(v);
        revision_spec(&mut s, op);
        serde_json::to_value(s).expect("serializes")
    }

    #[test]
    fn unset_or_zero_timeout_becomes_300_and_concurrency_0() {
        for t in [json!(null), json!(0)] {
            let out = defaulted(json!({"containers": [{"image": "x"}], "timeoutSeconds": t}), Operation::Create);
            assert_eq!(out["timeoutSeconds"], 300);
            assert_eq!(out["containerConcurrency"], 0);
            assert!(out.get("responseStartTimeoutSeconds").is_none());
        }
        let out = defaulted(json!({"timeoutSeconds": 42, "containerConcurrency": 7}), Operation::Create);
        assert_eq!((out["timeoutSeconds"].clone(), out["containerConcurrency"].clone()), (json!(42), json!(7)));
    }

    #[test]
    fn response_start_timeout_defaults_only_below_a_longer_timeout() {
        let out = defaulted(json!({"timeoutSeconds": 600}), Operation::Create);
        assert_eq!(out["responseStartTimeoutSeconds"], 300);
    }

    #[test]
    fn lone_container_is_named_user_container_and_probed_over_tcp() {
        let out = defaulted(json!({"containers": [{"image": "x"}]}), Operation::Create);
        let c = &out["containers"][0];
        assert_eq!(c["name"], "user-container");
        assert_eq!(c["readinessProbe"], json!({"tcpSocket": {"port": 0}, "successThreshold": 1}));
        assert_eq!(out["enableServiceLinks"], false);
    }

    #[test]
    fn several_unnamed_containers_are_numbered_around_taken_names() {
        let out = defaulted(
            json!({"containers": [{"image": "a", "ports": [{"containerPort": 8080}]}, {"name": "user-container-0", "image": "b"}, {"image": "c"}]}),
            Operation::Create,
        );
        let names: Vec<&Value> = (0..3).map(|i| &out["containers"][i]["name"]).collect();
        assert_eq!(names, [&json!("user-container-1"), &json!("user-container-0"), &json!("user-container-2")]);
        assert!(out["containers"][0].get("readinessProbe").is_some(), "serving container is probed");
        assert!(out["containers"][2].get("readinessProbe").is_none(), "sidecar is not");
    }

    #[test]
    fn explicit_probe_period_gets_kubernetes_thresholds() {
        let out = defaulted(
            json!({"containers": [{"image": "x", "readinessProbe": {"httpGet": {"path": "/"}, "periodSeconds": 5}}]}),
            Operation::Create,
        );
        let p = &out["containers"][0]["readinessProbe"];
        assert_eq!((p["failureThreshold"].clone(), p["timeoutSeconds"].clone()), (json!(3), json!(1)));
        assert!(p.get("tcpSocket").is_none());
    }

    #[test]
    fn service_links_are_only_defaulted_on_create() {
        let out = defaulted(json!({"containers": [{"image": "x"}]}), Operation::Update);
        assert!(out.get("enableServiceLinks").is_none());
    }

    #[test]
    fn mounts_of_read_only_volume_kinds_become_read_only() {
        let out = defaulted(
            json!({"containers": [{"image": "x", "volumeMounts": [{"name": "s", "mountPath": "/s"}, {"name": "tmp", "mountPath": "/tmp"}]}],
                   "volumes": [{"name": "s", "secret": {"secretName": "s"}}, {"name": "tmp", "emptyDir": {}}]}),
            Operation::Create,
        );
        let mounts = &out["containers"][0]["volumeMounts"];
        assert_eq!((mounts[0].get("readOnly"), mounts[1].get("readOnly")), (Some(&json!(true)), None));
    }

    #[test]
    fn service_traffic_defaults_to_all_latest_without_a_configuration_name() {
        let mut svc: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {}})).expect("svc");
        service(&mut svc, Operation::Update);
        let t = serde_json::to_value(&svc.spec.traffic).expect("serializes");
        assert_eq!(t, json!([{"latestRevision": true, "percent": 100}]));
    }

    #[test]
    fn traffic_targets_get_latest_revision_and_percent() {
        let mut rt: Route = serde_json::from_value(
            json!({"metadata": {"name": "r"}, "spec": {"traffic": [{"revisionName": "a"}, {"configurationName": "c", "percent": 5}]}}),
        )
        .expect("route");
        route(&mut rt, Operation::Create);
        let t = serde_json::to_value(&rt.spec.traffic).expect("serializes");
        assert_eq!(
            t,
            json!([{"revisionName": "a", "latestRevision": false, "percent": 0}, {"configurationName": "c", "latestRevision": true, "percent": 5}])
        );
        let mut empty: Route = serde_json::from_value(json!({"metadata": {"name": "r"}, "spec": {}})).expect("route");
        route(&mut empty, Operation::Create);
        assert!(empty.spec.traffic.is_empty(), "a Route's empty traffic is not filled in");
    }

    #[test]
    fn revision_updates_are_not_defaulted() {
        let mut rev: Revision =
            serde_json::from_value(json!({"metadata": {"name": "r"}, "spec": {"containers": [{"image": "x"}]}}))
                .expect("revision");
        revision(&mut rev, Operation::Update);
        assert_eq!(rev.spec.timeout_seconds, None);
        revision(&mut rev, Operation::Create);
        assert_eq!(rev.spec.timeout_seconds, Some(300));
    }
}
