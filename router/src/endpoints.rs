//! Live instances of each revision: written by the runtime as instances pass readiness or go
//! away, read by the router on every request without taking a lock.
//!
//! Admission comes first: each revision has an activator [`Gate`] whose capacity is
//! `containerConcurrency × ready instances`, kept current here as instances come and go. A
//! request takes a [`Permit`] from it, then claims an instance with a free slot (never more
//! than `containerConcurrency` requests on one instance); the claim's [`InstanceGuard`] holds
//! the permit, so both are given back together when the response ends.
//!
//! Draining is race-free: the runtime marks an instance draining *before* it waits for the
//! instance's in-flight count to reach zero, and the router re-checks the mark *after* it has
//! counted its request in. Either the router sees the mark and picks another instance, or the
//! runtime sees the request and waits for it.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::uri::Authority;
use parking_lot::Mutex;
pub use sluice_activator::{Gate, Permit, Refused, Settings as AdmissionSettings};
pub use sluice_api::RevisionKey;
use tokio::sync::Notify;

mod responses;

pub use responses::{
    FAILURES, Failure, Histogram, HistogramSnapshot, LATENCY_BUCKETS_MS, OwnerCell, Owners, Responses,
};

/// Called with a revision's key when a request starts waiting for its capacity: the autoscaler's
/// cue to scale it up now.
pub type Poke = Arc<dyn Fn(&RevisionKey) + Send + Sync>;

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
    /// Set for good once anything waits for the instance to go idle ([`Instance::wait_idle`]):
    /// until then a release that leaves it idle has nobody to wake, and skips `Notify`'s lock.
    idle_watched: AtomicBool,
    idle: Notify,
}

/// One request's claim on an instance; dropping it releases the claim.
#[derive(Debug)]
pub struct InstanceGuard {
    instance: Arc<Instance>,
    revision: Arc<RevisionEndpoints>,
    permit: Option<Permit>,
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
    /// Wakes requests waiting for the ready set to change; made by the first to wait (most
    /// revisions never have one: inline it was 32 bytes of each).
    changed: OnceLock<Box<Notify>>,
    /// Requests one instance may hold at once; 0 for no limit.
    container_concurrency: AtomicU64,
    gate: Gate,
    /// Allocated on the revision's first response: most revisions of a large table are never
    /// requested, and the counters inline were 328 bytes of each. Costs one load per response.
    responses: OnceLock<Box<Responses>>,
    owners: OwnerCell,
}

/// Every revision's endpoints. Only the control path touches this map; the router holds the
/// `Arc<RevisionEndpoints>` its routing snapshot was built with.
#[derive(Default)]
pub struct Endpoints {
    revisions: Mutex<HashSet<ByKey>>,
    admission: AdmissionSettings,
    poke: Option<Poke>,
}

/// A revision's endpoints in the registry, found by their own key: a map would keep a second
/// copy of every key.
struct ByKey(Arc<RevisionEndpoints>);

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
            idle_watched: AtomicBool::new(false),
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
        // Before the first look at `inflight`: a release that finds no watcher (and so does
        // not notify) came before this store, and so before that look, which then sees its
        // decrement (every access here is SeqCst).
        self.idle_watched.store(true, Ordering::SeqCst);
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

    /// Takes the request's admission out of this claim, to carry it to another instance.
    pub fn take_permit(&mut self) -> Option<Permit> {
        self.permit.take()
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.revision.inflight.fetch_sub(1, Ordering::SeqCst);
        if self.instance.inflight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.instance.idle_watched.load(Ordering::SeqCst)
        {
            self.instance.idle.notify_waiters();
        }
    }
}

// === impl RevisionEndpoints ===

impl RevisionEndpoints {
    /// Endpoints for `key`, with no instance yet and no concurrency limit.
    pub fn new(key: RevisionKey) -> Arc<Self> {
        Self::with_admission(key, AdmissionSettings::default(), None)
    }

