//! Route → resolved traffic, the route's status (URLs, traffic, conditions), the routing
//! snapshot the router serves, and which revisions must run.
//!
//! All or nothing: a new assignment is published only when every target is ready and has an
//! instance serving; otherwise the status keeps the old traffic and says which target is the
//! problem. The snapshot is published before revisions that lost their last reference are
//! marked `reserve` (and drained), so no request is sent to a revision on its way out.
//!
//! A Service's traffic edit is programmed once before this: by the Service reconcile, as it
//! writes the Route ([`program_ahead`]).

mod ahead;
mod labeler;
pub mod rollout;
pub mod rules;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use serde_json::json;
use sluice_api::RevisionKey;
use sluice_api::conditions::{self, ConditionUpdate, set_condition};
use sluice_api::{Addressable, Configuration, Revision, Route, RouteStatus, TrafficRule, TrafficTarget, labels};

use super::events::{Note, component};
use super::index::{Facet, Indexed};
use super::{Ctx, Error, names, publish, shell};
pub use ahead::{forget_ahead, program_ahead};
pub use labeler::RoutingChange;
use traffic::{Lookup, TargetError};

/// What an assignment gives a route: its traffic and its rules, every target resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assigned {
    /// `status.traffic`, before URLs are added.
    pub traffic: Vec<TrafficTarget>,
    /// `status.rules`.
    pub rules: Vec<TrafficRule>,
}

/// The route's status after an assignment attempt.
pub fn route_status(route: &Route, resolved: Result<&Assigned, &TargetError>, domain: &str, now: &str) -> RouteStatus {
    let mut s = route.status.clone().unwrap_or_default();
    let (name, ns) = (route.name_any(), route.namespace().unwrap_or_default());
    let private = names::is_cluster_local(route.labels());
    s.observed_generation = route.metadata.generation;
    s.url = Some(names::url(&names::route_host(&name, &ns, domain, private)));
    s.address = Some(Addressable {
        url: Some(names::url(&format!("{name}.{ns}.{}", names::CLUSTER_LOCAL))),
        extra: Default::default(),
    });
    match resolved {
        Ok(assigned) => {
            s.rules = assigned.rules.clone();
            s.traffic = assigned
                .traffic
                .iter()
                .map(|t| {
                    let mut t = t.clone();
                    t.url = t
                        .tag
                        .as_deref()
                        .map(|tag| names::url(&names::route_host(&names::tag_name(tag, &name), &ns, domain, private)));
                    t
                })
                .collect();
            set_condition(&mut s.conditions, ConditionUpdate::ok("AllTrafficAssigned"), now);
            set_condition(&mut s.conditions, ConditionUpdate::ok("IngressReady"), now);
        }
        Err(e) => {
            set_condition(&mut s.conditions, e.condition(), now);
            if s.traffic.is_empty() {
                set_condition(
                    &mut s.conditions,
                    ConditionUpdate::unknown(
                        "IngressReady",
                        "IngressNotConfigured",
                        "Ingress has not yet been reconciled.",
                    ),
                    now,
                );
            }
        }
    }
    let mut tls = ConditionUpdate::ok("CertificateProvisioned");
    tls.reason = "TLSNotEnabled".into();
    tls.message = "external-domain-tls is not enabled".into();
    set_condition(&mut s.conditions, tls, now);
    let ready = conditions::summarize(
        &s.conditions,
        "Ready",
        &["AllTrafficAssigned", "IngressReady", "CertificateProvisioned"],
    );
    set_condition(&mut s.conditions, ready, now);
    if let Ok(json) = serde_json::to_value(route) {
        sluice_api::honoured::set_condition(&mut s.conditions, sluice_api::Kind::Route, &json, now);
    }
    s
}

/// The Configurations and Revisions a Route reconcile resolves its traffic against, kept by
/// the watches that trigger Route reconciles when they change, each with its index (see
/// [`revision_facets`], [`configuration_facets`]); and the Routes their Service programmed
/// ahead of the store ([`program_ahead`]). The Service and Route reconciles share one.
#[derive(Clone)]
pub struct Cache {
    /// Every Configuration.
    pub configurations: Indexed<Configuration>,
    /// Every Revision.
    pub revisions: Indexed<Revision>,
    /// Every Route (the Route controller's own cache).
    pub routes: Store<Route>,
    ahead: Arc<ahead::Ahead>,
}

// === impl Cache ===

