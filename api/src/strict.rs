//! Unknown and duplicate fields, for Kubernetes' `fieldValidation` (`Strict` refuses an object
//! that has any, `Warn` answers with a warning per field, `Ignore` says nothing).
//!
//! A field is known when Knative's `serving.knative.dev/v1` schema has it: the Knative levels
//! (`spec`, `spec.traffic[*]`, `spec.template`) by their fields here, metadata by Kubernetes'
//! `ObjectMeta`, and a revision's pod spec by Kubernetes' own `PodSpec` (every field of it,
//! whether Sluice honours it or not: honouring is another question, answered by warnings at
//! admission). Status is not checked: clients do not write it on create or update.
//!
//! Paths are written as Kubernetes writes them: `spec.template.spec.containers[0].enviroment`.

use std::collections::HashSet;
use std::fmt::Write;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::kinds::Kind;
use crate::{Configuration, Revision, Route, Service};

/// Knative's `RevisionSpec` fields beside the pod spec it embeds.
const REVISION_SPEC: &[&str] =
    &["containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds"];
/// Knative's `TrafficTarget` fields.
const TRAFFIC_TARGET: &[&str] = &["tag", "revisionName", "configurationName", "latestRevision", "percent", "url"];
/// Sluice's `spec.rules[*]` fields, and those of its match, header and path conditions.
const RULE: &[&str] = &["name", "match", "traffic"];
const RULE_MATCH: &[&str] = &["headers", "path"];
const HEADER_MATCH: &[&str] = &["name", "exact", "prefix", "regex", "present"];
const PATH_MATCH: &[&str] = &["exact", "prefix"];
/// An object's top-level fields.
const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// The paths of the fields of `obj` (a `kind` object as JSON) that its schema does not have.
pub fn unknown_fields(kind: Kind, obj: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let Some(map) = obj.as_object() else { return unknown };
    let mut checked = obj.clone();
    if let Some(m) = checked.as_object_mut() {
        m.remove("status");
        // kube's derived Knative types take these from the kind, not the data (the API server
        // checks them against the URL).
        if kind.info().group == "serving.knative.dev" {
            m.remove("apiVersion");
            m.remove("kind");
        }
    }
    match kind {
        Kind::Service => {
            ignored::<Service>(&checked, "", &mut unknown);
            extra_keys(map.get("spec"), "spec", &["template", "traffic", "rules"], &mut unknown);
            template(map.get("spec").and_then(|s| s.get("template")), "spec.template", &mut unknown);
            traffic(map.get("spec").and_then(|s| s.get("traffic")), "spec.traffic", &mut unknown);
            rules(map.get("spec").and_then(|s| s.get("rules")), "spec.rules", &mut unknown);
        }
        Kind::Configuration => {
            ignored::<Configuration>(&checked, "", &mut unknown);
            extra_keys(map.get("spec"), "spec", &["template"], &mut unknown);
            template(map.get("spec").and_then(|s| s.get("template")), "spec.template", &mut unknown);
        }
        Kind::Route => {
            ignored::<Route>(&checked, "", &mut unknown);
            extra_keys(map.get("spec"), "spec", &["traffic", "rules"], &mut unknown);
            traffic(map.get("spec").and_then(|s| s.get("traffic")), "spec.traffic", &mut unknown);
            rules(map.get("spec").and_then(|s| s.get("rules")), "spec.rules", &mut unknown);
        }
        Kind::Revision => {
            ignored::<Revision>(&checked, "", &mut unknown);
            pod_spec(map.get("spec"), "spec", &mut unknown);
        }
        Kind::ConfigMap => ignored::<k8s_openapi::api::core::v1::ConfigMap>(&checked, "", &mut unknown),
        Kind::Secret => ignored::<k8s_openapi::api::core::v1::Secret>(&checked, "", &mut unknown),
        Kind::Namespace => ignored::<k8s_openapi::api::core::v1::Namespace>(&checked, "", &mut unknown),
        Kind::Event => ignored::<k8s_openapi::api::core::v1::Event>(&checked, "", &mut unknown),
        Kind::EventsV1 => ignored::<k8s_openapi::api::events::v1::Event>(&checked, "", &mut unknown),
    }
    if matches!(kind, Kind::Service | Kind::Configuration | Kind::Route | Kind::Revision) {
        extra_keys(Some(obj), "", TOP, &mut unknown);
    }
    unknown.sort();
    unknown.dedup();
    unknown
}

