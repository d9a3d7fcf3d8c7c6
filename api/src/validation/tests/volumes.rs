//! Volumes and volume mounts.

use serde_json::{Value, json};

use super::{accepted, rejected, service, with};
use crate::kinds::Kind;

fn pod(volumes: Value, mounts: Value) -> Value {
    let svc = with(service(), "/spec/template/spec/volumes", volumes);
    with(svc, "/spec/template/spec/containers/0/volumeMounts", mounts)
}

#[test]
fn secret_volume_mounted_read_only_is_accepted() {
    let stored = accepted(
        Kind::Service,
        pod(
            json!([{"name": "creds", "secret": {"secretName": "s"}}]),
            json!([{"name": "creds", "mountPath": "/creds"}]),
        ),
    );
    assert_eq!(stored["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"], true);
}

#[test]
fn unmounted_volume_and_unbacked_mount_are_rejected() {
    let msg =
        rejected(Kind::Service, pod(json!([{"name": "v", "emptyDir": {}}]), json!([{"name": "w", "mountPath": "/w"}])));
    assert_eq!(
        msg,
        "volume with name \"v\" not mounted: spec.template.spec.volumes[0].name\n\
         volumeMount has no matching volume: spec.template.spec.containers[0].volumeMounts[0].name"
    );
}

#[test]
fn host_path_volumes_are_disabled() {
    let msg = rejected(
        Kind::Service,
        pod(json!([{"name": "h", "hostPath": {"path": "/"}}]), json!([{"name": "h", "mountPath": "/h"}])),
    );
    assert_eq!(
        msg,
        "HostPath volume support is disabled, but found HostPath volume h: \n\
         must not set the field(s): spec.template.spec.volumes[0].hostPath"
    );
}

#[test]
fn reserved_and_duplicate_mount_paths_are_rejected() {
    let volumes = json!([{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]);
    let mounts = json!([{"name": "a", "mountPath": "/dev/"}, {"name": "b", "mountPath": "relative"}]);
    let msg = rejected(Kind::Service, pod(volumes, mounts));
    let m = "spec.template.spec.containers[0].volumeMounts";
    assert_eq!(
        msg,
        format!("invalid value: relative: {m}[1].mountPath\nmountPath \"/dev\" is a reserved path: {m}[0].mountPath")
    );
}
