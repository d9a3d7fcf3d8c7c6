//! Knative's own sample manifests, kept verbatim in `manifests/samples/knative`: the one list
//! of which are complete objects, shared by the model's admission tests and the kubectl tests.

use std::path::{Path, PathBuf};

/// The samples that are whole objects. The `traffic-*` files and
/// `rollout-duration-annotation.yaml` are excerpts (`...` stands for elided fields), so they are
/// not objects to apply.
pub const COMPLETE: &[&str] = &[
    "helloworld-go.service.yaml",
    "autoscale-go.service.yaml",
    "first-traffic-split-hello.yaml",
    "tag-header-based-routing.sample.yaml",
    "blue-green-1-route-100-first.yaml",
    "blue-green-2-route-stage-v2-0pct.yaml",
    "blue-green-3-route-50-50.yaml",
    "blue-green-4-route-0-100.yaml",
    "config-network-rollout-duration.yaml",
    "serving-config-autoscaler.yaml",
    "serving-config-defaults.yaml",
    "serving-config-features.yaml",
    "serving-config-network.yaml",
];

/// The samples that are excerpts of objects: `...` stands for elided fields, or (the rollout
/// annotation) only the part of a Service that the Knative docs discuss is shown.
pub const EXCERPTS: &[&str] = &[
    "rollout-duration-annotation.yaml",
    "traffic-current-candidate-latest-50-50.yaml",
    "traffic-current-latest.yaml",
    "traffic-latest-100.yaml",
    "traffic-tags-staging.yaml",
];

/// The directory holding the samples.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/samples/knative")
}

/// The text of sample `file`.
pub fn read(file: &str) -> String {
    let path = dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("sample {} unreadable: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_on_disk_is_listed_once() {
        let mut on_disk: Vec<String> = std::fs::read_dir(dir())
            .expect("samples directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = COMPLETE.iter().chain(EXCERPTS).map(|f| f.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "a new sample goes in COMPLETE or EXCERPTS");
        for file in COMPLETE {
            assert!(!read(file).contains("..."), "{file} is an excerpt");
        }
    }
}
