//! Kubernetes' rules on label and annotation keys and values, on every kind, core or Knative.

use serde_json::{Value, json};

use super::config_map::config_map;
use super::{accepted, configuration, rejected, revision, route, service, with};
use crate::kinds::Kind;

const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
}

fn every_kind() -> Vec<(Kind, Value)> {
    vec![
        (Kind::ConfigMap, config_map()),
        (Kind::Namespace, namespace()),
        (Kind::Service, service()),
        (Kind::Configuration, configuration()),
        (Kind::Route, route()),
        (Kind::Revision, revision()),
    ]
}

#[test]
fn label_keys_must_be_qualified_names_on_every_kind() {
    for (kind, obj) in every_kind() {
        let msg = rejected(kind, with(obj, "/metadata/labels", json!({"bad key!": "v"})));
        assert_eq!(msg, format!("invalid value: \"bad key!\": metadata.labels\n{NAME_PART}"), "{kind}");
    }
}

#[test]
fn label_values_must_be_63_characters_of_the_label_alphabet_on_every_kind() {
    let long = "v".repeat(100);
    for (kind, obj) in every_kind() {
        let msg = rejected(kind, with(obj.clone(), "/metadata/labels", json!({"app": long})));
        assert_eq!(msg, format!("invalid value: \"{long}\": metadata.labels\nmust be no more than 63 characters"));
        let msg = rejected(kind, with(obj.clone(), "/metadata/labels", json!({"app": "-web"})));
        assert_eq!(msg, format!("invalid value: \"-web\": metadata.labels\n{LABEL_VALUE}"), "{kind}");
        let ok = json!({"app": "", "example.com/tier": "Web_1.x", "x": "v".repeat(63)});
        accepted(kind, with(obj, "/metadata/labels", ok));
    }
}

#[test]
fn annotation_keys_are_qualified_names_in_any_case_and_values_are_free() {
    for (kind, obj) in every_kind() {
        let ok = json!({"Example.COM/Note": "anything at all: ! {} \n", "x": "v".repeat(10_000)});
        accepted(kind, with(obj.clone(), "/metadata/annotations", ok));
        let msg = rejected(kind, with(obj.clone(), "/metadata/annotations", json!({"/x": "v"})));
        assert_eq!(msg, "invalid value: \"/x\": metadata.annotations\nprefix part must be non-empty", "{kind}");
        let too_much = json!({"a": "v".repeat(128 * 1024), "b": "v".repeat(128 * 1024)});
        let msg = rejected(kind, with(obj, "/metadata/annotations", too_much));
        assert_eq!(msg, "Too long: must have at most 262144 bytes: metadata.annotations", "{kind}");
    }
}

#[test]
fn core_kinds_need_labels_and_annotations_to_be_maps_of_strings() {
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/metadata/labels", json!({"app": 1})));
    assert_eq!(msg, "invalid value: 1: metadata.labels[app]\nmust be a string");
    let msg = rejected(Kind::Namespace, with(namespace(), "/metadata/annotations", json!(["a"])));
    assert_eq!(msg, "invalid value: array: metadata.annotations\nmust be a map of strings");
}

#[test]
fn long_bad_values_are_quoted_cut() {
    let huge = format!("-{}", "v".repeat(100_000));
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/metadata/labels", json!({"app": huge})));
    assert!(msg.len() < 2048, "{} bytes", msg.len());
    assert!(msg.contains("... (100001 bytes): metadata.labels"), "{msg}");
}
