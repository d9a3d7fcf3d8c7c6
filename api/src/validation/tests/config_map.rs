//! Core ConfigMaps.

use serde_json::{Value, json};

use super::{accepted, rejected, with};
use crate::kinds::Kind;

pub(super) fn config_map() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-features", "namespace": "knative-serving"},
        "data": {"kubernetes.podspec-fieldref": "enabled", "_example": "text"},
    })
}

#[test]
fn valid_config_map_with_dotted_keys_is_accepted() {
    let stored = accepted(Kind::ConfigMap, config_map());
    assert_eq!(stored, config_map(), "ConfigMaps are stored as given");
}

#[test]
fn config_map_name_must_be_a_dns_subdomain() {
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/metadata/name", json!("Config_Features")));
    assert!(
        msg.starts_with("invalid value: \"Config_Features\": metadata.name\na lowercase RFC 1123 subdomain"),
        "{msg}"
    );
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/metadata", json!({})));
    assert_eq!(msg, "name or generateName is required: metadata.name");
}

#[test]
fn config_map_data_must_be_strings_under_valid_keys() {
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/data/replicas", json!(3)));
    assert_eq!(msg, "invalid value: 3: data[replicas]\nConfigMap values must be strings");
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/data/bad key", json!("x")));
    assert!(msg.starts_with("invalid value: \"bad key\": data[bad key]\na valid config key must consist of"), "{msg}");
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/data/..x", json!("x")));
    assert_eq!(msg, "invalid value: \"..x\": data[..x]\nmust not start with '..'");
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/data", json!(["a"])));
    assert_eq!(msg, "invalid value: array: data\nmust be a map of strings");
}

#[test]
fn errors_name_a_non_string_value_by_its_type_never_quote_it() {
    // A patch can grow a value to any size; an error that quotes it grows with it.
    let big = json!({"copy": {"of": "v".repeat(10_000)}});
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/data/big", big.clone()));
    assert_eq!(msg, "invalid value: object: data[big]\nConfigMap values must be strings");
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/binaryData", json!({"b": [big]})));
    assert_eq!(msg, "invalid value: array: binaryData[b]\nbinaryData values must be base64 strings");
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/data", json!("v".repeat(10_000))));
    assert_eq!(msg, "invalid value: string: data\nmust be a map of strings");
}

#[test]
fn binary_data_must_be_base64_and_not_repeat_data_keys() {
    accepted(Kind::ConfigMap, with(config_map(), "/binaryData", json!({"blob": "aGVsbG8="})));
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/binaryData", json!({"blob": "not base64!"})));
    assert_eq!(msg, "invalid value: not base64-encoded: binaryData[blob]");
    let msg = rejected(Kind::ConfigMap, with(config_map(), "/binaryData", json!({"_example": "aGk="})));
    assert_eq!(msg, "invalid value: \"_example\": data[_example]\nduplicate of key present in binaryData");
}
