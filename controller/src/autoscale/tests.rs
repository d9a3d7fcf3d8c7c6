//! The owner loop on tokio's paused clock, with a scaler whose instances are ready the moment
//! they are asked for and demand set by the test.

use std::sync::atomic::{AtomicBool, AtomicU64};

use sluice_api::podspec::Container;
use sluice_api::scale::RevisionHealth;

use super::*;

/// Instances ready as soon as they are asked for (unless `starting`); every call recorded
/// with its time.
#[derive(Default)]
struct Instant0 {
    calls: Mutex<Vec<(Duration, usize)>>,
    scale: Mutex<usize>,
    epoch: Mutex<Option<Instant>>,
    /// The instances run but are not ready yet.
    starting: AtomicBool,
    /// An instance has been ready (the runtime's `ever_ready`).
    was_ready: AtomicBool,
}

impl Scaler for Instant0 {
    fn set_scale(&self, _run: &RevisionRun, scale: usize) {
        let epoch = *self.epoch.lock().get_or_insert_with(Instant::now);
        self.calls.lock().push((Instant::now() - epoch, scale));
        *self.scale.lock() = scale;
    }
    fn forget(&self, _key: &RevisionKey, _uid: &str) {}
    fn health(&self, _key: &RevisionKey) -> Option<RevisionHealth> {
        let n = *self.scale.lock();
        let ready = if self.starting.load(Ordering::SeqCst) { 0 } else { n };
        let ever_ready = self.was_ready.fetch_or(ready > 0, Ordering::SeqCst) || ready > 0;
        Some(RevisionHealth { desired: n, running: n, ready, ever_ready, ..Default::default() })
    }
    fn log_url(&self, _key: &RevisionKey) -> String {
        String::new()
    }
}

/// Demand set by the test; counts how often it is sampled.
#[derive(Default)]
struct Load(AtomicU64, AtomicU64);

impl Demand for Load {
    fn demand(&self, _key: &RevisionKey) -> (u64, u64) {
        self.1.fetch_add(1, Ordering::SeqCst);
        (self.0.load(Ordering::SeqCst), 0)
    }
}

fn wish(annotations: &[(&str, &str)], reachable: bool) -> Wish {
    Wish {
        run: RevisionRun {
            key: RevisionKey::new("default", "hello-00001"),
            uid: "u1".into(),
            configuration: "hello".into(),
            service: "hello".into(),
            container: Container::default(),
            sidecars: Vec::new(),
            timeout: Duration::from_secs(300),
            container_concurrency: 0,
        },
        annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        reachable,
        stopped: false,
    }
}

struct Rig {
    scaler: Arc<Instant0>,
    load: Arc<Load>,
    autoscaling: Arc<Autoscaling>,
    pokes: mpsc::Sender<RevisionKey>,
    _changes: mpsc::Receiver<RevisionKey>,
}

fn rig() -> Rig {
    let (scaler, load) = (Arc::new(Instant0::default()), Arc::new(Load::default()));
    let (pokes, rx) = mpsc::channel(16);
    let (autoscaling, changes) = Autoscaling::start(
        scaler.clone(),
        crate::events::Recorder::disabled(),
        load.clone(),
        rx,
        CancellationToken::new(),
    );
    Rig { scaler, load, autoscaling, pokes, _changes: changes }
}

