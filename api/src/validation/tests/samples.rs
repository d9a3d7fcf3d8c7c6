//! Knative's own sample objects pass defaulting and validation, and admission keeps fields it
//! does not model.

use serde_json::{Value, json};

use super::{accepted, service};
use crate::kinds::Kind;

use sluice_test_support::samples::{self, COMPLETE};

/// Placeholders the blue-green docs leave for the reader.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("<route-name>", "blue-green-demo"),
    ("<first-revision-name>", "blue-green-demo-00001"),
    ("<second-revision-name>", "blue-green-demo-00002"),
];

fn documents(text: &str) -> Vec<Value> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.iter()
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("sample parses: {e}\n{d}")))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn knative_samples_pass_defaults_and_validation() {
    let mut admitted = 0;
    for file in COMPLETE {
        let mut text = samples::read(file);
        for (from, to) in PLACEHOLDERS {
            text = text.replace(from, to);
        }
        for doc in documents(&text) {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default();
            let kind = Kind::from_type(api_version, doc["kind"].as_str().unwrap_or_default())
                .unwrap_or_else(|| panic!("{file}: unknown kind"));
            accepted(kind, doc);
            admitted += 1;
        }
    }
    assert_eq!(admitted, COMPLETE.len() + 1, "tag-header-based-routing holds two documents");
}

#[test]
fn knative_samples_have_no_unknown_fields() {
    for file in COMPLETE {
        let mut text = samples::read(file);
        for (from, to) in PLACEHOLDERS {
            text = text.replace(from, to);
        }
        for doc in documents(&text) {
            let kind = Kind::from_type(
                doc["apiVersion"].as_str().unwrap_or_default(),
                doc["kind"].as_str().unwrap_or_default(),
            )
            .unwrap_or_else(|| panic!("{file}: unknown kind"));
            assert_eq!(crate::strict::unknown_fields(kind, &doc), Vec::<String>::new(), "{file}");
        }
    }
}

#[test]
fn unknown_fields_survive_admission_at_every_depth() {
    let mut svc = service();
    svc["spec"]["foo"] = json!({"bar": 1});
    svc["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 100, "extra": "kept"}]);
    let tmpl = &mut svc["spec"]["template"]["spec"];
    tmpl["volumes"] = json!([{"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}]);
    let c = &mut tmpl["containers"][0];
    c["resources"] = json!({"limits": {"cpu": "1"}});
    c["bogus"] = json!(["x"]);
    c["volumeMounts"] = json!([{"name": "cache", "mountPath": "/cache"}]);

    let stored = accepted(Kind::Service, svc);
    let spec = &stored["spec"];
    assert_eq!(spec["foo"], json!({"bar": 1}));
    assert_eq!(spec["traffic"][0]["extra"], "kept");
    assert_eq!(spec["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1Gi");
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"], json!({"limits": {"cpu": "1"}}));
    assert_eq!(c["bogus"], json!(["x"]));
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/cache");
}
