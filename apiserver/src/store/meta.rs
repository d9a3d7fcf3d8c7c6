//! Kubernetes object-metadata semantics on JSON objects, as pure functions: what a create sets,
//! what an update may change, when `generation` moves, and when a write changes nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Which part of an object an update addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// The main resource: spec and metadata; status is kept as stored.
    Main,
    /// The `/status` subresource: status only.
    Status,
}

/// Metadata fields the server owns: a client can neither set nor change them.
const SERVER_OWNED: [&str; 5] =
    ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"];

/// The object's `metadata`, or an empty map.
pub fn metadata(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata").and_then(Value::as_object).unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The object's `metadata`, created if missing.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("made an object above");
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("made an object above")
}

/// A string field of `metadata`, or "".
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj).get(field).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

/// `metadata.uid`.
pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid")
}

/// `metadata.resourceVersion`.
pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion")
}

/// `metadata.generation`, or 0.
pub fn generation(obj: &Value) -> i64 {
    metadata(obj).get("generation").and_then(Value::as_i64).unwrap_or(0)
}

/// `metadata.labels` as a map of strings.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(metadata(obj).get("labels"))
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// True once a delete has been requested and finalizers are pending.
pub fn is_deleting(obj: &Value) -> bool {
    metadata(obj).get("deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// The uids named by `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    metadata(obj)
        .get("ownerReferences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Removes the owner reference with `owner_uid`, as the orphan propagation policy does.
pub fn remove_owner(obj: &mut Value, owner_uid: &str) {
    let meta = metadata_mut(obj);
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// Fills what a create sets: uid, creation time, generation 1 (for kinds with a spec), and
/// clears what a client may not set.
pub fn prepare_create(obj: &mut Value, uid: &str, now: &str, has_generation: bool) {
    let meta = metadata_mut(obj);
    for f in SERVER_OWNED {
        meta.remove(f);
    }
    meta.remove("resourceVersion");
    meta.remove("selfLink");
    meta.remove("managedFields");
    meta.insert("uid".into(), uid.into());
    meta.insert("creationTimestamp".into(), now.into());
    if has_generation {
        meta.insert("generation".into(), 1.into());
    }
}

/// The object an update would store, before admission: `body` with the server-owned metadata
/// of `old`, and with status (main) or everything but status (status subresource) kept as stored.
pub fn merge_update(old: &Value, body: Value, mode: UpdateMode) -> Value {
    match mode {
        UpdateMode::Status => {
            let mut next = old.clone();
            let map = next.as_object_mut().expect("stored objects are JSON objects");
            match body.get("status") {
                Some(status) => map.insert("status".into(), status.clone()),
                None => map.remove("status"),
            };
            next
        }
        UpdateMode::Main => {
            let mut next = body;
            let old_meta = metadata(old).clone();
            let meta = metadata_mut(&mut next);
            for f in SERVER_OWNED {
                match old_meta.get(f) {
                    Some(v) => meta.insert(f.into(), v.clone()),
                    None => meta.remove(f),
                };
            }
            meta.remove("managedFields");
            let map = next.as_object_mut().expect("metadata_mut made it an object");
            match old.get("status") {
                Some(status) => map.insert("status".into(), status.clone()),
                None => map.remove("status"),
            };
            next
        }
    }
}

/// Stamps an admitted update: `generation` moves when anything outside metadata and status
/// changed, and the resource version is replaced.
pub fn finish_update(old: &Value, next: &mut Value, has_generation: bool) {
    if has_generation {
        let generation = generation(old) + i64::from(!same_outside_meta_and_status(old, next));
        metadata_mut(next).insert("generation".into(), generation.into());
    }
}

/// True when `a` and `b` are the same apart from `metadata.resourceVersion`: such a write is a
/// no-op and is not stored, as in Kubernetes.
pub fn same_except_resource_version(a: &Value, b: &Value) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    metadata_mut(&mut a).remove("resourceVersion");
    metadata_mut(&mut b).remove("resourceVersion");
    a == b
}

fn same_outside_meta_and_status(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
        m
    };
    strip(a) == strip(b)
}

/// Finalizers in `next` that `old` did not have.
pub fn added_finalizers(old: &Value, next: &Value) -> Vec<String> {
    let before = finalizers(old);
    finalizers(next).into_iter().filter(|f| !before.contains(f)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored() -> Value {
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "r", "namespace": "default", "uid": "u1", "generation": 3,
                         "creationTimestamp": "t0", "resourceVersion": "7", "labels": {"a": "b"}},
            "spec": {"traffic": [{"percent": 100, "revisionName": "r-00001"}]},
            "status": {"observedGeneration": 3}
        })
    }

    #[test]
    fn create_sets_uid_time_generation_and_drops_client_values() {
        let mut o = json!({"metadata": {"name": "x", "uid": "forged", "generation": 9, "resourceVersion": "5"}});
        prepare_create(&mut o, "u", "now", true);
        assert_eq!(uid(&o), "u");
        assert_eq!(generation(&o), 1);
        assert_eq!(resource_version(&o), "");
        assert_eq!(meta_str(&o, "creationTimestamp"), "now");
    }

    #[test]
    fn main_update_keeps_server_fields_and_status() {
        let body = json!({"metadata": {"name": "r", "uid": "forged", "generation": 1, "labels": {"c": "d"}},
                          "spec": {"traffic": []}, "status": {"observedGeneration": 99}});
        let next = merge_update(&stored(), body, UpdateMode::Main);
        assert_eq!(uid(&next), "u1");
        assert_eq!(generation(&next), 3);
        assert_eq!(next["status"]["observedGeneration"], 3);
        assert_eq!(labels(&next).get("c").map(String::as_str), Some("d"));
    }

    #[test]
    fn status_update_changes_status_only() {
        let body = json!({"metadata": {"labels": {}}, "spec": {}, "status": {"observedGeneration": 4}});
        let next = merge_update(&stored(), body, UpdateMode::Status);
        assert_eq!(next["status"]["observedGeneration"], 4);
        assert_eq!(next["spec"], stored()["spec"]);
        assert_eq!(labels(&next).len(), 1);
    }

    #[test]
    fn generation_moves_only_for_spec_changes() {
        let old = stored();
        let mut same_spec = old.clone();
        metadata_mut(&mut same_spec).insert("labels".into(), json!({"x": "y"}));
        finish_update(&old, &mut same_spec, true);
        assert_eq!(generation(&same_spec), 3);

        let mut new_spec = old.clone();
        new_spec["spec"]["traffic"][0]["percent"] = json!(50);
        finish_update(&old, &mut new_spec, true);
        assert_eq!(generation(&new_spec), 4);
    }

    #[test]
    fn identical_objects_are_a_no_op() {
        let mut b = stored();
        metadata_mut(&mut b).insert("resourceVersion".into(), "8".into());
        assert!(same_except_resource_version(&stored(), &b));
        b["spec"] = json!({});
        assert!(!same_except_resource_version(&stored(), &b));
    }

    #[test]
    fn orphaning_removes_only_that_owner() {
        let mut o = json!({"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b"}]}});
        remove_owner(&mut o, "a");
        assert_eq!(owner_uids(&o), vec!["b"]);
        remove_owner(&mut o, "b");
        assert!(metadata(&o).get("ownerReferences").is_none());
    }
}
