//! What the router answered on behalf of one revision: responses by status class, and the
//! names of the revision's owners for labelling them. Held by the revision's
//! [`RevisionEndpoints`](super::RevisionEndpoints), which a routing snapshot resolves once, so
//! counting a response is one relaxed atomic add: no lookup, lock or allocation per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use http::StatusCode;

/// Status classes a response can have: `1xx` to `9xx` (`http` accepts codes up to 999).
const CLASSES: usize = 9;

/// Responses sent on behalf of one revision, by status class: the instance's own responses
/// and the router's 502/503/504 for it.
#[derive(Debug, Default)]
pub struct Responses {
    by_class: [AtomicU64; CLASSES],
}

/// The Configuration and Service a revision belongs to (empty when unknown or none), as
/// metric labels want them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owners {
    /// Its Configuration.
    pub configuration: String,
    /// Its Service; empty for a revision of a bare Configuration.
    pub service: String,
}

/// The owners of a revision, set by the control path when it learns them and read when the
/// counters are exposed.
#[derive(Debug, Default)]
pub struct OwnerCell(ArcSwap<Owners>);

// === impl Responses ===

impl Responses {
    /// Counts one response with `status`.
    pub fn record(&self, status: StatusCode) {
        self.by_class[class_index(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Responses so far whose status is `class`xx (1 to 9); 0 for any other class.
    pub fn class(&self, class: u16) -> u64 {
        usize::from(class).checked_sub(1).and_then(|i| self.by_class.get(i)).map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// Every class with its count, `1xx` first.
    pub fn snapshot(&self) -> [(u16, u64); CLASSES] {
        std::array::from_fn(|i| {
            let class = u16::try_from(i + 1).expect("nine classes fit in u16");
            (class, self.by_class[i].load(Ordering::Relaxed))
        })
    }

    /// All responses so far.
    pub fn total(&self) -> u64 {
        self.by_class.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

/// Where `status` is counted: its first digit, less one.
fn class_index(status: StatusCode) -> usize {
    // `StatusCode` holds 100..=999, so the first digit is 1..=9.
    usize::from(status.as_u16() / 100).clamp(1, CLASSES) - 1
}

// === impl OwnerCell ===

impl OwnerCell {
    /// The owners now.
    pub fn get(&self) -> Arc<Owners> {
        self.0.load_full()
    }

    /// Records the owners, when they differ from those known.
    pub fn set(&self, owners: Owners) {
        if *self.0.load().as_ref() != owners {
            self.0.store(Arc::new(owners));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_response_is_counted_once_under_its_class() {
        let r = Responses::default();
        for code in [200, 204, 201, 302, 404, 500, 502, 503, 504, 101] {
            r.record(StatusCode::from_u16(code).expect("status"));
        }
        assert_eq!((r.class(1), r.class(2), r.class(3), r.class(4), r.class(5)), (1, 3, 1, 1, 4));
        assert_eq!(r.total(), 10);
        assert_eq!(r.class(0), 0);
        assert_eq!(r.class(10), 0);
    }

    #[test]
    fn codes_beyond_599_keep_their_own_class() {
        let r = Responses::default();
        r.record(StatusCode::from_u16(999).expect("status"));
        r.record(StatusCode::from_u16(600).expect("status"));
        assert_eq!(r.class(9), 1);
        assert_eq!(r.class(6), 1);
        assert_eq!(r.snapshot()[8], (9, 1));
    }

    #[test]
    fn owners_are_replaced_only_when_they_change() {
        let cell = OwnerCell::default();
        let owners = Owners { configuration: "hello".into(), service: "hello".into() };
        cell.set(owners.clone());
        let first = cell.get();
        cell.set(owners);
        assert!(Arc::ptr_eq(&first, &cell.get()));
    }
}
