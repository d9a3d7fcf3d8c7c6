//! Liveness, readiness and startup probes: one handler each, ports that match the serving port,
//! and Knative's readiness rules (periodSeconds 0 means its own aggressive probing).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::field_error::FieldError;
use crate::podspec::Probe;

const I32_MAX: i32 = i32::MAX;

/// The serving port as `validateContainersPorts` settles it: what probes may name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingPort {
    /// Port name; `http` when none was given.
    pub name: String,
}

/// `validateProbe` for the serving container: exactly one handler, and a named port must be the
/// serving port's name.
pub fn probe(p: &Probe, port: &ServingPort) -> FieldError {
    let mut errs = FieldError::default();
    let mut handlers: Vec<&str> = Vec::new();
    if let Some(get) = &p.http_get {
        handlers.push("httpGet");
        // Knative prefixes everything found so far with the handler's name; kept for parity.
        errs = errs.via_field("httpGet");
        errs.push(port_check(get.port.as_ref(), port, "httpGet.port"));
    }
    if let Some(tcp) = &p.tcp_socket {
        handlers.push("tcpSocket");
        errs = errs.via_field("tcpSocket");
        errs.push(port_check(tcp.port.as_ref(), port, "tcpSocket.port"));
    }
    if p.exec.is_some() {
        handlers.push("exec");
        errs = errs.via_field("exec");
    }
    if p.grpc.is_some() {
        handlers.push("gRPC");
        errs = errs.via_field("grpc");
    }
    match handlers.len() {
        0 => errs.push(FieldError::missing_one_of(&["httpGet", "tcpSocket", "exec", "grpc"])),
        1 => {}
        _ => errs.push(FieldError::multiple_one_of(&handlers)),
    }
    errs
}

fn port_check(probe_port: Option<&IntOrString>, serving: &ServingPort, path: &str) -> FieldError {
    match probe_port {
        Some(IntOrString::String(name)) if !name.is_empty() && *name != serving.name => {
            FieldError::invalid_value_details(name, path, "Probe port must match container port")
        }
        _ => FieldError::default(),
    }
}

/// `validateReadinessProbe`: [`probe`] plus Knative's bounds on the timing fields.
pub fn readiness(p: &Probe, port: &ServingPort) -> FieldError {
    let mut errs = probe(p, port);
    let period = p.period_seconds.unwrap_or(0);
    let initial_delay = p.initial_delay_seconds.unwrap_or(0);
    let success = p.success_threshold.unwrap_or(0);
    let failure = p.failure_threshold.unwrap_or(0);
    let timeout = p.timeout_seconds.unwrap_or(0);
    if period < 0 {
        errs.push(FieldError::out_of_bounds(period, 0, I32_MAX, "periodSeconds"));
    }
    if initial_delay < 0 {
        errs.push(FieldError::out_of_bounds(initial_delay, 0, I32_MAX, "initialDelaySeconds"));
    }
    if success < 1 {
        errs.push(FieldError::out_of_bounds(success, 1, I32_MAX, "successThreshold"));
    }
    if period == 0 {
        if failure != 0 {
            errs.push(FieldError::new(
                "failureThreshold is disallowed when periodSeconds is zero",
                &["failureThreshold"],
            ));
        }
        if timeout != 0 {
            errs.push(FieldError::new("timeoutSeconds is disallowed when periodSeconds is zero", &["timeoutSeconds"]));
        }
    } else {
        if timeout < 1 {
            errs.push(FieldError::out_of_bounds(timeout, 1, I32_MAX, "timeoutSeconds"));
        }
        if failure < 1 {
            errs.push(FieldError::out_of_bounds(failure, 1, I32_MAX, "failureThreshold"));
        }
    }
    errs
}

/// A sidecar may not probe while multi-container probing is off (Knative's default): every field
/// set is disallowed, the handler reported at the probe itself. Paths relative to the probe.
pub fn sidecar(p: &Value) -> FieldError {
    let Some(fields) = p.as_object() else {
        return FieldError::default();
    };
    let mut paths: Vec<&str> = Vec::new();
    for (key, value) in fields {
        if !super::is_set(value) {
            continue;
        }
        let path = if matches!(key.as_str(), "httpGet" | "tcpSocket" | "exec" | "grpc") { "" } else { key.as_str() };
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    if paths.is_empty() { FieldError::default() } else { FieldError::disallowed(&paths) }
}

/// Reads a probe kept as JSON (`startupProbe`): `Ok(None)` when absent, an error at `""` when it
/// does not have a probe's shape.
pub fn from_json(value: Option<&Value>) -> Result<Option<Probe>, FieldError> {
    match value.filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| FieldError::invalid_value(e, "")),
    }
}
