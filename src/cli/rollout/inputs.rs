//! What `sluice rollout` is given, resolved before anything changes: the revision `--to`
//! names (a ready revision of the service), the split with `latestRevision` targets pinned,
//! where the router's counters are read, and the flag parsers.

use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::RolloutArgs;
use crate::cli::traffic::{self, LATEST};

/// `--to`, resolved and checked: a revision of the service, and ready.
pub(super) fn target_revision(args: &RolloutArgs, svc: &Value, revisions: &[Value]) -> anyhow::Result<String> {
    let name = if args.to == LATEST {
        svc["status"]["latestReadyRevisionName"]
            .as_str()
            .ok_or_else(|| anyhow!("--to @latest: service '{}' has no ready revision", args.service))?
            .to_string()
    } else {
        args.to.clone()
    };
    let rev = revisions
        .iter()
        .find(|r| r["metadata"]["name"].as_str() == Some(&name))
        .ok_or_else(|| anyhow!("--to {name}: not a revision of service '{}'", args.service))?;
    let ready = rev["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    if ready.and_then(|c| c["status"].as_str()) != Some("True") {
        let reason = ready.and_then(|c| c["reason"].as_str()).unwrap_or("not reported");
        bail!("--to {name}: the revision is not ready ({reason}); roll out a ready revision");
    }
    Ok(name)
}

/// The service's split with each `latestRevision` target pinned to the revision it reaches
/// now; an empty split is Knative's default, everything to the latest ready revision.
pub(super) fn pin(svc: &Value) -> Vec<Value> {
    let latest = svc["status"]["latestReadyRevisionName"].as_str().unwrap_or("");
    let mut split = traffic::spec_traffic(svc);
    if split.is_empty() {
        split.push(json!({"latestRevision": true, "percent": 100}));
    }
    for t in &mut split {
        if t["latestRevision"].as_bool() == Some(true)
            && let Some(obj) = t.as_object_mut()
        {
            obj.remove("latestRevision");
            obj.insert("revisionName".into(), json!(latest));
        }
    }
    split
}

/// `--metrics-url`, else the address `sluice serve` wrote to its endpoints.json.
pub(super) fn metrics_url(args: &RolloutArgs) -> anyhow::Result<String> {
    router_metrics_url(args.metrics_url.as_deref(), &args.api)
}

/// `given`, else the metrics address in the endpoints.json of `api`'s state directory (also
/// what `sluice top` reads).
pub(crate) fn router_metrics_url(given: Option<&str>, api: &crate::cli::ApiArgs) -> anyhow::Result<String> {
    if let Some(url) = given {
        return Ok(url.to_string());
    }
    let dir = api.state_dir.clone().unwrap_or_else(crate::cli::serve::default_state_dir);
    let file = dir.join(crate::cli::serve::ENDPOINTS_FILE);
    let doc: Value = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| anyhow!("no router metrics to watch: {} is not there; pass --metrics-url", file.display()))?;
    let addr = doc["metrics"].as_str().ok_or_else(|| {
        anyhow!(
            "no router metrics to watch: sluice serve runs with --metrics off ({}); pass --metrics-url",
            file.display()
        )
    })?;
    Ok(format!("http://{addr}/metrics"))
}

pub(super) fn parse_interval(s: &str) -> Result<Duration, String> {
    match sluice_api::validation::duration::parse(s) {
        Some(ns) if ns > 0 => Ok(Duration::from_nanos(ns.unsigned_abs())),
        _ => Err(format!("{s:?} is not a positive duration such as 30s, 1m or 500ms")),
    }
}

pub(super) fn parse_rate(s: &str) -> Result<f64, String> {
    let pct = s.trim().trim_end_matches('%').parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p));
    pct.map(|p| p / 100.0).ok_or_else(|| format!("{s:?} is not a percent from 0% to 100%, such as 5%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_targets_are_pinned_and_an_empty_split_is_all_latest() {
        let svc = json!({"spec": {"traffic": [{"latestRevision": true, "percent": 100, "tag": "edge"}]},
                         "status": {"latestReadyRevisionName": "a"}});
        assert_eq!(pin(&svc), vec![json!({"percent": 100, "tag": "edge", "revisionName": "a"})]);
        let svc = json!({"status": {"latestReadyRevisionName": "a"}});
        assert_eq!(pin(&svc), vec![json!({"percent": 100, "revisionName": "a"})]);
    }

    #[test]
    fn rates_and_intervals_are_read_with_their_units() {
        assert_eq!(parse_rate("5%"), Ok(0.05));
        assert_eq!(parse_rate("0.5"), Ok(0.005));
        assert!(parse_rate("150%").is_err());
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_interval("0s").is_err());
    }
}
