//! The CustomResourceDefinitions of the four Knative kinds, generated from the types. The
//! checked-in copy in `manifests/crds.yaml` is compared with this output by a test.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{Configuration, Revision, Route, Service};

/// The CRDs, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Service::crd(), Configuration::crd(), Route::crd(), Revision::crd()]
}

/// The CRDs as one multi-document YAML file.
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::from("# Generated from sluice-api's types by `sluice crds`; do not edit.\n");
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_crds_match_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/crds.yaml");
        let current = crds_yaml().expect("CRDs serialize");
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            stored == current,
            "manifests/crds.yaml is out of date with the types in api/; regenerate it with `cargo run -- crds > manifests/crds.yaml`"
        );
    }

    #[test]
    fn unknown_fields_are_preserved_in_the_schema() {
        let crd = serde_json::to_value(Service::crd()).expect("serializes");
        let containers = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["template"]
            ["properties"]["spec"]["properties"]["containers"]["items"];
        assert_eq!(containers["x-kubernetes-preserve-unknown-fields"], true, "{containers}");
    }
}
