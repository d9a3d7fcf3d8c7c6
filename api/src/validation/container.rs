//! One container of a revision: the fields Knative allows, reserved names, env vars and ports,
//! its image, probes and volume mounts.

use serde_json::Value;

use super::probe::{self, ServingPort};
use super::volumes::{self, Volumes};
use super::{disallowed_keys, is_set};
use crate::field_error::FieldError;
use crate::podspec::{Container, ContainerPort};

/// Container fields Kubernetes has and Knative refuses.
const DISALLOWED: &[&str] =
    &["lifecycle", "resizePolicy", "restartPolicy", "stdin", "stdinOnce", "tty", "volumeDevices"];
/// Container port fields Kubernetes has and Knative refuses.
const PORT_DISALLOWED: &[&str] = &["hostIP", "hostPort"];
const RESERVED_NAMES: &[&str] = &["queue-proxy"];
const RESERVED_ENV: &[&str] = &["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"];
/// The queue-proxy's and profiler's ports, which a user container may not take.
const RESERVED_PORTS: &[i32] = &[8012, 8013, 8022, 9090, 9091, 8008];
const PORT_NAMES: &[&str] = &["", "h2c", "http1"];

/// What a container does in its revision.
#[derive(Clone, Copy, Debug)]
pub enum Role<'a> {
    /// It receives traffic on this port.
    Serving(&'a ServingPort),
    /// It runs beside the serving container.
    Sidecar,
}

/// Validates a container; paths relative to it.
pub fn validate(c: &Container, role: Role<'_>, volumes: &Volumes) -> FieldError {
    let mut errs = probes(c, role);
    if *c == Container::default() {
        return errs.also(FieldError::missing(&[""]));
    }
    errs.push(disallowed_keys(&c.extra, DISALLOWED));
    if RESERVED_NAMES.contains(&c.name.as_str()) {
        errs.push(FieldError::new(format!("{:?} is a reserved container name", c.name), &["name"]));
    }
    errs.push(env(c, matches!(role, Role::Sidecar)).via_field("env"));
    errs.push(env_from(c.extra.get("envFrom")).via_field("envFrom"));
    if c.image.is_empty() {
        errs.push(FieldError::missing(&["image"]));
    }
    errs.push(ports(&c.ports).via_field("ports"));
    if let Some(policy) = c.extra.get("terminationMessagePolicy").filter(|v| is_set(v))
        && !matches!(policy.as_str(), Some("File" | "FallbackToLogsOnError"))
    {
        errs.push(FieldError::invalid_value(display(policy), "terminationMessagePolicy"));
    }
    errs.push(volumes::mounts(c.extra.get("volumeMounts"), volumes).via_field("volumeMounts"));
    errs
}

fn probes(c: &Container, role: Role<'_>) -> FieldError {
    let mut errs = FieldError::default();
    let startup = match probe::from_json(c.extra.get("startupProbe")) {
        Ok(p) => p,
        Err(e) => {
            errs.push(e.via_field("startupProbe"));
            None
        }
    };
    let all =
        [("livenessProbe", &c.liveness_probe), ("readinessProbe", &c.readiness_probe), ("startupProbe", &startup)];
    for (field, p) in all {
        let Some(p) = p else { continue };
        let e = match role {
            Role::Serving(port) if field == "readinessProbe" => probe::readiness(p, port),
            Role::Serving(port) => probe::probe(p, port),
            Role::Sidecar => probe::sidecar(&serde_json::to_value(p).unwrap_or(Value::Null)),
        };
        errs.push(e.via_field(field));
    }
    errs
}

fn env(c: &Container, sidecar: bool) -> FieldError {
    let mut errs = FieldError::default();
    for (i, var) in c.env.iter().enumerate() {
        let mut e = FieldError::default();
        // A sidecar may set PORT for itself; the serving container's comes from its port.
        let reserved = RESERVED_ENV.iter().any(|r| *r == var.name && !(sidecar && *r == "PORT"));
        if var.name.is_empty() {
            e.push(FieldError::missing(&["name"]));
        } else if reserved {
            e.push(FieldError::new(format!("{:?} is a reserved environment variable", var.name), &["name"]));
        }
        if let Some(from) = &var.value_from {
            // fieldRef and resourceFieldRef need the `kubernetes.podspec-fieldref` feature, off by default.
            let mut refs: Vec<&str> = Vec::new();
            if from.field_ref.is_some() {
                refs.push("fieldRef");
            }
            if from.resource_field_ref.is_some() {
                refs.push("resourceFieldRef");
            }
            if !refs.is_empty() {
                e.push(FieldError::disallowed(&refs).via_field("valueFrom"));
            }
        }
        errs.push(e.via_index(i));
    }
    errs
}

fn env_from(list: Option<&Value>) -> FieldError {
    let mut errs = FieldError::default();
    for source in list.and_then(Value::as_array).into_iter().flatten() {
        let has = |k: &str| source.get(k).is_some_and(|v| !v.is_null());
        // Knative reports these without the entry's index.
        match (has("configMapRef"), has("secretRef")) {
            (true, true) => errs.push(FieldError::multiple_one_of(&["configMapRef", "secretRef"])),
            (false, false) => errs.push(FieldError::missing_one_of(&["configMapRef", "secretRef"])),
            _ => {}
        }
    }
    errs
}

/// `validateContainerPorts`: only the first port is checked, at `ports.<field>`.
fn ports(ports: &[ContainerPort]) -> FieldError {
    let Some(port) = ports.first() else {
        return FieldError::default();
    };
    let mut errs = disallowed_keys(&port.extra, PORT_DISALLOWED);
    let number = port.container_port.unwrap_or(0);
    if RESERVED_PORTS.contains(&number) {
        errs.push(FieldError::invalid_value_details(
            format!("{number} is a reserved port"),
            "containerPort",
            format!("{number} is a reserved port, please use a different value"),
        ));
    }
    if !(0..=65535).contains(&number) {
        errs.push(FieldError::out_of_bounds(number, 0, 65535, "containerPort"));
    }
    if let Some(protocol) = port.protocol.as_deref().filter(|p| !p.is_empty() && *p != "TCP") {
        errs.push(FieldError::invalid_value(protocol, "protocol"));
    }
    let name = port.name.as_deref().unwrap_or("");
    if !PORT_NAMES.contains(&name) {
        errs.push(FieldError::with_details(
            format!("Port name {name} is not allowed"),
            &[""],
            "Name must be empty, or one of: 'h2c', 'http1'",
        ));
    }
    errs
}

/// A JSON value as Go's `%v` would print a string: strings unquoted, anything else as JSON.
fn display(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
