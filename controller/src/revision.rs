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
use sluice_api::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use sluice_api::scale::{RevisionHealth, RevisionRun};
use sluice_api::{ContainerStatus, Revision, RevisionKey, RevisionStatus, labels};

use super::autoscale::{View, ViewActivity, Wish};
use super::events::{Note, component};
use super::{Ctx, Error, shell};

/// How often a revision not yet ready is reconciled again without news of it.
const RECHECK: Duration = Duration::from_secs(30);

/// The revision's key in the runtime and router.
pub fn key(rev: &Revision) -> RevisionKey {
    RevisionKey::new(rev.namespace().unwrap_or_default(), rev.name_any())
}

/// What the runtime needs to run `rev`, or None when it has no container.
pub fn run_spec(rev: &Revision) -> Option<RevisionRun> {
    let container = rev.spec.serving_container()?.clone();
    let sidecars = rev.spec.containers.iter().filter(|c| c.name != container.name).cloned().collect();
    let l = rev.labels();
    Some(RevisionRun {
        key: key(rev),
        uid: rev.uid().unwrap_or_default(),
        configuration: l.get(labels::CONFIGURATION).cloned().unwrap_or_default(),
        service: l.get(labels::SERVICE).cloned().unwrap_or_default(),
        container,
        sidecars,
        timeout: Duration::from_secs(
            rev.spec.timeout_seconds.unwrap_or(sluice_api::DEFAULT_TIMEOUT_SECONDS).max(1) as u64
        ),
        container_concurrency: u64::try_from(rev.spec.container_concurrency.unwrap_or(0)).unwrap_or(0),
    })
}

/// How long the revision has left to become ready the first time (zero once its progress
/// deadline has passed); None once it has been ready, or when it has no creation time. Counted
/// from `creationTimestamp`, which has whole seconds.
fn deadline_left(
    rev: &Revision,
    health: Option<&RevisionHealth>,
    now: jiff::Timestamp,
    deadline: Duration,
) -> Option<Duration> {
    if health.is_some_and(|h| h.ever_ready) || is_ready_once(rev) {
        return None;
    }
    let created = rev.metadata.creation_timestamp.as_ref()?.0;
    let waited = Duration::try_from(now.duration_since(created)).unwrap_or(Duration::ZERO);
    Some(deadline.saturating_sub(waited))
}

/// A revision whose initial scale is 0 counts as ready once (Knative's scale target is
/// initialized at once): it is Ready without an instance, and the first request starts one. A
/// failure seen since still counts.
fn initialized_at_zero(health: Option<RevisionHealth>, view: &View) -> Option<RevisionHealth> {
    if view.initial_scale != 0 {
        return health;
    }
    let mut health = health.unwrap_or_default();
    if health.last_failure.is_none() {
        health.ever_ready = true;
    }
    Some(health)
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
            // What the runtime sees of a slow start (an app listening on another port).
            let waiting = health.and_then(|h| h.waiting.clone()).unwrap_or_default();
            ConditionUpdate::unknown("ResourcesAvailable", "Deploying", waiting)
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
    if let Ok(json) = serde_json::to_value(rev) {
        sluice_api::honoured::set_condition(&mut s.conditions, sluice_api::Kind::Revision, &json, now);
    }
    s.actual_replicas = Some(i32::try_from(ready).unwrap_or(i32::MAX));
    s.desired_replicas = Some(i32::try_from(desired).unwrap_or(i32::MAX));
    s.log_url = Some(log_url.to_string());
    let digest =
        |c: &sluice_api::podspec::Container| if c.command.is_empty() { c.image.clone() } else { c.command.join(" ") };
    // The serving container first, then the sidecars, as Knative lists them.
    let sidecars = rev.spec.containers.iter().filter(|c| c.name != container_name);
    s.container_statuses = container
        .into_iter()
        .chain(sidecars)
        .map(|c| ContainerStatus { name: c.name.clone(), image_digest: Some(digest(c)) })
        .collect();
    if let Some(h) = health {
        s.extra.insert("restartCount".into(), h.restarts.into());
        if !h.container_restarts.is_empty() {
            s.extra.insert("containerRestartCounts".into(), serde_json::json!(h.container_restarts));
        }
        if let Some(f) = &h.last_failure {
            // Kept after the instance is ready again, so a restart's cause stays readable.
            s.extra.insert("lastFailure".into(), serde_json::json!({"reason": f.reason, "message": f.message}));
        }
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
    let left = deadline_left(&rev, health.as_ref(), now, ctx.progress_deadline.of(rev.annotations()));
    let deadline_passed = left == Some(Duration::ZERO);
    let wish =
        Wish { run, annotations: rev.annotations().clone(), reachable: reachable(&rev), stopped: deadline_passed };
    let view = ctx.autoscaling.track(wish);
    let desired = view.desired as usize;
    let log_url = ctx.scaler.log_url(&key);
    let health = initialized_at_zero(health, &view);
    let mut status = revision_status(&rev, health.as_ref(), desired, &log_url, &super::now(), deadline_passed);
    status.extra.insert("autoscaler".into(), autoscaler_status(&view));
    let api: kube::Api<Revision> = kube::Api::namespaced(ctx.client.clone(), &key.namespace);
    shell::publish_notes(&api, &*rev, &ctx.events, |r| notes(r, &status)).await;
    shell::patch_status::<Revision, _>(&ctx.client, &rev, rev.status.as_ref(), &status).await?;
    // Re-check a revision still coming up at its progress deadline (and every 30 s).
    if !status
        .conditions
        .iter()
        .any(|c| c.type_ == "ResourcesAvailable" && c.status == sluice_api::conditions::ConditionStatus::True)
    {
        let recheck = match left {
            Some(left) if !left.is_zero() => left.min(RECHECK) + Duration::from_millis(50),
            _ => RECHECK,
        };
        return Ok(Action::requeue(recheck));
    }
    Ok(Action::await_change())
}

/// The Events a status change is worth: the revision became ready, or failed (again, for
/// another reason), with the reason its Ready condition gives (`ExitCode1`,
/// `ContainerMissing`, `ProgressDeadlineExceeded`, ...).
pub fn notes(rev: &Revision, next: &RevisionStatus) -> Vec<Note> {
    let ready =
        |s: Option<&RevisionStatus>| s.and_then(|s| sluice_api::conditions::find(&s.conditions, "Ready")).cloned();
    let (before, after) = (ready(rev.status.as_ref()), ready(Some(next)));
    let Some(after) = after else { return Vec::new() };
    let status_of = |c: &Option<sluice_api::conditions::Condition>| c.as_ref().map(|c| c.status);
    match after.status {
        ConditionStatus::True if status_of(&before) != Some(ConditionStatus::True) => {
            let message = format!(
                "Revision {:?} is ready ({} instance(s) serving)",
                rev.name_any(),
                next.actual_replicas.unwrap_or(0)
            );
            vec![Note::normal(rev, component::REVISION, "Reconcile", "RevisionReady", message)]
        }
        ConditionStatus::False
            if status_of(&before) != Some(ConditionStatus::False)
                || before.as_ref().and_then(|c| c.reason.clone()) != after.reason =>
        {
            let reason = after.reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "RevisionFailed".into());
            let message =
                format!("Revision {:?} failed: {}", rev.name_any(), after.message.clone().unwrap_or_default());
            vec![Note::warning(rev, component::REVISION, "Reconcile", reason, message)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
