//! Gradual rollout, as Knative's `traffic/rollout.go` does it: with
//! `serving.knative.dev/rollout-duration` on the Route (a Service passes its annotations on), a
//! `latestRevision` target of at least 2 % that moves to a new revision does not switch at once.
//! The new revision starts at 1 % (taken from the newest older one), then takes `stepSize` more
//! every `stepDuration`, from the oldest revisions first, until it holds the whole share:
//!
//! - `minStep = 1 s` (the router is programmed as soon as the status is computed),
//! - `d = max(1 s, duration − minStep)`, `steps = min(pct − 1, max(1, d / minStep))`,
//! - `stepSize = round((pct − 1) / steps)`, `stepDuration = d / steps`.
//!
//! A pure function of the resolved traffic, the previous state and the clock. The state lives
//! in the Route's `status.rollout` (so `kubectl get route -o yaml` shows the progress); a newer
//! revision arriving mid-rollout joins as the newest and the others drain in age order.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_api::TrafficTarget;

/// The key of the rollout state in a Route's status.
pub const STATUS_KEY: &str = "rollout";

/// `config-network`'s `rollout-duration`: the duration for routes without the annotation
/// (0, Knative's default, is off). Read on every reconcile, written by the map's watcher.
#[derive(Debug, Default)]
pub struct RolloutDefault(std::sync::atomic::AtomicU64);

// === impl RolloutDefault ===

impl RolloutDefault {
    /// The duration, if one is set.
    pub fn get(&self) -> Option<Duration> {
        let secs = self.0.load(std::sync::atomic::Ordering::Relaxed);
        (secs > 0).then(|| Duration::from_secs(secs))
    }

    /// Sets the duration (zero turns gradual rollout off).
    pub fn set(&self, duration: Duration) {
        self.0.store(duration.as_secs(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// `config-network`'s `rollout-duration` (or the older `rolloutDuration`): a Go duration or
/// whole seconds, not negative; absent is 0 (off).
pub fn parse_default(data: Option<&std::collections::BTreeMap<String, String>>) -> Result<Duration, String> {
    let Some(text) = data.and_then(|d| d.get("rollout-duration").or_else(|| d.get("rolloutDuration"))) else {
        return Ok(Duration::ZERO);
    };
    let text = text.trim();
    let ns = sluice_api::validation::duration::parse(text)
        .or_else(|| text.parse::<i64>().ok().map(|s| s.saturating_mul(1_000_000_000)))
        .ok_or_else(|| format!("failed to parse \"rollout-duration\": time: invalid duration {text:?}"))?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("rollout-duration must be a non-negative duration, was: {text}"))
}

/// Every rolled-out target of a route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// One per `latestRevision` target with at least 2 %.
    #[serde(default)]
    pub targets: Vec<TargetRollout>,
}

/// One target's revisions, oldest first; the last is the newest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRollout {
    /// The target's configuration.
    pub configuration_name: String,
    /// The target's tag, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The target's share.
    pub percent: i64,
    /// Revisions and their shares, oldest first, summing to `percent`.
    pub revisions: Vec<RevisionShare>,
    /// When the next step is due (milliseconds since the epoch; 0 when none is).
    #[serde(default)]
    pub next_step_ms: i64,
    /// Milliseconds between steps.
    #[serde(default)]
    pub step_duration_ms: i64,
    /// Percent moved per step.
    #[serde(default)]
    pub step_size: i64,
}

/// A revision's share of a target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionShare {
    /// The revision.
    pub revision_name: String,
    /// Its percent.
    pub percent: i64,
}

/// The traffic to program, the state to keep, and when to look again (None: no step pending).
#[derive(Debug, PartialEq)]
pub struct Stepped {
    /// `resolved` with each rolling target split among its revisions.
    pub traffic: Vec<TrafficTarget>,
    /// The state for `status.rollout` (None without a rollout duration).
    pub rollout: Option<Rollout>,
    /// Time to the next step.
    pub next: Option<Duration>,
}

