//! `sluice_workqueue_depth{kind}`: objects of a kind whose reconcile has been requested and has
//! not started yet.
//!
//! kube-runtime's `Controller` keeps its queue (the scheduler) private, so this counts from
//! outside it, at the two places Sluice sees: every trigger on its way in (the kind's own watch
//! events, its owned objects' owner references, the mapped watches, `reconcile_on` notices) and
//! every reconcile as it starts. Like the scheduler, it counts an object once however often it
//! is triggered; a trigger while the object's reconcile runs counts until the reconcile after
//! it starts (the scheduler holds such a request back, then runs it). A request for an object
//! no longer in the cache leaves when the controller reports it not found.
//!
//! Each request and each start is also logged at DEBUG (`RUST_LOG=sluice_controller=debug`),
//! with the kind and the object: the time between the two is the controller's queue (about
//! 1–2 ms per hop even when idle: kube-runtime's scheduler holds every request in a
//! millisecond-granular `DelayQueue`).
//!
//! Not counted: timed requeues (an `Action::requeue`, the error policy's retries) — the
//! scheduler keeps those out of sight until they are due, as client-go's delaying queue keeps
//! them out of its `workqueue_depth` until then; when one comes due it is running within
//! moments, but it is not on this gauge while it waits its turn behind others.

use std::collections::HashSet;
use std::future::{Ready, ready};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use metrics::{Gauge, gauge};
use parking_lot::Mutex;

/// What a controller's output stream yields for each request.
type Outcome<K, E> = Result<(ObjectRef<K>, Action), controller::Error<E, watcher::Error>>;

/// One kind's requested-but-not-started objects, on its gauge. Cheap to clone.
#[derive(Clone)]
pub struct WorkQueue {
    inner: Arc<Inner>,
}

struct Inner {
    /// `(namespace, name)` of each waiting object: at most one entry per object, and entries
    /// leave when the object's reconcile starts or it is reported gone, so this holds no more
    /// than the objects the controller has been asked about since.
    waiting: Mutex<HashSet<(Option<String>, String)>>,
    depth: Gauge,
    /// The kind, for the debug log.
    kind: &'static str,
}

// === impl WorkQueue ===

impl WorkQueue {
    /// The queue of `kind` (the gauge's label), registered at 0.
    pub fn new(kind: &'static str) -> Self {
        let depth = gauge!("sluice_workqueue_depth", "kind" => kind);
        depth.set(0.0);
        Self { inner: Arc::new(Inner { waiting: Mutex::new(HashSet::new()), depth, kind }) }
    }

    /// A reconcile of `obj` was requested.
    pub fn requested<K: Resource>(&self, obj: &ObjectRef<K>) {
        tracing::debug!(kind = self.inner.kind, namespace = obj.namespace.as_deref(), name = %obj.name, "reconcile requested");
        self.update(|w| {
            w.insert(key(obj.namespace.as_deref(), &obj.name));
        });
    }

    /// `obj`'s reconcile starts.
    pub fn started<K: Resource>(&self, obj: &K) {
        let meta = obj.meta();
        let name = meta.name.as_deref().unwrap_or_default();
        tracing::debug!(kind = self.inner.kind, namespace = meta.namespace.as_deref(), name, "reconcile started");
        self.update(|w| {
            w.remove(&key(meta.namespace.as_deref(), name));
        });
    }

    /// The controller dropped a request for `obj`: it is no longer in the cache.
    pub fn dropped(&self, obj: &ObjectRef<DynamicObject>) {
        self.update(|w| {
            w.remove(&key(obj.namespace.as_deref(), &obj.name));
        });
    }

    /// The kind's own watch `objects`, each counted as a request for itself (as
    /// `Controller::new` triggers them).
    pub fn own<K, S>(&self, objects: S) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
    where
        K: Resource<DynamicType = ()> + Send + 'static,
        S: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    {
        let queue = self.clone();
        objects.inspect_ok(move |obj| queue.requested(&ObjectRef::from_obj(obj)))
    }

    /// `children`, each counted as a request for its owners of kind `K` (as `Controller::owns`
    /// triggers them: every owner reference naming a `K`).
    pub fn owners<K, C, S>(&self, children: S) -> impl Stream<Item = Result<C, watcher::Error>> + Send + 'static
    where
        K: Resource<DynamicType = ()>,
        C: Resource + Send + 'static,
        S: Stream<Item = Result<C, watcher::Error>> + Send + 'static,
    {
        let queue = self.clone();
        children.inspect_ok(move |child| {
            let meta = child.meta();
            for owner in meta.owner_references.iter().flatten() {
                if let Some(obj) = ObjectRef::<K>::from_owner_ref(meta.namespace.as_deref(), owner, ()) {
                    queue.requested(&obj);
                }
            }
        })
    }

    /// `triggers` (object references), each counted as requested.
    pub fn triggers<K, S>(&self, triggers: S) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
    where
        K: Resource + Send + 'static,
        K::DynamicType: Send,
        S: Stream<Item = ObjectRef<K>> + Send + 'static,
    {
        let queue = self.clone();
        futures::StreamExt::inspect(triggers, move |obj| queue.requested(obj))
    }

    /// For the controller's output stream: a request for an object no longer in the cache
    /// (which the controller drops and reports) leaves the queue.
    pub fn settle<K: Resource, E: std::error::Error>(&self) -> impl FnMut(Outcome<K, E>) -> Ready<()> + use<K, E> {
        let queue = self.clone();
        move |result| {
            if let Err(controller::Error::ObjectNotFound(obj)) = &result {
                queue.dropped(obj);
            }
            ready(())
        }
    }

    /// Objects waiting now.
    #[cfg(test)]
    pub fn depth(&self) -> usize {
        self.inner.waiting.lock().len()
    }

    fn update(&self, change: impl FnOnce(&mut HashSet<(Option<String>, String)>)) {
        let mut waiting = self.inner.waiting.lock();
        change(&mut waiting);
        // Set under the lock, so two updates cannot leave the gauge at the older length.
        #[allow(clippy::cast_precision_loss)]
        self.inner.depth.set(waiting.len() as f64);
    }
}

fn key(namespace: Option<&str>, name: &str) -> (Option<String>, String) {
    (namespace.map(str::to_string), name.to_string())
}

#[cfg(test)]
mod tests {
    use sluice_api::Revision;

    use super::*;

    fn revision(ns: &str, name: &str) -> Revision {
        let mut r = Revision::new(name, Default::default());
        r.metadata.namespace = Some(ns.into());
        r
    }

    #[test]
    fn an_object_counts_once_until_its_reconcile_starts() {
        let q = WorkQueue::new("Test");
        let a = ObjectRef::<Revision>::new("a").within("default");
        q.requested(&a);
        q.requested(&a);
        q.requested(&ObjectRef::<Revision>::new("a").within("other"));
        assert_eq!(q.depth(), 2, "one per object");
        q.started(&revision("default", "a"));
        assert_eq!(q.depth(), 1);
        // Triggered again while it runs: waits for the next start.
        q.requested(&a);
        assert_eq!(q.depth(), 2);
        q.started(&revision("default", "a"));
        q.dropped(&ObjectRef::<Revision>::new("a").within("other").erase());
        assert_eq!(q.depth(), 0);
    }
}
