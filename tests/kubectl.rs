//! kubectl against the embedded API server, with the kubeconfig `sluice serve` writes: apply
//! every complete Knative sample unchanged (placeholders filled), get, patch, edit, delete.
//! Skipped with a printed reason where kubectl is not installed.

use std::path::Path;
use std::process::{Command, Output};

use sluice_test_support::{Sluice, kubectl};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/samples/knative");

/// The samples that are whole objects; the `traffic-*` files and the rollout annotation are
/// excerpts with `...` in them.
const COMPLETE: &[&str] = &[
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

fn run(sluice: &Sluice, args: &[&str], env: &[(&str, &str)]) -> Output {
    let kubectl = kubectl().expect("checked by the caller");
    let mut cmd = Command::new(kubectl);
    cmd.args(args).env("KUBECONFIG", sluice.kubeconfig());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run kubectl")
}

fn ok(sluice: &Sluice, args: &[&str]) -> String {
    let out = run(sluice, args, &[]);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn filled(dir: &Path, file: &str) -> String {
    let text = std::fs::read_to_string(Path::new(SAMPLES).join(file)).expect("sample");
    let text = text
        .replace("<route-name>", "blue-green-demo")
        .replace("<first-revision-name>", "blue-green-demo-00001")
        .replace("<second-revision-name>", "blue-green-demo-00002");
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write sample");
    path.display().to_string()
}

#[test]
fn kubectl_applies_every_knative_sample_and_edits_patches_and_deletes() {
    if kubectl().is_none() {
        eprintln!("skipping: kubectl is not installed on this machine");
        return;
    }
    let sluice = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    for file in COMPLETE {
        let path = filled(dir.path(), file);
        let out = ok(&sluice, &["apply", "-f", &path]);
        assert!(out.contains("created") || out.contains("configured"), "{file}: {out}");
    }
    // Applying again changes nothing: kubectl re-sends the atomic `containers` list (the stored
    // one carries Knative's defaults), as against Knative, and the server finds it a no-op.
    let version = |s: &Sluice| {
        ok(s, &["get", "ksvc", "helloworld-go", "-o", "jsonpath={.metadata.generation}/{.metadata.resourceVersion}"])
    };
    let before = version(&sluice);
    ok(&sluice, &["apply", "-f", &filled(dir.path(), "helloworld-go.service.yaml")]);
    assert_eq!(version(&sluice), before, "re-applying the same manifest must not write");

    let services = ok(&sluice, &["get", "ksvc"]);
    for name in ["helloworld-go", "autoscale-go", "hello", "tag-header"] {
        assert!(services.lines().any(|l| l.starts_with(name)), "{name} missing from:\n{services}");
    }
    assert!(services.starts_with("NAME"), "a table with headers: {services}");
    assert!(ok(&sluice, &["get", "revisions", "-o", "yaml"]).contains("kind: List"));
    assert!(ok(&sluice, &["get", "cm", "-n", "knative-serving"]).contains("config-network"));
    assert_eq!(ok(&sluice, &["get", "rt", "blue-green-demo", "-o", "jsonpath={.spec.traffic[1].tag}"]), "v2");

    ok(
        &sluice,
        &[
            "patch",
            "ksvc",
            "helloworld-go",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"containerConcurrency":5}}}}"#,
        ],
    );
    let editor = "sed -i s/containerConcurrency:.5/containerConcurrency:\\ 7/";
    let out = run(&sluice, &["edit", "ksvc", "helloworld-go"], &[("EDITOR", editor), ("KUBE_EDITOR", editor)]);
    assert!(out.status.success(), "edit: {}", String::from_utf8_lossy(&out.stderr));
    let got = ok(
        &sluice,
        &[
            "get",
            "ksvc",
            "helloworld-go",
            "-o",
            "jsonpath={.metadata.generation} {.spec.template.spec.containerConcurrency}",
        ],
    );
    assert_eq!(got, "3 7");

    // Knative's validation message reaches the kubectl user, naming the field.
    let out = run(
        &sluice,
        &[
            "patch",
            "ksvc",
            "helloworld-go",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/traffic/0/percent","value":90}]"#,
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Traffic targets sum to 90, want 100") && err.contains("spec.traffic"), "{err}");

    ok(&sluice, &["delete", "ksvc", "helloworld-go"]);
    let out = run(&sluice, &["get", "ksvc", "helloworld-go"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"), "{}", String::from_utf8_lossy(&out.stderr));
}
