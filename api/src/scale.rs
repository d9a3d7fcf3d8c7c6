//! The controller's port to whatever runs revision instances: the [`Scaler`] trait and the
//! plain data that crosses it. The local process runtime implements it today; a Kubernetes
//! runtime will implement it with Deployments. The controller never sees which.

use std::time::Duration;

use crate::RevisionKey;
use crate::podspec::Container;

/// Runs N instances of a revision and reports what is running.
///
/// Calls never block on instances: they record the wish and return; what follows is reported
/// through [`health`](Scaler::health) and the "health changed" notices the implementation sends
/// (the controller re-reads a revision when its key is announced).
pub trait Scaler: Send + Sync {
    /// Runs `scale` instances of `run`: starts missing ones, drains and stops extra ones.
    fn set_scale(&self, run: &RevisionRun, scale: usize);

    /// The revision `key` with `uid` is being deleted: stops its instances (after their
    /// in-flight requests) and ignores any later [`set_scale`](Scaler::set_scale) for that uid.
    fn forget(&self, key: &RevisionKey, uid: &str);

    /// What is running for `key`; None when it was never asked to run it.
    fn health(&self, key: &RevisionKey) -> Option<RevisionHealth>;

    /// Where a person reads `key`'s logs (the Revision's `status.logUrl`).
    fn log_url(&self, key: &RevisionKey) -> String;
}

/// What to run for one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionRun {
    /// Which revision.
    pub key: RevisionKey,
    /// The Revision object's uid: a revision deleted and created again under the same name is
    /// another revision.
    pub uid: String,
    /// Its Configuration (`K_CONFIGURATION`).
    pub configuration: String,
    /// Its Service (`K_SERVICE`), empty when none.
    pub service: String,
    /// The serving container.
    pub container: Container,
    /// The other containers, which run beside each instance and share its life.
    pub sidecars: Vec<Container>,
    /// The revision's request timeout: how long a stopping instance's requests may take.
    pub timeout: Duration,
    /// Requests one instance may hold at once (`containerConcurrency`; 0 for no limit).
    pub container_concurrency: u64,
}

/// Why an instance last stopped on its own or could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `ExitCode`, `ImageNotFound`, `StartFailed`, or `Unhealthy` (a liveness or startup probe
    /// failed).
    pub reason: String,
    /// For people: what happened, with the last line the instance wrote.
    pub message: String,
    /// The exit code (128 + signal when killed by one).
    pub exit_code: Option<i32>,
}

/// What the runtime sees of one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionHealth {
    /// Instances asked for.
    pub desired: usize,
    /// Instance processes alive.
    pub running: usize,
    /// Instances in routing.
    pub ready: usize,
    /// True once any instance has passed its readiness probe.
    pub ever_ready: bool,
    /// Restarts after an instance or one of its sidecars stopped on its own, or failed its
    /// liveness or startup probe.
    pub restarts: u32,
    /// The same restarts by container name.
    pub container_restarts: std::collections::BTreeMap<String, u32>,
    /// The last crash or start failure.
    pub last_failure: Option<Failure>,
    /// Why a starting instance is not ready yet, when the runtime can tell (it listens on
    /// another port than the `$PORT` it was given); None once one is ready.
    pub waiting: Option<String>,
}
