//! Kubernetes' `fieldValidation` on writes: `Strict` (kubectl's default) refuses an object with
//! unknown or duplicate fields, 422 naming each path; `Warn` (the default when the request says
//! nothing, as in Kubernetes) stores it and answers with a `Warning: 299` header per field,
//! which kubectl prints; `Ignore` stores it and says nothing. Unknown fields are kept as written
//! in every case (nothing is pruned). Duplicate keys are found in JSON bodies; YAML's parser
//! refuses them itself.

use http::HeaderValue;
use serde_json::Value;
use sluice_api::Kind;
use sluice_api::strict;

use crate::status::ApiError;

/// The `fieldValidation` directive of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Say nothing.
    Ignore,
    /// Warn per field.
    Warn,
    /// Refuse.
    Strict,
}

/// Warnings to send with the response, as `Warning` header values.
#[derive(Debug, Default)]
pub struct Warnings(Vec<HeaderValue>);

// === impl FieldValidation ===

impl FieldValidation {
    /// The directive from the query value: absent or empty is `Warn`; anything but `Ignore`,
    /// `Warn` or `Strict` is a 400, as Kubernetes answers it.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Ignore" => Ok(Self::Ignore),
            "Strict" => Ok(Self::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation: Invalid value: {:?}: must be one of Ignore, Warn or Strict",
                sluice_api::field_error::quote_cut(other)
            ))),
        }
    }

    /// Checks `obj` (a `kind` object named `name`), whose JSON text was `json` when the body
    /// was JSON; `known` are unknown paths that do not count (already stored, for a patch).
    pub fn check(
        self,
        kind: Kind,
        name: &str,
        obj: &Value,
        json: Option<&[u8]>,
        known: &[String],
    ) -> Result<Warnings, ApiError> {
        if self == Self::Ignore {
            return Ok(Warnings::default());
        }
        let mut problems: Vec<(String, &str)> = Vec::new();
        for path in json.map(strict::duplicate_fields).unwrap_or_default() {
            problems.push((path, "duplicate field"));
        }
        for path in strict::unknown_fields(kind, obj) {
            if !known.contains(&path) {
                problems.push((path, "unknown field"));
            }
        }
        if problems.is_empty() {
            return Ok(Warnings::default());
        }
        let text: Vec<String> = problems.iter().map(|(path, what)| format!("{what} {path:?}")).collect();
        match self {
            Self::Strict => Err(ApiError::invalid(
                kind,
                name,
                format!("strict decoding error: {}", text.join(", ")),
                problems.into_iter().map(|(path, what)| (path, what.to_string())).collect(),
            )),
            _ => Ok(Warnings(text.iter().filter_map(|t| warning(t)).collect())),
        }
    }
}

/// A `Warning` header value: code 299, agent `-`, the text quoted (RFC 7234), cut and stripped
/// to what a header may carry.
fn warning(text: &str) -> Option<HeaderValue> {
    let clean: String =
        text.chars().take(512).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    let quoted = clean.replace('\\', "\\\\").replace('"', "\\\"");
    HeaderValue::from_str(&format!("299 - \"{quoted}\"")).ok()
}

// === impl Warnings ===

impl Warnings {
    /// One warning per field of `obj` that Sluice accepts but does not act on (see
    /// [`sluice_api::honoured`]), sent whatever the `fieldValidation` directive.
    pub fn not_honoured(mut self, kind: Kind, obj: &Value) -> Self {
        // Unknown fields are fieldValidation's to report (or, under Ignore, not to).
        for n in sluice_api::honoured::not_honoured(kind, obj)
            .into_iter()
            .filter(|n| n.message != sluice_api::honoured::UNKNOWN)
        {
            self.0.extend(warning(&format!("{}: {}", n.path, n.message)));
        }
        self
    }

    /// Adds the warnings to `res`.
    pub fn attach<B>(self, mut res: http::Response<B>) -> http::Response<B> {
        for w in self.0 {
            res.headers_mut().append(http::header::WARNING, w);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn svc() -> Value {
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "a"},
               "spec": {"trafic": [], "template": {"spec": {"containers": [{"image": "x", "enviroment": []}]}}}})
    }

    #[test]
    fn the_directive_is_parsed_as_kubernetes_does() {
        assert_eq!(FieldValidation::parse(None).expect("absent"), FieldValidation::Warn);
        assert_eq!(FieldValidation::parse(Some("Strict")).expect("strict"), FieldValidation::Strict);
        assert_eq!(FieldValidation::parse(Some("Ignore")).expect("ignore"), FieldValidation::Ignore);
        let e = FieldValidation::parse(Some("strict")).expect_err("case matters");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn strict_refuses_naming_each_field_warn_warns_ignore_is_silent() {
        let e = FieldValidation::Strict.check(Kind::Service, "a", &svc(), None, &[]).expect_err("strict");
        assert_eq!(e.code, 422);
        assert!(e.message.contains(r#"unknown field "spec.trafic""#), "{}", e.message);
        assert!(e.message.contains(r#"unknown field "spec.template.spec.containers[0].enviroment""#), "{}", e.message);
        let w = FieldValidation::Warn.check(Kind::Service, "a", &svc(), None, &[]).expect("warn");
        let res = w.attach(http::Response::new(()));
        let got: Vec<&str> =
            res.headers().get_all(http::header::WARNING).iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(
            got,
            [
                r#"299 - "unknown field \"spec.template.spec.containers[0].enviroment\"""#,
                r#"299 - "unknown field \"spec.trafic\"""#
            ]
        );
        let w = FieldValidation::Ignore.check(Kind::Service, "a", &svc(), None, &[]).expect("ignore");
        assert!(w.0.is_empty());
    }

    #[test]
    fn duplicates_in_json_count_and_already_stored_fields_do_not() {
        let text = br#"{"metadata": {"name": "a"}, "metadata": {"name": "a"}}"#;
        let obj = json!({"metadata": {"name": "a"}});
        let e = FieldValidation::Strict.check(Kind::ConfigMap, "a", &obj, Some(text), &[]).expect_err("duplicate");
        assert!(e.message.contains(r#"duplicate field "metadata""#), "{}", e.message);
        let known = ["spec.trafic".to_string(), "spec.template.spec.containers[0].enviroment".to_string()];
        FieldValidation::Strict.check(Kind::Service, "a", &svc(), None, &known).expect("nothing new");
    }
}
