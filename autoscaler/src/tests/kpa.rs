//! Knative's own scenarios for the KPA, and each rule of the reconciler around it.

use std::time::Duration;

use super::{Harness, config};
use crate::{Activity, Autoscaler, Metrics, Reason, Sample, Tick};

#[test]
fn steady_load_of_n_times_seventy_gives_n_instances() {
    for n in [1u32, 2, 3, 7, 10, 40] {
        let mut h = Harness::running(&[], 0, 1);
        let decisions = h.run(180, f64::from(n) * 70.0);
        for (sec, d) in decisions.iter().enumerate() {
            assert_eq!(d.desired, n, "n = {n}, second {}", sec + 1);
        }
        assert!(!decisions[179].panicking, "n = {n}: panic ends once the stable window agrees");
    }
}

#[test]
fn a_step_from_zero_to_two_hundred_gives_three_instances_within_the_panic_window() {
    let mut h = Harness::running(&[], 0, 1);
    h.run(60, 0.0);
    let step = h.run(6, 200.0);
    // ceil(200 / 70) = 3, reached through the panic window before the stable window sees it.
    assert_eq!(step[5].desired, 3, "{step:?}");
    assert!(step[5].panicking);
    assert!(step.iter().any(|d| d.panicking && d.reason == Reason::Panic));
    // And it stays 3 while the load does.
    assert!(h.run(120, 200.0).iter().all(|d| d.desired == 3));
}

#[test]
fn load_removed_gives_zero_only_after_the_stable_window_and_the_grace_period() {
    let mut h = Harness::running(&[], 0, 1);
    h.run(120, 70.0);
    let last_load = h.now;
    let mut zero_at = None;
    for _ in 0..200 {
        let d = h.tick(0.0);
        if d.desired == 0 {
            zero_at.get_or_insert(h.now);
        } else {
            assert!(zero_at.is_none(), "scaled back up at {} without load", h.now);
        }
    }
    // The stable average reaches 0 when the last loaded second leaves the 60 s window; the
    // revision is then Inactive, and scales to zero 30 s later.
    assert_eq!(zero_at, Some(last_load + 60 + 30));
}

#[test]
fn the_pod_retention_period_delays_zero_when_longer_than_the_grace_period() {
    let mut h = Harness::running(&[("scale-to-zero-pod-retention-period", "2m")], 0, 1);
    h.run(10, 70.0);
    let last_load = h.now;
    let zero_at = (0..400).find_map(|_| (h.tick(0.0).desired == 0).then_some(h.now));
    assert_eq!(zero_at, Some(last_load + 60 + 120));
}

#[test]
fn min_scale_holds_n_through_idleness() {
    let mut h = Harness::running(&[("min-scale", "3")], 0, 3);
    let idle = h.run(600, 0.0);
    assert!(idle.iter().all(|d| d.desired == 3));
    // Resumed over 3 instances it panics for a stable window first; then min-scale holds.
    assert_eq!(idle[599].reason, Reason::MinScale);
    // Unreachable (no route), min-scale no longer applies and it goes to zero.
    h.reachable = false;
    let zero_at = (0..200).find_map(|_| (h.tick(0.0).desired == 0).then_some(h.now));
    assert!(zero_at.is_some());
}

#[test]
fn scale_to_zero_disabled_keeps_one_instance() {
    let settings = crate::Settings { enable_scale_to_zero: false, ..crate::Settings::default() };
    let mut h = Harness::running_with(&settings, &[], 0, 1);
    for d in h.run(300, 0.0) {
        assert_eq!(d.desired, 1);
    }
    assert_eq!(h.tick(0.0).reason, Reason::ScaleToZeroDisabled);
}

#[test]
fn max_scale_caps_the_decision() {
    let mut h = Harness::running(&[("max-scale", "4")], 0, 1);
    let d = h.run(30, 700.0);
    assert!(d.iter().all(|d| d.desired <= 4));
    assert_eq!((d[29].desired, d[29].reason), (4, Reason::MaxScale));
}

#[test]
fn scale_down_is_at_most_halving_per_decision() {
    // A revision resumed over 8 instances starts panicking and holds them for a stable
    // window; then each decision can at most halve: floor(8/2) = 4, 2, 1.
    let mut h = Harness::running(&[("window", "6s")], 0, 8);
    let desired: Vec<u32> = h.run(12, 0.0).iter().map(|d| d.desired).collect();
    assert_eq!(desired, [8, 8, 8, 8, 8, 8, 4, 2, 1, 1, 1, 1]);
}

#[test]
fn panic_never_scales_down_and_ends_after_a_calm_stable_window() {
    let mut h = Harness::running(&[], 0, 1);
    h.run(5, 70.0);
    // Burst to 10 instances' worth, then back to 1.
    let burst = h.run(3, 700.0);
    assert!(burst[2].panicking);
    let peak = burst.iter().map(|d| d.desired).max().unwrap_or_default();
    let calm = h.run(70, 70.0);
    let mut high = peak;
    for (i, d) in calm.iter().enumerate() {
        if d.panicking {
            assert!(d.desired >= high, "second {i}: {} < {high} while panicking", d.desired);
            high = d.desired;
        }
    }
    // The last tick over the threshold was the burst's first, second 6 (panic mean
    // (5×70 + 700)/6 = 175 → 3 pods, 3/1 ≥ 2; then 4/3 and 6/4 stay below 2). Panic ends at the
    // first tick more than 60 s later, second 67 = calm[58].
    assert!(calm[57].panicking);
    assert!(!calm[58].panicking);
}

