//! Revision → the instances the runtime should run, and the Revision's status from what the
//! runtime reports: ResourcesAvailable, ContainerHealthy, Ready, and Active (outside Ready).
//!
//! Scale is the autoscaler's ([`crate::autoscale`]): the reconciler tells it what the revision
//! is (its run, annotations, whether a route reaches it, whether it failed for good) and writes
//! the decision it reads back into the status (`desiredReplicas`, the autoscaler's view).

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use sluice_api::conditions::{ConditionUpdate, set_condition};
use sluice_api::scale::{RevisionHealth, RevisionRun};
use sluice_api::{ContainerStatus, Revision, RevisionKey, RevisionStatus, labels};

use super::autoscale::{View, ViewActivity, Wish};
use super::{Ctx, Error, shell};

/// How long a revision may take to become ready the first time (Knative's default).
const PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// The revision's key in the runtime and router.
pub fn key(rev: &Revision) -> RevisionKey {
    RevisionKey::new(rev.namespace().unwrap_or_default(), rev.name_any())
}

/// What the runtime needs to run `rev`, or None when it has no container.
pub fn run_spec(rev: &Revision) -> Option<RevisionRun> {
    let container = rev.spec.serving_container()?.clone();
    let l = rev.labels();
    Some(RevisionRun {
        key: key(rev),
        uid: rev.uid().unwrap_or_default(),
        configuration: l.get(labels::CONFIGURATION).cloned().unwrap_or_default(),
        service: l.get(labels::SERVICE).cloned().unwrap_or_default(),
        container,
        timeout: Duration::from_secs(
            rev.spec.timeout_seconds.unwrap_or(sluice_api::DEFAULT_TIMEOUT_SECONDS).max(1) as u64
        ),
        container_concurrency: u64::try_from(rev.spec.container_concurrency.unwrap_or(0)).unwrap_or(0),
    })
}

/// True once the revision has waited longer than its progress deadline without ever being ready.
fn past_deadline(rev: &Revision, health: Option<&RevisionHealth>, now: jiff::Timestamp) -> bool {
    if health.is_some_and(|h| h.ever_ready) || is_ready_once(rev) {
        return false;
    }
    let deadline = rev
        .annotations()
        .get("serving.knative.dev/progress-deadline")
        .and_then(|d| d.trim_end_matches('s').parse::<u64>().ok())
        .map_or(PROGRESS_DEADLINE, Duration::from_secs);
    let created = rev.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created.is_some_and(|c| now.duration_since(c).as_secs() > deadline.as_secs() as i64)
}

/// True when a stored status says the revision became ready at some point.
fn is_ready_once(rev: &Revision) -> bool {
    rev.status.as_ref().is_some_and(|s| sluice_api::conditions::is_true(&s.conditions, "ResourcesAvailable"))
}

/// Whether a route sends the revision traffic, or may soon: every routing state but `reserve`
/// (a new revision no route has claimed yet is `pending`, and runs its initial scale so it can
/// become Ready).
pub fn reachable(rev: &Revision) -> bool {
    rev.labels().get(labels::ROUTING_STATE).map(String::as_str) != Some("reserve")
}

/// What the autoscaler (Knative's PodAutoscaler) sees of the revision, as `status.autoscaler`:
/// the metric it scales on, its stable and panic averages against the target per instance,
/// panic mode, its Active state and why it wants what it wants.
pub fn autoscaler_status(view: &View) -> serde_json::Value {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    serde_json::json!({
        "desiredScale": view.desired,
        "metric": view.metric,
        "stableValue": round(view.stable),
        "panicValue": round(view.panic),
        "targetPerInstance": round(view.target),
        "panicking": view.panicking,
        "active": match view.activity {
            ViewActivity::Activating => "Activating",
            ViewActivity::Active => "Active",
            ViewActivity::Inactive => "Inactive",
        },
        "reason": view.reason,
    })
}

/// The runtime's reason for an instance that cannot start for want of a ConfigMap, Secret or key.
const CONFIG_ERROR: &str = "CreateContainerConfigError";

