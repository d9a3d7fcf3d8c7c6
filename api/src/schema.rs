//! Hand-written schema pieces where a derived one would be wrong for a CRD.

use schemars::{Schema, SchemaGenerator, json_schema};

/// `spec.template.metadata`: the subset of ObjectMeta a template may set, open for the rest, as
/// Knative's CRDs declare it.
pub fn template_metadata(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "generateName": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
