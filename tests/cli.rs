//! The `sluice` client commands against a running server: apply (file, directory, stdin,
//! multi-document, errors per document with the field path), get (table, YAML, JSON), delete.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sluice_test_support::Sluice;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn sluice_cmd(s: &Sluice, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("SLUICE_API", &s.api)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("sluice output")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

const TWO_SERVICES: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: one
spec:
  template:
    spec:
      containers:
      - image: ghcr.io/knative/helloworld-go:latest
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: two
spec:
  template:
    spec:
      containers:
      - image: ghcr.io/knative/helloworld-go:latest
        env:
        - name: TARGET
          value: two
";

const ONE_BAD: &str = "apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: good
spec:
  traffic:
  - revisionName: one-00001
    percent: 100
---
apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: bad
spec:
  traffic:
  - revisionName: one-00001
    percent: 40
";

#[test]
fn apply_get_and_delete_from_the_command_line() {
    let s = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("services.yaml");
    std::fs::write(&file, TWO_SERVICES).expect("write");

    let out = sluice_cmd(&s, &["apply", "-f", file.to_str().expect("utf8")], None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("service.serving.knative.dev/one created")
            && stdout.contains("service.serving.knative.dev/two created"),
        "{stdout}"
    );

    // A directory, applied again: both are updated in place, not duplicated.
    let out = sluice_cmd(&s, &["apply", "-f", dir.path().to_str().expect("utf8")], None);
    assert!(out.status.success(), "{:?}", text(&out));

    // Errors are reported per document, with the field path; the good document still lands.
    let out = sluice_cmd(&s, &["apply", "-f", "-"], Some(ONE_BAD));
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a failed document fails the command");
    assert!(stdout.contains("route.serving.knative.dev/good created"), "{stdout}");
    assert!(
        stderr.contains("<stdin> (document 2)") && stderr.contains("Traffic targets sum to 40, want 100: spec.traffic"),
        "{stderr}"
    );

    let out = sluice_cmd(&s, &["get", "ksvc"], None);
    let (table, _) = text(&out);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("one ")) && table.lines().any(|l| l.starts_with("two ")), "{table}");

    let out = sluice_cmd(&s, &["get", "service", "two", "-o", "yaml"], None);
    let (yaml, _) = text(&out);
    assert!(yaml.contains("name: two") && yaml.contains("value: two"), "{yaml}");
    let out = sluice_cmd(&s, &["get", "routes", "-o", "json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["kind"], "List");
    assert!(list["items"].as_array().is_some_and(|i| i.iter().any(|r| r["metadata"]["name"] == "good")));

    let out = sluice_cmd(&s, &["delete", "ksvc", "one"], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = sluice_cmd(&s, &["get", "ksvc", "one"], None);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("not found"), "{:?}", text(&out));

    let out = sluice_cmd(&s, &["get", "pods"], None);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("unknown kind"), "{:?}", text(&out));
}
