//! `describe` pages for services, revisions and routes, in kn's shape: a header of fields, the
//! traffic with percent and tags, conditions (`++` True, `!!` False, `??` Unknown) with reasons,
//! and the object's recent events when the server keeps them.

use std::fmt::Write;

use serde_json::Value;

/// The pieces of a service page that come from other objects.
pub struct ServicePage<'a> {
    /// The service.
    pub service: &'a Value,
    /// Its revisions.
    pub revisions: &'a [Value],
    /// Its events (`None`: the server keeps none).
    pub events: Option<&'a [Value]>,
    /// Now, for ages.
    pub now: jiff::Timestamp,
}

/// `sluice service describe`.
pub fn service(p: &ServicePage<'_>) -> String {
    let s = p.service;
    let mut out = header(s, p.now);
    field(&mut out, "URL", s["status"]["url"].as_str().unwrap_or("<none>"));
    out.push_str("\nRevisions:\n");
    let traffic = s["status"]["traffic"].as_array().cloned().unwrap_or_default();
    if traffic.is_empty() {
        out.push_str("  (no traffic yet)\n");
    }
    for t in &traffic {
        let name = t["revisionName"].as_str().unwrap_or("");
        let rev = p.revisions.iter().find(|r| r["metadata"]["name"] == name);
        out.push_str(&traffic_line(t));
        if let Some(rev) = rev {
            let _ = write!(out, " [{}] ({})", generation(rev), age(rev, p.now));
            out.push('\n');
            let _ = writeln!(out, "        Image:     {}", image(rev));
            let _ = writeln!(out, "        Replicas:  {}", replicas(rev));
        } else {
            out.push('\n');
        }
    }
    out.push_str(&conditions(s, p.now));
    if let Some(events) = p.events {
        out.push_str(&self::events(events, p.now));
    }
    out
}

/// `sluice revision describe`: `service` names the service whose traffic it may carry.
pub fn revision(rev: &Value, service: Option<&Value>, events: Option<&[Value]>, now: jiff::Timestamp) -> String {
    let mut out = header(rev, now);
    field(&mut out, "Image", &image(rev));
    let container = serving_container(rev);
    let env: Vec<String> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| match e["value"].as_str() {
            Some(v) => format!("{}={v}", e["name"].as_str().unwrap_or("")),
            None => format!("{} (from a reference)", e["name"].as_str().unwrap_or("")),
        })
        .collect();
    if !env.is_empty() {
        field(&mut out, "Env", &env.join(", "));
    }
    if let Some(port) = container["ports"][0]["containerPort"].as_i64() {
        field(&mut out, "Port", &port.to_string());
    }
    if let Some(c) = rev["spec"]["containerConcurrency"].as_i64() {
        field(&mut out, "Concurrency", &format!("limit {c}"));
    }
    let labels = &rev["metadata"]["labels"];
    if let Some(svc) = labels["serving.knative.dev/service"].as_str() {
        field(&mut out, "Service", svc);
    }
    field(&mut out, "Replicas", &replicas(rev));
    if let Some(svc) = service {
        let name = rev["metadata"]["name"].as_str().unwrap_or("");
        let mine: Vec<&Value> =
            svc["status"]["traffic"].as_array().into_iter().flatten().filter(|t| t["revisionName"] == name).collect();
        let percent: i64 = mine.iter().filter_map(|t| t["percent"].as_i64()).sum();
        let tags: Vec<&str> = mine.iter().filter_map(|t| t["tag"].as_str()).collect();
        field(&mut out, "Traffic", &format!("{percent}%"));
        if !tags.is_empty() {
            field(&mut out, "Tags", &tags.join(", "));
        }
    }
    out.push_str(&conditions(rev, now));
    if let Some(events) = events {
        out.push_str(&self::events(events, now));
    }
    out
}

