//! Core Secrets: stringData merged into data, type defaulted, base64 and keys checked, values
//! never quoted, immutable honoured.

use serde_json::{Value, json};

use super::{accepted, rejected, rejected_update, with};
use crate::admission::{Operation, admit};
use crate::kinds::Kind;

fn secret() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default"},
        "data": {"user": "YWRtaW4="},
        "stringData": {"password": "s3cr3t-value"},
    })
}

#[test]
fn string_data_is_merged_into_data_and_type_defaults_to_opaque() {
    let stored = accepted(Kind::Secret, secret());
    assert_eq!(stored["data"], json!({"user": "YWRtaW4=", "password": "czNjcjN0LXZhbHVl"}));
    assert_eq!(stored["type"], "Opaque");
    assert!(stored.get("stringData").is_none(), "stringData is not stored: {stored}");
    // stringData wins over data for the same key, as in Kubernetes.
    let stored = accepted(Kind::Secret, with(secret(), "/stringData/user", json!("root")));
    assert_eq!(stored["data"]["user"], "cm9vdA==");
    let typed = accepted(Kind::Secret, with(secret(), "/type", json!("example.com/custom")));
    assert_eq!(typed["type"], "example.com/custom");
}

#[test]
fn invalid_base64_is_refused_naming_the_key_but_not_the_value() {
    let msg = rejected(Kind::Secret, with(secret(), "/data/token", json!("not base64 s3cr3t!")));
    assert!(msg.contains("data[token]") && msg.contains("not base64-encoded"), "{msg}");
    assert!(!msg.contains("s3cr3t"), "the value is quoted: {msg}");
    let msg = rejected(Kind::Secret, with(secret(), "/stringData/n", json!(5)));
    assert!(msg.contains("stringData[n]"), "{msg}");
}

#[test]
fn keys_size_and_required_keys_follow_kubernetes() {
    let msg = rejected(Kind::Secret, with(secret(), "/stringData/bad key", json!("x")));
    assert!(msg.starts_with("invalid value: \"bad key\": data[bad key]\na valid config key must consist of"), "{msg}");
    let big = "a".repeat(1024 * 1024 + 1);
    let msg = rejected(Kind::Secret, with(secret(), "/stringData/big", json!(big)));
    assert!(msg.contains("Too long: must have at most 1048576 bytes: data"), "{msg}");
    let msg = rejected(Kind::Secret, with(secret(), "/type", json!("kubernetes.io/tls")));
    assert!(msg.contains("data[tls.crt]") && msg.contains("data[tls.key]"), "{msg}");
    let msg = rejected(Kind::Secret, with(secret(), "/metadata/name", json!("DB")));
    assert!(msg.contains("metadata.name"), "{msg}");
}

#[test]
fn immutable_secrets_keep_their_data_and_type() {
    let old = accepted(Kind::Secret, with(secret(), "/immutable", json!(true)));
    let msg = rejected_update(Kind::Secret, &old, with(old.clone(), "/stringData/password", json!("other")));
    assert!(msg.contains("field is immutable when `immutable` is set: data"), "{msg}");
    let msg = rejected_update(Kind::Secret, &old, with(old.clone(), "/immutable", json!(false)));
    assert!(msg.contains("immutable"), "{msg}");
    let msg = rejected_update(Kind::Secret, &old, with(old.clone(), "/type", json!("example.com/x")));
    assert!(msg.contains("field is immutable"), "{msg}");
    // Metadata may still change.
    let relabelled = with(old.clone(), "/metadata/labels", json!({"a": "b"}));
    admit(Kind::Secret, Operation::Update, Some(&old), relabelled).expect("labels change");
    // A mutable one changes freely.
    let mutable = accepted(Kind::Secret, secret());
    admit(Kind::Secret, Operation::Update, Some(&mutable), with(mutable.clone(), "/stringData/password", json!("n")))
        .expect("data change");
}

#[test]
fn immutable_config_maps_keep_their_data() {
    let old = accepted(Kind::ConfigMap, json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true}));
    let msg = rejected_update(Kind::ConfigMap, &old, with(old.clone(), "/data/a", json!("2")));
    assert!(msg.contains("field is immutable when `immutable` is set: data"), "{msg}");
}
