//! `volumes` and each container's `volumeMounts`: the volume kinds Knative allows by default
//! (secret, configMap, projected, emptyDir), every volume mounted, every mount backed by a volume.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::is_set;
use crate::field_error::FieldError;
use crate::naming::dns1123_label;

/// Volumes by name, as JSON.
pub type Volumes = BTreeMap<String, Value>;

/// Volume sources Knative knows, in its order, and whether stock settings allow each.
const SOURCES: &[(&str, bool)] = &[
    ("secret", true),
    ("configMap", true),
    ("projected", true),
    ("emptyDir", true),
    ("persistentVolumeClaim", false),
    ("hostPath", false),
    ("csi", false),
    ("ephemeral", false),
    ("image", false),
];
/// Other Kubernetes volume sources, none of which Knative allows.
const OTHER_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "downwardAPI",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "iscsi",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];
const RESERVED_MOUNT_PATHS: &[&str] = &["/", "/dev", "/dev/log"];

/// Validates `volumes` (paths relative to it) and returns them by name.
pub fn volumes(list: Option<&Value>, mounted: &BTreeSet<String>) -> (Volumes, FieldError) {
    let mut by_name = Volumes::new();
    let mut errs = FieldError::default();
    for (i, v) in array(list).iter().enumerate() {
        let name = str_field(v, "name");
        if by_name.contains_key(name) {
            errs.push(FieldError::new(format!("duplicate volume name {name:?}"), &["name"]).via_index(i));
        }
        if !mounted.contains(name) {
            errs.push(FieldError::new(format!("volume with name {name:?} not mounted"), &["name"]).via_index(i));
        }
        errs.push(volume(v, name).via_index(i));
        by_name.insert(name.to_string(), v.clone());
    }
    (by_name, errs)
}

fn volume(v: &Value, name: &str) -> FieldError {
    let mut errs = disabled_sources(v, name);
    // Knative replaces what it found so far when the name itself is wrong.
    if name.is_empty() {
        errs = FieldError::missing(&["name"]);
    } else if !dns1123_label(name).is_empty() {
        errs = FieldError::invalid_value(name, "name");
    }
    let set = |k: &str| v.get(k).is_some_and(|s| !s.is_null());
    let disallowed: Vec<&str> = SOURCES
        .iter()
        .filter(|(k, allowed)| !allowed && set(k))
        .map(|(k, _)| *k)
        .chain(OTHER_SOURCES.iter().copied().filter(|k| set(k)))
        .collect();
    if !disallowed.is_empty() {
        errs.push(FieldError::disallowed(&disallowed));
    }
    let specified: Vec<&str> = SOURCES.iter().map(|(k, _)| *k).filter(|k| set(k)).collect();
    // Knative reports a secret's or configMap's items at `items[i]`, without the source's name.
    for kind in ["secret", "configMap"] {
        errs.push(items(v.get(kind).and_then(|s| s.get("items"))));
    }
    errs.push(projected(v.get("projected")));
    if let Some(medium) = v.get("emptyDir").and_then(|d| d.get("medium")).filter(|m| is_set(m))
        && medium.as_str() != Some("Memory")
    {
        errs.push(FieldError::invalid_value(medium.as_str().unwrap_or_default(), "emptyDir.medium"));
    }
    match specified.len() {
        0 => errs.push(FieldError::missing_one_of(&["secret", "configMap", "projected", "emptyDir"])),
        1 => {}
        _ => errs.push(FieldError::multiple_one_of(&specified)),
    }
    errs
}

/// The feature-gated sources, each reported without a path as Knative does.
fn disabled_sources(v: &Value, name: &str) -> FieldError {
    let mut errs = FieldError::default();
    if let Some(pvc) = v.get("persistentVolumeClaim").filter(|p| !p.is_null()) {
        let claim = str_field(pvc, "claimName");
        errs.push(FieldError::new(
            format!("Persistent volume claim support is disabled, but found persistent volume claim {claim}"),
            &[],
        ));
        if pvc.get("readOnly").and_then(Value::as_bool) != Some(true) {
            errs.push(FieldError::new(
                format!("Persistent volume write support is disabled, but found persistent volume claim {claim} that is not read-only"),
                &[],
            ));
        }
    }
    for (key, label) in [("image", "Image"), ("hostPath", "HostPath"), ("csi", "CSI"), ("ephemeral", "Ephemeral")] {
        if v.get(key).is_some_and(|s| !s.is_null()) {
            errs.push(FieldError::new(
                format!("{label} volume support is disabled, but found {label} volume {name}"),
                &[],
            ));
        }
    }
    errs
}

