//! The autoscaler's owner: one task per revision that samples the revision's demand (requests in
//! flight plus waiting, from the router's activator gate) ten times a second, records each
//! second's average with the request count, asks the KPA ([`sluice_autoscaler::Autoscaler`])
//! for a decision every second, and applies it through the [`Scaler`]. It is the one writer of a
//! revision's scale; the Revision reconciler only says what the revision is (its run, its
//! annotations, whether a route reaches it) and reads the decision back for the status.
//!
//! A request that starts to wait for a revision's capacity pokes the revision's task (through
//! [`Autoscaling::poke`]), which decides at once instead of at its next tick: a revision at zero
//! starts its first instance within a millisecond of the request.
//!
//! A revision at zero with nothing in flight or waiting, whose windows hold only zeros, does not
//! sample: its task sleeps until a poke, a change of its wish or of the settings, or the end of
//! its grace period, then records the zeros it skipped (the last window's worth) before deciding,
//! so the KPA sees the windows continuous sampling would have given it. Ten thousand revisions
//! at zero cost no timer wake-ups.
//!
//! Where Sluice departs from Knative here: a revision no route reaches (`routingState: reserve`)
//! with no request in flight or waiting runs no instance at once, instead of waiting out the
//! stable window; a route that stops referencing a revision stops it once its requests finish.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sluice_api::RevisionKey;
use sluice_api::scale::{RevisionRun, Scaler};
use sluice_autoscaler::{Activity, Autoscaler, Decision, Effective, Metric, Metrics, Reason, Sample, Settings, Tick};
use sluice_router::endpoints::Endpoints;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;

mod figures;
mod note;

/// How often demand is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the KPA decides (it expects one-second samples).
const TICK_EVERY: Duration = Duration::from_secs(1);
/// Pokes queued for the dispatcher at most; more are dropped, and once the queue has drained
/// every revision asleep at zero is woken (a dropped poke may have been its own).
pub const POKE_QUEUE: usize = 1024;

/// The request counters the autoscaler samples, per revision.
pub trait Demand: Send + Sync {
    /// Requests in flight plus waiting now, and requests admitted so far.
    fn demand(&self, key: &RevisionKey) -> (u64, u64);
}

impl Demand for Endpoints {
    fn demand(&self, key: &RevisionKey) -> (u64, u64) {
        self.get(key).map_or((0, 0), |e| (e.gate().concurrency(), e.gate().admitted()))
    }
}

/// What the Revision reconciler says of one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Wish {
    /// What to run.
    pub run: RevisionRun,
    /// The revision's annotations (`autoscaling.knative.dev/*` override the cluster's settings).
    pub annotations: BTreeMap<String, String>,
    /// A route sends it traffic, or may soon (a new revision no route has claimed yet).
    pub reachable: bool,
    /// It failed for good (its progress deadline passed): run nothing.
    pub stopped: bool,
}

/// The autoscaler's view of one revision, for its status.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Instances asked of the runtime.
    pub desired: u32,
    /// Knative's PodAutoscaler `Active` state.
    pub activity: ViewActivity,
    /// In panic mode.
    pub panicking: bool,
    /// The metric scaled on: `concurrency` or `rps`.
    pub metric: &'static str,
    /// The stable-window average of the metric.
    pub stable: f64,
    /// The panic-window average.
    pub panic: f64,
    /// The metric's target per instance (after the utilization percentage).
    pub target: f64,
    /// Why `desired` is what it is.
    pub reason: String,
    /// The revision's initial scale: at 0 (`allow-zero-initial-scale`) it is ready without ever
    /// running an instance, as Knative's scale target is initialized at once.
    pub initial_scale: u32,
}

/// [`Activity`] without its timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewActivity {
    /// Instances asked for are not ready yet.
    Activating,
    /// Serving.
    Active,
    /// Not receiving traffic.
    Inactive,
}

/// Every revision's owner task.
pub struct Autoscaling {
    scaler: Arc<dyn Scaler>,
    events: Recorder,
    demand: Arc<dyn Demand>,
    settings: Mutex<Arc<Settings>>,
    /// Bumped whenever the settings change, so owners re-resolve their configuration.
    generation: AtomicU64,
    revisions: Mutex<HashMap<RevisionKey, Tracked>>,
    /// Names a revision whose view changed, so its status is written again.
    changes: mpsc::Sender<RevisionKey>,
    epoch: Instant,
    shutdown: CancellationToken,
}

