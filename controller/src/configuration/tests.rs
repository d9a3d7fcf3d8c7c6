use serde_json::json;
use sluice_api::conditions::{ConditionStatus, find};
use sluice_api::labels;

use super::*;
use crate::fixtures;

#[test]
fn revisions_are_named_by_generation_and_labelled_like_knative() {
    let cfg = fixtures::configuration("hello", 3, json!({}));
    let rev = desired_revision(&cfg, "t");
    assert_eq!(rev.metadata.name.as_deref(), Some("hello-00003"));
    let l = rev.metadata.labels.as_ref().expect("labels");
    assert_eq!(l.get(labels::CONFIGURATION).map(String::as_str), Some("hello"));
    assert_eq!(l.get(labels::CONFIGURATION_GENERATION).map(String::as_str), Some("3"));
    assert_eq!(l.get(labels::SERVICE).map(String::as_str), Some("hello"));
    assert_eq!(l.get(labels::ROUTING_STATE).map(String::as_str), Some("pending"));
    assert_eq!(rev.spec, cfg.spec.template.spec);
    assert_eq!(rev.metadata.owner_references.as_ref().expect("owner")[0].kind, "Configuration");
}

#[test]
fn a_routed_configuration_stamps_active_revisions() {
    let mut cfg = fixtures::configuration("hello", 1, json!({}));
    cfg.metadata.annotations = Some([(labels::ROUTES.to_string(), "hello".to_string())].into());
    let rev = desired_revision(&cfg, "t");
    assert_eq!(
        rev.metadata.labels.as_ref().and_then(|l| l.get(labels::ROUTING_STATE)).map(String::as_str),
        Some("active")
    );
}

#[test]
fn byo_names_are_reused_only_by_their_owner_with_the_same_spec() {
    let mut cfg = fixtures::configuration("svc", 2, json!({}));
    cfg.spec.template.metadata.name = Some("svc-v1".into());
    let mut mine = fixtures::revision("svc", 1, "True");
    mine.metadata.name = Some("svc-v1".into());
    let all = vec![mine.clone()];
    assert_eq!(
        latest_created(&cfg, &all, &all).expect("ok").map(|r| r.name_any()),
        Some("svc-v1".into()),
        "rollback reuses it"
    );
    // The revision was defaulted at creation (enableServiceLinks: false); a template set again
    // by an update is not, and it is still the same spec.
    let mut defaulted = mine.clone();
    defaulted.spec.enable_service_links = Some(false);
    assert_eq!(cfg.spec.template.spec.enable_service_links, None);
    let all = vec![defaulted];
    assert_eq!(latest_created(&cfg, &all, &all).expect("ok").map(|r| r.name_any()), Some("svc-v1".into()));
    let mut changed = mine.clone();
    changed.spec.timeout_seconds = Some(7);
    let all = vec![changed];
    assert!(latest_created(&cfg, &all, &all).is_err(), "another spec under the name is refused");
    let mut other = mine.clone();
    other.metadata.owner_references = None;
    let all = vec![other];
    let err = latest_created(&cfg, &[], &all).expect_err("taken");
    assert_eq!(err, r#"revisions.serving.knative.dev "svc-v1" already exists"#);
}

#[test]
fn latest_ready_follows_the_newest_ready_revision() {
    let cfg = fixtures::configuration("c", 3, json!({"latestReadyRevisionName": "c-00001"}));
    let owned = vec![
        fixtures::revision("c", 1, "True"),
        fixtures::revision("c", 2, "True"),
        fixtures::revision("c", 3, "Unknown"),
    ];
    let s = configuration_status(&cfg, &owned, Ok(&owned[2]), "t");
    assert_eq!(s.latest_created_revision_name.as_deref(), Some("c-00003"));
    assert_eq!(s.latest_ready_revision_name.as_deref(), Some("c-00002"));
    assert_eq!(find(&s.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::Unknown));

    let owned = vec![fixtures::revision("c", 1, "True"), fixtures::revision("c", 3, "True")];
    let s = configuration_status(&cfg, &owned, Ok(&owned[1]), "t");
    assert_eq!(s.latest_ready_revision_name.as_deref(), Some("c-00003"));
    assert_eq!(find(&s.conditions, "Ready").map(|c| c.status), Some(ConditionStatus::True));
}

#[test]
fn a_failed_latest_revision_fails_the_configuration_but_keeps_latest_ready() {
    let cfg = fixtures::configuration("c", 2, json!({"latestReadyRevisionName": "c-00001"}));
    let owned = vec![fixtures::revision("c", 1, "True"), fixtures::revision("c", 2, "False")];
    let s = configuration_status(&cfg, &owned, Ok(&owned[1]), "t");
    assert_eq!(s.latest_ready_revision_name.as_deref(), Some("c-00001"));
    let ready = find(&s.conditions, "Ready").expect("Ready");
    assert_eq!((ready.status, ready.reason.as_deref()), (ConditionStatus::False, Some("RevisionFailed")));
    assert_eq!(ready.message.as_deref(), Some(r#"Revision "c-00002" failed with message: boom."#));
    let s = configuration_status(&cfg, &owned, Err("revisions.serving.knative.dev \"x\" already exists".into()), "t");
    assert_eq!(
        find(&s.conditions, "Ready").and_then(|c| c.message.clone()).as_deref(),
        Some(r#"Revision creation failed with message: revisions.serving.knative.dev "x" already exists."#)
    );
}

#[test]
fn a_new_latest_ready_revision_and_a_creation_failure_are_reported_once() {
    let cfg = fixtures::configuration("hello", 1, json!({"latestReadyRevisionName": "hello-00001"}));
    let mut next = cfg.status.clone().unwrap_or_default();
    assert!(notes(&cfg, &next).is_empty(), "nothing changed");
    next.latest_ready_revision_name = Some("hello-00002".into());
    let n = notes(&cfg, &next);
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].reason.as_str(), n[0].message.as_str()),
        ("LatestReadyUpdate", "LatestReadyRevisionName updated to \"hello-00002\"")
    );
    let failed = configuration_status(&cfg, &[], Err("revisions.serving.knative.dev \"x\" already exists".into()), "t");
    let n = notes(&cfg, &failed);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, "CreationFailed");
    assert!(n[0].message.contains("already exists"), "{}", n[0].message);
    let mut again = cfg.clone();
    again.status = Some(failed.clone());
    assert!(notes(&again, &failed).is_empty(), "the same failure is not reported on every reconcile");
}