impl Cache {
    /// Over the caches `configurations`, `revisions` and `routes`.
    pub fn new(configurations: Indexed<Configuration>, revisions: Indexed<Revision>, routes: Store<Route>) -> Self {
        Self { configurations, revisions, routes, ahead: Arc::default() }
    }

    /// Caches filled by watches of their own, which a spawned task drives until `stop`: for a
    /// Route reconciled outside the controller (the controller's caches come with the watches
    /// that trigger its reconciles).
    pub fn watched(client: &kube::Client, stop: tokio_util::sync::CancellationToken) -> Self {
        let (configurations, configuration_events) = super::cached::<Configuration>(client, configuration_facets);
        let (revisions, revision_events) = super::cached::<Revision>(client, revision_facets);
        let (routes, route_events) = super::cached::<Route>(client, route_facets);
        tokio::spawn(async move {
            let drained = futures::future::join3(
                configuration_events.for_each(|_| async {}),
                revision_events.for_each(|_| async {}),
                route_events.for_each(|_| async {}),
            );
            tokio::select! {
                _ = drained => {}
                () = stop.cancelled() => {}
            }
        });
        Self::new(configurations, revisions, routes.store)
    }
}

/// A changed object a Route may resolve its traffic against.
#[derive(Debug)]
pub enum Target {
    /// A Revision.
    Revision {
        /// Its name.
        name: String,
        /// Its Configuration (label `serving.knative.dev/configuration`).
        configuration: Option<String>,
        /// The Routes that reference it (annotation `serving.knative.dev/routes`).
        routes: Option<String>,
    },
    /// A Configuration.
    Configuration {
        /// Its name.
        name: String,
    },
}

/// True when `route`'s traffic can depend on `target`: a traffic target or rule of its spec
/// names the Revision or Configuration (or the Revision's Configuration), its status routes to
/// the Revision (a rollout in progress, a revision being drained), or the Revision says the
/// route references it (its labels are the route's to update).
pub fn depends_on(route: &Route, target: &Target) -> bool {
    match target {
        Target::Configuration { name } => spec_targets(route).any(|t| t.configuration_name.as_deref() == Some(name)),
        Target::Revision { name, configuration, routes } => {
            references_revision(route, name, configuration.as_deref(), routes.as_deref())
        }
    }
}

/// The traffic targets of `route`'s spec, its rules' included.
fn spec_targets(route: &Route) -> impl Iterator<Item = &TrafficTarget> + Clone {
    route.spec.traffic.iter().chain(route.spec.rules.iter().flat_map(|r| r.traffic.iter()))
}

/// [`depends_on`] for the Revision `name` of Configuration `configuration`, whose routes
/// annotation is `routes`.
fn references_revision(route: &Route, name: &str, configuration: Option<&str>, routes: Option<&str>) -> bool {
    let named = |t: &TrafficTarget| {
        t.revision_name.as_deref() == Some(name)
            || (configuration.is_some() && t.configuration_name.as_deref() == configuration)
    };
    all_targets(route).any(named) || lists(routes, route)
}

/// True when a `serving.knative.dev/routes` annotation lists `route`.
fn lists(routes: Option<&str>, route: &Route) -> bool {
    listed(routes).any(|n| Some(n) == route.metadata.name.as_deref())
}

/// The Route names a `serving.knative.dev/routes` annotation lists.
fn listed(routes: Option<&str>) -> impl Iterator<Item = &str> {
    routes.into_iter().flat_map(|r| r.split(',')).map(str::trim)
}

/// The traffic targets of `route`'s spec and status, rules included.
fn all_targets(route: &Route) -> impl Iterator<Item = &TrafficTarget> {
    let status = route.status.as_ref();
    let status_targets =
        status.into_iter().flat_map(|s| s.traffic.iter().chain(s.rules.iter().flat_map(|r| r.traffic.iter())));
    spec_targets(route).chain(status_targets)
}

/// True when a reconcile of `route` reads `rev`: the route can depend on it (see
/// [`depends_on`]). Those are the Revisions its traffic resolves to and its labels go on or
/// come off; the namespace's others play no part.
pub fn reads_revision(route: &Route, rev: &Revision) -> bool {
    let configuration = rev.labels().get(labels::CONFIGURATION).map(String::as_str);
    let routes = rev.annotations().get(labels::ROUTES).map(String::as_str);
    rev.metadata.name.as_deref().is_some_and(|name| references_revision(route, name, configuration, routes))
}

