//! Knative's configuration maps in `knative-serving`: which keys Sluice reads. A key it does not
//! read is named with what Sluice does instead, so a `config-defaults` or `config-network` copied
//! from a cluster is not taken for applied. `_example` (Knative's documentation block) is never
//! named.

use serde_json::Value;

use super::NotHonoured;

/// The namespace of Knative's configuration maps.
const SYSTEM_NAMESPACE: &str = "knative-serving";

/// What Sluice does with one of Knative's maps.
struct Map {
    name: &'static str,
    /// The keys it reads.
    honoured: &'static [&'static str],
    /// Said of every other key.
    otherwise: &'static str,
}

const MAPS: &[Map] = &[
    Map {
        name: "config-autoscaler",
        honoured: &[
            "activator-capacity",
            "allow-zero-initial-scale",
            "container-concurrency-target-default",
            "container-concurrency-target-percentage",
            "enable-scale-to-zero",
            "initial-scale",
            "max-scale",
            "max-scale-down-rate",
            "max-scale-limit",
            "max-scale-up-rate",
            "min-scale",
            "panic-threshold-percentage",
            "panic-window-percentage",
            "pod-autoscaler-class",
            "requests-per-second-target-default",
            "scale-down-delay",
            "scale-to-zero-grace-period",
            "scale-to-zero-pod-retention-period",
            "stable-window",
            "target-burst-capacity",
        ],
        otherwise: "not a setting Sluice's autoscaler reads",
    },
    Map {
        name: "config-features",
        honoured: &["tag-header-based-routing"],
        otherwise: "Sluice validates with Knative's stock features; this setting is not applied",
    },
    Map {
        name: "config-network",
        honoured: &["http-protocol", "httpProtocol", "rollout-duration", "rolloutDuration"],
        otherwise: "not applied on Sluice (URLs are {name}.{namespace}.{serve --domain}; its own router is the ingress)",
    },
    Map {
        name: "config-deployment",
        honoured: &["progress-deadline", "progressDeadline"],
        otherwise: "not applied on Sluice (revisions run as local processes, not Deployments)",
    },
    Map {
        name: "config-defaults",
        honoured: &[],
        otherwise: "Sluice applies Knative's stock defaults (timeout 300 s, unbounded concurrency, container user-container); this setting is not applied",
    },
];

/// Keys of `network` that get a message of their own.
fn network_message(key: &str) -> Option<&'static str> {
    match key {
        "domain-template" | "tag-template" => {
            Some("not applied on Sluice: URLs are {name}.{namespace}.{serve --domain} and tags {tag}-{name}")
        }
        _ => None,
    }
}

/// The keys of the ConfigMap `obj` (as JSON) that Sluice does not read, when it is one of
/// Knative's maps.
pub fn not_honoured(obj: &Value) -> Vec<NotHonoured> {
    let meta = obj.get("metadata");
    if meta.and_then(|m| m.get("namespace")).and_then(Value::as_str) != Some(SYSTEM_NAMESPACE) {
        return Vec::new();
    }
    let Some(name) = meta.and_then(|m| m.get("name")).and_then(Value::as_str) else { return Vec::new() };
    let keys = ["data", "binaryData"]
        .into_iter()
        .filter_map(|field| obj.get(field).and_then(Value::as_object))
        .flat_map(|data| data.keys())
        .filter(|k| k.as_str() != "_example");
    let Some(map) = MAPS.iter().find(|m| m.name == name) else {
        if !name.starts_with("config-") {
            return Vec::new();
        }
        return keys
            .map(|key| NotHonoured {
                path: format!("data[{key}]"),
                message: "Sluice does not read this ConfigMap of Knative's",
            })
            .collect();
    };
    keys.filter(|k| !map.honoured.contains(&k.as_str()))
        .map(|key| {
            let special = if map.name == "config-network" { network_message(key) } else { None };
            NotHonoured { path: format!("data[{key}]"), message: special.unwrap_or(map.otherwise) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn notes(name: &str, ns: &str, data: Value) -> Vec<(String, &'static str)> {
        let obj = json!({"metadata": {"name": name, "namespace": ns}, "data": data});
        not_honoured(&obj).into_iter().map(|n| (n.path, n.message)).collect()
    }

    #[test]
    fn keys_sluice_reads_pass_and_others_are_named_with_what_happens_instead() {
        assert!(
            notes("config-autoscaler", "knative-serving", json!({"stable-window": "30s", "_example": "x"})).is_empty()
        );
        assert!(notes("config-features", "knative-serving", json!({"tag-header-based-routing": "enabled"})).is_empty());
        let network = notes(
            "config-network",
            "knative-serving",
            json!({"http-protocol": "Redirected", "rollout-duration": "380s", "ingress-class": "x", "domain-template": "y"}),
        );
        assert_eq!(network.len(), 2, "{network:?}");
        assert_eq!(network[0].0, "data[ingress-class]");
        assert_eq!(network[1].0, "data[domain-template]");
        assert!(network[1].1.contains("URLs are"));
        let defaults = notes("config-defaults", "knative-serving", json!({"revision-timeout-seconds": "600"}));
        assert_eq!(defaults[0].0, "data[revision-timeout-seconds]");
        assert!(defaults[0].1.contains("stock defaults"));
        assert_eq!(notes("config-gc", "knative-serving", json!({"max-non-active-revisions": "5"})).len(), 1);
    }

    #[test]
    fn maps_elsewhere_are_the_user_s_own() {
        assert!(notes("config-defaults", "default", json!({"revision-timeout-seconds": "600"})).is_empty());
        assert!(notes("app-settings", "knative-serving", json!({"x": "y"})).is_empty());
    }
}
