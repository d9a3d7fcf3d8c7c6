use std::collections::BTreeMap;

use super::*;
use crate::store::event::StoredEvent;

fn params(labels: &str) -> WatchParams {
    WatchParams {
        kind: Kind::Route,
        namespace: Some("default".into()),
        labels: LabelSelector::parse(labels).expect("selector"),
        fields: FieldSelector::default(),
        resource_version: None,
        timeout: Duration::from_secs(1),
        bookmarks: false,
        bookmark_interval: Duration::from_secs(1),
        send_initial_events: false,
        table: false,
    }
}

fn modified(prev: &[(&str, &str)], now: &[(&str, &str)]) -> Event {
    let labels: BTreeMap<String, String> = now.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Event {
        rv: 5,
        stored: StoredEvent {
            event_type: EventType::Modified,
            resource: "routes".into(),
            object: json!({"metadata": {"name": "r", "namespace": "default", "labels": labels}}),
            prev_labels: Some(prev.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        },
    }
}

#[test]
fn a_table_watch_sends_one_row_tables_with_the_columns_first_only() {
    let p = WatchParams { table: true, ..params("") };
    let obj = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route",
                     "metadata": {"name": "r", "namespace": "default", "resourceVersion": "7"},
                     "status": {"url": "http://r.default.localhost"}});
    let mut sent = false;
    let first = shaped(&p, obj.clone(), &mut sent);
    assert_eq!(first["kind"], "Table");
    let headers: Vec<&str> =
        first["columnDefinitions"].as_array().expect("columns").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(headers.first(), Some(&"Name"));
    assert!(headers.contains(&"URL"), "the CRD's printer columns: {headers:?}");
    assert_eq!(first["rows"][0]["cells"][0], "r");
    assert_eq!(first["metadata"]["resourceVersion"], "7");
    let second = shaped(&p, obj.clone(), &mut sent);
    assert_eq!(second["columnDefinitions"], json!([]), "definitions come once");
    assert_eq!(second["rows"][0]["cells"][0], "r");
    assert_eq!(shaped(&params(""), obj.clone(), &mut false), obj, "without as=Table the object itself");
}

#[test]
fn label_changes_enter_and_leave_the_selection() {
    let p = params("app=a");
    assert_eq!(translate(&p, &modified(&[("app", "a")], &[("app", "a")])).map(|t| t.0), Some("MODIFIED"));
    assert_eq!(translate(&p, &modified(&[("app", "b")], &[("app", "a")])).map(|t| t.0), Some("ADDED"));
    assert_eq!(translate(&p, &modified(&[("app", "a")], &[("app", "b")])).map(|t| t.0), Some("DELETED"));
    assert_eq!(translate(&p, &modified(&[("app", "b")], &[("app", "c")])), None);
}

#[test]
fn timeout_seconds_is_parsed_strictly_and_clamped() {
    assert_eq!(timeout(None).expect("absent"), DEFAULT_TIMEOUT);
    assert_eq!(timeout(Some("")).expect("empty"), DEFAULT_TIMEOUT);
    assert_eq!(timeout(Some("0")).expect("zero"), DEFAULT_TIMEOUT);
    assert_eq!(timeout(Some("290")).expect("kube-rs"), Duration::from_secs(290));
    for huge in ["9223372036854775807", "18446744073709551615", "99999999999999999999999999"] {
        assert_eq!(timeout(Some(huge)).expect(huge), MAX_TIMEOUT, "{huge}");
    }
    for bad in ["abc", "-1", "+5", "1.5", " 5", "5s", "-9223372036854775808"] {
        let e = timeout(Some(bad)).expect_err(bad);
        assert_eq!((e.code, e.reason), (400, "BadRequest"), "{bad}");
    }
}

#[test]
fn other_kinds_and_namespaces_are_filtered() {
    let p = params("");
    let mut e = modified(&[], &[]);
    e.stored.resource = "services".into();
    assert_eq!(translate(&p, &e), None);
    let mut e = modified(&[], &[]);
    e.stored.object["metadata"]["namespace"] = json!("other");
    assert_eq!(translate(&p, &e), None);
}

