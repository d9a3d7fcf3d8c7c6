//! Test helpers shared by Sluice's end-to-end tests: start the real `sluice serve` on ports the
//! OS picks, wait for it with a deadline (never a fixed sleep), talk HTTP to it, and make sure no
//! process outlives the test.

pub mod http;
mod process;

pub use process::{Sluice, SluiceOptions, eventually, wait_for};

/// The kubectl binary, when this machine has one; tests that need it print why they skip.
pub fn kubectl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("kubectl")).find(|p| p.is_file())
}
