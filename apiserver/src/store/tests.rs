use serde_json::{Value, json};
use sluice_api::Kind;

use super::event::EventType;
use super::meta::{self, UpdateMode};
use super::*;

mod faults;
mod owners;

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("db.redb"), DEFAULT_HISTORY).expect("open store")
}

fn route(name: &str) -> Value {
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
           "spec": {"traffic": [{"revisionName": "a", "percent": 100}]}})
}

fn update(store: &Store, kind: Kind, stored: &Value, f: impl FnOnce(&mut Value)) -> Result<Value, StoreError> {
    let mut body = stored.clone();
    f(&mut body);
    let next = meta::merge_update(stored, body, UpdateMode::Main);
    store.replace(kind, next, meta::resource_version(stored), false)
}

#[test]
fn create_fills_metadata_and_rejects_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let r = store.create(Kind::Route, route("r"), false).expect("create");
    assert!(!meta::uid(&r).is_empty());
    assert_eq!(meta::generation(&r), 1);
    assert_eq!(meta::resource_version(&r), "1");
    assert!(matches!(store.create(Kind::Route, route("r"), false), Err(StoreError::AlreadyExists { .. })));
    assert_eq!(store.latest(), 1, "a failed create leaves no trace");
}

#[test]
fn stale_resource_version_is_rejected_with_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let v1 = store.create(Kind::Route, route("r"), false).expect("create");
    let v2 = update(&store, Kind::Route, &v1, |o| o["spec"]["traffic"][0]["percent"] = json!(50)).expect("update");
    assert_eq!(meta::generation(&v2), 2);
    assert_ne!(meta::resource_version(&v1), meta::resource_version(&v2));
    let stale = update(&store, Kind::Route, &v1, |o| o["spec"] = json!({}));
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
    let stored = store.get(Kind::Route, "default", "r").expect("get").expect("exists");
    assert_eq!(stored["spec"]["traffic"][0]["percent"], 50);
}

#[test]
fn metadata_only_change_keeps_generation_and_no_op_is_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let v1 = store.create(Kind::Route, route("r"), false).expect("create");
    let v2 = update(&store, Kind::Route, &v1, |o| o["metadata"]["labels"]["x"] = json!("y")).expect("update");
    assert_eq!(meta::generation(&v2), 1);
    let rv = store.latest();
    let v3 = update(&store, Kind::Route, &v2, |_| {}).expect("no-op");
    assert_eq!(meta::resource_version(&v3), meta::resource_version(&v2));
    assert_eq!(store.latest(), rv);
}

#[test]
fn status_update_leaves_spec_and_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let v1 = store.create(Kind::Route, route("r"), false).expect("create");
    let mut body = v1.clone();
    body["spec"] = json!({"traffic": []});
    body["status"] = json!({"observedGeneration": 1});
    let next = meta::merge_update(&v1, body, UpdateMode::Status);
    let v2 = store.replace(Kind::Route, next, meta::resource_version(&v1), false).expect("status");
    assert_eq!(v2["spec"], v1["spec"]);
    assert_eq!(v2["status"]["observedGeneration"], 1);
    assert_eq!(meta::generation(&v2), 1);
}

#[test]
fn deleting_an_owner_deletes_what_it_owns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let owner = store
        .create(Kind::Service, json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {}}), false)
        .expect("svc");
    let owned = |name: &str, uids: Vec<&str>| {
        let refs: Vec<Value> = uids
            .iter()
            .map(|u| json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "s", "uid": u}))
            .collect();
        json!({"metadata": {"name": name, "namespace": "default", "ownerReferences": refs}, "spec": {}})
    };
    store.create(Kind::Configuration, owned("s", vec![meta::uid(&owner)]), false).expect("cfg");
    let cfg = store.get(Kind::Configuration, "default", "s").expect("get").expect("cfg");
    // A revision owned by the configuration: deleted transitively.
    store.create(Kind::Revision, owned("s-00001", vec![meta::uid(&cfg)]), false).expect("rev");
    // Another owner that still exists keeps this one alive.
    let other = store.create(Kind::Route, route("other"), false).expect("other");
    store.create(Kind::Route, owned("shared", vec![meta::uid(&owner), meta::uid(&other)]), false).expect("shared");

    let deleted = store.delete(Kind::Service, "default", "s", &DeleteOptions::default()).expect("delete");
    assert!(matches!(deleted, Deleted::Removed(_)));
    assert!(store.get(Kind::Configuration, "default", "s").expect("get").is_none());
    assert!(store.get(Kind::Revision, "default", "s-00001").expect("get").is_none());
    assert!(store.get(Kind::Route, "default", "shared").expect("get").is_some());
}

