//! Configuration → exactly one Revision per `spec.template` change (its generation), named
//! `<config>-<00001>` or by the template's BYO name, and the Configuration's status:
//! `latestCreatedRevisionName`, `latestReadyRevisionName` and Ready, by Knative's rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use sluice_api::conditions::{self, ConditionStatus, ConditionUpdate, set_condition};
use sluice_api::{Configuration, ConfigurationStatus, Revision, labels, naming};

use super::events::{Note, component};
use super::index::{Facet, Indexed};
use super::{Ctx, Error, shell};

/// The Revision stamped from `cfg`'s current template.
pub fn desired_revision(cfg: &Configuration, now: &str) -> Revision {
    let template = &cfg.spec.template;
    let generation = cfg.metadata.generation.unwrap_or(0);
    let name = revision_name(cfg);
    let mut l: BTreeMap<String, String> = template.metadata.labels.clone().unwrap_or_default();
    l.insert(labels::CONFIGURATION.into(), cfg.name_any());
    l.insert(labels::CONFIGURATION_GENERATION.into(), generation.to_string());
    l.insert(labels::CONFIGURATION_UID.into(), cfg.uid().unwrap_or_default());
    l.insert(labels::SERVICE.into(), cfg.labels().get(labels::SERVICE).cloned().unwrap_or_default());
    l.insert(labels::SERVICE_UID.into(), cfg.labels().get(labels::SERVICE_UID).cloned().unwrap_or_default());
    // A configuration some route already follows gets revisions that are routable at birth, so
    // they run (and are warm) before the route moves traffic to them.
    let routed = cfg.annotations().get(labels::ROUTES).is_some_and(|r| !r.is_empty());
    l.insert(labels::ROUTING_STATE.into(), if routed { "active" } else { "pending" }.into());
    let mut a: BTreeMap<String, String> = template.metadata.annotations.clone().unwrap_or_default();
    a.insert(labels::ROUTING_STATE_MODIFIED.into(), now.to_string());
    if let Some(creator) =
        cfg.annotations().get(labels::LAST_MODIFIER).or_else(|| cfg.annotations().get(labels::CREATOR))
    {
        a.insert(labels::CREATOR.into(), creator.clone());
    }
    if routed && let Some(routes) = cfg.annotations().get(labels::ROUTES) {
        a.insert(labels::ROUTES.into(), routes.clone());
    }
    Revision {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: cfg.namespace(),
            labels: Some(l),
            annotations: Some(a),
            owner_references: cfg.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The generation a revision was stamped from.
pub fn revision_generation(rev: &Revision) -> i64 {
    rev.labels().get(labels::CONFIGURATION_GENERATION).and_then(|g| g.parse().ok()).unwrap_or(0)
}

/// The revision of `cfg`'s current generation among `owned`, if it exists. With a BYO name,
/// an existing revision of that name is reused when `cfg` controls it and it has the same
/// generation or the same spec (a rollback); otherwise the name is taken.
pub fn latest_created<'a>(
    cfg: &Configuration,
    owned: &'a [Revision],
    all: &'a [Revision],
) -> Result<Option<&'a Revision>, String> {
    let generation = cfg.metadata.generation.unwrap_or(0);
    match cfg.spec.template.metadata.name.as_deref().filter(|n| !n.is_empty()) {
        Some(byo) => match all.iter().find(|r| r.name_any() == byo) {
            None => Ok(None),
            Some(rev) => {
                let ours = shell::controlled_by(rev, &cfg.uid().unwrap_or_default());
                if ours && (revision_generation(rev) == generation || same_spec(&rev.spec, &cfg.spec.template.spec)) {
                    Ok(Some(rev))
                } else {
                    Err(format!("revisions.serving.knative.dev {byo:?} already exists"))
                }
            }
        },
        None => Ok(owned.iter().find(|r| revision_generation(r) == generation)),
    }
}

