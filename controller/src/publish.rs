//! A Route's routing state as the router takes it: the assigned traffic and rules (from the
//! Route's status) become a [`RouteSpec`], plain data naming revisions by key. A pure function; the
//! route reconciler hands the result to the [`RoutePublisher`](sluice_router::publish::RoutePublisher).

use std::time::Duration;

use kube::ResourceExt;
use sluice_api::{Revision, RevisionKey, Route, TrafficRule, TrafficTarget};
use sluice_router::publish::RouteSpec;
use sluice_router::table::{HeaderMatch, HttpProtocol, PathMatch, Protocol, RuleConfig, TagConfig, Target, ValueMatch};

use super::names;

/// Knative's per-route `http-protocol` annotation, and its older name.
const HTTP_PROTOCOL: &str = "networking.knative.dev/http-protocol";
const HTTP_OPTION: &str = "networking.knative.dev/httpOption";

/// The router's view of a route with `traffic` and `rules` assigned.
pub fn route_config(
    route: &Route,
    traffic: &[TrafficTarget],
    rules: &[TrafficRule],
    revisions: &[Revision],
    domain: &str,
) -> RouteSpec {
    let (name, ns) = (route.name_any(), route.namespace().unwrap_or_default());
    let private = names::is_cluster_local(route.labels());
    let target = |rev_name: &str| {
        let rev = revisions.iter().find(|r| r.name_any() == rev_name);
        let timeout = rev.and_then(|r| r.spec.timeout_seconds).unwrap_or(sluice_api::DEFAULT_TIMEOUT_SECONDS).max(1);
        let h2c =
            rev.and_then(|r| r.spec.serving_container()).and_then(|c| c.ports.first()).and_then(|p| p.name.as_deref())
                == Some("h2c");
        let seconds = |s: Option<i64>| s.filter(|s| *s > 0).map(|s| Duration::from_secs(s.unsigned_abs()));
        Target {
            revision: RevisionKey::new(ns.clone(), rev_name),
            timeout: Duration::from_secs(timeout.unsigned_abs()),
            response_start: seconds(rev.and_then(|r| r.spec.response_start_timeout_seconds)),
            idle: seconds(rev.and_then(|r| r.spec.idle_timeout_seconds)),
            protocol: if h2c { Protocol::H2c } else { Protocol::Http1 },
        }
    };
    // 0 % targets are left out of a split.
    let split_of = |targets: &[TrafficTarget]| {
        let mut split = Vec::new();
        for t in targets {
            let Some(rev) = t.revision_name.as_deref() else { continue };
            let percent = u32::try_from(t.percent_or_zero()).unwrap_or(0);
            if percent > 0 {
                split.push((percent, target(rev)));
            }
        }
        split
    };
    let split = split_of(traffic);
    let rules = rules
        .iter()
        .filter_map(|r| {
            let (headers, path) = conditions(r)?;
            Some(RuleConfig { name: r.name.clone(), headers, path, traffic: split_of(&r.traffic) })
        })
        .collect();
    let mut tags = Vec::new();
    for t in traffic {
        let Some(rev) = t.revision_name.as_deref() else { continue };
        if let Some(tag) = t.tag.as_deref().filter(|t| !t.is_empty()) {
            let hosts = names::route_hosts(&names::tag_name(tag, &name), &ns, domain, private);
            tags.push(TagConfig { tag: tag.to_string(), hosts, target: target(rev) });
        }
    }
    RouteSpec {
        namespace: ns.clone(),
        name: name.clone(),
        hosts: names::route_hosts(&name, &ns, domain, private),
        traffic: split,
        tags,
        tag_header_routing: false,
        http_protocol: http_protocol(route),
        rules,
    }
}

/// A rule's header and path conditions as the router takes them; None for a condition that
/// sets none of its choices (refused at admission), so such a rule is left out, never widened.
fn conditions(rule: &TrafficRule) -> Option<(Vec<HeaderMatch>, Option<PathMatch>)> {
    let mut headers = Vec::with_capacity(rule.matches.headers.len());
    for h in &rule.matches.headers {
        let value = match (&h.exact, &h.prefix, &h.regex, h.present) {
            (Some(v), ..) => ValueMatch::Exact(v.clone()),
            (_, Some(v), ..) => ValueMatch::Prefix(v.clone()),
            (_, _, Some(re), _) => ValueMatch::Regex(re.clone()),
            (_, _, _, Some(present)) => ValueMatch::Present(present),
            _ => return None,
        };
        headers.push(HeaderMatch { name: h.name.to_ascii_lowercase(), value });
    }
    let path = match &rule.matches.path {
        None => None,
        Some(p) => Some(match (&p.exact, &p.prefix) {
            (Some(v), _) => PathMatch::Exact(v.clone()),
            (_, Some(v)) => PathMatch::Prefix(v.clone()),
            _ => return None,
        }),
    };
    Some((headers, path))
}