/// `sluice route describe`.
pub fn route(route: &Value, events: Option<&[Value]>, now: jiff::Timestamp) -> String {
    let mut out = header(route, now);
    field(&mut out, "URL", route["status"]["url"].as_str().unwrap_or("<none>"));
    if let Some(svc) = route["metadata"]["labels"]["serving.knative.dev/service"].as_str() {
        field(&mut out, "Service", svc);
    }
    out.push_str("\nTraffic Targets:\n");
    let traffic = route["status"]["traffic"].as_array().cloned().unwrap_or_default();
    if traffic.is_empty() {
        out.push_str("  (none yet)\n");
    }
    for t in &traffic {
        out.push_str(&traffic_line(t));
        out.push('\n');
        if let Some(url) = t["url"].as_str() {
            let _ = writeln!(out, "        URL:  {url}");
        }
    }
    out.push_str(&conditions(route, now));
    if let Some(events) = events {
        out.push_str(&self::events(events, now));
    }
    out
}

/// `  100%  @latest (hello-00002) #tag` — kn's traffic line (without a newline).
fn traffic_line(t: &Value) -> String {
    let percent = t["percent"].as_i64().map_or_else(|| "  -".to_string(), |p| format!("{p:>3}%"));
    let name = t["revisionName"].as_str().unwrap_or("");
    let mut line = if t["latestRevision"] == true {
        format!("  {percent}  @latest ({name})")
    } else {
        format!("  {percent}  {name}")
    };
    if let Some(tag) = t["tag"].as_str() {
        let _ = write!(line, " #{tag}");
    }
    line
}

fn header(obj: &Value, now: jiff::Timestamp) -> String {
    let meta = &obj["metadata"];
    let mut out = String::new();
    field(&mut out, "Name", meta["name"].as_str().unwrap_or(""));
    field(&mut out, "Namespace", meta["namespace"].as_str().unwrap_or(""));
    if let Some(a) = meta["annotations"].as_object().filter(|a| !a.is_empty()) {
        let pairs: Vec<String> = a.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
        field(&mut out, "Annotations", &pairs.join(", "));
    }
    field(&mut out, "Age", &age(obj, now));
    out
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "{:<13}{value}", format!("{name}:"));
}

/// The conditions table with a message line under each one not True.
fn conditions(obj: &Value, now: jiff::Timestamp) -> String {
    let list = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let width = list.iter().filter_map(|c| c["type"].as_str()).map(str::len).max().unwrap_or(0).max(20);
    let mut out = format!("\nConditions:\n  OK {:<width$} {:>5} REASON\n", "TYPE", "AGE");
    for c in &list {
        let ok = match (c["status"].as_str(), c["severity"].as_str()) {
            (Some("True"), _) => "++",
            (Some("False"), Some("Warning" | "Info")) => " W",
            (Some("False"), _) => "!!",
            _ => "??",
        };
        let since = c["lastTransitionTime"].as_str().map_or_else(|| "-".to_string(), |t| since(t, now));
        let reason = c["reason"].as_str().unwrap_or("");
        let line = format!("  {ok} {:<width$} {since:>5} {reason}", c["type"].as_str().unwrap_or(""));
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(m) = c["message"].as_str().filter(|m| !m.is_empty() && ok != "++") {
            let _ = writeln!(out, "        {m}");
        }
    }
    out
}

/// The events section, newest last, as `kubectl describe` prints it.
fn events(events: &[Value], now: jiff::Timestamp) -> String {
    if events.is_empty() {
        return "\nEvents:  <none>\n".to_string();
    }
    let mut rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            let when = ["lastTimestamp", "eventTime", "firstTimestamp"]
                .iter()
                .find_map(|k| e[*k].as_str())
                .or_else(|| e["metadata"]["creationTimestamp"].as_str())
                .unwrap_or("");
            let from = e["source"]["component"].as_str().or_else(|| e["reportingComponent"].as_str()).unwrap_or("");
            [
                e["type"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap_or("").to_string(),
                when.to_string(),
                from.to_string(),
                e["message"].as_str().or_else(|| e["note"].as_str()).unwrap_or("").to_string(),
            ]
        })
        .collect();
    rows.sort_by(|a, b| a[2].cmp(&b[2]));
    for r in &mut rows {
        r[2] = if r[2].is_empty() { "-".into() } else { since(&r[2], now) };
    }
    let header = ["Type", "Reason", "Age", "From", "Message"].map(String::from);
    let width = |i: usize| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    let mut out = String::from("\nEvents:\n");
    for r in std::iter::once(&header).chain(rows.iter()) {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    out
}

