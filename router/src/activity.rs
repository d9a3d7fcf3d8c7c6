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
        let watch = Watch { head: None, idle: Some(timeout), park: None };
        self.quiet(watch).await;
    }

    /// Returns the first of `watch`'s deadlines to pass with no request in flight, as
    /// [`idle_for`](Self::idle_for) does for one (a head deadline first, then idle, then park
    /// when several pass at once).
    pub async fn quiet(&self, watch: Watch) -> Quiet {
        loop {
            let now = Instant::now();
            let since = self.idle_since.load(Ordering::SeqCst);
            let due = if self.inflight() == 0 {
                let idle_from = self.created + Duration::from_nanos(since);
                let (due, quiet) = watch.first(idle_from);
                // A request that began and ended meanwhile moved the time on: look again.
                if now >= due && self.idle_since.load(Ordering::SeqCst) == since && self.inflight() == 0 {
                    return quiet;
                }
                due
            } else {
                now + watch.shortest()
            };
            tokio::time::sleep_until(due.max(now)).await;
        }
    }
}

/// The deadlines [`Activity::quiet`] watches, each counted from the end of the connection's
/// last request (or its start); `None` is not watched.
#[derive(Clone, Copy, Debug)]
pub struct Watch {
    /// The next request's head must be read within `.0` of the last request's end, and of
    /// `.1` at the earliest (when the reader of heads began: a parked connection woken anew).
    pub head: Option<(Duration, Instant)>,
    /// The connection's idle timeout.
    pub idle: Option<Duration>,
    /// When an idle connection gives its buffers back.
    pub park: Option<Duration>,
}

/// Which of a [`Watch`]'s deadlines passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quiet {
    /// No request head was read in time.
    Head,
    /// The idle timeout.
    Idle,
    /// Time to park.
    Park,
}

// === impl Watch ===

impl Watch {
    /// The earliest deadline for a connection idle since `idle_from`, and which it is.
    fn first(&self, idle_from: Instant) -> (Instant, Quiet) {
        let head = self.head.map(|(timeout, from)| (idle_from.max(from) + timeout, Quiet::Head));
        let idle = self.idle.map(|timeout| (idle_from + timeout, Quiet::Idle));
        let park = self.park.map(|timeout| (idle_from + timeout, Quiet::Park));
        // Earliest first; on a tie the order of the list (min_by_key keeps the first).
        [head, idle, park].into_iter().flatten().min_by_key(|(due, _)| *due).unwrap_or((far_future(), Quiet::Idle))
    }

    /// The shortest of the watched timeouts: how long a busy connection sleeps before it looks.
    fn shortest(&self) -> Duration {
        [self.head.map(|(t, _)| t), self.idle, self.park].into_iter().flatten().min().unwrap_or(FAR)
    }
}

/// How long a connection that watches nothing sleeps between looks.
const FAR: Duration = Duration::from_secs(86_400);

fn far_future() -> Instant {
    Instant::now() + FAR
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