/// The route's `networking.knative.dev/http-protocol` annotation (or the older `httpOption`),
/// which a Service passes to its Route; a value Knative does not define counts as none.
fn http_protocol(route: &Route) -> Option<HttpProtocol> {
    let annotations = route.annotations();
    let value = annotations.get(HTTP_PROTOCOL).or_else(|| annotations.get(HTTP_OPTION))?;
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_http_protocol_annotation_is_the_routes_own_setting() {
        let route = |annotations: serde_json::Value| -> Route {
            serde_json::from_value(json!({
                "apiVersion": "serving.knative.dev/v1", "kind": "Route",
                "metadata": {"name": "hello", "namespace": "default", "annotations": annotations}, "spec": {}
            }))
            .expect("route")
        };
        let of = |a| route_config(&route(a), &[], &[], &[], "localhost").http_protocol;
        assert_eq!(of(json!({})), None);
        assert_eq!(of(json!({HTTP_PROTOCOL: "redirected"})), Some(HttpProtocol::Redirected));
        assert_eq!(of(json!({HTTP_OPTION: "Enabled"})), Some(HttpProtocol::Enabled));
        assert_eq!(of(json!({HTTP_PROTOCOL: "maybe"})), None);
    }

    fn revision(name: &str, spec: serde_json::Value) -> Revision {
        serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec
        }))
        .expect("revision")
    }

    #[test]
    fn assigned_traffic_becomes_a_spec_with_hosts_tags_timeouts_and_protocols() {
        let route: Route = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "hello", "namespace": "default"}, "spec": {}
        }))
        .expect("route");
        let revisions = [
            revision(
                "hello-00001",
                json!({"timeoutSeconds": 7, "responseStartTimeoutSeconds": 3, "idleTimeoutSeconds": 2,
                    "containers": [{"image": "x"}]}),
            ),
            revision(
                "hello-00002",
                json!({"containers": [{"image": "x", "ports": [{"name": "h2c", "containerPort": 8080}]}]}),
            ),
        ];
        let traffic: Vec<TrafficTarget> = serde_json::from_value(json!([
            {"revisionName": "hello-00001", "percent": 100, "tag": "v1"},
            {"revisionName": "hello-00002", "percent": 0, "tag": "v2"}
        ]))
        .expect("traffic");
        let spec = route_config(&route, &traffic, &[], &revisions, "example.com");
        assert_eq!(spec.hosts[0], "hello.default.example.com");
        assert_eq!(spec.traffic.len(), 1, "0% targets are left out of the split");
        let (percent, first) = &spec.traffic[0];
        assert_eq!((*percent, first.revision.name.as_str()), (100, "hello-00001"));
        assert_eq!((first.timeout, first.protocol), (Duration::from_secs(7), Protocol::Http1));
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!((first.response_start, first.idle), (secs(3), secs(2)));
        let tags: Vec<(&str, &str)> =
            spec.tags.iter().map(|t| (t.tag.as_str(), t.target.revision.name.as_str())).collect();
        assert_eq!(tags, [("v1", "hello-00001"), ("v2", "hello-00002")]);
        assert_eq!(spec.tags[1].hosts[0], "v2-hello.default.example.com");
        assert_eq!(spec.tags[1].target.protocol, Protocol::H2c);
        assert_eq!(spec.tags[1].target.timeout, Duration::from_secs(300), "Knative's default timeout");
        assert_eq!((spec.tags[1].target.response_start, spec.tags[1].target.idle), (None, None), "off by default");
        assert_eq!(spec, route_config(&route, &traffic, &[], &revisions, "example.com"), "a pure function");
    }

    #[test]
    fn assigned_rules_become_router_rules_in_order_without_0_percent_targets() {
        let route: Route = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "hello", "namespace": "default"}, "spec": {}
        }))
        .expect("route");
        let rules: Vec<TrafficRule> = serde_json::from_value(json!([
            {"name": "iphone", "match": {"headers": [{"name": "User-Agent", "regex": "^(.*?;)?(iPhone)(;.*)?$"},
                {"name": "x-a", "exact": "1"}, {"name": "x-b", "prefix": "p"}, {"name": "x-c", "present": false}],
                "path": {"prefix": "/api"}},
             "traffic": [{"tag": "alpha", "revisionName": "hello-00002", "percent": 100}]},
            {"match": {"path": {"exact": "/"}},
             "traffic": [{"revisionName": "hello-00001", "percent": 0}, {"revisionName": "hello-00002", "percent": 100}]},
            {"match": {"headers": [{"name": "x-d"}]}, "traffic": [{"revisionName": "hello-00001", "percent": 100}]}
        ]))
        .expect("rules");
        let spec = route_config(&route, &[], &rules, &[], "example.com");
        assert_eq!(spec.rules.len(), 2, "a condition with no choice (refused at admission) drops its rule");
        let first = &spec.rules[0];
        assert_eq!(first.name.as_deref(), Some("iphone"));
        assert_eq!(
            first.headers,
            [
                HeaderMatch { name: "user-agent".into(), value: ValueMatch::Regex("^(.*?;)?(iPhone)(;.*)?$".into()) },
                HeaderMatch { name: "x-a".into(), value: ValueMatch::Exact("1".into()) },
                HeaderMatch { name: "x-b".into(), value: ValueMatch::Prefix("p".into()) },
                HeaderMatch { name: "x-c".into(), value: ValueMatch::Present(false) },
            ]
        );
        assert_eq!(first.path, Some(PathMatch::Prefix("/api".into())));
        let split = |r: &RuleConfig<RevisionKey>| -> Vec<(u32, String)> {
            r.traffic.iter().map(|(p, t)| (*p, t.revision.name.clone())).collect()
        };
        assert_eq!(split(first), [(100, "hello-00002".to_string())]);
        assert_eq!(spec.rules[1].path, Some(PathMatch::Exact("/".into())));
        assert_eq!(split(&spec.rules[1]), [(100, "hello-00002".to_string())], "0% targets are left out");
    }
}