    /// Endpoints for `key` whose gate queues as `settings` say and calls `poke` when a request
    /// starts to wait.
    pub fn with_admission(key: RevisionKey, settings: AdmissionSettings, poke: Option<Poke>) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Self>| Self::build(key, settings, poke.map(|poke| (poke, me.clone()))))
    }

    /// The endpoints, their gate calling `poke` with their own key (reached through `Weak`, so
    /// the gate keeps no copy of it).
    fn build(key: RevisionKey, settings: AdmissionSettings, poke: Option<(Poke, Weak<Self>)>) -> Self {
        let gate = match poke {
            Some((poke, me)) => Gate::new(settings, move || {
                // A request waiting at the gate holds the endpoints, so they are alive here.
                if let Some(me) = me.upgrade() {
                    poke(&me.key);
                }
            }),
            None => Gate::new(settings, || {}),
        };
        Self {
            key,
            ready: ArcSwap::new(no_instances()),
            inflight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            changed: OnceLock::new(),
            container_concurrency: AtomicU64::new(0),
            gate,
            responses: OnceLock::new(),
            owners: OwnerCell::default(),
        }
    }

    /// The revision's admission: its capacity, queue and counters.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The counters to record the revision's responses in, allocated by the first caller.
    pub fn responses(&self) -> &Responses {
        self.responses.get_or_init(Box::default)
    }

    /// The counters to read: the revision's, or zeros when it has recorded nothing (reading
    /// allocates nothing, so a scrape does not give every idle revision its counters).
    pub fn responses_so_far(&self) -> &Responses {
        static NONE: Responses = Responses::new();
        self.responses.get().map_or(&NONE, |r| r)
    }

    /// The revision's Configuration and Service, for labelling its counters.
    pub fn owners(&self) -> &OwnerCell {
        &self.owners
    }

    /// Sets how many requests one instance may hold at once (the revision's
    /// `containerConcurrency`; 0 for no limit).
    pub fn set_container_concurrency(&self, limit: u64) {
        self.container_concurrency.store(limit, Ordering::SeqCst);
        self.update_capacity();
    }

    /// Requests one instance may hold at once (0: no limit).
    pub fn container_concurrency(&self) -> u64 {
        self.container_concurrency.load(Ordering::SeqCst)
    }

    fn update_capacity(&self) {
        let ready = self.ready.load().iter().filter(|i| !i.is_draining()).count();
        self.gate.set_capacity(sluice_activator::capacity(self.container_concurrency(), ready));
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
        self.update_capacity();
        self.notify_changed();
    }

    /// Marks the instance draining and takes it out of the ready set; returns it so the caller
    /// can wait for its in-flight requests with [`Instance::wait_idle`].
    pub fn remove(&self, id: u64) -> Option<Arc<Instance>> {
        let mut removed = None;
        self.ready.rcu(|cur| {
            removed = cur.iter().find(|i| i.id == id).cloned();
            let rest: Vec<_> = cur.iter().filter(|i| i.id != id).cloned().collect();
            if rest.is_empty() { no_instances() } else { Arc::new(rest) }
        });
        if let Some(i) = &removed {
            i.draining.store(true, Ordering::SeqCst);
        }
        self.update_capacity();
        self.notify_changed();
        removed
    }

    /// Admits one request (a permit from the gate, if capacity is free and nobody waits) and
    /// claims the least-loaded ready instance with a free slot for it; None when either fails.
    pub fn pick(self: &Arc<Self>) -> Option<InstanceGuard> {
        let permit = self.gate.try_acquire()?;
        self.pick_least_loaded(None, Some(permit))
    }

    /// Claims an instance for a request already admitted with `permit`; hands the permit back
    /// when no instance has a free slot (one is being drained, say), so it can wait again.
    pub fn pick_admitted(self: &Arc<Self>, permit: Permit) -> Result<InstanceGuard, Permit> {
        let mut permit = Some(permit);
        match self.pick_from(None, &mut permit) {
            Some(guard) => Ok(guard),
            None => Err(permit.unwrap_or_else(|| unreachable!("a failed pick keeps its permit"))),
        }
    }

    /// Like [`pick`](Self::pick), but never the instance `except` (one that just refused a
    /// connection), and carrying the request's `permit` over; None when no other instance is
    /// ready.
    pub fn pick_other(self: &Arc<Self>, except: u64, permit: Option<Permit>) -> Option<InstanceGuard> {
        self.pick_least_loaded(Some(except), permit)
    }

    fn pick_least_loaded(self: &Arc<Self>, except: Option<u64>, permit: Option<Permit>) -> Option<InstanceGuard> {
        let mut permit = permit;
        self.pick_from(except, &mut permit)
    }

    /// One pass over the ready set, without allocating: the least-loaded instance that is not
    /// draining and has a free slot, ties broken by a rotating start so equally loaded instances
    /// share the work. A claim lost to a drain that began meanwhile, or to another request that
    /// took the instance's last slot, is retried: the next pass sees that instance draining or
    /// full. The permit moves into the claim; on failure it stays in `permit`.
    fn pick_from(self: &Arc<Self>, except: Option<u64>, permit: &mut Option<Permit>) -> Option<InstanceGuard> {
        let ready = self.ready.load();
        let n = ready.len();
        if n == 0 {
            return None;
        }
        let limit = match self.container_concurrency() {
            0 => usize::MAX,
            cc => usize::try_from(cc).unwrap_or(usize::MAX),
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        loop {
            let mut best: Option<(&Arc<Instance>, usize)> = None;
            for i in 0..n {
                let instance = &ready[start.wrapping_add(i) % n];
                if instance.is_draining() || Some(instance.id) == except {
                    continue;
                }
                let load = instance.inflight();
                if load < limit && best.is_none_or(|(_, least)| load < least) {
                    best = Some((instance, load));
                }
            }
            let (instance, _) = best?;
            if let Some(guard) = self.claim_within(instance, limit, permit) {
                return Some(guard);
            }
        }
    }

    /// Claims a specific instance, without a limit or a permit; None when it is draining.
    pub fn claim(self: &Arc<Self>, instance: &Arc<Instance>) -> Option<InstanceGuard> {
        self.claim_within(instance, usize::MAX, &mut None)
    }

    /// Claims `instance` if it holds fewer than `limit` requests and is not draining.
    fn claim_within(
        self: &Arc<Self>,
        instance: &Arc<Instance>,
        limit: usize,
        permit: &mut Option<Permit>,
    ) -> Option<InstanceGuard> {
        instance.inflight.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1)).ok()?;
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let mut guard = InstanceGuard { instance: instance.clone(), revision: self.clone(), permit: None };
        if instance.is_draining() {
            // Dropping the guard undoes the claim and wakes a waiting drain.
            return None;
        }
        guard.permit = permit.take();
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(guard)
    }

    /// Waits until the ready set changes (an instance added or removed).
    pub async fn changed(&self) {
        self.changed.get_or_init(Box::default).notified().await;
    }

    /// Wakes the requests waiting in [`changed`](Self::changed), if any ever waited.
    fn notify_changed(&self) {
        if let Some(changed) = self.changed.get() {
            changed.notify_waiters();
        }
    }
}

