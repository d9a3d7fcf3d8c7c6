//! The loop of one connection: when to send the next request (back to back, or on the open
//! loop's schedule), what to record (measured from the intended send time), reconnecting when
//! the connection breaks, and stopping at the end of the run or of the request budget.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{RequestTemplate, Sender};
use super::tap::{Seen, Tap};
use super::{Counters, Plan};
use crate::outcome::{ErrorKind, Tally};
use crate::target::Target;

/// After a failed connect in closed loop, wait this long before the next attempt, so a target
/// that refuses connections is not hammered in a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What a connection loop shares with the other loops of its thread.
pub(crate) struct Local {
    pub(crate) target: Arc<Target>,
    pub(crate) plan: Arc<Plan>,
    pub(crate) tally: Rc<RefCell<Tally>>,
    pub(crate) counters: Arc<Counters>,
    /// The latest completion seen by this thread (for the requests-mode window).
    pub(crate) last_done: Rc<RefCell<Option<Instant>>>,
    /// Sees every response (warm-up included) with the backend that answered it.
    pub(crate) tap: Option<Arc<Tap>>,
}

enum Sent {
    Status(u16),
    Broken,
    TimedOut,
}

/// Runs connection number `index` until the run ends.
pub(crate) async fn drive(index: usize, local: Rc<Local>) {
    let plan = &local.plan;
    let template = RequestTemplate::new(&local.target);
    let guard = tokio::time::sleep_until(plan.hard_stop_after(plan.measure_from));
    tokio::pin!(guard);
    let mut sender: Option<Sender> = None;
    let mut k: u64 = 0;
    loop {
        let intended = match plan.schedule(index, k) {
            Some(at) => at,
            None => Instant::now(),
        };
        if plan.is_past_stop(intended) {
            break;
        }
        // Latency is charged from when the request was due. When it was not yet due, the
        // connection was idle and waits on the generator's own timer (1 ms granular): its
        // lateness is the generator's, not the target's, so the clock starts at the wake-up.
        // When it was already due (the last response came late), the wait is the target's.
        let charged_from = if intended > Instant::now() {
            tokio::time::sleep_until(intended).await;
            Instant::now()
        } else {
            intended
        };
        k += 1;
        let measured = intended >= plan.measure_from;
        if measured && !plan.claim() {
            break;
        }
        if sender.as_ref().is_none_or(Sender::is_closed) {
            sender = match Sender::connect(&local.target, local.tap.clone()).await {
                Ok(s) => Some(s),
                Err(_) => {
                    local.count_error(measured, ErrorKind::Connect);
                    if plan.schedule(index, k).is_none() {
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                    }
                    continue;
                }
            };
        }
        let Some(conn) = sender.as_mut() else { continue };
        if plan.per_request_timeout() {
            guard.as_mut().reset(plan.hard_stop_after(Instant::now()));
        }
        let actual = Instant::now();
        let sent = tokio::select! {
            biased;
            r = conn.send(&template) => match r {
                Ok(status) => Sent::Status(status),
                Err(_) => Sent::Broken,
            },
            _ = &mut guard => Sent::TimedOut,
        };
        let done = Instant::now();
        match sent {
            Sent::Status(status) => {
                local.counters.responses.fetch_add(1, Ordering::Relaxed);
                if let Some(tap) = &local.tap {
                    tap.record(Seen { at: done.into_std(), status, class: conn.class() });
                }
                if measured {
                    local.tally.borrow_mut().response(status, done - charged_from, done - actual);
                    *local.last_done.borrow_mut() = Some(done);
                }
            }
            Sent::Broken => {
                sender = None;
                local.count_error(measured, ErrorKind::Io);
            }
            Sent::TimedOut => {
                local.count_error(measured, ErrorKind::Timeout);
                break;
            }
        }
    }
}

// === impl Local ===

impl Local {
    fn count_error(&self, measured: bool, kind: ErrorKind) {
        bump(&self.counters.errors);
        if measured {
            self.tally.borrow_mut().error(kind);
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
