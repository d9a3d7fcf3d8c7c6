use serde_json::json;
use sluice_api::conditions::{ConditionStatus, find};
use sluice_api::labels;

use super::*;
use crate::fixtures;

#[test]
fn children_carry_the_service_name_labels_and_owner() {
    let svc = fixtures::service("hello", json!({}));
    let cfg = desired_configuration(&svc);
    assert_eq!(cfg.metadata.name.as_deref(), Some("hello"));
    let l = cfg.metadata.labels.as_ref().expect("labels");
    assert_eq!(l.get(labels::SERVICE).map(String::as_str), Some("hello"));
    assert_eq!(l.get("team").map(String::as_str), Some("a"));
    let a = cfg.metadata.annotations.as_ref().expect("annotations");
    assert!(!a.contains_key(LAST_APPLIED) && a.contains_key("note"));
    let owner = &cfg.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Service", "svc-uid", Some(true)));
    assert_eq!(cfg.spec.template, svc.spec.template);
}

#[test]
fn the_route_labelers_annotation_on_the_configuration_is_kept() {
    // The route reconciler marks the Configuration it routes to; if the Service's desired
    // Configuration dropped that mark, the two would rewrite it in turn forever.
    let svc = fixtures::service("hello", json!({}));
    let mut stored = desired_configuration(&svc);
    stored.metadata.annotations.get_or_insert_default().insert(labels::ROUTES.into(), "hello".into());
    let want = crate::shell::keep_foreign_annotations(&stored, desired_configuration(&svc));
    assert_eq!(want.metadata.annotations, stored.metadata.annotations, "nothing to write");
    // The Service's own annotations still win over what is stored.
    stored.metadata.annotations.get_or_insert_default().insert("note".into(), "edited by hand".into());
    let want = crate::shell::keep_foreign_annotations(&stored, desired_configuration(&svc));
    assert_ne!(want.metadata.annotations, stored.metadata.annotations);
    assert_eq!(
        want.metadata.annotations.as_ref().and_then(|a| a.get(labels::ROUTES)).map(String::as_str),
        Some("hello")
    );
}

#[test]
fn route_targets_without_a_revision_follow_the_configuration() {
    let svc = fixtures::service(
        "hello",
        json!({"traffic": [
        {"latestRevision": true, "percent": 50},
        {"revisionName": "hello-00001", "latestRevision": false, "percent": 50}]}),
    );
    let rt = desired_route(&svc);
    assert_eq!(rt.spec.traffic[0].configuration_name.as_deref(), Some("hello"));
    assert_eq!(rt.spec.traffic[1].configuration_name, None);
    let empty = desired_route(&fixtures::service("x", json!({})));
    assert_eq!(empty.spec.traffic[0].percent, Some(100));
    assert_eq!(empty.spec.traffic[0].configuration_name.as_deref(), Some("x"));
}

#[test]
fn rules_are_copied_with_untagged_targets_following_the_configuration() {
    let svc = fixtures::service(
        "hello",
        json!({"traffic": [{"latestRevision": true, "percent": 100, "tag": "current"}],
        "rules": [{"name": "r", "match": {"headers": [{"name": "ce-type", "exact": "a"}]},
            "traffic": [{"tag": "current", "percent": 50}, {"percent": 25},
                        {"revisionName": "hello-00001", "percent": 25}]}]}),
    );
    let rt = desired_route(&svc);
    let targets = &rt.spec.rules[0].traffic;
    let names: Vec<Option<&str>> = targets.iter().map(|t| t.configuration_name.as_deref()).collect();
    assert_eq!(names, [None, Some("hello"), None], "a tag reference stays one");
    assert_eq!(rt.spec.rules[0].matches, svc.spec.rules[0].matches);
    assert_eq!(rt.spec.rules[0].name.as_deref(), Some("r"));
}

#[test]
fn status_mirrors_children_and_waits_for_traffic_migration() {
    let svc = fixtures::service("hello", json!({}));
    let cfg = fixtures::configuration(
        "hello",
        1,
        json!({"observedGeneration": 1, "latestCreatedRevisionName": "hello-00002",
        "latestReadyRevisionName": "hello-00002", "conditions": [{"type": "Ready", "status": "True"}]}),
    );
    let mut rt = desired_route(&svc);
    rt.metadata.generation = Some(1);
    rt.status = Some(
        serde_json::from_value(json!({"observedGeneration": 1, "url": "http://hello.default.localhost",
        "traffic": [{"revisionName": "hello-00001", "latestRevision": true, "percent": 100}],
        "rules": [{"match": {"path": {"prefix": "/a"}}, "traffic": [{"revisionName": "hello-00001", "percent": 100}]}],
        "conditions": [{"type": "Ready", "status": "True"}]}))
        .expect("status"),
    );
    let s = service_status(&svc, Child::Found(&cfg), Child::Found(&rt), "t");
    assert_eq!(s.url.as_deref(), Some("http://hello.default.localhost"));
    assert_eq!(s.latest_ready_revision_name.as_deref(), Some("hello-00002"));
    assert_eq!(s.rules, rt.status.as_ref().map(|r| r.rules.clone()).unwrap_or_default(), "rules mirrored");
    assert_eq!(s.rules.len(), 1);
    let routes_ready = find(&s.conditions, "RoutesReady").expect("RoutesReady");
    assert_eq!(
        (routes_ready.status, routes_ready.reason.as_deref()),
        (ConditionStatus::Unknown, Some("TrafficNotMigrated"))
    );
    assert_eq!(find(&s.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::Unknown));

    rt.status.as_mut().expect("status").traffic[0].revision_name = Some("hello-00002".into());
    let s = service_status(&svc, Child::Found(&cfg), Child::Found(&rt), "t");
    assert_eq!(find(&s.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::True));
}

#[test]
fn a_child_owned_by_someone_else_fails_the_service() {
    let svc = fixtures::service("hello", json!({}));
    let s = service_status(&svc, Child::NotOwned("hello".into()), Child::Missing, "t");
    let c = find(&s.conditions, "ConfigurationsReady").expect("cond");
    assert_eq!((c.status, c.reason.as_deref()), (ConditionStatus::False, Some("NotOwned")));
    assert_eq!(find(&s.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::False));
}
