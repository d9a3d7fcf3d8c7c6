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

use super::{Ctx, names};

/// Owns the live routing table.
pub struct Publisher {
    table: Arc<ArcSwap<RoutingTable>>,
    routes: Mutex<BTreeMap<(String, String), RouteConfig>>,
    tag_header_routing: AtomicBool,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher writing to `table`.
    pub fn new(table: Arc<ArcSwap<RoutingTable>>) -> Self {
        Self { table, routes: Mutex::new(BTreeMap::new()), tag_header_routing: AtomicBool::new(false) }
    }

    /// The table the router reads.
    pub fn table(&self) -> Arc<ArcSwap<RoutingTable>> {
        self.table.clone()
    }

    /// Programs `route` with its assigned `traffic` (from its status) and republishes.
    pub fn set_route(&self, route: &Route, traffic: &[TrafficTarget], revisions: &[Revision], ctx: &Ctx) {
        let config = route_config(route, traffic, revisions, &ctx.endpoints, &ctx.domain);
        let key = (config.namespace.clone(), config.name.clone());
        let changed = {
            let mut routes = self.routes.lock();
            let changed = routes.get(&key).is_none_or(|old| !same_config(old, &config));
            routes.insert(key, config);
            changed
        };
        if changed {
            self.rebuild();
        }
    }

    /// Stops serving a deleted route.
    pub fn remove_route(&self, namespace: &str, name: &str) {
        if self.routes.lock().remove(&(namespace.to_string(), name.to_string())).is_some() {
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
        let mut configs = Vec::with_capacity(routes.len());
        for config in routes.values() {
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
