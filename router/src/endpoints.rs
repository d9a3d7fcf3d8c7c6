//! Live instances of each revision: written by the runtime as instances pass readiness or go
//! away, read by the router on every request without taking a lock.
//!
//! Draining is race-free: the runtime marks an instance draining *before* it waits for the
//! instance's in-flight count to reach zero, and the router re-checks the mark *after* it has
//! counted its request in. Either the router sees the mark and picks another instance, or the
//! runtime sees the request and waits for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::uri::Authority;
use parking_lot::Mutex;
pub use sluice_api::RevisionKey;
use tokio::sync::Notify;

/// One running, ready instance of a revision.
#[derive(Debug)]
pub struct Instance {
    /// Unique for the life of the process.
    pub id: u64,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `addr` as a URI authority, built once so proxying a request does not format it.
    authority: Authority,
    inflight: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
}

/// One request's claim on an instance; dropping it releases the claim.
#[derive(Debug)]
pub struct InstanceGuard {
    instance: Arc<Instance>,
    revision: Arc<RevisionEndpoints>,
}

/// The ready instances of one revision and its request counters.
#[derive(Debug)]
pub struct RevisionEndpoints {
    /// Which revision.
    pub key: RevisionKey,
    ready: ArcSwap<Vec<Arc<Instance>>>,
    inflight: AtomicUsize,
    requests: AtomicU64,
    next: AtomicUsize,
    changed: Notify,
}

/// Every revision's endpoints. Only the control path touches this map; the router holds the
/// `Arc<RevisionEndpoints>` its routing snapshot was built with.
#[derive(Debug, Default)]
pub struct Endpoints {
    revisions: Mutex<HashMap<RevisionKey, Arc<RevisionEndpoints>>>,
}

// === impl Instance ===

impl Instance {
    /// A new instance listening on `addr`.
    pub fn new(id: u64, addr: SocketAddr) -> Arc<Self> {
        let authority = Authority::try_from(addr.to_string()).expect("a socket address is a valid URI authority");
        Arc::new(Self {
            id,
            addr,
            authority,
            inflight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
        })
    }

    /// Where it listens, as the authority of an `http://` URI.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Requests in flight on this instance.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// True once the runtime has started to take it out of service.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Waits until no request is in flight, or `deadline` passes; true when idle.
    pub async fn wait_idle(&self, deadline: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.inflight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }
}

// === impl InstanceGuard ===

impl InstanceGuard {
    /// The claimed instance.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// The revision the instance belongs to.
    pub fn revision(&self) -> &Arc<RevisionEndpoints> {
        &self.revision
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.revision.inflight.fetch_sub(1, Ordering::SeqCst);
        if self.instance.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.instance.idle.notify_waiters();
        }
    }
}

// === impl RevisionEndpoints ===

impl RevisionEndpoints {
    /// Endpoints for `key`, with no instance yet.
    pub fn new(key: RevisionKey) -> Arc<Self> {
        Arc::new(Self {
            key,
            ready: ArcSwap::from_pointee(Vec::new()),
            inflight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            changed: Notify::new(),
        })
    }

    /// The ready instances now.
    pub fn ready(&self) -> Arc<Vec<Arc<Instance>>> {
        self.ready.load_full()
    }

    /// How many instances are ready.
    pub fn ready_count(&self) -> usize {
        self.ready.load().len()
    }

    /// Requests in flight across the revision's instances.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Requests proxied to this revision since it started.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Adds an instance that passed its readiness probe.
    pub fn add(&self, instance: Arc<Instance>) {
        self.ready.rcu(|cur| {
            let mut next: Vec<Arc<Instance>> = cur.iter().filter(|i| i.id != instance.id).cloned().collect();
            next.push(instance.clone());
            next
        });
        self.changed.notify_waiters();
    }

    /// Marks the instance draining and takes it out of the ready set; returns it so the caller
    /// can wait for its in-flight requests with [`Instance::wait_idle`].
    pub fn remove(&self, id: u64) -> Option<Arc<Instance>> {
        let mut removed = None;
        self.ready.rcu(|cur| {
            removed = cur.iter().find(|i| i.id == id).cloned();
            cur.iter().filter(|i| i.id != id).cloned().collect::<Vec<_>>()
        });
        if let Some(i) = &removed {
            i.draining.store(true, Ordering::SeqCst);
        }
        self.changed.notify_waiters();
        removed
    }

    /// Claims the least-loaded ready instance for one request; None when none is ready.
    pub fn pick(self: &Arc<Self>) -> Option<InstanceGuard> {
        self.pick_least_loaded(None)
    }

    /// Like [`pick`](Self::pick), but never the instance `except` (one that just refused a
    /// connection); None when no other instance is ready.
    pub fn pick_other(self: &Arc<Self>, except: u64) -> Option<InstanceGuard> {
        self.pick_least_loaded(Some(except))
    }

    /// One pass over the ready set, without allocating: the least-loaded instance that is not
    /// draining, ties broken by a rotating start so equally loaded instances share the work.
    /// A claim lost to a drain that began meanwhile is retried on the rest; each retry sees one
    /// more draining instance, so this ends.
    fn pick_least_loaded(self: &Arc<Self>, except: Option<u64>) -> Option<InstanceGuard> {
        let ready = self.ready.load();
        let n = ready.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        loop {
            let mut best: Option<(&Arc<Instance>, usize)> = None;
            for i in 0..n {
                let instance = &ready[start.wrapping_add(i) % n];
                if instance.is_draining() || Some(instance.id) == except {
                    continue;
                }
                let load = instance.inflight();
                if best.is_none_or(|(_, least)| load < least) {
                    best = Some((instance, load));
                }
            }
            let (instance, _) = best?;
            if let Some(guard) = self.claim(instance) {
                return Some(guard);
            }
        }
    }

    /// Claims a specific instance; None when it is draining.
    pub fn claim(self: &Arc<Self>, instance: &Arc<Instance>) -> Option<InstanceGuard> {
        instance.inflight.fetch_add(1, Ordering::SeqCst);
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = InstanceGuard { instance: instance.clone(), revision: self.clone() };
        if instance.is_draining() {
            // Dropping the guard undoes the claim and wakes a waiting drain.
            return None;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(guard)
    }

    /// Waits until the ready set changes (an instance added or removed).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

// === impl Endpoints ===

impl Endpoints {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The endpoints of `key`, created empty on first use.
    pub fn revision(&self, key: &RevisionKey) -> Arc<RevisionEndpoints> {
        self.revisions.lock().entry(key.clone()).or_insert_with(|| RevisionEndpoints::new(key.clone())).clone()
    }

    /// The endpoints of `key`, if any.
    pub fn get(&self, key: &RevisionKey) -> Option<Arc<RevisionEndpoints>> {
        self.revisions.lock().get(key).cloned()
    }

    /// Forgets `key` (its revision is gone).
    pub fn forget(&self, key: &RevisionKey) {
        self.revisions.lock().remove(key);
    }
}

#[cfg(test)]
mod tests;
