//! The deadline for an instance's response head, as a timer a client connection keeps.
//!
//! A tokio timer costs a wheel insertion when it is first polled and a removal when it is
//! dropped, about a thousand instructions, which a fresh timer per request paid every time. A
//! client connection keeps one timer instead (an HTTP/1 connection carries one request at a
//! time) and hands it from request to request. A request's deadline is almost always later than
//! the previous one's, and the timer is moved there only when it fires at the earlier one
//! (found early, it is moved on and waited for again), so the usual request does not touch it
//! at all; a deadline earlier than the timer's moves it at once. A request that finds the
//! connection's timer in use (h2's concurrent streams) makes its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use parking_lot::Mutex;
use tokio::time::{Instant, Sleep};

/// A client connection's spare timer, between its requests.
#[derive(Debug, Default)]
pub(crate) struct Spare(Mutex<Option<Pin<Box<Sleep>>>>);

/// One request's head deadline; its timer goes back to the connection when dropped.
#[derive(Debug)]
pub(crate) struct HeadDeadline {
    sleep: Option<Pin<Box<Sleep>>>,
    home: Option<Arc<Spare>>,
    at: Instant,
}

// === impl Spare ===

impl Spare {
    /// A connection's slot, empty until its first request's deadline is done.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

// === impl HeadDeadline ===

impl HeadDeadline {
    /// A deadline at `at`, on `home`'s spare timer when there is one.
    pub(crate) fn new(home: Option<Arc<Spare>>, at: Instant) -> Self {
        let sleep = home.as_ref().and_then(|home| home.0.lock().take()).map(|mut sleep| {
            // Later: moved only once it fires at the earlier instant (see `poll_passed`).
            if at < sleep.deadline() {
                sleep.as_mut().reset(at);
            }
            sleep
        });
        Self { sleep, home, at }
    }

    /// A deadline at `at` on a timer of its own.
    #[cfg(test)]
    pub(crate) fn at(at: Instant) -> Self {
        Self::new(None, at)
    }

    /// Ready once the deadline has passed.
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        loop {
            ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= at {
                return Poll::Ready(());
            }
            // The connection's timer, still at an earlier request's deadline: moved on now, and
            // polled again to register it there.
            sleep.as_mut().reset(at);
        }
    }
}

impl Drop for HeadDeadline {
    fn drop(&mut self) {
        if let (Some(sleep), Some(home)) = (self.sleep.take(), &self.home) {
            let mut spare = home.0.lock();
            if spare.is_none() {
                *spare = Some(sleep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reused_timer_fires_at_each_deadline_earlier_or_later() {
        let home = Spare::new();
        let start = Instant::now();
        for after in [10, 30, 5, 60, 60] {
            let mut deadline = HeadDeadline::new(Some(home.clone()), Instant::now() + Duration::from_secs(after));
            let began = Instant::now();
            poll_fn(|cx| deadline.poll_passed(cx)).await;
            assert_eq!(began.elapsed(), Duration::from_secs(after));
            drop(deadline);
            assert!(home.0.lock().is_some(), "the timer went back to the connection");
        }
        assert_eq!(start.elapsed(), Duration::from_secs(165));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_does_not_fire_at_the_old_one() {
        let home = Spare::new();
        let mut first = HeadDeadline::new(Some(home.clone()), Instant::now() + Duration::from_secs(1));
        // Polled once so the timer is registered at the first deadline, then given back.
        assert!(poll_fn(|cx| Poll::Ready(first.poll_passed(cx))).await.is_pending());
        drop(first);
        let began = Instant::now();
        let mut second = HeadDeadline::new(Some(home.clone()), began + Duration::from_secs(5));
        poll_fn(|cx| second.poll_passed(cx)).await;
        assert_eq!(began.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_earlier_than_the_timers_fires_at_its_own() {
        let home = Spare::new();
        let mut first = HeadDeadline::new(Some(home.clone()), Instant::now() + Duration::from_secs(100));
        assert!(poll_fn(|cx| Poll::Ready(first.poll_passed(cx))).await.is_pending());
        drop(first);
        let began = Instant::now();
        let mut second = HeadDeadline::new(Some(home.clone()), began + Duration::from_secs(1));
        poll_fn(|cx| second.poll_passed(cx)).await;
        assert_eq!(began.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_passed_when_made_is_ready_at_once() {
        let home = Spare::new();
        let mut first = HeadDeadline::new(Some(home.clone()), Instant::now() + Duration::from_secs(1));
        assert!(poll_fn(|cx| Poll::Ready(first.poll_passed(cx))).await.is_pending());
        drop(first);
        tokio::time::sleep(Duration::from_secs(5)).await;
        // The timer fired at 1 s with nobody waiting; a deadline 2 s ago is due now, one in 3 s
        // is not.
        let mut past = HeadDeadline::new(Some(home.clone()), Instant::now() - Duration::from_secs(2));
        assert!(poll_fn(|cx| Poll::Ready(past.poll_passed(cx))).await.is_ready());
        drop(past);
        let began = Instant::now();
        let mut later = HeadDeadline::new(Some(home.clone()), began + Duration::from_secs(3));
        assert!(poll_fn(|cx| Poll::Ready(later.poll_passed(cx))).await.is_pending());
        poll_fn(|cx| later.poll_passed(cx)).await;
        assert_eq!(began.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_deadlines_each_get_a_timer() {
        let home = Spare::new();
        let mut a = HeadDeadline::new(Some(home.clone()), Instant::now() + Duration::from_secs(2));
        assert!(poll_fn(|cx| Poll::Ready(a.poll_passed(cx))).await.is_pending());
        // `a` holds the connection's timer; `b` makes its own.
        let mut b = HeadDeadline::new(Some(home.clone()), Instant::now() + Duration::from_secs(1));
        let began = Instant::now();
        poll_fn(|cx| b.poll_passed(cx)).await;
        assert_eq!(began.elapsed(), Duration::from_secs(1));
        poll_fn(|cx| a.poll_passed(cx)).await;
        assert_eq!(began.elapsed(), Duration::from_secs(2));
        drop((a, b));
        assert!(home.0.lock().is_some());
    }
}
