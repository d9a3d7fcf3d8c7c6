//! Publishing routing snapshots. The controller describes each Route as plain data (a
//! [`RouteSpec`]: revisions named by key) and hands it to a [`RoutePublisher`]; the
//! [`Publisher`] here resolves the keys to the revisions' live endpoints, builds the next
//! table and swaps it in with one atomic store, so a request sees either the old table or the
//! new one, never a mix.
//!
//! One route's change builds the next table as an edit of the current one (only that route
//! compiled, its spec alone read back: [`RoutingTable::with_route`]) when the change cannot
//! alter which other routes are published: the route takes no host another route claims, and
//! it neither claims nor frees a host of a route left out. Otherwise (a host conflict, a
//! refused route, a left-out route that may now fit, a global setting) the whole table is
//! rebuilt from every stored spec, as before, and the rebuild decides who is left out.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use sluice_api::tombstones::Tombstones;

use crate::endpoints::{Endpoints, RevisionKey};
use crate::table::{HttpProtocol, RouteConfig, RoutingTable, host_key};

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
    /// Whether a route's change may be published as an edit of the table (always, but in
    /// tests comparing edits with whole rebuilds).
    edits: bool,
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
    /// The keys of live routes the published table leaves out (a host an older route claims,
    /// or refused by the table); empty in a healthy cluster.
    left_out: BTreeSet<Vec<u8>>,
    /// The published table is what a whole rebuild from `live` gives (false until the first
    /// rebuild, and after a table that could not be published): only then may it be edited.
    synced: bool,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher writing to `table`, resolving revisions in `endpoints`.
    pub fn new(table: Arc<ArcSwap<RoutingTable>>, endpoints: Arc<Endpoints>) -> Self {
        Self {
            table,
            endpoints,
            routes: Mutex::new(Routes::default()),
            tag_header_routing: AtomicBool::new(false),
            edits: true,
        }
    }

    /// The same publisher rebuilding the whole table on every change (the reference the
    /// tests compare edits with).
    #[cfg(test)]
    fn whole_only(mut self) -> Self {
        self.edits = false;
        self
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
    fn rebuild(&self, routes: &mut Routes) {
        let tag_header_routing = self.tag_header_routing.load(Ordering::SeqCst);
        let mut hosts = HashSet::new();
        let mut left_out = BTreeSet::new();
        let mut configs = Vec::with_capacity(routes.live.len());
        let mut by_age: Vec<&Stored> = routes.live.iter().collect();
        by_age.sort_by_key(|p| p.since);
        for stored in by_age {
            let spec = stored.spec();
            let mine: Vec<&String> = spec.hosts.iter().chain(spec.tags.iter().flat_map(|t| t.hosts.iter())).collect();
            if let Some(taken) = mine.iter().find(|h| hosts.contains(h.as_str())) {
                tracing::error!(route = %format!("{}/{}", spec.namespace, spec.name), host = %taken, "host already served by another route; route not published");
                left_out.insert(stored.key().to_vec());
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
                    routes.left_out = left_out;
                    routes.synced = true;
                    return;
                }
                Err(e) => {
                    let before = configs.len();
                    configs.retain(|c| {
                        let refused = e.is_about(&c.namespace, &c.name);
                        if refused {
                            left_out.insert(stored::key(&c.namespace, &c.name));
                        }
                        !refused
                    });
                    if configs.len() == before {
                        tracing::error!(error = %e, "routing table not published");
                        routes.synced = false;
                        return;
                    }
                    tracing::error!(error = %e, "route not published");
                }
            }
        }
    }

    /// Publishes `spec` (just stored; `old` is the spec it replaced) as an edit of the current
    /// table, when that is what a whole rebuild would publish. False when the whole table must
    /// be rebuilt instead (nothing published then).
    fn set_alone(&self, routes: &Routes, spec: RouteSpec, old: Option<RouteSpec>) -> bool {
        let key = stored::key(&spec.namespace, &spec.name);
        if !self.edits || !routes.synced || routes.left_out.contains(&key) {
            return false;
        }
        // A left-out route may fit once this one frees a host, and a route taking one of its
        // hosts may be the one left out instead (by age): the rebuild decides.
        if !routes.left_out.is_empty() {
            let theirs = Self::left_out_hosts(routes);
            if old.iter().chain([&spec]).flat_map(claimed).any(|h| theirs.contains(&h)) {
                return false;
            }
        }
        let tag_header_routing = self.tag_header_routing.load(Ordering::SeqCst);
        let config = RouteConfig { tag_header_routing, ..spec }.map(|key| self.endpoints.revision(&key));
        // A host another route serves, or a route the table refuses: the rebuild leaves one out.
        match self.table.load().with_route(config) {
            Ok(Some(table)) => {
                self.table.store(Arc::new(table.with_http_protocol(routes.http_protocol)));
                true
            }
            Ok(None) | Err(_) => false,
        }
    }

    /// Unpublishes the removed route `spec` as an edit of the current table, when that is what
    /// a whole rebuild would publish; `was_left_out` when the table did not serve it. False when
    /// the whole table must be rebuilt instead.
    fn remove_alone(&self, routes: &Routes, spec: &RouteSpec, was_left_out: bool) -> bool {
        if !self.edits || !routes.synced {
            return false;
        }
        if !routes.left_out.is_empty() {
            let theirs = Self::left_out_hosts(routes);
            if claimed(spec).any(|h| theirs.contains(&h)) {
                return false;
            }
        }
        if was_left_out {
            return true;
        }
        match self.table.load().without_route(&spec.namespace, &spec.name) {
            Some(table) => {
                self.table.store(Arc::new(table.with_http_protocol(routes.http_protocol)));
                true
            }
            None => false,
        }
    }

    /// Publishes `table` with routes `naming` (namespace, name) compiled again from their
    /// specs, their revisions resolved afresh, as edits (their hosts unchanged, no other route
    /// is affected). False when the whole table must be rebuilt instead: more than a few
    /// routes (each edit copies the table), or an edit that cannot be made alone.
    fn resolve_again(&self, routes: &Routes, table: &RoutingTable, naming: &[(&str, &str)]) -> bool {
        /// Past this many routes, one whole rebuild is cheaper than an edit per route.
        const MAX_EDITS: usize = 16;
        if !self.edits || !routes.synced || naming.len() > MAX_EDITS {
            return false;
        }
        let tag_header_routing = self.tag_header_routing.load(Ordering::SeqCst);
        let mut next: Option<RoutingTable> = None;
        for (namespace, name) in naming {
            let Some(stored) = routes.live.get(&stored::key(namespace, name)[..]) else { return false };
            let config = RouteConfig { tag_header_routing, ..stored.spec() }.map(|key| self.endpoints.revision(&key));
            match next.as_ref().unwrap_or(table).with_route(config) {
                Ok(Some(edited)) => next = Some(edited),
                Ok(None) | Err(_) => return false,
            }
        }
        if let Some(table) = next {
            self.table.store(Arc::new(table.with_http_protocol(routes.http_protocol)));
        }
        true
    }

    /// Every host (as the table keys it) the left-out routes claim: their specs alone read back.
    fn left_out_hosts(routes: &Routes) -> HashSet<Box<str>> {
        routes
            .left_out
            .iter()
            .filter_map(|key| routes.live.get(&key[..]))
            .flat_map(|s| claimed(&s.spec()).collect::<Vec<_>>())
            .collect()
    }
}

