//! `spec.traffic` of Routes and Services.

use serde_json::json;

use super::{DNS1035, accepted, rejected, route, service, with};
use crate::kinds::Kind;

fn route_traffic(traffic: serde_json::Value) -> String {
    rejected(Kind::Route, with(route(), "/spec/traffic", traffic))
}

#[test]
fn percent_sum_not_100_is_rejected_with_knative_message() {
    let msg = route_traffic(json!([{"revisionName": "a", "percent": 90}]));
    assert_eq!(msg, "Traffic targets sum to 90, want 100: spec.traffic");
}

#[test]
fn percent_over_100_is_out_of_bounds() {
    let msg = route_traffic(json!([{"revisionName": "a", "percent": 101}]));
    assert_eq!(
        msg,
        "Traffic targets sum to 101, want 100: spec.traffic\nexpected 0 <= 101 <= 100: spec.traffic[0].percent"
    );
}

#[test]
fn route_with_empty_traffic_is_rejected_like_knative() {
    let msg = rejected(Kind::Route, json!({"metadata": {"name": "rt"}, "spec": {}}));
    assert_eq!(msg, "Traffic targets sum to 0, want 100: spec.traffic");
}

#[test]
fn duplicate_tags_name_both_targets_sorted() {
    let msg = route_traffic(json!([
        {"revisionName": "a", "percent": 50, "tag": "foo"},
        {"revisionName": "b", "percent": 50, "tag": "foo"},
    ]));
    assert_eq!(msg, r#"Multiple definitions for "foo": spec.traffic[0].tag, spec.traffic[1].tag"#);
}

#[test]
fn non_dns_tag_is_reported_at_knatives_tag_index_path() {
    let msg = route_traffic(json!([{"revisionName": "a", "percent": 100, "tag": "Not_DNS"}]));
    assert_eq!(msg, format!("invalid value: not a DNS 1035 label: {DNS1035}: spec.traffic.tag[0]"));
}

#[test]
fn revision_and_configuration_names_are_exclusive() {
    let both = route_traffic(
        json!([{"revisionName": "a", "configurationName": "c", "percent": 100, "latestRevision": false}]),
    );
    assert_eq!(both, "expected exactly one, got both: spec.traffic[0].configurationName, spec.traffic[0].revisionName");
    let neither = route_traffic(json!([{"percent": 100}]));
    assert_eq!(
        neither,
        "expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName"
    );
}

#[test]
fn configuration_name_inside_a_service_is_disallowed() {
    let svc = with(service(), "/spec/traffic", json!([{"configurationName": "svc", "percent": 100}]));
    assert_eq!(rejected(Kind::Service, svc), "must not set the field(s): spec.traffic[0].configurationName");
}

#[test]
fn latest_revision_must_agree_with_revision_name() {
    let msg = route_traffic(json!([{"revisionName": "bar", "latestRevision": true, "percent": 100}]));
    assert_eq!(msg, r#"may not set revisionName "bar" when latestRevision is true: spec.traffic[0].latestRevision"#);
    let svc = with(service(), "/spec/traffic", json!([{"latestRevision": false, "percent": 100}]));
    assert_eq!(
        rejected(Kind::Service, svc),
        r#"may not set revisionName "" when latestRevision is false: spec.traffic[0].latestRevision"#
    );
}

#[test]
fn url_in_spec_is_disallowed() {
    let msg = route_traffic(
        json!([{"revisionName": "a", "percent": 100, "tag": "t", "url": "http://t-rt.default.example.com"}]),
    );
    assert_eq!(msg, "must not set the field(s): spec.traffic[0].url");
}

#[test]
fn unqualified_revision_name_is_an_invalid_key_name() {
    let msg = route_traffic(json!([{"revisionName": "bad name", "percent": 100}]));
    assert!(
        msg.starts_with("invalid key name \"bad name\": spec.traffic[0].revisionName\nname part must consist of"),
        "{msg}"
    );
}

#[test]
fn service_traffic_may_leave_the_configuration_implied() {
    let svc = with(
        service(),
        "/spec/traffic",
        json!([{"latestRevision": true, "percent": 60}, {"revisionName": "svc-00001", "percent": 40, "tag": "old"}]),
    );
    let stored = accepted(Kind::Service, svc);
    assert_eq!(stored["spec"]["traffic"][1]["latestRevision"], false);
}
