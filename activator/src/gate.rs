//! A revision's gate: a permit per request in flight, up to the revision's capacity, and a
//! bounded FIFO queue of requests waiting for one.
//!
//! The fast path is lock-free: with no one waiting, a permit is a compare-and-swap on the
//! in-flight count. The queue (a mutex around a `VecDeque`) is touched only when a request must
//! wait, when a permit is released while someone waits, or when capacity changes. A released
//! permit is handed straight to the oldest waiter, so arrivals cannot overtake the queue.
//!
//! No wake-up is lost between a waiter joining and a permit being released: the waiter counts
//! itself (`waiting`) and then tries for a slot under the queue's lock; a release gives its slot
//! back (`in_flight`) and then looks at `waiting`. Both are sequentially consistent, so at
//! least one of the two sees the other.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Requests one revision may queue, unless configured otherwise.
pub const DEFAULT_QUEUE_DEPTH: usize = 10_000;

/// How a gate behaves.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Requests that may wait at once; one more is refused with [`Refused::QueueFull`].
    pub queue_depth: usize,
}

/// Why a request got no permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue already holds as many requests as it may.
    #[error("the revision's queue is full ({depth} requests waiting)")]
    QueueFull {
        /// The queue's bound.
        depth: usize,
    },
    /// The deadline passed while the request waited.
    #[error("no capacity within {waited:?}")]
    Timeout {
        /// How long it waited.
        waited: Duration,
    },
    /// The gate was closed (its revision is gone): the request should be routed again.
    #[error("the revision is gone")]
    Closed,
}

/// A revision's admission.
pub struct Gate {
    inner: Arc<Inner>,
}

/// A request's admission: it counts against the revision's capacity until dropped.
pub struct Permit {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// Requests the revision may hold at once.
    capacity: AtomicU64,
    /// Permits out.
    in_flight: AtomicU64,
    /// Requests in the queue.
    waiting: AtomicUsize,
    /// Permits ever given.
    admitted: AtomicU64,
    /// Set once by [`Gate::close`].
    closed: std::sync::atomic::AtomicBool,
    queue: Mutex<Queue>,
    depth: usize,
    poke: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    waiters: VecDeque<(u64, oneshot::Sender<Permit>)>,
}

/// Takes a waiter out of the queue when its request is dropped before it got a permit.
struct Leave<'a> {
    inner: &'a Arc<Inner>,
    id: u64,
}

// === impl Settings ===

impl Default for Settings {
    fn default() -> Self {
        Self { queue_depth: DEFAULT_QUEUE_DEPTH }
    }
}

// === impl Gate ===

