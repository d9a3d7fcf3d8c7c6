//! The owner index: a cascade finds exactly the dependents through it, it always matches
//! one rebuilt from the objects, and a store written without it (or by an older build after
//! it was written) is indexed again when opened.

use std::path::Path;

use redb::{Database, ReadableDatabase};

use super::*;

fn svc(name: &str, namespace: &str) -> Value {
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace}, "spec": {}})
}

/// A Configuration named `name` in `namespace` owned by `owners`.
fn owned(name: &str, namespace: &str, owners: &[&Value]) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|o| json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "name": meta::name(o), "uid": meta::uid(o)}))
        .collect();
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
           "metadata": {"name": name, "namespace": namespace, "ownerReferences": refs}, "spec": {}})
}

fn names(store: &Store, kind: Kind, namespace: &str) -> Vec<String> {
    let req = ListRequest { namespace: Some(namespace), ..Default::default() };
    store.list(kind, &req, |_| true).expect("list").items.iter().map(|o| meta::name(o).to_string()).collect()
}

/// Both indexes as stored, and as rebuilt from the objects (the store closed and opened
/// again without them).
fn stored_and_rebuilt(path: &Path, store: Store) -> (Indexes, Indexes, Store) {
    drop(store);
    let db = Database::create(path).expect("open db");
    let stored = dump(&db);
    let txn = db.begin_write().expect("write");
    index::forget(&txn).expect("forget");
    txn.commit().expect("commit");
    drop(db);
    let store = Store::open(path, DEFAULT_HISTORY).expect("reopen");
    drop(store);
    let db = Database::create(path).expect("open db");
    let rebuilt = dump(&db);
    drop(db);
    (stored, rebuilt, Store::open(path, DEFAULT_HISTORY).expect("reopen"))
}

type Indexes = (index::Rows, index::Rows);

fn dump(db: &Database) -> Indexes {
    index::dump(&db.begin_read().expect("read")).expect("dump")
}

#[test]
fn a_cascade_deletes_exactly_the_dependents_of_the_owner_in_its_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    store.create(Kind::Namespace, ns, false).expect("namespace");
    let a = store.create(Kind::Service, svc("a", "default"), false).expect("a");
    let b = store.create(Kind::Service, svc("b", "default"), false).expect("b");
    for i in 0..50 {
        store.create(Kind::Configuration, owned(&format!("a-{i:02}"), "default", &[&a]), false).expect("a's");
        store.create(Kind::Configuration, owned(&format!("b-{i:02}"), "default", &[&b]), false).expect("b's");
    }
    store.create(Kind::Configuration, owned("both", "default", &[&a, &b]), false).expect("both");
    // One of a's, owned by another of a's: kept by b, the second owner.
    let a0 = store.get(Kind::Configuration, "default", "a-00").expect("get").expect("a-00");
    store.create(Kind::Configuration, owned("a0-and-b", "default", &[&a0, &b]), false).expect("a0-and-b");
    store.create(Kind::Configuration, owned("a0-only", "default", &[&a0]), false).expect("a0-only");
    // Named from another namespace (beside an owner there): not a dependent.
    let local = store.create(Kind::Service, svc("local", "team-a"), false).expect("local");
    store.create(Kind::Configuration, owned("elsewhere", "team-a", &[&a, &local]), false).expect("elsewhere");
    let before = store.latest();

    store.delete(Kind::Service, "default", "a", &DeleteOptions::default()).expect("delete a");

    let mut left = names(&store, Kind::Configuration, "default");
    left.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("b-{i:02}")).collect();
    want.extend(["a0-and-b".to_string(), "both".to_string()]);
    want.sort();
    assert_eq!(left, want);
    assert_eq!(names(&store, Kind::Configuration, "team-a"), ["elsewhere"]);
    // One event per object removed: a, its 50, and a0-only through a-00.
    let removed = store.events_after(before, 1000).expect("events").events.len();
    assert_eq!(removed, 1 + 50 + 1);
}