/// One write of the ordering property test: put (create or relabel) or delete `ns/name`.
#[derive(Clone, Debug)]
enum Op {
    Put { ns: usize, name: usize, app: usize },
    Delete { ns: usize, name: usize },
}

const NAMESPACES: [&str; 2] = ["default", "other"];
const APPS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..2usize, 0..4usize, 0..3usize).prop_map(|(ns, name, app)| Op::Put { ns, name, app }),
        1 => (0..2usize, 0..4usize).prop_map(|(ns, name)| Op::Delete { ns, name }),
    ]
}

/// Applies `op` to the store as a client would (read, change, replace on the version read).
fn write(store: &crate::store::Store, op: &Op) {
    use crate::store::{DeleteOptions, meta::UpdateMode};
    match *op {
        Op::Put { ns, name, app } => {
            let (ns, name) = (NAMESPACES[ns], format!("r{name}"));
            match store.get(Kind::Route, ns, &name).expect("get") {
                None => {
                    let obj = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route",
                        "metadata": {"name": name, "namespace": ns, "labels": {"app": APPS[app]}},
                        "spec": {"traffic": [{"revisionName": "x", "percent": 100}]}});
                    store.create(Kind::Route, obj, false).expect("create");
                }
                Some(stored) => {
                    let mut body = stored.clone();
                    body["metadata"]["labels"]["app"] = json!(APPS[app]);
                    body["spec"]["traffic"][0]["revisionName"] = json!(format!("x{}", store.latest()));
                    let next = meta::merge_update(&stored, body, UpdateMode::Main);
                    store.replace(Kind::Route, next, meta::resource_version(&stored), false).expect("replace");
                }
            }
        }
        Op::Delete { ns, name } => {
            let (ns, name) = (NAMESPACES[ns], format!("r{name}"));
            if store.get(Kind::Route, ns, &name).expect("get").is_some() {
                store.delete(Kind::Route, ns, &name, &DeleteOptions::default()).expect("delete");
            }
        }
    }
}

/// The objects `p` selects now, by `namespace/name`, with their resource versions.
fn selected(store: &crate::store::Store, p: &WatchParams) -> BTreeMap<String, String> {
    let req = ListRequest { namespace: p.namespace.as_deref(), ..Default::default() };
    let page = store.list(Kind::Route, &req, |o| p.labels.matches(&meta::labels(o))).expect("list");
    page.items
        .iter()
        .map(|o| (format!("{}/{}", meta::namespace(o), meta::name(o)), meta::resource_version(o).to_string()))
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// The informer's contract, with writes racing the watch: the objects selected at the
    /// watch's start (or its initial ADDED events), with its events applied in order, are
    /// exactly the objects selected at the end; every event's resourceVersion is above the
    /// start and above the one before it; bookmarks never go back.
    #[test]
    fn a_watch_sees_every_change_once_in_resource_version_order(
        before in proptest::collection::vec(op(), 0..12),
        during in proptest::collection::vec((op(), 0..3usize), 1..16),
        from_version in proptest::bool::ANY,
        one_namespace in proptest::bool::ANY,
        selector in proptest::sample::select(vec!["", "app=a", "app!=b"]),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = std::sync::Arc::new(crate::store::Store::open(&dir.path().join("db.redb"), 10_000).expect("store"));
        for op in &before {
            write(&store, op);
        }
        let p = WatchParams {
            namespace: one_namespace.then(|| "default".to_string()),
            resource_version: from_version.then(|| store.latest()).filter(|rv| *rv > 0),
            timeout: Duration::from_secs(30),
            bookmarks: true,
            bookmark_interval: Duration::from_millis(2),
            send_initial_events: !from_version,
            ..params(selector)
        };
        let start = p.resource_version.unwrap_or(0);
        let mut cache = if p.resource_version.is_some() { selected(&store, &p) } else { BTreeMap::new() };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (end, seen) = runtime.block_on(async {
            use tokio_stream::StreamExt;
            let limits = BufferLimits { events: 10_000, bytes: 64 << 20, stall: Duration::from_secs(5) };
            let (out, mut lines) = outbox::outbox(limits);
            let (task_store, task_p) = (store.clone(), p.clone());
            let task = tokio::spawn(async move { follow(&task_store, &task_p, &out).await });
            // Writes interleave with the watch: it runs whenever the writer yields.
            for (op, yields) in &during {
                write(&store, op);
                for _ in 0..*yields {
                    tokio::task::yield_now().await;
                }
            }
            let end = store.latest();
            let mut seen = Vec::new();
            // Read until a bookmark says the watch has read everything written.
            while let Some(line) = tokio::time::timeout(Duration::from_secs(10), lines.next()).await.expect("the watch goes on") {
                let event: Value = serde_json::from_slice(&line).expect("a JSON line");
                let rv: u64 = meta::resource_version(&event["object"]).parse().expect("a version");
                let kind = event["type"].as_str().unwrap_or_default().to_string();
                let done = kind == "BOOKMARK" && rv >= end;
                seen.push((kind, rv, event["object"].clone()));
                if done {
                    break;
                }
            }
            drop(lines);
            let _ = task.await;
            (end, seen)
        });
        // Without a version, the watch opens with the current objects as ADDED events (in
        // store order, each at its own older version) closed by the initial-events bookmark.
        let mut initial = p.resource_version.is_none();
        let mut last = start;
        for (kind, rv, obj) in &seen {
            let key = format!("{}/{}", meta::namespace(obj), meta::name(obj));
            match kind.as_str() {
                "BOOKMARK" => {
                    proptest::prop_assert!(*rv >= last, "bookmark at {rv} after an event at {last}");
                    initial = false;
                    last = *rv;
                }
                "ADDED" if initial => {
                    cache.insert(key, rv.to_string());
                }
                "ADDED" | "MODIFIED" | "DELETED" => {
                    proptest::prop_assert!(*rv > last, "{kind} at {rv} after {last}: out of order or repeated");
                    last = *rv;
                    if kind == "DELETED" {
                        cache.remove(&key);
                    } else {
                        cache.insert(key, rv.to_string());
                    }
                }
                other => proptest::prop_assert!(false, "unexpected event {other}"),
            }
        }
        proptest::prop_assert!(!initial, "the initial events end with a bookmark");
        proptest::prop_assert!(end >= last);
        proptest::prop_assert_eq!(cache, selected(&store, &p), "list + watch must equal the selection at the end");
    }
}

