//! Service → one Configuration and one Route of the same name, owned by it; the Service's
//! status mirrors theirs. The decisions are pure functions of the observed objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use sluice_api::conditions::{self, ConditionStatus, ConditionUpdate, set_condition};
use sluice_api::{Configuration, ConfigurationSpec, Route, RouteSpec, Service, ServiceStatus, TrafficTarget, labels};

use super::events::{Note, component};
use super::route;
use super::shell::{self, Child, Written};
use super::{Ctx, Error};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The labels a Service passes to its children.
fn child_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.labels().clone();
    l.insert(labels::SERVICE.into(), svc.name_any());
    l.insert(labels::SERVICE_UID.into(), svc.uid().unwrap_or_default());
    l
}

/// The annotations a Service passes to its children (not kubectl's bookkeeping).
fn child_annotations(svc: &Service) -> BTreeMap<String, String> {
    svc.annotations().iter().filter(|(k, _)| k.as_str() != LAST_APPLIED).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn child_meta(svc: &Service) -> ObjectMeta {
    ObjectMeta {
        name: Some(svc.name_any()),
        namespace: svc.namespace(),
        labels: Some(child_labels(svc)),
        annotations: Some(child_annotations(svc)),
        owner_references: svc.controller_owner_ref(&()).map(|r| vec![r]),
        ..Default::default()
    }
}

/// The Configuration a Service wants.
pub fn desired_configuration(svc: &Service) -> Configuration {
    let spec = ConfigurationSpec { template: svc.spec.template.clone(), extra: Default::default() };
    Configuration { metadata: child_meta(svc), spec, status: None }
}

/// The Route a Service wants: its traffic and rules, with `configurationName` filled for every
/// target that names no revision (and, in a rule, no tag of the traffic).
pub fn desired_route(svc: &Service) -> Route {
    let mut traffic = svc.spec.traffic.clone();
    if traffic.is_empty() {
        traffic.push(TrafficTarget { percent: Some(100), latest_revision: Some(true), ..Default::default() });
    }
    let own = |t: &mut TrafficTarget| {
        if t.revision_name.as_deref().unwrap_or("").is_empty() {
            t.configuration_name = Some(svc.name_any());
        }
    };
    traffic.iter_mut().for_each(&own);
    let mut rules = svc.spec.rules.clone();
    for t in rules.iter_mut().flat_map(|r| r.traffic.iter_mut()) {
        if t.tag.as_deref().unwrap_or("").is_empty() {
            own(t);
        }
    }
    Route { metadata: child_meta(svc), spec: RouteSpec { traffic, rules, extra: Default::default() }, status: None }
}

/// The Service's status from its children's.
pub fn service_status(
    svc: &Service,
    cfg: Child<'_, Configuration>,
    route: Child<'_, Route>,
    now: &str,
) -> ServiceStatus {
    let mut status = svc.status.clone().unwrap_or_default();
    status.observed_generation = svc.metadata.generation;
    let cfg_cond = match cfg {
        Child::NotOwned(name) => ConditionUpdate::failed(
            "ConfigurationsReady",
            "NotOwned",
            format!("There is an existing Configuration {name:?} that we do not own."),
        ),
        Child::Missing => ConditionUpdate::unknown("ConfigurationsReady", "", ""),
        Child::Found(c) => {
            let cs = c.status.clone().unwrap_or_default();
            status.latest_created_revision_name = cs.latest_created_revision_name.clone();
            status.latest_ready_revision_name = cs.latest_ready_revision_name.clone();
            if cs.observed_generation != c.metadata.generation {
                ConditionUpdate::unknown(
                    "ConfigurationsReady",
                    "OutOfDate",
                    "The Configuration is still working to reflect the latest desired specification.",
                )
            } else {
                mirror("ConfigurationsReady", conditions::find(&cs.conditions, "Ready"))
            }
        }
    };
    let route_cond = match route {
        Child::NotOwned(name) => ConditionUpdate::failed(
            "RoutesReady",
            "NotOwned",
            format!("There is an existing Route {name:?} that we do not own."),
        ),
        Child::Missing => ConditionUpdate::unknown("RoutesReady", "", ""),
        Child::Found(r) => {
            let rs = r.status.clone().unwrap_or_default();
            status.url = rs.url.clone();
            status.address = rs.address.clone();
            status.traffic = rs.traffic.clone();
            status.rules = rs.rules.clone();
            if rs.observed_generation != r.metadata.generation {
                ConditionUpdate::unknown(
                    "RoutesReady",
                    "OutOfDate",
                    "The Route is still working to reflect the latest desired specification.",
                )
            } else {
                let ready = conditions::find(&rs.conditions, "Ready");
                // As Knative: a ready Route is checked against the latest ready revision; a
                // Route that is not ready reports why.
                if ready.is_some_and(|c| c.status == ConditionStatus::True)
                    && !traffic_migrated(r, status.latest_ready_revision_name.as_deref())
                {
                    ConditionUpdate::unknown(
                        "RoutesReady",
                        "TrafficNotMigrated",
                        "Traffic is not yet migrated to the latest revision.",
                    )
                } else {
                    mirror("RoutesReady", ready)
                }
            }
        }
    };
    set_condition(&mut status.conditions, cfg_cond, now);
    set_condition(&mut status.conditions, route_cond, now);
    let ready = conditions::summarize(&status.conditions, "Ready", &["ConfigurationsReady", "RoutesReady"]);
    set_condition(&mut status.conditions, ready, now);
    if let Ok(json) = serde_json::to_value(svc) {
        sluice_api::honoured::set_condition(&mut status.conditions, sluice_api::Kind::Service, &json, now);
    }
    status
}

/// A dependent condition copied from a child's Ready.
fn mirror(type_: &'static str, ready: Option<&conditions::Condition>) -> ConditionUpdate {
    match ready {
        Some(c) if c.status == ConditionStatus::True => ConditionUpdate::ok(type_),
        Some(c) => {
            let (reason, message) = (c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default());
            if c.status == ConditionStatus::False {
                ConditionUpdate::failed(type_, reason, message)
            } else {
                ConditionUpdate::unknown(type_, reason, message)
            }
        }
        None => ConditionUpdate::unknown(type_, "", ""),
    }
}

/// True when the route's programmed traffic is its spec, with configuration targets resolved
/// to the latest ready revision (Knative's `TrafficNotMigrated` check).
fn traffic_migrated(route: &Route, latest_ready: Option<&str>) -> bool {
    let got = route.status.as_ref().map(|s| s.traffic.as_slice()).unwrap_or_default();
    if got.len() != route.spec.traffic.len() {
        return false;
    }
    route.spec.traffic.iter().zip(got).all(|(want, have)| {
        let revision = match want.revision_name.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Some(r),
            None => latest_ready,
        };
        have.revision_name.as_deref() == revision
            && have.tag == want.tag
            && have.percent_or_zero() == want.percent_or_zero()
    })
}