/// Applies the rollout to `resolved` (the spec's targets, in order, each resolved to its
/// revision) given the `previous` state, the route's rollout `duration` and `now_ms`.
pub fn step(
    spec: &[TrafficTarget],
    resolved: Vec<TrafficTarget>,
    previous: Option<&Rollout>,
    duration: Option<Duration>,
    now_ms: i64,
) -> Stepped {
    let Some(duration) = duration.filter(|d| !d.is_zero()) else {
        return Stepped { traffic: resolved, rollout: None, next: None };
    };
    let mut state = Rollout::default();
    let mut traffic = Vec::with_capacity(resolved.len());
    let mut next: Option<i64> = None;
    for (want, got) in spec.iter().zip(resolved) {
        let percent = got.percent_or_zero();
        let (Some(config), Some(newest)) = (want.configuration_name.clone(), got.revision_name.clone()) else {
            traffic.push(got);
            continue;
        };
        if !want.is_latest() || percent < 2 {
            traffic.push(got);
            continue;
        }
        let tag = got.tag.clone();
        let before = previous
            .and_then(|p| p.targets.iter().find(|t| t.configuration_name == config && t.tag == tag))
            .filter(|t| t.percent == percent);
        let target = advance(before, &config, tag, percent, &newest, duration, now_ms);
        if target.revisions.len() > 1 {
            next = Some(next.map_or(target.next_step_ms, |n| n.min(target.next_step_ms)));
        }
        let last = target.revisions.len() - 1;
        for (i, share) in target.revisions.iter().enumerate() {
            let newest = i == last;
            traffic.push(TrafficTarget {
                tag: if newest { got.tag.clone() } else { None },
                revision_name: Some(share.revision_name.clone()),
                configuration_name: None,
                latest_revision: Some(newest),
                percent: Some(share.percent),
                url: None,
                extra: Default::default(),
            });
        }
        state.targets.push(target);
    }
    let next = next.map(|n| Duration::from_millis(u64::try_from(n.saturating_sub(now_ms)).unwrap_or(0)));
    Stepped { traffic, rollout: Some(state), next }
}

