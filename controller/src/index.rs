//! Indexes beside the watch caches, kept from the same watch events: which cached objects of a
//! namespace have a given label, annotation entry, owner or traffic reference ([`Facet`]).
//! A reconcile asks the index for the few names that can concern it and reads those objects
//! from the cache by name, instead of filtering every cached object of the kind: with N
//! services that filter made each reconcile O(N), and setting up N services O(N²).
//!
//! An index only narrows the candidates. Callers keep their exact test (e.g.
//! `route::reads_revision`) over what it returns, so a reconcile decides as it did over
//! the whole cache. Like the cache it sits beside, the index takes a re-list
//! (`Init` … `InitDone`) whole at its end, so a relist never shows a half-filled index.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use parking_lot::RwLock;

use crate::Error;

/// What an object is indexed by; each facet has a value (a name) per object, or several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    /// A Revision's Configuration (label `serving.knative.dev/configuration`).
    Configuration,
    /// A Route listed in the object's `serving.knative.dev/routes` annotation (each name).
    ListedBy,
    /// The uid of the object's controlling owner.
    Owner,
    /// A Revision a Route's traffic or rules name, in its spec or its status.
    RevisionRef,
    /// A Configuration a Route's traffic or rules name, in its spec or its status.
    ConfigurationRef,
}

/// The facets of one object: (facet, value) pairs.
pub type Facets<K> = fn(&K) -> Vec<(Facet, String)>;

/// A watch cache and its index, filled by the same events ([`Indexed::reflect`]).
pub struct Indexed<K: Resource<DynamicType = ()> + 'static> {
    /// The cache: every object of the kind, by namespace and name.
    pub store: Store<K>,
    index: Arc<Index<K>>,
}

/// The index of one kind.
struct Index<K> {
    facets: Facets<K>,
    state: RwLock<State>,
}

/// The index in use, and the one a re-list is filling.
#[derive(Default)]
struct State {
    live: Map,
    relist: Option<Map>,
}

/// Namespace, facet, value.
type Key = (String, Facet, String);

/// Names by key, and each object's keys (to take them out when it changes or goes).
#[derive(Default)]
struct Map {
    names: HashMap<Key, BTreeSet<String>>,
    keys: HashMap<(String, String), Vec<Key>>,
}

// === impl Indexed ===

impl<K> Clone for Indexed<K>
where
    K: Resource<DynamicType = ()> + 'static,
{
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), index: self.index.clone() }
    }
}

impl<K> Indexed<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// An index by `facets` beside `store` (which must be filled by the same events as the
    /// index: see [`reflect`](Self::reflect)).
    pub fn new(store: Store<K>, facets: Facets<K>) -> Self {
        Self { store, index: Arc::new(Index { facets, state: RwLock::default() }) }
    }

    /// `events` (a reflector's output: the cache already holds each) with the index brought up
    /// to date with each before it is passed on, so whatever the event triggers finds both
    /// the cache and the index holding it.
    pub fn reflect<S>(&self, events: S) -> impl Stream<Item = S::Item> + Send + 'static + use<K, S>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
        K: Send + Sync,
    {
        let index = self.index.clone();
        events.inspect_ok(move |event| index.apply(event))
    }

    /// Takes one watch event into the index (the cache takes it through its writer).
    pub fn apply(&self, event: &watcher::Event<K>) {
        self.index.apply(event);
    }

    /// Waits until the cache (and so the index) holds the first full list.
    pub async fn ready(&self) -> Result<(), Error> {
        self.store.wait_until_ready().await.map_err(|_| Error::CacheGone)
    }

    /// The cached object `name` of namespace `ns`.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::new(name).within(ns))
    }

    /// The names of the objects of namespace `ns` whose `facet` has `value`, in name order.
    pub fn names(&self, ns: &str, facet: Facet, value: &str) -> Vec<String> {
        let key = (ns.to_string(), facet, value.to_string());
        let state = self.index.state.read();
        state.live.names.get(&key).map(|n| n.iter().cloned().collect()).unwrap_or_default()
    }

    /// The cached objects of namespace `ns` whose `facet` has `value`, in name order.
    pub fn with(&self, ns: &str, facet: Facet, value: &str) -> Vec<Arc<K>> {
        self.names(ns, facet, value).iter().filter_map(|name| self.get(ns, name)).collect()
    }
}

// === impl Index ===

impl<K> Index<K>
where
    K: Resource<DynamicType = ()>,
{
    fn apply(&self, event: &watcher::Event<K>) {
        let mut state = self.state.write();
        match event {
            watcher::Event::Apply(obj) => state.live.put(obj, self.facets),
            watcher::Event::Delete(obj) => state.live.remove(&id(obj)),
            watcher::Event::Init => state.relist = Some(Map::default()),
            watcher::Event::InitApply(obj) => state.relist.get_or_insert_default().put(obj, self.facets),
            watcher::Event::InitDone => state.live = state.relist.take().unwrap_or_default(),
        }
    }
}

/// An object's namespace and name.
fn id<K: Resource>(obj: &K) -> (String, String) {
    let meta = obj.meta();
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

// === impl Map ===

impl Map {
    /// Indexes `obj` (in place of what was indexed under its name).
    fn put<K: Resource>(&mut self, obj: &K, facets: Facets<K>) {
        let id = id(obj);
        self.remove(&id);
        let mut keys: Vec<Key> = facets(obj).into_iter().map(|(facet, value)| (id.0.clone(), facet, value)).collect();
        keys.sort();
        keys.dedup();
        for key in &keys {
            self.names.entry(key.clone()).or_default().insert(id.1.clone());
        }
        if !keys.is_empty() {
            self.keys.insert(id, keys);
        }
    }

    /// Takes the object `id` out.
    fn remove(&mut self, id: &(String, String)) {
        for key in self.keys.remove(id).into_iter().flatten() {
            if let Some(names) = self.names.get_mut(&key) {
                names.remove(&id.1);
                if names.is_empty() {
                    self.names.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
