//! One state directory, one `sluice serve`: a second serve started on a directory in use
//! refuses to start and leaves the running one alone (its instances, its `endpoints.json`).

use std::time::Duration;

use sluice_runtime::instance_pids;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply, sample};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_a_state_dir_in_use_refuses_and_leaves_the_first_running() {
    let first = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(first.http.as_deref().expect("router"));
    apply(BIN, &first, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    let host = "helloworld-go.default.localhost";
    traffic.wait_for(host, WAIT, |b| b == "Hello Go Sample v1!\n").await.expect("served");
    let pids = instance_pids(&first.state_dir);
    assert_eq!(pids.len(), 1, "one instance: {pids:?}");
    let endpoints = std::fs::read_to_string(first.state_dir.join("endpoints.json")).expect("endpoints.json");

    let second = tokio::process::Command::new(BIN)
        .args(["serve", "--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir"])
        .arg(&first.state_dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, second).await.expect("the second serve exits").expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second serve must not start: {stderr}");
    assert!(stderr.contains("is already open in another sluice process"), "{stderr}");

    // Nothing of the first was touched: same instance, same addresses file, still serving.
    assert_eq!(instance_pids(&first.state_dir), pids, "the running instance survives");
    let now = std::fs::read_to_string(first.state_dir.join("endpoints.json")).expect("endpoints.json is kept");
    assert_eq!(now, endpoints);
    let (code, body) = traffic.get(host, "/").await.expect("still served");
    assert_eq!((code, body.as_str()), (200, "Hello Go Sample v1!\n"));
}
