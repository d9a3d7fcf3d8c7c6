//! What a user runs does not serve test endpoints: without `--sample-test-endpoints`, the
//! sample app behind Knative's helloworld image neither shows its environment (`/env/NAME`)
//! nor exits on request (`/crash`), and the one behind autoscale-go (whose sample manifest runs
//! unchanged) does not show its counters (`/stats`).

use std::time::Duration;

use sluice_runtime::instance_pids;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, SluiceOptions, apply, sample};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "helloworld-go.default.localhost";
const ANSWER: &str = "Hello Go Sample v1!\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_app_serves_no_test_endpoints_by_default() {
    let env = vec![("SLUICE_SAMPLE_TEST_ENDPOINTS".to_string(), "false".to_string())];
    let s = Sluice::start_with(BIN, SluiceOptions { env, ..Default::default() }).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    traffic.wait_for(HOST, WAIT, |b| b == ANSWER).await.expect("served");
    let pids = instance_pids(&s.state_dir);
    assert_eq!(pids.len(), 1, "{pids:?}");
    for path in ["/env/PATH", "/env/K_REVISION", "/crash?code=3"] {
        let (code, body) = traffic.get(HOST, path).await.expect("answered");
        assert_eq!((code, body.as_str()), (200, ANSWER), "{path} is just another path");
    }
    assert_eq!(instance_pids(&s.state_dir), pids, "the instance is still the same process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscale_go_sample_runs_unchanged_and_shows_no_stats_by_default() {
    let env = vec![("SLUICE_SAMPLE_TEST_ENDPOINTS".to_string(), "false".to_string())];
    let s = Sluice::start_with(BIN, SluiceOptions { env, ..Default::default() }).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    apply(BIN, &s, &sample(ROOT, "autoscale-go.service.yaml", "").expect("sample")).expect("apply");
    let host = "autoscale-go.default.localhost";
    traffic.wait_for(host, WAIT, |_| true).await.expect("served");
    let answer = traffic.get(host, "/?sleep=10&prime=1000&bloat=1").await.expect("answered");
    assert_eq!(
        answer,
        (
            200,
            "Slept for 10 milliseconds.\nThe largest prime up to 1000 is 997.\nAllocated 1 MiB of memory.\n"
                .to_string()
        )
    );
    let (code, body) = traffic.get(host, "/stats").await.expect("answered");
    assert_eq!(
        (code, body.as_str()),
        (200, "Nothing asked: try ?sleep=MS, ?prime=N or ?bloat=MB.\n"),
        "/stats is just another path"
    );
}
