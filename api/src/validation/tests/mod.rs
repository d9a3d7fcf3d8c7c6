//! Validation and defaulting through `admission::admit`, asserting Knative's exact messages.

use serde_json::{Value, json};

use crate::admission::{AdmissionError, Operation, admit};
use crate::kinds::Kind;

mod autoscaling;
mod config_map;
mod event;
mod labels;
mod metadata;
mod namespace;
mod podspec;
mod probes;
mod rules;
mod samples;
mod secret;
mod traffic;
mod updates;
mod volumes;

/// A valid Service named `svc` with one container.
fn service() -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": "img"}]}}},
    })
}

/// A valid Configuration named `cfg` with one container.
fn configuration() -> Value {
    json!({
        "metadata": {"name": "cfg"},
        "spec": {"template": {"spec": {"containers": [{"image": "img"}]}}},
    })
}

/// A valid Route named `rt` sending everything to revision `rev`.
fn route() -> Value {
    json!({"metadata": {"name": "rt"}, "spec": {"traffic": [{"revisionName": "rev", "percent": 100}]}})
}

/// A valid Revision named `cfg-00001` with one container.
fn revision() -> Value {
    json!({"metadata": {"name": "cfg-00001"}, "spec": {"containers": [{"image": "img"}]}})
}

/// `obj` with the value at JSON pointer `at` replaced, creating objects on the way.
fn with(mut obj: Value, at: &str, value: Value) -> Value {
    let mut cur = &mut obj;
    for raw in at.trim_start_matches('/').split('/') {
        let part = raw.replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Array(items) => &mut items[part.parse::<usize>().expect("array index")],
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other.as_object_mut().expect("object").entry(part).or_insert(Value::Null)
            }
        };
    }
    *cur = value;
    obj
}

/// The stored object after a successful create.
fn accepted(kind: Kind, obj: Value) -> Value {
    admit(kind, Operation::Create, None, obj).unwrap_or_else(|e| panic!("expected {kind} to be accepted: {e}"))
}

/// The rendered validation error of a create.
fn rejected(kind: Kind, obj: Value) -> String {
    invalid(admit(kind, Operation::Create, None, obj))
}

/// The rendered validation error of an update from `old` (as stored) to `new`.
fn rejected_update(kind: Kind, old: &Value, new: Value) -> String {
    invalid(admit(kind, Operation::Update, Some(old), new))
}

fn invalid(result: Result<Value, AdmissionError>) -> String {
    match result {
        Err(AdmissionError::Invalid(e)) => e.to_string(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Kubernetes' DNS-1035 label message, in Go's `[...]` list form.
const DNS1035: &str = "[a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]";
