//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}` and
//! `/apis/{group}/v1` for `serving.knative.dev` and `events.k8s.io`, as kubectl and kube-rs
//! expect them.

use serde_json::{Value, json};
use sluice_api::Kind;

const SERVING_GROUP: &str = "serving.knative.dev";
/// The named groups, in discovery order: Knative's first, so `kubectl get services` stays
/// Knative's; `events.k8s.io` after, so `kubectl get events` stays core's (as in Kubernetes).
const NAMED_GROUPS: [&str; 2] = [SERVING_GROUP, "events.k8s.io"];
const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// `/version`: a 1.33 server, so kubectl's dispatcher picks a client it has.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": concat!("v1.33.0-sluice.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("linux/{}", std::env::consts::ARCH),
    })
}

/// `/api`: the core group's versions.
pub fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

fn group(name: &str) -> Value {
    let gv = format!("{name}/v1");
    json!({
        "name": name,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"},
    })
}

/// `/apis`: the named groups.
pub fn groups() -> Value {
    let groups: Vec<Value> = NAMED_GROUPS.iter().map(|g| group(g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}` for a served named group.
pub fn named_group(name: &str) -> Option<Value> {
    NAMED_GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = "APIGroup".into();
        g["apiVersion"] = "v1".into();
        g
    })
}

/// `/api/v1` or `/apis/{group}/v1`: the resources served there.
pub fn resources(group: &str) -> Value {
    let mut list = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| k.info().group == group) {
        let i = kind.info();
        list.push(json!({
            "name": i.plural,
            "singularName": i.singular,
            "namespaced": i.namespaced,
            "kind": i.kind,
            "verbs": VERBS,
            "shortNames": i.short_names,
            "categories": i.categories,
            "storageVersionHash": "",
        }));
        if i.has_status {
            list.push(json!({
                "name": format!("{}/status", i.plural),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": i.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() { "v1".to_string() } else { format!("{group}/v1") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

/// True for the groups served here (`""` is the core group).
pub fn is_served_group(group: &str) -> bool {
    group.is_empty() || NAMED_GROUPS.contains(&group)
}
