//! Several targets side by side: their trials interleaved (A B C A B C …) so drift of the
//! machine hits all alike, then each target's median over trials and its ratio to the first.

use std::collections::BTreeMap;

use crate::cpu::Watch;
use crate::latency::Latencies;
use crate::load::{self, LoadError, LoadSpec};
use crate::outcome::{Outcome, Summary};
use crate::target::Target;

/// A target of a comparison and the processes charged to its requests.
#[derive(Clone, Debug)]
pub struct Entry {
    /// What is loaded.
    pub target: Target,
    /// Whose CPU time is reported per request (besides the generator's).
    pub watch: Vec<Watch>,
}

/// The trials of every target, in the order they ran.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Target names, in the order given.
    pub names: Vec<String>,
    /// Each target's trials.
    pub trials: Vec<Vec<Outcome>>,
    /// The core layout line.
    pub layout: String,
}

/// A target's medians over its trials.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Medians {
    /// The target.
    pub target: String,
    /// Trials run.
    pub trials: usize,
    /// Median responses per second.
    pub rps: f64,
    /// Median of each trial's p50, µs.
    pub p50_us: f64,
    /// Median of each trial's p90, µs.
    pub p90_us: f64,
    /// Median of each trial's p99, µs.
    pub p99_us: f64,
    /// Median of each trial's p99.9, µs.
    #[serde(rename = "p99.9_us")]
    pub p99_9_us: f64,
    /// Median CPU µs per request of each watched process.
    pub cpu_us_per_request: BTreeMap<String, f64>,
    /// rps over the first target's.
    pub rps_ratio: f64,
    /// p50 minus the first target's, µs (the cost of a hop when the first is direct).
    pub p50_added_us: f64,
    /// Responses not 2xx, all trials together.
    pub non_2xx: u64,
    /// Failed requests, all trials together.
    pub errors: u64,
}

/// The JSON of a comparison (`--compare --json`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The core layout.
    pub layout: String,
    /// Each target's medians, first target first.
    pub targets: Vec<Medians>,
    /// Every trial, in the order run.
    pub trials: Vec<Summary>,
}

/// The order trials run in: round by round, every target once per round in the order given.
pub fn schedule(targets: usize, trials: usize) -> Vec<(usize, usize)> {
    (0..trials).flat_map(|round| (0..targets).map(move |t| (round, t))).collect()
}

/// Runs `trials` rounds of `spec` against each entry, interleaved; `each` sees each trial as
/// it ends (for progress output).
pub fn run(
    entries: &[Entry],
    spec: &LoadSpec,
    trials: usize,
    layout: String,
    mut each: impl FnMut(usize, &Outcome),
) -> Result<Comparison, LoadError> {
    if entries.is_empty() || trials == 0 {
        return Err(LoadError::Spec("--compare needs at least one target and --trials of at least 1".into()));
    }
    let mut results: Vec<Vec<Outcome>> = vec![Vec::new(); entries.len()];
    for (round, t) in schedule(entries.len(), trials) {
        let entry = &entries[t];
        let mut watch = vec![Watch::generator()];
        watch.extend(entry.watch.iter().cloned());
        let outcome = load::run(&entry.target, spec, &watch)?;
        each(round, &outcome);
        results[t].push(outcome);
    }
    let names = entries.iter().map(|e| e.target.name.clone()).collect();
    Ok(Comparison { names, trials: results, layout })
}

/// The median of `values` (the mean of the middle two for an even count; 0 when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

// === impl Comparison ===

impl Comparison {
    /// Each target's medians, with ratios to the first target.
    pub fn medians(&self) -> Vec<Medians> {
        let mut rows: Vec<Medians> = self.names.iter().zip(&self.trials).map(|(n, t)| medians_of(n, t)).collect();
        let (base_rps, base_p50) = rows.first().map_or((0.0, 0.0), |r| (r.rps, r.p50_us));
        for r in &mut rows {
            r.rps_ratio = if base_rps > 0.0 { r.rps / base_rps } else { 0.0 };
            r.p50_added_us = r.p50_us - base_p50;
        }
        rows
    }