/// The revision's status from the runtime's view of it.
pub fn revision_status(
    rev: &Revision,
    health: Option<&RevisionHealth>,
    desired: usize,
    log_url: &str,
    now: &str,
    deadline_passed: bool,
) -> RevisionStatus {
    let mut s = rev.status.clone().unwrap_or_default();
    s.observed_generation = rev.metadata.generation;
    let container = rev.spec.serving_container();
    let container_name = container.map(|c| c.name.clone()).unwrap_or_default();
    let ready = health.map_or(0, |h| h.ready);
    let ever_ready = health.is_some_and(|h| h.ever_ready) || is_ready_once(rev);
    let failure = health.and_then(|h| h.last_failure.as_ref());
    let (resources, healthy) = if deadline_passed {
        (
            ConditionUpdate::failed(
                "ResourcesAvailable",
                "ProgressDeadlineExceeded",
                "Initial scale was never achieved",
            ),
            ConditionUpdate::unknown("ContainerHealthy", "Deploying", ""),
        )
    } else {
        let healthy = match failure {
            // A failure matters while no instance is serving; once one is ready again it is history.
            Some(f) if ready == 0 && desired > 0 => {
                let reason = match (f.reason.as_str(), f.exit_code) {
                    ("ExitCode", Some(code)) => format!("ExitCode{code}"),
                    ("ImageNotFound", _) => "ContainerMissing".to_string(),
                    (other, _) => other.to_string(),
                };
                ConditionUpdate::failed("ContainerHealthy", reason, f.message.clone())
            }
            _ if ever_ready => ConditionUpdate::ok("ContainerHealthy"),
            _ => ConditionUpdate::unknown("ContainerHealthy", "Deploying", ""),
        };
        let config_error = failure.filter(|f| f.reason == CONFIG_ERROR && ready == 0 && desired > 0);
        let resources = if let Some(f) = config_error {
            // The instance cannot be made at all, as Kubernetes' CreateContainerConfigError.
            ConditionUpdate::failed("ResourcesAvailable", CONFIG_ERROR, f.message.clone())
        } else if ever_ready {
            ConditionUpdate::ok("ResourcesAvailable")
        } else {
            ConditionUpdate::unknown("ResourcesAvailable", "Deploying", "")
        };
        (resources, healthy)
    };
    set_condition(&mut s.conditions, resources, now);
    set_condition(&mut s.conditions, healthy, now);
    let summary =
        sluice_api::conditions::summarize(&s.conditions, "Ready", &["ResourcesAvailable", "ContainerHealthy"]);
    set_condition(&mut s.conditions, summary, now);
    let active = match (ready, desired) {
        (r, _) if r > 0 => ConditionUpdate::ok("Active"),
        (_, 0) => ConditionUpdate::failed("Active", "NoTraffic", "The target is not receiving traffic."),
        _ => ConditionUpdate::unknown("Active", "Activating", "The revision is being started."),
    };
    set_condition(&mut s.conditions, active, now);
    if let Some(active) = s.conditions.iter_mut().find(|c| c.type_ == "Active") {
        // Active is informational: it does not take part in Ready.
        active.severity = Some("Info".into());
    }
    // What Sluice accepted but does not act on is said here, never only at admission.
    let notes = serde_json::to_value(rev)
        .map(|json| sluice_api::honoured::not_honoured(sluice_api::Kind::Revision, &json))
        .unwrap_or_default();
    if notes.is_empty() {
        s.conditions.retain(|c| c.type_ != "FieldsHonoured");
    } else {
        let message: Vec<String> = notes.iter().map(|n| format!("{}: {}", n.path, n.message)).collect();
        set_condition(
            &mut s.conditions,
            ConditionUpdate::failed("FieldsHonoured", "NotHonoured", message.join("; ")),
            now,
        );
        if let Some(c) = s.conditions.iter_mut().find(|c| c.type_ == "FieldsHonoured") {
            // A warning beside Ready, which it does not take part in.
            c.severity = Some("Warning".into());
        }
    }
    s.actual_replicas = Some(i32::try_from(ready).unwrap_or(i32::MAX));
    s.desired_replicas = Some(i32::try_from(desired).unwrap_or(i32::MAX));
    s.log_url = Some(log_url.to_string());
    let digest = container.map(|c| if c.command.is_empty() { c.image.clone() } else { c.command.join(" ") });
    s.container_statuses = vec![ContainerStatus { name: container_name, image_digest: digest }];
    if let Some(h) = health {
        s.extra.insert("restartCount".into(), h.restarts.into());
    }
    s
}

/// Reconciles one Revision: asks the runtime for its instances, reports its status.
pub async fn reconcile(rev: Arc<Revision>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = key(&rev);
    if rev.metadata.deletion_timestamp.is_some() {
        ctx.autoscaling.forget(&key, &rev.uid().unwrap_or_default());
        ctx.scaler.forget(&key, &rev.uid().unwrap_or_default());
        return Ok(Action::await_change());
    }
    let Some(run) = run_spec(&rev) else {
        return Ok(Action::await_change());
    };
    let now = jiff::Timestamp::now();
    let health = ctx.scaler.health(&key);
    let deadline_passed = past_deadline(&rev, health.as_ref(), now);
    let wish =
        Wish { run, annotations: rev.annotations().clone(), reachable: reachable(&rev), stopped: deadline_passed };
    let view = ctx.autoscaling.track(wish);
    let desired = view.desired as usize;
    let log_url = ctx.scaler.log_url(&key);
    let mut status = revision_status(&rev, health.as_ref(), desired, &log_url, &super::now(), deadline_passed);
    status.extra.insert("autoscaler".into(), autoscaler_status(&view));
    shell::patch_status::<Revision, _>(&ctx.client, &rev, rev.status.as_ref(), &status).await?;
    // Re-check a revision still coming up at its progress deadline.
    if !status
        .conditions
        .iter()
        .any(|c| c.type_ == "ResourcesAvailable" && c.status == sluice_api::conditions::ConditionStatus::True)
    {
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests;
