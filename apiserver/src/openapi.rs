//! OpenAPI v3 documents for the served groups. `kubectl apply` refuses to run without them; with
//! them it learns each kind's schema and that PATCH accepts `fieldValidation` (so validation is
//! left to this server). Schemas come from the same types that generate the CRDs.

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use sluice_api::Kind;

const SERVING_GV: &str = "apis/serving.knative.dev/v1";
const CORE_GV: &str = "api/v1";
const EVENTS_GV: &str = "apis/events.k8s.io/v1";

/// `/openapi/v3`: where each group-version's document lives.
pub fn index() -> Value {
    let entry = |gv: &str| json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", hash(gv))});
    json!({"paths": {SERVING_GV: entry(SERVING_GV), CORE_GV: entry(CORE_GV), EVENTS_GV: entry(EVENTS_GV)}})
}

/// `/openapi/v3/{gv}`: the document for one group-version.
pub fn document(gv: &str) -> Option<&'static Value> {
    static SERVING: OnceLock<Value> = OnceLock::new();
    static CORE: OnceLock<Value> = OnceLock::new();
    static EVENTS: OnceLock<Value> = OnceLock::new();
    match gv.trim_matches('/') {
        SERVING_GV => Some(SERVING.get_or_init(|| build(&Kind::SERVING))),
        CORE_GV => Some(CORE.get_or_init(|| build(&[Kind::ConfigMap, Kind::Secret, Kind::Namespace, Kind::Event]))),
        EVENTS_GV => Some(EVENTS.get_or_init(|| build(&[Kind::EventsV1]))),
        _ => None,
    }
}

/// `/openapi/v2`: a document with no definitions, in protobuf when asked (as kubectl asks) or
/// JSON. Everything served here is described in v3; this one exists so kubectl's client-side
/// validation of a kind no served group has (a `Deployment`, a `DomainMapping`) finds no schema
/// and lets kubectl say what Kubernetes would: `no matches for kind "Deployment" in version
/// "apps/v1"`, instead of failing on a missing document.
pub fn v2(accept: &str) -> (&'static str, bytes::Bytes) {
    if accept.contains("protobuf") {
        // gnostic's `openapi_v2.Document` with `swagger` (field 1) = "2.0".
        return (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            bytes::Bytes::from_static(b"\x0a\x032.0"),
        );
    }
    let doc = json!({"swagger": "2.0", "info": {"title": "Sluice", "version": env!("CARGO_PKG_VERSION")}, "paths": {}, "definitions": {}});
    ("application/json", bytes::Bytes::from(doc.to_string()))
}

fn hash(gv: &str) -> String {
    // Stable for a build: clients cache documents by this value.
    let doc = document(gv).map(Value::to_string).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in doc.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

fn build(kinds: &[Kind]) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let meta_ref = generator.subschema_for::<ObjectMeta>().to_value();
    let configmap_ref = generator.subschema_for::<ConfigMap>().to_value();
    let namespace_ref = generator.subschema_for::<Namespace>().to_value();
    let event_ref = generator.subschema_for::<Event>().to_value();
    let events_v1_ref = generator.subschema_for::<k8s_openapi::api::events::v1::Event>().to_value();
    let secret_ref = generator.subschema_for::<Secret>().to_value();
    let mut schemas: Map<String, Value> = generator.take_definitions(true);
    let mut paths = Map::new();
    for &kind in kinds {
        let gvk = gvk(kind);
        let name = match kind {
            Kind::ConfigMap => ref_name(&configmap_ref),
            Kind::Namespace => ref_name(&namespace_ref),
            Kind::Event => ref_name(&event_ref),
            Kind::EventsV1 => ref_name(&events_v1_ref),
            Kind::Secret => ref_name(&secret_ref),
            _ => {
                let name = format!("dev.knative.serving.v1.{}", kind.info().kind);
                schemas.insert(name.clone(), crd_schema(kind, &meta_ref));
                name
            }
        };
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            schema.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
        }
        let base = if kind.info().group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/v1", kind.info().group)
        };
        let scope = if kind.info().namespaced { format!("{base}/namespaces/{{namespace}}") } else { base };
        let item = format!("{scope}/{}/{{name}}", kind.info().plural);
        paths.insert(item, json!({"patch": operation(kind, "patch"), "put": operation(kind, "replace"), "get": operation(kind, "read")}));
        let collection = format!("{scope}/{}", kind.info().plural);
        paths.insert(collection, json!({"post": operation(kind, "create"), "get": operation(kind, "list")}));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Sluice", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn gvk(kind: Kind) -> Value {
    json!({"group": kind.info().group, "kind": kind.info().kind, "version": kind.info().version})
}

fn operation(kind: Kind, verb: &str) -> Value {
    let mut params = vec![json!({"name": "dryRun", "in": "query", "schema": {"type": "string"}})];
    if matches!(verb, "patch" | "replace" | "create") {
        params.push(json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}));
        params.push(json!({"name": "fieldManager", "in": "query", "schema": {"type": "string"}}));
    }
    json!({
        "operationId": format!("{verb}{}", kind.info().kind),
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": gvk(kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
    })
}

fn ref_name(reference: &Value) -> String {
    reference["$ref"].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or_default().to_string()
}

/// The CRD's structural schema, with `metadata` pointing at ObjectMeta as the real API server
/// publishes it.
fn crd_schema(kind: Kind, meta_ref: &Value) -> Value {
    let crd = sluice_api::crd::crds().into_iter().find(|c| c.spec.names.kind == kind.info().kind);
    let mut schema = crd
        .and_then(|c| c.spec.versions.into_iter().next())
        .and_then(|v| v.schema)
        .and_then(|s| s.open_api_v3_schema)
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.insert("metadata".into(), json!({"allOf": [meta_ref], "default": {}}));
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_schemas_with_group_version_kind() {
        let doc = document(SERVING_GV).expect("serving doc");
        let svc = &doc["components"]["schemas"]["dev.knative.serving.v1.Service"];
        assert_eq!(svc["x-kubernetes-group-version-kind"][0]["kind"], "Service");
        assert!(svc["properties"]["spec"].is_object());
        let core = document(CORE_GV).expect("core doc");
        let has_cm = core["components"]["schemas"]
            .as_object()
            .is_some_and(|m| m.values().any(|s| s["x-kubernetes-group-version-kind"][0]["kind"] == "ConfigMap"));
        assert!(has_cm);
        assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object(), "namespaces are cluster-scoped");
        assert!(
            index()["paths"][SERVING_GV]["serverRelativeURL"].as_str().is_some_and(|u| u.starts_with("/openapi/v3/"))
        );
    }
}
