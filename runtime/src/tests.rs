//! The runtime with real child processes (`sh`), started directly (no launcher). Instances
//! that serve requests are tested through the binary, where the sample app exists: the
//! workspace's `tests/serving.rs` and `tests/lifecycle.rs`.

use std::time::{Duration, Instant};

use sluice_api::podspec::Container;
use sluice_router::endpoints::{Endpoints, RevisionKey};

use super::*;

fn runtime(dir: &Path) -> (Arc<Runtime>, UnboundedReceiver<RevisionKey>) {
    let images = ImageTable::builtin(Path::new("/nonexistent/sluice"));
    let mut config = RuntimeConfig::new(dir.to_path_buf(), images);
    config.stop_grace = Duration::from_secs(2);
    Runtime::new(config, Endpoints::new())
}

fn run(name: &str, container: Container) -> RevisionRun {
    RevisionRun {
        uid: format!("uid-{name}"),
        key: RevisionKey::new("default", name),
        configuration: "c".into(),
        service: "s".into(),
        container,
        sidecars: Vec::new(),
        timeout: Duration::from_secs(5),
        container_concurrency: 0,
    }
}

fn sh(script: &str) -> Container {
    Container { command: vec!["sh".into(), "-c".into(), script.into()], ..Default::default() }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_crashing_instance_reports_its_exit_code_and_restarts_with_backoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, mut changes) = runtime(dir.path());
    let r = run("crash", sh("echo \"boom on $PORT for $K_REVISION\" >&2; exit 3"));
    rt.set_scale(&r, 1);
    until("two restarts", || rt.health(&r.key).is_some_and(|h| h.restarts >= 2)).await;
    let h = rt.health(&r.key).expect("health");
    let f = h.last_failure.expect("failure");
    assert_eq!((f.reason.as_str(), f.exit_code), ("ExitCode", Some(3)));
    assert!(f.message.contains("boom on ") && f.message.contains("for crash"), "{}", f.message);
    assert_eq!(h.ready, 0);
    assert!(!h.ever_ready);
    assert_eq!(changes.recv().await, Some(r.key.clone()), "changes are announced");
    let log = std::fs::read_to_string(rt.log_path(&r.key)).expect("log");
    assert!(log.contains("[sluice]") && log.contains("exited with code 3"), "{log}");
    rt.forget(&r.key, &r.uid);
    assert!(rt.health(&r.key).is_none());
    rt.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_unknown_image_is_reported_without_retrying() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let r = run("img", Container { image: "registry.example/acme/unknown:v1".into(), ..Default::default() });
    rt.set_scale(&r, 1);
    until("the failure", || rt.health(&r.key).is_some_and(|h| h.last_failure.is_some())).await;
    let h = rt.health(&r.key).expect("health");
    let f = h.last_failure.expect("failure");
    assert_eq!(f.reason, "ImageNotFound");
    assert!(f.message.contains("registry.example/acme/unknown:v1"), "{}", f.message);
    assert_eq!(h.restarts, 0);
    rt.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_missing_program_is_a_start_failure_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let r = run("missing", Container { command: vec!["/no/such/program".into()], ..Default::default() });
    rt.set_scale(&r, 1);
    until("the failure", || rt.health(&r.key).is_some_and(|h| h.last_failure.is_some())).await;
    let f = rt.health(&r.key).and_then(|h| h.last_failure).expect("failure");
    assert_eq!(f.reason, "StartFailed");
    assert!(f.message.contains("/no/such/program"), "{}", f.message);
    rt.shutdown(Duration::from_secs(1)).await;
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[tokio::test]
async fn scaling_to_zero_stops_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let pids = dir.path().join("pids");
    // The instance ignores SIGTERM and starts a grandchild: both must go.
    // `$$` is Kubernetes' escape for a literal `$` in a command.
    let script = format!("trap '' TERM; sleep 600 & echo $$$$ $$! > {}; wait", pids.display());
    let r = run("group", sh(&script));
    rt.set_scale(&r, 1);
    until("the pids file", || std::fs::read_to_string(&pids).is_ok_and(|s| s.split_whitespace().count() == 2)).await;
    let both: Vec<i32> = std::fs::read_to_string(&pids)
        .expect("pids")
        .split_whitespace()
        .map(|p| p.parse().unwrap_or_else(|e| panic!("pid {p:?}: {e}")))
        .collect();
    assert!(both.iter().all(|p| alive(*p)));
    assert_eq!(rt.health(&r.key).map(|h| h.running), Some(1));
    rt.set_scale(&r, 0);
    until("the group to be gone", || both.iter().all(|p| !alive(*p))).await;
    until("running to drop", || rt.health(&r.key).is_some_and(|h| h.running == 0)).await;
    rt.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn environment_carries_port_revision_and_container_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let out = dir.path().join("env");
    let mut c =
        sh(&format!("echo \"$PORT $K_REVISION $K_CONFIGURATION $K_SERVICE $GREETING\" > {}; sleep 600", out.display()));
    c.env = vec![
        k8s_openapi::api::core::v1::EnvVar { name: "WHO".into(), value: Some("blue".into()), value_from: None },
        k8s_openapi::api::core::v1::EnvVar {
            name: "GREETING".into(),
            value: Some("hi-$(WHO)".into()),
            value_from: None,
        },
    ];
    let r = run("envy", c);
    rt.set_scale(&r, 1);
    until("the env file", || std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n'))).await;
    let line = std::fs::read_to_string(&out).expect("env");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields[0].parse::<u16>().is_ok_and(|p| p > 0), "{line}");
    assert_eq!(&fields[1..], ["envy", "c", "s", "hi-blue"]);
    rt.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rt.health(&r.key), None, "shutdown forgets everything");
}

