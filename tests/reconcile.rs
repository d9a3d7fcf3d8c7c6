//! The reconcilers called directly, one reconcile at a time, against the real embedded API
//! server running in this process on port 0 (a real store in a temporary directory, real HTTP),
//! with a recording [`Scaler`] and [`RoutePublisher`] in place of the runtime and the router:
//! the paths that the end-to-end tests reach only by luck of timing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use sluice_api::scale::{RevisionHealth, RevisionRun, Scaler};
use sluice_api::{Configuration, Revision, RevisionKey, Route, Service};
use sluice_apiserver::ApiServer;
use sluice_apiserver::auth::Token;
use sluice_apiserver::store::{BUILTIN_NAMESPACES, DEFAULT_HISTORY, Store};
use sluice_controller::autoscale::Autoscaling;
use sluice_controller::deadline::{self, ProgressDeadline};
use sluice_controller::{Ctx, configuration, revision, route, service};
use sluice_router::publish::{RoutePublisher, RouteSpec};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the reconcilers asked of the world.
#[derive(Default)]
struct Recorder {
    scales: Mutex<Vec<(String, usize)>>,
    forgotten: Mutex<Vec<String>>,
    health: Mutex<Option<RevisionHealth>>,
    routes: Mutex<Vec<RouteSpec>>,
}

impl Scaler for Recorder {
    fn set_scale(&self, run: &RevisionRun, scale: usize) {
        self.scales.lock().expect("lock").push((run.key.name.clone(), scale));
    }

    fn forget(&self, key: &RevisionKey, _uid: &str) {
        self.forgotten.lock().expect("lock").push(key.name.clone());
    }

    fn health(&self, _key: &RevisionKey) -> Option<RevisionHealth> {
        self.health.lock().expect("lock").clone()
    }

    fn log_url(&self, key: &RevisionKey) -> String {
        format!("test://{key}")
    }
}

impl RoutePublisher for Recorder {
    fn set_route(&self, _uid: &str, route: RouteSpec) {
        self.routes.lock().expect("lock").push(route);
    }

    fn remove_route(&self, _namespace: &str, _name: &str, _uid: &str) {}

    fn forget_revision(&self, _key: &RevisionKey) {}

    fn set_tag_header_routing(&self, _on: bool) {}

    fn set_http_protocol(&self, _protocol: sluice_router::table::HttpProtocol) {}
}

/// The API server in this process, and a controller context against it.
struct Harness {
    ctx: Arc<Ctx>,
    recorder: Arc<Recorder>,
    /// Every request of `ctx.client`, as "METHOD path?query".
    asked: Arc<Mutex<Vec<String>>>,
    /// While set, `ctx.client`'s writes of Routes go to a path the API does not serve (and fail).
    break_route_writes: Arc<std::sync::atomic::AtomicBool>,
    /// A client whose requests are not recorded, for the caches' watches.
    plain: kube::Client,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("sluice.redb"), DEFAULT_HISTORY).expect("store"));
        store.ensure_namespaces(BUILTIN_NAMESPACES).expect("namespaces");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        let token = Token::generate().expect("token");
        tokio::spawn(ApiServer::new(store, stop.clone(), token.clone()).serve(listener));
        let mut config = kube::Config::new(url.parse().expect("url"));
        config.auth_info.token = Some(token.as_str().to_string().into());
        let plain = kube::Client::try_from(config.clone()).expect("client");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let break_route_writes = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let broken = break_route_writes.clone();
        let record = tower::util::MapRequestLayer::new(move |mut req: http::Request<kube::client::Body>| {
            let line = format!("{} {}", req.method(), req.uri().path_and_query().map_or("", |p| p.as_str()));
            let route_write = req.method() == http::Method::PUT && line.contains("/routes/");
            if route_write && broken.load(std::sync::atomic::Ordering::SeqCst) {
                *req.uri_mut() = "/apis/serving.knative.dev/v1/namespaces/default/nowhere/x".parse().expect("uri");
            }
            log.lock().expect("lock").push(line);
            req
        });
        let client = kube::client::ClientBuilder::try_from(config).expect("client").with_layer(&record).build();
        let recorder = Arc::new(Recorder::default());
        // No requests: the router's counters for revisions nothing routes to.
        let (_pokes, pokes) = tokio::sync::mpsc::channel(1);
        let demand = sluice_router::endpoints::Endpoints::new();
        let (events, writer) = sluice_controller::events::Recorder::new(client.clone());
        tokio::spawn(writer.run(stop.clone()));
        let (autoscaling, _scaled) = Autoscaling::start(recorder.clone(), events.clone(), demand, pokes, stop.clone());
        let ctx = Arc::new(Ctx {
            client,
            scaler: recorder.clone(),
            publisher: recorder.clone(),
            autoscaling,
            domain: "example.com".into(),
            progress_deadline: ProgressDeadline::new(deadline::DEFAULT),
            events,
            rollout_default: Default::default(),
        });
        Self { ctx, recorder, asked, break_route_writes, plain, stop, _dir: dir }
    }

    /// A cache of every Revision, kept by a watch of its own until the harness stops.
    fn revisions(&self) -> sluice_controller::index::Indexed<Revision> {
        route::Cache::watched(&self.plain, self.stop.clone()).revisions
    }

    /// The requests `ctx.client` made since the last call.
    fn asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().expect("lock"))
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ctx.client.clone(), "default")
    }

    async fn create<K>(&self, obj: Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let obj: K = serde_json::from_value(obj).expect("object");
        self.api::<K>().create(&PostParams::default(), &obj).await.expect("create")
    }

    async fn get<K>(&self, name: &str) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>().get(name).await.expect("get")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn configuration_json(name: &str, template_name: Option<&str>) -> Value {
    let mut template = json!({"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}});
    if let Some(n) = template_name {
        template["metadata"] = json!({"name": n});
    }
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
           "metadata": {"name": name, "namespace": "default"}, "spec": {"template": template}})
}

