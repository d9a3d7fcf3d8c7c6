//! Why a revision is not ready, through the real binary: an app listening on another port than
//! `$PORT` is told so in the Revision's status until it listens where it should; a revision
//! never ready within its progress deadline fails with `ProgressDeadlineExceeded`, its instances
//! stop, and a new revision recovers the service; an image missing from `images.yaml` starts
//! once the file maps it, without a restart (a bad file in between keeps the table before it).

use std::time::Duration;

use kube::api::Api;
use sluice_api::conditions::{Condition, ConditionStatus, find};
use sluice_api::{Revision, Service};
use sluice_runtime::instance_pids;
use sluice_test_support::http::Client;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply, eventually, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

/// A Service `name` with template `annotations` (YAML lines indented 8) and a container
/// (YAML lines under `- `, indented 10).
fn service(name: &str, annotations: &str, container: &str) -> String {
    let annotations =
        if annotations.is_empty() { String::new() } else { format!("\n      annotations:\n{annotations}") };
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    metadata:
      labels:
        app: {name}{annotations}
    spec:
      containers:
        - {}
",
        container.trim_start()
    )
}

/// The condition `type_` of revision `name` once `want` accepts it.
async fn revision_condition(
    s: &Sluice,
    name: &str,
    type_: &str,
    want: impl Fn(&Condition) -> bool,
) -> anyhow::Result<Condition> {
    let revisions: Api<Revision> = Api::namespaced(s.kube_client()?, "default");
    until(&format!("{name} {type_} as wanted"), WAIT, async || {
        let rev = revisions.get(name).await.ok()?;
        find(&rev.status?.conditions, type_).filter(|c| want(c)).cloned()
    })
    .await
}

async fn service_ready(s: &Sluice, name: &str) -> anyhow::Result<()> {
    let services: Api<Service> = Api::namespaced(s.kube_client()?, "default");
    until(&format!("service {name} Ready"), WAIT, async || {
        let svc = services.get(name).await.ok()?;
        find(&svc.status?.conditions, "Ready").filter(|c| c.status == ConditionStatus::True).map(|_| ())
    })
    .await
}

/// Sees revision `name` start an instance, then fail with Knative's reason and message, then
/// its instances stop, as Knative scales a failed revision down.
async fn fails_at_its_deadline(s: &Sluice, name: &str) {
    let state = s.state_dir.canonicalize().unwrap_or_else(|_| s.state_dir.clone());
    eventually("the instance to start", WAIT, || (!instance_pids(&state).is_empty()).then_some(()))
        .await
        .expect("an instance");
    let failed = |c: &Condition| c.status == ConditionStatus::False;
    for type_ in ["ResourcesAvailable", "Ready"] {
        let c = revision_condition(s, name, type_, failed).await.expect("failed");
        assert_eq!(c.reason.as_deref(), Some("ProgressDeadlineExceeded"), "{type_}");
        assert_eq!(c.message.as_deref(), Some("Initial scale was never achieved"), "{type_}");
    }
    eventually("the instance to stop", WAIT, || instance_pids(&state).is_empty().then_some(())).await.expect("stopped");
}

/// A container that never listens.
const NEVER_READY: &str = "image: example.com/never-ready\n          command: [\"sleep\", \"600\"]\n";