    /// Every trial's latencies merged, per target (for plots).
    pub fn merged_latencies(&self) -> Vec<(String, Latencies)> {
        self.names
            .iter()
            .zip(&self.trials)
            .map(|(n, trials)| {
                let mut all = Latencies::new();
                trials.iter().for_each(|o| all.merge(&o.tally.latency));
                (n.clone(), all)
            })
            .collect()
    }

    /// The JSON report.
    pub fn report(&self) -> Report {
        let mut trials: Vec<Summary> = Vec::new();
        for (round, t) in schedule(self.names.len(), self.trials.first().map_or(0, Vec::len)) {
            if let Some(o) = self.trials.get(t).and_then(|ts| ts.get(round)) {
                trials.push(o.summary());
            }
        }
        Report { layout: self.layout.clone(), targets: self.medians(), trials }
    }
}

fn medians_of(name: &str, trials: &[Outcome]) -> Medians {
    let pick = |f: &dyn Fn(&Outcome) -> f64| median(trials.iter().map(f).collect());
    let mut cpu_names: Vec<&String> = trials.iter().flat_map(|o| o.cpu_us_per_request.keys()).collect();
    cpu_names.sort();
    cpu_names.dedup();
    let cpu = cpu_names
        .into_iter()
        .map(|n| (n.clone(), median(trials.iter().filter_map(|o| o.cpu_us_per_request.get(n).copied()).collect())))
        .collect();
    Medians {
        target: name.to_string(),
        trials: trials.len(),
        rps: pick(&Outcome::rps),
        p50_us: pick(&|o| o.tally.latency.percentiles().p50),
        p90_us: pick(&|o| o.tally.latency.percentiles().p90),
        p99_us: pick(&|o| o.tally.latency.percentiles().p99),
        p99_9_us: pick(&|o| o.tally.latency.percentiles().p99_9),
        cpu_us_per_request: cpu,
        rps_ratio: 0.0,
        p50_added_us: 0.0,
        non_2xx: trials.iter().map(|o| o.tally.non_2xx()).sum(),
        errors: trials.iter().map(|o| o.tally.errors_total()).sum(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::Tally;

    #[test]
    fn trials_interleave_round_by_round() {
        let order: Vec<(usize, usize)> = schedule(3, 2);
        assert_eq!(order, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        let names: String = schedule(3, 3).iter().map(|(_, t)| ["A", "B", "C"][*t]).collect();
        assert_eq!(names, "ABCABCABC");
        assert!(schedule(0, 3).is_empty() && schedule(3, 0).is_empty());
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    fn outcome(name: &str, responses: u64, latency_us: u64, cpu: f64) -> Outcome {
        let mut tally = Tally::default();
        let d = Duration::from_micros(latency_us);
        (0..responses).for_each(|_| tally.response(200, d, d));
        let cpu_us_per_request = BTreeMap::from([("proxy".to_string(), cpu)]);
        Outcome { target: name.into(), tally, elapsed: Duration::from_secs(1), cpu_us_per_request }
    }

    #[test]
    fn ratios_are_to_the_first_target_and_use_medians() {
        let c = Comparison {
            names: vec!["direct".into(), "proxy".into()],
            trials: vec![
                vec![outcome("direct", 1000, 30, 8.0), outcome("direct", 900, 30, 9.0), outcome("direct", 50, 30, 1.0)],
                vec![outcome("proxy", 500, 70, 20.0), outcome("proxy", 450, 80, 25.0), outcome("proxy", 10, 90, 99.0)],
            ],
            layout: "layout: test".into(),
        };
        let m = c.medians();
        assert_eq!((m[0].rps, m[1].rps), (900.0, 450.0), "the median resists the outlier trial");
        assert!((m[1].rps_ratio - 0.5).abs() < 1e-9);
        assert!((m[1].p50_added_us - 50.0).abs() < 0.1, "{}", m[1].p50_added_us);
        assert_eq!(m[1].cpu_us_per_request["proxy"], 25.0);
        let report = c.report();
        let order: Vec<&str> = report.trials.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(order, ["direct", "proxy", "direct", "proxy", "direct", "proxy"]);
    }
}
