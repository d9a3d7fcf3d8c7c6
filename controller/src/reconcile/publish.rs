//! Publishing routing snapshots: each Route's assigned traffic becomes a router `RouteConfig`;
//! the whole table is rebuilt from them and swapped in with one atomic store, so a request
//! sees either the old table or the new one, never a mix.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use kube::ResourceExt;
use parking_lot::Mutex;
use sluice_api::{Revision, Route, TrafficTarget};
use sluice_router::endpoints::{Endpoints, RevisionKey};
use sluice_router::table::{Protocol, RouteConfig, RoutingTable, TagConfig, Target};

use super::names;
use crate::tombstones::Tombstones;

/// Owns the live routing table.
pub struct Publisher {
    table: Arc<ArcSwap<RoutingTable>>,
    routes: Mutex<Routes>,
    tag_header_routing: AtomicBool,
}

/// The programmed routes, by namespace and name, with the uid of the Route each came from; and
/// the uids of deleted Routes, whose late programming is ignored.
#[derive(Default)]
struct Routes {
    live: BTreeMap<(String, String), (String, RouteConfig)>,
    deleted: Tombstones,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher writing to `table`.
    pub fn new(table: Arc<ArcSwap<RoutingTable>>) -> Self {
        Self { table, routes: Mutex::new(Routes::default()), tag_header_routing: AtomicBool::new(false) }
    }

    /// The table the router reads.
    pub fn table(&self) -> Arc<ArcSwap<RoutingTable>> {
        self.table.clone()
    }

    /// Programs `route` with its assigned `traffic` (from its status) and republishes.
    /// A route deleted while its reconcile was running is not programmed again.
    pub fn set_route(
        &self,
        route: &Route,
        traffic: &[TrafficTarget],
        revisions: &[Revision],
        endpoints: &Endpoints,
        domain: &str,
    ) {
        let config = route_config(route, traffic, revisions, endpoints, domain);
        let key = (config.namespace.clone(), config.name.clone());
        let uid = route.uid().unwrap_or_default();
        let changed = {
            let mut routes = self.routes.lock();
            if routes.deleted.contains(&uid) {
                return;
            }
            let changed =
                routes.live.get(&key).is_none_or(|(old_uid, old)| *old_uid != uid || !same_config(old, &config));
            routes.live.insert(key, (uid, config));
            changed
        };
        if changed {
            self.rebuild();
        }
    }

    /// Stops serving the deleted route `namespace/name` with `uid` (a route created since under
    /// the same name is kept).
    pub fn remove_route(&self, namespace: &str, name: &str, uid: &str) {
        let removed = {
            let mut routes = self.routes.lock();
            routes.deleted.bury(uid);
            let key = (namespace.to_string(), name.to_string());
            let ours = routes.live.get(&key).is_some_and(|(have, _)| uid.is_empty() || have == uid);
            if ours {
                routes.live.remove(&key);
            }
            ours
        };
        if removed {
            self.rebuild();
        }
    }

    /// Turns Knative's `tag-header-based-routing` feature on or off.
    pub fn set_tag_header_routing(&self, on: bool) {
        if self.tag_header_routing.swap(on, Ordering::SeqCst) != on {
            self.rebuild();
        }
    }

    fn rebuild(&self) {
        let tag_header_routing = self.tag_header_routing.load(Ordering::SeqCst);
        let routes = self.routes.lock();
        let mut hosts = HashSet::new();
        let mut configs = Vec::with_capacity(routes.live.len());
        for (_, config) in routes.live.values() {
            let mine: Vec<&String> =
                config.hosts.iter().chain(config.tags.iter().flat_map(|t| t.hosts.iter())).collect();
            if let Some(taken) = mine.iter().find(|h| hosts.contains(h.as_str())) {
                tracing::error!(route = %format!("{}/{}", config.namespace, config.name), host = %taken, "host already served by another route; route not published");
                continue;
            }
            hosts.extend(mine.into_iter().cloned());
            configs.push(RouteConfig { tag_header_routing, ..config.clone() });
        }
        match RoutingTable::new(configs) {
            Ok(table) => self.table.store(Arc::new(table)),
            Err(e) => tracing::error!(error = %e, "routing table not published"),
        }
    }
}