/// True when a revision stamped from `template` would have `rev`'s spec: equal, counting the
/// `enableServiceLinks: false` a revision gets by default at creation as what an unset
/// template field means (a template changed by an update is not defaulted with it).
fn same_spec(rev: &sluice_api::RevisionSpec, template: &sluice_api::RevisionSpec) -> bool {
    if template.enable_service_links.is_none() && rev.enable_service_links == Some(false) {
        let mut t = template.clone();
        t.enable_service_links = Some(false);
        return *rev == t;
    }
    rev == template
}

/// True when the revision's Ready condition is True.
pub fn is_ready(rev: &Revision) -> bool {
    rev.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, "Ready"))
}

fn ready_condition(rev: &Revision) -> Option<&conditions::Condition> {
    rev.status.as_ref().and_then(|s| conditions::find(&s.conditions, "Ready"))
}

/// The Configuration's status, given the latest created revision (or why it could not be
/// created) and the revisions it owns.
pub fn configuration_status(
    cfg: &Configuration,
    owned: &[Revision],
    created: Result<&Revision, String>,
    now: &str,
) -> ConfigurationStatus {
    let mut status = cfg.status.clone().unwrap_or_default();
    status.observed_generation = cfg.metadata.generation;
    let lcr = match created {
        Err(message) => {
            let msg = format!("Revision creation failed with message: {message}.");
            set_condition(&mut status.conditions, ConditionUpdate::failed("Ready", "RevisionFailed", msg), now);
            return status;
        }
        Ok(lcr) => lcr,
    };
    status.latest_created_revision_name = Some(lcr.name_any());
    // The newest ready revision from the last ready one's generation up to the latest created
    // (a BYO rollback's revision counts first, whatever its generation).
    let floor = status
        .latest_ready_revision_name
        .as_deref()
        .and_then(|n| owned.iter().find(|r| r.name_any() == n))
        .map(revision_generation)
        .unwrap_or(0);
    let mut candidates: Vec<&Revision> = owned.iter().filter(|r| revision_generation(r) >= floor).collect();
    candidates.sort_by_key(|r| std::cmp::Reverse(revision_generation(r)));
    candidates.retain(|r| r.name_any() != lcr.name_any());
    candidates.insert(0, lcr);
    if let Some(ready) = candidates.into_iter().find(|r| is_ready(r)) {
        status.latest_ready_revision_name = Some(ready.name_any());
    }
    let cond = match ready_condition(lcr) {
        Some(c) if c.status == ConditionStatus::False => ConditionUpdate::failed(
            "Ready",
            "RevisionFailed",
            format!("Revision {:?} failed with message: {}.", lcr.name_any(), c.message.clone().unwrap_or_default()),
        ),
        _ if status.latest_ready_revision_name.as_deref() == Some(lcr.name_any().as_str()) => {
            ConditionUpdate::ok("Ready")
        }
        _ => ConditionUpdate::unknown("Ready", "", ""),
    };
    set_condition(&mut status.conditions, cond, now);
    status
}

/// The name of the Revision `cfg`'s current template is stamped as.
pub fn revision_name(cfg: &Configuration) -> String {
    let template = cfg.spec.template.metadata.name.clone().filter(|n| !n.is_empty());
    template.unwrap_or_else(|| naming::revision_name(&cfg.name_any(), cfg.metadata.generation.unwrap_or(0)))
}

/// The revision of `cfg`'s current generation (see [`latest_created`]), given the Revisions
/// `cfg` controls and the one, if any, named as that generation's would be.
fn find_created(cfg: &Configuration, owned: &[Revision], named: &[Revision]) -> Result<Option<Revision>, String> {
    latest_created(cfg, owned, named).map(|r| r.cloned())
}