/// True when a reconcile of `route` reads `cfg`: its spec follows it, or it lists the route
/// (the route's annotation is to come off).
pub fn reads_configuration(route: &Route, cfg: &Configuration) -> bool {
    let name = cfg.metadata.name.as_deref();
    spec_targets(route).any(|t| t.configuration_name.is_some() && t.configuration_name.as_deref() == name)
        || lists(cfg.annotations().get(labels::ROUTES).map(String::as_str), route)
}

/// What a Revision is indexed by: its Configuration, the Routes its annotation lists and its
/// controlling owner (a Configuration reconcile reads the Revisions it controls).
pub fn revision_facets(rev: &Revision) -> Vec<(Facet, String)> {
    let configuration = rev.labels().get(labels::CONFIGURATION).map(|c| (Facet::Configuration, c.clone()));
    let routes = listed(rev.annotations().get(labels::ROUTES).map(String::as_str)).map(|r| (Facet::ListedBy, r.into()));
    let owners =
        rev.owner_references().iter().filter(|o| o.controller == Some(true)).map(|o| (Facet::Owner, o.uid.clone()));
    configuration.into_iter().chain(routes).chain(owners).collect()
}

/// What a Configuration is indexed by: the Routes its annotation lists.
pub fn configuration_facets(cfg: &Configuration) -> Vec<(Facet, String)> {
    listed(cfg.annotations().get(labels::ROUTES).map(String::as_str)).map(|r| (Facet::ListedBy, r.into())).collect()
}

/// What a Route is indexed by: the Revisions and Configurations its traffic and rules name,
/// in its spec and its status (what [`depends_on`] looks at, but for the routes annotation,
/// which names the Route itself).
pub fn route_facets(route: &Route) -> Vec<(Facet, String)> {
    all_targets(route)
        .flat_map(|t| {
            let revision = t.revision_name.clone().map(|n| (Facet::RevisionRef, n));
            revision.into_iter().chain(t.configuration_name.clone().map(|n| (Facet::ConfigurationRef, n)))
        })
        .collect()
}

/// The Routes of namespace `ns` in `routes` that depend on `target` (see [`depends_on`]), found
/// through the index: the Routes naming it, or the Revision's Configuration, and those its
/// routes annotation lists.
pub fn dependents(routes: &Indexed<Route>, ns: &str, target: &Target) -> Vec<Arc<Route>> {
    let mut found: BTreeMap<String, Arc<Route>> = BTreeMap::new();
    let mut add = |r: Arc<Route>| {
        if depends_on(&r, target) {
            found.insert(r.name_any(), r);
        }
    };
    match target {
        Target::Configuration { name } => routes.with(ns, Facet::ConfigurationRef, name).into_iter().for_each(&mut add),
        Target::Revision { name, configuration, routes: listing } => {
            routes.with(ns, Facet::RevisionRef, name).into_iter().for_each(&mut add);
            if let Some(c) = configuration {
                routes.with(ns, Facet::ConfigurationRef, c).into_iter().for_each(&mut add);
            }
            listed(listing.as_deref()).filter_map(|n| routes.get(ns, n)).for_each(&mut add);
        }
    }
    found.into_values().collect()
}

/// The cached Revisions of namespace `ns` a reconcile of `route` reads ([`reads_revision`]), in
/// name order, once the cache holds the first full list (a Route resolved against a cache
/// still filling would see its targets missing). Found through the index, then each tested:
/// the revisions its traffic names, those of the Configurations it names, and those listing
/// it. Only those are copied: a copy (or a filter) of the whole namespace per reconcile is N²
/// work for N services.
pub(super) async fn revisions_read(cache: &Indexed<Revision>, ns: &str, route: &Route) -> Result<Vec<Revision>, Error> {
    cache.ready().await?;
    let mut found: BTreeMap<String, Arc<Revision>> = BTreeMap::new();
    for t in all_targets(route) {
        if let Some(rev) = t.revision_name.as_deref().and_then(|n| cache.get(ns, n)) {
            found.insert(rev.name_any(), rev);
        }
        if let Some(cfg) = t.configuration_name.as_deref() {
            found.extend(cache.with(ns, Facet::Configuration, cfg).into_iter().map(|r| (r.name_any(), r)));
        }
    }
    if let Some(name) = route.metadata.name.as_deref() {
        found.extend(cache.with(ns, Facet::ListedBy, name).into_iter().map(|r| (r.name_any(), r)));
    }
    Ok(found.into_values().filter(|r| reads_revision(route, r)).map(|r| Revision::clone(&r)).collect())
}

