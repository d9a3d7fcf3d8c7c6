//! `sluice serve`: the embedded default. Opens the store in the state directory, serves the
//! Kubernetes-compatible API, runs the controller against it, runs revision instances as child
//! processes, and routes service traffic. Writes a kubeconfig and `endpoints.json` (the bound
//! addresses), and on SIGINT/SIGTERM stops accepting, drains, stops instances, and exits 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use serde_json::json;
use sluice_apiserver::auth::Token;
use sluice_apiserver::events::Retention;
use sluice_apiserver::store::{BUILTIN_NAMESPACES, Store};
use sluice_apiserver::{ApiServer, PlainHttp, WatchLimits, kubeconfig, tls};
use sluice_controller::Ctx;
use sluice_controller::autoscale::{self, Autoscaling};
use sluice_controller::deadline::ProgressDeadline;
use sluice_controller::events::Recorder;
use sluice_router::endpoints::{AdmissionSettings, Endpoints, Poke, RevisionKey};
use sluice_router::publish::Publisher;
use sluice_router::table::RoutingTable;
use sluice_router::tls::{CertResolver, LocalCa};
use sluice_router::{HttpsListener, Router, RouterConfig, Workers};
use sluice_runtime::{ImageFile, ImageTable, Runtime, RuntimeConfig, Warden};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeArgs;

pub mod access_log;
pub mod metrics;
mod otlp;

/// The file in the state directory naming the addresses `serve` bound (read by the CLI).
pub const ENDPOINTS_FILE: &str = "endpoints.json";

/// How often the image table's file is read for changes.
const IMAGES_POLL: Duration = Duration::from_secs(1);

/// How long in-flight requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(30);

/// The state directory when none is given: `$XDG_STATE_HOME/sluice`, else
/// `~/.local/state/sluice`, else `./.sluice`.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("sluice");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/sluice"),
        None => PathBuf::from(".sluice"),
    }
}

/// Everything `serve` started, to be stopped in order.
struct Running {
    /// What the controller uses: plain HTTP over loopback where it can.
    api_url: String,
    /// What other clients use.
    https_url: String,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    /// Where `/metrics` is served, unless off.
    metrics_addr: Option<SocketAddr>,
    kubeconfig: PathBuf,
}

/// The HTTPS listener, bound, with its TLS configuration.
struct Https {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    ca_cert: PathBuf,
}

