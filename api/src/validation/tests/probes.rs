//! Probe rules for serving containers and sidecars.

use serde_json::{Value, json};

use super::{accepted, rejected, service, with};
use crate::kinds::Kind;

const C0: &str = "spec.template.spec.containers[0]";

fn probe(field: &str, probe: Value) -> String {
    rejected(Kind::Service, with(service(), &format!("/spec/template/spec/containers/0/{field}"), probe))
}

#[test]
fn probe_without_handler_lists_all_four_sorted() {
    let msg = probe("livenessProbe", json!({"periodSeconds": 5}));
    let p = format!("{C0}.livenessProbe");
    assert_eq!(msg, format!("expected exactly one, got neither: {p}.exec, {p}.grpc, {p}.httpGet, {p}.tcpSocket"));
}

#[test]
fn probe_with_two_handlers_is_rejected() {
    let msg = probe("readinessProbe", json!({"httpGet": {"path": "/"}, "tcpSocket": {"port": 8080}}));
    let p = format!("{C0}.readinessProbe");
    assert_eq!(msg, format!("expected exactly one, got both: {p}.httpGet, {p}.tcpSocket"));
}

#[test]
fn named_probe_port_must_be_the_serving_port_name() {
    let msg = probe("readinessProbe", json!({"httpGet": {"path": "/", "port": "admin"}}));
    assert_eq!(
        msg,
        format!("invalid value: admin: {C0}.readinessProbe.httpGet.port\nProbe port must match container port")
    );
    let named =
        with(service(), "/spec/template/spec/containers/0/readinessProbe", json!({"tcpSocket": {"port": "http"}}));
    accepted(Kind::Service, named);
}

#[test]
fn zero_period_readiness_probe_disallows_failure_and_timeout() {
    let msg = probe("readinessProbe", json!({"tcpSocket": {}, "failureThreshold": 5, "timeoutSeconds": 2}));
    let p = format!("{C0}.readinessProbe");
    assert_eq!(
        msg,
        format!(
            "failureThreshold is disallowed when periodSeconds is zero: {p}.failureThreshold\ntimeoutSeconds is disallowed when periodSeconds is zero: {p}.timeoutSeconds"
        )
    );
}

#[test]
fn readiness_probe_timing_fields_are_bounded() {
    let msg = probe(
        "readinessProbe",
        json!({"tcpSocket": {}, "periodSeconds": -1, "initialDelaySeconds": -2, "successThreshold": -1}),
    );
    let p = format!("{C0}.readinessProbe");
    assert_eq!(
        msg,
        format!(
            "expected 0 <= -1 <= 2147483647: {p}.periodSeconds\nexpected 0 <= -2 <= 2147483647: {p}.initialDelaySeconds\nexpected 1 <= -1 <= 2147483647: {p}.successThreshold"
        )
    );
}

#[test]
fn sidecar_probes_are_disallowed_by_default() {
    let containers = json!([
        {"image": "a", "ports": [{"containerPort": 8080}]},
        {"image": "b", "readinessProbe": {"tcpSocket": {"port": 9000}}},
    ]);
    let msg = rejected(Kind::Service, with(service(), "/spec/template/spec/containers", containers));
    let p = "spec.template.spec.containers[1].readinessProbe";
    assert_eq!(msg, format!("must not set the field(s): {p}, {p}.successThreshold"));
}
