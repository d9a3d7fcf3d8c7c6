//! Kubernetes Events in their two API shapes: core `v1` (what is stored, what `kubectl
//! describe` reads) and `events.k8s.io/v1`. The conversion is Kubernetes' own
//! (`pkg/apis/events/v1/conversion.go`): `involvedObject` is `regarding`, `message` is `note`,
//! `source` is `deprecatedSource`, `reportingComponent` is `reportingController`, and
//! `count`/`firstTimestamp`/`lastTimestamp` are the `deprecated*` fields; `reason`, `type`,
//! `action`, `related`, `reportingInstance`, `eventTime` and `series` keep their names.
//! Fields of neither shape are carried over unchanged (strict field validation reports them).

use serde_json::{Map, Value};

use crate::Kind;

/// Core name ↔ `events.k8s.io/v1` name, for the fields that differ.
const RENAMED: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
    ("count", "deprecatedCount"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
];

/// The core `v1` Event an `events.k8s.io/v1` Event is stored as.
pub fn to_core(v1: &Value) -> Value {
    convert(v1, |name| RENAMED.iter().find(|(_, new)| *new == name).map(|(old, _)| *old), Kind::Event)
}

/// The `events.k8s.io/v1` view of a stored core Event.
pub fn to_events_v1(core: &Value) -> Value {
    let mut out =
        convert(core, |name| RENAMED.iter().find(|(old, _)| *old == name).map(|(_, new)| *new), Kind::EventsV1);
    if let Some(map) = out.as_object_mut() {
        // Kubernetes writes these two without omitempty: an old-style event shows them null.
        map.entry("eventTime").or_insert(Value::Null);
        if map.get("deprecatedCount").and_then(Value::as_i64) == Some(0) {
            map.remove("deprecatedCount");
        }
    }
    out
}

/// `obj` as `kind` sees it: converted when it is an Event of the other shape, else unchanged.
pub fn view(kind: Kind, obj: Value) -> Value {
    match (kind, obj.get("apiVersion").and_then(Value::as_str)) {
        (Kind::EventsV1, Some("v1")) => to_events_v1(&obj),
        (Kind::Event, Some("events.k8s.io/v1")) => to_core(&obj),
        _ => obj,
    }
}

fn convert(obj: &Value, rename: impl Fn(&str) -> Option<&'static str>, to: Kind) -> Value {
    let Some(map) = obj.as_object() else { return obj.clone() };
    let mut out = Map::new();
    // Fields kept first, renamed ones after: a body carrying both `message` and `note` ends
    // with the renamed value, whatever the map's order.
    for (key, value) in map.iter().filter(|(k, _)| rename(k).is_none()) {
        out.insert(key.clone(), value.clone());
    }
    for (key, value) in map {
        if let Some(new) = rename(key) {
            out.insert(new.to_string(), value.clone());
        }
    }
    out.insert("apiVersion".into(), to.api_version().into());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn core() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "hello-00001.abc", "namespace": "default", "resourceVersion": "7"},
            "involvedObject": {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "name": "hello-00001", "namespace": "default", "uid": "u1"},
            "reason": "RevisionReady", "message": "Revision is ready", "type": "Normal",
            "source": {"component": "revision-controller"},
            "reportingComponent": "revision-controller", "reportingInstance": "sluice",
            "action": "Reconcile", "count": 3,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:05:00Z",
            "eventTime": "2026-01-01T00:00:00.000000Z",
        })
    }

    #[test]
    fn a_core_event_converts_to_events_v1_and_back_unchanged() {
        let v1 = to_events_v1(&core());
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "hello-00001");
        assert_eq!(v1["note"], "Revision is ready");
        assert_eq!(v1["reportingController"], "revision-controller");
        assert_eq!(v1["deprecatedSource"]["component"], "revision-controller");
        assert_eq!(v1["deprecatedCount"], 3);
        assert_eq!(v1["deprecatedLastTimestamp"], "2026-01-01T00:05:00Z");
        assert_eq!(v1["reason"], "RevisionReady");
        assert!(v1.get("involvedObject").is_none() && v1.get("message").is_none());
        assert_eq!(to_core(&v1), core());
    }

    #[test]
    fn an_events_v1_event_is_stored_as_core_with_its_series() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Service", "name": "s"}, "note": "n", "type": "Warning", "reason": "R",
            "reportingController": "c", "reportingInstance": "i", "action": "A",
            "eventTime": "2026-01-01T00:00:00.000000Z", "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
        });
        let c = to_core(&v1);
        assert_eq!(c["apiVersion"], "v1");
        assert_eq!(c["involvedObject"]["name"], "s");
        assert_eq!(c["message"], "n");
        assert_eq!(c["reportingComponent"], "c");
        assert_eq!(c["series"]["count"], 2);
        assert_eq!(to_events_v1(&c), v1);
    }

    #[test]
    fn an_old_style_event_shows_a_null_event_time_in_events_v1() {
        let mut c = core();
        c.as_object_mut().expect("object").remove("eventTime");
        assert_eq!(to_events_v1(&c)["eventTime"], Value::Null);
        assert_eq!(view(Kind::Event, to_events_v1(&c))["involvedObject"]["kind"], "Revision");
        assert_eq!(view(Kind::Service, json!({"apiVersion": "v1"})), json!({"apiVersion": "v1"}));
    }
}
