//! Worker threads for the data plane: each runs a single-threaded Tokio runtime with its own
//! upstream connection pools, and the listeners hand each accepted connection to the next
//! worker in turn. A connection, its requests and the upstream connections they use then live
//! on one thread: no work stealing, no wake-up of another core per request, no pool shared
//! between threads. (On two cores, a hyper proxy on a `current_thread` runtime spent about a
//! quarter less CPU per request than on the work-stealing one: see the README's Performance.)
//!
//! [`Workers::current`] serves on the caller's runtime instead, as tests and small setups do.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::proxy::Router;

/// Where the router serves connections. Share one between the HTTP and HTTPS listeners.
#[derive(Debug)]
pub struct Workers {
    workers: Vec<Worker>,
    /// The worker the next connection goes to (modulo their number).
    next: AtomicUsize,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    /// The router with this worker's own upstream pools.
    router: Router,
    /// Dropped (or sent) to end the worker's runtime.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

// === impl Workers ===

impl Workers {
    /// Serves every connection on the runtime the listener runs on, with `router` as it is.
    /// Must be called within a Tokio runtime.
    pub fn current(router: Router) -> Arc<Self> {
        let worker = Worker { handle: Handle::current(), router, stop: None, thread: None };
        Arc::new(Self { workers: vec![worker], next: AtomicUsize::new(0) })
    }

    /// `threads` worker threads (at least one), named `sluice-router-N`, each with a
    /// `current_thread` runtime and `router`'s table and configuration over pools of its own
    /// (`router` itself is dropped: only the workers' copies remain).
    /// They run until the returned value is dropped; drop it only after the listeners using it
    /// have returned (their connections have ended by then).
    pub fn start(router: Router, threads: usize) -> io::Result<Arc<Self>> {
        let mut workers = Vec::with_capacity(threads.max(1));
        for n in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new().name(format!("sluice-router-{n}")).spawn(move || {
                // A current_thread runtime runs its tasks while a thread is inside block_on.
                // Sent or dropped, the stop ends it either way.
                let _ = runtime.block_on(stopped);
            })?;
            workers.push(Worker { handle, router: router.with_own_pools(), stop: Some(stop), thread: Some(thread) });
        }
        Ok(Arc::new(Self { workers, next: AtomicUsize::new(0) }))
    }

    /// How many runtimes serve connections.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Always false: there is at least one worker.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The runtime and router for the next connection, round robin.
    pub(crate) fn next(&self) -> (&Handle, &Router) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let worker = &self.workers[i];
        (&worker.handle, &worker.router)
    }

    /// Any worker's router: they share the table and the configuration.
    pub(crate) fn router(&self) -> &Router {
        &self.workers[0].router
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            drop(worker.stop.take());
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take()
                && thread.join().is_err()
            {
                tracing::error!("a router worker thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouterConfig;
    use crate::table::RoutingTable;
    use arc_swap::ArcSwap;

    fn router() -> Router {
        Router::new(Arc::new(ArcSwap::from_pointee(RoutingTable::default())), RouterConfig::default())
    }

    #[test]
    fn connections_go_round_robin_to_threads_of_their_own_which_end_on_drop() {
        let workers = Workers::start(router(), 3).expect("workers start");
        assert_eq!(workers.len(), 3);
        let names: Vec<String> = (0..6)
            .map(|_| {
                let (handle, _) = workers.next();
                let (tx, rx) = std::sync::mpsc::channel();
                handle.spawn(async move {
                    let _ = tx.send(std::thread::current().name().unwrap_or_default().to_string());
                });
                rx.recv().expect("the worker ran the task")
            })
            .collect();
        assert_eq!(
            names,
            [
                "sluice-router-0",
                "sluice-router-1",
                "sluice-router-2",
                "sluice-router-0",
                "sluice-router-1",
                "sluice-router-2"
            ]
        );
        let handle = workers.next().0.clone();
        drop(workers);
        // The runtime is gone: nothing spawned on it runs any more.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle.spawn(async move {
                let _ = tx.send(());
            })
        }));
        assert!(rx.recv().is_err(), "a task ran after the workers were dropped");
    }

    #[test]
    fn zero_threads_still_means_one() {
        let workers = Workers::start(router(), 0).expect("workers start");
        assert_eq!(workers.len(), 1);
    }
}