/// `a:b` of "listening on 127.0.0.1:a, but Sluice passed PORT=b: read $PORT".
fn ports_of(message: &str) -> Option<(u16, u16)> {
    let rest = message.strip_prefix("listening on 127.0.0.1:")?;
    let (listening, rest) = rest.split_once(", but Sluice passed PORT=")?;
    let passed = rest.strip_suffix(": read $PORT")?;
    Some((listening.parse().ok()?, passed.parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_on_another_port_is_told_to_read_port_until_it_listens_there() {
    let s = Sluice::start(BIN).expect("start sluice");
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    // A hello app told PORT=0, so it listens wherever the kernel puts it (never on the PORT
    // Sluice passed), from a child of the instance's first process; the real one, on $PORT,
    // only once the test says so.
    let container = format!(
        "image: example.com/team/wrong-port
          command: [\"sh\", \"-c\", \"PORT=0 \\\"$0\\\" sample hello & while [ ! -e \\\"$1\\\" ]; do sleep 0.05; done; exec \\\"$0\\\" sample hello\", \"{BIN}\", \"{}\"]
",
        go.display()
    );
    apply(BIN, &s, &service("wrong", "", &container)).expect("apply");
    let cond = revision_condition(&s, "wrong-00001", "Ready", |c| {
        c.status == ConditionStatus::Unknown && c.message.as_deref().is_some_and(|m| m.starts_with("listening on"))
    })
    .await
    .expect("the wrong port said");
    let message = cond.message.unwrap_or_default();
    assert_eq!(cond.reason.as_deref(), Some("Deploying"));
    let (listening, passed) = ports_of(&message).unwrap_or_else(|| panic!("unexpected message {message:?}"));
    let log = std::fs::read_to_string(s.state_dir.join("logs/default/wrong-00001.log")).unwrap_or_default();
    assert!(log.contains(&format!("starting on port {passed}:")), "PORT={passed} is what was passed: {log}");
    // The port named is where the app answers.
    let hello = Client::new().get(&format!("http://127.0.0.1:{listening}/"), &[]).await.expect("the app's own port");
    assert_eq!(hello.text(), "Hello World!\n");

    std::fs::write(&go, "").expect("let the app listen on $PORT");
    revision_condition(&s, "wrong-00001", "Ready", |c| c.status == ConditionStatus::True).await.expect("ready");
    let revisions: Api<Revision> = Api::namespaced(s.kube_client().expect("client"), "default");
    let rev = revisions.get("wrong-00001").await.expect("revision");
    let conditions = rev.status.map(|st| st.conditions).unwrap_or_default();
    for c in &conditions {
        assert!(!c.message.as_deref().unwrap_or("").contains("listening on"), "cleared once ready: {c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_never_ready_within_its_progress_deadline_fails_and_a_new_one_recovers() {
    let s = Sluice::start(BIN).expect("start sluice");
    let deadline = "        serving.knative.dev/progress-deadline: 2s\n";
    apply(BIN, &s, &service("slow", deadline, NEVER_READY)).expect("apply");
    fails_at_its_deadline(&s, "slow-00001").await;

    // A new revision that becomes ready recovers the service.
    let hello = "image: ghcr.io/knative/helloworld-go:latest\n";
    apply(BIN, &s, &service("slow", "        serving.knative.dev/progress-deadline: 1m\n", hello)).expect("update");
    service_ready(&s, "slow").await.expect("recovered");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    traffic.wait_for("slow.default.localhost", WAIT, |b| b == "Hello World!\n").await.expect("served");
    let old = revision_condition(&s, "slow-00001", "Ready", |_| true).await.expect("the old revision");
    assert_eq!(old.reason.as_deref(), Some("ProgressDeadlineExceeded"), "the failed revision stays failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_deadline_is_the_serve_setting_and_config_deployment_overrides_it() {
    // A bad setting is refused with Knative's message before anything starts.
    let out = std::process::Command::new(BIN).args(["serve", "--progress-deadline", "1500ms"]).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("progress-deadline must be rounded to a whole second, was: 1.5s"), "{err}");

    let args = vec!["--progress-deadline".to_string(), "2s".to_string()];
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    apply(BIN, &s, &service("by-flag", "", NEVER_READY)).expect("apply");
    fails_at_its_deadline(&s, "by-flag-00001").await;
    drop(s);

    let args = vec!["--progress-deadline".to_string(), "1h".to_string()];
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    let config = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-deployment\n  namespace: knative-serving\ndata:\n  progress-deadline: {value}\n"
        )
    };
    apply(BIN, &s, &config("0s")).expect("apply a bad config-deployment");
    eventually("the bad value to be logged", WAIT, || {
        s.log_text()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("progress-deadline cannot be a non-positive duration, was 0s"))
            .then_some(())
    })
    .await
    .expect("logged with Knative's message");
    apply(BIN, &s, &config("2s")).expect("apply config-deployment");
    eventually("config-deployment to be adopted", WAIT, || {
        s.log_text().contains("config-deployment applied").then_some(())
    })
    .await
    .expect("adopted");
    apply(BIN, &s, &service("by-map", "", NEVER_READY)).expect("apply");
    fails_at_its_deadline(&s, "by-map-00001").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_mapped_in_images_yaml_while_serving_starts_the_revision_waiting_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = dir.path().join("images.yaml");
    std::fs::write(&images, "images:\n  other: [/bin/true]\n").expect("write images.yaml");
    let args = vec!["--images".to_string(), images.display().to_string()];
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    apply(BIN, &s, &service("late", "", "image: example.com/team/late:v1\n")).expect("apply");
    let missing = |c: &Condition| c.status == ConditionStatus::False;
    let c = revision_condition(&s, "late-00001", "ContainerHealthy", missing).await.expect("missing");
    assert_eq!(c.reason.as_deref(), Some("ContainerMissing"));

    // A file that does not parse is logged and changes nothing.
    std::fs::write(&images, "images:\n  late: []\n").expect("write a bad table");
    eventually("the bad table to be logged", WAIT, || {
        let log = s.log_text();
        log.lines().find(|l| l.contains("ERROR") && l.contains("images.late")).map(str::to_string)
    })
    .await
    .expect("an error naming the entry");
    let c = revision_condition(&s, "late-00001", "ContainerHealthy", |_| true).await.expect("condition");
    assert_eq!(c.reason.as_deref(), Some("ContainerMissing"), "still missing");

    std::fs::write(&images, format!("images:\n  late: [\"{BIN}\", sample, hello]\n")).expect("map the image");
    service_ready(&s, "late").await.expect("started once mapped");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    traffic.wait_for("late.default.localhost", WAIT, |b| b == "Hello World!\n").await.expect("served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_network_namespaces_instances_listen_on_their_declared_port_side_by_side() {
    let limit = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if limit.trim() == "0" {
        eprintln!("skipped: this kernel allows no user namespaces (user.max_user_namespaces = 0)");
        return;
    }
    let args = vec!["--network-namespaces".to_string()];
    let s = Sluice::start_with(BIN, SluiceOptions { args, ..Default::default() }).expect("start sluice");
    // Two instances of an app that insists on port 9000, as the container declares.
    let container = format!(
        "image: example.com/team/pinned
          command: [\"sh\", \"-c\", \"echo given PORT=$PORT; PORT=9000 exec \\\"$0\\\" sample hello\", \"{BIN}\"]
          ports:
            - containerPort: 9000
"
    );
    let annotations = "        autoscaling.knative.dev/min-scale: \"2\"\n";
    apply(BIN, &s, &service("pinned", annotations, &container)).expect("apply");
    let revisions: Api<Revision> = Api::namespaced(s.kube_client().expect("client"), "default");
    until("two ready instances", WAIT, async || {
        let rev = revisions.get("pinned-00001").await.ok()?;
        (rev.status?.actual_replicas == Some(2)).then_some(())
    })
    .await
    .expect("both ready on port 9000");
    service_ready(&s, "pinned").await.expect("ready");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    traffic.wait_for("pinned.default.localhost", WAIT, |b| b == "Hello World!\n").await.expect("served");
    let log = std::fs::read_to_string(s.state_dir.join("logs/default/pinned-00001.log")).unwrap_or_default();
    assert_eq!(log.matches("given PORT=9000").count(), 2, "each was given its declared port: {log}");

    // Each in a network namespace of its own, not this one.
    let state = s.state_dir.canonicalize().unwrap_or_else(|_| s.state_dir.clone());
    let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let ours = std::fs::read_link("/proc/self/ns/net").expect("our namespace");
    let mut theirs: Vec<_> = instance_pids(&state).into_iter().filter_map(ns).collect();
    theirs.sort();
    theirs.dedup();
    assert_eq!(theirs.len(), 2, "two namespaces: {theirs:?}");
    assert!(!theirs.contains(&ours), "{theirs:?} vs ours {ours:?}");
}
