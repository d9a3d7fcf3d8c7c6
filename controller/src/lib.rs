//! The reconcilers, run by `kube::runtime::Controller` against any Kubernetes-compatible API
//! server (Sluice's embedded one here, a cluster's later): Service, Configuration, Route and
//! Revision. Each decision is a pure function in its module; the async shells apply them.
//!
//! The controller reaches the world through two ports in [`Ctx`]: a [`Scaler`] that runs a
//! revision's instances (the local process runtime today, Deployments later) and a
//! [`RoutePublisher`] that takes each Route's routing state (the embedded router's table).
//! It links neither the store nor the runtime; the binary wires them in.

pub mod autoscale;
pub mod configuration;
pub mod deadline;
pub mod events;
mod figures;
pub mod index;
mod janitor;
pub mod names;
pub mod publish;
pub mod revision;
pub mod route;
pub mod service;
mod shell;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use sluice_api::scale::Scaler;
use sluice_api::{Configuration, Revision, RevisionKey, Route, Service};
use sluice_router::publish::RoutePublisher;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::figures::workqueue::WorkQueue;
use crate::index::{Facets, Indexed};

/// What every reconciler shares.
pub struct Ctx {
    /// The API client.
    pub client: kube::Client,
    /// Runs revision instances and reports on them.
    pub scaler: Arc<dyn Scaler>,
    /// Takes each Route's routing state.
    pub publisher: Arc<dyn RoutePublisher>,
    /// Decides each revision's scale (the one writer of it).
    pub autoscaling: Arc<autoscale::Autoscaling>,
    /// Domain of route URLs.
    pub domain: String,
    /// How long a revision may take to become ready the first time.
    pub progress_deadline: deadline::ProgressDeadline,
    /// Reports what the reconcilers do as Kubernetes Events.
    pub events: events::Recorder,
    /// `config-network`'s `rollout-duration`, for routes without the annotation.
    pub rollout_default: route::rollout::RolloutDefault,
}

/// A reconcile that did not finish; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// An object did not (de)serialize.
    #[error("object encoding failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The watch filling a cache the reconcile reads has stopped (the controller is shutting
    /// down).
    #[error("the cache of watched objects is gone")]
    CacheGone,
}

/// Now, as condition and annotation timestamps are written (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn error_policy<K>(obj: Arc<K>, err: &Error, _ctx: Arc<Ctx>) -> Action
where
    K: kube::Resource<DynamicType = ()>,
{
    let (kind, name) = (K::kind(&()), obj.meta().name.as_deref().unwrap_or(""));
    match err {
        // Someone wrote the object since we read it: optimistic concurrency at work, retry
        // soon with what is there now.
        Error::Kube(kube::Error::Api(e)) if e.code == 409 => {
            tracing::debug!(%kind, %name, "conflict; retrying");
            Action::requeue(Duration::from_millis(50))
        }
        // Deleted while being reconciled (its status write found nothing): the retry finds
        // it gone from the cache and is dropped.
        Error::Kube(kube::Error::Api(e)) if e.code == 404 && e.details.as_ref().is_some_and(|d| d.name == name) => {
            tracing::debug!(%kind, %name, "deleted while reconciling");
            Action::requeue(Duration::from_millis(500))
        }
        _ => {
            tracing::warn!(%kind, %name, error = %err, "reconcile failed; retrying");
            Action::requeue(Duration::from_millis(500))
        }
    }
}

/// A controller's own watch of `K` (as `Controller::new` makes it), each object counted on
/// `queue` as requested, and the cache it fills.
fn own<K>(
    queue: &WorkQueue,
    client: &kube::Client,
) -> (impl Stream<Item = Result<K, watcher::Error>> + Send + 'static, Store<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let objects = reflector::reflector(writer, watcher(Api::<K>::all(client.clone()), watcher::Config::default()));
    (queue.own(objects.applied_objects()), reader)
}

/// As [`own`], the cache indexed by `facets`.
fn own_indexed<K>(
    queue: &WorkQueue,
    client: &kube::Client,
    facets: Facets<K>,
) -> (impl Stream<Item = Result<K, watcher::Error>> + Send + 'static, Indexed<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let indexed = Indexed::new(reader, facets);
    let events = reflector::reflector(writer, watcher(Api::<K>::all(client.clone()), watcher::Config::default()));
    (queue.own(indexed.reflect(events).applied_objects()), indexed)
}

/// A watch of every `K` (as `Controller::watches` makes it, deletions included) that keeps a
/// cache of them, indexed by `facets`, up to date; and the cache.
pub(crate) fn cached<K>(
    client: &kube::Client,
    facets: Facets<K>,
) -> (Indexed<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let indexed = Indexed::new(reader, facets);
    let events = reflector::reflector(writer, watcher(Api::<K>::all(client.clone()), watcher::Config::default()));
    let events = indexed.reflect(events).touched_objects();
    (indexed, events)
}

/// A metadata-only watch of the `C`s a controller owns (as `Controller::owns` makes it).
fn children<C>(
    client: &kube::Client,
) -> impl Stream<Item = Result<PartialObjectMeta<C>, watcher::Error>> + Send + 'static
where
    C: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watcher(Api::<PartialObjectMeta<C>>::all(client.clone()), watcher::Config::default()).touched_objects()
}

