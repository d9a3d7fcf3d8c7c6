//! Per-connection activity: how many requests a client connection has in flight, so that the
//! server can close a connection that has had none for the idle timeout (an h2 connection
//! holding no stream, an h1 one between requests) without ever cutting a request short. (The
//! router's idea, copied: the API server does not depend on the router.) A request counts until
//! its response body has been sent or dropped, so a watch streaming for hours is in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// One connection's in-flight requests. Cheap: an atomic count and a notifier.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    inflight: AtomicUsize,
    changed: Notify,
}

/// One request's claim on its connection's activity; dropping it ends the claim.
#[derive(Debug)]
pub(crate) struct ActivityGuard {
    activity: Arc<Activity>,
}

// === impl Activity ===

impl Activity {
    /// A connection with nothing in flight.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts a request in until the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> ActivityGuard {
        if self.inflight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.changed.notify_waiters();
        }
        ActivityGuard { activity: self.clone() }
    }

    /// Requests in flight now.
    pub(crate) fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Returns once the connection has had no request in flight for `timeout` straight.
    pub(crate) async fn idle_for(&self, timeout: Duration) {
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
        assert!(tokio::time::timeout(Duration::from_secs(60), idle.as_mut()).await.is_err());
        drop(guard);
        let started = tokio::time::Instant::now();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}
