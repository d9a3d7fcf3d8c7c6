//! The PodSpec inlined in a RevisionSpec (`serving.ValidatePodSpec`): the pod fields Knative
//! allows, volumes, one serving port across all containers, and each container by its role.

use std::collections::BTreeSet;

use super::container::{self, Role};
use super::disallowed_keys;
use super::probe::ServingPort;
use super::volumes::{self, Volumes};
use crate::RevisionSpec;
use crate::field_error::FieldError;
use crate::naming::dns1123_subdomain;
use crate::podspec::Container;

/// PodSpec fields Kubernetes has and Knative refuses with its stock feature flags.
const DISALLOWED: &[&str] = &[
    "activeDeadlineSeconds",
    "affinity",
    "dnsConfig",
    "dnsPolicy",
    "ephemeralContainers",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostUsers",
    "hostname",
    "initContainers",
    "nodeName",
    "nodeSelector",
    "os",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "resourceClaims",
    "resources",
    "restartPolicy",
    "runtimeClassName",
    "schedulerName",
    "schedulingGates",
    "securityContext",
    "serviceAccount",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
];

/// Validates the pod part of a RevisionSpec; paths relative to the spec.
pub fn validate(spec: &RevisionSpec) -> FieldError {
    let mut errs = disallowed_keys(&spec.extra, DISALLOWED);
    // Only `false` may be set: Knative never mounts the token unless asked not to.
    if spec.extra.get("automountServiceAccountToken").and_then(|v| v.as_bool()) == Some(true) {
        errs.push(FieldError::disallowed(&["automountServiceAccountToken"]));
    }
    let init = spec.extra.get("initContainers").and_then(|v| v.as_array());
    let mounts = spec.containers.iter().map(|c| c.extra.get("volumeMounts"));
    let init_mounts = init.into_iter().flatten().map(|c| c.get("volumeMounts"));
    let mounted: BTreeSet<String> = volumes::mounted(init_mounts.chain(mounts));
    let (volumes, volume_errs) = volumes::volumes(spec.extra.get("volumes"), &mounted);
    errs.push(volume_errs.via_field("volumes"));
    if let Some(n) = init.map(Vec::len).filter(|n| *n > 0) {
        errs.push(FieldError::new(
            format!("pod spec support for init-containers is off, but found {n} init containers"),
            &[],
        ));
    }
    let (port, port_errs) = serving_port(&spec.containers);
    errs.push(port_errs.via_field("containers[*]"));
    match spec.containers.as_slice() {
        [] => errs.push(FieldError::missing(&["containers"])),
        [only] => errs.push(container::validate(only, Role::Serving(&port), &volumes).via_field_index("containers", 0)),
        many => errs.push(several(many, &port, &volumes)),
    }
    if let Some(account) = spec.service_account_name.as_deref().filter(|a| !a.is_empty()) {
        for msg in dns1123_subdomain(account) {
            errs.push(FieldError::invalid_value_details(account, "serviceAccountName", msg));
        }
    }
    errs
}

/// `validateContainersPorts`: one port across all containers, and with several containers one of
/// them must declare it. Paths relative to `containers[*]`.
fn serving_port(containers: &[Container]) -> (ServingPort, FieldError) {
    let count: usize = containers.iter().map(|c| c.ports.len()).sum();
    let declared = containers.iter().rev().find_map(|c| c.ports.first());
    let name = declared.and_then(|p| p.name.as_deref()).filter(|n| !n.is_empty()).unwrap_or("http");
    let port = ServingPort { name: name.to_string() };
    let errs = if count == 0 && containers.len() > 1 {
        FieldError::missing(&["ports"])
    } else if count > 1 {
        FieldError::with_details(
            "more than one container port is set",
            &["ports"],
            "Only a single port is allowed across all containers",
        )
    } else {
        FieldError::default()
    };
    (port, errs)
}

/// Several containers: unique names; the one with a port serves, the others are sidecars.
fn several(containers: &[Container], port: &ServingPort, volumes: &Volumes) -> FieldError {
    let mut errs = FieldError::default();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        if !names.insert(c.name.as_str()) {
            errs.push(
                FieldError::new(format!("duplicate container name {:?}", c.name), &["name"])
                    .via_field_index("containers", i),
            );
        }
        let role = if c.ports.is_empty() { Role::Sidecar } else { Role::Serving(port) };
        errs.push(container::validate(c, role, volumes).via_field_index("containers", i));
    }
    errs
}
