//! Sluice's data plane: host → route → weighted split → revision → instance → proxy.

pub mod endpoints;