/// Reconciles one Service; `cache` is the Route reconcile's, with which a traffic edit is
/// programmed into the router as the Route's new spec is written.
pub async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>, cache: route::Cache) -> Result<Action, Error> {
    if svc.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.namespace().unwrap_or_default();
    let configs: Api<Configuration> = Api::namespaced(ctx.client.clone(), &ns);
    let routes: Api<Route> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = svc.uid().unwrap_or_default();
    // With a BYO revision name, traffic moves only once the Configuration has stamped it, so a
    // half-applied edit never routes to someone else's revision.
    let byo = svc.spec.template.metadata.name.as_deref().is_some_and(|n| !n.is_empty());
    let want_route = desired_route(&svc);
    // Otherwise a traffic edit goes to the router first, resolved from the Route's spec about to
    // be written, rather than once the Route is stored and its own reconcile runs (which
    // follows, and programs the same; see `route::program_ahead`).
    let ahead = if byo { None } else { route::program_ahead(&want_route, &uid, &ctx, &cache).await? };
    // Should the Route not be written, the router goes back to the stored one.
    let undo = async |failed: bool| {
        if let (true, Some(next)) = (failed, &ahead)
            && let Err(e) = route::forget_ahead(next, &ctx, &cache).await
        {
            tracing::warn!(namespace = %ns, name = %svc.name_any(), error = %e, "could not program the stored route back");
        }
    };
    let ensured =
        shell::ensure_child(&configs, desired_configuration(&svc), &uid, |have, want| have.spec == want.spec).await;
    undo(ensured.is_err()).await;
    let (cfg, written) = ensured?;
    report(&ctx, &svc, "Configuration", written);
    let cfg_current = matches!(&cfg, shell::Ensured::Found(c) if c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation);
    let route = if byo && !cfg_current {
        shell::Ensured::from(shell::get_child(&routes, &svc.name_any(), &uid).await?)
    } else {
        let started = std::time::Instant::now();
        let ensured = shell::ensure_child(&routes, want_route, &uid, |have, want| have.spec == want.spec).await;
        undo(ensured.is_err()).await;
        let (route, written) = ensured?;
        if written.is_some() {
            tracing::debug!(namespace = %ns, name = %svc.name_any(), took = ?started.elapsed(), "route read and written");
        }
        report(&ctx, &svc, "Route", written);
        route
    };
    let status = service_status(&svc, cfg.as_child(), route.as_child(), &super::now());
    shell::patch_status::<Service, _>(&ctx.client, &svc, svc.status.as_ref(), &status).await?;
    Ok(Action::await_change())
}

/// An Event for a child the Service created or updated, as Knative's service reconciler says
/// it (`Created Configuration "hello"`).
fn report(ctx: &Ctx, svc: &Service, kind: &str, written: Option<Written>) {
    let (action, reason) = match written {
        None => return,
        Some(Written::Created) => ("Create", "Created"),
        Some(Written::Updated) => ("Update", "Updated"),
    };
    let message = format!("{reason} {kind} {:?}", svc.name_any());
    ctx.events.publish(Note::normal(svc, component::SERVICE, action, reason, message));
}

#[cfg(test)]
mod tests;