fn serving_container(rev: &Value) -> &Value {
    let containers = rev["spec"]["containers"].as_array();
    containers
        .and_then(|c| c.iter().find(|c| c["ports"].as_array().is_some_and(|p| !p.is_empty())).or_else(|| c.first()))
        .unwrap_or(&Value::Null)
}

fn image(rev: &Value) -> String {
    serving_container(rev)["image"].as_str().unwrap_or("<none>").to_string()
}

fn generation(rev: &Value) -> String {
    let labels = &rev["metadata"]["labels"];
    labels["serving.knative.dev/configurationGeneration"].as_str().unwrap_or("?").to_string()
}

fn replicas(rev: &Value) -> String {
    let n = |k: &str| rev["status"][k].as_i64().map_or_else(|| "0".to_string(), |n| n.to_string());
    format!("{}/{}", n("actualReplicas"), n("desiredReplicas"))
}

/// The age of `obj`.
pub fn age(obj: &Value, now: jiff::Timestamp) -> String {
    obj["metadata"]["creationTimestamp"].as_str().map_or_else(|| "-".to_string(), |t| since(t, now))
}

/// `5s`, `3m`, `2h`, `4d` since the RFC 3339 time `t`.
pub fn since(t: &str, now: jiff::Timestamp) -> String {
    let Ok(then) = t.parse::<jiff::Timestamp>() else {
        return "-".into();
    };
    let secs = now.as_second().saturating_sub(then.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:10:00Z".parse().expect("time")
    }

    #[test]
    fn a_service_page_shows_url_traffic_tags_conditions_and_events() {
        let svc = json!({"metadata": {"name": "hello", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"url": "http://hello.default.localhost", "traffic": [
                {"revisionName": "hello-00002", "latestRevision": true, "percent": 80},
                {"revisionName": "hello-00001", "latestRevision": false, "percent": 20, "tag": "old"}],
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:09:30Z"},
                {"type": "RoutesReady", "status": "False", "reason": "Broken", "message": "why"}]}});
        let rev = json!({"metadata": {"name": "hello-00002", "creationTimestamp": "2026-01-01T00:05:00Z",
            "labels": {"serving.knative.dev/configurationGeneration": "2"}},
            "spec": {"containers": [{"image": "img"}]}, "status": {"actualReplicas": 1, "desiredReplicas": 1}});
        let events = [json!({"type": "Normal", "reason": "Created", "message": "made it",
            "lastTimestamp": "2026-01-01T00:09:00Z", "source": {"component": "sluice"}})];
        let page = service(&ServicePage { service: &svc, revisions: &[rev], events: Some(&events), now: now() });
        for want in [
            "Name:        hello\n",
            "URL:         http://hello.default.localhost\n",
            "Age:         10m\n",
            "   80%  @latest (hello-00002) [2] (5m)\n        Image:     img\n        Replicas:  1/1\n",
            "   20%  hello-00001 #old\n",
            "  ++ Ready                  30s\n",
            "  !! RoutesReady              - Broken\n        why\n",
            "Events:\n  Type    Reason   Age  From    Message\n  Normal  Created  60s  sluice  made it\n",
        ] {
            assert!(page.contains(want), "{want:?} in\n{page}");
        }
        let without = service(&ServicePage { service: &svc, revisions: &[], events: None, now: now() });
        assert!(!without.contains("Events"), "{without}");
    }
}