/// The paths of object keys that appear more than once in the JSON text `json` (the last one
/// wins when it is decoded, so the first is silently lost). Empty for text that is not JSON.
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    // Nested deeper than serde_json's own limit is refused by the decoder before this matters.
    let _ = Duplicates { path: String::new(), found: &mut found }.deserialize(&mut de);
    found.sort();
    found.dedup();
    found
}

/// Deserializes `obj` as `T`, noting every field `T` ignores.
fn ignored<T: serde::de::DeserializeOwned>(obj: &Value, prefix: &str, unknown: &mut Vec<String>) {
    let _ = serde_ignored::deserialize(obj.clone(), |path| unknown.push(join(prefix, &render(&path)))).map(|_: T| ());
}

/// The keys of the object `v` outside `known`, as `prefix.key`.
fn extra_keys(v: Option<&Value>, prefix: &str, known: &[&str], unknown: &mut Vec<String>) {
    for key in v.and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
        if !known.contains(&key.as_str()) {
            unknown.push(join(prefix, key));
        }
    }
}

/// A revision template: `metadata` and `spec` (whose metadata `ObjectMeta` has checked).
fn template(v: Option<&Value>, prefix: &str, unknown: &mut Vec<String>) {
    extra_keys(v, prefix, &["metadata", "spec"], unknown);
    if let Some(meta) = v.and_then(|t| t.get("metadata")) {
        ignored::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(
            meta,
            &format!("{prefix}.metadata"),
            unknown,
        );
    }
    pod_spec(v.and_then(|t| t.get("spec")), &format!("{prefix}.spec"), unknown);
}

/// Each traffic target's keys.
fn traffic(v: Option<&Value>, prefix: &str, unknown: &mut Vec<String>) {
    for (i, target) in v.and_then(Value::as_array).into_iter().flatten().enumerate() {
        extra_keys(Some(target), &format!("{prefix}[{i}]"), TRAFFIC_TARGET, unknown);
    }
}

/// Each rule's keys, and those of its match and traffic.
fn rules(v: Option<&Value>, prefix: &str, unknown: &mut Vec<String>) {
    for (i, rule) in v.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = format!("{prefix}[{i}]");
        extra_keys(Some(rule), &at, RULE, unknown);
        let matches = rule.get("match");
        extra_keys(matches, &format!("{at}.match"), RULE_MATCH, unknown);
        let headers = matches.and_then(|m| m.get("headers")).and_then(Value::as_array);
        for (j, header) in headers.into_iter().flatten().enumerate() {
            extra_keys(Some(header), &format!("{at}.match.headers[{j}]"), HEADER_MATCH, unknown);
        }
        extra_keys(matches.and_then(|m| m.get("path")), &format!("{at}.match.path"), PATH_MATCH, unknown);
        traffic(rule.get("traffic"), &format!("{at}.traffic"), unknown);
    }
}

/// A Knative revision spec: its own fields, and the rest as Kubernetes' `PodSpec`.
fn pod_spec(v: Option<&Value>, prefix: &str, unknown: &mut Vec<String>) {
    let Some(spec) = v.and_then(Value::as_object) else { return };
    let mut pod = spec.clone();
    pod.retain(|k, _| !REVISION_SPEC.contains(&k.as_str()));
    // `containers` is required by the Kubernetes type; its absence is validation's to report.
    pod.entry("containers").or_insert_with(|| Value::Array(Vec::new()));
    ignored::<k8s_openapi::api::core::v1::PodSpec>(&Value::Object(pod), prefix, unknown);
}

/// `serde_ignored`'s path as Kubernetes writes one.
fn render(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render(parent)),
        Path::Map { parent, key } => join(&render(parent), key),
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => render(parent),
    }
}

