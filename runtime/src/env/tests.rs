//! Resolution as a pure function: references and the objects found → variables or a precise
//! error.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

/// Objects by kind and name, in namespace `default`.
#[derive(Debug, Default)]
struct Objects(BTreeMap<(&'static str, String), SourceData>);

impl Objects {
    fn with(mut self, kind: &'static str, name: &str, data: &[(&str, &str)]) -> Self {
        let data = data.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        self.0.insert((kind, name.to_string()), data);
        self
    }
}

impl EnvSources for Objects {
    fn lookup(&self, kind: SourceKind, namespace: &str, name: &str) -> Result<Option<SourceData>, String> {
        assert_eq!(namespace, "default");
        let kind = match kind {
            SourceKind::ConfigMap => "cm",
            SourceKind::Secret => "secret",
        };
        Ok(self.0.get(&(kind, name.to_string())).cloned())
    }
}

fn container(spec: serde_json::Value) -> Container {
    serde_json::from_value(spec).expect("container")
}

fn vars(r: &Resolved) -> Vec<(String, String)> {
    r.vars
        .iter()
        .map(|(k, v)| {
            let v = match v {
                EnvValue::Literal(s) => format!("literal:{s}"),
                EnvValue::Exact(s) => s.to_string_lossy().into_owned(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn env_from_comes_first_in_order_then_env_overrides() {
    let objects = Objects::default().with("cm", "app", &[("MODE", "fast"), ("LEVEL", "1")]).with(
        "secret",
        "db",
        &[("password", "hunter2"), ("LEVEL", "2")],
    );
    let c = container(json!({
        "envFrom": [{"configMapRef": {"name": "app"}}, {"secretRef": {"name": "db"}, "prefix": "DB_"}],
        "env": [
            {"name": "MODE", "value": "slow-$(LEVEL)"},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "LEVEL"}}},
        ],
    }));
    let r = resolve(&c, "default", &objects).expect("resolves");
    assert_eq!(
        vars(&r),
        pairs(&[
            ("LEVEL", "1"),
            ("MODE", "fast"),
            ("DB_LEVEL", "2"),
            ("DB_password", "hunter2"),
            ("MODE", "literal:slow-$(LEVEL)"),
            ("PASS", "hunter2"),
            ("LVL", "1"),
        ])
    );
    assert!(r.notes.is_empty());
}

#[test]
fn missing_objects_and_keys_are_precise_errors_unless_optional() {
    let objects = Objects::default().with("cm", "app", &[("A", "1")]);
    let var = |from: serde_json::Value| container(json!({"env": [{"name": "X", "valueFrom": from}]}));
    let err = |c: &Container| resolve(c, "default", &objects).expect_err("cannot start").to_string();
    assert_eq!(err(&var(json!({"configMapKeyRef": {"name": "x", "key": "k"}}))), "configmap \"x\" not found");
    assert_eq!(err(&var(json!({"secretKeyRef": {"name": "s", "key": "k"}}))), "secret \"s\" not found");
    assert_eq!(
        err(&var(json!({"configMapKeyRef": {"name": "app", "key": "k"}}))),
        "couldn't find key k in ConfigMap default/app"
    );
    let from = container(json!({"envFrom": [{"secretRef": {"name": "gone"}}]}));
    assert_eq!(err(&from), "secret \"gone\" not found");
    // Optional references that find nothing leave the variable unset.
    let optional = container(json!({
        "envFrom": [{"secretRef": {"name": "gone", "optional": true}}],
        "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "k", "optional": true}}},
            {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k", "optional": true}}},
        ],
    }));
    assert!(resolve(&optional, "default", &objects).expect("optional").vars.is_empty());
}

#[test]
fn field_refs_are_refused_never_left_unset() {
    let c = container(json!({"env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}));
    let err = resolve(&c, "default", &Objects::default()).expect_err("unsupported");
    assert_eq!(err.to_string(), "env[0] (NODE): valueFrom.fieldRef is not supported on Sluice's local runtime");
}

#[test]
fn invalid_names_from_env_from_are_skipped_and_reported() {
    let objects = Objects::default().with("cm", "app", &[("1BAD", "x"), ("GOOD", "y"), ("has space", "z")]);
    let c = container(json!({"envFrom": [{"configMapRef": {"name": "app"}}]}));
    let r = resolve(&c, "default", &objects).expect("resolves");
    assert_eq!(vars(&r), pairs(&[("GOOD", "y")]));
    assert_eq!(
        r.notes,
        [
            "Keys [1BAD, has space] from the EnvFrom configmap default/app were skipped since they are considered invalid environment variable names."
        ]
    );
    // With a prefix, a key that starts with a digit is a valid name.
    let c = container(json!({"envFrom": [{"configMapRef": {"name": "app"}, "prefix": "P_"}]}));
    assert_eq!(vars(&resolve(&c, "default", &objects).expect("resolves")).len(), 2);
}

#[test]
fn values_never_show_in_debug_output() {
    let objects = Objects::default().with("secret", "db", &[("password", "hunter2")]);
    let c = container(json!({"envFrom": [{"secretRef": {"name": "db"}}]}));
    let r = resolve(&c, "default", &objects).expect("resolves");
    let shown = format!("{r:?}");
    assert!(!shown.contains("hunter2") && shown.contains("7 bytes"), "{shown}");
}

#[test]
fn env_var_names_follow_kubernetes() {
    for ok in ["A", "_x", "a.b-c", "-x", "A1"] {
        assert!(is_env_var_name(ok), "{ok}");
    }
    for bad in ["", "1A", "a b", "a=b", "ä"] {
        assert!(!is_env_var_name(bad), "{bad}");
    }
}

#[test]
fn masked_variables_show_references_not_values() {
    let objects = Objects::default().with("secret", "db", &[("password", "hunter2")]);
    let c = container(json!({"envFrom": [{"secretRef": {"name": "db"}}], "env": [{"name": "A", "value": "x"}]}));
    let masked = resolve(&c, "default", &objects).expect("resolves").masked();
    let shown = Resolved { vars: masked, notes: Vec::new() };
    assert_eq!(vars(&shown), pairs(&[("password", "$(password)"), ("A", "literal:x")]));
}