/// One target's state after this reconcile.
fn advance(
    before: Option<&TargetRollout>,
    config: &str,
    tag: Option<String>,
    percent: i64,
    newest: &str,
    duration: Duration,
    now_ms: i64,
) -> TargetRollout {
    let steady = || TargetRollout {
        configuration_name: config.to_string(),
        tag: tag.clone(),
        percent,
        revisions: vec![RevisionShare { revision_name: newest.to_string(), percent }],
        ..Default::default()
    };
    // No earlier state (the first assignment, or a rollout duration just set): no rollout.
    let Some(before) = before.filter(|b| !b.revisions.is_empty()) else { return steady() };
    let mut t = before.clone();
    let known = t.revisions.last().is_some_and(|r| r.revision_name == newest);
    if !known {
        // A new revision: 1 % from the newest older one, and the steps planned from now.
        let mut revisions: Vec<RevisionShare> =
            t.revisions.iter().filter(|r| r.revision_name != newest).cloned().collect();
        if let Some(last) = revisions.last_mut() {
            last.percent -= 1;
        }
        revisions.retain(|r| r.percent > 0);
        let moved = percent - revisions.iter().map(|r| r.percent).sum::<i64>();
        revisions.push(RevisionShare { revision_name: newest.to_string(), percent: moved.max(1) });
        let min_step_ms = 1000;
        let d = (i64::try_from(duration.as_millis()).unwrap_or(i64::MAX) - min_step_ms).max(1000);
        let steps = (percent - 1).min((d / min_step_ms).max(1));
        let step_size = (((percent - 1) as f64) / steps as f64).round().max(1.0) as i64;
        t.revisions = revisions;
        t.step_size = step_size;
        t.step_duration_ms = d / steps;
        t.next_step_ms = now_ms + t.step_duration_ms;
    } else if t.revisions.len() > 1 && now_ms >= t.next_step_ms {
        // A step: the newest takes `step_size` more, from the oldest first.
        let mut owed = t.step_size;
        let last = t.revisions.len() - 1;
        for r in &mut t.revisions[..last] {
            let take = owed.min(r.percent);
            r.percent -= take;
            owed -= take;
        }
        let moved = t.step_size - owed;
        t.revisions[last].percent += moved;
        t.revisions.retain(|r| r.percent > 0);
        t.next_step_ms = now_ms + t.step_duration_ms;
    }
    if t.revisions.len() == 1 {
        return steady();
    }
    t
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn targets(v: serde_json::Value) -> Vec<TrafficTarget> {
        serde_json::from_value(v).expect("targets")
    }

    fn spec() -> Vec<TrafficTarget> {
        targets(json!([{"configurationName": "hello", "latestRevision": true, "percent": 100}]))
    }

    fn resolved(rev: &str) -> Vec<TrafficTarget> {
        targets(json!([{"revisionName": rev, "latestRevision": true, "percent": 100}]))
    }

    fn shares(s: &Stepped) -> Vec<(String, i64)> {
        s.traffic.iter().map(|t| (t.revision_name.clone().unwrap_or_default(), t.percent_or_zero())).collect()
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn config_network_s_default_parses_as_knative_reads_it() {
        let map = |v: &str| std::collections::BTreeMap::from([("rollout-duration".to_string(), v.to_string())]);
        assert_eq!(parse_default(None), Ok(Duration::ZERO));
        assert_eq!(parse_default(Some(&map("380s"))), Ok(Duration::from_secs(380)));
        assert_eq!(parse_default(Some(&map("120"))), Ok(Duration::from_secs(120)));
        assert!(parse_default(Some(&map("-5s"))).is_err());
        assert!(parse_default(Some(&map("soon"))).is_err());
        let d = RolloutDefault::default();
        assert_eq!(d.get(), None);
        d.set(Duration::from_secs(60));
        assert_eq!(d.get(), Some(MIN));
    }

    #[test]
    fn without_a_duration_traffic_moves_at_once_and_no_state_is_kept() {
        let s = step(&spec(), resolved("a"), None, None, 0);
        assert_eq!((shares(&s), s.rollout, s.next), (vec![("a".into(), 100)], None, None));
    }

    #[test]
    fn a_new_revision_starts_at_1_percent_and_takes_over_in_knative_s_steps() {
        let first = step(&spec(), resolved("a"), None, Some(MIN), 0);
        assert_eq!(shares(&first), [("a".to_string(), 100)], "the first assignment does not roll");
        let started = step(&spec(), resolved("b"), first.rollout.as_ref(), Some(MIN), 1_000);
        assert_eq!(shares(&started), [("a".to_string(), 99), ("b".to_string(), 1)]);
        let t = &started.rollout.as_ref().expect("state").targets[0];
        // d = 59 s, steps = min(99, 59) = 59, stepSize = round(99 / 59) = 2, stepDuration = 1 s.
        assert_eq!((t.step_size, t.step_duration_ms, started.next), (2, 1_000, Some(Duration::from_secs(1))));
        assert_eq!(started.traffic[1].latest_revision, Some(true));
        assert_eq!(started.traffic[0].latest_revision, Some(false));

        let early = step(&spec(), resolved("b"), started.rollout.as_ref(), Some(MIN), 1_500);
        assert_eq!(shares(&early), shares(&started), "no step before it is due");
        let mut state = started.rollout;
        let mut now = 2_000;
        let mut seen = Vec::new();
        loop {
            let s = step(&spec(), resolved("b"), state.as_ref(), Some(MIN), now);
            seen.push(shares(&s));
            state = s.rollout;
            if s.next.is_none() {
                break;
            }
            now += 1_000;
        }
        assert_eq!(seen[0], [("a".to_string(), 97), ("b".to_string(), 3)]);
        assert_eq!(seen.last().expect("end"), &[("b".to_string(), 100)]);
        assert!(now <= 61_000, "done within the duration: {now}");
    }

    #[test]
    fn a_revision_arriving_mid_rollout_becomes_the_newest_and_the_older_ones_drain_first() {
        let first = step(&spec(), resolved("a"), None, Some(MIN), 0);
        let b = step(&spec(), resolved("b"), first.rollout.as_ref(), Some(MIN), 0);
        let b = step(&spec(), resolved("b"), b.rollout.as_ref(), Some(MIN), 5_000);
        assert_eq!(shares(&b), [("a".to_string(), 97), ("b".to_string(), 3)]);
        let c = step(&spec(), resolved("c"), b.rollout.as_ref(), Some(MIN), 5_000);
        assert_eq!(shares(&c), [("a".to_string(), 97), ("b".to_string(), 2), ("c".to_string(), 1)]);
        let c = step(&spec(), resolved("c"), c.rollout.as_ref(), Some(MIN), 7_000);
        assert_eq!(shares(&c), [("a".to_string(), 95), ("b".to_string(), 2), ("c".to_string(), 3)], "oldest first");
    }

    #[test]
    fn pinned_targets_and_small_shares_are_left_alone() {
        let spec = targets(json!([
            {"revisionName": "a", "percent": 99, "tag": "current"},
            {"configurationName": "hello", "latestRevision": true, "percent": 1}
        ]));
        let got = targets(json!([
            {"revisionName": "a", "percent": 99, "tag": "current", "latestRevision": false},
            {"revisionName": "b", "percent": 1, "latestRevision": true}
        ]));
        let s = step(&spec, got.clone(), None, Some(MIN), 0);
        assert_eq!((s.traffic, s.next), (got, None));
    }
}
