//! The weighted split: integer percents as cumulative bounds, and the generator that rolls
//! 0..100 against them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Backend;

/// Targets with cumulative upper bounds: a roll `r` in 0..100 goes to the first target whose
/// bound exceeds `r`, so a target of `p` percent gets exactly `p` of the 100 rolls. Targets at
/// 0 % are left out. A split of one target (nearly every route's) holds it inline. Cloning
/// shares the targets (a table edited route by route copies every other route's split).
#[derive(Clone, Debug, Default)]
pub(crate) enum Split {
    /// No target.
    #[default]
    Empty,
    /// One target, all of the traffic.
    One(Arc<Backend>),
    /// Several, each with its cumulative bound.
    Many(Arc<[(u32, Arc<Backend>)]>),
}

/// The rolls of a router, shared by every request: one atomic add per roll. Rolls follow the
/// golden-ratio (Weyl) sequence from a random start rather than independent random draws, so
/// any run of up to 1,000 consecutive requests splits within 3.5 requests of the declared percents
/// (random draws stray by ±√N: ±3 points in 2,000 requests about once in a hundred runs),
/// while successive requests still interleave the targets. Smooth weighted round-robin
/// (nginx, HAProxy) has the same property; this needs no lock and no per-route state.
#[derive(Debug)]
pub(crate) struct Roller {
    state: AtomicU64,
}

// === impl Split ===

impl Split {
    /// The split of `weighted` (percents summing to 100, checked by the caller).
    pub(crate) fn new(weighted: impl IntoIterator<Item = (u32, Arc<Backend>)>) -> Self {
        let mut bound = 0;
        let mut entries: Vec<(u32, Arc<Backend>)> = weighted
            .into_iter()
            .filter(|(percent, _)| *percent > 0)
            .map(|(percent, backend)| {
                bound += percent;
                (bound, backend)
            })
            .collect();
        match entries.len() {
            0 => Self::Empty,
            1 => Self::One(entries.pop().map(|(_, b)| b).expect("one entry")),
            _ => Self::Many(entries.into()),
        }
    }

    /// Its backends, in order.
    pub(crate) fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.shares().map(|(_, b)| b)
    }

    /// Its backends in order, each with its percent.
    pub(crate) fn shares(&self) -> impl Iterator<Item = (u32, &Arc<Backend>)> {
        let (one, many): (_, &[_]) = match self {
            Self::Empty => (None, &[]),
            Self::One(b) => (Some(b), &[]),
            Self::Many(entries) => (None, entries),
        };
        let mut below = 0;
        one.map(|b| (100, b)).into_iter().chain(many.iter().map(move |(bound, b)| {
            let share = bound - below;
            below = *bound;
            (share, b)
        }))
    }

    /// The target for `roll` (0..100); None for an empty split.
    pub(crate) fn pick(&self, roll: u32) -> Option<&Arc<Backend>> {
        match self {
            Self::One(b) => Some(b),
            Self::Many(entries) => entries.iter().find(|(bound, _)| roll < *bound).or(entries.last()).map(|(_, b)| b),
            Self::Empty => None,
        }
    }
}

// === impl Roller ===

impl Roller {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    /// A sequence starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed) }
    }

    /// A sequence starting at a point from the operating system's randomness.
    pub(crate) fn random() -> Self {
        Self::new(rand::random())
    }

    /// The next roll in 0..100.
    pub(crate) fn roll(&self) -> u32 {
        let z = self.state.fetch_add(Self::GAMMA, Ordering::Relaxed).wrapping_add(Self::GAMMA);
        // Multiply-shift maps the point in [0, 1) (as a 64-bit fraction) onto 0..100.
        ((u128::from(z) * 100) >> 64) as u32
    }
}
