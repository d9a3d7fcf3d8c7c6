//! A tap on a run's responses, for scenarios that must know *which* backend answered each
//! request and when (`route-edit`): the value of one response header, matched against a few
//! known values, and the completion time and status of every response, kept in arrival order
//! in a bounded buffer the scenario drains as the run goes. A run without a tap pays one
//! `Option` check per response header and per response.

use std::time::Instant;

use parking_lot::Mutex;

/// The response header and its known values, and what was seen.
pub struct Tap {
    /// The header's name, lowercase.
    header: String,
    /// The values told apart; a response's class is its value's index here.
    values: Vec<Vec<u8>>,
    /// Responses seen since the last drain, at most `cap`.
    seen: Mutex<Vec<Seen>>,
    cap: usize,
    /// Responses not kept because the buffer was full.
    dropped: std::sync::atomic::AtomicU64,
}

/// One response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// When its last byte was read.
    pub at: Instant,
    /// Its status.
    pub status: u16,
    /// The index of its header value among the tap's values; None when it had none of them.
    pub class: Option<u8>,
}

// === impl Tap ===

impl Tap {
    /// A tap telling `values` of `header` apart, keeping at most `cap` responses between drains.
    pub fn new(header: &str, values: &[&str], cap: usize) -> Self {
        Self {
            header: header.to_ascii_lowercase(),
            values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            seen: Mutex::new(Vec::with_capacity(cap.min(1 << 16))),
            cap,
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The header's name, lowercase.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Some(class) when `name` is the tapped header (class None: a value not known).
    pub(crate) fn classify(&self, name: &str, value: &[u8]) -> Option<Option<u8>> {
        if !name.eq_ignore_ascii_case(&self.header) {
            return None;
        }
        Some(self.values.iter().position(|v| v == value).and_then(|i| u8::try_from(i).ok()))
    }

    /// Keeps one response (or counts it as dropped when the buffer is full).
    pub(crate) fn record(&self, seen: Seen) {
        let mut buf = self.seen.lock();
        if buf.len() < self.cap {
            buf.push(seen);
        } else {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Takes every response kept since the last drain, oldest first.
    pub fn drain(&self) -> Vec<Seen> {
        let mut fresh = Vec::with_capacity(self.cap.min(1 << 16));
        std::mem::swap(&mut *self.seen.lock(), &mut fresh);
        fresh
    }

    /// Responses not kept because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("header", &self.header).field("values", &self.values.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_classes_and_the_buffer_is_bounded() {
        let tap = Tap::new("K-Revision", &["a-00001", "a-00002"], 2);
        assert_eq!(tap.classify("k-revision", b"a-00002"), Some(Some(1)));
        assert_eq!(tap.classify("K-REVISION", b"other"), Some(None));
        assert_eq!(tap.classify("content-length", b"a-00001"), None);
        let at = Instant::now();
        for class in [Some(0), Some(1), None] {
            tap.record(Seen { at, status: 200, class });
        }
        assert_eq!(tap.dropped(), 1);
        let seen = tap.drain();
        assert_eq!(seen.iter().map(|s| s.class).collect::<Vec<_>>(), [Some(0), Some(1)]);
        assert!(tap.drain().is_empty(), "drained");
    }
}
