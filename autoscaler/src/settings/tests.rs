//! `config-autoscaler` parsing: defaults, good values, and Knative's messages for bad ones.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn parse(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let data: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_config_map(&data)
}

fn refused(pairs: &[(&str, &str)]) -> String {
    match parse(pairs) {
        Ok(s) => panic!("{pairs:?} was accepted as {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_config_map_gives_knatives_defaults() {
    let s = parse(&[]).expect("defaults are valid");
    assert_eq!(s, Settings::default());
    assert_eq!(s.stable_window, Duration::from_secs(60));
    assert_eq!(s.container_concurrency_target_fraction, 0.7);
    assert_eq!(s.container_concurrency_target_default, 100.0);
    assert_eq!(s.requests_per_second_target_default, 200.0);
    assert_eq!(s.target_burst_capacity, 211.0);
    assert_eq!((s.max_scale_up_rate, s.max_scale_down_rate), (1000.0, 2.0));
    assert_eq!((s.initial_scale, s.min_scale, s.max_scale, s.max_scale_limit), (1, 0, 0, 0));
    assert_eq!(s.scale_to_zero_grace_period, Duration::from_secs(30));
    assert!(s.enable_scale_to_zero && !s.allow_zero_initial_scale);
}

#[test]
fn good_values_are_read_in_go_syntax() {
    let s = parse(&[
        ("stable-window", "1m30s"),
        ("scale-to-zero-grace-period", "45s"),
        ("scale-to-zero-pod-retention-period", "1.5m"),
        ("scale-down-delay", "15s"),
        ("container-concurrency-target-percentage", "80"),
        ("enable-scale-to-zero", "false"),
        ("allow-zero-initial-scale", "true"),
        ("initial-scale", "0"),
        ("max-scale-limit", "20"),
        ("max-scale", "10"),
        ("min-scale", "2"),
        ("max-scale-up-rate", "3.5"),
        ("unknown-key", "ignored"),
    ])
    .expect("valid");
    assert_eq!(s.stable_window, Duration::from_secs(90));
    assert_eq!(s.scale_to_zero_grace_period, Duration::from_secs(45));
    assert_eq!(s.scale_to_zero_pod_retention_period, Duration::from_secs(90));
    assert_eq!(s.scale_down_delay, Duration::from_secs(15));
    assert_eq!(s.container_concurrency_target_fraction, 0.8);
    assert!(!s.enable_scale_to_zero);
    assert_eq!((s.initial_scale, s.min_scale, s.max_scale, s.max_scale_limit), (0, 2, 10, 20));
    assert_eq!(s.max_scale_up_rate, 3.5);
}

#[test]
fn a_utilization_of_at_most_one_is_already_a_fraction() {
    let s = parse(&[("container-concurrency-target-percentage", "0.5")]).expect("valid");
    assert_eq!(s.container_concurrency_target_fraction, 0.5);
}

#[test]
fn values_that_do_not_parse_name_the_key_and_quote_the_value() {
    let cases = [
        (
            "stable-window",
            "60",
            r#"failed to parse data: failed to parse "stable-window": time: invalid duration "60""#,
        ),
        (
            "enable-scale-to-zero",
            "yes",
            r#"failed to parse data: failed to parse "enable-scale-to-zero": strconv.ParseBool: parsing "yes": invalid syntax"#,
        ),
        (
            "max-scale",
            "ten",
            r#"failed to parse data: failed to parse "max-scale": strconv.ParseInt: parsing "ten": invalid syntax"#,
        ),
        (
            "max-scale-up-rate",
            "fast",
            r#"failed to parse data: failed to parse "max-scale-up-rate": strconv.ParseFloat: parsing "fast": invalid syntax"#,
        ),
    ];
    for (key, value, want) in cases {
        assert_eq!(refused(&[(key, value)]), want, "{key}={value}");
    }
}

#[test]
fn out_of_range_values_get_knatives_messages() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("stable-window", "5s")], "stable-window = 5s, must be in [6s; 1h0m0s] range"),
        (&[("stable-window", "2h")], "stable-window = 2h0m0s, must be in [6s; 1h0m0s] range"),
        (&[("stable-window", "6500ms")], "stable-window = 6.5s, must be specified with at most second precision"),
        (&[("scale-to-zero-grace-period", "0s")], "scale-to-zero-grace-period must be positive, was: 0s"),
        (&[("scale-down-delay", "-1s")], "scale-down-delay cannot be negative, was: -1s"),
        (&[("scale-down-delay", "1.5s")], "scale-down-delay = 1.5s, must be specified with at most second precision"),
        (
            &[("scale-to-zero-pod-retention-period", "-1m")],
            "scale-to-zero-pod-retention-period cannot be negative, was: -1m0s",
        ),
        (
            &[("target-burst-capacity", "-2")],
            "target-burst-capacity must be either non-negative or -1 (for unlimited), was: -2.000000",
        ),
        (
            &[("container-concurrency-target-percentage", "101")],
            "container-concurrency-target-percentage = 1.010000 is outside of valid range of (0, 100]",
        ),
        (
            &[("container-concurrency-target-percentage", "0")],
            "container-concurrency-target-percentage = 0.000000 is outside of valid range of (0, 100]",
        ),
        (
            &[("container-concurrency-target-default", "0.001")],
            "container-concurrency-target-percentage and container-concurrency-target-default yield target concurrency of 0.0007, can't be less than 0.01",
        ),
        (
            &[("requests-per-second-target-default", "0")],
            "requests-per-second-target-default must be at least 0.01, was: 0",
        ),
        (&[("activator-capacity", "0.5")], "activator-capacity = 0.5, must be at least 1"),
        (&[("max-scale-up-rate", "1")], "max-scale-up-rate = 1, must be greater than 1.0"),
        (&[("max-scale-down-rate", "0.5")], "max-scale-down-rate = 0.5, must be greater than 1.0"),
        (&[("panic-window-percentage", "0.5")], "panic-window-percentage = 0.5, must be in [1, 100] interval"),
        (&[("panic-window-percentage", "101")], "panic-window-percentage = 101, must be in [1, 100] interval"),
        (
            &[("initial-scale", "0")],
            "initial-scale = 0, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)",
        ),
        (&[("min-scale", "-1")], "min-scale = -1, must be at least 0"),
        (&[("max-scale", "-1")], "max-scale = -1, must be in [0, max-scale-limit(0)] range"),
        (&[("max-scale-limit", "5")], "max-scale = 0, must be in [1, max-scale-limit(5)] range"),
        (&[("max-scale-limit", "5"), ("max-scale", "6")], "max-scale = 6, must be in [1, max-scale-limit(5)] range"),
        (&[("max-scale-limit", "-1")], "max-scale-limit = -1, must be at least 0"),
        (&[("min-scale", "4"), ("max-scale", "3")], "min-scale (4) must be less than max-scale (3)"),
    ];
    for (pairs, want) in cases {
        assert_eq!(refused(pairs), *want, "{pairs:?}");
    }
}

#[test]
fn the_first_failure_in_knatives_order_is_reported() {
    // Parsing comes before validation, and validation checks periods before windows.
    let both = [("stable-window", "5s"), ("scale-to-zero-grace-period", "0s")];
    assert_eq!(refused(&both), "scale-to-zero-grace-period must be positive, was: 0s");
    let with_parse_error = [("stable-window", "5s"), ("max-scale", "many")];
    assert!(refused(&with_parse_error).starts_with(r#"failed to parse data: failed to parse "max-scale""#));
}
