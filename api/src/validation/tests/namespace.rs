//! Core Namespaces.

use serde_json::json;

use super::{accepted, rejected};
use crate::kinds::Kind;

#[test]
fn a_namespace_is_stored_active() {
    let stored =
        accepted(Kind::Namespace, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}));
    assert_eq!(stored["status"]["phase"], "Active");
}

#[test]
fn a_namespace_name_is_a_dns_1123_label() {
    let msg =
        rejected(Kind::Namespace, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Team.A"}}));
    assert!(msg.contains("metadata.name") && msg.contains("RFC 1123"), "{msg}");
    let msg = rejected(Kind::Namespace, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}));
    assert!(msg.contains("name or generateName is required: metadata.name"), "{msg}");
    let msg = rejected(
        Kind::Namespace,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}, "spec": {"finalizers": "x"}}),
    );
    assert!(msg.contains("spec.finalizers"), "{msg}");
}