/// `items` of a secret or configMap source: each needs a key and a path.
fn items(list: Option<&Value>) -> FieldError {
    let mut errs = FieldError::default();
    for (i, item) in array(list).iter().enumerate() {
        for field in ["key", "path"] {
            if str_field(item, field).is_empty() {
                errs.push(FieldError::missing(&[field]).via_field_index("items", i));
            }
        }
    }
    errs
}

/// A projected volume's sources; Knative indexes them as `projected[i]`.
fn projected(p: Option<&Value>) -> FieldError {
    let mut errs = FieldError::default();
    let kinds = ["secret", "configMap", "serviceAccountToken", "downwardAPI"];
    for (i, source) in array(p.and_then(|p| p.get("sources"))).iter().enumerate() {
        let specified: Vec<&str> = kinds.into_iter().filter(|k| source.get(k).is_some_and(|s| !s.is_null())).collect();
        let mut e = match specified.len() {
            0 => FieldError::missing_one_of(&kinds),
            1 => FieldError::default(),
            _ => FieldError::multiple_one_of(&specified),
        };
        for kind in ["secret", "configMap"] {
            if let Some(s) = source.get(kind).filter(|s| !s.is_null()) {
                if str_field(s, "name").is_empty() {
                    e.push(FieldError::missing(&["name"]).via_field(kind));
                }
                e.push(items(s.get("items")).via_field(kind));
            }
        }
        if let Some(t) = source.get("serviceAccountToken").filter(|t| !t.is_null())
            && str_field(t, "path").is_empty()
        {
            e.push(FieldError::missing(&["serviceAccountToken.path"]));
        }
        errs.push(e.via_field_index("projected", i));
    }
    errs
}

/// Validates one container's `volumeMounts`; paths relative to it.
pub fn mounts(list: Option<&Value>, volumes: &Volumes) -> FieldError {
    let mut errs = FieldError::default();
    let mut seen_paths: BTreeSet<String> = BTreeSet::new();
    for (i, vm) in array(list).iter().enumerate() {
        let mut e = FieldError::default();
        let name = str_field(vm, "name");
        let volume = volumes.get(name);
        if volume.is_none() {
            e.push(FieldError::new("volumeMount has no matching volume", &["name"]));
        }
        let mount_path = str_field(vm, "mountPath");
        let clean = clean_path(mount_path);
        if mount_path.is_empty() {
            e.push(FieldError::missing(&["mountPath"]));
        } else if RESERVED_MOUNT_PATHS.contains(&clean.as_str()) {
            e.push(FieldError::new(format!("mountPath {clean:?} is a reserved path"), &["mountPath"]));
        } else if !mount_path.starts_with('/') {
            e.push(FieldError::invalid_value(mount_path, "mountPath"));
        } else if seen_paths.contains(&clean) {
            e.push(FieldError::invalid_value(format!("{mount_path:?} must be unique"), "mountPath"));
        }
        seen_paths.insert(clean);
        let read_only = vm.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
        let source = |k: &str| volume.and_then(|v| v.get(k)).filter(|s| !s.is_null());
        let writable = ["emptyDir", "persistentVolumeClaim", "ephemeral"].into_iter().any(|k| source(k).is_some());
        if !writable && !read_only {
            e.push(FieldError::new("volume mount should be readOnly for this type of volume", &["readOnly"]));
        }
        if let Some(propagation) = vm.get("mountPropagation").filter(|p| !p.is_null()) {
            e.push(FieldError::new(
                format!(
                    "Volume Mount Propagation support is disabled, but found volume mount {name} with mount propagation"
                ),
                &[],
            ));
            if !matches!(propagation.as_str(), Some("None" | "HostToContainer")) {
                e.push(FieldError::new(
                    "mount propagation should be set to None or HostToContainer",
                    &["mountPropagation"],
                ));
            }
        }
        let pvc_read_only = source("persistentVolumeClaim").and_then(|p| p.get("readOnly")).and_then(Value::as_bool);
        if pvc_read_only == Some(true) && !read_only {
            e.push(FieldError::new("volume is readOnly but volume mount is not", &["readOnly"]));
        }
        errs.push(e.via_index(i));
    }
    errs
}

/// The names of volumes any of `containers` mounts.
pub fn mounted<'a>(containers: impl Iterator<Item = Option<&'a Value>>) -> BTreeSet<String> {
    containers.flat_map(|m| array(m).iter().map(|vm| str_field(vm, "name").to_string())).collect()
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Go's `path.Clean`, lexically: collapse `//`, drop `.`, resolve `..`.
fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}
