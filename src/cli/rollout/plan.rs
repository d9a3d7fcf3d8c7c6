//! The splits a rollout walks through: at each step the new revision gets the step's percent
//! and every other target of the split it started from keeps its share of the rest, scaled
//! (largest remainders, so the percents always sum to 100); tags stay where they were. Pure.

use serde_json::{Map, Value, json};

/// Why a rollout cannot start from a split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--steps` is not a rising list of percents ending anywhere up to 100.
    #[error("--steps {0}: give rising whole percents from 1 to 100, e.g. 10,25,50,100")]
    Steps(String),
    /// Nothing else carries traffic, so there is no rest to scale.
    #[error("--to {0}: it already has all the traffic; nothing to roll out from")]
    NothingElse(String),
}

/// Reads `--steps`: rising percents in 1..=100.
pub fn steps(text: &str) -> Result<Vec<i64>, PlanError> {
    let bad = || PlanError::Steps(text.to_string());
    let steps: Vec<i64> = text
        .split(',')
        .map(|s| s.trim().trim_end_matches('%').parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let rising = steps.windows(2).all(|w| w[0] < w[1]);
    if steps.is_empty() || !rising || steps.iter().any(|p| !(1..=100).contains(p)) {
        return Err(bad());
    }
    Ok(steps)
}

/// `pinned` (the starting split, with any `latestRevision` target already resolved to the
/// revision it reaches and marked with `revisionName`) at the step where `to` gets `pct`.
pub fn at(pinned: &[Value], to: &str, pct: i64) -> Result<Vec<Value>, PlanError> {
    let is_to = |t: &Value| t["revisionName"].as_str() == Some(to);
    let rest: i64 = pinned.iter().filter(|t| !is_to(t)).map(percent).sum();
    if rest == 0 {
        return Err(PlanError::NothingElse(to.to_string()));
    }
    let others: Vec<usize> = (0..pinned.len()).filter(|&i| !is_to(&pinned[i])).collect();
    let shares = scale(&others.iter().map(|&i| percent(&pinned[i])).collect::<Vec<_>>(), 100 - pct);
    let mut out: Vec<Map<String, Value>> = pinned.iter().filter_map(|t| t.as_object().cloned()).collect();
    for (&i, share) in others.iter().zip(shares) {
        out[i].insert("percent".into(), json!(share));
    }
    // The new revision's share goes on its untagged target, else its first tagged one, else
    // on a new target; any other target of it keeps its tag at 0 %.
    let mine: Vec<usize> = (0..pinned.len()).filter(|&i| is_to(&pinned[i])).collect();
    let carrier = mine.iter().copied().find(|&i| out[i].get("tag").is_none()).or_else(|| mine.first().copied());
    for &i in &mine {
        out[i].insert("percent".into(), json!(if Some(i) == carrier { pct } else { 0 }));
    }
    if carrier.is_none() {
        out.push(Map::from_iter([("revisionName".into(), json!(to)), ("percent".into(), json!(pct))]));
    }
    out.retain(|t| t.get("tag").is_some() || t.get("percent").and_then(Value::as_i64).unwrap_or(0) > 0);
    Ok(out.into_iter().map(Value::Object).collect())
}

/// `weights` scaled to sum to `total`, each rounded down and the remainder given to the
/// largest fractions (earlier targets first on ties).
fn scale(weights: &[i64], total: i64) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut out: Vec<i64> = weights.iter().map(|w| w * total / sum).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(weights[i] * total % sum), i));
    let short = total - out.iter().sum::<i64>();
    for &i in order.iter().take(usize::try_from(short).unwrap_or(0)) {
        out[i] += 1;
    }
    out
}

fn percent(t: &Value) -> i64 {
    t["percent"].as_i64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_must_rise_within_1_to_100() {
        assert_eq!(steps("10,25,50,100"), Ok(vec![10, 25, 50, 100]));
        assert_eq!(steps("5%, 50%"), Ok(vec![5, 50]));
        for bad in ["", "10,10", "50,25", "0,100", "10,101", "ten"] {
            assert!(steps(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_rest_keeps_its_proportions_and_tags() {
        let start = vec![
            json!({"revisionName": "a", "percent": 75, "tag": "current"}),
            json!({"revisionName": "b", "percent": 25}),
            json!({"revisionName": "c", "percent": 0, "tag": "candidate"}),
        ];
        let step = at(&start, "c", 10).expect("plan");
        assert_eq!(
            step,
            vec![
                json!({"revisionName": "a", "percent": 68, "tag": "current"}),
                json!({"revisionName": "b", "percent": 22}),
                json!({"revisionName": "c", "percent": 10, "tag": "candidate"}),
            ]
        );
        let last = at(&start, "c", 100).expect("plan");
        assert_eq!(
            last,
            vec![
                json!({"revisionName": "a", "percent": 0, "tag": "current"}),
                json!({"revisionName": "c", "percent": 100, "tag": "candidate"}),
            ]
        );
    }

    #[test]
    fn a_revision_not_in_the_split_joins_it() {
        let start = vec![json!({"revisionName": "a", "percent": 100})];
        assert_eq!(
            at(&start, "b", 25).expect("plan"),
            vec![json!({"revisionName": "a", "percent": 75}), json!({"revisionName": "b", "percent": 25})]
        );
    }

    #[test]
    fn percents_always_sum_to_100() {
        let start = vec![
            json!({"revisionName": "a", "percent": 33}),
            json!({"revisionName": "b", "percent": 33}),
            json!({"revisionName": "c", "percent": 34}),
        ];
        for pct in 1..=100 {
            let step = at(&start, "d", pct).expect("plan");
            assert_eq!(step.iter().map(percent).sum::<i64>(), 100, "{pct}: {step:?}");
        }
    }

    #[test]
    fn nothing_to_roll_from_is_refused() {
        let start = vec![json!({"revisionName": "b", "percent": 100})];
        assert_eq!(at(&start, "b", 50), Err(PlanError::NothingElse("b".into())));
    }
}
