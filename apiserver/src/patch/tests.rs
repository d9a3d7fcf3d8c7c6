use serde_json::json;

use super::*;

fn message(err: PatchError) -> String {
    match err {
        PatchError::Invalid(m) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn merge_patch_merges_objects_and_null_removes() {
    let t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
    let p = json!({"a": {"b": null, "d": 3}, "l": [9]});
    assert_eq!(apply(PatchKind::Merge, &t, &p).expect("patch"), json!({"a": {"c": 2, "d": 3}, "l": [9]}));
}

#[test]
fn json_patch_supports_all_operations() {
    let t = json!({"spec": {"traffic": [{"percent": 100}]}, "x": 1});
    let p = json!([
        {"op": "replace", "path": "/spec/traffic/0/percent", "value": 50},
        {"op": "add", "path": "/spec/traffic/-", "value": {"percent": 50}},
        {"op": "test", "path": "/x", "value": 1},
        {"op": "copy", "from": "/x", "path": "/y"},
        {"op": "move", "from": "/y", "path": "/z"},
        {"op": "remove", "path": "/x"},
        {"op": "add", "path": "/a~1b", "value": true}
    ]);
    let out = apply(PatchKind::Json, &t, &p).expect("patch");
    assert_eq!(out, json!({"spec": {"traffic": [{"percent": 50}, {"percent": 50}]}, "z": 1, "a/b": true}));
}

#[test]
fn json_patch_failures_name_the_operation() {
    let t = json!({"x": 1});
    let err = apply(PatchKind::Json, &t, &json!([{"op": "test", "path": "/x", "value": 2}])).expect_err("fails");
    assert!(message(err).contains("operation 0"));
    assert!(apply(PatchKind::Json, &t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    assert!(apply(PatchKind::Json, &t, &json!({"op": "add"})).is_err());
}

#[test]
fn strategic_patch_drops_directives() {
    let t = json!({"data": {"a": "1"}});
    let p = json!({"$setElementOrder/x": [], "data": {"b": "2", "$patch": "merge"}});
    assert_eq!(apply(PatchKind::Strategic, &t, &p).expect("patch"), json!({"data": {"a": "1", "b": "2"}}));
}

/// CVE-2019-1002100's pattern: each copy of `/data` into itself doubles the document.
fn doubling_copies(n: usize) -> Value {
    Value::Array((0..n).map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/d{i}")})).collect())
}

#[test]
fn doubling_copies_stop_at_the_copy_budget_without_echoing_values() {
    let secret = "s".repeat(1024);
    let t = json!({"data": {"k": secret}});
    let err = apply(PatchKind::Json, &t, &doubling_copies(17)).expect_err("over the copy budget");
    assert_eq!(err.code(), 422);
    let m = message(err);
    // 1 KiB doubling: the copies add 2^(i+1) KiB in all, over 3 MiB at operation 11.
    assert!(m.contains("operation 11: Unable to complete the copy"), "{m}");
    assert!(m.contains(&MAX_COPY_BYTES.to_string()), "{m}");
    assert!(!m.contains("sss"), "no value in the message: {m}");
    assert!(m.len() < 512, "{m}");
    // Within the budget copies work.
    assert!(apply(PatchKind::Json, &t, &doubling_copies(5)).is_ok());
}

#[test]
fn json_patches_over_the_operation_limit_are_refused_before_any_work() {
    let op = json!({"op": "test", "path": "/x", "value": 1});
    let t = json!({"x": 1});
    let ok = Value::Array(vec![op.clone(); MAX_OPERATIONS]);
    assert!(apply(PatchKind::Json, &t, &ok).is_ok());
    let err = apply(PatchKind::Json, &t, &Value::Array(vec![op; MAX_OPERATIONS + 1])).expect_err("too many");
    assert_eq!(err, PatchError::TooManyOperations(MAX_OPERATIONS + 1));
    assert_eq!(err.code(), 413);
    assert_eq!(err.to_string(), "The allowed maximum operations in a JSON patch is 10000, got 10001");
}

#[test]
fn no_patch_format_may_produce_an_object_over_the_limit() {
    let half = "x".repeat(MAX_OBJECT_BYTES / 2 + 1);
    let t = json!({"data": {"a": half.clone()}});
    for kind in [PatchKind::Merge, PatchKind::Strategic, PatchKind::Apply] {
        let err = apply(kind, &t, &json!({"data": {"b": half.clone()}})).expect_err("too large");
        assert_eq!((err.code(), err.clone()), (413, PatchError::TooLarge), "{kind:?}");
    }
    let err = apply(PatchKind::Json, &t, &json!([{"op": "add", "path": "/data/b", "value": half}]));
    assert_eq!(err, Err(PatchError::TooLarge));
}

#[test]
fn long_paths_are_cut_in_errors() {
    let path = format!("/{}", "p".repeat(100_000));
    let m = message(apply(PatchKind::Json, &json!({}), &json!([{"op": "remove", "path": path}])).expect_err("missing"));
    assert!(m.len() < 512, "{m}");
    assert!(m.contains("(100001 bytes)"), "{m}");
}
