//! One instance's concurrency limit: at most `limit` requests at once (unlimited when 0), taken
//! and given back with atomics only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An instance's request slots.
#[derive(Debug)]
pub struct Slots {
    limit: u64,
    in_use: AtomicU64,
}

/// One taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot(Arc<Slots>);

// === impl Slots ===

impl Slots {
    /// Slots for an instance that may hold `limit` requests at once (0: no limit).
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self { limit: if limit == 0 { u64::MAX } else { limit }, in_use: AtomicU64::new(0) })
    }

    /// A slot, if one is free.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.clone()))
    }

    /// Slots taken now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Acquire)
    }

    /// Slots free now (`u64::MAX`-ish when unlimited).
    pub fn free(&self) -> u64 {
        self.limit.saturating_sub(self.in_use())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_never_exceeded_and_slots_come_back() {
        let slots = Slots::new(2);
        let a = slots.try_take().expect("first");
        let b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none(), "a third would exceed the limit");
        assert_eq!(slots.in_use(), 2);
        drop(a);
        let c = slots.try_take().expect("a slot came back");
        drop((b, c));
        assert_eq!((slots.in_use(), slots.free()), (0, 2));
    }

    #[test]
    fn zero_means_unlimited() {
        let slots = Slots::new(0);
        let taken: Vec<Slot> = (0..1000).filter_map(|_| slots.try_take()).collect();
        assert_eq!(taken.len(), 1000);
    }

    #[test]
    fn threads_never_take_more_than_the_limit() {
        let slots = Slots::new(3);
        let peak = Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (slots, peak) = (slots.clone(), peak.clone());
                s.spawn(move || {
                    for _ in 0..10_000 {
                        if let Some(slot) = slots.try_take() {
                            peak.fetch_max(slots.in_use(), Ordering::AcqRel);
                            drop(slot);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Acquire) <= 3);
        assert_eq!(slots.in_use(), 0);
    }
}