fn revision_json(name: &str) -> Value {
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}})
}

/// The Ready condition's (status, reason, message).
fn ready(status: &Option<impl serde::Serialize>) -> (String, String, String) {
    let s = serde_json::to_value(status).expect("status");
    let c = s["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready")).cloned();
    let c = c.unwrap_or_else(|| panic!("no Ready condition in {s}"));
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

#[tokio::test]
async fn a_revision_name_taken_by_another_owner_fails_the_configuration_until_it_is_freed() {
    let h = Harness::start().await;
    // Someone else created the name the configuration's first revision must have: the create
    // gets 409 from the API server.
    let stray: Revision = h.create(revision_json("hello-00001")).await;
    let cfg: Configuration = h.create(configuration_json("hello", None)).await;
    let action = configuration::reconcile(Arc::new(cfg), h.ctx.clone(), h.revisions()).await.expect("reconciled");
    assert_eq!(action, Action::await_change());

    let cfg: Configuration = h.get("hello").await;
    let (status, reason, message) = ready(&cfg.status);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RevisionFailed"));
    assert!(message.starts_with("Revision creation failed with message: "), "{message}");
    assert!(message.contains("\"hello-00001\" already exists"), "{message}");
    let kept: Revision = h.get("hello-00001").await;
    assert_eq!(kept.uid(), stray.uid(), "the other owner's revision is left alone");
    assert!(kept.owner_references().is_empty());

    // Once the name is free, the next reconcile stamps the configuration's own revision.
    h.api::<Revision>().delete("hello-00001", &DeleteParams::default()).await.expect("delete");
    configuration::reconcile(Arc::new(cfg), h.ctx.clone(), h.revisions()).await.expect("reconciled");
    let rev: Revision = h.get("hello-00001").await;
    let cfg: Configuration = h.get("hello").await;
    assert_eq!(rev.owner_references()[0].uid, cfg.uid().expect("uid"));
    let status = cfg.status.expect("status");
    assert_eq!(status.latest_created_revision_name.as_deref(), Some("hello-00001"));
    assert_eq!(ready(&Some(status)).0, "Unknown", "not ready until the revision is");
}

#[tokio::test]
async fn a_user_named_revision_taken_by_another_owner_is_reported_by_name() {
    let h = Harness::start().await;
    let _: Revision = h.create(revision_json("hello-mine")).await;
    let cfg: Configuration = h.create(configuration_json("hello", Some("hello-mine"))).await;
    configuration::reconcile(Arc::new(cfg), h.ctx.clone(), h.revisions()).await.expect("reconciled");
    let cfg: Configuration = h.get("hello").await;
    let (status, _, message) = ready(&cfg.status);
    assert_eq!(status, "False");
    assert_eq!(
        message,
        "Revision creation failed with message: revisions.serving.knative.dev \"hello-mine\" already exists."
    );
    let revs = h.api::<Revision>().list(&Default::default()).await.expect("list");
    assert_eq!(revs.items.len(), 1, "no other revision was created");
}

