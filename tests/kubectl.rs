//! kubectl against the embedded API server, with the kubeconfig `sluice serve` writes: apply
//! every complete Knative sample unchanged (placeholders filled), get, patch, edit, delete.
//! Skipped with a printed reason where kubectl is not installed.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use sluice_test_support::samples::{self, COMPLETE};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, kubectl, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

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
    let text = samples::read(file);
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

#[test]
fn kubectl_creates_namespaces_and_config_maps_and_deleting_a_namespace_takes_its_services() {
    if kubectl().is_none() {
        eprintln!("skipping: kubectl is not installed on this machine");
        return;
    }
    let sluice = Sluice::start(BIN).expect("start sluice");
    let router = sluice.http.clone().expect("router");
    // `kubectl create` uses client-go's typed clients, which send protobuf.
    assert!(ok(&sluice, &["create", "namespace", "team-a"]).contains("namespace/team-a created"));
    ok(
        &sluice,
        &[
            "create",
            "configmap",
            "config-features",
            "-n",
            "knative-serving",
            "--from-literal=tag-header-based-routing=Enabled",
        ],
    );
    assert_eq!(
        ok(&sluice, &["get", "cm", "config-features", "-n", "knative-serving", "-o", "jsonpath={.data}"]),
        r#"{"tag-header-based-routing":"Enabled"}"#
    );
    let out = run(&sluice, &["create", "namespace", "Team_B"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("metadata.name") && err.contains("RFC 1123"), "{err}");

    // A manifest holding its namespace and a service in it, applied as one file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.yaml");
    let manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n---\n\
        apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n  namespace: team-b\n\
        spec:\n  template:\n    spec:\n      containers:\n      - image: ghcr.io/knative/helloworld-go\n";
    std::fs::write(&path, manifest).expect("write manifest");
    let out = ok(&sluice, &["apply", "-f", &path.display().to_string()]);
    assert!(
        out.contains("namespace/team-b created") && out.contains("service.serving.knative.dev/hello created"),
        "{out}"
    );
    let table = ok(&sluice, &["get", "namespaces"]);
    assert!(table.lines().any(|l| l.starts_with("team-b") && l.contains("Active")), "{table}");
    // The routing checks use test-support's own HTTP client, so they run wherever this test does.
    let http = tokio::runtime::Runtime::new().expect("a runtime for the HTTP checks");
    let traffic = Traffic::new(&router);
    let host = "hello.team-b.localhost";
    let body = http
        .block_on(traffic.wait_for(host, Duration::from_secs(60), |b| b.contains("Hello World!")))
        .expect("the service in team-b answers");
    assert_eq!(body, "Hello World!\n");

    ok(&sluice, &["delete", "namespace", "team-b"]);
    assert!(ok(&sluice, &["get", "ksvc,revisions", "-n", "team-b", "-o", "name"]).trim().is_empty());
    let (code, body) = http
        .block_on(until("its URL to be gone", Duration::from_secs(60), async || {
            traffic.get(host, "/").await.ok().filter(|(code, _)| *code == 404)
        }))
        .expect("its URL is gone");
    assert_eq!((code, body.as_str()), (404, "no route for host \"hello.team-b.localhost\"\n"));
    assert!(ok(&sluice, &["get", "ns", "-o", "name"]).contains("namespace/team-a"), "other namespaces stay");
}

#[test]
fn kubectl_get_watch_prints_the_same_columns_as_get() {
    let Some(kubectl) = kubectl() else {
        eprintln!("skipping: kubectl is not installed");
        return;
    };
    let s = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    ok(&s, &["apply", "-f", &filled(dir.path(), "helloworld-go.service.yaml")]);
    let mut watch = Command::new(kubectl)
        .args(["get", "ksvc", "-w"])
        .env("KUBECONFIG", s.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    // The list's header and row, then a row for the change below, which comes by the watch.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(30));
    let (header, listed) = (next(), next());
    ok(&s, &["label", "ksvc", "helloworld-go", "watched=yes"]);
    // The controller's own status updates may come first (a row without a URL yet, while the
    // service is still being reconciled): read rows until one shows the URL, within a deadline.
    // Without Table watch events kubectl prints a new `NAME AGE` header and bare rows instead.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut rows = Vec::new();
    while std::time::Instant::now() < deadline {
        let Ok(row) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) else { break };
        let done = row.contains("http://helloworld-go.default.localhost");
        rows.push(row);
        if done {
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let header = header.expect("a header");
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns[..4], ["NAME", "URL", "LATESTCREATED", "LATESTREADY"], "{header}");
    assert!(listed.expect("the listed row").starts_with("helloworld-go "));
    assert!(rows.iter().all(|r| !r.starts_with("NAME")), "no second header from the watch: {rows:?}");
    assert!(
        rows.last()
            .is_some_and(|r| r.starts_with("helloworld-go ") && r.contains("http://helloworld-go.default.localhost")),
        "a watched row with every column: {rows:?}"
    );
}
