//! Admission on the request path, per revision: how many requests a revision may hold at once
//! (its capacity), and what happens to the ones beyond it. The router asks a revision's
//! [`Gate`] for a [`Permit`] before it picks an instance; while capacity is free the permit is
//! one atomic compare-and-swap away (no lock, no allocation). Beyond capacity, or for a revision
//! at zero instances, the request waits in the gate's bounded FIFO queue: the first wait pokes
//! the autoscaler at once, and a waiter is handed a permit the moment one is released or
//! capacity grows (woken by that change, never by polling). A full queue is refused at once
//! ([`Refused::QueueFull`]), a deadline that passes in the queue is [`Refused::Timeout`], and a
//! waiter whose request is dropped (its client went away) leaves the queue at once.
//!
//! Capacity is `containerConcurrency × ready instances`, unlimited once one instance is ready
//! when `containerConcurrency` is 0 ([`capacity`]). The per-instance half of the limit is the
//! router's: it claims an instance only while that instance holds fewer requests than its
//! limit, so no instance ever holds more. The gate also counts what the autoscaler samples: requests in flight plus
//! waiting ([`Gate::concurrency`]) and requests admitted ([`Gate::admitted`]).

mod gate;

pub use gate::{Gate, Permit, Refused, Settings};

/// A revision's capacity: `container_concurrency × ready` requests, or unlimited (`u64::MAX`)
/// when `container_concurrency` is 0 and at least one instance is ready; 0 with none ready.
pub fn capacity(container_concurrency: u64, ready: usize) -> u64 {
    match (container_concurrency, ready) {
        (_, 0) => 0,
        (0, _) => u64::MAX,
        (cc, n) => cc.saturating_mul(u64::try_from(n).unwrap_or(u64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_follows_container_concurrency() {
        assert_eq!(capacity(1, 0), 0);
        assert_eq!(capacity(0, 0), 0);
        assert_eq!(capacity(0, 1), u64::MAX);
        assert_eq!(capacity(10, 3), 30);
        assert_eq!(capacity(u64::MAX, 2), u64::MAX);
    }
}