fn join(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}.{key}"),
    }
}

/// Walks any JSON value, noting keys repeated within one object.
struct Duplicates<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if !seen.insert(key) {
                self.found.push(path.clone());
            }
            map.next_value_seed(Duplicates { path, found: &mut *self.found })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let mut path = self.path.clone();
            let _ = write!(path, "[{i}]");
            if seq.next_element_seed(Duplicates { path, found: &mut *self.found })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn misspelled_fields_are_found_at_every_level_and_known_ones_are_not() {
        let svc = json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "a", "lables": {"x": "y"}},
            "spec": {
                "trafic": [],
                "traffic": [{"percent": 100, "latestRevision": true, "precent": 1}],
                "template": {
                    "metadata": {"annotations": {"k": "v"}},
                    "spec": {
                        "containerConcurrency": 1,
                        "timeoutSeconds": 30,
                        "nodeSelector": {"disk": "ssd"},
                        "containers": [{
                            "image": "x", "enviroment": [],
                            "env": [{"name": "A", "value": "1", "valu": "2"}],
                            "readinessProbe": {"periodSeconds": 1, "httpGet": {"port": 8080, "pth": "/"}}
                        }]
                    }
                }
            },
            "status": {"whatever": 1}
        });
        assert_eq!(
            unknown_fields(Kind::Service, &svc),
            [
                "metadata.lables",
                "spec.template.spec.containers[0].env[0].valu",
                "spec.template.spec.containers[0].enviroment",
                "spec.template.spec.containers[0].readinessProbe.httpGet.pth",
                "spec.traffic[0].precent",
                "spec.trafic",
            ]
        );
    }

    #[test]
    fn config_maps_and_revisions_are_checked_too() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}, "dta": {}});
        assert_eq!(unknown_fields(Kind::ConfigMap, &cm), ["dta"]);
        let rev = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": {"name": "r"},
                         "spec": {"containers": [{"image": "x", "imagePullPolicy": "Always"}], "timeoutSecond": 3}});
        assert_eq!(unknown_fields(Kind::Revision, &rev), ["spec.timeoutSecond"]);
        let odd = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route", "spc": {}});
        assert_eq!(unknown_fields(Kind::Route, &odd), ["spc"]);
    }

    #[test]
    fn rules_are_known_and_misspellings_inside_them_are_found() {
        let route = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": {"name": "r"},
            "spec": {"traffic": [{"revisionName": "a", "percent": 100, "tag": "alpha"}],
                "rules": [{"name": "n", "match": {"headers": [{"name": "x", "exact": "1", "regx": "y"}],
                    "path": {"prefix": "/", "prefx": "/a"}, "methods": ["GET"]},
                    "traffic": [{"tag": "alpha", "percent": 100, "weight": 1}], "order": 1}]}});
        assert_eq!(
            unknown_fields(Kind::Route, &route),
            [
                "spec.rules[0].match.headers[0].regx",
                "spec.rules[0].match.methods",
                "spec.rules[0].match.path.prefx",
                "spec.rules[0].order",
                "spec.rules[0].traffic[0].weight",
            ]
        );
        let svc = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"template": {"spec": {"containers": [{"image": "x"}]}},
                "rules": [{"match": {"path": {"exact": "/a"}}, "traffic": [{"percent": 100}]}]}});
        assert!(unknown_fields(Kind::Service, &svc).is_empty(), "{:?}", unknown_fields(Kind::Service, &svc));
    }

    #[test]
    fn repeated_keys_are_found_with_their_paths() {
        let text = br#"{"a": 1, "a": 2, "b": {"c": [ {"d": 1, "d": 1}, {"d": 1} ]}, "e": {"f": 1}, "e": {}}"#;
        assert_eq!(duplicate_fields(text), ["a", "b.c[0].d", "e"]);
        assert!(duplicate_fields(br#"{"a": {"a": 1}}"#).is_empty(), "the same key in another object is fine");
        assert!(duplicate_fields(b"not json").is_empty());
    }
}
