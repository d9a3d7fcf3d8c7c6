//! `kubectl get events` columns, as Kubernetes' own printer makes them: LAST SEEN, TYPE,
//! REASON, OBJECT, MESSAGE, and with `-o wide` SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME.

use serde_json::{Value, json};

use crate::store::meta;
use crate::table::age;

/// Header, and whether only `-o wide` shows it (priority 1).
const COLUMNS: [(&str, bool); 10] = [
    ("Last Seen", false),
    ("Type", false),
    ("Reason", false),
    ("Object", false),
    ("Subobject", true),
    ("Source", true),
    ("Message", false),
    ("First Seen", true),
    ("Count", true),
    ("Name", true),
];

/// The column definitions.
pub fn definitions() -> Vec<Value> {
    COLUMNS
        .iter()
        .map(|(name, wide)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": "string", "format": format, "description": "", "priority": i32::from(*wide)})
        })
        .collect()
}

/// One row's cells for a stored (core) Event.
pub fn cells(event: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let text = |path: &str| event.pointer(path).and_then(Value::as_str).unwrap_or("");
    let first = if text("/firstTimestamp").is_empty() {
        age(text("/eventTime"), now)
    } else {
        age(text("/firstTimestamp"), now)
    };
    let mut last = if text("/lastTimestamp").is_empty() { first.clone() } else { age(text("/lastTimestamp"), now) };
    let mut count = event.get("count").and_then(Value::as_i64).unwrap_or(0);
    if event.get("series").is_some_and(|s| !s.is_null()) {
        last = age(text("/series/lastObservedTime"), now);
        count = event.pointer("/series/count").and_then(Value::as_i64).unwrap_or(count);
    } else if count == 0 {
        // A singleton written through events.k8s.io has no count.
        count = 1;
    }
    let (kind, name) = (text("/involvedObject/kind").to_ascii_lowercase(), text("/involvedObject/name"));
    let object = if name.is_empty() { kind } else { format!("{kind}/{name}") };
    let or = |a: &'static str, b: &'static str| if text(a).is_empty() { text(b) } else { text(a) };
    let (component, instance) =
        (or("/source/component", "/reportingComponent"), or("/source/host", "/reportingInstance"));
    let source = if instance.is_empty() { component.to_string() } else { format!("{component}, {instance}") };
    vec![
        json!(last),
        json!(text("/type")),
        json!(text("/reason")),
        json!(object),
        json!(text("/involvedObject/fieldPath")),
        json!(source),
        json!(text("/message").trim()),
        json!(first),
        json!(count),
        json!(meta::name(event)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregated_event_prints_as_kubectl_get_events_does() {
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().expect("time");
        let e = json!({
            "metadata": {"name": "hello.1"}, "type": "Normal", "reason": "Scaled", "message": " Scaled from 1 to 3 ",
            "involvedObject": {"kind": "Revision", "name": "hello-00001"}, "source": {"component": "autoscaler"},
            "count": 4, "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:09:30Z",
        });
        assert_eq!(
            cells(&e, now),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Scaled"),
                json!("revision/hello-00001"),
                json!(""),
                json!("autoscaler"),
                json!("Scaled from 1 to 3"),
                json!("10m"),
                json!(4),
                json!("hello.1"),
            ]
        );
        let names: Vec<&str> = COLUMNS.iter().filter(|(_, wide)| !wide).map(|(n, _)| *n).collect();
        assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    }
}
