//! Resolving a Route's `spec.rules` (Sluice's header and path rules) to revisions, after its
//! traffic: a target naming a tag takes the revision the assigned traffic gives that tag; any
//! other target resolves as a `spec.traffic` target does, with the same checks. All or nothing,
//! together with the traffic: one unresolvable rule target blocks the whole assignment.

use sluice_api::{Route, TrafficRule, TrafficTarget};

use super::traffic::{Lookup, TargetError, resolve_target};

/// The route's rules with every target resolved (status form: `revisionName`, `percent` and
/// `latestRevision` set, the tag kept where one was named), given the assigned `traffic`.
pub fn resolve(route: &Route, traffic: &[TrafficTarget], lk: &Lookup<'_>) -> Result<Vec<TrafficRule>, TargetError> {
    let mut deferred: Option<TargetError> = None;
    let mut out = Vec::with_capacity(route.spec.rules.len());
    for rule in &route.spec.rules {
        let mut targets = Vec::with_capacity(rule.traffic.len());
        for t in &rule.traffic {
            match target(route, t, traffic, lk) {
                Ok(resolved) => targets.push(resolved),
                // A hard failure wins over a wait, as for the traffic.
                Err(e) if deferred.is_none() || e.is_failure() => deferred = Some(e),
                Err(_) => {}
            }
        }
        out.push(TrafficRule { name: rule.name.clone(), matches: rule.matches.clone(), traffic: targets });
    }
    match deferred {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// One rule target.
fn target(
    route: &Route,
    t: &TrafficTarget,
    traffic: &[TrafficTarget],
    lk: &Lookup<'_>,
) -> Result<TrafficTarget, TargetError> {
    let percent = Some(t.percent_or_zero());
    if let Some(tag) = t.tag.as_deref().filter(|t| !t.is_empty()) {
        // Validation allows only tags of spec.traffic, which the assignment carries.
        let tagged = traffic
            .iter()
            .find(|a| a.tag.as_deref() == Some(tag))
            .ok_or_else(|| TargetError::Missing { kind: "Tag", name: tag.to_string() })?;
        return Ok(TrafficTarget {
            tag: Some(tag.to_string()),
            revision_name: tagged.revision_name.clone(),
            latest_revision: tagged.latest_revision,
            percent,
            ..Default::default()
        });
    }
    let revision = resolve_target(route, t, lk)?;
    Ok(TrafficTarget {
        revision_name: Some(revision),
        latest_revision: Some(t.is_latest()),
        percent,
        ..Default::default()
    })
}

/// Every target of the route's rules, as written.
pub fn targets(route: &Route) -> impl Iterator<Item = &TrafficTarget> {
    route.spec.rules.iter().flat_map(|r| r.traffic.iter())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_api::{Configuration, Revision};

    use super::*;
    use crate::fixtures;
    use crate::route::traffic::{self, wanted_revisions};

    fn route_with_rules(rules: serde_json::Value) -> Route {
        let mut rt = fixtures::route(
            "r",
            json!([{"revisionName": "c-00001", "percent": 100, "tag": "stable"},
                   {"configurationName": "c", "percent": 0, "tag": "alpha"}]),
            json!({}),
        );
        rt.spec.rules = serde_json::from_value(rules).expect("rules");
        rt
    }

    fn objects() -> (Vec<Configuration>, Vec<Revision>) {
        let cfgs = vec![fixtures::configuration(
            "c",
            3,
            json!({"latestReadyRevisionName": "c-00002", "latestCreatedRevisionName": "c-00003"}),
        )];
        let revs: Vec<Revision> = (1..=3).map(|g| fixtures::revision("c", g, "True")).collect();
        (cfgs, revs)
    }

    #[test]
    fn tag_references_take_the_tags_revision_and_other_targets_resolve_as_traffic() {
        let rt = route_with_rules(json!([
            {"name": "iphone", "match": {"headers": [{"name": "user-agent", "regex": ".*iPhone.*"}]},
             "traffic": [{"tag": "alpha", "percent": 100}]},
            {"match": {"path": {"prefix": "/v3"}},
             "traffic": [{"revisionName": "c-00003", "percent": 40}, {"configurationName": "c", "percent": 60}]}
        ]));
        let (cfgs, revs) = objects();
        let all = |_: &str| true;
        let lk = Lookup { configurations: &cfgs, revisions: &revs, serving: &all };
        let assigned = traffic::resolve(&rt, &lk).expect("traffic");
        let rules = resolve(&rt, &assigned, &lk).expect("rules");
        let traffic: Vec<&Vec<TrafficTarget>> = rules.iter().map(|r| &r.traffic).collect();
        assert_eq!(
            serde_json::to_value(traffic).expect("json"),
            json!([
                [{"tag": "alpha", "revisionName": "c-00002", "percent": 100, "latestRevision": true}],
                [{"revisionName": "c-00003", "percent": 40, "latestRevision": false},
                 {"revisionName": "c-00002", "percent": 60, "latestRevision": true}],
            ])
        );
        assert_eq!(rules[0].name.as_deref(), Some("iphone"));
        assert_eq!(rules[0].matches, rt.spec.rules[0].matches, "the match is copied");
    }

    #[test]
    fn an_unready_or_missing_rule_target_blocks_the_assignment_and_is_still_wanted() {
        let rt = route_with_rules(json!([{"match": {"path": {"exact": "/"}},
            "traffic": [{"revisionName": "c-00003", "percent": 100}]}]));
        let (cfgs, revs) = objects();
        let not_3 = |name: &str| name != "c-00003";
        let lk = Lookup { configurations: &cfgs, revisions: &revs, serving: &not_3 };
        let assigned = traffic::resolve(&rt, &lk).expect("the traffic alone resolves");
        assert_eq!(
            resolve(&rt, &assigned, &lk),
            Err(TargetError::RevisionNotReady { name: "c-00003".into(), failed: false })
        );
        assert!(wanted_revisions(&rt, &lk).contains("c-00003"), "so it gets started");
        let gone = route_with_rules(json!([{"match": {"path": {"exact": "/"}},
            "traffic": [{"revisionName": "c-00009", "percent": 100}]}]));
        let e = resolve(&gone, &assigned, &lk).expect_err("missing");
        assert_eq!(e.condition().message, r#"Revision "c-00009" referenced in traffic not found."#);
        assert!(e.is_failure());
    }
}
