//! Probes and sidecars through the real binary: a failing liveness probe restarts the instance
//! after `failureThreshold` misses and the Revision says why; `initialDelaySeconds` and
//! `successThreshold` hold readiness back; a sidecar starts and stops with its instance, is
//! restarted when it exits (and counted), writes into the revision's log under its name, and
//! does not outlive a killed `sluice serve`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::api::{Api, DeleteParams};
use serde_json::Value;
use sluice_api::conditions::{ConditionStatus, find};
use sluice_api::{Revision, Service};
use sluice_test_support::logs::{Marker, markers};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply, eventually, until};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

fn revision_log(s: &Sluice, name: &str) -> String {
    std::fs::read_to_string(s.state_dir.join("logs").join("default").join(format!("{name}.log"))).unwrap_or_default()
}

fn note<'a>(notes: &'a [Marker], text: &str) -> Option<&'a Marker> {
    notes.iter().find(|m| m.text.contains(text))
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// The pids a sidecar wrote to `file`, one per start.
fn pids(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_instance_after_failure_threshold_misses() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let manifest = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: lively
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          livenessProbe:
            httpGet:
              path: /healthz
            initialDelaySeconds: 2
            periodSeconds: 1
            failureThreshold: 3
";
    let out = apply(BIN, &s, manifest).expect("apply");
    assert!(!out.contains("livenessProbe"), "a liveness probe is honoured, not warned about: {out}");
    let host = "lively.default.localhost";
    traffic.wait_for(host, WAIT, |b| b.contains("Hello")).await.expect("served");

    let sickened = since_epoch();
    let (code, _) = traffic.get(host, "/sicken").await.expect("sicken");
    assert_eq!(code, 200);
    let revisions: Api<Revision> = Api::namespaced(s.kube_client().expect("client"), "default");
    let st = until("the revision to restart its instance and be Ready again", WAIT, async || {
        let st = revisions.get("lively-00001").await.ok()?.status?;
        let restarted = st.extra.get("restartCount").and_then(Value::as_u64).is_some_and(|n| n >= 1);
        let ready = find(&st.conditions, "Ready").is_some_and(|c| c.status == ConditionStatus::True);
        (restarted && ready && st.actual_replicas == Some(1)).then_some(st)
    })
    .await
    .expect("restarted");
    assert_eq!(
        st.extra["lastFailure"],
        serde_json::json!({"reason": "Unhealthy", "message": "Liveness probe failed: HTTP probe failed with statuscode: 500"})
    );
    assert_eq!(st.extra["containerRestartCounts"], serde_json::json!({"user-container": 1}));
    // The new process is healthy and serves.
    traffic.wait_for(host, WAIT, |b| b.contains("Hello")).await.expect("served after the restart");

    let notes = markers(&revision_log(&s, "lively-00001"));
    let stopped = note(&notes, "stopped: Liveness probe failed: HTTP probe failed with statuscode: 500")
        .unwrap_or_else(|| panic!("the log says why: {notes:#?}"));
    // No probe in the first two seconds (the app is up long before, so none fails), then three
    // misses one second apart: the first at least 2 s after the start, the third 2 s later.
    let started = note(&notes, "starting on port").expect("start noted");
    let lived = stopped.at.saturating_sub(started.at);
    assert!(lived >= Duration::from_secs(4), "restarted {lived:?} after the start: {notes:#?}");
    let after = stopped.at.saturating_sub(sickened);
    assert!(after >= Duration::from_secs(2), "restarted {after:?} after the app turned sick: {notes:#?}");
    assert_eq!(notes.iter().filter(|m| m.text.contains("starting on port")).count(), 2, "{notes:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_delay_and_success_threshold_hold_readiness_back() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let manifest = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: patient
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          readinessProbe:
            httpGet:
              path: /healthz
            initialDelaySeconds: 2
            periodSeconds: 1
            successThreshold: 2
";
    apply(BIN, &s, manifest).expect("apply");
    traffic.wait_for("patient.default.localhost", WAIT, |b| b.contains("Hello")).await.expect("served");
    let notes = markers(&revision_log(&s, "patient-00001"));
    let started = note(&notes, "starting on port").expect("start noted");
    let ready = note(&notes, "ready after").expect("ready noted");
    // First probe after the 2 s delay, the second (the threshold's) a period later.
    let took = ready.at.saturating_sub(started.at);
    assert!(took >= Duration::from_secs(3), "ready {took:?} after the start: {notes:#?}");
}

/// A service whose serving container is the hello app and whose sidecar `logger` says hello in
/// the revision's log, appends its pid to `pid_file` and sleeps.
fn with_sidecar(pid_file: &Path) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: pair
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          ports:
            - containerPort: 8080
        - name: logger
          image: example.com/logger:v1
          command: [/bin/sh, -c, 'echo logger up for $K_REVISION; echo $$$$ >> {pid}; exec sleep 600']
",
        pid = pid_file.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_runs_with_its_instance_is_restarted_when_it_exits_and_stops_with_it() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let pid_file = s.state_dir.join("logger.pids");
    let out = apply(BIN, &s, &with_sidecar(&pid_file)).expect("apply");
    assert!(!out.contains("Warning"), "a sidecar is honoured, not warned about: {out}");
    traffic.wait_for("pair.default.localhost", WAIT, |b| b.contains("Hello")).await.expect("served");
    let first = *pids(&pid_file).first().expect("the sidecar runs once the instance is ready");
    assert!(alive(first));
    let log = revision_log(&s, "pair-00001");
    assert!(log.contains("[logger] logger up for pair-00001"), "its output, under its name: {log}");

    // It exits: it is started again, and the revision counts it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(first).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the sidecar");
    let second = eventually("the sidecar to be started again", WAIT, || pids(&pid_file).get(1).copied())
        .await
        .expect("restarted");
    assert!(alive(second));
    let revisions: Api<Revision> = Api::namespaced(s.kube_client().expect("client"), "default");
    until("the sidecar's restart to be counted", WAIT, async || {
        let st = revisions.get("pair-00001").await.ok()?.status?;
        (st.extra.get("containerRestartCounts")?.get("logger")?.as_u64()? >= 1).then_some(())
    })
    .await
    .expect("counted");
    traffic.wait_for("pair.default.localhost", WAIT, |b| b.contains("Hello")).await.expect("served again");

    // The instance stops (its service is deleted): the sidecar goes with it.
    let services: Api<Service> = Api::namespaced(s.kube_client().expect("client"), "default");
    services.delete("pair", &DeleteParams::default()).await.expect("delete");
    eventually("the sidecar to stop with its instance", WAIT, || (!alive(second)).then_some(()))
        .await
        .expect("stopped");
    assert_eq!(pids(&pid_file).len(), 2, "not started again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sidecar_outlives_a_killed_sluice_serve() {
    let mut s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let pid_file = s.state_dir.join("logger.pids");
    apply(BIN, &s, &with_sidecar(&pid_file)).expect("apply");
    traffic.wait_for("pair.default.localhost", WAIT, |b| b.contains("Hello")).await.expect("served");
    let sidecar = *pids(&pid_file).first().expect("the sidecar runs");
    assert!(alive(sidecar));
    s.kill9().expect("kill -9");
    eventually("the sidecar to die with sluice serve", Duration::from_secs(10), || (!alive(sidecar)).then_some(()))
        .await
        .expect("no sidecar outlives a killed sluice serve");
}