/// The cached Configurations of namespace `ns` a reconcile of `route` reads
/// ([`reads_configuration`]), in name order, found as [`revisions_read`] finds Revisions.
pub(super) async fn configurations_read(
    cache: &Indexed<Configuration>,
    ns: &str,
    route: &Route,
) -> Result<Vec<Configuration>, Error> {
    cache.ready().await?;
    let mut found: BTreeMap<String, Arc<Configuration>> = BTreeMap::new();
    for cfg in spec_targets(route).filter_map(|t| t.configuration_name.as_deref()).filter_map(|n| cache.get(ns, n)) {
        found.insert(cfg.name_any(), cfg);
    }
    if let Some(name) = route.metadata.name.as_deref() {
        found.extend(cache.with(ns, Facet::ListedBy, name).into_iter().map(|c| (c.name_any(), c)));
    }
    Ok(found.into_values().filter(|c| reads_configuration(route, c)).map(|c| Configuration::clone(&c)).collect())
}

/// Reads again from the API the object `err` is about, in place of the cached one in
/// `configurations` or `revisions`; true when it differed (so resolving again may succeed).
async fn refresh(
    err: &TargetError,
    configs: &Api<Configuration>,
    revs: &Api<Revision>,
    configurations: &mut Vec<Configuration>,
    revisions: &mut Vec<Revision>,
) -> Result<bool, Error> {
    match err {
        TargetError::Missing { kind: "Configuration", name } | TargetError::ConfigurationNotReady { name, .. } => {
            refresh_one(configs, name, configurations).await
        }
        TargetError::Missing { name, .. }
        | TargetError::RevisionNotReady { name, .. }
        | TargetError::RevisionNotOwned { revision: name, .. } => refresh_one(revs, name, revisions).await,
    }
}

/// Replaces the object `name` in `objects` by what the API has now; true when that differs.
async fn refresh_one<K>(api: &Api<K>, name: &str, objects: &mut Vec<K>) -> Result<bool, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let fresh = api.get_opt(name).await?;
    let at = objects.iter().position(|o| o.meta().name.as_deref() == Some(name));
    let version = |o: &K| o.meta().resource_version.clone();
    let changed = at.map(|i| version(&objects[i])) != fresh.as_ref().map(version);
    match (at, fresh) {
        (Some(i), Some(fresh)) => objects[i] = fresh,
        (Some(i), None) => {
            objects.remove(i);
        }
        (None, Some(fresh)) => objects.push(fresh),
        (None, None) => {}
    }
    Ok(changed)
}

/// How many objects a reconcile reads again from the API before it accepts that a target
/// cannot take traffic (a Configuration and then its latest ready Revision, each changed).
const REFRESHES: usize = 4;

/// Whether revision `name` of namespace `ns` can take traffic: a ready revision can once an
/// instance serves it, or when the autoscaler has it at zero on purpose (requests then wait at
/// its gate, which wakes it).
fn serving<'a>(ctx: &'a Ctx, ns: &'a str) -> impl Fn(&str) -> bool + Sync + 'a {
    move |name: &str| ctx.scaler.health(&RevisionKey::new(ns, name)).is_some_and(|h| h.ready > 0 || h.desired == 0)
}

/// What resolving `route` against `lookup` at `now_ms` gives: its traffic and rules (a rollout
/// stepped), the rollout's state, and when its next step is due.
type Resolved = (Result<Assigned, TargetError>, Option<rollout::Rollout>, Option<Duration>);

/// Resolves `route`'s traffic and rules against `lookup`, stepping a rollout in progress.
fn assign(route: &Route, ctx: &Ctx, lookup: &Lookup<'_>, now_ms: i64) -> Resolved {
    let traffic = match traffic::resolve(route, lookup) {
        Ok(traffic) => traffic,
        Err(e) => return (Err(e), None, None),
    };
    let previous = route
        .status
        .as_ref()
        .and_then(|s| s.extra.get(rollout::STATUS_KEY))
        .and_then(|v| serde_json::from_value::<rollout::Rollout>(v.clone()).ok());
    // The route's own annotation, else config-network's default.
    let duration = rollout_duration(route).or_else(|| ctx.rollout_default.get());
    let stepped = rollout::step(&route.spec.traffic, traffic, previous.as_ref(), duration, now_ms);
    // Rules resolve against the traffic as assigned (a tag names its revision there).
    match rules::resolve(route, &stepped.traffic, lookup) {
        Ok(rules) => (Ok(Assigned { traffic: stepped.traffic, rules }), stepped.rollout, stepped.next),
        Err(e) => (Err(e), None, None),
    }
}

