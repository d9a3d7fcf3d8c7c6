//! Label and field selectors as Kubernetes parses them: `a=b,c!=d,e in (x,y),f notin (z),g,!h`
//! and `metadata.name=x,metadata.namespace!=y` (for Events also the fields Kubernetes selects
//! them by: `involvedObject.name=x,involvedObject.kind=Revision`, `regarding.*`, `reason`, ...).

use std::collections::BTreeMap;

use serde_json::Value;

use sluice_api::Kind;

use super::status::ApiError;
use crate::store::meta;

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed field selector over `metadata.name` and `metadata.namespace`, and a kind's own
/// selectable fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(FieldPath, bool, String)>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldPath {
    Name,
    Namespace,
    /// A string field of the stored object, by JSON pointer.
    Pointer(&'static str),
    /// An Event's `source`: `source.component`, else `reportingComponent`.
    EventSource,
}

/// An Event's selectable fields as Kubernetes names them (`events.k8s.io/v1` names as
/// Kubernetes converts them), and where they are in the stored core object.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "/involvedObject/kind"),
    ("involvedObject.namespace", "/involvedObject/namespace"),
    ("involvedObject.name", "/involvedObject/name"),
    ("involvedObject.uid", "/involvedObject/uid"),
    ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
    ("involvedObject.resourceVersion", "/involvedObject/resourceVersion"),
    ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
    ("regarding.kind", "/involvedObject/kind"),
    ("regarding.namespace", "/involvedObject/namespace"),
    ("regarding.name", "/involvedObject/name"),
    ("regarding.uid", "/involvedObject/uid"),
    ("regarding.apiVersion", "/involvedObject/apiVersion"),
    ("regarding.resourceVersion", "/involvedObject/resourceVersion"),
    ("regarding.fieldPath", "/involvedObject/fieldPath"),
    ("reason", "/reason"),
    ("type", "/type"),
    ("reportingComponent", "/reportingComponent"),
    ("reportingController", "/reportingComponent"),
];

// === impl LabelSelector ===

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(term).ok_or_else(|| {
                ApiError::bad_request(format!("unable to parse requirement: found '{term}', expected: key, '=', '==', '!=', 'in', 'notin' or '!key'"))
            })?);
        }
        Ok(Self(reqs))
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// True when the selector places no requirement.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

fn parse_requirement(term: &str) -> Option<Requirement> {
    if let Some(key) = term.strip_prefix('!') {
        return valid_key(key.trim()).then(|| Requirement::NotExists(key.trim().to_string()));
    }
    for (op, make) in [
        ("!=", Requirement::NotEquals as fn(String, String) -> Requirement),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            return (valid_key(k) && valid_value(v)).then(|| make(k.to_string(), v.to_string()));
        }
    }
    for (op, negate) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = term.split_once(op) {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            if !valid_key(k.trim()) || !values.iter().all(|v| valid_value(v)) {
                return None;
            }
            let k = k.trim().to_string();
            return Some(if negate { Requirement::NotIn(k, values) } else { Requirement::In(k, values) });
        }
    }
    valid_key(term).then(|| Requirement::Exists(term.to_string()))
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && sluice_api::naming::qualified_name(k).is_empty()
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

// === impl FieldSelector ===

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter of a request for `kind`.
    pub fn parse_for(kind: Kind, s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = split_term(s, term)?;
            let path = match field {
                "metadata.name" => FieldPath::Name,
                "metadata.namespace" => FieldPath::Namespace,
                "source" | "deprecatedSource" if kind.stored_as() == Kind::Event => FieldPath::EventSource,
                other => match EVENT_FIELDS.iter().find(|(f, _)| *f == other) {
                    Some((_, pointer)) if kind.stored_as() == Kind::Event => FieldPath::Pointer(pointer),
                    _ => return Err(ApiError::bad_request(format!("field label not supported: {other}"))),
                },
            };
            reqs.push((path, equal, value.to_string()));
        }
        Ok(Self(reqs))
    }

    /// Parses the `fieldSelector` query parameter over `metadata.name` and `metadata.namespace`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = split_term(s, term)?;
            let path = match field {
                "metadata.name" => FieldPath::Name,
                "metadata.namespace" => FieldPath::Namespace,
                other => return Err(ApiError::bad_request(format!("field label not supported: {other}"))),
            };
            reqs.push((path, equal, value.to_string()));
        }
        Ok(Self(reqs))
    }

    /// True when `obj` satisfies every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
            let actual = match path {
                FieldPath::Name => meta::name(obj),
                FieldPath::Namespace => meta::namespace(obj),
                FieldPath::Pointer(p) => text(p),
                FieldPath::EventSource => match text("/source/component") {
                    "" => text("/reportingComponent"),
                    component => component,
                },
            };
            (actual == value) == *equal
        })
    }
}

