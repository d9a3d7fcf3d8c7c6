//! A scripted load trace, second by second, with the decision expected at every tick written
//! from Knative's formulas.
//!
//! Setup: `containerConcurrency: 10` → total 10, target `10 × 0.7 = 7` per instance;
//! `window: 6s` → stable window 6 one-second buckets; `panic-window-percentage: 50` → panic
//! window `6 × 50 % = 3` buckets; panic threshold 200 % (2.0); rates 1000× up, 2× down
//! (`maxDown = floor(ready / 2)`); `scale-to-zero-grace-period: 6s` (cluster setting). One
//! instance runs, active since second 0; ready instances follow the decision at once.
//!
//! Per tick: `stable`/`panic` are the window means (a window younger than its length averages
//! over the seconds it has); `dspc = ceil(stable / 7)`, `dppc = ceil(panic / 7)`, each clamped
//! to `[maxDown, maxUp]`; panic starts when `dppc / ready ≥ 2` and ends once the last such
//! tick is more than 6 s old; while panicking the decision never falls.

use std::collections::BTreeMap;

use super::Harness;
use crate::{Reason, Settings};

/// (second, load, stable mean, panic mean, desired, panicking, reason)
type Row = (u64, f64, f64, f64, u32, bool, Reason);

use Reason::{GracePeriod, Panic, ScaledToZero, Stable};

#[rustfmt::skip]
const TRACE: &[Row] = &[
    // Steady at one instance's target: 7 / 7 = 1.
    ( 1,  7.0,  7.0,       7.0,       1, false, Stable),
    ( 2,  7.0,  7.0,       7.0,       1, false, Stable),
    ( 3,  7.0,  7.0,       7.0,       1, false, Stable),
    // Step to 28. stable (7+7+7+28)/4 = 12.25 → 2; panic (7+7+28)/3 = 14 → dppc 2; 2/1 ≥ 2: panic.
    ( 4, 28.0, 12.25,     14.0,       2, true,  Panic),
    // stable 77/5 = 15.4 → 3; panic (7+28+28)/3 = 21 → 3; 3/2 < 2 (panic kept from second 4).
    ( 5, 28.0, 15.4,      21.0,       3, true,  Panic),
    // Load gone, but panicking: stable 77/6 → 2, panic 56/3 → 3; held at 3.
    ( 6,  0.0, 12.833333, 18.666667,  3, true,  Panic),
    // stable (7+7+28+28)/6 = 11.67 → 2, panic 28/3 → 2: held at 3, never down while panicking.
    ( 7,  0.0, 11.666667,  9.333333,  3, true,  Panic),
    ( 8,  0.0, 10.5,       0.0,       3, true,  Panic),
    ( 9, 14.0, 11.666667,  4.666667,  3, true,  Panic),
    // Second 10 is 6 s after 4, not more: still panicking.
    (10, 14.0,  9.333333,  9.333333,  3, true,  Panic),
    // 11 > 4 + 6: panic ends. stable (0+0+0+14+14+14)/6 = 7 exactly → ceil(1) = 1; maxDown
    // floor(3/2) = 1.
    (11, 14.0,  7.0,      14.0,       1, false, Stable),
    // One instance now: panic 14 → dppc 2, 2/1 ≥ 2 panics again; stable 56/6 → 2.
    (12, 14.0,  9.333333, 14.0,       2, true,  Panic),
    (13, 14.0, 11.666667, 14.0,       2, true,  Panic),
    (14, 14.0, 14.0,      14.0,       2, true,  Panic),
    // Load gone: the panic that began at 12 holds 2.
    (15,  0.0, 11.666667,  9.333333,  2, true,  Panic),
    (16,  0.0,  9.333333,  4.666667,  2, true,  Panic),
    (17,  0.0,  7.0,       0.0,       2, true,  Panic),
    (18,  0.0,  4.666667,  0.0,       2, true,  Panic),
    // The last tick over the threshold was 12 (at 13, 2/2 < 2); 19 > 12 + 6: panic ends.
    // stable 14/6 → 1; maxDown floor(2/2) = 1.
    (19,  0.0,  2.333333,  0.0,       1, false, Stable),
    // stable 0 → 0; active since 0 for ≥ 6 s: Inactive now, one instance kept for the grace period.
    (20,  0.0,  0.0,       0.0,       1, false, GracePeriod),
    (21,  0.0,  0.0,       0.0,       1, false, GracePeriod),
    (22,  0.0,  0.0,       0.0,       1, false, GracePeriod),
    (23,  0.0,  0.0,       0.0,       1, false, GracePeriod),
    (24,  0.0,  0.0,       0.0,       1, false, GracePeriod),
    (25,  0.0,  0.0,       0.0,       1, false, GracePeriod),
    // Inactive since 20, 26 − 20 ≥ 6 s grace: zero.
    (26,  0.0,  0.0,       0.0,       0, false, ScaledToZero),
    (27,  0.0,  0.0,       0.0,       0, false, ScaledToZero),
];

#[test]
fn every_tick_of_the_scripted_trace_matches_the_formulas() {
    let data: BTreeMap<String, String> = [("scale-to-zero-grace-period".to_string(), "6s".to_string())].into();
    let settings = Settings::from_config_map(&data).expect("valid");
    let mut h = Harness::running_with(&settings, &[("window", "6s"), ("panic-window-percentage", "50")], 10, 1);
    for &(sec, load, stable, panic, desired, panicking, reason) in TRACE {
        let d = h.tick(load);
        assert_eq!(h.now, sec, "the table skips no second");
        let got = (d.stable_value, d.panic_value, d.desired, d.panicking, d.reason);
        assert_eq!(got, (stable, panic, desired, panicking, reason), "second {sec}");
    }
}
