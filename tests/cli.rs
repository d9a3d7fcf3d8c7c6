//! The `sluice` client commands against a running server: apply (file, directory, stdin,
//! multi-document, errors per document with the field path), get (table, YAML, JSON), delete.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sluice_test_support::{Sluice, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn sluice_cmd(s: &Sluice, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = s
        .command(BIN)
        .args(args)
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

/// The services by name: uid, generation, and the first container's TARGET.
fn services(s: &Sluice) -> BTreeMap<String, (String, i64, String)> {
    let out = sluice_cmd(s, &["get", "ksvc", "-o", "json"], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    let items = list["items"].as_array().expect("items");
    items
        .iter()
        .map(|svc| {
            let meta = &svc["metadata"];
            let target = &svc["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"];
            let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (field(&meta["name"]), (field(&meta["uid"]), meta["generation"].as_i64().unwrap_or(0), field(target)))
        })
        .collect()
}

/// The names of every revision, sorted.
fn revision_names(s: &Sluice) -> Vec<String> {
    let out = sluice_cmd(s, &["get", "revisions", "-o", "json"], None);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
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

    // A directory, applied again with `two` changed: both are updated in place, not duplicated.
    let before = services(&s);
    std::fs::write(&file, TWO_SERVICES.replace("value: two", "value: deux")).expect("write");
    let out = sluice_cmd(&s, &["apply", "-f", dir.path().to_str().expect("utf8")], None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("service.serving.knative.dev/two configured"), "{stdout}");
    let after = services(&s);
    assert_eq!(after.keys().collect::<Vec<_>>(), ["one", "two"], "still two services: {after:?}");
    for (name, (uid, _, _)) in &after {
        assert_eq!(Some(uid), before.get(name).map(|b| &b.0), "{name} kept its identity (not recreated)");
    }
    // `one` may move a generation too: `apply` replaces the object, and Knative defaults
    // `enableServiceLinks` only on create (as `kubectl replace` would against Knative).
    assert_eq!((before["two"].1, after["two"].1), (1, 2), "one spec change is one generation of `two`");
    assert_eq!(after["two"].2, "deux", "the stored service shows the update");
    // One update makes one more revision of `two`. (Not asserted for `one`: re-applying its
    // unchanged manifest drops the create-time `enableServiceLinks: false` default from its
    // template, which stamps a revision `one-00002` — reported, not enshrined here.)
    let of_two = || revision_names(&s).into_iter().filter(|n| n.starts_with("two-")).collect::<Vec<_>>();
    wait_for("the update's revision", Duration::from_secs(60), || {
        of_two().contains(&"two-00002".to_string()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: have {:?}", revision_names(&s)));
    assert_eq!(of_two(), ["two-00001", "two-00002"]);

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
    assert!(yaml.contains("name: two") && yaml.contains("value: deux"), "{yaml}");
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

#[test]
fn without_api_flags_the_cli_finds_the_server_its_state_directory_names() {
    let s = Sluice::start(BIN).expect("start sluice");
    // No --api, SLUICE_API, token or CA: only the state directory, as a user of a second
    // terminal has it.
    let out = std::process::Command::new(BIN)
        .args(["get", "ksvc", "--state-dir"])
        .arg(&s.state_dir)
        .env_remove("SLUICE_API")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_CERTIFICATE_AUTHORITY")
        .env_remove("SLUICE_STATE_DIR")
        .output()
        .expect("run sluice");
    // The server listens on a port of its own choosing, so an answer means endpoints.json
    // named it (and the state directory's token and CA were used).
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0, "No resources found.\n");
}

#[test]
fn a_server_that_does_not_answer_is_named_with_how_to_start_one() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = std::process::Command::new(BIN)
        .args(["get", "ksvc", "--token", "abc", "--api"])
        .arg(format!("http://127.0.0.1:{port}"))
        .env_remove("SLUICE_STATE_DIR")
        .output()
        .expect("run sluice");
    assert!(!out.status.success());
    let (_, stderr) = text(&out);
    assert!(stderr.contains(&format!("no Sluice API server answers at http://127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("sluice serve"), "{stderr}");
}
