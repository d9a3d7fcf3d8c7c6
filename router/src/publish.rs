//! Publishing routing snapshots. The controller describes each Route as plain data (a
//! [`RouteSpec`]: revisions named by key) and hands it to a [`RoutePublisher`]; the
//! [`Publisher`] here resolves every key to the revision's live endpoints, rebuilds the whole
//! table and swaps it in with one atomic store, so a request sees either the old table or the
//! new one, never a mix.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use sluice_api::tombstones::Tombstones;

use crate::endpoints::{Endpoints, RevisionKey};
use crate::table::{HttpProtocol, RouteConfig, RoutingTable};

mod stored;

use stored::Stored;

/// A route as the controller describes it: revisions named by key.
pub type RouteSpec = RouteConfig<RevisionKey>;

/// Where the controller sends routing state. The embedded [`Publisher`] swaps the local
/// router's table; another implementation may hand the same data to routers elsewhere.
pub trait RoutePublisher: Send + Sync {
    /// Programs `route` (from the Route object with `uid`) and republishes if it changed. A
    /// route whose removal was already seen is not programmed again.
    fn set_route(&self, uid: &str, route: RouteSpec);

    /// Stops serving the deleted route `namespace/name` with `uid` (a route created since
    /// under the same name is kept).
    fn remove_route(&self, namespace: &str, name: &str, uid: &str);

    /// The revision `key` is gone: its endpoints are dropped, and routes still naming it are
    /// rebuilt against fresh (empty) ones.
    fn forget_revision(&self, key: &RevisionKey);

    /// Turns Knative's `tag-header-based-routing` feature on or off.
    fn set_tag_header_routing(&self, on: bool);

    /// Sets Knative's `http-protocol` (plain HTTP enabled, redirected to HTTPS, or disabled).
    fn set_http_protocol(&self, protocol: HttpProtocol);
}

/// Owns the live routing table of the embedded router.
pub struct Publisher {
    table: Arc<ArcSwap<RoutingTable>>,
    endpoints: Arc<Endpoints>,
    routes: Mutex<Routes>,
    tag_header_routing: AtomicBool,
}

/// The programmed routes, by namespace and name, with the uid of the Route each came from and
/// when it was first programmed; and the uids of deleted Routes, whose late programming is
/// ignored.
#[derive(Default)]
struct Routes {
    /// Each in one allocation (module `stored`): as plain values a route's spec was a third of
    /// its memory in the router.
    live: BTreeSet<Stored>,
    deleted: Tombstones,
    /// The next [`Stored::since`].
    next: u64,
    /// Published with every table.
    http_protocol: HttpProtocol,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher writing to `table`, resolving revisions in `endpoints`.
    pub fn new(table: Arc<ArcSwap<RoutingTable>>, endpoints: Arc<Endpoints>) -> Self {
        Self { table, endpoints, routes: Mutex::new(Routes::default()), tag_header_routing: AtomicBool::new(false) }
    }

    /// The table the router reads.
    pub fn table(&self) -> Arc<ArcSwap<RoutingTable>> {
        self.table.clone()
    }

    /// The uids of the routes programmed now, in namespace/name order.
    pub fn live_uids(&self) -> Vec<String> {
        self.routes.lock().live.iter().map(|p| p.uid().to_string()).collect()
    }

    /// Rebuilds the table from the programmed routes, under the routes lock so that two
    /// rebuilds cannot store out of order. A route claiming a host a route programmed before it
    /// claims, or one the table refuses, is left out (and logged); the rest are published.
    fn rebuild(&self, routes: &Routes) {
        let tag_header_routing = self.tag_header_routing.load(Ordering::SeqCst);
        let mut hosts = HashSet::new();
        let mut configs = Vec::with_capacity(routes.live.len());
        let mut by_age: Vec<&Stored> = routes.live.iter().collect();
        by_age.sort_by_key(|p| p.since);
        for stored in by_age {
            let spec = stored.spec();
            let mine: Vec<&String> = spec.hosts.iter().chain(spec.tags.iter().flat_map(|t| t.hosts.iter())).collect();
            if let Some(taken) = mine.iter().find(|h| hosts.contains(h.as_str())) {
                tracing::error!(route = %format!("{}/{}", spec.namespace, spec.name), host = %taken, "host already served by another route; route not published");
                continue;
            }
            hosts.extend(mine.into_iter().cloned());
            let config = RouteConfig { tag_header_routing, ..spec };
            configs.push(config.map(|key| self.endpoints.revision(&key)));
        }
        // A route the table refuses (e.g. a rule's regex over the router's size limit) is left
        // out whole, as a route whose host is taken is: one bad route must not hold back the
        // updates of every other.
        loop {
            match self.table.load().rebuild(configs.clone()) {
                Ok(table) => {
                    self.table.store(Arc::new(table.with_http_protocol(routes.http_protocol)));
                    return;
                }
                Err(e) => {
                    let before = configs.len();
                    configs.retain(|c| !e.is_about(&c.namespace, &c.name));
                    if configs.len() == before {
                        tracing::error!(error = %e, "routing table not published");
                        return;
                    }
                    tracing::error!(error = %e, "route not published");
                }
            }
        }
    }
}

impl RoutePublisher for Publisher {
    fn set_route(&self, uid: &str, route: RouteSpec) {
        let key = stored::key(&route.namespace, &route.name);
        let mut routes = self.routes.lock();
        if routes.deleted.contains(uid) {
            return;
        }
        let mut new = Stored::new(uid, &route, 0);
        new.since = match routes.live.get(&key[..]) {
            Some(old) if old.same(&new) => return,
            // An edit keeps the route's place; a Route recreated under the same name takes a new one.
            Some(old) if old.uid() == uid => old.since,
            _ => {
                routes.next += 1;
                routes.next
            }
        };
        routes.live.replace(new);
        self.rebuild(&routes);
    }

    fn remove_route(&self, namespace: &str, name: &str, uid: &str) {
        let mut routes = self.routes.lock();
        routes.deleted.bury(uid);
        let key = stored::key(namespace, name);
        let ours = routes.live.get(&key[..]).is_some_and(|p| uid.is_empty() || p.uid() == uid);
        if ours {
            routes.live.remove(&key[..]);
            self.rebuild(&routes);
        }
    }

    fn forget_revision(&self, key: &RevisionKey) {
        let routes = self.routes.lock();
        self.endpoints.forget(key);
        if routes.live.iter().any(|p| p.spec().revisions().any(|k| k == key)) {
            self.rebuild(&routes);
        }
    }

    fn set_tag_header_routing(&self, on: bool) {
        let routes = self.routes.lock();
        if self.tag_header_routing.swap(on, Ordering::SeqCst) != on {
            self.rebuild(&routes);
        }
    }

    fn set_http_protocol(&self, protocol: HttpProtocol) {
        let mut routes = self.routes.lock();
        if routes.http_protocol != protocol {
            routes.http_protocol = protocol;
            self.rebuild(&routes);
        }
    }
}

#[cfg(test)]
mod tests;
