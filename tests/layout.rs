//! The crate layout's dependency rules (README "Design"), read from `cargo metadata`, so that a
//! dependency added against them fails the build's tests rather than a later review.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// One crate's rule: the workspace crates it may use, and packages it must not use at all.
struct Rule {
    package: &'static str,
    workspace_allowed: &'static [&'static str],
    forbidden: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule { package: "sluice-api", workspace_allowed: &[], forbidden: &["tokio", "hyper", "hyper-util", "redb"] },
    // A pure decider: the model crate and small pure helpers only, no runtime or I/O.
    Rule {
        package: "sluice-autoscaler",
        workspace_allowed: &["sluice-api"],
        forbidden: &[
            "tokio",
            "hyper",
            "redb",
            "kube",
            "sluice-router",
            "sluice-runtime",
            "sluice-apiserver",
            "sluice-controller",
        ],
    },
    Rule {
        package: "sluice-activator",
        workspace_allowed: &[],
        forbidden: &["hyper", "hyper-util", "kube", "redb", "nix", "sluice-router", "sluice-runtime"],
    },
    Rule {
        package: "sluice-apiserver",
        workspace_allowed: &["sluice-api"],
        forbidden: &["kube", "sluice-router", "sluice-runtime", "sluice-controller", "nix"],
    },
    Rule {
        package: "sluice-runtime",
        workspace_allowed: &["sluice-api", "sluice-router"],
        forbidden: &["sluice-apiserver", "sluice-controller"],
    },
    Rule {
        package: "sluice-controller",
        workspace_allowed: &["sluice-api", "sluice-router", "sluice-autoscaler"],
        forbidden: &["redb", "hyper", "nix", "sluice-apiserver", "sluice-runtime"],
    },
    // The global allocator: a leaf, the one crate with `unsafe` code, kept apart for that.
    Rule { package: "sluice-allocator", workspace_allowed: &[], forbidden: &["tokio", "hyper"] },
    Rule {
        package: "sluice-router",
        workspace_allowed: &["sluice-api", "sluice-activator"],
        forbidden: &["sluice-controller", "sluice-apiserver", "sluice-runtime"],
    },
    // The router's cost, measured in processes of its own: the router and the allocator that
    // `sluice` runs it with, nothing of the control plane.
    Rule {
        package: "sluice-proxy-cost",
        workspace_allowed: &["sluice-router", "sluice-allocator"],
        forbidden: &["sluice-controller", "sluice-apiserver", "sluice-runtime", "kube", "redb"],
    },
    // The load harness measures Sluice from outside, over sockets and processes: it links none
    // of Sluice's own crates, so what it measures is what a user runs.
    Rule {
        package: "sluice-bench",
        workspace_allowed: &[],
        forbidden: &["sluice-router", "sluice-controller", "sluice-apiserver", "sluice-runtime", "kube", "redb"],
    },
];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every dependency (normal, build and dev) each workspace package declares, by name.
fn declared(meta: &Value, package: &str) -> Vec<Value> {
    let pkg = meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == package))
        .unwrap_or_else(|| panic!("package {package} is in the workspace"));
    pkg["dependencies"].as_array().cloned().unwrap_or_default()
}

#[test]
fn crates_depend_only_downward() {
    let meta = metadata();
    let workspace: BTreeSet<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    let mut broken = Vec::new();
    for rule in RULES {
        for dep in declared(&meta, rule.package) {
            let name = dep["name"].as_str().unwrap_or_default();
            if rule.forbidden.contains(&name) {
                broken.push(format!("{} must not depend on {name}", rule.package));
            }
            // Any crate's tests may use the shared test helpers.
            let test_helpers = name == "sluice-test-support" && dep["kind"] == "dev";
            if workspace.contains(name) && !rule.workspace_allowed.contains(&name) && !test_helpers {
                broken.push(format!("{} may not use workspace crate {name}", rule.package));
            }
        }
    }
    assert!(broken.is_empty(), "dependency rules broken:\n{}", broken.join("\n"));
}

#[test]
fn the_model_crate_takes_only_kubes_derive() {
    let meta = metadata();
    let kube = declared(&meta, "sluice-api").into_iter().find(|d| d["name"] == "kube").expect("api uses kube's derive");
    assert_eq!(kube["uses_default_features"], false, "kube's default features bring the client");
    let features: Vec<&str> = kube["features"].as_array().expect("features").iter().filter_map(Value::as_str).collect();
    assert_eq!(features, ["derive"], "sluice-api must not enable kube's client or runtime");
}

#[test]
fn every_library_crate_is_held_to_a_rule() {
    let meta = metadata();
    let libraries: BTreeSet<&str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| *n != "sluice" && *n != "sluice-test-support")
        .collect();
    let ruled: BTreeSet<&str> = RULES.iter().map(|r| r.package).collect();
    assert_eq!(libraries, ruled, "a new crate needs its place in RULES and in the README's crate table");
}
