//! Events, core `v1` and `events.k8s.io/v1`.

use serde_json::{Value, json};

use super::{accepted, invalid, rejected, with};
use crate::admission::{Operation, admit};
use crate::kinds::Kind;

fn core() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "hello.1", "namespace": "default"},
        "involvedObject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello", "namespace": "default"},
        "reason": "Created", "message": "Created Configuration \"hello\"", "type": "Normal",
        "source": {"component": "service-controller"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    })
}

fn events_v1() -> Value {
    crate::event::to_events_v1(&with(
        with(
            with(
                with(core(), "/eventTime", json!("2026-01-01T00:00:00.000000Z")),
                "/reportingComponent",
                json!("sluice"),
            ),
            "/reportingInstance",
            json!("sluice-1"),
        ),
        "/action",
        json!("Create"),
    ))
    .as_object()
    .map(|m| {
        let mut m = m.clone();
        for k in ["deprecatedCount", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedSource"] {
            m.remove(k);
        }
        Value::Object(m)
    })
    .expect("object")
}

#[test]
fn a_core_event_as_client_go_writes_it_is_accepted_as_given() {
    assert_eq!(accepted(Kind::Event, core()), core());
    assert_eq!(accepted(Kind::EventsV1, events_v1()), events_v1());
}

#[test]
fn a_core_event_needs_an_involved_object_a_reason_and_a_known_type() {
    let mut bare = core();
    bare.as_object_mut().expect("object").remove("involvedObject");
    assert!(rejected(Kind::Event, bare).contains("Required value: involvedObject"));
    let msg = rejected(Kind::Event, with(core(), "/involvedObject", json!({"kind": "Service"})));
    assert!(msg.contains("Required value: involvedObject.name"), "{msg}");
    let msg = rejected(Kind::Event, with(core(), "/type", json!("Info")));
    assert!(msg.contains(r#"Unsupported value: "Info": supported values: "Normal", "Warning": type"#), "{msg}");
    let msg = rejected(Kind::Event, with(core(), "/reason", json!("")));
    assert!(msg.contains("Required value: reason"), "{msg}");
    let msg = rejected(Kind::Event, with(core(), "/involvedObject/namespace", json!("other")));
    assert!(msg.contains("involvedObject.namespace\ndoes not match event.namespace"), "{msg}");
    let err = admit(Kind::Event, Operation::Create, None, with(core(), "/count", json!("many"))).expect_err("text");
    assert!(err.to_string().starts_with("count: invalid type"), "{err}");
}

#[test]
fn a_core_event_with_an_event_time_must_name_its_reporter_and_action() {
    let msg = rejected(Kind::Event, with(core(), "/eventTime", json!("2026-01-01T00:00:00.000000Z")));
    for field in ["action", "reportingComponent", "reportingInstance"] {
        assert!(msg.contains(field), "{field} in {msg}");
    }
}

#[test]
fn an_events_v1_event_follows_the_strict_rules() {
    let msg = rejected(Kind::EventsV1, with(events_v1(), "/deprecatedCount", json!(3)));
    assert!(msg.contains("needs to be unset: deprecatedCount"), "{msg}");
    let mut bare = events_v1();
    bare.as_object_mut().expect("object").remove("eventTime");
    assert!(rejected(Kind::EventsV1, bare).contains("Required value: eventTime"));
    let msg = rejected(Kind::EventsV1, with(events_v1(), "/regarding/name", json!("")));
    assert!(msg.contains("Required value: regarding.name"), "{msg}");
    let msg = rejected(Kind::EventsV1, with(events_v1(), "/note", json!("x".repeat(1025))));
    assert!(msg.contains("Too long: may not be more than 1024 bytes: note"), "{msg}");
    let msg = rejected(
        Kind::EventsV1,
        with(events_v1(), "/series", json!({"count": 1, "lastObservedTime": "2026-01-01T00:00:00.000000Z"})),
    );
    assert!(msg.contains("should be at least 2: series.count"), "{msg}");
}

#[test]
fn an_events_v1_update_keeps_what_identifies_the_event() {
    let old = events_v1();
    let series = with(old.clone(), "/series", json!({"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}));
    admit(Kind::EventsV1, Operation::Update, Some(&old), series).expect("a series update is accepted");
    let msg = invalid(admit(Kind::EventsV1, Operation::Update, Some(&old), with(old.clone(), "/note", json!("other"))));
    assert!(msg.contains("field is immutable: note"), "{msg}");
}
