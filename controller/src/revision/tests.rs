use sluice_api::conditions::{ConditionStatus, find};
use sluice_api::labels;

use super::*;
use crate::fixtures;
use sluice_api::scale::Failure;

fn health(ready: usize, ever_ready: bool, failure: Option<(&str, Option<i32>)>) -> RevisionHealth {
    RevisionHealth {
        desired: 1,
        running: ready,
        ready,
        ever_ready,
        restarts: u32::from(failure.is_some()),
        container_restarts: Default::default(),
        last_failure: failure.map(|(reason, code)| Failure {
            reason: reason.into(),
            message: format!("{reason} happened"),
            exit_code: code,
        }),
        waiting: None,
    }
}

fn with_state(state: &str) -> Revision {
    let mut rev = fixtures::revision("c", 1, "Unknown");
    rev.status = None;
    rev.metadata.labels.get_or_insert_with(Default::default).insert(labels::ROUTING_STATE.into(), state.into());
    rev
}

fn cond(s: &RevisionStatus, t: &str) -> (ConditionStatus, Option<String>) {
    let c = find(&s.conditions, t).expect(t);
    (c.status, c.reason.clone())
}

#[test]
fn only_a_revision_a_route_let_go_is_unreachable() {
    assert!(reachable(&with_state("active")));
    assert!(reachable(&with_state("pending")), "a new revision runs its initial scale to become Ready");
    assert!(!reachable(&with_state("reserve")));
}

#[test]
fn a_revision_is_deploying_until_an_instance_is_ready() {
    let rev = with_state("active");
    let s = revision_status(&rev, None, 1, "file:///l", "t", false);
    assert_eq!(cond(&s, "Ready"), (ConditionStatus::Unknown, Some("Deploying".into())));
    let s = revision_status(&rev, Some(&health(1, true, None)), 1, "file:///l", "t", false);
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::True);
    assert_eq!(cond(&s, "Active").0, ConditionStatus::True);
    assert_eq!(s.actual_replicas, Some(1));
}

#[test]
fn a_crash_shows_its_exit_code_until_an_instance_is_back() {
    let rev = with_state("active");
    let s = revision_status(&rev, Some(&health(0, true, Some(("ExitCode", Some(3))))), 1, "file:///l", "t", false);
    assert_eq!(cond(&s, "ContainerHealthy"), (ConditionStatus::False, Some("ExitCode3".into())));
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::False);
    assert_eq!(s.extra.get("restartCount"), Some(&1.into()));
    let s = revision_status(&rev, Some(&health(1, true, Some(("ExitCode", Some(3))))), 1, "file:///l", "t", false);
    assert_eq!(cond(&s, "ContainerHealthy").0, ConditionStatus::True);
}

#[test]
fn an_unknown_image_is_a_missing_container() {
    let rev = with_state("pending");
    let s = revision_status(&rev, Some(&health(0, false, Some(("ImageNotFound", None)))), 1, "file:///l", "t", false);
    assert_eq!(cond(&s, "ContainerHealthy"), (ConditionStatus::False, Some("ContainerMissing".into())));
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::False);
}

#[test]
fn a_missing_config_map_is_a_create_container_config_error_until_an_instance_is_ready() {
    let rev = with_state("pending");
    let failing = health(0, false, Some(("CreateContainerConfigError", None)));
    let s = revision_status(&rev, Some(&failing), 1, "file:///l", "t", false);
    let reason = Some("CreateContainerConfigError".to_string());
    assert_eq!(cond(&s, "ContainerHealthy"), (ConditionStatus::False, reason.clone()));
    assert_eq!(cond(&s, "ResourcesAvailable"), (ConditionStatus::False, reason));
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::False);
    // Once the ConfigMap exists and an instance is ready, the failure is history.
    let recovered = health(1, true, Some(("CreateContainerConfigError", None)));
    let s = revision_status(&rev, Some(&recovered), 1, "file:///l", "t", false);
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::True);
}

#[test]
fn a_scaled_down_ready_revision_stays_ready_but_inactive() {
    let rev = with_state("reserve");
    let s = revision_status(&rev, Some(&health(0, true, None)), 0, "file:///l", "t", false);
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::True);
    assert_eq!(cond(&s, "Active"), (ConditionStatus::False, Some("NoTraffic".into())));
}