fn byo_service(revision: &str) -> Value {
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
           "metadata": {"name": "hello", "namespace": "default"},
           "spec": {"template": {"metadata": {"name": revision},
                                 "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}},
                    "traffic": [{"revisionName": revision, "percent": 100}]}})
}

fn route_revisions(route: &Route) -> Vec<String> {
    route.spec.traffic.iter().filter_map(|t| t.revision_name.clone()).collect()
}

#[tokio::test]
async fn with_a_user_named_revision_the_route_waits_for_the_configuration_to_stamp_it() {
    let h = Harness::start().await;
    let svc: Service = h.create(byo_service("hello-v1")).await;
    service::reconcile(Arc::new(svc), h.ctx.clone(), route::Cache::watched(&h.ctx.client, h.stop.clone()))
        .await
        .expect("service");
    assert!(h.api::<Configuration>().get_opt("hello").await.expect("get").is_some());
    assert!(
        h.api::<Route>().get_opt("hello").await.expect("get").is_none(),
        "no route while the configuration has not stamped hello-v1"
    );

    let cfg: Configuration = h.get("hello").await;
    configuration::reconcile(Arc::new(cfg), h.ctx.clone(), h.revisions()).await.expect("configuration");
    let svc: Service = h.get("hello").await;
    service::reconcile(Arc::new(svc), h.ctx.clone(), route::Cache::watched(&h.ctx.client, h.stop.clone()))
        .await
        .expect("service");
    assert_eq!(route_revisions(&h.get("hello").await), ["hello-v1"]);

    // The next edit names hello-v2 in both the template and the traffic: the route keeps
    // hello-v1 until the configuration has caught up with the new template.
    let mut svc: Service = h.get("hello").await;
    let edit: Service = serde_json::from_value(byo_service("hello-v2")).expect("service");
    svc.spec = edit.spec;
    let svc = h.api::<Service>().replace("hello", &PostParams::default(), &svc).await.expect("replace");
    service::reconcile(Arc::new(svc), h.ctx.clone(), route::Cache::watched(&h.ctx.client, h.stop.clone()))
        .await
        .expect("service");
    let cfg: Configuration = h.get("hello").await;
    assert_eq!(cfg.metadata.generation, Some(2), "the template change reached the configuration");
    assert_eq!(route_revisions(&h.get("hello").await), ["hello-v1"], "traffic stays until hello-v2 exists");

    configuration::reconcile(Arc::new(cfg), h.ctx.clone(), h.revisions()).await.expect("configuration");
    assert!(h.api::<Revision>().get_opt("hello-v2").await.expect("get").is_some());
    let svc: Service = h.get("hello").await;
    service::reconcile(Arc::new(svc), h.ctx.clone(), route::Cache::watched(&h.ctx.client, h.stop.clone()))
        .await
        .expect("service");
    assert_eq!(route_revisions(&h.get("hello").await), ["hello-v2"]);
}

#[tokio::test]
async fn labelling_skips_a_revision_deleted_meanwhile() {
    let h = Harness::start().await;
    let a: Revision = h.create(revision_json("hello-00001")).await;
    let b: Revision = h.create(revision_json("hello-00002")).await;
    // The route listed both, then b was deleted before the labels were written.
    h.api::<Revision>().delete("hello-00002", &DeleteParams::default()).await.expect("delete");
    let referenced: BTreeSet<String> = ["hello-00001".to_string(), "hello-00002".to_string()].into();
    route::label(&h.api::<Revision>(), "hello", &referenced, &[a, b], true).await.expect("a 404 is not an error");
    let a: Revision = h.get("hello-00001").await;
    assert_eq!(a.annotations().get("serving.knative.dev/routes").map(String::as_str), Some("hello"));
    assert_eq!(a.labels().get("serving.knative.dev/routingState").map(String::as_str), Some("active"));
    assert!(h.api::<Revision>().get_opt("hello-00002").await.expect("get").is_none(), "not recreated by a patch");
}