/// The Revisions of namespace `ns` that `uid` controls, and the one named `name`, from the
/// cache the Revision watch keeps (read once that watch has listed them all), found through
/// its index by owner.
async fn cached(
    cache: &Indexed<Revision>,
    ns: &str,
    uid: &str,
    name: &str,
) -> Result<(Vec<Revision>, Vec<Revision>), Error> {
    cache.ready().await?;
    let owned = cache
        .with(ns, Facet::Owner, uid)
        .iter()
        .filter(|r| shell::controlled_by(&***r, uid))
        .map(|r| Revision::clone(r))
        .collect();
    let named = cache.get(ns, name).map(|r| Revision::clone(&r)).into_iter().collect();
    Ok((owned, named))
}

/// Reconciles one Configuration. Its Revisions are read from `cache` (kept by the watch that
/// triggers these reconciles when a Revision changes), not listed: a list per reconcile costs
/// every Revision of the namespace, so setting up N services would cost N² reads.
pub async fn reconcile(cfg: Arc<Configuration>, ctx: Arc<Ctx>, cache: Indexed<Revision>) -> Result<Action, Error> {
    if cfg.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = cfg.namespace().unwrap_or_default();
    let revisions: Api<Revision> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = cfg.uid().unwrap_or_default();
    let name = revision_name(&cfg);
    let (mut owned, mut named) = cached(&cache, &ns, &uid, &name).await?;
    let mut found = find_created(&cfg, &owned, &named);
    // The cache can lag a Revision just created (or deleted): before one is created, or its
    // name reported taken, the API is asked about that name.
    if !matches!(found, Ok(Some(_))) {
        named = revisions.get_opt(&name).await?.into_iter().collect();
        owned.retain(|r| r.metadata.name.as_deref() != Some(name.as_str()));
        owned.extend(named.iter().filter(|r| shell::controlled_by(*r, &uid)).cloned());
        found = find_created(&cfg, &owned, &named);
    }
    let now = super::now();
    let created = match found {
        Ok(Some(rev)) => Ok(rev),
        Ok(None) => match revisions.create(&PostParams::default(), &desired_revision(&cfg, &now)).await {
            Ok(rev) => {
                let message = format!("Created Revision {:?}", rev.name_any());
                ctx.events.publish(Note::normal(&*cfg, component::CONFIGURATION, "Create", "Created", message));
                Ok(rev)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Err(e.message),
            Err(e) => return Err(e.into()),
        },
        Err(message) => Err(message),
    };
    let status = configuration_status(&cfg, &owned, created.as_ref().map_err(Clone::clone), &now);
    let configurations: Api<Configuration> = Api::namespaced(ctx.client.clone(), &ns);
    shell::publish_notes(&configurations, &*cfg, &ctx.events, |c| notes(c, &status)).await;
    shell::patch_status::<Configuration, _>(&ctx.client, &cfg, cfg.status.as_ref(), &status).await?;
    Ok(Action::await_change())
}

/// The Events a status change is worth, as Knative's configuration reconciler emits them: a
/// new latest ready revision, and a revision that could not be created (once per message).
pub fn notes(cfg: &Configuration, next: &ConfigurationStatus) -> Vec<Note> {
    let before = cfg.status.as_ref();
    let mut out = Vec::new();
    if let Some(ready) = next.latest_ready_revision_name.as_deref()
        && before.and_then(|s| s.latest_ready_revision_name.as_deref()) != Some(ready)
    {
        let message = format!("LatestReadyRevisionName updated to {ready:?}");
        out.push(Note::normal(cfg, component::CONFIGURATION, "Update", "LatestReadyUpdate", message));
    }
    let failed = |s: &ConfigurationStatus| {
        conditions::find(&s.conditions, "Ready")
            .filter(|c| c.status == ConditionStatus::False)
            .and_then(|c| c.message.clone())
            .filter(|m| m.starts_with("Revision creation failed"))
    };
    if let Some(message) = failed(next)
        && before.and_then(failed).as_deref() != Some(message.as_str())
    {
        out.push(Note::warning(cfg, component::CONFIGURATION, "Create", "CreationFailed", message));
    }
    out
}

#[cfg(test)]
mod tests;
