//! kube-rs against the embedded API server: typed CRUD, `kube::runtime::watcher`, and a raw
//! watch that must see every change from many concurrent writers exactly once, in order.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;
use sluice_api::Service;
use sluice_test_support::Sluice;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn client(sluice: &Sluice) -> kube::Client {
    sluice.kube_client().expect("client")
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]}}}
    }))
    .expect("service")
}

#[tokio::test]
async fn kube_rs_creates_lists_watches_patches_and_deletes() {
    let sluice = Sluice::start_api_only(BIN).expect("start sluice");
    let api: Api<Service> = Api::namespaced(client(&sluice), "default");

    // The watcher's initial list must be done before the first write, or the create could be
    // delivered as part of the initial list (InitApply) rather than as a watch event.
    let (listed, init_done) = tokio::sync::oneshot::channel();
    let events = tokio::spawn({
        let api = api.clone();
        async move {
            let mut seen = Vec::new();
            let mut listed = Some(listed);
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_secs(20), stream.try_next()).await.expect("watch event in time")
            {
                match ev {
                    watcher::Event::InitApply(s) if listed.is_some() => {
                        panic!("nothing exists before the watch: {:?}", s.metadata.name)
                    }
                    watcher::Event::InitDone => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                    }
                    watcher::Event::Apply(s) => seen.push(format!("apply:{}", s.metadata.name.unwrap_or_default())),
                    watcher::Event::Delete(s) => {
                        seen.push(format!("delete:{}", s.metadata.name.unwrap_or_default()));
                        return seen;
                    }
                    _ => {}
                }
            }
            seen
        }
    });

    tokio::time::timeout(Duration::from_secs(20), init_done)
        .await
        .expect("the watcher's initial list in time")
        .expect("the watcher task is running");
    let created = api.create(&PostParams::default(), &service("hello")).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    let listed = api.list(&Default::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);
    // Knative's defaults were applied on the way in.
    assert_eq!(listed.items[0].spec.template.spec.timeout_seconds, Some(300));
    assert_eq!(listed.items[0].spec.traffic[0].percent, Some(100));

    let patch = json!({"spec": {"template": {"spec": {"containerConcurrency": 3}}}});
    let patched = api.patch("hello", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(patched.spec.template.spec.container_concurrency, Some(3));

    api.delete("hello", &DeleteParams::default()).await.expect("delete");
    assert!(api.get_opt("hello").await.expect("get").is_none());

    let seen = events.await.expect("watcher task");
    assert_eq!(seen.first().map(String::as_str), Some("apply:hello"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("delete:hello"), "{seen:?}");
}

#[tokio::test]
async fn a_watch_sees_every_change_from_concurrent_writers_exactly_once_in_order() {
    let sluice = Sluice::start_api_only(BIN).expect("start sluice");
    // ConfigMaps: no controller writes to them, so every event is one of ours.
    let routes: Api<ConfigMap> = Api::namespaced(client(&sluice), "default");
    let seed = routes.create(&PostParams::default(), &config_map("seed")).await.expect("seed");
    let start_rv = seed.metadata.resource_version.clone().expect("rv");

    let mut stream = routes.watch(&WatchParams::default().timeout(120), &start_rv).await.expect("watch").boxed();

    const WRITERS: usize = 8;
    const WRITES: usize = 15;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let routes = routes.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("r{w}");
            let mut acked = Vec::new();
            let r = routes.create(&PostParams::default(), &config_map(&name)).await.expect("create");
            acked.push(r.metadata.resource_version.expect("rv"));
            for i in 0..WRITES {
                let patch = json!({"metadata": {"labels": {"step": i.to_string()}}});
                let r = routes.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
                acked.push(r.metadata.resource_version.expect("rv"));
            }
            acked
        }));
    }
    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await.expect("writer").into_iter().map(|rv| rv.parse::<u64>().expect("numeric rv")));
    }
    assert_eq!(acked.len(), WRITERS * (WRITES + 1), "every write got its own resourceVersion");

    let mut seen = Vec::new();
    while seen.len() < acked.len() {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.try_next())
            .await
            .expect("event in time")
            .expect("stream ok");
        match ev {
            Some(WatchEvent::Added(r) | WatchEvent::Modified(r)) => {
                seen.push(r.metadata.resource_version.expect("rv").parse::<u64>().expect("numeric"));
            }
            Some(WatchEvent::Bookmark(_)) => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "events in resourceVersion order: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), acked, "each acknowledged write seen exactly once");
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}
