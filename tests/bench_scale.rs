//! `sluice bench rules` and `sluice bench many-routes`, the real binary end to end: each starts
//! `sluice serve`, applies what it measures through the API, loads it and reports in JSON. Small
//! sizes so they run in seconds (many-routes with 21 services: the API applies a few services a
//! second in a debug build).

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn bench(args: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN).arg("bench").args(args).output().expect("run sluice bench");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

const SHORT: [&str; 8] = ["-c", "2", "--duration", "300ms", "--warmup", "100ms", "--trials", "1"];

fn names(v: &Value) -> Vec<&str> {
    v["targets"].as_array().expect("targets").iter().filter_map(|t| t["target"].as_str()).collect()
}

fn all_answered(v: &Value) {
    for t in v["targets"].as_array().expect("targets") {
        assert!(t["rps"].as_f64().expect("rps") > 0.0, "{t}");
        assert_eq!((t["non_2xx"].as_u64(), t["errors"].as_u64()), (Some(0), Some(0)), "{t}");
        assert!(t["cpu_us_per_request"]["sluice"].as_f64().expect("sluice CPU") > 0.0, "{t}");
    }
}

#[test]
fn rules_sets_ten_rules_beside_percent_only() {
    let (out, v) = bench(&[&["rules", "--json"][..], &SHORT].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(names(&v), ["percent-only", "10 rules"], "{v}");
    all_answered(&v);
}

#[test]
fn many_routes_applies_the_services_and_measures_both_tables() {
    let (out, v) = bench(&[&["many-routes", "--json", "--services", "21", "--batch", "10"][..], &SHORT].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(names(&v), ["1 route", "21 routes"], "{v}");
    all_answered(&v);
    let scale = &v["scale"];
    assert_eq!((scale["services"].as_u64(), scale["batch"].as_u64()), (Some(21), Some(10)), "{scale}");
    for field in ["apply_secs", "applied_per_sec", "programmed_secs"] {
        assert!(scale[field].as_f64().expect(field) > 0.0, "{field}: {scale}");
    }
    let (one, many) = (scale["rss_one_bytes"].as_u64().expect("rss"), scale["rss_many_bytes"].as_u64().expect("rss"));
    assert!(one > 1 << 20 && many > 1 << 20, "RSS read from /proc: {scale}");
}
