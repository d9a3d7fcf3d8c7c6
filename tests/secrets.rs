//! ConfigMaps and Secrets as a revision's environment, through the real binary: `envFrom` and
//! `env[].valueFrom` reach the instance; a missing ConfigMap is a CreateContainerConfigError
//! that clears on its own once the ConfigMap is created; Secret values never show in Sluice's
//! logs nor in `sluice get`; kubectl creates, applies and lists Secrets.

use std::process::{Command, Output};
use std::time::Duration;

use kube::api::Api;
use sluice_api::Revision;
use sluice_api::conditions::{ConditionStatus, find};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply, kubectl, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
/// A value that must never be printed by Sluice.
const PASSWORD: &str = "hunter2-do-not-print";

/// A ConfigMap, a Secret and a Service using both; its command names the Secret's variable (in
/// a shell comment) so the argv Sluice logs at each start would show a value if it could.
fn objects() -> String {
    format!(
        "{OBJECTS}          command: [/bin/sh, -c, 'exec \"$0\" sample hello --test-endpoints # $(PASS)', {BIN:?}]\n"
    )
}

const OBJECTS: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  GREETING: hi
  LEVEL: \"3\"
  1st-key: skipped
---
apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: hunter2-do-not-print
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: envy
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go
          envFrom:
            - configMapRef: {name: app-config}
            - secretRef: {name: db}
              prefix: DB_
          env:
            - name: MODE
              value: level-$(LEVEL)
            - name: PASS
              valueFrom: {secretKeyRef: {name: db, key: password}}
            - name: OPTIONAL
              valueFrom: {configMapKeyRef: {name: absent, key: k, optional: true}}
";

const LATER: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: later
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go
          env:
            - name: K
              valueFrom: {configMapKeyRef: {name: late-config, key: k}}
";

fn sluice_cmd(s: &Sluice, args: &[&str]) -> String {
    let out = s.command(BIN).args(args).output().expect("run sluice");
    assert!(out.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_maps_and_secrets_become_the_instances_environment() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &objects()).expect("apply");
    let host = "envy.default.localhost";
    traffic.wait_for(host, WAIT, |b| b.starts_with("Hello")).await.expect("served");
    for (var, want) in [("GREETING", "hi"), ("DB_password", PASSWORD), ("PASS", PASSWORD), ("MODE", "level-3")] {
        assert_eq!(traffic.get(host, &format!("/env/{var}")).await.expect("env").1, want, "{var}");
    }
    let (status, _) = traffic.get(host, "/env/OPTIONAL").await.expect("env");
    assert_eq!(status, 404, "an optional reference to a missing ConfigMap leaves the variable unset");

    // The invalid key is skipped and said in the revision's log, by name only.
    let log = std::fs::read_to_string(s.state_dir.join("logs/default/envy-00001.log")).expect("revision log");
    assert!(log.contains("# $(PASS)"), "the argv is logged with the reference: {log}");
    assert!(log.contains("Keys [1st-key] from the EnvFrom configmap default/app-config were skipped"), "{log}");

    // `sluice get` counts and masks; the API (for kubectl) returns the value.
    let table = sluice_cmd(&s, &["get", "secrets"]);
    assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()[..3] == ["db", "Opaque", "1"]), "{table}");
    let yaml = sluice_cmd(&s, &["get", "secret", "db", "-o", "yaml"]);
    assert!(yaml.contains("password:") && yaml.contains("redacted by sluice get: 20 bytes"), "{yaml}");
    let json = sluice_cmd(&s, &["get", "secrets", "-o", "json"]);
    let encoded = "aHVudGVyMi1kby1ub3QtcHJpbnQ=";
    assert!(!yaml.contains(encoded) && !json.contains(encoded) && !json.contains(PASSWORD), "{json}");
    let api = s.client().get(&format!("{}/api/v1/namespaces/default/secrets/db", s.api), &[]).await.expect("GET");
    assert_eq!(api.json()["data"]["password"], encoded);
    assert!(api.json().get("stringData").is_none());

    // A service whose ConfigMap does not exist yet cannot start, says so, and recovers.
    apply(BIN, &s, LATER).expect("apply later");
    let revisions: Api<Revision> = Api::namespaced(s.kube_client().expect("client"), "default");
    let reason = Some("CreateContainerConfigError".to_string());
    let conds = until("the missing ConfigMap to be reported", WAIT, async || {
        let status = revisions.get("later-00001").await.ok()?.status?;
        let healthy = find(&status.conditions, "ContainerHealthy")?.clone();
        let resources = find(&status.conditions, "ResourcesAvailable")?.clone();
        (healthy.reason == reason && resources.reason == reason).then_some((healthy, resources))
    })
    .await
    .expect("CreateContainerConfigError");
    for c in [&conds.0, &conds.1] {
        assert_eq!(c.status, ConditionStatus::False);
        assert_eq!(c.message.as_deref(), Some("configmap \"late-config\" not found"));
    }
    apply(BIN, &s, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late-config}\ndata: {k: arrived}\n")
        .expect("apply the ConfigMap");
    let later = "later.default.localhost";
    traffic.wait_for(later, WAIT, |b| b.starts_with("Hello")).await.expect("recovered");
    assert_eq!(traffic.get(later, "/env/K").await.expect("env").1, "arrived");
    until("later-00001 Ready", WAIT, async || {
        let status = revisions.get("later-00001").await.ok()?.status?;
        (find(&status.conditions, "Ready")?.status == ConditionStatus::True).then_some(())
    })
    .await
    .expect("Ready");

    // Nothing Sluice wrote shows the value.
    let serve_log = s.log_text();
    let revision_logs = std::fs::read_to_string(s.state_dir.join("logs/default/envy-00001.log")).expect("log");
    for text in [&serve_log, &revision_logs] {
        assert!(!text.contains(PASSWORD) && !text.contains(encoded), "a value was logged: {text}");
    }
}

fn kubectl_run(s: &Sluice, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(kubectl().expect("checked by the caller"));
    cmd.args(args).env("KUBECONFIG", s.kubeconfig());
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run kubectl");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("kubectl output")
}

fn kubectl_ok(s: &Sluice, args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl_run(s, args, stdin);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubectl {args:?}: {text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kubectl_creates_applies_and_lists_secrets() {
    if kubectl().is_none() {
        eprintln!("skipping: kubectl is not installed on this machine");
        return;
    }
    let s = Sluice::start_api_only(BIN).expect("start sluice");
    // `kubectl create secret` sends protobuf.
    kubectl_ok(&s, &["create", "secret", "generic", "api-key", "--from-literal=key=abc"], None);
    assert_eq!(kubectl_ok(&s, &["get", "secret", "api-key", "-o", "jsonpath={.data.key}"], None), "YWJj");
    let manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls-ish}\ntype: example.com/token\n\
        stringData: {token: t0k3n, user: me}\n";
    kubectl_ok(&s, &["apply", "-f", "-"], Some(manifest));
    assert_eq!(kubectl_ok(&s, &["get", "secret", "tls-ish", "-o", "jsonpath={.data.token}"], None), "dDBrM24=");
    let table = kubectl_ok(&s, &["get", "secrets"], None);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "TYPE", "DATA", "AGE"], "{table}");
    assert_eq!(rows[1][..3], ["api-key", "Opaque", "1"], "{table}");
    assert_eq!(rows[2][..3], ["tls-ish", "example.com/token", "2"], "{table}");
    // Invalid base64 is refused naming the key.
    let bad = "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\ndata: {token: \"not base64!\"}\n";
    let out = kubectl_run(&s, &["apply", "-f", "-"], Some(bad));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("data[token]"), "{err}");
}
