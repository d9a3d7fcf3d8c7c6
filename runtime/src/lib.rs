//! The local runtime, the embedded default's "node": runs each revision's instances as child
//! processes of `sluice serve`, probes them, puts ready ones into the router's
//! [`Endpoints`], restarts crashed ones with backoff, and drains and stops the ones no longer
//! wanted. It is the embedded default's [`Scaler`]: the controller says how many instances a
//! revision should run ([`Runtime::set_scale`]) and reads back what is running
//! ([`Runtime::health`]); every change is announced on the channel [`Runtime::new`] returns, so
//! the revision's status follows. A Kubernetes runtime will implement the same trait with
//! Deployments.
//!
//! Each start resolves the container's ConfigMap and Secret references through the
//! [`EnvSources`] the binary gives it ([`env`](mod@env)); a missing object or key fails the start as
//! `CreateContainerConfigError`, retried with the restart backoff.
//!
//! An instance runs as `sluice instance-exec --parent-pid P -- ARGV` in its own process group:
//! the trampoline arranges for the kernel to kill it if `sluice serve` dies, then becomes ARGV.
//! What it starts in turn is stopped with its group: by the runtime when the instance stops or
//! exits, and by the [`Warden`] when `sluice serve` is killed.

pub mod env;
mod images;
mod listeners;
pub mod netns;
mod probe;
mod process;
mod sidecar;
mod supervisor;
mod warden;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sluice_api::RevisionKey;
use sluice_api::scale::Scaler;
use sluice_router::endpoints::Endpoints;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use sluice_api::tombstones::Tombstones;

pub use env::{ConfigError, EnvSources, SourceData, SourceKind};
pub use images::{ImageFile, ImageTable, ImageTableError, Images, repository, short_name};
pub use process::{ExecError, INSTANCE_ENV, STATE_DIR_ENV, StartError, exec_instance, instance_pids};
pub use sluice_api::scale::{Failure, RevisionHealth, RevisionRun};
pub use warden::{Warden, WardenError, keep_watch};

/// How the runtime runs instances.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where logs go (`logs/<namespace>/<revision>.log`).
    pub state_dir: PathBuf,
    /// Program and leading arguments every instance is started through (`sluice
    /// instance-exec`); empty starts instances directly.
    pub launcher: Vec<OsString>,
    /// A smaller program that does what `launcher` does for an instance outside a network
    /// namespace and starts faster (`sluice-exec`); `None` uses `launcher` for every instance.
    pub small_launcher: Option<OsString>,
    /// Stops instances' process groups if `sluice serve` dies without stopping them; none
    /// leaves only the kernel's parent-death signal (which reaches an instance's first
    /// process, not what it started) and the next start's sweep.
    pub warden: Option<Arc<Warden>>,
    /// Image → command, for containers without a `command`; replaced whole when its file
    /// changes ([`ImageFile::follow`]).
    pub images: Images,
    /// The longest gap between probes of a starting instance (probing starts at 1 ms gaps and
    /// backs off to this).
    pub readiness_poll: Duration,
    /// How long a stopping instance has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Each instance in a network namespace of its own ([`netns`]), given its declared port;
    /// needs a launcher.
    pub network_namespaces: bool,
    /// Where `env[].valueFrom` and `envFrom` find ConfigMaps and Secrets; none makes every such
    /// reference a start failure that says so.
    pub env_sources: Option<Arc<dyn EnvSources>>,
}

/// The local runtime.
#[derive(Debug)]
pub struct Runtime {
    /// Itself, for the supervisors it spawns.
    me: std::sync::Weak<Runtime>,
    config: RuntimeConfig,
    endpoints: Arc<Endpoints>,
    revisions: Mutex<Revisions>,
    changes: UnboundedSender<RevisionKey>,
    next_id: AtomicU64,
    tasks: TaskTracker,
    closing: CancellationToken,
    /// The drain bound of a shutdown in progress, in milliseconds.
    drain_ms: AtomicU64,
}

/// What runs, by revision; and the uids of deleted revisions, for which a late
/// [`Runtime::set_scale`] (from a reconcile that read the revision before it was deleted) is
/// ignored.
#[derive(Debug, Default)]
struct Revisions {
    slots: HashMap<RevisionKey, RevisionSlot>,
    deleted: Tombstones,
}

/// One revision's supervisors and shared health.
#[derive(Debug)]
struct RevisionSlot {
    run: Arc<RevisionRun>,
    supervisors: Vec<CancellationToken>,
    health: Arc<Mutex<RevisionHealth>>,
}

// === impl RuntimeConfig ===

impl RuntimeConfig {
    /// What an instance outside a network namespace is started through: the small launcher
    /// when there is one and a launcher is used at all.
    pub(crate) fn plain_launcher(&self) -> Vec<OsString> {
        match &self.small_launcher {
            Some(small) if !self.launcher.is_empty() => vec![small.clone()],
            _ => self.launcher.clone(),
        }
    }

    /// Defaults: instances started directly, probed at most 50 ms apart while starting, 5 s of
    /// grace at stop.
    pub fn new(state_dir: PathBuf, images: ImageTable) -> Self {
        Self {
            state_dir,
            launcher: Vec::new(),
            small_launcher: None,
            warden: None,
            images: Images::new(images),
            readiness_poll: Duration::from_millis(50),
            stop_grace: Duration::from_secs(5),
            network_namespaces: false,
            env_sources: None,
        }
    }
}