/// The hosts `spec` claims, default and tag hosts, as the table keys them.
fn claimed(spec: &RouteSpec) -> impl Iterator<Item = Box<str>> + '_ {
    spec.hosts.iter().chain(spec.tags.iter().flat_map(|t| t.hosts.iter())).map(|h| host_key(h))
}

impl RoutePublisher for Publisher {
    fn set_route(&self, uid: &str, route: RouteSpec) {
        let key = stored::key(&route.namespace, &route.name);
        let mut routes = self.routes.lock();
        if routes.deleted.contains(uid) {
            return;
        }
        let mut new = Stored::new(uid, &route, 0);
        let old = routes.live.get(&key[..]);
        if old.is_some_and(|old| old.same(&new)) {
            return;
        }
        // An edit keeps the route's place; a Route recreated under the same name takes a new one.
        let kept = old.filter(|old| old.uid() == uid).map(|old| old.since);
        // The old spec is read back only when a left-out route may care about its hosts.
        let old = old.filter(|_| !routes.left_out.is_empty()).map(Stored::spec);
        new.since = kept.unwrap_or_else(|| {
            routes.next += 1;
            routes.next
        });
        routes.live.replace(new);
        if !self.set_alone(&routes, route, old) {
            self.rebuild(&mut routes);
        }
    }

    fn remove_route(&self, namespace: &str, name: &str, uid: &str) {
        let mut routes = self.routes.lock();
        routes.deleted.bury(uid);
        let key = stored::key(namespace, name);
        let ours = routes.live.get(&key[..]).is_some_and(|p| uid.is_empty() || p.uid() == uid);
        if !ours {
            return;
        }
        let Some(gone) = routes.live.take(&key[..]) else { return };
        let was_left_out = routes.left_out.remove(&key);
        if !self.remove_alone(&routes, &gone.spec(), was_left_out) {
            self.rebuild(&mut routes);
        }
    }

    fn forget_revision(&self, key: &RevisionKey) {
        let mut routes = self.routes.lock();
        self.endpoints.forget(key);
        // The routes the table resolved to the forgotten endpoints are compiled again against
        // fresh ones; a route left out holds none (it is resolved afresh when it gets in).
        let table = self.table.load_full();
        let naming = table.routes_naming(key);
        if (naming.is_empty() && routes.synced) || self.resolve_again(&routes, &table, &naming) {
            return;
        }
        self.rebuild(&mut routes);
    }

    fn set_tag_header_routing(&self, on: bool) {
        let mut routes = self.routes.lock();
        if self.tag_header_routing.swap(on, Ordering::SeqCst) != on {
            self.rebuild(&mut routes);
        }
    }

    fn set_http_protocol(&self, protocol: HttpProtocol) {
        let mut routes = self.routes.lock();
        if routes.http_protocol != protocol {
            routes.http_protocol = protocol;
            self.rebuild(&mut routes);
        }
    }
}

#[cfg(test)]
mod tests;
