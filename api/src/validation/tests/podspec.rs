//! RevisionSpec and PodSpec rules: timeouts, concurrency, containers, env, ports.

use serde_json::{Value, json};

use super::{accepted, rejected, revision, service, with};
use crate::kinds::Kind;

const SPEC: &str = "/spec/template/spec";
const C0: &str = "spec.template.spec.containers[0]";

fn spec_with(field: &str, value: Value) -> String {
    rejected(Kind::Service, with(service(), &format!("{SPEC}/{field}"), value))
}

#[test]
fn timeout_over_the_maximum_is_out_of_bounds() {
    assert_eq!(spec_with("timeoutSeconds", json!(601)), "expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds");
    assert_eq!(spec_with("timeoutSeconds", json!(-1)), "expected 0 <= -1 <= 600: spec.template.spec.timeoutSeconds");
    let rev = with(revision(), "/spec/timeoutSeconds", json!(601));
    assert_eq!(rejected(Kind::Revision, rev), "expected 0 <= 601 <= 600: spec.timeoutSeconds");
}

#[test]
fn container_concurrency_over_1000_is_out_of_bounds() {
    let msg = spec_with("containerConcurrency", json!(1001));
    assert_eq!(msg, "expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency");
}

#[test]
fn a_revision_needs_containers_with_images() {
    assert_eq!(spec_with("containers", json!([])), "missing field(s): spec.template.spec.containers");
    assert_eq!(spec_with("containers/0/image", json!("")), format!("missing field(s): {C0}.image"));
}

#[test]
fn reserved_env_vars_are_rejected_except_port_in_sidecars() {
    let msg = spec_with("containers/0/env", json!([{"name": "PORT", "value": "1"}]));
    assert_eq!(msg, format!("\"PORT\" is a reserved environment variable: {C0}.env[0].name"));
    let msg = spec_with("containers/0/env", json!([{"name": "K_REVISION", "value": "1"}]));
    assert_eq!(msg, format!("\"K_REVISION\" is a reserved environment variable: {C0}.env[0].name"));
    let sidecar = json!([
        {"image": "a", "ports": [{"containerPort": 8080}]},
        {"image": "b", "env": [{"name": "PORT", "value": "9000"}]},
    ]);
    accepted(Kind::Service, with(service(), &format!("{SPEC}/containers"), sidecar));
}

#[test]
fn env_field_refs_are_off_by_default() {
    let env = json!([{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]);
    assert_eq!(
        spec_with("containers/0/env", env),
        format!("must not set the field(s): {C0}.env[0].valueFrom.fieldRef")
    );
}

#[test]
fn queue_proxy_is_a_reserved_container_name() {
    let msg = spec_with("containers/0/name", json!("queue-proxy"));
    assert_eq!(msg, format!("\"queue-proxy\" is a reserved container name: {C0}.name"));
}

#[test]
fn reserved_ports_are_rejected_with_details() {
    for port in [8012, 8013, 8022, 9090, 9091, 8008] {
        let msg = spec_with("containers/0/ports", json!([{"containerPort": port}]));
        assert_eq!(
            msg,
            format!(
                "invalid value: {port} is a reserved port: {C0}.ports.containerPort\n{port} is a reserved port, please use a different value"
            )
        );
    }
}

#[test]
fn port_number_protocol_and_name_are_checked() {
    let msg = spec_with("containers/0/ports", json!([{"containerPort": 70000}]));
    assert_eq!(msg, format!("expected 0 <= 70000 <= 65535: {C0}.ports.containerPort"));
    let msg = spec_with("containers/0/ports", json!([{"containerPort": 8080, "protocol": "UDP"}]));
    assert_eq!(msg, format!("invalid value: UDP: {C0}.ports.protocol"));
    let msg = spec_with("containers/0/ports", json!([{"containerPort": 8080, "name": "grpc"}]));
    assert_eq!(
        msg,
        format!("Port name grpc is not allowed: {C0}.ports\nName must be empty, or one of: 'h2c', 'http1'")
    );
    let msg = spec_with("containers/0/ports", json!([{"containerPort": 8080, "hostPort": 80}]));
    assert_eq!(msg, format!("must not set the field(s): {C0}.ports.hostPort"));
    accepted(
        Kind::Service,
        with(service(), &format!("{SPEC}/containers/0/ports"), json!([{"containerPort": 8080, "name": "h2c"}])),
    );
}

#[test]
fn only_one_port_is_allowed_across_containers() {
    let msg = spec_with("containers/0/ports", json!([{"containerPort": 8080}, {"containerPort": 8081}]));
    assert_eq!(
        msg,
        "more than one container port is set: spec.template.spec.containers[*].ports\nOnly a single port is allowed across all containers"
    );
}

#[test]
fn several_containers_need_one_serving_port_and_unique_names() {
    let msg = spec_with("containers", json!([{"image": "a"}, {"image": "b"}]));
    assert_eq!(msg, "missing field(s): spec.template.spec.containers[*].ports");
    let dup = json!([{"name": "a", "image": "a", "ports": [{"containerPort": 8080}]}, {"name": "a", "image": "b"}]);
    assert_eq!(spec_with("containers", dup), "duplicate container name \"a\": spec.template.spec.containers[1].name");
}

#[test]
fn pod_and_container_fields_knative_masks_are_disallowed() {
    let msg = spec_with("nodeSelector", json!({"disk": "ssd"}));
    assert_eq!(msg, "must not set the field(s): spec.template.spec.nodeSelector");
    let msg = spec_with("containers/0/stdin", json!(true));
    assert_eq!(msg, format!("must not set the field(s): {C0}.stdin"));
    let msg = spec_with("initContainers", json!([{"name": "init", "image": "i"}]));
    assert_eq!(
        msg,
        "must not set the field(s): spec.template.spec.initContainers\npod spec support for init-containers is off, but found 1 init containers: "
    );
}

#[test]
fn service_account_name_must_be_a_dns_subdomain() {
    let msg = spec_with("serviceAccountName", json!("Bad_Account"));
    assert!(
        msg.starts_with(
            "invalid value: Bad_Account: spec.template.spec.serviceAccountName\na lowercase RFC 1123 subdomain"
        ),
        "{msg}"
    );
}
