//! The uids of recently deleted objects. A reconcile that read an object just before it was
//! deleted may act on it after the deletion was handled (publish a deleted route, start a
//! deleted revision's instances); the component that holds the state checks here, under its
//! own lock, and ignores the late act. Bounded: the oldest uids are dropped first, long after
//! any reconcile that could have read them has finished.

use std::collections::{HashSet, VecDeque};

/// How many deleted uids are remembered.
const CAPACITY: usize = 4096;

/// A bounded set of deleted objects' uids.
#[derive(Debug, Default)]
pub struct Tombstones {
    order: VecDeque<String>,
    uids: HashSet<String>,
}

// === impl Tombstones ===

impl Tombstones {
    /// Records `uid` as deleted (an empty uid is ignored).
    pub fn bury(&mut self, uid: &str) {
        if uid.is_empty() || !self.uids.insert(uid.to_string()) {
            return;
        }
        self.order.push_back(uid.to_string());
        if self.order.len() > CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.uids.remove(&oldest);
        }
    }

    /// Whether `uid` was deleted.
    pub fn contains(&self, uid: &str) -> bool {
        !uid.is_empty() && self.uids.contains(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_most_recent_deletions() {
        let mut t = Tombstones::default();
        t.bury("");
        assert!(!t.contains(""), "objects without a uid are never buried");
        for i in 0..=CAPACITY {
            t.bury(&i.to_string());
        }
        t.bury("5");
        assert!(!t.contains("0"), "the oldest is forgotten");
        assert!(t.contains("1") && t.contains(&CAPACITY.to_string()));
        assert_eq!(t.order.len(), CAPACITY);
    }
}