#[test]
fn never_ready_past_the_deadline_fails() {
    let rev = with_state("pending");
    let s = revision_status(&rev, None, 0, "file:///l", "t", true);
    assert_eq!(cond(&s, "ResourcesAvailable"), (ConditionStatus::False, Some("ProgressDeadlineExceeded".into())));
    let ready = find(&s.conditions, "Ready").expect("Ready");
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.message.as_deref(), Some("Initial scale was never achieved"));
}

#[test]
fn why_a_starting_instance_is_not_ready_is_the_deploying_message_until_it_is() {
    let rev = with_state("active");
    let note = "listening on 127.0.0.1:8089, but Sluice passed PORT=41234: read $PORT";
    let waiting = RevisionHealth { waiting: Some(note.into()), ..health(0, false, None) };
    let s = revision_status(&rev, Some(&waiting), 1, "file:///l", "t", false);
    for t in ["ResourcesAvailable", "Ready"] {
        let c = find(&s.conditions, t).expect(t);
        assert_eq!(
            (c.status, c.reason.as_deref(), c.message.as_deref()),
            (ConditionStatus::Unknown, Some("Deploying"), Some(note))
        );
    }
    let mut rev = rev;
    rev.status = Some(s);
    let s = revision_status(&rev, Some(&health(0, false, None)), 1, "file:///l", "t", false);
    assert_eq!(find(&s.conditions, "Ready").and_then(|c| c.message.as_deref()), None, "cleared with the note");
}

#[test]
fn the_deadline_counts_from_creation_until_the_first_ready() {
    let mut rev = with_state("pending");
    let created: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
    rev.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created));
    let at = |secs: i64| created + jiff::SignedDuration::from_secs(secs);
    let two = Duration::from_secs(2);
    assert_eq!(deadline_left(&rev, None, at(0), two), Some(two));
    assert_eq!(deadline_left(&rev, None, at(1), two), Some(Duration::from_secs(1)));
    assert_eq!(deadline_left(&rev, None, at(2), two), Some(Duration::ZERO));
    assert_eq!(deadline_left(&rev, None, at(90), two), Some(Duration::ZERO));
    assert_eq!(deadline_left(&rev, Some(&health(1, true, None)), at(90), two), None, "once ready, never");
    assert_eq!(deadline_left(&rev, None, at(-5), two), Some(two), "a clock behind the stamp waits");
}

#[test]
fn fields_the_runtime_does_not_apply_are_a_warning_condition_beside_ready() {
    let mut rev = with_state("active");
    rev.spec.extra.insert("volumes".into(), serde_json::json!([{"name": "v"}]));
    let s = revision_status(&rev, Some(&health(1, true, None)), 1, "", "2026-01-01T00:00:00Z", false);
    let c = find(&s.conditions, "FieldsHonoured").expect("condition");
    assert_eq!(
        (c.status, c.reason.as_deref(), c.severity.as_deref()),
        (ConditionStatus::False, Some("NotHonoured"), Some("Warning"))
    );
    assert!(c.message.as_deref().unwrap_or_default().starts_with("spec.volumes: volumes are not mounted"), "{c:?}");
    assert_eq!(cond(&s, "Ready").0, ConditionStatus::True, "Ready is about serving, and it serves");

    rev.spec.extra.remove("volumes");
    rev.status = Some(s);
    let s = revision_status(&rev, Some(&health(1, true, None)), 1, "", "2026-01-01T00:00:00Z", false);
    assert!(find(&s.conditions, "FieldsHonoured").is_none(), "gone once nothing is left to say");
}

#[test]
fn a_revision_becoming_ready_or_failing_is_reported_on_the_change_only() {
    let pending = fixtures::revision("hello", 1, "Unknown");
    let ready = fixtures::revision("hello", 1, "True");
    let ready_status = ready.status.clone().expect("status");
    let n = notes(&pending, &ready_status);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, "RevisionReady");
    assert!(notes(&ready, &ready_status).is_empty(), "still ready: nothing new");
    let mut failed = fixtures::revision("hello", 1, "False").status.expect("status");
    failed.conditions[0].reason = Some("ExitCode1".into());
    let n = notes(&ready, &failed);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].type_, crate::events::EventType::Warning);
    assert_eq!((n[0].reason.as_str(), n[0].message.as_str()), ("ExitCode1", "Revision \"hello-00001\" failed: boom"));
    let mut still = ready.clone();
    still.status = Some(failed.clone());
    assert!(notes(&still, &failed).is_empty(), "the same failure again: nothing new");
    let mut other = failed.clone();
    other.conditions[0].reason = Some("ProgressDeadlineExceeded".into());
    assert_eq!(notes(&still, &other)[0].reason, "ProgressDeadlineExceeded");
}
