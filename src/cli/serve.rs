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
use sluice_apiserver::store::{BUILTIN_NAMESPACES, Store};
use sluice_apiserver::{ApiServer, WatchLimits, kubeconfig, tls};
use sluice_controller::Ctx;
use sluice_router::endpoints::Endpoints;
use sluice_router::publish::Publisher;
use sluice_router::table::RoutingTable;
use sluice_router::{Router, RouterConfig};
use sluice_runtime::{ImageTable, Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeArgs;

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
    api_url: String,
    http_addr: SocketAddr,
    kubeconfig: PathBuf,
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
    let endpoints_file = state_dir.join("endpoints.json");
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
    let http_listener =
        TcpListener::bind(args.http).await.with_context(|| format!("binding the router to {}", args.http))?;
    let api_addr = api_listener.local_addr()?;
    if !api_addr.ip().is_loopback() {
        tracing::warn!(
            api = %api_addr,
            "the API server listens beyond this machine: anyone who can reach {api_addr} and has the API token can run commands as this user; TLS is not implemented for sluice's own clients yet (only kubectl's kubeconfig uses it), so the token they send travels in clear text"
        );
    }
    let running = Running {
        api_url: format!("http://{}", connectable(api_addr)),
        http_addr: http_listener.local_addr()?,
        kubeconfig: state_dir.join("kubeconfig"),
    };
    let identity = tls::Identity::generate(Some(api_addr.ip()))?;
    let kube_server = format!("https://{}", connectable(api_addr));
    kubeconfig::write(&running.kubeconfig, &kube_server, &identity.authority_data(), &token)
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
        let server = ApiServer::with_watch_limits(store, api_stop.clone(), token.clone(), limits)
            .tls(&identity)?
            .header_read_timeout(header_read_timeout);
        async move {
            match TcpListener::from_std(api_listener) {
                Ok(listener) => server.serve(listener).await,
                Err(e) => tracing::error!(error = %e, "the API server could not use its socket"),
            }
        }
    });

    let endpoints = Endpoints::new();
    let (runtime, health) = Runtime::new(
        runtime_config(&state_dir, args.images.as_deref(), args.sample_test_endpoints)?,
        endpoints.clone(),
    );
    let table = Arc::new(ArcSwap::from_pointee(RoutingTable::default()));
    let client = super::client::connect(&running.api_url, &token).context("building the controller's API client")?;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        scaler: runtime.clone(),
        publisher: Arc::new(Publisher::new(table.clone(), endpoints)),
        domain: args.domain.clone(),
    });
    let controllers_stop = CancellationToken::new();
    let controllers = if args.no_controllers {
        tracing::warn!("--no-controllers: objects are stored but not reconciled");
        tokio::spawn(async {})
    } else {
        tokio::spawn(sluice_controller::run(ctx, health, controllers_stop.clone()))
    };
    let router = Router::new(table, RouterConfig { header_read_timeout, ..RouterConfig::default() });
    let router_task = tokio::spawn(sluice_router::server::serve(http_listener, router, signal.clone(), DRAIN));

    write_endpoints(&endpoints_file, &running)?;
    tracing::info!(api = %running.api_url, http = %running.http_addr, state_dir = %state_dir.display(), "sluice is serving");
    eprintln!(
        "Sluice is serving.\n  services:  http://{{name}}.{{namespace}}.{} on {}\n  API:       {} (bearer token in {})\n  kubectl:   KUBECONFIG={} kubectl get ksvc\n  sluice:    sluice apply -f service.yaml --api {} --state-dir {}",
        args.domain,
        running.http_addr,
        running.api_url,
        token_file.display(),
        running.kubeconfig.display(),
        running.api_url,
        state_dir.display()
    );
    if let Err(e) = after_start(client, running.http_addr).await {
        tracing::error!(error = %format!("{e:#}"), "startup step failed");
    }

    // Shutdown, in order: the router stops accepting and drains; then instances stop (each after
    // its in-flight requests); then the controllers and the API server.
    router_task.await.context("router task")?;
    runtime.shutdown(DRAIN).await;
    controllers_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), controllers).await;
    api_stop.cancel();
    api.await.context("API server task")?;
    // Its tasks have all ended with `serve`; nothing is left to wait for.
    api_runtime.shutdown_background();
    tracing::info!("sluice stopped");
    Ok(ExitCode::SUCCESS)
}

/// An address a client on this machine can connect to for a server bound to `addr`: the
/// loopback address in place of "any" (`0.0.0.0`, `::`).
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

fn runtime_config(state_dir: &Path, images_file: Option<&Path>, test_endpoints: bool) -> anyhow::Result<RuntimeConfig> {
    let exe = std::env::current_exe().context("locating the sluice executable")?;
    let mut images = ImageTable::builtin(&exe);
    if test_endpoints {
        tracing::warn!("--sample-test-endpoints: sample apps serve /env and /crash to anyone who reaches them");
        images = images.with_sample_test_endpoints();
    }
    let default_file = state_dir.join("images.yaml");
    match images_file {
        Some(file) => images.merge_file(file).with_context(|| format!("reading image table {}", file.display()))?,
        None if default_file.is_file() => images
            .merge_file(&default_file)
            .with_context(|| format!("reading image table {}", default_file.display()))?,
        None => {}
    }
    let mut config = RuntimeConfig::new(state_dir.to_path_buf(), images);
    // Instances run through `sluice instance-exec`, which ties their life to this process.
    config.launcher = vec![exe.into_os_string(), "instance-exec".into()];
    Ok(config)
}

fn write_endpoints(path: &Path, running: &Running) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let doc = json!({"api": running.api_url, "http": running.http_addr.to_string(), "pid": std::process::id()});
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