#[test]
fn scale_down_delay_holds_the_highest_recent_decision() {
    let mut h = Harness::running(&[("scale-down-delay", "20s"), ("window", "6s")], 0, 1);
    h.run(10, 5.0 * 70.0);
    let after = h.run(80, 70.0);
    // The stable window forgets the load after 6 s (its own decision is then
    // floor(5/2) = 2), but the delay holds 5 for 20 s of decisions.
    assert_eq!((after[10].desired, after[10].reason), (5, Reason::ScaleDownDelay));
    let first_below = after.iter().position(|d| d.desired < 5).unwrap_or(after.len());
    // 5 stays until 20 s after the last tick whose own decision was 5.
    assert!(first_below >= 20, "{first_below}");
    assert_eq!(after[79].desired, 1);
}

#[test]
fn activation_scale_is_the_least_non_zero_scale() {
    let mut h = Harness::running(&[("activation-scale", "5")], 0, 0);
    h.run(200, 0.0);
    assert_eq!(h.ready, 0);
    let d = h.tick(1.0);
    assert_eq!((d.desired, d.reason), (5, Reason::ActivationScale));
}

#[test]
fn a_request_at_zero_scales_to_one() {
    let mut h = Harness::running(&[], 0, 0);
    h.run(100, 0.0);
    // ceil(1 / 70) = 1; Activating until the instance is ready.
    let d = h.tick_holding(1.0);
    assert_eq!((d.desired, d.activity), (1, Activity::Activating));
    h.ready = 1;
    assert!(matches!(h.tick(0.0).activity, Activity::Active { .. }));
}

#[test]
fn initial_scale_holds_until_first_reached_then_scales_freely() {
    let mut h = Harness::new_revision(&[("initial-scale", "3")], 0);
    let d = h.tick_holding(0.0);
    assert_eq!((d.desired, d.reason), (3, Reason::InitialScale));
    // Instances come up one by one: still 3, still Activating.
    h.ready = 2;
    assert_eq!(h.tick_holding(0.0).desired, 3);
    h.ready = 3;
    let d = h.tick(0.0);
    assert!(matches!(d.activity, Activity::Active { .. }));
    // Now idle: halve per decision to one, then zero after stable window + grace.
    let desired: Vec<u32> = h.run(3, 0.0).iter().map(|d| d.desired).collect();
    assert_eq!(desired, [1, 1, 1]);
    let zero_at = (0..200).find_map(|_| (h.tick(0.0).desired == 0).then_some(h.now));
    assert!(zero_at.is_some_and(|t| t >= 60 + 30), "{zero_at:?}");
}

#[test]
fn a_new_revision_without_traffic_keeps_one_instance_for_a_stable_window_and_grace() {
    let mut h = Harness::new_revision(&[], 0);
    assert_eq!(h.tick_holding(0.0).desired, 1);
    h.ready = 1;
    // Active from the next tick, the first to see the instance ready.
    let active_at = h.now + 1;
    let zero_at = (0..200).find_map(|_| (h.tick(0.0).desired == 0).then_some(h.now));
    assert_eq!(zero_at, Some(active_at + 60 + 30));
}

#[test]
fn restarting_over_several_instances_holds_them_until_metrics_return() {
    let config = config(&[], 0);
    let mut a = Autoscaler::resume(config.clone(), Duration::from_secs(1000), 6);
    let metrics = Metrics::new(&config);
    let d = a.decide(Tick { now: Duration::from_secs(1001), ready: 6, reachable: true }, &metrics);
    assert_eq!((d.desired, d.panicking), (6, true));
}

#[test]
fn rps_metric_targets_seventy_percent_of_two_hundred() {
    let config = config(&[("metric", "rps")], 0);
    let mut a = Autoscaler::resume(config.clone(), Duration::ZERO, 1);
    let mut metrics = Metrics::new(&config);
    let mut last = None;
    for s in 1..=60 {
        let now = Duration::from_secs(s);
        // Concurrency is low; requests per second decide: ceil(420 / 140) = 3.
        metrics.record(now, Sample { concurrency: 1.0, requests: 420.0 });
        last = Some(
            a.decide(Tick { now, ready: last.map_or(1, |d: crate::Decision| d.desired), reachable: true }, &metrics),
        );
    }
    assert_eq!(last.map(|d| d.desired), Some(3));
}

#[test]
fn excess_burst_capacity_is_knatives() {
    let mut h = Harness::running(&[], 0, 2);
    // Two instances of total 100, TBC 211, panic 70: floor(200 − 211 − 70) = −81.
    assert_eq!(h.tick_holding(70.0).excess_burst_capacity, -81);
    let mut h = Harness::running(&[("target-burst-capacity", "0")], 0, 2);
    assert_eq!(h.tick_holding(70.0).excess_burst_capacity, 0);
    let mut h = Harness::running(&[("target-burst-capacity", "-1")], 0, 2);
    assert_eq!(h.tick_holding(70.0).excess_burst_capacity, -1);
}
