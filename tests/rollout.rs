//! Rolling a service through several revisions, through the real binary: each new revision
//! starts exactly one instance, once. (A race between the Configuration's status and the
//! Route's labeler used to mark a brand-new revision `reserve` for a moment, so its first
//! instance was stopped tens of milliseconds after it started and started again.)

use std::time::Duration;

use sluice_test_support::logs::markers;
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply, eventually};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "shop.default.localhost";
/// Revisions rolled out; the race showed on about half of them.
const ROLLOUTS: usize = 6;

fn service(version: usize) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: shop
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          env:
            - name: TARGET
              value: v{version}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_revision_starts_exactly_one_instance_once() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let logs = s.state_dir.join("logs").join("default");
    for version in 1..=ROLLOUTS {
        apply(BIN, &s, &service(version)).expect("apply");
        let want = format!("Hello v{version}!");
        traffic.wait_for(HOST, WAIT, |b| b.contains(&want)).await.expect("the new revision serves");
        // The next rollout starts from a settled service, the old revision stopped, as a
        // person's edits do (the race showed most often then).
        if version > 1 {
            let old = logs.join(format!("shop-{:05}.log", version - 1));
            eventually("the previous revision to stop", WAIT, || {
                let log = std::fs::read_to_string(&old).ok()?;
                markers(&log).iter().any(|m| m.text.ends_with(" stopped")).then_some(())
            })
            .await
            .expect("the previous revision stops once no route references it");
        }
    }
    let mut restarted = Vec::new();
    for n in 1..=ROLLOUTS {
        let name = format!("shop-{n:05}");
        let log = std::fs::read_to_string(logs.join(format!("{name}.log"))).expect("revision log");
        let notes: Vec<String> = markers(&log).into_iter().map(|m| m.text).collect();
        let starts = notes.iter().filter(|t| t.contains("starting on port")).count();
        if starts != 1 {
            restarted.push(format!("{name} started {starts} times: {notes:#?}"));
        }
    }
    assert!(restarted.is_empty(), "{}", restarted.join("\n"));
}