/// What the reconciler and the owner task share of one revision.
#[derive(Clone)]
struct Tracked {
    wish: Arc<Mutex<Wish>>,
    view: Arc<Mutex<View>>,
    poke: Arc<Notify>,
    /// The owner sleeps at zero, waiting for `poke`: a settings change or a lost poke wakes it.
    asleep: Arc<AtomicBool>,
    stop: CancellationToken,
}

// === impl Autoscaling ===

impl Autoscaling {
    /// Owner tasks for revisions, scaling through `scaler` on `demand` (each change reported to
    /// `events`); pokes arrive on `pokes`. Returns the receiver of "this revision's view
    /// changed" notices. Must be called within a tokio runtime; everything ends when `shutdown`
    /// is cancelled.
    pub fn start(
        scaler: Arc<dyn Scaler>,
        events: Recorder,
        demand: Arc<dyn Demand>,
        mut pokes: mpsc::Receiver<RevisionKey>,
        shutdown: CancellationToken,
    ) -> (Arc<Self>, mpsc::Receiver<RevisionKey>) {
        let (changes, changed) = mpsc::channel(POKE_QUEUE);
        let me = Arc::new(Self {
            scaler,
            events,
            demand,
            settings: Mutex::new(Arc::new(Settings::default())),
            generation: AtomicU64::new(0),
            revisions: Mutex::new(HashMap::new()),
            changes,
            epoch: Instant::now(),
            shutdown,
        });
        let dispatcher = Arc::downgrade(&me);
        let stop = me.shutdown.clone();
        tokio::spawn(async move {
            // The queue was full at some point since it was last empty: a poke may have been
            // dropped, and a revision asleep at zero would wait for it for good.
            let mut overflowed = false;
            loop {
                let key = tokio::select! {
                    () = stop.cancelled() => return,
                    key = pokes.recv() => match key {
                        Some(key) => key,
                        None => return,
                    },
                };
                // Full before this receive (a sender may have found it so): a drop is possible.
                overflowed |= pokes.len() + 1 >= pokes.max_capacity();
                let Some(me) = dispatcher.upgrade() else { return };
                me.poke(&key);
                if overflowed && pokes.is_empty() {
                    overflowed = false;
                    me.wake_sleepers();
                }
            }
        });
        (me, changed)
    }

    /// Adopts new cluster-wide settings (Knative's `config-autoscaler`).
    pub fn set_settings(&self, settings: Settings) {
        *self.settings.lock() = Arc::new(settings);
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Revisions asleep at zero decide again under the new settings (scale to zero may have
        // been disabled).
        self.wake_sleepers();
    }

    /// Wakes every revision whose owner sleeps at zero, so it samples and decides once.
    fn wake_sleepers(&self) {
        for tracked in self.revisions.lock().values() {
            if tracked.asleep.load(Ordering::SeqCst) {
                tracked.poke.notify_one();
            }
        }
    }

    /// The cluster-wide settings now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.lock().clone()
    }

    /// Records what the revision is and returns the autoscaler's view of it; the first call for
    /// a revision starts its owner task.
    pub fn track(self: &Arc<Self>, wish: Wish) -> View {
        let mut revisions = self.revisions.lock();
        if let Some(tracked) = revisions.get(&wish.run.key).filter(|t| t.wish.lock().run.uid == wish.run.uid) {
            let changed = *tracked.wish.lock() != wish;
            if changed {
                *tracked.wish.lock() = wish;
                // Decide again now: a route may have just let the revision go.
                tracked.poke.notify_one();
            }
            return tracked.view.lock().clone();
        }
        // A new revision, or one recreated under the same name.
        if let Some(old) = revisions.remove(&wish.run.key) {
            old.stop.cancel();
        }
        let effective = self.effective(&wish);
        let view = View::initial(&effective, &wish);
        let tracked = Tracked {
            wish: Arc::new(Mutex::new(wish.clone())),
            view: Arc::new(Mutex::new(view.clone())),
            poke: Arc::new(Notify::new()),
            asleep: Arc::new(AtomicBool::new(false)),
            stop: self.shutdown.child_token(),
        };
        revisions.insert(wish.run.key.clone(), tracked.clone());
        tokio::spawn(self.clone().own(wish.run.key.clone(), tracked, effective));
        view
    }

