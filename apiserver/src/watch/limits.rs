//! How many watches may run at once and how much each may buffer: admission answers 429
//! `TooManyRequests` past the cap, and a watch that falls behind closes its connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::outbox::BufferLimits;
use crate::status::ApiError;

/// Watches open at once by default: far more than Sluice's controllers and a few kubectl
/// sessions need, few enough that each one's buffer cannot add up to much.
pub const DEFAULT_MAX_WATCHES: usize = 300;
/// Lines one watch buffers by default.
pub const DEFAULT_BUFFER_EVENTS: usize = 64;
/// Bytes one watch buffers by default (besides what the connection and the kernel hold).
pub const DEFAULT_BUFFER_BYTES: usize = 1024 * 1024;
/// How long a watch's buffer may stay full before the watch is closed by default.
pub const DEFAULT_STALL: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// Cancels the connection a request came in on. The request path is set up per
    /// connection; a watch that falls behind cancels it, because ending the body alone would
    /// leave the connection blocked on a socket nobody reads, holding what it buffered.
    pub static CONNECTION: CancellationToken;
}

/// The watch limits of an API server.
#[derive(Clone, Copy, Debug)]
pub struct WatchLimits {
    /// Watches open at once; beyond it a watch gets 429.
    pub max_watches: usize,
    /// What each watch may buffer.
    pub buffer: BufferLimits,
}

/// Admission of watches under [`WatchLimits`].
#[derive(Debug)]
pub struct Watches {
    limits: WatchLimits,
    running: Arc<Semaphore>,
}

// === impl WatchLimits ===

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            max_watches: DEFAULT_MAX_WATCHES,
            buffer: BufferLimits { events: DEFAULT_BUFFER_EVENTS, bytes: DEFAULT_BUFFER_BYTES, stall: DEFAULT_STALL },
        }
    }
}

// === impl Watches ===

impl Watches {
    /// Admission under `limits`.
    pub fn new(limits: WatchLimits) -> Self {
        Self { limits, running: Arc::new(Semaphore::new(limits.max_watches.min(Semaphore::MAX_PERMITS))) }
    }

    /// A slot for one more watch, held until it ends; 429 when all are taken.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.running.clone().try_acquire_owned().map_err(|_| {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                format!("too many watches: at most {} at once; try again later", self.limits.max_watches),
            );
            e.details = Some(serde_json::json!({"retryAfterSeconds": 1}));
            e
        })
    }

    /// What each watch may buffer.
    pub fn buffer(&self) -> BufferLimits {
        self.limits.buffer
    }
}
