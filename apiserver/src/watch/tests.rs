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