#[test]
fn orphan_propagation_keeps_dependents_without_the_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let owner = store
        .create(Kind::Configuration, json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {}}), false)
        .expect("cfg");
    let dep = json!({"metadata": {"name": "c-00001", "namespace": "default",
        "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": "c", "uid": meta::uid(&owner)}]}, "spec": {}});
    store.create(Kind::Revision, dep, false).expect("rev");
    let opts = DeleteOptions { propagation: Propagation::Orphan, ..Default::default() };
    store.delete(Kind::Configuration, "default", "c", &opts).expect("delete");
    let rev = store.get(Kind::Revision, "default", "c-00001").expect("get").expect("kept");
    assert!(meta::owner_uids(&rev).is_empty());
}

#[test]
fn finalizers_hold_a_delete_until_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut r = route("r");
    r["metadata"]["finalizers"] = json!(["example.com/hold"]);
    store.create(Kind::Route, r, false).expect("create");
    let marked = match store.delete(Kind::Route, "default", "r", &DeleteOptions::default()).expect("delete") {
        Deleted::Pending(o) => o,
        other => panic!("expected pending, got {other:?}"),
    };
    assert!(meta::is_deleting(&marked));
    let refused =
        update(&store, Kind::Route, &marked, |o| o["metadata"]["finalizers"] = json!(["example.com/hold", "x/y"]));
    assert!(matches!(refused, Err(StoreError::Invalid { .. })), "{refused:?}");
    update(&store, Kind::Route, &marked, |o| o["metadata"]["finalizers"] = json!([])).expect("release");
    assert!(store.get(Kind::Route, "default", "r").expect("get").is_none());
}

#[test]
fn delete_preconditions_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store.create(Kind::Route, route("r"), false).expect("create");
    let opts = DeleteOptions { uid: Some("nope".into()), ..Default::default() };
    assert!(matches!(store.delete(Kind::Route, "default", "r", &opts), Err(StoreError::Conflict { .. })));
    assert!(store.get(Kind::Route, "default", "r").expect("get").is_some());
}

#[test]
fn dry_run_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let r = store.create(Kind::Route, route("r"), true).expect("dry run");
    assert!(!meta::uid(&r).is_empty());
    assert!(store.get(Kind::Route, "default", "r").expect("get").is_none());
    assert_eq!(store.latest(), 0);
}

#[test]
fn events_replay_every_change_in_order_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(&dir);
        let v1 = store.create(Kind::Route, route("a"), false).expect("a");
        update(&store, Kind::Route, &v1, |o| o["spec"]["traffic"][0]["percent"] = json!(10)).expect("mod");
        store.delete(Kind::Route, "default", "a", &DeleteOptions::default()).expect("del");
    }
    let store = open(&dir);
    assert_eq!(store.latest(), 3);
    let page = store.events_after(0, 100).expect("events");
    let kinds: Vec<(u64, EventType)> = page.events.iter().map(|e| (e.rv, e.stored.event_type)).collect();
    assert_eq!(kinds, vec![(1, EventType::Added), (2, EventType::Modified), (3, EventType::Deleted)]);
    assert_eq!(page.events[1].stored.prev_labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("a"));
    assert_eq!(store.events_after(1, 100).expect("events").events.len(), 2);
}

#[test]
fn trimmed_history_answers_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb"), 10).expect("open");
    for i in 0..30 {
        store.create(Kind::Route, route(&format!("r{i}")), false).expect("create");
    }
    assert!(matches!(store.events_after(1, 100), Err(StoreError::Gone { .. })));
    let tail = store.events_after(25, 100).expect("recent history kept");
    assert_eq!(tail.events.len(), 5);
}

#[test]
fn list_pages_with_continue_and_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    for i in 0..5 {
        store.create(Kind::Route, route(&format!("r{i}")), false).expect("create");
    }
    let mut other = route("x");
    other["metadata"]["namespace"] = json!("other");
    store.create(Kind::Route, other, false).expect("create");

    let req = ListRequest { namespace: Some("default"), limit: Some(2), ..Default::default() };
    let first = store.list(Kind::Route, &req, |_| true).expect("list");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.remaining, 3);
    let after = first.continue_after.expect("more pages");
    let req =
        ListRequest { namespace: Some("default"), limit: Some(10), start_after: Some(&after), ..Default::default() };
    let rest = store.list(Kind::Route, &req, |_| true).expect("list");
    let names: Vec<&str> = rest.items.iter().map(meta::name).collect();
    assert_eq!(names, vec!["r2", "r3", "r4"]);
    assert!(rest.continue_after.is_none());

    let all = store.list(Kind::Route, &ListRequest::default(), |o| meta::name(o) != "r0").expect("list");
    assert_eq!(all.items.len(), 5);
}