/// One `field=value`, `field==value` or `field!=value` term, trimmed: (field, equal, value).
fn split_term<'a>(s: &str, term: &'a str) -> Result<(&'a str, bool, &'a str), ApiError> {
    let (f, equal, v) = if let Some((f, v)) = term.split_once("!=") {
        (f, false, v)
    } else if let Some((f, v)) = term.split_once("==") {
        (f, true, v)
    } else if let Some((f, v)) = term.split_once('=') {
        (f, true, v)
    } else {
        return Err(ApiError::bad_request(format!("invalid selector: '{s}'; can't understand '{term}'")));
    };
    Ok((f.trim(), equal, v.trim()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors_follow_kubernetes_grammar() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("serving.knative.dev/service", "hello")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("tier,app=web", true),
            ("!tier", false),
            ("!missing", true),
            ("serving.knative.dev/service=hello", true),
            ("app in (api),tier=front", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).expect(sel).matches(&l), want, "{sel}");
        }
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("bad key=x").is_err());
    }

    #[test]
    fn events_are_selected_by_the_object_they_are_about() {
        let event = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Revision", "name": "hello-00001", "namespace": "ns", "uid": "u1"},
            "reason": "Scaled", "type": "Normal", "source": {"component": "autoscaler"},
        });
        // What `kubectl describe` asks for.
        let describe = "involvedObject.name=hello-00001,involvedObject.namespace=ns,involvedObject.kind=Revision,involvedObject.uid=u1";
        assert!(FieldSelector::parse_for(Kind::Event, describe).expect("parse").matches(&event));
        assert!(!FieldSelector::parse_for(Kind::Event, "involvedObject.uid=u2").expect("parse").matches(&event));
        assert!(
            FieldSelector::parse_for(Kind::EventsV1, "regarding.name=hello-00001,type!=Warning")
                .expect("parse")
                .matches(&event)
        );
        assert!(
            FieldSelector::parse_for(Kind::Event, "source=autoscaler,reason=Scaled").expect("parse").matches(&event)
        );
        let err = FieldSelector::parse_for(Kind::Service, "involvedObject.name=x").expect_err("not an event");
        assert!(err.message.contains("field label not supported: involvedObject.name"), "{}", err.message);
    }

    #[test]
    fn field_selectors_cover_name_and_namespace_only() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(FieldSelector::parse("metadata.name=a").expect("parse").matches(&obj));
        assert!(!FieldSelector::parse("metadata.name!=a").expect("parse").matches(&obj));
        assert!(FieldSelector::parse("metadata.namespace==ns,metadata.name=a").expect("parse").matches(&obj));
        assert!(FieldSelector::parse("spec.x=1").is_err());
    }

    proptest::proptest! {
        /// Any text is parsed or refused, never a panic.
        #[test]
        fn any_text_is_parsed_or_refused(text in "\\PC{0,64}") {
            let _ = LabelSelector::parse(&text);
            let _ = FieldSelector::parse(&text);
        }

        /// A selector printed from requirements matches exactly the label sets that meet every
        /// one of them: equality, inequality, set membership and existence, in any mix.
        #[test]
        fn printed_requirements_match_what_they_say(
            labels in proptest::collection::btree_map("[a-c]", "[x-z]", 0..4),
            reqs in proptest::collection::vec(("[a-c]", 0u8..6, proptest::collection::vec("[x-z]", 1..3)), 1..4),
        ) {
            let mut printed = Vec::new();
            let mut expected = true;
            for (key, op, values) in &reqs {
                let have = labels.get(key);
                let (text, holds) = match op {
                    0 => (format!("{key}={}", values[0]), have == Some(&values[0])),
                    1 => (format!("{key}=={}", values[0]), have == Some(&values[0])),
                    2 => (format!("{key}!={}", values[0]), have != Some(&values[0])),
                    3 => (format!("{key} in ({})", values.join(",")), have.is_some_and(|v| values.contains(v))),
                    4 => (format!("{key} notin ({})", values.join(",")), !have.is_some_and(|v| values.contains(v))),
                    _ => (key.clone(), have.is_some()),
                };
                printed.push(text);
                expected &= holds;
            }
            let selector = LabelSelector::parse(&printed.join(",")).expect("a printed selector parses");
            proptest::prop_assert_eq!(selector.matches(&labels), expected, "{} on {:?}", printed.join(","), labels);
        }
    }
}
