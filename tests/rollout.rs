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

/// Knative's gradual rollout: with `rollout-duration` on the Service, a new revision starts at
/// 1 % and takes over in steps, under load without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_duration_moves_traffic_to_the_new_revision_in_steps() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let gradual = |version: usize| {
        service(version).replacen(
            "  name: shop\n",
            "  name: shop\n  annotations:\n    serving.knative.dev/rollout-duration: 4s\n",
            1,
        )
    };
    apply(BIN, &s, &gradual(1)).expect("apply v1");
    traffic.wait_for(HOST, WAIT, |b| b.contains("Hello v1!")).await.expect("v1 serves");
    let load = traffic.start_load(HOST, 2);
    apply(BIN, &s, &gradual(2)).expect("apply v2");

    let routes: kube::Api<sluice_api::Route> = kube::Api::namespaced(s.kube_client().expect("client"), "default");
    let observed = observe_rollout(&routes, "shop-00002").await;
    let report = load.stop().await;
    assert_stepped(observed, "shop-00001", "shop-00002");
    assert_eq!(report.statuses.keys().copied().collect::<Vec<_>>(), [200], "{report:?}");
}

/// Knative's cluster-wide default, `config-network`'s `rollout-duration`, rolls out a service
/// without the annotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_network_s_rollout_duration_rolls_out_services_without_the_annotation() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let network = "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  rollout-duration: 4s
";
    apply(BIN, &s, network).expect("apply config-network");
    apply(BIN, &s, &service(1)).expect("apply v1");
    traffic.wait_for(HOST, WAIT, |b| b.contains("Hello v1!")).await.expect("v1 serves");
    let routes: kube::Api<sluice_api::Route> = kube::Api::namespaced(s.kube_client().expect("client"), "default");
    // A rollout needs the state before it: the route records it once the default applies.
    sluice_test_support::until("the route to record its rollout state", WAIT, async || {
        routes.get("shop").await.ok()?.status?.extra.contains_key("rollout").then_some(())
    })
    .await
    .expect("rollout state");
    apply(BIN, &s, &service(2)).expect("apply v2");
    assert_stepped(observe_rollout(&routes, "shop-00002").await, "shop-00001", "shop-00002");
}

/// A route's split: revision and percent, in order.
type Split = Vec<(String, i64)>;

/// What a route's status showed during a rollout.
struct Observed {
    /// The rollout ended within [`WAIT`].
    done: bool,
    /// Every split shown, in order, without repeats.
    splits: Vec<Split>,
    /// IngressReady said `RolloutInProgress` at some point.
    in_progress: bool,
}

/// Watches the route's status until `to` holds all the traffic (or [`WAIT`] passes).
async fn observe_rollout(routes: &kube::Api<sluice_api::Route>, to: &str) -> Observed {
    let mut splits: Vec<Split> = Vec::new();
    let mut in_progress = false;
    let done = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(route) = routes.get("shop").await
                && let Some(status) = route.status
            {
                let split: Split = status
                    .traffic
                    .iter()
                    .map(|t| (t.revision_name.clone().unwrap_or_default(), t.percent_or_zero()))
                    .collect();
                in_progress |= sluice_api::conditions::find(&status.conditions, "IngressReady")
                    .is_some_and(|c| c.reason.as_deref() == Some("RolloutInProgress"));
                if splits.last() != Some(&split) {
                    splits.push(split.clone());
                }
                if split == [(to.to_string(), 100)] {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok();
    Observed { done, splits, in_progress }
}

/// A 4 s rollout from `from` to `to`: 100 → 99/1 → steps → 100.
fn assert_stepped(Observed { done, splits, in_progress }: Observed, from: &str, to: &str) {
    assert!(done, "the rollout did not end: {splits:?}");
    assert_eq!(splits.first(), Some(&vec![(from.to_string(), 100)]), "{splits:?}");
    assert!(
        splits.contains(&vec![(from.to_string(), 99), (to.to_string(), 1)]),
        "the new revision starts at 1 %: {splits:?}"
    );
    assert!(splits.len() >= 4, "steps in between (4 s: 1 %, then 33 % more each second): {splits:?}");
    assert!(in_progress, "IngressReady said RolloutInProgress");
}

/// Knative's BYO rollback: a template naming an existing revision with the same spec moves the
/// traffic back to it, without a new revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_naming_an_earlier_revision_with_its_spec_rolls_back_to_it() {
    let s = Sluice::start(BIN).expect("start sluice");
    let traffic = Traffic::new(s.http.as_deref().expect("router"));
    let named = |name: &str, version: usize| {
        service(version).replacen("  template:\n", &format!("  template:\n    metadata:\n      name: {name}\n"), 1)
    };
    apply(BIN, &s, &named("shop-blue", 1)).expect("apply blue");
    traffic.wait_for(HOST, WAIT, |b| b.contains("Hello v1!")).await.expect("blue serves");
    apply(BIN, &s, &named("shop-green", 2)).expect("apply green");
    traffic.wait_for(HOST, WAIT, |b| b.contains("Hello v2!")).await.expect("green serves");
    apply(BIN, &s, &named("shop-blue", 1)).expect("roll back to blue");
    traffic.wait_for(HOST, WAIT, |b| b.contains("Hello v1!")).await.expect("blue serves again");

    let client = s.kube_client().expect("client");
    let services: kube::Api<sluice_api::Service> = kube::Api::namespaced(client.clone(), "default");
    let status = sluice_test_support::until("the service Ready on blue", WAIT, async || {
        let status = services.get("shop").await.ok()?.status?;
        sluice_api::conditions::is_true(&status.conditions, "Ready").then_some(status)
    })
    .await
    .expect("Ready");
    assert_eq!(status.latest_created_revision_name.as_deref(), Some("shop-blue"));
    assert_eq!(status.latest_ready_revision_name.as_deref(), Some("shop-blue"));
    let revisions: kube::Api<sluice_api::Revision> = kube::Api::namespaced(client, "default");
    let names: Vec<String> = revisions
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["shop-blue", "shop-green"], "no new revision");
}
