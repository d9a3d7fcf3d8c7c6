//! Resolving a Route's `spec.traffic` to revisions: configuration targets to the latest ready
//! revision, every target checked to exist, belong and be ready. All or nothing: the first
//! problem (a hard failure wins over a not-yet-ready target, as in Knative) stops the whole
//! assignment, and the caller keeps the traffic it had.

use std::collections::BTreeSet;

use kube::ResourceExt;
use sluice_api::conditions::{ConditionStatus, ConditionUpdate, find};
use sluice_api::{Configuration, Revision, Route, TrafficTarget, labels};

/// What a route is resolved against: the namespace's objects, and whether a revision has an
/// instance ready to take requests.
pub struct Lookup<'a> {
    /// Configurations in the route's namespace.
    pub configurations: &'a [Configuration],
    /// Revisions in the route's namespace.
    pub revisions: &'a [Revision],
    /// Whether the revision can take traffic now: an instance serves it, or the autoscaler has
    /// it at zero (requests wait at its gate and wake it).
    pub serving: &'a (dyn Fn(&str) -> bool + Sync),
}

/// Why a target cannot take traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// The named Configuration or Revision does not exist.
    Missing {
        /// `Configuration` or `Revision`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The configuration has no ready revision yet (or its latest failed).
    ConfigurationNotReady {
        /// The configuration.
        name: String,
        /// True when it failed rather than still working.
        failed: bool,
    },
    /// The revision is not ready (or failed, or has no instance serving yet).
    RevisionNotReady {
        /// The revision.
        name: String,
        /// True when it failed rather than still working.
        failed: bool,
    },
    /// A Service's route names a revision of another Service.
    RevisionNotOwned {
        /// The revision.
        revision: String,
        /// The route's Service.
        expected: String,
        /// The revision's Service ("" for a standalone Configuration).
        actual: String,
    },
}

// === impl TargetError ===

impl TargetError {
    /// A failure (False) rather than a wait (Unknown).
    pub fn is_failure(&self) -> bool {
        match self {
            TargetError::Missing { .. } | TargetError::RevisionNotOwned { .. } => true,
            TargetError::ConfigurationNotReady { failed, .. } | TargetError::RevisionNotReady { failed, .. } => *failed,
        }
    }

    /// The AllTrafficAssigned condition that reports it, in Knative's words.
    pub fn condition(&self) -> ConditionUpdate {
        const C: &str = "AllTrafficAssigned";
        match self {
            TargetError::Missing { kind, name } => ConditionUpdate::failed(
                C,
                format!("{kind}Missing"),
                format!("{kind} {name:?} referenced in traffic not found."),
            ),
            TargetError::ConfigurationNotReady { name, failed: true } => ConditionUpdate::failed(
                C,
                "RevisionMissing",
                format!("Configuration {name:?} does not have any ready Revision."),
            ),
            TargetError::ConfigurationNotReady { name, failed: false } => ConditionUpdate::unknown(
                C,
                "RevisionMissing",
                format!("Configuration {name:?} is waiting for a Revision to become ready."),
            ),
            TargetError::RevisionNotReady { name, failed: true } => {
                ConditionUpdate::failed(C, "RevisionMissing", format!("Revision {name:?} failed to become ready."))
            }
            TargetError::RevisionNotReady { name, failed: false } => {
                ConditionUpdate::unknown(C, "RevisionMissing", format!("Revision {name:?} is not yet ready."))
            }
            TargetError::RevisionNotOwned { revision, expected, actual } if actual.is_empty() => {
                ConditionUpdate::failed(
                    C,
                    "RevisionNotOwned",
                    format!("Revision {revision:?} does not belong to Service {expected:?}."),
                )
            }
            TargetError::RevisionNotOwned { revision, expected, actual } => ConditionUpdate::failed(
                C,
                "RevisionNotOwned",
                format!("Revision {revision:?} belongs to Service {actual:?}, not Service {expected:?}."),
            ),
        }
    }
}

fn ready_status(rev: &Revision) -> ConditionStatus {
    rev.status.as_ref().and_then(|s| find(&s.conditions, "Ready")).map_or(ConditionStatus::Unknown, |c| c.status)
}

fn check_revision(route: &Route, rev: &Revision, lk: &Lookup<'_>) -> Result<(), TargetError> {
    let route_service = route.labels().get(labels::SERVICE).cloned().unwrap_or_default();
    if !route_service.is_empty() {
        let actual = rev.labels().get(labels::SERVICE).cloned().unwrap_or_default();
        if actual != route_service {
            return Err(TargetError::RevisionNotOwned { revision: rev.name_any(), expected: route_service, actual });
        }
    }
    match ready_status(rev) {
        ConditionStatus::True if (lk.serving)(&rev.name_any()) => Ok(()),
        ConditionStatus::False => Err(TargetError::RevisionNotReady { name: rev.name_any(), failed: true }),
        _ => Err(TargetError::RevisionNotReady { name: rev.name_any(), failed: false }),
    }
}

