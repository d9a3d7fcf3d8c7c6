//! One revision's autoscaler: the KPA [`Decider`], then what Knative's KPA reconciler does with
//! its result (`pkg/reconciler/autoscaling/kpa/`): min/max/initial-scale bounds, the
//! Active/Inactive life cycle and the scale-to-zero rules.

use std::time::Duration;

use crate::decider::{Decider, Recommendation};
use crate::metrics::Metrics;
use crate::revision::Effective;

/// What the owner observed at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Time since the owner's epoch (any fixed instant; only differences and whole seconds
    /// matter). Must not go backwards between ticks.
    pub now: Duration,
    /// Instances that passed their readiness probe and receive requests.
    pub ready: u32,
    /// Whether a route sends traffic to the revision (Knative's `routingState: active`). An
    /// unreachable revision ignores min-scale and initial-scale and scales down freely.
    pub reachable: bool,
}

/// Knative's PodAutoscaler `Active` condition, which paces scale to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Instances were asked for and are not ready yet (Active=Unknown `Queued`).
    Activating,
    /// Serving since the given time (Active=True).
    Active {
        /// When it became active.
        since: Duration,
    },
    /// Not receiving traffic since the given time (Active=False `NoTraffic`).
    Inactive {
        /// When it became inactive.
        since: Duration,
    },
}

/// Why the desired scale is what it is: the last rule that set or changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The stable window's demand.
    Stable,
    /// Panic mode: the largest demand seen since panicking began.
    Panic,
    /// Raised to activation-scale.
    ActivationScale,
    /// A lower value waits out the scale-down delay.
    ScaleDownDelay,
    /// Raised to min-scale.
    MinScale,
    /// Raised to initial-scale, which has not been reached yet.
    InitialScale,
    /// Lowered to max-scale.
    MaxScale,
    /// Scale to zero is disabled, so one instance stays.
    ScaleToZeroDisabled,
    /// No demand, but active for less than the stable window: one instance stays.
    StableWindow,
    /// No demand; inactive, waiting out the grace (or pod retention) period.
    GracePeriod,
    /// Waiting for asked-for instances to become ready.
    Activating,
    /// No demand for the stable window and the grace period: zero instances.
    ScaledToZero,
}

/// One tick's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// The instances the revision should run now.
    pub desired: u32,
    /// In panic mode.
    pub panicking: bool,
    /// The stable-window average of the scaling metric.
    pub stable_value: f64,
    /// The panic-window average.
    pub panic_value: f64,
    /// Knative's excess burst capacity (see [`Recommendation`]).
    pub excess_burst_capacity: i64,
    /// The revision's `Active` state after this tick.
    pub activity: Activity,
    /// Why `desired` is what it is.
    pub reason: Reason,
}

/// A revision's autoscaler: decider state, scale-to-zero state and the scale last asked for.
#[derive(Clone, Debug)]
pub struct Autoscaler {
    config: Effective,
    decider: Decider,
    activity: Activity,
    /// Initial scale has been reached once (Knative's `ScaleTargetInitialized`).
    initialized: bool,
    /// The scale last asked of the runtime.
    current: u32,
}

/// The scale bounds at one tick; max 0 for unlimited.
struct Bounds {
    min: u32,
    max: u32,
    /// Whether min is min-scale or initial-scale.
    min_reason: Reason,
}

/// The reconciler's wish before the Active condition is updated: what to run, whether to ask
/// for it, and Knative's `want` (None for "unknown, still activating").
struct Wish {
    scale: u32,
    apply: bool,
    want: Option<u32>,
    reason: Reason,
}

// === impl Autoscaler ===

impl Autoscaler {
    /// The autoscaler of a brand-new revision at `now`: it asks for initial-scale instances
    /// (Knative creates the Deployment with that many replicas) and is Activating until they
    /// are ready.
    pub fn new(config: Effective, now: Duration) -> Self {
        let decider = Decider::new(&config, now, 0);
        let current = config.initial_scale;
        Self { config, decider, activity: Activity::Activating, initialized: false, current }
    }

    /// The autoscaler of a revision already running `ready` instances, as after a restart of
    /// the owner: it starts Active and, above one instance, in panic mode holding them.
    pub fn resume(config: Effective, now: Duration, ready: u32) -> Self {
        let decider = Decider::new(&config, now, ready);
        let activity = if ready > 0 { Activity::Active { since: now } } else { Activity::Inactive { since: now } };
        Self { config, decider, activity, initialized: true, current: ready }
    }

    /// The effective configuration.
    pub fn config(&self) -> &Effective {
        &self.config
    }