/// Runs the server until a signal asks it to stop; `after_start` runs once everything is up,
/// with an authenticated client of the API server and the router's address.
pub async fn run<F, Fut>(args: ServeArgs, after_start: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(kube::Client, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    std::fs::create_dir_all(&state_dir).with_context(|| format!("creating state directory {}", state_dir.display()))?;
    let state_dir = state_dir.canonicalize().unwrap_or(state_dir);
    // The store's lock comes first: it proves no other `sluice serve` uses this state
    // directory, so what follows may clear what an earlier run left behind. A second serve
    // stops here, touching nothing of the running one.
    let store = Arc::new(Store::open(&state_dir.join("sluice.redb"), args.watch_history).context("opening the store")?);
    store.ensure_namespaces(BUILTIN_NAMESPACES).context("creating the built-in namespaces")?;
    let token_file = state_dir.join(super::TOKEN_FILE);
    let token = Token::load_or_create(&token_file)
        .with_context(|| format!("reading or creating the API token {}", token_file.display()))?;
    let endpoints_file = state_dir.join(ENDPOINTS_FILE);
    // A stale file from an earlier run must never be mistaken for this run's addresses.
    let _ = std::fs::remove_file(&endpoints_file);
    let swept = Runtime::sweep_orphans(&state_dir);
    if swept > 0 {
        tracing::warn!(processes = swept, "stopped instances left behind by an earlier run");
    }
    // The API server runs on its own runtime (one worker thread), so a busy control plane
    // (large bodies to parse, many watches) never holds up the router's worker threads. Its
    // listener is bound here and handed over, as a std socket, to be registered there.
    let api_listener = std::net::TcpListener::bind(args.api)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .with_context(|| format!("binding the API server to {}", args.api))?;
    let (observer, otlp) = otlp::start(args.otlp_endpoint.as_deref())?;
    let http_listener =
        TcpListener::bind(args.http).await.with_context(|| format!("binding the router to {}", args.http))?;
    let https = match args.https {
        Some(addr) => Some(bind_https(addr, &args, &state_dir).await?),
        None => None,
    };
    let metrics_listener = metrics::bind(args.metrics).await?;
    let access_log_stop = CancellationToken::new();
    let access_log = match &args.access_log {
        Some(dest) => Some(access_log::start(dest, access_log_stop.clone())?),
        None => None,
    };
    let log_handle = access_log.as_ref().map(|a| a.log.clone());
    let api_addr = api_listener.local_addr()?;
    let identity = tls_identity(&args, &state_dir, api_addr.ip())?;
    let beyond_loopback = !api_addr.ip().to_canonical().is_loopback();
    if beyond_loopback {
        let certificate = match &args.tls_cert {
            Some(cert) => cert.display().to_string(),
            None => format!("one from the local CA {}", state_dir.join(tls::TLS_DIR).join(tls::CA_CERT).display()),
        };
        tracing::warn!(
            api = %api_addr,
            "the API server listens beyond this machine: anyone who can reach {api_addr} and holds the API token ({}, also in the kubeconfig) can run commands as this user. Only TLS is served to other machines (plain HTTP gets 400), with the certificate {certificate}; keep the token secret and the port firewalled to the machines that need it",
            token_file.display()
        );
    }
    let https_url = format!("https://{}", connectable(api_addr));
    // The controller in this process talks to the API over loopback in plain HTTP, which the
    // API serves to connections made to a loopback address; bound to one other address it
    // can only reach it there, over TLS.
    let local = connectable(api_addr);
    let api_url = if local.ip().is_loopback() { format!("http://{local}") } else { https_url.clone() };
    let running = Running {
        api_url,
        https_url,
        http_addr: http_listener.local_addr()?,
        https_addr: https.as_ref().map(|h| h.listener.local_addr()).transpose()?,
        metrics_addr: metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?,
        kubeconfig: state_dir.join("kubeconfig"),
    };
    kubeconfig::write(&running.kubeconfig, &running.https_url, identity.authority_data().as_deref(), &token)
        .context("writing the kubeconfig")?;

    let signal = CancellationToken::new();
    spawn_signal_handler(signal.clone());
    let api_stop = CancellationToken::new();
    let api_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sluice-api")
        .enable_all()
        .build()
        .context("starting the API server's runtime")?;
    let header_read_timeout = Duration::from_millis(args.header_read_timeout_ms);
    let api = api_runtime.spawn({
        let limits = WatchLimits { max_watches: args.max_watches, ..WatchLimits::default() };
        let server = ApiServer::with_watch_limits(store.clone(), api_stop.clone(), token.clone(), limits)
            .tls(&identity)?
            .plain_http(PlainHttp::LoopbackOnly)
            .header_read_timeout(header_read_timeout)
            .event_retention(Retention { ttl: args.event_ttl, per_namespace: args.max_events_per_namespace });
        async move {
            match TcpListener::from_std(api_listener) {
                Ok(listener) => server.serve(listener).await,
                Err(e) => tracing::error!(error = %e, "the API server could not use its socket"),
            }
        }
    });

    // A request that starts waiting for a revision's capacity pokes its autoscaler.
    let (poke, pokes) = tokio::sync::mpsc::channel(autoscale::POKE_QUEUE);
    let poke: Poke = Arc::new(move |key: &RevisionKey| {
        // Full means pokes are already queued; the autoscaler wakes every revision asleep at
        // zero once it has read them, so a dropped poke is not lost.
        let _ = poke.try_send(key.clone());
    });
    let endpoints = Endpoints::with_admission(AdmissionSettings { queue_depth: args.queue_depth }, poke);
    let (mut config, image_file) = runtime_config(&state_dir, args.images.as_deref(), args.sample_test_endpoints)?;
    config.network_namespaces = args.network_namespaces;
    // `env[].valueFrom` and `envFrom` read ConfigMaps and Secrets from the store at each start.
    config.env_sources = Some(Arc::new(super::env_sources::StoreSources(store)));
    let images = config.images.clone();
    let (runtime, health) = Runtime::new(config, endpoints.clone());
    let controllers_stop = CancellationToken::new();
    tokio::spawn(image_file.follow(images, IMAGES_POLL, controllers_stop.child_token()));
    let table = Arc::new(ArcSwap::from_pointee(RoutingTable::default()));
    let client = super::client::connect(&running.api_url, &token, &identity.authority_certificates())
        .context("building the controller's API client")?;
    // Events go to the API server from one task of their own, ended with the controllers.
    let (events, event_writer) = Recorder::new(client.clone());
    tokio::spawn(event_writer.run(controllers_stop.child_token()));
    let (autoscaling, scaled) =
        Autoscaling::start(runtime.clone(), events.clone(), endpoints.clone(), pokes, controllers_stop.child_token());
    let readiness = metrics::Readiness::new(signal.clone());
    let metrics_stop = CancellationToken::new();
    let metrics_task = metrics_listener.map(|l| {
        let facade = metrics::install_recorder();
        let sources =
            metrics::Sources { endpoints: endpoints.clone(), table: table.clone(), access_log: log_handle.clone() };
        tokio::spawn(metrics::serve(l, sources, facade, readiness.clone(), metrics_stop.clone()))
    });
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        scaler: runtime.clone(),
        publisher: Arc::new(Publisher::new(table.clone(), endpoints)),
        autoscaling,
        domain: args.domain.clone(),
        progress_deadline: ProgressDeadline::new(args.progress_deadline),
        events,
        rollout_default: Default::default(),
    });
    let controllers = if args.no_controllers {
        tracing::warn!("--no-controllers: objects are stored but not reconciled");
        tokio::spawn(async {})
    } else {
        tokio::spawn(sluice_controller::run(ctx, health, scaled, controllers_stop.clone()))
    };
    let https_listener =
        running.https_addr.map(|addr| HttpsListener { port: addr.port(), domain: args.domain.clone() });
    let generate_traceparent = args.trace_generate == super::Switch::On;
    let router = Router::with_access_log(
        table,
        RouterConfig {
            https: https_listener,
            header_read_timeout,
            generate_traceparent,
            observer,
            fast_lane: args.fast_lane == super::Switch::On,
            ..RouterConfig::default()
        },
        log_handle,
    );
    let threads = args
        .router_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
    let workers = if threads == 0 {
        Workers::current(router)
    } else {
        Workers::start(router, threads).context("starting the router's worker threads")?
    };
    let https_task = https.map(|h| {
        tracing::info!(ca = %h.ca_cert.display(), "HTTPS certificates not given per host are issued by the local CA");
        tokio::spawn(sluice_router::server::serve_tls_on(h.listener, h.tls, workers.clone(), signal.clone(), DRAIN))
    });
    let router_task =
        tokio::spawn(sluice_router::server::serve_on(http_listener, workers.clone(), signal.clone(), DRAIN));

    write_endpoints(&endpoints_file, &running)?;
    readiness.started();
    tracing::info!(api = %running.https_url, http = %running.http_addr, https = ?running.https_addr, metrics = ?running.metrics_addr, state_dir = %state_dir.display(), "sluice is serving");
    // The banner is for people; a JSON log keeps every stderr line an object.
    if args.log_format == super::LogFormat::Text {
        print_banner(&args, &running, &token_file, &state_dir);
    }
    if let Err(e) = after_start(client, running.http_addr).await {
        tracing::error!(error = %format!("{e:#}"), "startup step failed");
    }

    // Shutdown, in order: the router stops accepting and drains; then instances stop (each after
    // its in-flight requests); then the controllers and the API server.
    router_task.await.context("router task")?;
    if let Some(task) = https_task {
        task.await.context("HTTPS router task")?;
    }
    // Every connection has ended: the worker threads stop (joined off the async threads).
    tokio::task::spawn_blocking(move || drop(workers)).await.context("router workers")?;
    // Every request has been answered: the access log's last lines are queued.
    access_log_stop.cancel();
    if let Some(a) = access_log {
        drop(a.log);
        let joined = tokio::task::spawn_blocking(move || a.thread.join()).await.context("access log writer")?;
        if joined.is_err() {
            tracing::error!("the access log's writer panicked");
        }
    }
    otlp.shutdown().await;
    runtime.shutdown(DRAIN).await;
    controllers_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), controllers).await;
    metrics_stop.cancel();
    if let Some(task) = metrics_task {
        task.await.context("metrics task")?;
    }
    api_stop.cancel();
    api.await.context("API server task")?;
    // Its tasks have all ended with `serve`; nothing is left to wait for.
    api_runtime.shutdown_background();
    tracing::info!("sluice stopped");
    Ok(ExitCode::SUCCESS)
}