#[tokio::test]
async fn a_deleted_revision_is_not_started_again_by_a_late_reconcile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let old = run("web", sh("sleep 600"));
    rt.set_scale(&old, 1);
    until("the instance to run", || rt.health(&old.key).is_some_and(|h| h.running == 1)).await;
    rt.forget(&old.key, &old.uid);
    assert!(rt.health(&old.key).is_none(), "forgotten");
    // A reconcile that read the revision before it was deleted asks for it again.
    rt.set_scale(&old, 1);
    assert!(rt.health(&old.key).is_none(), "a deleted revision is not run again");
    // The same name created again is another revision, and runs; the old deletion seen late
    // does not stop it.
    let new = RevisionRun { uid: "uid-web-2".into(), ..old.clone() };
    rt.set_scale(&new, 1);
    until("the new revision to run", || rt.health(&new.key).is_some_and(|h| h.running == 1)).await;
    rt.forget(&old.key, &old.uid);
    assert_eq!(rt.health(&new.key).map(|h| h.desired), Some(1));
    rt.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_failing_startup_probe_restarts_the_instance_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let mut c = sh("sleep 600");
    c.extra.insert(
        "startupProbe".into(),
        serde_json::json!({"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}),
    );
    let r = run("slow", c);
    rt.set_scale(&r, 1);
    until("a restart", || rt.health(&r.key).is_some_and(|h| h.restarts >= 1)).await;
    let h = rt.health(&r.key).expect("health");
    let f = h.last_failure.expect("failure");
    assert_eq!(f.reason, "Unhealthy");
    assert!(f.message.starts_with("Startup probe failed: command [\"false\"] exited with"), "{}", f.message);
    assert!(!h.ever_ready, "readiness waits for the startup probe");
    rt.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_sidecar_that_exits_takes_the_instance_out_of_routing_until_it_runs_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rt, _changes) = runtime(dir.path());
    let flag = dir.path().join("stay");
    // The sidecar runs while `stay` exists and exits (code 4) as soon as it does not.
    let script = format!("while test -f {f}; do sleep 0.02; done; exit 4", f = flag.display());
    let mut r = run("pair", sh("exec sleep 600"));
    r.container.name = "app".into();
    r.container.readiness_probe = Some(sluice_api::podspec::Probe {
        exec: Some(sluice_api::podspec::ExecAction { command: vec!["true".into()], ..Default::default() }),
        ..Default::default()
    });
    r.sidecars = vec![Container { name: "side".into(), ..sh(&script) }];
    std::fs::write(&flag, "").expect("flag");
    rt.set_scale(&r, 1);
    until("ready with its sidecar", || rt.health(&r.key).is_some_and(|h| h.ready == 1)).await;
    std::fs::remove_file(&flag).expect("unflag");
    until("the sidecar's restarts to be counted", || {
        rt.health(&r.key).is_some_and(|h| h.container_restarts.get("side").is_some_and(|n| *n >= 1))
    })
    .await;
    until("out of routing while it keeps exiting", || rt.health(&r.key).is_some_and(|h| h.ready == 0)).await;
    std::fs::write(&flag, "").expect("flag again");
    until("back in routing once it runs", || rt.health(&r.key).is_some_and(|h| h.ready == 1)).await;
    let log = std::fs::read_to_string(rt.log_path(&r.key)).expect("log");
    assert!(log.contains("sidecar side of instance") && log.contains("exited with code 4"), "{log}");
    rt.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn the_small_launcher_starts_instances_outside_a_namespace_only_when_a_launcher_is_used() {
    let images = ImageTable::builtin(Path::new("/nonexistent/sluice"));
    let mut config = RuntimeConfig::new(PathBuf::from("/tmp"), images);
    config.small_launcher = Some("sluice-exec".into());
    assert!(config.plain_launcher().is_empty(), "no launcher: instances start directly");
    config.launcher = vec!["sluice".into(), "instance-exec".into()];
    assert_eq!(config.plain_launcher(), [OsString::from("sluice-exec")]);
    config.small_launcher = None;
    assert_eq!(config.plain_launcher(), config.launcher);
}