/// Resolves one target to its revision name.
pub(super) fn resolve_target(route: &Route, t: &TrafficTarget, lk: &Lookup<'_>) -> Result<String, TargetError> {
    let find_rev = |name: &str| lk.revisions.iter().find(|r| r.name_any() == name);
    if let Some(name) = t.revision_name.as_deref().filter(|n| !n.is_empty()) {
        let rev = find_rev(name).ok_or_else(|| TargetError::Missing { kind: "Revision", name: name.to_string() })?;
        check_revision(route, rev, lk)?;
        return Ok(name.to_string());
    }
    let cfg_name = t.configuration_name.as_deref().unwrap_or("");
    let cfg = lk
        .configurations
        .iter()
        .find(|c| c.name_any() == cfg_name)
        .ok_or_else(|| TargetError::Missing { kind: "Configuration", name: cfg_name.to_string() })?;
    let status = cfg.status.clone().unwrap_or_default();
    let Some(latest) = status.latest_ready_revision_name.filter(|n| !n.is_empty()) else {
        let failed = find(&status.conditions, "Ready").is_some_and(|c| c.status == ConditionStatus::False);
        return Err(TargetError::ConfigurationNotReady { name: cfg_name.to_string(), failed });
    };
    let rev = find_rev(&latest).ok_or_else(|| TargetError::Missing { kind: "Revision", name: latest.clone() })?;
    // A configuration's own revision: no ownership question, only readiness.
    match ready_status(rev) {
        ConditionStatus::True if (lk.serving)(&latest) => Ok(latest),
        ConditionStatus::False => Err(TargetError::RevisionNotReady { name: latest, failed: true }),
        _ => Err(TargetError::RevisionNotReady { name: latest, failed: false }),
    }
}

/// The route's traffic with every target resolved to a revision (status form: no
/// `configurationName`, `latestRevision` set, no URLs yet), or the problem that blocks it.
pub fn resolve(route: &Route, lk: &Lookup<'_>) -> Result<Vec<TrafficTarget>, TargetError> {
    let mut deferred: Option<TargetError> = None;
    let mut out = Vec::with_capacity(route.spec.traffic.len());
    for t in &route.spec.traffic {
        match resolve_target(route, t, lk) {
            Ok(revision) => out.push(TrafficTarget {
                tag: t.tag.clone().filter(|s| !s.is_empty()),
                revision_name: Some(revision),
                configuration_name: None,
                latest_revision: Some(t.is_latest()),
                percent: Some(t.percent_or_zero()),
                url: None,
                extra: Default::default(),
            }),
            Err(e) => {
                if deferred.is_none() || e.is_failure() {
                    deferred = Some(e);
                }
            }
        }
    }
    match deferred {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The revisions the route's spec points at, as far as they resolve now (configuration
/// targets: the latest ready revision, and the latest created one so it starts warm).
///
/// The latest created revision is also found by its generation label: the Configuration's
/// reconciler creates it before its status names it, and a route reconciled in between would
/// otherwise take the new revision (born `active`) for one no route references, mark it
/// `reserve` and stop its first instance, only to start it again once the status catches up.
///
/// Rule targets count too: a revision named only in a rule runs like any routed one.
pub fn wanted_revisions(route: &Route, lk: &Lookup<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in route.spec.traffic.iter().chain(super::rules::targets(route)) {
        if let Some(name) = t.revision_name.as_deref().filter(|n| !n.is_empty()) {
            out.insert(name.to_string());
        } else if let Some(cfg) =
            lk.configurations.iter().find(|c| Some(c.name_any().as_str()) == t.configuration_name.as_deref())
        {
            let status = cfg.status.clone().unwrap_or_default();
            out.extend(status.latest_ready_revision_name);
            out.extend(status.latest_created_revision_name);
            out.extend(current_generation(cfg, lk.revisions));
        }
    }
    out
}

/// The revision stamped from `cfg`'s current generation, once it exists.
fn current_generation(cfg: &Configuration, revisions: &[Revision]) -> Option<String> {
    let (name, generation) = (cfg.name_any(), cfg.metadata.generation?.to_string());
    revisions
        .iter()
        .find(|r| {
            let l = r.labels();
            l.get(labels::CONFIGURATION) == Some(&name) && l.get(labels::CONFIGURATION_GENERATION) == Some(&generation)
        })
        .map(ResourceExt::name_any)
}

/// The configurations the route's spec follows (in its traffic or its rules).
pub fn wanted_configurations(route: &Route) -> BTreeSet<String> {
    route
        .spec
        .traffic
        .iter()
        .chain(super::rules::targets(route))
        .filter_map(|t| t.configuration_name.clone())
        .filter(|n| !n.is_empty())
        .collect()
}