impl Gate {
    /// A gate with no capacity yet; `poke` is called whenever a request starts to wait (the
    /// autoscaler's cue that the revision needs instances now).
    pub fn new(settings: Settings, poke: impl Fn() + Send + Sync + 'static) -> Self {
        let inner = Inner {
            capacity: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            depth: settings.queue_depth,
            poke: Box::new(poke),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Sets the capacity (see [`crate::capacity`]); waiters get the permits it frees at once.
    pub fn set_capacity(&self, capacity: u64) {
        if self.is_closed() {
            return;
        }
        self.inner.capacity.store(capacity, SeqCst);
        if self.inner.waiting.load(SeqCst) > 0 {
            self.inner.grant(&mut self.inner.queue.lock());
        }
    }

    /// Closes the gate for good (its revision is gone): no more permits, and every waiter gets
    /// [`Refused::Closed`] at once, so it can be routed elsewhere instead of waiting out its
    /// deadline. Permits already given stay valid until dropped.
    pub fn close(&self) {
        self.inner.closed.store(true, SeqCst);
        self.inner.capacity.store(0, SeqCst);
        let waiters = std::mem::take(&mut self.inner.queue.lock().waiters);
        self.inner.waiting.fetch_sub(waiters.len(), SeqCst);
        // Dropping the senders wakes each waiter with a closed channel.
        drop(waiters);
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(SeqCst)
    }

    /// The capacity now.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity.load(SeqCst)
    }

    /// A permit now, if capacity is free and nobody waits (so this never overtakes the queue).
    pub fn try_acquire(&self) -> Option<Permit> {
        if self.inner.waiting.load(SeqCst) > 0 {
            return None;
        }
        self.inner.take_slot().then(|| self.inner.permit())
    }

    /// A permit: at once when capacity is free, else after waiting in the queue until one is
    /// released or capacity grows, refused when the queue is full or `deadline` passes first.
    /// Dropping the returned future leaves the queue.
    pub async fn acquire(&self, deadline: Instant) -> Result<Permit, Refused> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut queue = self.inner.queue.lock();
            // Checked under the lock `close` takes, so no waiter joins a closed queue.
            if self.is_closed() {
                return Err(Refused::Closed);
            }
            if queue.waiters.len() >= self.inner.depth {
                return Err(Refused::QueueFull { depth: self.inner.depth });
            }
            let id = queue.next_id;
            queue.next_id += 1;
            queue.waiters.push_back((id, tx));
            self.inner.waiting.fetch_add(1, SeqCst);
            // A permit released before this waiter was counted would otherwise go unnoticed.
            self.inner.grant(&mut queue);
            id
        };
        (self.inner.poke)();
        let leave = Leave { inner: &self.inner, id };
        let granted = tokio::time::timeout_at(deadline, rx).await;
        drop(leave);
        match granted {
            Ok(Ok(permit)) => Ok(permit),
            // Senders are dropped unsent only by `close`.
            Ok(Err(_)) => Err(Refused::Closed),
            Err(_) => Err(Refused::Timeout { waited: started.elapsed() }),
        }
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.load(SeqCst)
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(SeqCst)
    }

    /// Requests in flight plus waiting: the revision's concurrency as the autoscaler sees it.
    pub fn concurrency(&self) -> u64 {
        self.in_flight().saturating_add(u64::try_from(self.waiting()).unwrap_or(u64::MAX))
    }

    /// Permits given since the gate was made (the autoscaler's request count).
    pub fn admitted(&self) -> u64 {
        self.inner.admitted.load(SeqCst)
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("capacity", &self.capacity())
            .field("in_flight", &self.in_flight())
            .field("waiting", &self.waiting())
            .finish()
    }
}

// === impl Inner ===

impl Inner {
    /// Counts one more request in flight if that stays within capacity.
    fn take_slot(&self) -> bool {
        self.in_flight.fetch_update(SeqCst, SeqCst, |n| (n < self.capacity.load(SeqCst)).then_some(n + 1)).is_ok()
    }

    /// A permit for a slot already taken.
    fn permit(self: &Arc<Self>) -> Permit {
        self.admitted.fetch_add(1, SeqCst);
        Permit { inner: Some(self.clone()) }
    }

    /// Hands free slots to the oldest waiters. Called with the queue locked.
    fn grant(self: &Arc<Self>, queue: &mut Queue) {
        while !queue.waiters.is_empty() && self.take_slot() {
            let Some((_, tx)) = queue.waiters.pop_front() else { break };
            self.waiting.fetch_sub(1, SeqCst);
            if let Err(mut unwanted) = tx.send(self.permit()) {
                // The waiter went away just now: its slot goes to the next one. Not dropped
                // as a permit, which would take the lock held here.
                unwanted.inner = None;
                self.admitted.fetch_sub(1, SeqCst);
                self.in_flight.fetch_sub(1, SeqCst);
            }
        }
    }

    fn release(self: &Arc<Self>) {
        self.in_flight.fetch_sub(1, SeqCst);
        if self.waiting.load(SeqCst) > 0 {
            self.grant(&mut self.queue.lock());
        }
    }
}

// === impl Permit ===

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.release();
        }
    }
}

// === impl Leave ===

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut queue = self.inner.queue.lock();
        if let Some(at) = queue.waiters.iter().position(|(id, _)| *id == self.id) {
            queue.waiters.remove(at);
            self.inner.waiting.fetch_sub(1, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests;