    /// Adopts changed settings or annotations (read live); the caller resizes its
    /// [`Metrics`] with [`Metrics::reconfigure`].
    pub fn update(&mut self, config: Effective) {
        self.decider.update(&config);
        self.config = config;
    }

    /// One decision. Call once per tick (every second) with that tick's observations.
    pub fn decide(&mut self, tick: Tick, metrics: &Metrics) -> Decision {
        let observed = metrics.observed(tick.now, self.config.metric);
        let rec = self.decider.scale(&self.config, tick.now, tick.ready, tick.reachable, observed);
        let bounds = self.bounds(tick.reachable);
        let (bounded, reason) = bounds.apply(rec);
        let wish = self.scale_to_zero(bounded, reason, tick.now);
        if wish.apply {
            self.current = wish.scale;
        }
        self.update_activity(wish.want, tick);
        Decision {
            desired: self.current,
            panicking: rec.panicking,
            stable_value: observed.stable,
            panic_value: observed.panic,
            excess_burst_capacity: rec.excess_burst_capacity,
            activity: self.activity,
            reason: wish.reason,
        }
    }

    /// `ScaleBounds` and the initial-scale floor.
    fn bounds(&self, reachable: bool) -> Bounds {
        let mut b = Bounds {
            min: if reachable { self.config.min_scale } else { 0 },
            max: self.config.max_scale,
            min_reason: Reason::MinScale,
        };
        let initial = self.config.initial_scale;
        if initial > 1 && !self.initialized && reachable && initial > b.min {
            b.min = initial;
            b.min_reason = Reason::InitialScale;
        }
        b
    }

    /// Knative's `handleScaleToZero`, with the activator always in the path (Sluice's proxy
    /// sees every request), so "backed by the activator" holds once inactive.
    fn scale_to_zero(&self, bounded: u32, reason: Reason, now: Duration) -> Wish {
        let hold = |reason| Wish { scale: self.current, apply: false, want: Some(0), reason };
        if bounded != 0 {
            return Wish { scale: bounded, apply: true, want: Some(bounded), reason };
        }
        if !self.config.enable_scale_to_zero {
            return Wish { scale: 1, apply: true, want: Some(1), reason: Reason::ScaleToZeroDisabled };
        }
        match self.activity {
            Activity::Activating => Wish { want: None, ..hold(Reason::Activating) },
            // Active long enough: become Inactive now (want 0), scale at a later tick.
            Activity::Active { since } if now.saturating_sub(since) >= self.config.stable_window => {
                hold(Reason::GracePeriod)
            }
            Activity::Active { .. } => Wish { scale: 1, apply: true, want: Some(1), reason: Reason::StableWindow },
            Activity::Inactive { since } => {
                let wait = self.config.scale_to_zero_grace_period.max(self.config.scale_to_zero_pod_retention_period);
                if now.saturating_sub(since) >= wait {
                    Wish { scale: 0, apply: true, want: Some(0), reason: Reason::ScaledToZero }
                } else {
                    hold(Reason::GracePeriod)
                }
            }
        }
    }

    /// Knative's `computeActiveCondition`.
    fn update_activity(&mut self, want: Option<u32>, tick: Tick) {
        let min = if tick.reachable { self.config.min_scale } else { 0 };
        let min_ready = if self.initialized { min.max(1) } else { min.max(self.config.initial_scale) };
        if tick.ready >= min_ready {
            self.initialized = true;
        }
        let inactive = matches!(self.activity, Activity::Inactive { .. });
        let wants = want.is_some_and(|w| w > 0);
        self.activity = match self.activity {
            _ if want == Some(0) || min_ready == 0 => match self.activity {
                Activity::Inactive { since } => Activity::Inactive { since },
                _ => Activity::Inactive { since: tick.now },
            },
            a if !wants && inactive => a,
            _ if tick.ready < min_ready => Activity::Activating,
            Activity::Active { since } => Activity::Active { since },
            _ => Activity::Active { since: tick.now },
        };
    }
}

// === impl Bounds ===

impl Bounds {
    /// `applyBounds`, remembering which rule set the value.
    fn apply(&self, rec: Recommendation) -> (u32, Reason) {
        if rec.desired < self.min {
            return (self.min, self.min_reason);
        }
        if self.max != 0 && rec.desired > self.max {
            return (self.max, Reason::MaxScale);
        }
        let reason = if rec.delayed {
            Reason::ScaleDownDelay
        } else if rec.panicking {
            Reason::Panic
        } else if rec.activated {
            Reason::ActivationScale
        } else {
            Reason::Stable
        };
        (rec.desired, reason)
    }
}