/// The one empty ready set every revision without instances shares (most revisions of a large
/// table are at zero: an empty set of their own each would be 56 bytes apiece).
fn no_instances() -> Arc<Vec<Arc<Instance>>> {
    static NONE: LazyLock<Arc<Vec<Arc<Instance>>>> = LazyLock::new(|| Arc::new(Vec::new()));
    NONE.clone()
}

// === impl Endpoints ===

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints").field("revisions", &self.revisions.lock().len()).finish()
    }
}

impl Endpoints {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// An empty registry whose revisions queue as `settings` say and call `poke` when a request
    /// starts to wait for capacity.
    pub fn with_admission(settings: AdmissionSettings, poke: Poke) -> Arc<Self> {
        Arc::new(Self { revisions: Mutex::default(), admission: settings, poke: Some(poke) })
    }

    /// The endpoints of `key`, created empty on first use.
    pub fn revision(&self, key: &RevisionKey) -> Arc<RevisionEndpoints> {
        let mut revisions = self.revisions.lock();
        if let Some(known) = revisions.get(key) {
            return known.0.clone();
        }
        let new = RevisionEndpoints::with_admission(key.clone(), self.admission, self.poke.clone());
        revisions.insert(ByKey(new.clone()));
        new
    }

    /// The endpoints of `key`, if any.
    pub fn get(&self, key: &RevisionKey) -> Option<Arc<RevisionEndpoints>> {
        self.revisions.lock().get(key).map(|r| r.0.clone())
    }

    /// Every revision's endpoints now (for exposing their counters; takes the map's lock).
    pub fn all(&self) -> Vec<Arc<RevisionEndpoints>> {
        self.revisions.lock().iter().map(|r| r.0.clone()).collect()
    }

    /// Forgets `key` (its revision is gone); requests waiting for its capacity are sent away to
    /// be routed again.
    pub fn forget(&self, key: &RevisionKey) {
        if let Some(gone) = self.revisions.lock().take(key) {
            gone.0.gate().close();
        }
    }
}

// === impl ByKey ===

impl Borrow<RevisionKey> for ByKey {
    fn borrow(&self) -> &RevisionKey {
        &self.0.key
    }
}

impl Hash for ByKey {
    /// As the key hashes, which `Borrow` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for ByKey {}

#[cfg(test)]
mod tests;
