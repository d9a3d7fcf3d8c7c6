//! Invariants over arbitrary load traces: the bounds always hold, panic never lowers the
//! decision, and no decision moves further than the rate limits allow.

use proptest::prelude::*;

use super::Harness;
use crate::Reason;

fn loads() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![Just(0.0), 0.0..50.0f64, 0.0..5_000.0f64], 1..300)
}

proptest! {
    #[test]
    fn desired_stays_within_min_and_max_scale(min in 0u32..4, extra in 0u32..20, trace in loads()) {
        let max = min + extra + 1;
        let (min_s, max_s) = (min.to_string(), max.to_string());
        let mut h = Harness::running(&[("min-scale", &min_s), ("max-scale", &max_s), ("window", "10s")], 0, 1);
        for load in trace {
            let d = h.tick(load);
            prop_assert!(d.desired <= max, "{} > max {max}", d.desired);
            prop_assert!(d.desired >= min, "{} < min {min}", d.desired);
        }
    }

    #[test]
    fn desired_never_falls_while_panicking(trace in loads()) {
        let mut h = Harness::running(&[("window", "10s")], 0, 1);
        let mut previous: Option<(bool, u32)> = None;
        for load in trace {
            let d = h.tick(load);
            if let Some((true, before)) = previous && d.panicking {
                prop_assert!(d.desired >= before, "panicking: {before} → {}", d.desired);
            }
            previous = Some((d.panicking, d.desired));
        }
    }

    #[test]
    fn each_decision_respects_the_scale_rates(trace in loads(), up in 2u32..10) {
        let up_s = up.to_string();
        let data = [("max-scale-up-rate".to_string(), up_s)].into();
        let settings = crate::Settings::from_config_map(&data).expect("valid");
        let mut h = Harness::running_with(&settings, &[("window", "10s")], 0, 1);
        for load in trace {
            let ready = h.ready;
            let d = h.tick(load);
            let r = ready.max(1);
            prop_assert!(d.desired <= up * r, "{ready} → {} beyond {up}×", d.desired);
            // Down by at most half, except to zero after the grace period.
            if d.reason != Reason::ScaledToZero {
                prop_assert!(d.desired >= r / 2, "{ready} → {} below half", d.desired);
            }
        }
    }
}
