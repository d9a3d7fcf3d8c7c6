//! `many-routes`: the router with one service, then with many (10,000 by default). One service
//! is live (the helloworld-go sample) and the others are applied through the real API with
//! `autoscaling.knative.dev/initial-scale: "0"` (allowed by `allow-zero-initial-scale` in
//! `config-autoscaler`, as in Knative), so they are routed without starting a process each.
//! Measured: how long applying them takes (batches of documents through `sluice apply`) and
//! until the router has programmed every route (its `route_traffic_percent` series); the
//! resident memory of `sluice serve` at one service and at many; and the live service's
//! throughput, latency and CPU per request with the small table and with the large one.
//!
//! The two load phases cannot interleave (the table grows between them): the machine's drift
//! between them is not cancelled out as in `steady`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::ScenarioError;
use super::serve_api::{api_address, apply, programmed_routes, rss_bytes, scrape, write};
use super::sluice::{HELLO_HOST, start_serve_with};
use crate::compare::{self, Comparison, Entry};
use crate::cpu::Watch;
use crate::load::LoadSpec;
use crate::outcome::Outcome;
use crate::pin::Layout;
use crate::target::{Protocol, Target};

/// How long the router may take to program every route after the last apply.
const PROGRAMMED: Duration = Duration::from_secs(600);
/// How often `/metrics` is read while waiting for that.
const SCRAPE_EVERY: Duration = Duration::from_millis(500);

/// `config-autoscaler` allowing revisions that start with no instance.
const ALLOW_ZERO: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  allow-zero-initial-scale: \"true\"
";

/// What `many-routes` needs.
pub struct Options {
    /// The `sluice` binary.
    pub sluice: PathBuf,
    /// Services in the large table, the live one included (at least 2).
    pub services: usize,
    /// Services per `sluice apply` (one multi-document file each).
    pub batch: usize,
    /// The load of each trial.
    pub spec: LoadSpec,
    /// Trials of each phase.
    pub trials: usize,
    /// Core pinning (role `sluice`).
    pub layout: Layout,
    /// HTTP/1.1 or h2c.
    pub protocol: Protocol,
}

/// What `many-routes` measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Scale {
    /// Services in the large table.
    pub services: usize,
    /// Services per apply.
    pub batch: usize,
    /// Seconds spent in `sluice apply` for the services at zero, all batches.
    pub apply_secs: f64,
    /// Services applied per second.
    pub applied_per_sec: f64,
    /// Seconds from the first apply until the router had programmed every route.
    pub programmed_secs: f64,
    /// `sluice serve`'s resident memory after the one-service trials, bytes.
    pub rss_one_bytes: u64,
    /// The same after the many-service trials, bytes.
    pub rss_many_bytes: u64,
    /// The difference over the services added, bytes (the whole process: API store,
    /// controller, autoscaler and router together).
    pub rss_per_service_bytes: f64,
}

/// Both phases' trials, as one comparison (`1 route` first) and the scale figures.
pub struct ManyRoutes {
    /// `1 route` and `N routes`, the same live service.
    pub comparison: Comparison,
    /// Memory and apply figures.
    pub scale: Scale,
}