/// Reconciles one Route.
pub async fn reconcile(route: Arc<Route>, ctx: Arc<Ctx>, cache: Cache) -> Result<Action, Error> {
    if route.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = route.namespace().unwrap_or_default();
    let configs: Api<Configuration> = Api::namespaced(ctx.client.clone(), &ns);
    let revs: Api<Revision> = Api::namespaced(ctx.client.clone(), &ns);
    let serving = serving(&ctx, &ns);
    let mut configurations = configurations_read(&cache.configurations, &ns, &route).await?;
    let mut revisions = revisions_read(&cache.revisions, &ns, &route).await?;
    // The caches can lag a change just made (a Revision created, then its Configuration's
    // status written, seen in the other order): before a target counts as missing or not
    // ready, the API is asked about it.
    for _ in 0..REFRESHES {
        let lookup = Lookup { configurations: &configurations, revisions: &revisions, serving: &serving };
        let Err(e) = traffic::resolve(&route, &lookup) else { break };
        if !refresh(&e, &configs, &revs, &mut configurations, &mut revisions).await? {
            break;
        }
    }
    let lookup = Lookup { configurations: &configurations, revisions: &revisions, serving: &serving };
    let (resolved, rollout, next_step) = assign(&route, &ctx, &lookup, jiff::Timestamp::now().as_millisecond());
    let mut status = route_status(&route, resolved.as_ref(), &ctx.domain, &super::now());
    if resolved.is_ok() {
        with_rollout(&mut status, rollout.as_ref(), next_step.is_some(), &super::now());
    }
    // Program the router before the status says so, and before anything is drained; unless
    // this Route's Service has programmed a newer generation ahead of its write (this reconcile
    // started before that write, and the newer one's reconcile follows).
    let spec = publish::route_config(&route, &status.traffic, &status.rules, &revisions, &ctx.domain);
    let uid = route.uid().unwrap_or_default();
    let generation = route.metadata.generation.unwrap_or(0);
    if !cache.ahead.program(&uid, generation, false, || ctx.publisher.set_route(&uid, spec)) {
        tracing::debug!(namespace = %ns, name = %route.name_any(), generation, "route older than the one programmed ahead; left for the newer one's reconcile");
        return Ok(Action::await_change());
    }
    tracing::debug!(namespace = %ns, name = %route.name_any(), generation, "route programmed");
    let routes: Api<Route> = Api::namespaced(ctx.client.clone(), &ns);
    shell::publish_notes(&routes, &*route, &ctx.events, |r| notes(r, &status)).await;
    shell::patch_status::<Route, _>(&ctx.client, &route, route.status.as_ref(), &status).await?;

    let mut referenced = traffic::wanted_revisions(&route, &lookup);
    let rule_targets = status.rules.iter().flat_map(|r| r.traffic.iter());
    referenced.extend(status.traffic.iter().chain(rule_targets).filter_map(|t| t.revision_name.clone()));
    label(&revs, &route.name_any(), &referenced, &revisions, true).await?;
    label(&configs, &route.name_any(), &traffic::wanted_configurations(&route), &configurations, false).await?;
    Ok(match resolved {
        // Waiting on a target: its own events will bring us back; this is a safety net.
        Err(e) if !e.is_failure() => Action::requeue(Duration::from_secs(5)),
        // A rollout step is due then.
        Ok(_) => next_step.map_or_else(Action::await_change, Action::requeue),
        Err(_) => Action::await_change(),
    })
}

/// The route's `serving.knative.dev/rollout-duration` (validated at admission as whole seconds).
fn rollout_duration(route: &Route) -> Option<Duration> {
    let text = route.annotations().get(labels::ROLLOUT_DURATION)?;
    let ns = sluice_api::validation::duration::parse(text.trim())
        .or_else(|| text.trim().parse::<i64>().ok().map(|s| s.saturating_mul(1_000_000_000)))?;
    u64::try_from(ns).ok().map(Duration::from_nanos)
}

/// Records the rollout state in `status.rollout` and, while a rollout is in progress, says so
/// as Knative does: IngressReady (and so Ready) Unknown with `RolloutInProgress`.
fn with_rollout(status: &mut RouteStatus, rollout: Option<&rollout::Rollout>, in_progress: bool, now: &str) {
    match rollout.and_then(|r| serde_json::to_value(r).ok()) {
        Some(value) => status.extra.insert(rollout::STATUS_KEY.into(), value),
        None => status.extra.remove(rollout::STATUS_KEY),
    };
    if in_progress {
        set_condition(
            &mut status.conditions,
            ConditionUpdate::unknown(
                "IngressReady",
                "RolloutInProgress",
                "A gradual rollout of the latest revision is in progress.",
            ),
            now,
        );
        let ready = conditions::summarize(
            &status.conditions,
            "Ready",
            &["AllTrafficAssigned", "IngressReady", "CertificateProvisioned"],
        );
        set_condition(&mut status.conditions, ready, now);
    }
}

