//! Per-connection activity: how many requests a client connection has in flight, so that the
//! server can close a connection that has had none for the idle timeout (an h2 connection
//! holding no stream, an h1 one between requests) without ever cutting a request short.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// One connection's in-flight requests. Cheap: an atomic count and a notifier.
#[derive(Debug, Default)]
pub struct Activity {
    inflight: AtomicUsize,
    changed: Notify,
}

/// One request's claim on its connection's activity; dropping it ends the claim.
#[derive(Debug)]
pub struct ActivityGuard {
    activity: Arc<Activity>,
}

// === impl Activity ===

impl Activity {
    /// A connection with nothing in flight.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts a request in until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> ActivityGuard {
        if self.inflight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.changed.notify_waiters();
        }
        ActivityGuard { activity: self.clone() }
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Returns once the connection has had no request in flight for `timeout` straight.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.inflight() == 0 {
                tokio::select! {
                    () = tokio::time::sleep(timeout) => return,
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

// === impl ActivityGuard ===

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if self.activity.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.activity.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_counts_only_time_with_nothing_in_flight() {
        let activity = Activity::new();
        let guard = activity.begin();
        let idle = activity.idle_for(Duration::from_secs(10));
        tokio::pin!(idle);
        // A request in flight for a minute keeps the connection busy however long it takes.
        assert!(tokio::time::timeout(Duration::from_secs(60), idle.as_mut()).await.is_err());
        drop(guard);
        let started = tokio::time::Instant::now();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_restarts_the_idle_clock() {
        let activity = Activity::new();
        let idle = activity.idle_for(Duration::from_secs(10));
        tokio::pin!(idle);
        assert!(tokio::time::timeout(Duration::from_secs(6), idle.as_mut()).await.is_err());
        drop(activity.begin());
        let started = tokio::time::Instant::now();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(10), "counted from the request's end");
    }
}
