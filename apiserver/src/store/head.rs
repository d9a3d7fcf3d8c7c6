//! Parts of a stored object read from its JSON without building the rest of it: its labels,
//! so a list with a label selector skips the objects that do not match before paying for a
//! whole `serde_json::Value` each (most of a list's cost); its resource version, so the oldest
//! Events of a full namespace are found without reading each whole.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The part of an object read here.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// The part of an object [`stored_version`] reads.
#[derive(Deserialize)]
struct VersionHead {
    metadata: VersionMetadata,
}

#[derive(Deserialize)]
struct VersionMetadata {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

/// `metadata.labels` of the stored JSON `bytes`, as [`super::meta::labels`] reads them from
/// the whole object; None when they are not all strings (or `metadata` is not an object),
/// which only the whole object can say.
pub(super) fn stored_labels(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    serde_json::from_slice::<Head>(bytes).ok().map(|h| h.metadata.labels.unwrap_or_default())
}

/// `metadata.resourceVersion` of the stored JSON `bytes` as a number, or 0 when it is not one
/// (as `meta::resource_version(obj).parse().unwrap_or(0)` reads it from the whole object).
pub(super) fn stored_version(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<VersionHead>(bytes)
        .ok()
        .and_then(|h| h.metadata.resource_version.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::meta;

    #[test]
    fn labels_read_from_bytes_are_those_of_the_whole_object() {
        let objects = [
            json!({"metadata": {"name": "a", "labels": {"app": "a", "tier": "web"}}, "spec": {"x": [1, {"labels": {"no": "no"}}]}}),
            json!({"spec": {"big": "y"}, "metadata": {"name": "b", "labels": {"escaped\"key": "caf\u{e9}"}}}),
            json!({"metadata": {"name": "c"}}),
            json!({"metadata": {"name": "d", "labels": null}}),
            json!({"kind": "Route"}),
        ];
        for obj in objects {
            let bytes = serde_json::to_vec(&obj).expect("json");
            assert_eq!(stored_labels(&bytes), Some(meta::labels(&obj)), "{obj}");
        }
    }

    #[test]
    fn labels_that_are_not_all_strings_are_left_to_the_whole_object() {
        for obj in [json!({"metadata": {"labels": {"n": 1, "s": "x"}}}), json!({"metadata": "odd"})] {
            let bytes = serde_json::to_vec::<Value>(&obj).expect("json");
            assert_eq!(stored_labels(&bytes), None, "{obj}");
        }
    }

    #[test]
    fn the_version_read_from_bytes_is_that_of_the_whole_object() {
        let objects = [
            json!({"metadata": {"name": "a", "resourceVersion": "42"}, "spec": {"resourceVersion": "7"}}),
            json!({"spec": {}, "metadata": {"resourceVersion": "9"}}),
            json!({"metadata": {"resourceVersion": 9}}),
            json!({"metadata": {"resourceVersion": "x"}}),
            json!({"metadata": {}}),
            json!({}),
        ];
        for obj in objects {
            let bytes = serde_json::to_vec(&obj).expect("json");
            let whole = meta::resource_version(&obj).parse::<u64>().unwrap_or(0);
            assert_eq!(stored_version(&bytes), whole, "{obj}");
        }
    }
}
