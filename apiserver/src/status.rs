//! Errors as Kubernetes `Status` objects: one place that maps every failure to a code, a reason
//! and a message a kubectl user recognises.

use serde_json::{Value, json};
use sluice_api::Kind;
use sluice_api::admission::AdmissionError;

use crate::patch::PatchError;
use crate::store::StoreError;

/// A request that failed, ready to render as a `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes reason, e.g. `NotFound`.
    pub reason: &'static str,
    /// One sentence for the user.
    pub message: String,
    /// `details` of the Status (name, group, kind, causes).
    pub details: Option<Value>,
}

// === impl ApiError ===

impl ApiError {
    /// An error without details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for a path that names nothing.
    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// 401 Unauthorized: no bearer token, or a malformed `Authorization` header.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden: a bearer token that is not this server's.
    pub fn forbidden_token() -> Self {
        Self::new(403, "Forbidden", "forbidden: the bearer token is not valid for this server")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &http::Method) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "RequestEntityTooLarge", format!("Request entity too large: limit is {limit}"))
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// 422 Invalid with one cause per field.
    pub fn invalid(kind: Kind, name: &str, message: String, causes: Vec<(String, String)>) -> Self {
        let info = kind.info();
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|(field, message)| json!({"reason": "FieldValueInvalid", "message": message, "field": field}))
            .collect();
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{} {name:?} is invalid: {message}", qualified(kind)),
            details: Some(json!({"name": name, "group": info.group, "kind": info.kind, "causes": causes})),
        }
    }

    /// 422 Invalid for a request option (`dryRun`) outside the values Kubernetes supports, as
    /// its `ValidateCreateOptions` and kin report it: the options kind (`CreateOptions`) in
    /// group `meta.k8s.io`, with Go's rendering of the values given.
    pub fn unsupported_option(options: &str, field: &str, values: &[String], supported: &[&str]) -> Self {
        let given: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        let supported: Vec<String> = supported.iter().map(|v| format!("{v:?}")).collect();
        let cause =
            format!("Unsupported value: []string{{{}}}: supported values: {}", given.join(", "), supported.join(", "));
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{options}.meta.k8s.io \"\" is invalid: {field}: {cause}"),
            details: Some(json!({"group": "meta.k8s.io", "kind": options,
                "causes": [{"reason": "FieldValueNotSupported", "message": cause, "field": field}]})),
        }
    }

    /// Maps an admission failure of `kind`/`name`.
    pub fn from_admission(kind: Kind, name: &str, err: AdmissionError) -> Self {
        match err {
            AdmissionError::Decode { path, message } => {
                let field = if path.is_empty() { "<root>".to_string() } else { path };
                Self::invalid(kind, name, format!("{field}: {message}"), vec![(field, message)])
            }
            AdmissionError::Invalid(errors) => {
                let causes = errors
                    .issues()
                    .into_iter()
                    .flat_map(|issue| {
                        // kubectl shows causes, not the message: carry the details there too.
                        let text = if issue.details.is_empty() {
                            issue.message.clone()
                        } else {
                            format!("{}: {}", issue.message, issue.details)
                        };
                        let paths = if issue.paths.is_empty() { vec![String::new()] } else { issue.paths };
                        paths.into_iter().map(move |p| (p, text.clone()))
                    })
                    .collect();
                Self::invalid(kind, name, format!("validation failed: {errors}"), causes)
            }
        }
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, name } => Self {
                code: 404,
                reason: "NotFound",
                message: format!("{} {name:?} not found", plural_qualified(kind)),
                details: Some(details(kind, &name)),
            },
            StoreError::AlreadyExists { kind, name } => Self {
                code: 409,
                reason: "AlreadyExists",
                message: format!("{} {name:?} already exists", plural_qualified(kind)),
                details: Some(details(kind, &name)),
            },
            StoreError::Conflict { kind, name, reason } => Self {
                code: 409,
                reason: "Conflict",
                message: format!("Operation cannot be fulfilled on {} {name:?}: {reason}", plural_qualified(kind)),
                details: Some(details(kind, &name)),
            },
            StoreError::Invalid { kind, name, field, reason } => {
                Self::invalid(kind, &name, format!("{field}: Forbidden: {reason}"), vec![(field, reason)])
            }
            StoreError::Gone { requested, oldest } => {
                Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
            }
            StoreError::Storage(message) | StoreError::Io(message) => {
                Self::new(500, "InternalError", format!("Internal error occurred: {message}"))
            }
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> Self {
        let reason = if e.code() == 413 { "RequestEntityTooLarge" } else { "Invalid" };
        Self::new(e.code(), reason, e.to_string())
    }
}

/// `services.serving.knative.dev`, or `configmaps` for the core group.
pub fn plural_qualified(kind: Kind) -> String {
    let info = kind.info();
    if info.group.is_empty() { info.plural.to_string() } else { format!("{}.{}", info.plural, info.group) }
}

/// `Service.serving.knative.dev`, or `ConfigMap` for the core group.
fn qualified(kind: Kind) -> String {
    let info = kind.info();
    if info.group.is_empty() { info.kind.to_string() } else { format!("{}.{}", info.kind, info.group) }
}

fn details(kind: Kind, name: &str) -> Value {
    json!({"name": name, "group": kind.info().group, "kind": kind.info().plural})
}