/// Binds the HTTPS listener and reads its certificates: those given per host, and the local
/// CA (created on first use) for the other hosts under the domain. A file that cannot be used
/// stops `serve` with an error naming it.
async fn bind_https(addr: SocketAddr, args: &ServeArgs, state_dir: &Path) -> anyhow::Result<Https> {
    let ca = LocalCa::load_or_create(state_dir).context("setting up the router's local certificate authority")?;
    let ca_cert = ca.cert_path().to_path_buf();
    let resolver =
        CertResolver::new(&args.tls_host_cert, Some((ca, &args.domain))).context("reading --tls-host-cert")?;
    let tls = sluice_router::tls::server_config(resolver)?;
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the HTTPS router to {addr}"))?;
    Ok(Https { listener, tls, ca_cert })
}

/// An address a client on this machine can connect to for a server bound to `addr`: the
/// loopback address in place of "any" (`0.0.0.0`, `::`).
/// The startup banner for people, on stderr: where everything is and how to reach it.
fn print_banner(args: &ServeArgs, running: &Running, token_file: &Path, state_dir: &Path) {
    eprintln!(
        "Sluice is serving.\n  services:  http://{{name}}.{{namespace}}.{} on {}\n  API:       {} (bearer token in {})\n  kubectl:   KUBECONFIG={} kubectl get ksvc\n  sluice:    sluice apply -f service.yaml --api {} --state-dir {}",
        args.domain,
        running.http_addr,
        running.https_url,
        token_file.display(),
        running.kubeconfig.display(),
        running.https_url,
        state_dir.display()
    );
    if let Some(addr) = running.metrics_addr {
        eprintln!("  metrics:   http://{}/metrics (also /healthz, /readyz)", connectable(addr));
    }
    if let Some(addr) = running.https_addr {
        eprintln!(
            "  https:     https://{{name}}.{{namespace}}.{} on {addr} (curl --cacert {})",
            args.domain,
            state_dir.join(sluice_router::tls::CA_CERT_FILE).display()
        );
    }
}

fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// The API server's TLS identity: `--tls-cert/--tls-key` when given, else a certificate from
/// the local CA covering the loopback names and, when the server listens beyond loopback,
/// the bound address and this host's name.
fn tls_identity(args: &ServeArgs, state_dir: &Path, bound: IpAddr) -> anyhow::Result<tls::Identity> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return Ok(tls::Identity::from_files(cert, key, args.tls_ca.as_deref())?);
    }
    let mut names = Vec::new();
    if !bound.to_canonical().is_loopback() {
        if !bound.is_unspecified() {
            names.push(bound.to_canonical().to_string());
        }
        // The kernel's name for this host, as clients on the network may call it.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        if !host.is_empty() && sluice_api::naming::dns1123_subdomain(host).is_empty() {
            names.push(host.to_string());
        }
    }
    Ok(tls::Identity::local(state_dir, &names)?)
}

/// The runtime's configuration, and the image table's file to follow.
fn runtime_config(
    state_dir: &Path,
    images_file: Option<&Path>,
    test_endpoints: bool,
) -> anyhow::Result<(RuntimeConfig, ImageFile)> {
    let exe = std::env::current_exe().context("locating the sluice executable")?;
    let mut images = ImageTable::builtin(&exe);
    if test_endpoints {
        tracing::warn!("--sample-test-endpoints: sample apps serve /env, /crash and /stats to anyone who reaches them");
        images = images.with_sample_test_endpoints();
    }
    // The named file must be there at start; the default one may come later.
    let mut file = match images_file {
        Some(file) => ImageFile::new(file, true, images),
        None => ImageFile::new(&state_dir.join("images.yaml"), false, images),
    };
    let images = file
        .poll()
        .with_context(|| format!("reading image table {}", file.path().display()))?
        .expect("the first read of an image file makes a table");
    let mut config = RuntimeConfig::new(state_dir.to_path_buf(), images);
    // Instances run through `sluice instance-exec`, which ties their life to this process.
    config.warden = Some(Arc::new(
        Warden::start(&[exe.clone().into_os_string(), "instance-warden".into()])
            .context("starting the instance warden")?,
    ));
    // `sluice-exec` beside this binary does the same for instances outside a network
    // namespace, and starts in a fraction of the time (see src/bin/sluice-exec.rs).
    let small = exe.with_file_name("sluice-exec");
    config.small_launcher = small.is_file().then(|| small.into_os_string());
    config.launcher = vec![exe.into_os_string(), "instance-exec".into()];
    Ok((config, file))
}

fn write_endpoints(path: &Path, running: &Running) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut doc = json!({
        "api": running.api_url,
        "api_https": running.https_url,
        "http": running.http_addr.to_string(),
        "pid": std::process::id(),
    });
    if let Some(addr) = running.https_addr {
        doc["https"] = json!(addr.to_string());
    }
    if let Some(addr) = running.metrics_addr {
        doc["metrics"] = json!(connectable(addr).to_string());
    }
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)?;
    std::fs::rename(&tmp, path).context("writing endpoints.json")
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_address_is_reached_through_loopback() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert_eq!(connectable(addr("0.0.0.0:8070")), addr("127.0.0.1:8070"));
        assert_eq!(connectable(addr("[::]:8070")), addr("[::1]:8070"));
        assert_eq!(connectable(addr("192.0.2.7:8070")), addr("192.0.2.7:8070"));
    }
}