#[test]
fn a_list_by_namespace_and_labels_returns_what_reading_every_object_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    // "default2" sorts right after "default/": a prefix that forgot the '/' would take it in.
    for (i, ns) in ["default", "default2", "other", "default"].into_iter().enumerate() {
        for (j, labels) in
            [json!({"app": "a", "tier": "web"}), json!({"app": "b"}), json!(null), json!({"app": "a", "n": 1})]
                .into_iter()
                .enumerate()
        {
            let mut obj = route(&format!("r{i}-{j}"));
            obj["metadata"]["namespace"] = json!(ns);
            obj["metadata"]["labels"] = labels;
            store.create(Kind::Route, obj, false).expect("create");
        }
    }
    let namespaces = [None, Some("default"), Some("default2"), Some("defaul"), Some("none")];
    let selectors = ["", "app=a", "app!=a", "tier in (web,db)", "!tier", "n", "app"];
    for (ns, text) in namespaces.into_iter().flat_map(|ns| selectors.map(|s| (ns, s))) {
        let selector = crate::selector::LabelSelector::parse(text).expect("selector");
        // As every list did before: each object of the kind read whole, then filtered.
        let wanted = |o: &Value| ns.is_none_or(|n| meta::namespace(o) == n) && selector.matches(&meta::labels(o));
        for limit in [None, Some(2)] {
            let old = store.list(Kind::Route, &ListRequest { limit, ..Default::default() }, wanted).expect("list");
            let req = ListRequest { namespace: ns, labels: Some(&selector), limit, ..Default::default() };
            let new = store.list(Kind::Route, &req, |_| true).expect("list");
            assert_eq!(new.items, old.items, "namespace {ns:?}, selector {text:?}, limit {limit:?}");
            assert_eq!((new.remaining, new.continue_after.is_some()), (old.remaining, old.continue_after.is_some()));
        }
    }
    let selector = crate::selector::LabelSelector::parse("app=a").expect("selector");
    let req = ListRequest { namespace: Some("default"), labels: Some(&selector), ..Default::default() };
    let names: Vec<String> = store
        .list(Kind::Route, &req, |_| true)
        .expect("list")
        .items
        .iter()
        .map(|o| meta::name(o).to_string())
        .collect();
    assert_eq!(names, ["r0-0", "r0-3", "r3-0", "r3-3"], "a label that is not a string does not hide the others");
}

#[test]
fn a_bounded_create_removes_the_least_recently_written_of_its_namespace_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let event = |name: &str, ns: &str| json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns}, "reason": "R"});
    for name in ["e1", "e2", "e3"] {
        store.create_bounded(Kind::Event, event(name, "default"), false, 3).expect("create");
    }
    store.create_bounded(Kind::Event, event("o1", "other"), false, 3).expect("create");
    // e1 written again: now e2 is the least recently written.
    let e1 = store.get(Kind::Event, "default", "e1").expect("get").expect("e1");
    update(&store, Kind::Event, &e1, |e| e["reason"] = json!("again")).expect("update");
    store.create_bounded(Kind::Event, event("a4", "default"), false, 3).expect("create");
    let names = |ns: &str| {
        let req = ListRequest { namespace: Some(ns), ..Default::default() };
        store
            .list(Kind::Event, &req, |_| true)
            .expect("list")
            .items
            .iter()
            .map(|o| meta::name(o).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("default"), ["a4", "e1", "e3"]);
    store.create_bounded(Kind::Event, event("a5", "default"), false, 3).expect("create");
    assert_eq!(names("default"), ["a4", "a5", "e1"], "e3 next");
    assert_eq!(names("other"), ["o1"]);
}

