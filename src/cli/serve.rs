//! `sluice serve`: opens the store in the state directory, starts the API server, writes the
//! kubeconfig and an `endpoints.json` naming the bound addresses, and runs until SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use sluice_controller::apiserver::{ApiServer, kubeconfig};
use sluice_controller::store::{DEFAULT_HISTORY, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeArgs;

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

/// Runs the server until a signal asks it to stop.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    std::fs::create_dir_all(&state_dir).with_context(|| format!("creating state directory {}", state_dir.display()))?;
    let endpoints_file = state_dir.join("endpoints.json");
    // A stale file from an earlier run must never be mistaken for this run's addresses.
    let _ = std::fs::remove_file(&endpoints_file);

    let store = Store::open(&state_dir.join("sluice.redb"), DEFAULT_HISTORY).context("opening the store")?;
    let store = Arc::new(store);
    let api_listener =
        TcpListener::bind(args.api).await.with_context(|| format!("binding the API server to {}", args.api))?;
    let api_url = format!("http://{}", api_listener.local_addr()?);
    let kubeconfig_path = state_dir.join("kubeconfig");
    kubeconfig::write(&kubeconfig_path, &api_url).context("writing the kubeconfig")?;

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let api = tokio::spawn(ApiServer::new(store, shutdown.clone()).serve(api_listener));

    write_endpoints(&endpoints_file, &api_url)?;
    tracing::info!(api = %api_url, state_dir = %state_dir.display(), "sluice is serving");
    eprintln!(
        "Sluice API server: {api_url}\n  sluice apply -f service.yaml --api {api_url}\n  KUBECONFIG={} kubectl get ksvc",
        kubeconfig_path.display()
    );

    api.await.context("API server task")?;
    tracing::info!("sluice stopped");
    Ok(ExitCode::SUCCESS)
}

fn write_endpoints(path: &Path, api_url: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json!({"api": api_url, "pid": std::process::id()}))?)?;
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