/// A watch whose objects do not change while the store is written without pause (other
/// namespaces here; other kinds alike) still gets a bookmark every interval, at the version the
/// log has reached: resuming from it after a reconnect must not fall off the log's history.
#[test]
fn bookmarks_keep_coming_while_the_store_is_busy_with_other_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(crate::store::Store::open(&dir.path().join("db.redb"), 10_000).expect("store"));
    let start = store.latest();
    let p = WatchParams {
        resource_version: Some(start).filter(|rv| *rv > 0),
        timeout: Duration::from_secs(60),
        bookmarks: true,
        bookmark_interval: Duration::from_millis(40),
        ..params("")
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let bookmarked = runtime.block_on(async {
        use tokio_stream::StreamExt;
        let limits = BufferLimits { events: 10_000, bytes: 64 << 20, stall: Duration::from_secs(5) };
        let (out, mut lines) = outbox::outbox(limits);
        let (task_store, task_p) = (store.clone(), p.clone());
        let watch = tokio::spawn(async move { follow(&task_store, &task_p, &out).await });
        let writer_store = store.clone();
        // A write every millisecond, in a namespace the watch does not select.
        let writer = tokio::spawn(async move {
            for i in 0.. {
                let obj = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route",
                    "metadata": {"name": format!("r{i}"), "namespace": "elsewhere"},
                    "spec": {"traffic": [{"revisionName": "x", "percent": 100}]}});
                writer_store.create(Kind::Route, obj, false).expect("create");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next().await {
                let event: Value = serde_json::from_slice(&line).expect("a JSON line");
                assert_eq!(event["type"], "BOOKMARK", "the watch selects none of what is written");
                let rv: u64 = meta::resource_version(&event["object"]).parse().expect("a version");
                if rv > start {
                    return Some(rv);
                }
            }
            None
        })
        .await;
        writer.abort();
        watch.abort();
        first
    });
    let rv = bookmarked.expect("a bookmark while the store was busy").expect("the watch went on");
    assert!(rv > start, "the bookmark is at the version the log reached");
}