impl Rig {
    fn scale(&self) -> usize {
        *self.scaler.scale.lock()
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_revision_runs_its_initial_scale_then_idles_to_zero_after_the_windows() {
    let r = rig();
    let view = r.autoscaling.track(wish(&[], true));
    assert_eq!(view.desired, 1, "initial-scale");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.scale(), 1);
    // Knative: Active for a stable window (60 s) with no traffic, then Inactive for the grace
    // period (30 s), then zero.
    tokio::time::sleep(Duration::from_secs(85)).await;
    assert_eq!(r.scale(), 1, "still within the stable window and the grace period");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(r.scale(), 0);
    let view = r.autoscaling.view(&wish(&[], true).run.key).expect("tracked");
    assert_eq!((view.desired, view.activity), (0, ViewActivity::Inactive));
}

#[tokio::test(start_paused = true)]
async fn steady_demand_is_met_at_seventy_percent_of_the_target() {
    let r = rig();
    r.autoscaling.track(wish(&[], true));
    // 210 in flight against 100 per instance at 70 %: ceil(210 / 70) = 3.
    r.load.0.store(210, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(70)).await;
    assert_eq!(r.scale(), 3);
    let view = r.autoscaling.view(&wish(&[], true).run.key).expect("tracked");
    assert_eq!((view.metric, view.target), ("concurrency", 70.0), "100 at 70 %");
    assert!((view.stable - 210.0).abs() < 1e-6, "{view:?}");
}

#[tokio::test(start_paused = true)]
async fn a_poke_at_zero_scales_up_at_once_not_at_the_next_tick() {
    let r = rig();
    let w = wish(&[("autoscaling.knative.dev/window", "6s")], true);
    r.autoscaling.set_settings(
        Settings::from_config_map(&[("scale-to-zero-grace-period".to_string(), "1s".to_string())].into())
            .expect("settings"),
    );
    r.autoscaling.track(w.clone());
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(r.scale(), 0, "idle past the window and the grace period");
    // Half-way between two ticks, a request starts waiting and pokes.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let calls_before = r.scaler.calls.lock().len();
    r.load.0.store(1, Ordering::SeqCst);
    let poked_at = Instant::now();
    r.pokes.send(w.run.key.clone()).await.expect("poke");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.scale(), 1, "scaled from zero on the poke");
    assert_eq!(r.scaler.calls.lock().len(), calls_before + 1);
    assert!(Instant::now() - poked_at <= Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn a_poke_just_after_the_scale_to_zero_decision_scales_up_within_a_sample_not_a_tick() {
    let r = rig();
    let w = wish(&[("autoscaling.knative.dev/window", "6s")], true);
    r.autoscaling.set_settings(
        Settings::from_config_map(&[("scale-to-zero-grace-period".to_string(), "1s".to_string())].into())
            .expect("settings"),
    );
    r.autoscaling.track(w.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.scale(), 1, "initial scale");
    // The moment it decides zero, a request starts waiting and pokes.
    while r.scale() != 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    r.load.0.store(1, Ordering::SeqCst);
    let poked_at = Instant::now();
    r.pokes.send(w.run.key.clone()).await.expect("poke");
    while r.scale() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = Instant::now() - poked_at;
    assert!(took <= SAMPLE_EVERY + Duration::from_millis(2), "scaled from zero {took:?} after the poke");
}

#[tokio::test(start_paused = true)]
async fn a_poke_at_zero_just_after_a_tick_scales_up_at_once() {
    let r = rig();
    let w = wish(&[("autoscaling.knative.dev/window", "6s")], true);
    r.autoscaling.set_settings(
        Settings::from_config_map(&[("scale-to-zero-grace-period".to_string(), "1s".to_string())].into())
            .expect("settings"),
    );
    r.autoscaling.track(w.clone());
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(r.scale(), 0, "idle past the window and the grace period");
    // 20 ms after a decision: sooner than demand is sampled, but a request is waiting at zero.
    tokio::time::sleep(Duration::from_millis(20)).await;
    r.load.0.store(1, Ordering::SeqCst);
    let poked_at = Instant::now();
    r.pokes.send(w.run.key.clone()).await.expect("poke");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.scale(), 1, "scaled from zero on the poke");
    assert!(Instant::now() - poked_at <= Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn min_scale_holds_through_idleness_and_max_scale_caps() {
    let r = rig();
    r.autoscaling
        .track(wish(&[("autoscaling.knative.dev/min-scale", "2"), ("autoscaling.knative.dev/max-scale", "4")], true));
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(r.scale(), 2, "min-scale through idleness");
    r.load.0.store(10_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(r.scale(), 4, "max-scale caps a burst");
}

#[tokio::test(start_paused = true)]
async fn a_revision_no_route_reaches_stops_once_idle_and_a_failed_one_at_once() {
    let r = rig();
    r.autoscaling.track(wish(&[], true));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.scale(), 1);
    r.load.0.store(3, Ordering::SeqCst);
    r.autoscaling.track(wish(&[], false));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(r.scale(), 1, "requests still in flight keep it");
    r.load.0.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(r.scale(), 0, "no route and no request: stopped");
    let mut failed = wish(&[("autoscaling.knative.dev/min-scale", "2")], true);
    failed.stopped = true;
    r.autoscaling.track(failed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.scale(), 0, "a failed revision runs nothing, min-scale or not");
}

/// A rollout that keeps the old split pins a new revision out of every route as it is created
/// (`routingState: reserve`): it must still run until it has been ready once, or it never
/// becomes Ready. Seen in `tests/traffic_cli.rs` on a loaded machine, where the instance was
/// slower to get ready than the route to mark the revision unreachable.
#[tokio::test(start_paused = true)]
async fn a_revision_no_route_reaches_runs_its_initial_scale_until_ready_once() {
    for reachable_first in [true, false] {
        let r = rig();
        r.scaler.starting.store(true, Ordering::SeqCst);
        r.autoscaling.track(wish(&[], reachable_first));
        tokio::time::sleep(Duration::from_millis(500)).await;
        r.autoscaling.track(wish(&[], false));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(r.scale(), 1, "not ready yet (reachable at first: {reachable_first}): it keeps its initial scale");
        r.scaler.starting.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(r.scale(), 0, "ready once, no route, no request: stopped");
    }
}

#[tokio::test(start_paused = true)]
async fn settings_changed_live_apply_to_running_revisions() {
    let r = rig();
    r.autoscaling.track(wish(&[], true));
    r.load.0.store(140, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(r.scale(), 2, "140 / (100 x 70 %)");
    let data = [("container-concurrency-target-default".to_string(), "10".to_string())].into();
    r.autoscaling.set_settings(Settings::from_config_map(&data).expect("settings"));
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(r.scale(), 20, "140 / (10 x 70 %)");
}

/// A revision idled to zero with a 6 s window and a 1 s grace period, and at rest there.
async fn at_rest_at_zero(r: &Rig) -> Wish {
    let w = wish(&[("autoscaling.knative.dev/window", "6s")], true);
    r.autoscaling.set_settings(
        Settings::from_config_map(&[("scale-to-zero-grace-period".to_string(), "1s".to_string())].into())
            .expect("settings"),
    );
    r.autoscaling.track(w.clone());
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(r.scale(), 0, "idle past the window and the grace period");
    // One more decision sees no instance left.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w
}

#[tokio::test(start_paused = true)]
async fn a_revision_at_zero_does_not_sample_until_poked_and_then_sees_the_zeros_it_slept() {
    let r = rig();
    let w = at_rest_at_zero(&r).await;
    let before = r.load.1.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(r.load.1.load(Ordering::SeqCst), before, "no sample in a minute at zero (sampling: 600)");
    assert_eq!(r.scale(), 0);

    r.load.0.store(1, Ordering::SeqCst);
    let poked_at = Instant::now();
    r.pokes.send(w.run.key.clone()).await.expect("poke");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.scale(), 1, "scaled from zero on the poke");
    assert!(Instant::now() - poked_at <= Duration::from_millis(1));
    // The 6 s stable window holds five seconds of zeros and the waiting request, as when
    // every second was sampled (not one second of 1, as after a gap).
    let view = r.autoscaling.view(&w.run.key).expect("tracked");
    assert!((view.stable - 1.0 / 6.0).abs() < 1e-3, "{view:?}");
}

#[tokio::test(start_paused = true)]
async fn a_settings_change_wakes_a_revision_asleep_at_zero() {
    let r = rig();
    at_rest_at_zero(&r).await;
    let data = [("enable-scale-to-zero".to_string(), "false".to_string())].into();
    r.autoscaling.set_settings(Settings::from_config_map(&data).expect("settings"));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.scale(), 1, "scale to zero disabled: one instance");
}

#[tokio::test(start_paused = true)]
async fn a_poke_lost_to_a_full_queue_still_wakes_a_revision_asleep_at_zero() {
    let r = rig();
    let w = at_rest_at_zero(&r).await;
    r.load.0.store(1, Ordering::SeqCst);
    // The dispatcher has not run since: the queue fills with pokes for others, and this
    // revision's poke is dropped, as the router's gate drops one into a full queue.
    let other = RevisionKey::new("default", "other-00001");
    while r.pokes.try_send(other.clone()).is_ok() {}
    assert!(r.pokes.try_send(w.run.key.clone()).is_err(), "dropped");
    let lost_at = Instant::now();
    while r.scale() == 0 {
        assert!(Instant::now() - lost_at < Duration::from_secs(1), "still asleep");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
