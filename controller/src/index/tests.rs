use kube::ResourceExt;
use kube::runtime::reflector::{self, Store};
use serde_json::json;
use sluice_api::{Revision, labels};

use super::*;
use crate::route::revision_facets;

/// A revision `name` of namespace `ns`, of configuration `cfg`, controlled by `owner`, whose
/// routes annotation is `routes` (none when empty).
fn rev(ns: &str, name: &str, cfg: &str, owner: &str, routes: &str) -> Revision {
    let annotations = if routes.is_empty() { json!({}) } else { json!({ labels::ROUTES: routes }) };
    serde_json::from_value(json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": name, "namespace": ns, "labels": {labels::CONFIGURATION: cfg},
                     "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": cfg,
                                          "uid": owner, "controller": true},
                                         {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "not-controller"}]},
        "spec": {"containers": [{"image": "x"}]}
    }))
    .expect("revision")
}

/// What the index must answer, from a pass over every cached object.
fn by_filter(store: &Store<Revision>, ns: &str, facet: Facet, value: &str) -> Vec<String> {
    let mut names: Vec<String> = store
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns) && revision_facets(r).contains(&(facet, value.to_string())))
        .map(|r| r.name_any())
        .collect();
    names.sort();
    names
}

/// Every (namespace, facet, value) the test's objects can have, and some they never have.
fn every_question() -> Vec<(&'static str, Facet, &'static str)> {
    let mut out = Vec::new();
    for ns in ["a", "b"] {
        for value in ["c1", "c2", "c3", "u1", "u2", "not-controller", "r1", "r2", "r3", ""] {
            for facet in [Facet::Configuration, Facet::ListedBy, Facet::Owner, Facet::RevisionRef] {
                out.push((ns, facet, value));
            }
        }
    }
    out
}

fn assert_agrees(indexed: &Indexed<Revision>, step: &str) {
    for (ns, facet, value) in every_question() {
        assert_eq!(
            indexed.names(ns, facet, value),
            by_filter(&indexed.store, ns, facet, value),
            "after {step}: {ns} {facet:?} {value:?}"
        );
        let objects: Vec<String> = indexed.with(ns, facet, value).iter().map(|r| r.name_any()).collect();
        assert_eq!(objects, by_filter(&indexed.store, ns, facet, value), "objects after {step}");
    }
}

#[test]
fn the_index_answers_what_a_filter_of_every_cached_object_does_through_updates_deletes_and_relists() {
    let (store, mut writer) = reflector::store::<Revision>();
    let indexed = Indexed::new(store, revision_facets);
    let mut step = |event: watcher::Event<Revision>, what: &str| {
        writer.apply_watcher_event(&event);
        indexed.apply(&event);
        assert_agrees(&indexed, what);
    };
    step(watcher::Event::Init, "init");
    step(watcher::Event::InitApply(rev("a", "x-1", "c1", "u1", "r1")), "first listed");
    step(watcher::Event::InitApply(rev("b", "x-1", "c1", "u1", "r1, r2")), "the same name in another namespace");
    step(watcher::Event::InitDone, "the first list");
    step(watcher::Event::Apply(rev("a", "x-2", "c1", "u1", "")), "a second of c1");
    step(watcher::Event::Apply(rev("a", "y-1", "c2", "u2", "r2,r3")), "another configuration");
    // An update moves the object between keys: old keys must let go of it.
    step(watcher::Event::Apply(rev("a", "x-1", "c3", "u2", "r3")), "labels, owner and routes changed");
    step(watcher::Event::Apply(rev("a", "x-1", "c3", "u2", "")), "routes annotation removed");
    step(watcher::Event::Delete(rev("a", "x-2", "c1", "u1", "")), "a delete");
    step(watcher::Event::Delete(rev("a", "gone", "c1", "u1", "r1")), "a delete of something never seen");
    // A relist replaces everything at its end: what it does not list is gone.
    step(watcher::Event::Init, "a relist begins");
    step(watcher::Event::InitApply(rev("a", "z-1", "c1", "u1", "r1")), "relisting");
    step(watcher::Event::InitDone, "the relist");
    assert!(indexed.names("a", Facet::Configuration, "c3").is_empty(), "x-1 went with the relist");
    assert_eq!(indexed.names("a", Facet::Owner, "u1"), ["z-1"]);
    assert!(indexed.names("a", Facet::Owner, "not-controller").is_empty(), "only the controlling owner");
    assert!(indexed.names("b", Facet::ListedBy, "r2").is_empty());
}

#[test]
fn a_relist_in_progress_leaves_the_index_in_use_whole() {
    let (store, mut writer) = reflector::store::<Revision>();
    let indexed = Indexed::new(store, revision_facets);
    for event in
        [watcher::Event::Init, watcher::Event::InitApply(rev("a", "x-1", "c1", "u1", "")), watcher::Event::InitDone]
    {
        writer.apply_watcher_event(&event);
        indexed.apply(&event);
    }
    indexed.apply(&watcher::Event::Init);
    indexed.apply(&watcher::Event::InitApply(rev("a", "x-2", "c1", "u1", "")));
    assert_eq!(indexed.names("a", Facet::Configuration, "c1"), ["x-1"], "until InitDone");
    indexed.apply(&watcher::Event::InitDone);
    assert_eq!(indexed.names("a", Facet::Configuration, "c1"), ["x-2"]);
}
