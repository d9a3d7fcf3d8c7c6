//! `cold-start`: how long a new revision takes to answer its first request through Sluice,
//! against how long the same app takes to answer when started directly. Each iteration applies
//! a new Service (so every one starts from no instance) and times from the API's acknowledgement
//! (`sluice apply` returning) to the first 200 through the router; the baseline spawns
//! `sluice sample hello` and times spawn to first 200. Sluice's share is the difference of the
//! medians.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::ScenarioError;
use super::procs::{Owned, free_port, get};
use super::sluice::start_serve;
use crate::latency::{Latencies, Percentiles};
use crate::pin::Layout;

/// How often readiness is polled while timing (a fresh connection each time).
const POLL: Duration = Duration::from_millis(1);
/// How long one cold start may take before the scenario gives up.
const DEADLINE: Duration = Duration::from_secs(60);

/// What `cold-start` needs.
pub struct Options {
    /// The `sluice` binary.
    pub sluice: PathBuf,
    /// Cold starts of each kind.
    pub iterations: usize,
    /// Core pinning (roles `backend`, `sluice`).
    pub layout: Layout,
}

/// What `cold-start` measured, in milliseconds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ColdStart {
    /// Iterations of each kind.
    pub iterations: usize,
    /// The app alone: spawn to first 200 (percentiles in µs).
    pub process_us: Percentiles,
    /// Through Sluice: apply acknowledged to first 200 through the router (µs).
    pub sluice_us: Percentiles,
    /// Sluice's share: its p50 minus the process's p50 (µs).
    pub sluice_share_p50_us: f64,
}

/// Runs `cold-start`; `note` sees each line worth telling as it happens.
pub fn run(opts: &Options, mut note: impl FnMut(&str)) -> Result<ColdStart, ScenarioError> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-bench-")
        .tempdir()
        .map_err(|e| ScenarioError::Io(format!("no temporary directory: {e}")))?;
    let mut process = Latencies::new();
    for i in 0..opts.iterations {
        let port = free_port()?;
        let mut cmd = opts.layout.command("backend", &opts.sluice);
        cmd.args(["sample", "hello"]).env("PORT", port.to_string());
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        let mut app = Owned::spawn("the hello app", cmd, &dir.path().join(format!("app-{i}.log")))?;
        poll(&mut app, "to answer", || get(addr, "localhost", "/").filter(|(s, _)| *s == 200))?;
        process.record(start.elapsed());
    }
    note(&format!("process alone: p50 {:.2} ms over {} starts", process.quantile_us(0.5) / 1000.0, opts.iterations));

    let mut serve = start_serve(&opts.sluice, dir.path(), &opts.layout)?;
    let state = dir.path().join("state");
    let endpoints: serde_json::Value = std::fs::read(state.join("endpoints.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ScenarioError::Io("endpoints.json unreadable".into()))?;
    let api = endpoints["api"].as_str().unwrap_or_default().to_string();
    let mut through = Latencies::new();
    for i in 0..opts.iterations {
        let name = format!("cold-{i}");
        let manifest = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&manifest, service_yaml(&name)).map_err(|e| ScenarioError::Io(e.to_string()))?;
        let out = Command::new(&opts.sluice)
            .args(["apply", "--api", &api])
            .arg("--state-dir")
            .arg(&state)
            .arg("-f")
            .arg(&manifest)
            .output()
            .map_err(|e| ScenarioError::Start { what: "sluice apply".into(), reason: e.to_string() })?;
        let acknowledged = Instant::now();
        if !out.status.success() {
            let reason = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(ScenarioError::Start { what: format!("sluice apply {name}"), reason });
        }
        let host = format!("{name}.default.localhost");
        poll(&mut serve.process, "to answer a new revision", || {
            get(serve.addr, &host, "/").filter(|(s, _)| *s == 200)
        })?;
        through.record(acknowledged.elapsed());
    }
    let (p, s) = (process.percentiles(), through.percentiles());
    Ok(ColdStart { iterations: opts.iterations, process_us: p, sluice_us: s, sluice_share_p50_us: s.p50 - p.p50 })
}

fn poll<T>(owner: &mut Owned, what: &str, mut ready: impl FnMut() -> Option<T>) -> Result<T, ScenarioError> {
    let start = Instant::now();
    loop {
        if let Some(v) = ready() {
            return Ok(v);
        }
        owner.check_running()?;
        if start.elapsed() > DEADLINE {
            return Err(ScenarioError::Timeout { what: what.to_string(), after: DEADLINE });
        }
        std::thread::sleep(POLL);
    }
}

/// A Knative Service running the hello sample, named `name`.
fn service_yaml(name: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  template:
    spec:
      containers:
      - image: docker.io/{{username}}/helloworld-go
"
    )
}