#[test]
fn deleting_a_namespace_deletes_what_it_holds_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    store.create(Kind::Namespace, ns, false).expect("namespace");
    assert!(store.get(Kind::Namespace, "", "team-a").expect("get").is_some(), "cluster-scoped: no namespace");
    let mut inside = route("r");
    inside["metadata"]["namespace"] = json!("team-a");
    store.create(Kind::Route, inside, false).expect("route in team-a");
    store.create(Kind::Route, route("r"), false).expect("route in default");

    store.delete(Kind::Namespace, "", "team-a", &DeleteOptions::default()).expect("delete namespace");
    assert!(store.get(Kind::Route, "team-a", "r").expect("get").is_none(), "its objects go with it");
    assert!(store.get(Kind::Route, "default", "r").expect("get").is_some(), "other namespaces keep theirs");
    let kinds: Vec<(String, String)> = store
        .events_after(0, 100)
        .expect("events")
        .events
        .iter()
        .map(|e| (format!("{:?}", e.stored.event_type), e.stored.object["kind"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(kinds.contains(&("Deleted".into(), "Route".into())), "watchers see the deletion: {kinds:?}");
}

#[test]
fn a_dependent_created_after_its_owner_is_gone_is_collected_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let owner = store.create(Kind::Route, route("owner"), false).expect("owner");
    let dependent = |uid: &str| {
        json!({"metadata": {"name": "dep", "namespace": "default", "ownerReferences": [
            {"apiVersion": "serving.knative.dev/v1", "kind": "Route", "name": "owner", "uid": uid, "controller": true}]},
            "spec": {}})
    };
    store.create(Kind::Configuration, dependent(meta::uid(&owner)), false).expect("owner alive");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_some());
    store.delete(Kind::Route, "default", "owner", &DeleteOptions::default()).expect("delete owner");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_none(), "cascaded");

    // A controller that read the owner just before it went creates the child again: the
    // garbage collector's rule (all owners gone) removes it in the same write.
    let created = store.create(Kind::Configuration, dependent(meta::uid(&owner)), false).expect("accepted");
    assert_eq!(meta::name(&created), "dep");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_none(), "collected");
    // A recreated owner with the same name is another object (another uid).
    store.create(Kind::Route, route("owner"), false).expect("new owner");
    store.create(Kind::Configuration, dependent(meta::uid(&owner)), false).expect("accepted");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_none(), "the old uid owns nothing");
}

/// A file backend that counts `fsync`s (`sync_data`), so a test can see whether a commit
/// reached the disk rather than the page cache.
#[derive(Debug)]
struct CountingBackend {
    file: redb::backends::FileBackend,
    syncs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl redb::StorageBackend for CountingBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }

    fn try_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: std::ops::Bound<u64>, end: std::ops::Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: std::ops::Bound<u64>, end: std::ops::Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.file.query_lock_range(start, end)
    }
}

#[test]
fn every_acknowledged_write_is_fsynced_before_it_returns() {
    assert!(matches!(COMMIT_DURABILITY, Durability::Immediate), "commits must be durable");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let syncs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = syncs.clone();
    let open = move || -> Result<redb::Database, StoreError> {
        let backend = CountingBackend { file: faults::file_backend(&path)?, syncs: counter.clone() };
        Ok(redb::Builder::new().create_with_backend(backend)?)
    };
    let store = Store::with_opener(Box::new(open), DEFAULT_HISTORY).expect("store");
    let mut last = syncs.load(std::sync::atomic::Ordering::SeqCst);
    let r = store.create(Kind::Route, route("r"), false).expect("create");
    let now = syncs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(now > last, "a create returned before any fsync");
    last = now;
    update(&store, Kind::Route, &r, |v| v["metadata"]["labels"]["x"] = json!("y")).expect("update");
    let now = syncs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(now > last, "an update returned before any fsync");
    last = now;
    store.delete(Kind::Route, "default", "r", &DeleteOptions::default()).expect("delete");
    assert!(syncs.load(std::sync::atomic::Ordering::SeqCst) > last, "a delete returned before any fsync");
}

#[test]
fn ensure_namespaces_creates_the_builtin_ones_and_those_objects_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    // An object in a namespace nobody created, as a store from before namespaces had to exist.
    let mut r = route("r");
    r["metadata"]["namespace"] = json!("legacy");
    store.create(Kind::Route, r, false).expect("create");
    store.ensure_namespaces(BUILTIN_NAMESPACES).expect("ensure");
    let names = |s: &Store| {
        let page = s.list(Kind::Namespace, &ListRequest::default(), |_| true).expect("list");
        page.items.iter().map(|n| meta::name(n).to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(&store), ["default", "knative-serving", "legacy"]);
    let rv = store.latest();
    store.ensure_namespaces(BUILTIN_NAMESPACES).expect("again");
    assert_eq!(store.latest(), rv, "nothing to do the second time");
}