#[tokio::test]
async fn a_revision_asks_the_scaler_for_its_instances_and_reports_what_it_sees() {
    let h = Harness::start().await;
    let mut obj = revision_json("hello-00001");
    obj["metadata"]["labels"] = json!({"serving.knative.dev/routingState": "active"});
    let rev: Revision = h.create(obj).await;
    revision::reconcile(Arc::new(rev), h.ctx.clone()).await.expect("revision");
    // The autoscaler asks for the initial scale at its first tick.
    let asked = || h.recorder.scales.lock().expect("lock").clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while asked().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(asked(), [("hello-00001".to_string(), 1)]);
    let rev: Revision = h.get("hello-00001").await;
    let status = rev.status.clone().expect("status");
    assert_eq!(status.log_url.as_deref(), Some("test://default/hello-00001"));
    assert_eq!(ready(&rev.status).0, "Unknown", "nothing ready yet");

    *h.recorder.health.lock().expect("lock") =
        Some(RevisionHealth { desired: 1, running: 1, ready: 1, ever_ready: true, ..Default::default() });
    revision::reconcile(Arc::new(rev), h.ctx.clone()).await.expect("revision");
    let rev: Revision = h.get("hello-00001").await;
    assert_eq!(ready(&rev.status).0, "True");
    assert_eq!(rev.status.as_ref().and_then(|s| s.actual_replicas), Some(1));

    // A route that references the ready revision is published with it.
    let route: Route = h
        .create(json!({"apiVersion": "serving.knative.dev/v1", "kind": "Route",
                       "metadata": {"name": "hello", "namespace": "default"},
                       "spec": {"traffic": [{"revisionName": "hello-00001", "percent": 100}]}}))
        .await;
    let cache = route::Cache::watched(&h.ctx.client, h.stop.clone());
    route::reconcile(Arc::new(route), h.ctx.clone(), cache).await.expect("route");
    let published = h.recorder.routes.lock().expect("lock").clone();
    let last = published.last().expect("the route was published");
    assert_eq!(last.hosts[0], "hello.default.example.com");
    assert_eq!(
        last.traffic.iter().map(|(p, t)| (*p, t.revision.name.as_str())).collect::<Vec<_>>(),
        [(100, "hello-00001")]
    );
}

#[tokio::test]
async fn a_configuration_reconcile_reads_revisions_from_its_cache_and_lists_none() {
    let h = Harness::start().await;
    for i in 1..=3 {
        let _: Revision = h.create(revision_json(&format!("other-{i:05}"))).await;
    }
    let cfg: Configuration = h.create(configuration_json("hello", None)).await;
    let cache = h.revisions();
    h.asked();
    configuration::reconcile(Arc::new(cfg), h.ctx.clone(), cache.clone()).await.expect("reconciled");
    let revisions = "/apis/serving.knative.dev/v1/namespaces/default/revisions";
    let first = h.asked();
    assert!(first.contains(&format!("GET {revisions}/hello-00001")), "asked before creating: {first:?}");
    assert!(first.iter().any(|a| a.starts_with(&format!("POST {revisions}"))), "created: {first:?}");
    let listed = |asked: &[String]| {
        asked.iter().any(|a| a == &format!("GET {revisions}") || a.starts_with(&format!("GET {revisions}?")))
    };
    assert!(!listed(&first), "no list: {first:?}");

    // Once the cache has the new revision, a reconcile asks the API nothing about revisions.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while cache.get("default", "hello-00001").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the cache never saw hello-00001");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let cfg: Configuration = h.get("hello").await;
    h.asked();
    configuration::reconcile(Arc::new(cfg), h.ctx.clone(), cache).await.expect("reconciled");
    let second = h.asked();
    assert!(!second.iter().any(|a| a.contains("/revisions")), "{second:?}");
    let revs = h.api::<Revision>().list(&Default::default()).await.expect("list");
    assert_eq!(revs.items.len(), 4, "one revision stamped, no second one");
    let cfg: Configuration = h.get("hello").await;
    assert_eq!(cfg.status.and_then(|s| s.latest_created_revision_name).as_deref(), Some("hello-00001"));
}

/// The revisions' split of the route last published.
fn last_split(h: &Harness) -> Vec<(u32, String)> {
    let published = h.recorder.routes.lock().expect("lock").clone();
    let last = published.last().expect("a route was published");
    last.traffic.iter().map(|(p, t)| (*p, t.revision.name.clone())).collect()
}

/// The `traffic` of Service `hello`: `a` percent to hello-00001, `b` to hello-00002.
fn split(a: i64, b: i64) -> serde_json::Value {
    json!([{"revisionName": "hello-00001", "percent": a}, {"revisionName": "hello-00002", "percent": b}])
}

