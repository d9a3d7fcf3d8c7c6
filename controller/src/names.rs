//! Host names and URLs of routes and their tags, as Knative's default templates make them:
//! `{name}.{namespace}.{domain}` and `{tag}-{name}.{namespace}.{domain}`, plus the cluster-local
//! forms a client inside the "cluster" would use.

use std::collections::BTreeMap;

use sluice_api::labels;

/// The cluster-local domain suffix.
pub const CLUSTER_LOCAL: &str = "svc.cluster.local";

/// True when the labels make the route (or a tag's placeholder) private.
pub fn is_cluster_local(labels: &BTreeMap<String, String>) -> bool {
    labels.get(labels::VISIBILITY).is_some_and(|v| v == "cluster-local")
}

/// The route's public host, or its cluster-local host when private.
pub fn route_host(name: &str, namespace: &str, domain: &str, cluster_local: bool) -> String {
    if cluster_local { format!("{name}.{namespace}.{CLUSTER_LOCAL}") } else { format!("{name}.{namespace}.{domain}") }
}

/// Every host a route answers on: the public one (unless private) and the local forms
/// `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`.
pub fn route_hosts(name: &str, namespace: &str, domain: &str, cluster_local: bool) -> Vec<String> {
    let mut hosts = Vec::with_capacity(4);
    if !cluster_local {
        hosts.push(format!("{name}.{namespace}.{domain}"));
    }
    hosts.push(format!("{name}.{namespace}"));
    hosts.push(format!("{name}.{namespace}.svc"));
    hosts.push(format!("{name}.{namespace}.{CLUSTER_LOCAL}"));
    hosts.dedup();
    hosts
}

/// The sub-route name of a tag: `{tag}-{route}`.
pub fn tag_name(tag: &str, route: &str) -> String {
    format!("{tag}-{route}")
}

/// `http://` plus a host.
pub fn url(host: &str) -> String {
    format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_knative_templates() {
        assert_eq!(route_host("hello", "default", "localhost", false), "hello.default.localhost");
        assert_eq!(route_host("hello", "default", "localhost", true), "hello.default.svc.cluster.local");
        assert_eq!(tag_name("v2", "hello"), "v2-hello");
        let hosts = route_hosts("hello", "default", "example.com", false);
        assert_eq!(
            hosts,
            vec!["hello.default.example.com", "hello.default", "hello.default.svc", "hello.default.svc.cluster.local"]
        );
        assert_eq!(route_hosts("hello", "default", "example.com", true).len(), 3);
    }
}
