//! Durability: every write acknowledged before a `kill -9` is intact after a restart, and a watch
//! resumes across the restart from the last version it saw.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use sluice_test_support::{Sluice, SluiceOptions, eventually};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn api(sluice: &Sluice) -> Api<ConfigMap> {
    Api::namespaced(sluice.kube_client().expect("client"), "default")
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value, "pad": "x".repeat(512)}}))
        .expect("configmap")
}

fn restart(state_dir: &std::path::Path) -> Sluice {
    Sluice::start_with(
        BIN,
        SluiceOptions {
            state_dir: Some(state_dir.to_path_buf()),
            args: vec!["--no-controllers".into()],
            ..Default::default()
        },
    )
    .expect("restart sluice")
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_restart() {
    let mut sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let _keep = sluice.keep_state_dir();
    let state_dir = sluice.state_dir.clone();
    let cms = api(&sluice);
    // name -> the value of its last acknowledged write
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    // The write in flight when the server died: it may or may not have landed.
    let pending: Arc<Mutex<Option<(String, String)>>> = Arc::default();

    let writer = tokio::spawn({
        let (cms, acked, pending) = (cms.clone(), acked.clone(), pending.clone());
        async move {
            for i in 0u32.. {
                let name = format!("cm-{i}");
                *pending.lock().expect("lock") = Some((name.clone(), format!("created-{i}")));
                if let Err(e) = cms.create(&PostParams::default(), &config_map(&name, &format!("created-{i}"))).await {
                    eprintln!("writer stopped at {name}: {e}");
                    return;
                }
                acked.lock().expect("lock").insert(name, format!("created-{i}"));
                if i > 0 && i % 3 == 0 {
                    let prev = format!("cm-{}", i - 1);
                    let patch = json!({"data": {"v": format!("patched-{i}")}});
                    *pending.lock().expect("lock") = Some((prev.clone(), format!("patched-{i}")));
                    if cms.patch(&prev, &PatchParams::default(), &Patch::Merge(&patch)).await.is_err() {
                        return;
                    }
                    acked.lock().expect("lock").insert(prev, format!("patched-{i}"));
                }
            }
        }
    });
    eventually("100 acknowledged writes", Duration::from_secs(60), || {
        (acked.lock().expect("lock").len() >= 100).then_some(())
    })
    .await
    .expect("writes flowing");
    sluice.kill9().expect("kill -9");
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("writer stops once the server is gone")
        .expect("writer task");

    let sluice = restart(&state_dir);
    let cms = api(&sluice);
    let stored: BTreeMap<String, String> = cms
        .list(&Default::default())
        .await
        .expect("list after restart")
        .items
        .into_iter()
        .map(|cm| (cm.metadata.name.unwrap_or_default(), cm.data.and_then(|d| d.get("v").cloned()).unwrap_or_default()))
        .collect();
    let acked = acked.lock().expect("lock").clone();
    let pending = pending.lock().expect("lock").clone();
    for (name, value) in &acked {
        let got = stored.get(name);
        let in_flight = pending.as_ref().filter(|(n, _)| n == name).map(|(_, v)| v);
        assert!(
            got == Some(value) || (got.is_some() && got == in_flight),
            "acknowledged write of {name} lost or stale after kill -9: stored {got:?}, acknowledged {value:?}, in flight {in_flight:?}"
        );
    }
    // The store keeps working after the crash.
    cms.create(&PostParams::default(), &config_map("after-restart", "ok")).await.expect("write after restart");
}

#[tokio::test]
async fn a_watch_resumes_across_a_restart() {
    let mut sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let _keep = sluice.keep_state_dir();
    let state_dir = sluice.state_dir.clone();
    let cms = api(&sluice);
    let a = cms.create(&PostParams::default(), &config_map("a", "1")).await.expect("a");
    let mut stream =
        cms.watch(&WatchParams::default(), &a.metadata.resource_version.expect("rv")).await.expect("watch").boxed();
    cms.create(&PostParams::default(), &config_map("b", "2")).await.expect("b");
    let last_seen =
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await.expect("event").expect("ok") {
            Some(WatchEvent::Added(cm)) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("b"));
                cm.metadata.resource_version.expect("rv")
            }
            other => panic!("expected ADDED b, got {other:?}"),
        };
    sluice.kill9().expect("kill -9");
    drop(stream);

    let sluice = restart(&state_dir);
    let cms = api(&sluice);
    cms.create(&PostParams::default(), &config_map("c", "3")).await.expect("c");
    cms.patch("a", &PatchParams::default(), &Patch::Merge(&json!({"data": {"v": "4"}}))).await.expect("patch a");
    let mut stream = cms.watch(&WatchParams::default(), &last_seen).await.expect("watch after restart").boxed();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await.expect("event").expect("ok") {
            Some(WatchEvent::Added(cm)) => seen.push(format!("ADDED {}", cm.metadata.name.unwrap_or_default())),
            Some(WatchEvent::Modified(cm)) => seen.push(format!("MODIFIED {}", cm.metadata.name.unwrap_or_default())),
            Some(WatchEvent::Bookmark(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED c", "MODIFIED a"]);
}