/// A harness whose Service `hello` has two ready revisions and its traffic at 100/0, reconciled
/// once (its Route written, not yet reconciled); the Route controller's caches; that Route.
async fn two_revisions_at_100_0() -> (Harness, route::Cache, Route) {
    let h = Harness::start().await;
    *h.recorder.health.lock().expect("lock") =
        Some(RevisionHealth { desired: 1, running: 1, ready: 1, ever_ready: true, ..Default::default() });
    for name in ["hello-00001", "hello-00002"] {
        let mut obj = revision_json(name);
        obj["metadata"]["labels"] = json!({"serving.knative.dev/service": "hello"});
        let rev: Revision = h.create(obj).await;
        revision::reconcile(Arc::new(rev), h.ctx.clone()).await.expect("revision");
    }
    let svc: Service = h
        .create(json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                       "metadata": {"name": "hello", "namespace": "default"},
                       "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go"}]}},
                                "traffic": split(100, 0)}}))
        .await;
    let cache = route::Cache::watched(&h.ctx.client, h.stop.clone());
    service::reconcile(Arc::new(svc), h.ctx.clone(), cache.clone()).await.expect("service");
    let first: Route = h.get("hello").await;
    (h, cache, first)
}

#[tokio::test]
async fn a_traffic_edit_is_programmed_by_the_service_reconcile_and_an_older_route_cannot_undo_it() {
    let (h, cache, first) = two_revisions_at_100_0().await;
    route::reconcile(Arc::new(first.clone()), h.ctx.clone(), cache.clone()).await.expect("route");
    assert_eq!(last_split(&h), [(100, "hello-00001".to_string())]);
    // The Service reconcile reads the Route from the cache: wait until it holds the first one.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while cache.routes.state().iter().all(|r| r.metadata.generation != first.metadata.generation) {
        assert!(tokio::time::Instant::now() < deadline, "the cache never saw the route");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // The edit: the Service reconcile programs 0/100 itself and writes the Route.
    let mut svc: Service = h.get("hello").await;
    svc.spec.traffic = serde_json::from_value(split(0, 100)).expect("traffic");
    let svc = h.api::<Service>().replace("hello", &PostParams::default(), &svc).await.expect("replace");
    service::reconcile(Arc::new(svc), h.ctx.clone(), cache.clone()).await.expect("service");
    assert_eq!(last_split(&h), [(100, "hello-00002".to_string())], "programmed without a Route reconcile");
    let second: Route = h.get("hello").await;
    assert_eq!(second.metadata.generation, first.metadata.generation.map(|g| g + 1));

    // A reconcile of the first Route (one that started before the write) leaves the router be.
    let published = h.recorder.routes.lock().expect("lock").len();
    route::reconcile(Arc::new(first), h.ctx.clone(), cache.clone()).await.expect("route");
    assert_eq!(h.recorder.routes.lock().expect("lock").len(), published, "the older split is not published");
    // The stored Route's reconcile programs the same split, and is free to program what follows.
    route::reconcile(Arc::new(second), h.ctx.clone(), cache.clone()).await.expect("route");
    assert_eq!(last_split(&h), [(100, "hello-00002".to_string())]);
}

#[tokio::test]
async fn a_traffic_edit_whose_route_write_fails_leaves_the_router_on_the_stored_route() {
    let (h, cache, first) = two_revisions_at_100_0().await;
    route::reconcile(Arc::new(first), h.ctx.clone(), cache.clone()).await.expect("route");
    assert_eq!(last_split(&h), [(100, "hello-00001".to_string())]);
    // The cache must hold the Route with the status its reconcile wrote.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cache.routes.state().iter().any(|r| r.status.as_ref().is_some_and(|s| !s.traffic.is_empty())) {
        assert!(tokio::time::Instant::now() < deadline, "the cache never saw the route's status");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // The edit's Route write fails: the reconcile fails, and the router serves the stored split.
    h.break_route_writes.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut svc: Service = h.get("hello").await;
    svc.spec.traffic = serde_json::from_value(split(0, 100)).expect("traffic");
    let svc = h.api::<Service>().replace("hello", &PostParams::default(), &svc).await.expect("replace");
    service::reconcile(Arc::new(svc.clone()), h.ctx.clone(), cache.clone()).await.expect_err("the write fails");
    assert_eq!(last_split(&h), [(100, "hello-00001".to_string())], "back on the stored route");
    let stored: Route = h.get("hello").await;
    assert_eq!(stored.spec.traffic.first().and_then(|t| t.percent), Some(100), "{:?}", stored.spec.traffic);

    // Once writes work again, the edit goes through.
    h.break_route_writes.store(false, std::sync::atomic::Ordering::SeqCst);
    service::reconcile(Arc::new(svc), h.ctx.clone(), cache.clone()).await.expect("service");
    assert_eq!(last_split(&h), [(100, "hello-00002".to_string())]);
}