    /// The revision `key` with `uid` is gone: its owner stops (the runtime stops its instances).
    pub fn forget(&self, key: &RevisionKey, uid: &str) {
        let mut revisions = self.revisions.lock();
        let ours = revisions.get(key).is_some_and(|t| uid.is_empty() || t.wish.lock().run.uid == uid);
        if ours && let Some(tracked) = revisions.remove(key) {
            tracked.stop.cancel();
        }
    }

    /// A request waits for `key`'s capacity: decide now.
    pub fn poke(&self, key: &RevisionKey) {
        if let Some(tracked) = self.revisions.lock().get(key) {
            tracked.poke.notify_one();
        }
    }

    /// The autoscaler's view of `key`, if it is tracked.
    pub fn view(&self, key: &RevisionKey) -> Option<View> {
        self.revisions.lock().get(key).map(|t| t.view.lock().clone())
    }

    /// The revision's effective configuration under the current settings; annotations that do
    /// not validate fall back to the settings alone: a class other than the KPA (admission warns
    /// about it, and the revision's FieldsHonoured condition says so), or annotations a settings
    /// change made invalid (admission refuses invalid ones).
    fn effective(&self, wish: &Wish) -> Effective {
        let settings = self.settings();
        let cc = wish.run.container_concurrency;
        Effective::from_annotations(&wish.annotations, cc, &settings).unwrap_or_else(|e| {
            tracing::warn!(revision = %wish.run.key, error = %e, "autoscaling annotations do not apply; using the cluster's settings");
            Effective::defaults(cc, &settings)
        })
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    /// The owner task of one revision.
    async fn own(self: Arc<Self>, key: RevisionKey, tracked: Tracked, mut effective: Effective) {
        // The facade cannot remove a series: a revision whose task ends reads zero.
        let mut figures = ZeroOnDrop(figures::Figures::new(&tracked.wish.lock().run));
        let revision = key.to_string();
        let mut kpa = Autoscaler::new(effective.clone(), self.now());
        let mut metrics = Metrics::new(&effective);
        let mut generation = self.generation.load(Ordering::SeqCst);
        let mut configured = tracked.wish.lock().clone();
        let mut admitted = self.demand.demand(&key).1;
        let (mut sum, mut samples) = (0.0, 0u32);
        // The second last recorded, and the concurrency recorded for it.
        let mut recorded: Option<(u64, f64)> = None;
        let mut applied: Option<(u32, String)> = None;
        let mut sampling = tokio::time::interval(SAMPLE_EVERY);
        sampling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tick: Option<Instant> = None;
        let mut poked = false;
        loop {
            // A poke not acted on yet is remembered for the next sample.
            poked |= tokio::select! {
                () = tracked.stop.cancelled() => return,
                _ = sampling.tick() => false,
                () = tracked.poke.notified() => true,
            };
            let (concurrency, total) = self.demand.demand(&key);
            sum += concurrency as f64;
            samples += 1;
            let now = Instant::now();
            let due = last_tick.is_none_or(|t| now >= t + TICK_EVERY);
            // A poke decides at once at zero (a request is waiting for the first instance);
            // otherwise not more often than demand is sampled.
            let at_zero = applied.as_ref().is_some_and(|(desired, _)| *desired == 0);
            let poke_due = poked && (at_zero || last_tick.is_some_and(|t| now >= t + SAMPLE_EVERY));
            if !due && !poke_due {
                continue;
            }
            last_tick = Some(now);
            let this_poke = std::mem::take(&mut poked);
            let at = now.saturating_duration_since(self.epoch);
            // One sample per second. A poke later in a second already recorded adds what demand
            // grew by since (samples in one second add up), so a request waiting at zero
            // counts at once.
            let average = sum / f64::from(samples.max(1));
            let value = if this_poke { average.max(concurrency as f64) } else { average };
            let requests = total.saturating_sub(admitted) as f64;
            match recorded {
                Some((sec, before)) if sec == at.as_secs() => {
                    let more = value - before;
                    if more > 0.0 || requests > 0.0 {
                        metrics.record(at, Sample { concurrency: more.max(0.0), requests });
                        recorded = Some((sec, before.max(value)));
                    }
                }
                _ => {
                    metrics.record(at, Sample { concurrency: value, requests });
                    recorded = Some((at.as_secs(), value));
                }
            }
            admitted = total;
            (sum, samples) = (0.0, 0);
            let wish = tracked.wish.lock().clone();
            let now_generation = self.generation.load(Ordering::SeqCst);
            if now_generation != generation
                || wish.annotations != configured.annotations
                || wish.run.container_concurrency != configured.run.container_concurrency
            {
                effective = self.effective(&wish);
                kpa.update(effective.clone());
                metrics.reconfigure(&effective);
                generation = now_generation;
            }
            configured = wish.clone();
            let health = self.scaler.health(&key);
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let ever_ready = health.as_ref().is_some_and(|h| h.ever_ready);
            let (ready, actual) = health.map_or((0, 0), |h| (count(h.ready), count(h.running)));
            let decision = kpa.decide(Tick { now: at, ready, reachable: wish.reachable }, &metrics);
            let desired = match () {
                () if wish.stopped => 0,
                // No route and no request: stopped at once, without Knative's windows. But only
                // once it has been ready: a revision pinned out of every route as it is created
                // (an apply that keeps the old split) runs its initial scale until then, as
                // Knative's scaler keeps an activating revision's scale, or it could never
                // become Ready.
                () if !wish.reachable && concurrency == 0 && ever_ready => 0,
                () => decision.desired,
            };
            // The scale this decision moves from, when it moves it.
            let mut scaled_from = None;
            let changed = applied.as_ref() != Some(&(desired, wish.run.uid.clone()));
            if changed {
                self.scaler.set_scale(&wish.run, desired as usize);
                let from = applied.as_ref().filter(|(_, uid)| *uid == wish.run.uid).map_or(0, |(d, _)| *d);
                scaled_from = (from != desired).then_some(from);
                applied = Some((desired, wish.run.uid.clone()));
            }
            let view = View::of(&decision, desired, &effective, &wish);
            let inputs = figures::Inputs {
                effective: &effective,
                decision: &decision,
                desired,
                actual,
                ready,
                reason: &view.reason,
            };
            figures.0.record(&revision, &inputs, changed);
            if let Some(from) = scaled_from {
                self.events.publish(note::scaled(&key, &wish.run.uid, from, &view));
            }
            let changed = {
                let mut current = tracked.view.lock();
                let changed = current.desired != view.desired || current.activity != view.activity;
                *current = view;
                changed
            };
            if changed {
                let _ = self.changes.try_send(key.clone());
            }
            let quiet = Quiet { desired, concurrency, requests, ready, actual };
            if quiet.at_rest(&decision) {
                let grace_ends = grace_end(&decision, &effective).map(|d| self.epoch + d);
                match self.sleep(&key, &tracked, generation, (concurrency, total), grace_ends).await {
                    Slept::Stopped => return,
                    Slept::NotAtRest => {}
                    Slept::Woke { poke } => {
                        poked |= poke;
                        // The seconds slept read as the zeros sampling would have recorded.
                        let now = self.now().as_secs();
                        let from = (at.as_secs() + 1).max(now.saturating_sub(effective.stable_buckets() as u64));
                        for sec in from..now {
                            metrics.record(Duration::from_secs(sec), Sample { concurrency: 0.0, requests: 0.0 });
                        }
                        // Sample and decide at once.
                        sampling.reset_immediately();
                    }
                }
            }
        }
    }

    /// Sleeps at zero until poked, woken, stopped or `until`; returns at once when something
    /// changed since the decision (settings moved to a generation other than `generation`, or
    /// demand other than `demand`), which a waker may have missed.
    async fn sleep(
        &self,
        key: &RevisionKey,
        tracked: &Tracked,
        generation: u64,
        demand: (u64, u64),
        until: Option<Instant>,
    ) -> Slept {
        tracked.asleep.store(true, Ordering::SeqCst);
        // After `asleep` is set: a change made before it was set is seen here, one made after
        // wakes the sleeper.
        let moved = self.generation.load(Ordering::SeqCst) != generation || self.demand.demand(key) != demand;
        let slept = if moved {
            Slept::NotAtRest
        } else {
            let deadline = async {
                match until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tracked.stop.cancelled() => Slept::Stopped,
                () = tracked.poke.notified() => Slept::Woke { poke: true },
                () = deadline => Slept::Woke { poke: false },
            }
        };
        tracked.asleep.store(false, Ordering::SeqCst);
        slept
    }
}

/// How a sleep at zero ended.
enum Slept {
    /// The revision is no longer tracked, or the autoscaler is shutting down.
    Stopped,
    /// Something changed as it lay down: it did not sleep.
    NotAtRest,
    /// Poked or woken (`poke`), or its grace period ended.
    Woke { poke: bool },
}

/// What one decision saw, for [`Quiet::at_rest`].
struct Quiet {
    desired: u32,
    concurrency: u64,
    requests: f64,
    ready: u32,
    actual: u32,
}

// === impl Quiet ===

impl Quiet {
    /// True when the revision is at zero and nothing but a request (or a change of wish or
    /// settings, or time reaching the end of its grace period) can change the next decision:
    /// no instance, no demand, windows of zeros, not panicking, the KPA itself at zero and
    /// Inactive. Sampling it would record zeros and decide the same.
    fn at_rest(&self, decision: &Decision) -> bool {
        self.desired == 0
            && decision.desired == 0
            && self.concurrency == 0
            && self.requests == 0.0
            && self.ready == 0
            && self.actual == 0
            && !decision.panicking
            && decision.stable_value == 0.0
            && decision.panic_value == 0.0
            && matches!(decision.activity, Activity::Inactive { .. })
    }
}

/// When an Inactive revision's grace period ends (its reason changes from `GracePeriod` to
/// `ScaledToZero` then), as an offset from the owner's epoch; None when not waiting one out.
fn grace_end(decision: &Decision, effective: &Effective) -> Option<Duration> {
    match (decision.activity, decision.reason) {
        (Activity::Inactive { since }, Reason::GracePeriod) => {
            Some(since + effective.scale_to_zero_grace_period.max(effective.scale_to_zero_pod_retention_period))
        }
        _ => None,
    }
}

/// Zeroes a revision's figures when its owner task ends, however it ends.
struct ZeroOnDrop(figures::Figures);

impl Drop for ZeroOnDrop {
    fn drop(&mut self) {
        self.0.zero();
    }
}

// === impl View ===

impl View {
    /// Before the first decision: what a new revision is created with.
    fn initial(effective: &Effective, wish: &Wish) -> Self {
        let desired = if wish.stopped { 0 } else { effective.initial_scale };
        Self {
            desired,
            activity: ViewActivity::Activating,
            panicking: false,
            metric: metric_name(effective.metric),
            stable: 0.0,
            panic: 0.0,
            target: effective.target,
            reason: "InitialScale".into(),
            initial_scale: effective.initial_scale,
        }
    }

    fn of(decision: &Decision, desired: u32, effective: &Effective, wish: &Wish) -> Self {
        let reason = match () {
            () if wish.stopped => "Failed".to_string(),
            () if desired != decision.desired => "NotRouted".to_string(),
            () => format!("{:?}", decision.reason),
        };
        Self {
            desired,
            activity: match decision.activity {
                Activity::Activating => ViewActivity::Activating,
                Activity::Active { .. } => ViewActivity::Active,
                Activity::Inactive { .. } => ViewActivity::Inactive,
            },
            panicking: decision.panicking,
            metric: metric_name(effective.metric),
            stable: decision.stable_value,
            panic: decision.panic_value,
            target: effective.target,
            reason,
            initial_scale: effective.initial_scale,
        }
    }
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Concurrency => "concurrency",
        Metric::Rps => "rps",
    }
}

#[cfg(test)]
mod tests;
