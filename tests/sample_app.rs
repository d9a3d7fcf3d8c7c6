//! What a user runs does not serve test endpoints: without `--sample-test-endpoints`, the
//! sample app behind Knative's helloworld image neither shows its environment (`/env/NAME`)
//! nor exits on request (`/crash`).

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
