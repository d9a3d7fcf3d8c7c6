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
