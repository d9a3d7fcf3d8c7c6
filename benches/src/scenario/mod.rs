//! Built-in scenarios, each one command: they start what they measure (the hello backend,
//! `sluice serve` with Knative's helloworld-go sample, nginx when installed), run an
//! interleaved comparison, and stop everything they started.

pub mod burst;
pub mod cold_start;
pub mod control;
pub mod many_routes;
pub mod nginx;
pub mod procs;
pub mod route_edit;
pub mod rules;
pub mod serve_api;
pub mod sluice;
pub mod steady;

use std::time::Duration;

use crate::load::LoadError;
use crate::pin::PinError;
use crate::target::TargetError;

/// A scenario's own temporary directory (state dirs, configs, logs), removed when dropped.
pub fn workdir() -> Result<tempfile::TempDir, ScenarioError> {
    tempfile::Builder::new()
        .prefix("sluice-bench-")
        .tempdir()
        .map_err(|e| ScenarioError::Io(format!("no temporary directory: {e}")))
}

/// A scenario that could not run; the message names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A process did not start, or exited.
    #[error("{what}: {reason}")]
    Start {
        /// What was started.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// Something did not become ready in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(String),
    /// The load run failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Pinning failed.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// A target URL was unusable.
    #[error(transparent)]
    Target(#[from] TargetError),
}