/// The Events a status change is worth: the traffic moved (the router now splits it another
/// way), or the traffic could not be assigned (again, for another reason).
pub fn notes(route: &Route, next: &RouteStatus) -> Vec<Note> {
    let before = route.status.clone().unwrap_or_default();
    let mut out = Vec::new();
    let split = |traffic: &[TrafficTarget]| {
        traffic.iter().map(|t| (t.revision_name.clone(), t.percent_or_zero(), t.tag.clone())).collect::<Vec<_>>()
    };
    if !next.traffic.is_empty() && split(&next.traffic) != split(&before.traffic) {
        let parts: Vec<String> = next
            .traffic
            .iter()
            .map(|t| {
                let tag = t.tag.as_deref().map(|tag| format!(" (tag {tag})")).unwrap_or_default();
                format!("{}% to {}{tag}", t.percent_or_zero(), t.revision_name.as_deref().unwrap_or("?"))
            })
            .collect();
        let message = format!("Traffic now goes {}", parts.join(", "));
        out.push(Note::normal(route, component::ROUTE, "Update", "TrafficMoved", message));
    }
    if let Some(message) = rules_moved(&before.rules, &next.rules) {
        out.push(Note::normal(route, component::ROUTE, "Update", "RulesMoved", message));
    }
    let failed = |s: &RouteStatus| {
        conditions::find(&s.conditions, "AllTrafficAssigned")
            .filter(|c| c.status == conditions::ConditionStatus::False)
            .map(|c| (c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
    };
    if let Some((reason, message)) = failed(next)
        && failed(&before).as_ref().map(|(r, _)| r) != Some(&reason)
    {
        let reason = if reason.is_empty() { "TrafficNotAssigned".to_string() } else { reason };
        out.push(Note::warning(route, component::ROUTE, "Update", reason, message));
    }
    out
}

/// What the router now does with the route's rules, when they changed (added, removed,
/// reordered, matching otherwise or sending to other revisions).
fn rules_moved(before: &[TrafficRule], next: &[TrafficRule]) -> Option<String> {
    if before == next {
        return None;
    }
    if next.is_empty() {
        return Some("No rules now: all traffic goes by the split".into());
    }
    let parts: Vec<String> = next
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = r.name.clone().unwrap_or_else(|| format!("rules[{i}]"));
            let split: Vec<String> = r
                .traffic
                .iter()
                .filter(|t| t.percent_or_zero() > 0)
                .map(|t| format!("{}% to {}", t.percent_or_zero(), t.revision_name.as_deref().unwrap_or("?")))
                .collect();
            format!("{name}: {}", split.join(", "))
        })
        .collect();
    // Kubernetes refuses an Event message over 1,024 bytes: name what fits, count the rest.
    let mut message = String::from("Rules now send ");
    for (i, part) in parts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        if message.len() + sep.len() + part.len() > RULES_MESSAGE_LIMIT {
            message.push_str(&format!("; and {} more rule(s)", parts.len() - i));
            break;
        }
        message.push_str(sep);
        message.push_str(part);
    }
    Some(message)
}

/// Room for the rules in a `RulesMoved` message, leaving space for the count of the rest.
const RULES_MESSAGE_LIMIT: usize = 960;

/// Applies the labeler's changes for `route` over `objects`.
pub async fn label<K>(
    api: &Api<K>,
    route: &str,
    referenced: &BTreeSet<String>,
    objects: &[K],
    with_state: bool,
) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for change in labeler::changes(route, referenced, objects, with_state) {
        let routes = if change.routes.is_empty() { serde_json::Value::Null } else { change.routes.clone().into() };
        let mut patch = json!({"metadata": {"annotations": {labels::ROUTES: routes}}});
        if let Some(state) = change.state {
            patch["metadata"]["labels"] = json!({labels::ROUTING_STATE: state});
            patch["metadata"]["annotations"][labels::ROUTING_STATE_MODIFIED] = super::now().into();
        }
        match api.patch(&change.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            // Deleted meanwhile: nothing to label.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