/// Runs `many-routes`; `note` sees each line worth telling, `each` every trial.
pub fn run(
    opts: &Options,
    mut note: impl FnMut(&str),
    mut each: impl FnMut(usize, &Outcome),
) -> Result<ManyRoutes, ScenarioError> {
    if opts.services < 2 || opts.batch == 0 {
        return Err(ScenarioError::Io("many-routes needs --services of at least 2 and a --batch above 0".into()));
    }
    let dir = super::workdir()?;
    let mut serve = start_serve_with(&opts.sluice, dir.path(), &opts.layout, "127.0.0.1:0", None)?;
    let addr = serve.addr;
    let pid = serve.process.pid();
    let state = dir.path().join("state");
    let api = api_address(&state)?;
    let metrics = metrics_address(&state)?;
    note(&format!("sluice: serve's router on {addr} (pid {pid}), live service {HELLO_HOST}"));
    let layout = opts.layout.describe(&[("sluice", Some(pid))]);
    note(&layout);
    let entry = |name: &str| -> Result<Entry, ScenarioError> {
        Ok(Entry {
            target: Target::new(name, &format!("http://{addr}/"), Some(HELLO_HOST), opts.protocol)?,
            watch: vec![Watch::new("sluice", pid)],
        })
    };
    let one = compare::run(&[entry("1 route")?], &opts.spec, opts.trials, layout.clone(), &mut each)?;
    let rss_one = rss_bytes(pid)?;
    note(&format!("1 route: sluice serve RSS {:.1} MiB", mib(rss_one)));

    let allow = dir.path().join("config-autoscaler.yaml");
    write(&allow, ALLOW_ZERO)?;
    apply(&opts.sluice, &api, &state, &allow)?;
    let zero = opts.services - 1;
    let started = Instant::now();
    let mut applied = 0;
    let mut in_apply = Duration::ZERO;
    while applied < zero {
        let n = opts.batch.min(zero - applied);
        let file = dir.path().join("batch.yaml");
        write(&file, &services_yaml(applied..applied + n))?;
        let t = Instant::now();
        apply_allowed(&opts.sluice, &api, &state, &file, started)?;
        in_apply += t.elapsed();
        applied += n;
        note(&format!(
            "applied {applied}/{zero} services at zero ({:.0}/s so far)",
            applied as f64 / in_apply.as_secs_f64()
        ));
    }
    serve.process.wait_for("to program every route", PROGRAMMED, || {
        if scrape(metrics).is_some_and(|m| programmed_routes(&m) >= opts.services) {
            return Some(());
        }
        std::thread::sleep(SCRAPE_EVERY);
        None
    })?;
    let programmed = started.elapsed();
    note(&format!(
        "router programmed {} routes {:.1} s after the first apply",
        opts.services,
        programmed.as_secs_f64()
    ));

    let name = format!("{} routes", opts.services);
    let many = compare::run(&[entry(&name)?], &opts.spec, opts.trials, layout.clone(), &mut each)?;
    let rss_many = rss_bytes(pid)?;
    note(&format!("{name}: sluice serve RSS {:.1} MiB", mib(rss_many)));
    let scale = Scale {
        services: opts.services,
        batch: opts.batch,
        apply_secs: in_apply.as_secs_f64(),
        applied_per_sec: zero as f64 / in_apply.as_secs_f64(),
        programmed_secs: programmed.as_secs_f64(),
        rss_one_bytes: rss_one,
        rss_many_bytes: rss_many,
        rss_per_service_bytes: rss_many.saturating_sub(rss_one) as f64 / zero as f64,
    };
    let comparison = Comparison {
        names: vec![one.names[0].clone(), many.names[0].clone()],
        trials: vec![one.trials.into_iter().flatten().collect(), many.trials.into_iter().flatten().collect()],
        layout: format!("{layout}; the two phases ran one after the other, not interleaved"),
    };
    drop(serve);
    Ok(ManyRoutes { comparison, scale })
}

/// Applies `file`, retrying while `config-autoscaler` (applied just before) is not yet what
/// admission reads: a refusal of `initial-scale` is retried for a few seconds from `since`.
fn apply_allowed(
    sluice: &std::path::Path,
    api: &str,
    state: &std::path::Path,
    file: &std::path::Path,
    since: Instant,
) -> Result<(), ScenarioError> {
    loop {
        match apply(sluice, api, state, file) {
            Err(ScenarioError::Start { reason, .. })
                if reason.contains("initial-scale") && since.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// The metrics address `sluice serve` wrote to endpoints.json.
fn metrics_address(state: &std::path::Path) -> Result<SocketAddr, ScenarioError> {
    let path = state.join("endpoints.json");
    let v: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ScenarioError::Io(format!("{} unreadable", path.display())))?;
    v["metrics"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| ScenarioError::Io(format!("{}: no \"metrics\" address", path.display())))
}

/// Services `svc-{i}` for `range`, each starting with no instance, as one multi-document YAML.
pub fn services_yaml(range: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    for i in range {
        out.push_str(&format!(
            "---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: svc-{i}
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: \"0\"
    spec:
      containers:
      - image: docker.io/{{username}}/helloworld-go
"
        ));
    }
    out
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_one_document_per_service_named_in_order() {
        let text = services_yaml(3..5);
        assert_eq!(text.matches("kind: Service").count(), 2);
        assert!(text.contains("name: svc-3\n") && text.contains("name: svc-4\n"));
        assert_eq!(text.matches("initial-scale: \"0\"").count(), 2);
    }
}