/// Two configs route the same way (their targets' endpoints are compared by identity).
fn same_config(a: &RouteConfig, b: &RouteConfig) -> bool {
    let same_target = |x: &Target, y: &Target| {
        Arc::ptr_eq(&x.revision, &y.revision) && x.timeout == y.timeout && x.protocol == y.protocol
    };
    a.hosts == b.hosts
        && a.traffic.len() == b.traffic.len()
        && a.traffic.iter().zip(&b.traffic).all(|((p, x), (q, y))| p == q && same_target(x, y))
        && a.tags.len() == b.tags.len()
        && a.tags
            .iter()
            .zip(&b.tags)
            .all(|(x, y)| x.tag == y.tag && x.hosts == y.hosts && same_target(&x.target, &y.target))
}

/// The router's view of a route with `traffic` assigned.
pub fn route_config(
    route: &Route,
    traffic: &[TrafficTarget],
    revisions: &[Revision],
    endpoints: &Endpoints,
    domain: &str,
) -> RouteConfig {
    let (name, ns) = (route.name_any(), route.namespace().unwrap_or_default());
    let private = names::is_cluster_local(route.labels());
    let target = |rev_name: &str| {
        let rev = revisions.iter().find(|r| r.name_any() == rev_name);
        let timeout = rev.and_then(|r| r.spec.timeout_seconds).unwrap_or(sluice_api::DEFAULT_TIMEOUT_SECONDS).max(1);
        let h2c =
            rev.and_then(|r| r.spec.serving_container()).and_then(|c| c.ports.first()).and_then(|p| p.name.as_deref())
                == Some("h2c");
        Target {
            revision: endpoints.revision(&RevisionKey::new(ns.clone(), rev_name)),
            timeout: Duration::from_secs(timeout.unsigned_abs()),
            protocol: if h2c { Protocol::H2c } else { Protocol::Http1 },
        }
    };
    let mut split = Vec::new();
    let mut tags = Vec::new();
    for t in traffic {
        let Some(rev) = t.revision_name.as_deref() else { continue };
        let percent = u32::try_from(t.percent_or_zero()).unwrap_or(0);
        if percent > 0 {
            split.push((percent, target(rev)));
        }
        if let Some(tag) = t.tag.as_deref().filter(|t| !t.is_empty()) {
            let hosts = names::route_hosts(&names::tag_name(tag, &name), &ns, domain, private);
            tags.push(TagConfig { tag: tag.to_string(), hosts, target: target(rev) });
        }
    }
    RouteConfig {
        namespace: ns.clone(),
        name: name.clone(),
        hosts: names::route_hosts(&name, &ns, domain, private),
        traffic: split,
        tags,
        tag_header_routing: false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn route(uid: &str) -> Route {
        serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": "hello", "namespace": "default", "uid": uid},
            "spec": {}
        }))
        .expect("route")
    }

    #[test]
    fn a_route_deleted_while_reconciling_is_not_programmed_again() {
        let publisher = Publisher::new(Arc::new(ArcSwap::from_pointee(RoutingTable::default())));
        let endpoints = Endpoints::new();
        let live = |p: &Publisher| p.routes.lock().live.values().map(|(uid, _)| uid.clone()).collect::<Vec<_>>();
        publisher.set_route(&route("a"), &[], &[], &endpoints, "localhost");
        assert_eq!(live(&publisher), ["a"]);
        publisher.remove_route("default", "hello", "a");
        assert!(live(&publisher).is_empty());
        // The reconcile that read the route before its deletion finishes late.
        publisher.set_route(&route("a"), &[], &[], &endpoints, "localhost");
        assert!(live(&publisher).is_empty(), "a deleted route stays unpublished");
        // A new route under the same name is another object.
        publisher.set_route(&route("b"), &[], &[], &endpoints, "localhost");
        assert_eq!(live(&publisher), ["b"]);
        // The old route's deletion, seen late, does not take the new one down.
        publisher.remove_route("default", "hello", "a");
        assert_eq!(live(&publisher), ["b"]);
    }
}