// === impl Runtime ===

impl Runtime {
    /// A runtime with nothing running, and the channel on which it names each revision whose
    /// health changed.
    pub fn new(config: RuntimeConfig, endpoints: Arc<Endpoints>) -> (Arc<Self>, UnboundedReceiver<RevisionKey>) {
        let (changes, rx) = unbounded_channel();
        let rt = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            config,
            endpoints,
            revisions: Mutex::new(Revisions::default()),
            changes,
            next_id: AtomicU64::new(1),
            tasks: TaskTracker::new(),
            closing: CancellationToken::new(),
            drain_ms: AtomicU64::new(u64::MAX),
        });
        (rt, rx)
    }

    /// Runs `scale` instances of `run`: starts missing ones, drains and stops extra ones.
    /// Ignored once [`shutdown`](Self::shutdown) has begun.
    pub fn set_scale(&self, run: &RevisionRun, scale: usize) {
        let Some(me) = self.me.upgrade() else { return };
        if self.closing.is_cancelled() {
            return;
        }
        let mut revisions = self.revisions.lock();
        if revisions.deleted.contains(&run.uid) {
            return;
        }
        let slot = revisions.slots.entry(run.key.clone()).or_insert_with(|| RevisionSlot {
            run: Arc::new(run.clone()),
            supervisors: Vec::new(),
            health: Arc::new(Mutex::new(RevisionHealth::default())),
        });
        if *slot.run != *run {
            // Revisions are immutable; a different run means the revision was recreated.
            slot.run = Arc::new(run.clone());
        }
        // The router enforces the limit per instance and admits up to limit × ready.
        let endpoints = self.endpoints.revision(&run.key);
        endpoints.set_container_concurrency(run.container_concurrency);
        // Its owners label its response counters.
        endpoints.owners().set(sluice_router::endpoints::Owners {
            configuration: run.configuration.clone(),
            service: run.service.clone(),
        });
        slot.health.lock().desired = scale;
        while slot.supervisors.len() > scale {
            if let Some(stop) = slot.supervisors.pop() {
                stop.cancel();
            }
        }
        while slot.supervisors.len() < scale {
            let stop = self.closing.child_token();
            slot.supervisors.push(stop.clone());
            let task = supervisor::supervise(me.clone(), slot.run.clone(), slot.health.clone(), stop);
            self.tasks.spawn(task);
        }
    }

    /// The revision `key` with `uid` is being deleted: stops its instances (after their
    /// in-flight requests), forgets its health, and from now on ignores any request to run it.
    /// A revision created since under the same name (another uid) is left alone.
    pub fn forget(&self, key: &RevisionKey, uid: &str) {
        let mut revisions = self.revisions.lock();
        revisions.deleted.bury(uid);
        let ours = revisions.slots.get(key).is_some_and(|slot| uid.is_empty() || slot.run.uid == uid);
        if ours && let Some(slot) = revisions.slots.remove(key) {
            slot.supervisors.iter().for_each(CancellationToken::cancel);
        }
    }

    /// What is running for `key`; None when the runtime was never asked to run it.
    pub fn health(&self, key: &RevisionKey) -> Option<RevisionHealth> {
        self.revisions.lock().slots.get(key).map(|slot| slot.health.lock().clone())
    }

    /// The log file of `key`'s instances.
    pub fn log_path(&self, key: &RevisionKey) -> PathBuf {
        self.config.state_dir.join("logs").join(&key.namespace).join(format!("{}.log", key.name))
    }

    /// Stops everything: each instance leaves routing, gets up to `drain` for its in-flight
    /// requests, then SIGTERM and, after the grace period, SIGKILL. Returns when all are gone.
    pub async fn shutdown(&self, drain: Duration) {
        self.drain_ms.store(u64::try_from(drain.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.closing.cancel();
        self.revisions.lock().slots.clear();
        self.tasks.close();
        let bound = drain + self.config.stop_grace + Duration::from_secs(1);
        if tokio::time::timeout(bound, self.tasks.wait()).await.is_err() {
            tracing::warn!("instances did not stop in time");
        }
    }

    /// Kills instances an earlier `sluice serve` on `state_dir` left behind; returns how many.
    pub fn sweep_orphans(state_dir: &Path) -> usize {
        process::sweep_orphans(state_dir)
    }

    /// How long stopping instances may drain during a shutdown.
    fn shutdown_drain(&self) -> Duration {
        Duration::from_millis(self.drain_ms.load(Ordering::SeqCst))
    }

    fn announce(&self, key: &RevisionKey) {
        let _ = self.changes.send(key.clone());
    }
}

impl Scaler for Runtime {
    fn set_scale(&self, run: &RevisionRun, scale: usize) {
        Runtime::set_scale(self, run, scale);
    }

    fn forget(&self, key: &RevisionKey, uid: &str) {
        Runtime::forget(self, key, uid);
    }

    fn health(&self, key: &RevisionKey) -> Option<RevisionHealth> {
        Runtime::health(self, key)
    }

    fn log_url(&self, key: &RevisionKey) -> String {
        format!("file://{}", self.log_path(key).display())
    }
}

#[cfg(test)]
mod tests;
