//! `sluice-exec`, the small launcher `sluice serve` starts instances through: it becomes the
//! instance when its parent is the one named, and refuses otherwise.

use std::process::Command;

const EXEC: &str = env!("CARGO_BIN_EXE_sluice-exec");

#[test]
fn it_becomes_the_instance_when_started_by_the_parent_it_names() {
    let out = Command::new(EXEC)
        .args(["--parent-pid", &std::process::id().to_string(), "--", "/bin/sh", "-c", "echo ran as $0 with $#"])
        .output()
        .expect("run sluice-exec");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran as /bin/sh with 0\n");
}

#[test]
fn it_refuses_when_its_parent_is_not_the_one_named_or_the_program_is_missing() {
    // pid 1 is never this test's process: the parent `sluice serve` is taken to be gone.
    let out = Command::new(EXEC).args(["--parent-pid", "1", "--", "/bin/true"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("parent process 1 is gone"), "{out:?}");
    let me = std::process::id().to_string();
    let out = Command::new(EXEC).args(["--parent-pid", &me, "--", "/no/such/program"]).output().expect("run");
    assert_eq!(out.status.code(), Some(127), "not found, as a shell says it: {out:?}");
    let out = Command::new(EXEC).args(["--parent-pid", &me]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: sluice-exec"), "{out:?}");
}

/// Without `sluice-exec` beside it (`cargo run` builds only `sluice`), `sluice serve` starts
/// instances through `sluice instance-exec`, and they serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_it_beside_falls_back_to_instance_exec() {
    use sluice_test_support::traffic::Traffic;
    use sluice_test_support::{Sluice, apply, sample};

    let dir = tempfile::tempdir().expect("tempdir");
    let alone = dir.path().join("sluice");
    std::fs::copy(env!("CARGO_BIN_EXE_sluice"), &alone).expect("copy sluice");
    let bin = alone.to_str().expect("a UTF-8 path");
    let s = Sluice::start(bin).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let manifest = sample(env!("CARGO_MANIFEST_DIR"), "helloworld-go.service.yaml", "").expect("sample");
    apply(bin, &s, &manifest).expect("apply");
    let host = "helloworld-go.default.localhost";
    let body = traffic.wait_for(host, std::time::Duration::from_secs(60), |b| b.contains("Hello")).await;
    assert_eq!(body.expect("served").as_str(), "Hello Go Sample v1!\n");
    assert_eq!(sluice_runtime::instance_pids(&s.state_dir).len(), 1);
}
