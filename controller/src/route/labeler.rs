//! Knative's labeler: which routes reference each revision (`serving.knative.dev/routes`) and
//! its `routingState` — `active` while any route references it, `reserve` once none does
//! (so it is stopped), `pending` until first referenced.

use std::collections::BTreeSet;

use kube::ResourceExt;
use sluice_api::labels;

/// A metadata change for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingChange {
    /// The object's name.
    pub name: String,
    /// The new `routingState`, when it changes.
    pub state: Option<&'static str>,
    /// The new `routes` annotation ("" removes it).
    pub routes: String,
}

fn parse_routes(s: Option<&String>) -> BTreeSet<String> {
    s.map(|s| s.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// The changes that make `route` referenced by exactly the objects in `referenced` among
/// `objects` (revisions or configurations).
pub fn changes<K: ResourceExt>(
    route: &str,
    referenced: &BTreeSet<String>,
    objects: &[K],
    with_state: bool,
) -> Vec<RoutingChange> {
    let mut out = Vec::new();
    for obj in objects {
        let name = obj.name_any();
        let mut routes = parse_routes(obj.annotations().get(labels::ROUTES));
        let had = routes.contains(route);
        let want = referenced.contains(&name);
        let current = obj.labels().get(labels::ROUTING_STATE).map(String::as_str);
        if want {
            routes.insert(route.to_string());
        } else {
            routes.remove(route);
        }
        let state = match (with_state, routes.is_empty(), current) {
            (false, _, _) => None,
            (true, false, Some("active")) => None,
            (true, false, _) => Some("active"),
            (true, true, Some("active")) => Some("reserve"),
            (true, true, _) => None,
        };
        if had != want || state.is_some() {
            out.push(RoutingChange { name, state, routes: routes.into_iter().collect::<Vec<_>>().join(",") });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_api::Revision;

    use super::*;

    fn rev(name: &str, state: &str, routes: Option<&str>) -> Revision {
        let mut annotations = serde_json::Map::new();
        if let Some(r) = routes {
            annotations.insert(labels::ROUTES.into(), r.into());
        }
        serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": name, "labels": {labels::ROUTING_STATE: state}, "annotations": annotations},
            "spec": {"containers": []}
        }))
        .expect("revision")
    }

    #[test]
    fn referenced_revisions_become_active_and_dropped_ones_reserve() {
        let revs = vec![
            rev("a", "pending", None),
            rev("b", "active", Some("r")),
            rev("c", "active", Some("other,r")),
            rev("d", "reserve", None),
        ];
        let referenced: BTreeSet<String> = ["a".to_string()].into();
        let got = changes("r", &referenced, &revs, true);
        assert_eq!(
            got,
            vec![
                RoutingChange { name: "a".into(), state: Some("active"), routes: "r".into() },
                RoutingChange { name: "b".into(), state: Some("reserve"), routes: String::new() },
                RoutingChange { name: "c".into(), state: None, routes: "other".into() },
            ]
        );
    }

    #[test]
    fn nothing_changes_when_references_hold() {
        let revs = vec![rev("a", "active", Some("r"))];
        let referenced: BTreeSet<String> = ["a".to_string()].into();
        assert!(changes("r", &referenced, &revs, true).is_empty());
    }
}