/// `reconcile`, taking each object out of `queue` as its reconcile starts.
fn started<K, F>(
    queue: &WorkQueue,
    mut reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> F,
) -> impl FnMut(Arc<K>, Arc<Ctx>) -> F
where
    K: kube::Resource,
{
    let queue = queue.clone();
    move |obj, ctx| {
        queue.started(&*obj);
        reconcile(obj, ctx)
    }
}

/// Runs every controller until `shutdown`; `health` carries the runtime's "this revision's
/// health changed" notices, `scaled` the autoscaler's "this revision's scale changed".
pub async fn run(
    ctx: Arc<Ctx>,
    health: UnboundedReceiver<RevisionKey>,
    scaled: tokio::sync::mpsc::Receiver<RevisionKey>,
    shutdown: CancellationToken,
) {
    let client = ctx.client.clone();
    // Each controller is built from its own streams (as `Controller::new`/`owns` build them)
    // so its work-queue gauge sees every trigger go in; each reconcile takes it out.

    // The Revisions and Configurations that trigger Route reconciles also fill the caches those
    // reconciles read, so a reconcile reads memory rather than listing a namespace through the
    // API; each cache is updated before its change triggers anything. The Service reconcile
    // shares them, to program a traffic edit as it writes the Route.
    let (revision_cache, revision_events) = cached::<Revision>(&client, route::revision_facets);
    let (configuration_cache, configuration_events) = cached::<Configuration>(&client, route::configuration_facets);
    let route_queue = WorkQueue::new("Route");
    let (route_objects, route_index) = own_indexed::<Route>(&route_queue, &client, route::route_facets);
    let route_reader = route_index.store.clone();
    let cache = route::Cache::new(configuration_cache, revision_cache, route_reader.clone());

    let q = WorkQueue::new("Service");
    let (objects, reader) = own::<Service>(&q, &client);
    let service_cache = cache.clone();
    let services = Controller::for_stream(objects, reader)
        .owns_stream(q.owners::<Service, _, _>(children::<Configuration>(&client)))
        .owns_stream(q.owners::<Service, _, _>(children::<Route>(&client)))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            started(&q, move |o, c| figures::reconcile("Service", service::reconcile(o, c, service_cache.clone()))),
            error_policy,
            ctx.clone(),
        )
        .for_each(q.settle());

    let q = WorkQueue::new("Configuration");
    let (objects, reader) = own::<Configuration>(&q, &client);
    // The Revisions that trigger Configuration reconciles also fill the cache those reconciles
    // read, instead of a LIST of the namespace each.
    let (own_revisions, own_revision_events) = cached::<Revision>(&client, route::revision_facets);
    let configurations = Controller::for_stream(objects, reader)
        .owns_stream(q.owners::<Configuration, _, _>(own_revision_events))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            started(&q, move |o, c| {
                figures::reconcile("Configuration", configuration::reconcile(o, c, own_revisions.clone()))
            }),
            error_policy,
            ctx.clone(),
        )
        .for_each(q.settle());

    let q = route_queue;
    let route_controller = Controller::for_stream(route_objects, route_reader);
    let queue = q.clone();
    // A Revision or Configuration change re-resolves only the Routes of its namespace that can
    // depend on it (see `route::depends_on`), not every Route there: with many services, every
    // change would otherwise reconcile them all. The index finds them without a pass over
    // every Route.
    let dependents = move |ns: Option<String>, target: route::Target| {
        let routes = route::dependents(&route_index, &ns.unwrap_or_default(), &target)
            .iter()
            .map(|r| ObjectRef::from_obj(&**r))
            .collect::<Vec<_>>();
        routes.iter().for_each(|r| queue.requested(r));
        routes
    };
    let by_revision = dependents.clone();
    let by_configuration = dependents;
    let routes = route_controller
        .watches_stream(revision_events, move |rev: Revision| {
            let target = route::Target::Revision {
                name: rev.name_any(),
                configuration: rev.labels().get(sluice_api::labels::CONFIGURATION).cloned(),
                routes: rev.annotations().get(sluice_api::labels::ROUTES).cloned(),
            };
            by_revision(rev.metadata.namespace, target)
        })
        .watches_stream(configuration_events, move |cfg: Configuration| {
            by_configuration(cfg.metadata.namespace.clone(), route::Target::Configuration { name: cfg.name_any() })
        })
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            started(&q, move |o, c| figures::reconcile("Route", route::reconcile(o, c, cache.clone()))),
            error_policy,
            ctx.clone(),
        )
        .for_each(q.settle());

    let q = WorkQueue::new("Revision");
    let health = futures::stream::select(
        tokio_stream::wrappers::UnboundedReceiverStream::new(health),
        tokio_stream::wrappers::ReceiverStream::new(scaled),
    )
    .map(|key: RevisionKey| ObjectRef::<Revision>::new(&key.name).within(&key.namespace));
    let (objects, reader) = own::<Revision>(&q, &client);
    let revisions = Controller::for_stream(objects, reader)
        .reconcile_on(q.triggers(health))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(started(&q, |o, c| figures::reconcile("Revision", revision::reconcile(o, c))), error_policy, ctx.clone())
        .for_each(q.settle());

    let janitor = janitor::run(ctx.clone(), shutdown.clone());
    tokio::join!(services, configurations, routes, revisions, janitor);
}

#[cfg(test)]
mod fixtures;
