//! The weighted split: integer percents as cumulative bounds, and the generator that rolls
//! 0..100 against them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Backend;

/// Targets with cumulative upper bounds: a roll `r` in 0..100 goes to the first target whose
/// bound exceeds `r`, so a target of `p` percent gets exactly `p` of the 100 rolls. Targets at
/// 0 % are left out.
#[derive(Debug, Default)]
pub(crate) struct Split {
    entries: Vec<(u32, Arc<Backend>)>,
}

/// A lock-free SplitMix64 generator shared by every request of a router: one atomic add per
/// roll, reproducible from a seed.
#[derive(Debug)]
pub(crate) struct Roller {
    state: AtomicU64,
}

// === impl Split ===

impl Split {
    /// The split of `weighted` (percents summing to 100, checked by the caller).
    pub(crate) fn new(weighted: impl IntoIterator<Item = (u32, Arc<Backend>)>) -> Self {
        let mut bound = 0;
        let entries = weighted
            .into_iter()
            .filter(|(percent, _)| *percent > 0)
            .map(|(percent, backend)| {
                bound += percent;
                (bound, backend)
            })
            .collect();
        Self { entries }
    }

    /// The target for `roll` (0..100); None for an empty split.
    pub(crate) fn pick(&self, roll: u32) -> Option<&Arc<Backend>> {
        self.entries.iter().find(|(bound, _)| roll < *bound).or(self.entries.last()).map(|(_, b)| b)
    }
}

// === impl Roller ===

impl Roller {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    /// A generator starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed) }
    }

    /// A generator seeded from the operating system's randomness.
    pub(crate) fn random() -> Self {
        Self::new(rand::random())
    }

    /// A uniform roll in 0..100.
    pub(crate) fn roll(&self) -> u32 {
        let mut z = self.state.fetch_add(Self::GAMMA, Ordering::Relaxed).wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Multiply-shift maps 2^64 values onto 0..100 with a bias below 1e-17.
        ((u128::from(z) * 100) >> 64) as u32
    }
}
