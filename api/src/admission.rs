//! The API server's door into the model: decode a JSON object into its kind's type, apply
//! Knative's defaults, validate, and hand back the JSON to store. No I/O.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::field_error::FieldError;
use crate::kinds::Kind;
pub use crate::operation::Operation;
use crate::validation::ClusterLimits;
use crate::{Configuration, Revision, Route, Service, defaults, validation};

/// Why an object was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The object does not have the kind's shape.
    #[error("{path}: {message}")]
    Decode {
        /// Where in the object, e.g. `spec.template.spec.containers[0].ports`.
        path: String,
        /// What the decoder expected.
        message: String,
    },
    /// The object has the right shape but breaks Knative's rules.
    #[error("validation failed: {0}")]
    Invalid(FieldError),
}

/// Defaults and validates `obj` for `op` under Knative's stock `config-autoscaler`; `old` is the
/// stored object on update. Returns the object to store.
pub fn admit(kind: Kind, op: Operation, old: Option<&Value>, obj: Value) -> Result<Value, AdmissionError> {
    admit_with(kind, op, old, obj, &ClusterLimits::default())
}

/// [`admit`] under the cluster's autoscaling `limits` (from its `config-autoscaler`).
pub fn admit_with(
    kind: Kind,
    op: Operation,
    old: Option<&Value>,
    obj: Value,
    limits: &ClusterLimits,
) -> Result<Value, AdmissionError> {
    match kind {
        Kind::Service => {
            admit_typed::<Service>(op, old, obj, defaults::service, |n, o| validation::service(n, o, limits))
        }
        Kind::Configuration => admit_typed::<Configuration>(op, old, obj, defaults::configuration, |n, o| {
            validation::configuration(n, o, limits)
        }),
        Kind::Route => admit_typed::<Route>(op, old, obj, defaults::route, validation::route),
        Kind::Revision => {
            admit_typed::<Revision>(op, old, obj, defaults::revision, |n, o| validation::revision(n, o, limits))
        }
        Kind::ConfigMap => {
            let mut errs = validation::config_map(&obj);
            if let Some(old) = old.filter(|_| op != Operation::UpdateStatus) {
                errs.push(validation::config_map_update(old, &obj));
            }
            errs.into_result().map_err(AdmissionError::Invalid)?;
            Ok(obj)
        }
        Kind::Event | Kind::EventsV1 => admit_event(kind, op, old, obj),
        Kind::Secret => validation::secret(obj, old).map_err(AdmissionError::Invalid),
        Kind::Namespace => {
            let mut obj = obj;
            validation::namespace(&obj).into_result().map_err(AdmissionError::Invalid)?;
            validation::default_namespace(&mut obj);
            Ok(obj)
        }
    }
}

/// An Event, checked against Kubernetes' own type for its shape (so `count: "x"` is refused
/// with its path) and validated; stored as given.
fn admit_event(kind: Kind, op: Operation, old: Option<&Value>, obj: Value) -> Result<Value, AdmissionError> {
    if kind == Kind::EventsV1 {
        decode_plain::<k8s_openapi::api::events::v1::Event>(&obj)?;
        let old = old.filter(|_| op != Operation::Create);
        validation::event::events_v1(&obj, old).into_result().map_err(AdmissionError::Invalid)?;
    } else {
        decode_plain::<k8s_openapi::api::core::v1::Event>(&obj)?;
        validation::event::core(&obj).into_result().map_err(AdmissionError::Invalid)?;
    }
    Ok(obj)
}

/// Decodes `obj` as `T` only to report where it does not fit.
fn decode_plain<T: DeserializeOwned>(obj: &Value) -> Result<T, AdmissionError> {
    serde_path_to_error::deserialize(obj.clone()).map_err(|e| {
        let path = e.path().to_string();
        AdmissionError::Decode {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Decodes a stored or submitted object of type `T`, reporting the failing field's path.
pub fn decode<T: DeserializeOwned>(mut obj: Value) -> Result<T, AdmissionError> {
    // Knative's Go types hold `spec` by value, so an object without one has an empty spec.
    if let Some(map) = obj.as_object_mut() {
        map.entry("spec").or_insert_with(|| Value::Object(Default::default()));
    }
    serde_path_to_error::deserialize(obj).map_err(|e| {
        let path = e.path().to_string();
        AdmissionError::Decode {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

fn admit_typed<T: DeserializeOwned + Serialize>(
    op: Operation,
    old: Option<&Value>,
    obj: Value,
    default: fn(&mut T, Operation),
    validate: impl Fn(&T, Option<&T>) -> FieldError,
) -> Result<Value, AdmissionError> {
    let mut typed: T = decode(obj)?;
    if op == Operation::UpdateStatus {
        return encode(&typed);
    }
    let old: Option<T> = old.map(|o| decode(o.clone())).transpose()?;
    default(&mut typed, op);
    validate(&typed, old.as_ref()).into_result().map_err(AdmissionError::Invalid)?;
    encode(&typed)
}

fn encode<T: Serialize>(typed: &T) -> Result<Value, AdmissionError> {
    serde_json::to_value(typed).map_err(|e| AdmissionError::Decode { path: String::new(), message: e.to_string() })
}
