//! The page `sluice traffic SERVICE` prints, from the Service and its Revisions as read:
//! the split as programmed (`status.traffic`), the rules (`status.rules`, when the server
//! reports them) and each revision's readiness and instances.

use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::output::{lines, widths};

/// Renders the page for `svc` and its `revisions`.
pub fn page(svc: &Value, revisions: &[Value]) -> String {
    let name = svc["metadata"]["name"].as_str().unwrap_or("");
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut out = format!("Service '{name}' in namespace '{ns}'");
    if let Some(url) = svc["status"]["url"].as_str() {
        let _ = write!(out, " at {url}");
    }
    out.push_str("\n\nTraffic:\n");
    out.push_str(&indent(&split(&svc["status"]["traffic"])));
    if let Some(rules) = svc["status"]["rules"].as_array() {
        out.push_str("\nRules (tried in order before the split):\n");
        if rules.is_empty() {
            out.push_str("  none\n");
        }
        for (i, rule) in rules.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {} when {}",
                i + 1,
                rule["name"].as_str().unwrap_or("(unnamed)"),
                matches(&rule["match"])
            );
            out.push_str(&indent(&indent(&split(&rule["traffic"]))));
        }
    }
    out.push_str("\nRevisions:\n");
    out.push_str(&indent(&revision_table(svc, revisions)));
    out
}

/// A traffic list as a table: percent, revision, tag, latest, URL.
fn split(traffic: &Value) -> String {
    let Some(targets) = traffic.as_array().filter(|t| !t.is_empty()) else {
        return "none yet (the route has not been programmed)\n".to_string();
    };
    let mut grid = vec![vec!["PERCENT".into(), "REVISION".into(), "TAG".into(), "LATEST".into(), "URL".into()]];
    for t in targets {
        grid.push(vec![
            format!("{}%", t["percent"].as_i64().unwrap_or(0)),
            t["revisionName"].as_str().unwrap_or("").to_string(),
            t["tag"].as_str().unwrap_or("").to_string(),
            if t["latestRevision"].as_bool() == Some(true) { "yes".into() } else { String::new() },
            t["url"].as_str().unwrap_or("").to_string(),
        ]);
    }
    lines(&grid, &widths(&grid))
}

/// A rule's match in one line, e.g. `user-agent ~ "^(.*?;)?(iPhone)(;.*)?$", path prefix /api`.
fn matches(m: &Value) -> String {
    let mut parts = Vec::new();
    for h in m["headers"].as_array().into_iter().flatten() {
        let name = h["name"].as_str().unwrap_or("?");
        let cond = if let Some(v) = h["exact"].as_str() {
            format!("{name} = {v:?}")
        } else if let Some(v) = h["prefix"].as_str() {
            format!("{name} starts with {v:?}")
        } else if let Some(v) = h["regex"].as_str() {
            format!("{name} ~ {v:?}")
        } else if h["present"].as_bool() == Some(false) {
            format!("{name} absent")
        } else {
            format!("{name} present")
        };
        parts.push(cond);
    }
    if let Some(v) = m["path"]["exact"].as_str() {
        parts.push(format!("path = {v}"));
    } else if let Some(v) = m["path"]["prefix"].as_str() {
        parts.push(format!("path prefix {v}"));
    }
    if parts.is_empty() { "always".to_string() } else { parts.join(", ") }
}

/// Each revision: ready or not (with the reason), instances ready/desired, its share.
fn revision_table(svc: &Value, revisions: &[Value]) -> String {
    if revisions.is_empty() {
        return "none\n".to_string();
    }
    let mut sorted: Vec<&Value> = revisions.iter().collect();
    sorted.sort_by(|a, b| b["metadata"]["name"].as_str().cmp(&a["metadata"]["name"].as_str()));
    let share = |rev: &str| -> i64 {
        svc["status"]["traffic"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["revisionName"].as_str() == Some(rev))
            .map(|t| t["percent"].as_i64().unwrap_or(0))
            .sum()
    };
    let mut grid = vec![vec!["NAME".into(), "TRAFFIC".into(), "READY".into(), "INSTANCES".into(), "REASON".into()]];
    for rev in sorted {
        let name = rev["metadata"]["name"].as_str().unwrap_or("");
        let ready = rev["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
        let instances = format!(
            "{}/{}",
            rev["status"]["actualReplicas"].as_i64().unwrap_or(0),
            rev["status"]["desiredReplicas"].as_i64().unwrap_or(0)
        );
        grid.push(vec![
            name.to_string(),
            format!("{}%", share(name)),
            ready.and_then(|c| c["status"].as_str()).unwrap_or("Unknown").to_string(),
            instances,
            ready.and_then(|c| c["reason"].as_str()).unwrap_or("").to_string(),
        ]);
    }
    let mut text = lines(&grid, &widths(&grid));
    text.push_str("(INSTANCES: ready/desired, from each revision's actualReplicas/desiredReplicas)\n");
    text
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_page_shows_split_rules_and_revisions() {
        let svc = json!({
            "metadata": {"name": "hello", "namespace": "default"},
            "status": {
                "url": "http://hello.default.localhost",
                "traffic": [
                    {"revisionName": "hello-00001", "percent": 90, "tag": "current", "url": "http://current-hello.default.localhost"},
                    {"revisionName": "hello-00002", "percent": 10, "latestRevision": true},
                ],
                "rules": [{"name": "iphone", "match": {"headers": [{"name": "user-agent", "regex": "iPhone"}], "path": {"prefix": "/api"}},
                           "traffic": [{"revisionName": "hello-00002", "percent": 100, "tag": "alpha"}]}],
            }
        });
        let revs = vec![
            json!({"metadata": {"name": "hello-00001"}, "status": {"actualReplicas": 1, "desiredReplicas": 1, "conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"metadata": {"name": "hello-00002"}, "status": {"actualReplicas": 0, "desiredReplicas": 2, "conditions": [{"type": "Ready", "status": "False", "reason": "ContainerMissing"}]}}),
        ];
        let page = page(&svc, &revs);
        assert!(
            page.starts_with("Service 'hello' in namespace 'default' at http://hello.default.localhost\n"),
            "{page}"
        );
        assert!(page.contains("90%       hello-00001   current"), "{page}");
        assert!(page.contains("http://current-hello.default.localhost"), "{page}");
        assert!(page.contains("1. iphone when user-agent ~ \"iPhone\", path prefix /api"), "{page}");
        assert!(page.contains("100%      hello-00002   alpha"), "{page}");
        assert!(page.contains("hello-00002   10%       False   0/2         ContainerMissing"), "{page}");
        assert!(page.contains("hello-00001   90%       True    1/1"), "{page}");
    }

    #[test]
    fn a_route_not_yet_programmed_says_so_and_rules_are_left_out_when_not_reported() {
        let page = page(&json!({"metadata": {"name": "x"}}), &[]);
        assert!(page.contains("none yet (the route has not been programmed)"), "{page}");
        assert!(!page.contains("Rules"), "{page}");
    }
}
