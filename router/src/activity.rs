//! Per-connection activity: how many requests a client connection has in flight, so that the
//! server can close a connection that has had none for the idle timeout (an h2 connection
//! holding no stream, an h1 one between requests) without ever cutting a request short.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One connection's in-flight requests and when it last went idle. Cheap on the request path:
/// two atomic operations and a clock read per request, and no wake-up of the connection's task;
/// the task's one timer checks the state when it fires.
#[derive(Debug)]
pub struct Activity {
    inflight: AtomicUsize,
    /// When the last request ended (nanoseconds after `created`).
    idle_since: AtomicU64,
    created: Instant,
}

/// One request's claim on its connection's activity; dropping it ends the claim.
#[derive(Debug)]
pub struct ActivityGuard {
    activity: Arc<Activity>,
}

// === impl Activity ===

impl Activity {
    /// A connection with nothing in flight, idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self { inflight: AtomicUsize::new(0), idle_since: AtomicU64::new(0), created: Instant::now() })
    }

    /// Counts a request in until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> ActivityGuard {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        ActivityGuard { activity: self.clone() }
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Returns once the connection has had no request in flight for `timeout` straight. It
    /// sleeps until the earliest moment that can be true and checks again then, so a busy
    /// connection costs one timer per `timeout`, not one per request.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let now = Instant::now();
            let since = self.idle_since.load(Ordering::SeqCst);
            let due = if self.inflight() == 0 {
                let due = self.created + Duration::from_nanos(since) + timeout;
                // A request that began and ended meanwhile moved the time on: look again.
                if now >= due && self.idle_since.load(Ordering::SeqCst) == since && self.inflight() == 0 {
                    return;
                }
                due
            } else {
                now + timeout
            };
            tokio::time::sleep_until(due.max(now)).await;
        }
    }
}

// === impl ActivityGuard ===

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let activity = &self.activity;
        let since = u64::try_from(activity.created.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // The time first, so a checker that sees nothing in flight also sees this end.
        activity.idle_since.fetch_max(since, Ordering::SeqCst);
        activity.inflight.fetch_sub(1, Ordering::SeqCst);
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