#[test]
fn the_index_written_beside_each_change_is_the_one_rebuilt_from_the_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let store = Store::open(&path, DEFAULT_HISTORY).expect("open");
    let a = store.create(Kind::Service, svc("a", "default"), false).expect("a");
    let b = store.create(Kind::Service, svc("b", "default"), false).expect("b");
    for i in 0..5 {
        store.create(Kind::Configuration, owned(&format!("c{i}"), "default", &[&a]), false).expect("c");
    }
    // Owners changed by updates: one added, one replaced, all removed.
    for (name, owners) in [("c0", vec![&a, &b]), ("c1", vec![&b]), ("c2", vec![])] {
        let stored = store.get(Kind::Configuration, "default", name).expect("get").expect("stored");
        let mut body = owned(name, "default", &owners);
        body["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
        let next = meta::merge_update(&stored, body, UpdateMode::Main);
        store.replace(Kind::Configuration, next, meta::resource_version(&stored), false).expect("update");
    }
    store.delete(Kind::Configuration, "default", "c3", &DeleteOptions::default()).expect("delete c3");
    let orphan = DeleteOptions { propagation: Propagation::Orphan, ..Default::default() };
    store.delete(Kind::Service, "default", "b", &orphan).expect("orphan b's");

    let (stored, rebuilt, store) = stored_and_rebuilt(&path, store);
    assert_eq!(stored, rebuilt);
    let (a_uid, b_uid) = (meta::uid(&a), meta::uid(&b));
    assert!(stored.0.iter().any(|(owner, key)| owner == a_uid && key == "configurations/default/c0"), "{stored:?}");
    assert!(!stored.0.iter().any(|(owner, _)| owner == b_uid), "b orphaned its dependents: {stored:?}");

    store.delete(Kind::Service, "default", "a", &DeleteOptions::default()).expect("delete a");
    assert_eq!(names(&store, Kind::Configuration, "default"), ["c1", "c2"]);
    let (stored, rebuilt, _) = stored_and_rebuilt(&path, store);
    assert_eq!(stored, rebuilt);
    assert!(stored.0.is_empty(), "nothing owns anything: {stored:?}");
}

#[test]
fn a_store_written_without_the_index_is_indexed_when_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let store = Store::open(&path, DEFAULT_HISTORY).expect("open");
    let s = store.create(Kind::Service, svc("s", "default"), false).expect("s");
    store.create(Kind::Configuration, owned("dep", "default", &[&s]), false).expect("dep");
    drop(store);
    // As a build before the index left it.
    let db = Database::create(&path).expect("db");
    let txn = db.begin_write().expect("write");
    index::forget(&txn).expect("forget");
    txn.commit().expect("commit");
    drop(db);

    let store = Store::open(&path, DEFAULT_HISTORY).expect("reopen");
    store.delete(Kind::Service, "default", "s", &DeleteOptions::default()).expect("delete");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_none(), "cascaded via the rebuilt index");
}

#[test]
fn objects_an_older_build_wrote_after_the_index_are_indexed_when_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let store = Store::open(&path, DEFAULT_HISTORY).expect("open");
    let s = store.create(Kind::Service, svc("s", "default"), false).expect("s");
    drop(store);
    // An older build writes an object (and the version counter) but not the index.
    let db = Database::create(&path).expect("db");
    let txn = db.begin_write().expect("write");
    {
        let mut dep = owned("dep", "default", &[&s]);
        meta::prepare_create(&mut dep, "dep-uid", "2026-01-01T00:00:00Z", true);
        let mut objects = txn.open_table(OBJECTS).expect("objects");
        let bytes = serde_json::to_vec(&dep).expect("json");
        objects.insert("configurations/default/dep", bytes.as_slice()).expect("insert");
        let mut counters = txn.open_table(COUNTERS).expect("counters");
        let rv = counters.get(RESOURCE_VERSION).expect("get").map(|v| v.value()).unwrap_or(0);
        counters.insert(RESOURCE_VERSION, rv + 1).expect("rv");
    }
    txn.commit().expect("commit");
    drop(db);

    let store = Store::open(&path, DEFAULT_HISTORY).expect("reopen");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_some());
    store.delete(Kind::Service, "default", "s", &DeleteOptions::default()).expect("delete");
    assert!(store.get(Kind::Configuration, "default", "dep").expect("get").is_none(), "cascaded via the rebuilt index");
}
