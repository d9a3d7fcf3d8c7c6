//! `cold-start`: how long a revision at zero takes to answer through Sluice, against how long
//! the same app takes to answer when started directly. By default one revision (the hello
//! sample, 6 s window, 1 s scale-to-zero grace) is scaled from zero again and again: each
//! iteration waits until serve's metrics show no instance wanted or running, then times one
//! request through the router, sent → first response byte, and splits it with the instance's
//! own spawn → ready time from its log. `--new-service` instead applies a new Service each
//! iteration and times `sluice apply` returning → first 200 (the controllers' reconcile chain
//! included). The baseline spawns `sluice sample hello` and times spawn → first 200, polled
//! every 1 ms. Sluice's share is the difference of the medians.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::ScenarioError;
use super::control::{Serve, scale_to_zero_service};
use super::procs::{Owned, free_port, get};
use super::sluice::start_serve;
use crate::latency::{Latencies, Percentiles};
use crate::pin::Layout;

/// How often readiness is polled while timing (a fresh connection each time).
const POLL: Duration = Duration::from_millis(1);
/// How long one cold start may take before the scenario gives up.
const DEADLINE: Duration = Duration::from_secs(60);
/// The Service scaled from zero, and its revision.
const SERVICE: &str = "cold";
const REVISION: &str = "cold-00001";

/// Which cold start is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// One revision, scaled to zero before each iteration: request sent → first response byte.
    FromZero,
    /// A new Service each iteration: `sluice apply` returning → first 200.
    NewService,
}

/// What `cold-start` needs.
pub struct Options {
    /// The `sluice` binary.
    pub sluice: PathBuf,
    /// Cold starts of each kind.
    pub iterations: usize,
    /// Scale from zero, or a new Service each time.
    pub kind: Kind,
    /// Core pinning (roles `backend`, `sluice`).
    pub layout: Layout,
    /// More `sluice serve` flags (e.g. `--network-namespaces`).
    pub serve_args: Vec<String>,
}

/// What `cold-start` measured, in microseconds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ColdStart {
    /// Which cold start.
    pub kind: Kind,
    /// Iterations of each kind.
    pub iterations: usize,
    /// The app alone: spawn to first 200 (percentiles in µs).
    pub process_us: Percentiles,
    /// Through Sluice (µs): from zero, request sent to first response byte; for a new Service,
    /// apply acknowledged to first 200.
    pub sluice_us: Percentiles,
    /// Sluice's share: its p50 minus the process's p50 (µs).
    pub sluice_share_p50_us: f64,
    /// From zero: the supervisor's own spawn → readiness-probe-passed time of each instance
    /// (its log's `ready after` line), percentiles in µs; the rest of `sluice_us` is the
    /// request's wait for the spawn and its forwarding after readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spawn_to_ready_us: Option<Percentiles>,
    /// From zero: each iteration's first byte minus its instance's spawn → ready (µs): the
    /// request's wait until the spawn (gate, autoscaler, supervisor) and its forwarding once the
    /// instance is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_start_us: Option<Percentiles>,
    /// From zero: how long each wait for zero took, p50 (s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_wait_p50_s: Option<f64>,
}

/// Runs `cold-start`; `note` sees each line worth telling as it happens.
pub fn run(opts: &Options, mut note: impl FnMut(&str)) -> Result<ColdStart, ScenarioError> {
    let dir = super::workdir()?;
    match opts.kind {
        Kind::FromZero => from_zero(opts, dir.path(), &mut note),
        Kind::NewService if !opts.serve_args.is_empty() => {
            Err(ScenarioError::Io("--serve-arg applies to the scale-from-zero cold start only".into()))
        }
        Kind::NewService => new_service(opts, dir.path(), &mut note),
    }
}

/// Scale from zero, each iteration followed by the app started alone (so both see the same
/// load on a shared machine).
fn from_zero(opts: &Options, dir: &Path, note: &mut impl FnMut(&str)) -> Result<ColdStart, ScenarioError> {
    let mut serve = Serve::start(&opts.sluice, dir, &opts.layout, &opts.serve_args)?;
    serve.fast_scale_to_zero()?;
    serve.apply(SERVICE, &scale_to_zero_service(SERVICE))?;
    let host = format!("{SERVICE}.default.localhost");
    let http = serve.http;
    poll(&mut serve.process, "to answer through the router", || get(http, &host, "/").filter(|(s, _)| *s == 200))?;
    let log = serve.state.join("logs").join("default").join(format!("{REVISION}.log"));
    let (mut process, mut through, mut ready) = (Latencies::new(), Latencies::new(), Latencies::new());
    let (mut outside, mut waits) = (Latencies::new(), Latencies::new());
    for i in 0..opts.iterations {
        waits.record(serve.wait_for_zero(REVISION)?);
        let ttfb = first_byte(http, &host)?;
        through.record(ttfb);
        let spawn_to_ready = last_ready_after(&log);
        if let Some(d) = spawn_to_ready {
            ready.record(d);
            outside.record(ttfb.saturating_sub(d));
        }
        let alone = process_alone(opts, dir, i)?;
        process.record(alone);
        note(&format!(
            "cold start {}/{}: through sluice {:.2} ms (instance spawn → ready {}), app alone {:.2} ms",
            i + 1,
            opts.iterations,
            ttfb.as_secs_f64() * 1000.0,
            spawn_to_ready.map_or("?".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0)),
            alone.as_secs_f64() * 1000.0,
        ));
    }
    let (p, s) = (process.percentiles(), through.percentiles());
    Ok(ColdStart {
        kind: Kind::FromZero,
        iterations: opts.iterations,
        process_us: p,
        sluice_us: s,
        sluice_share_p50_us: s.p50 - p.p50,
        spawn_to_ready_us: (!ready.is_empty()).then(|| ready.percentiles()),
        outside_start_us: (!outside.is_empty()).then(|| outside.percentiles()),
        zero_wait_p50_s: Some(waits.quantile_us(0.5) / 1e6),
    })
}

/// One GET through the router over a fresh connection: request written → first response byte.
/// The answer must be a 200.
fn first_byte(addr: SocketAddr, host: &str) -> Result<Duration, ScenarioError> {
    let fail = |e: String| ScenarioError::Io(format!("GET http://{host}/ through {addr}: {e}"));
    let mut s = TcpStream::connect_timeout(&addr, DEADLINE).map_err(|e| fail(e.to_string()))?;
    s.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(DEADLINE)).map_err(|e| fail(e.to_string()))?;
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let sent = Instant::now();
    s.write_all(req.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let mut first = [0u8; 1];
    s.read_exact(&mut first).map_err(|e| fail(e.to_string()))?;
    let ttfb = sent.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).map_err(|e| fail(e.to_string()))?;
    let head = String::from_utf8_lossy(&[&first[..], &rest[..rest.len().min(64)]].concat()).to_string();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(fail(format!("not a 200: {:?}", head.lines().next().unwrap_or(""))));
    }
    Ok(ttfb)
}

/// The supervisor's spawn → ready time of the revision's latest instance, from its log's
/// `[sluice] TIME instance N ready after DURATION` line.
fn last_ready_after(log: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("[sluice] ")?.split_once(" ready after ").map(|(_, d)| d))
        .and_then(parse_debug_duration)
}

/// A `Duration`'s `Debug` text (`6.41ms`, `850µs`, `1.2s`, `700ns`).
fn parse_debug_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" | "us" => n / 1e6,
        "ns" => n / 1e9,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `sluice sample hello` spawned directly (role `backend`): spawn → first 200, polled every
/// 1 ms.
fn process_alone(opts: &Options, dir: &Path, i: usize) -> Result<Duration, ScenarioError> {
    let port = free_port()?;
    let mut cmd = opts.layout.command("backend", &opts.sluice);
    cmd.args(["sample", "hello"]).env("PORT", port.to_string()).env("TARGET", "Go Sample v1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    let mut app = Owned::spawn("the hello app", cmd, &dir.join(format!("app-{i}.log")))?;
    poll(&mut app, "to answer", || get(addr, "localhost", "/").filter(|(s, _)| *s == 200))?;
    Ok(start.elapsed())
}

/// A new Service each iteration (every one starts from no instance): `sluice apply` returning
/// → first 200 through the router; the app alone first, all iterations.
fn new_service(opts: &Options, dir: &Path, note: &mut impl FnMut(&str)) -> Result<ColdStart, ScenarioError> {
    let mut process = Latencies::new();
    for i in 0..opts.iterations {
        process.record(process_alone(opts, dir, i)?);
    }
    note(&format!("process alone: p50 {:.2} ms over {} starts", process.quantile_us(0.5) / 1000.0, opts.iterations));

    let mut serve = start_serve(&opts.sluice, dir, &opts.layout)?;
    let state = dir.join("state");
    let endpoints: serde_json::Value = std::fs::read(state.join("endpoints.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ScenarioError::Io("endpoints.json unreadable".into()))?;
    let api = endpoints["api"].as_str().unwrap_or_default().to_string();
    let mut through = Latencies::new();
    for i in 0..opts.iterations {
        let name = format!("cold-{i}");
        let manifest = dir.join(format!("{name}.yaml"));
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
    Ok(ColdStart {
        kind: Kind::NewService,
        iterations: opts.iterations,
        process_us: p,
        sluice_us: s,
        sluice_share_p50_us: s.p50 - p.p50,
        spawn_to_ready_us: None,
        outside_start_us: None,
        zero_wait_p50_s: None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supervisor_s_ready_line_gives_spawn_to_ready() {
        assert_eq!(parse_debug_duration("6.5ms"), Some(Duration::from_micros(6500)));
        assert_eq!(parse_debug_duration("850µs"), Some(Duration::from_micros(850)));
        assert_eq!(parse_debug_duration("1.25s"), Some(Duration::from_millis(1250)));
        assert_eq!(parse_debug_duration("3 parsecs"), None);
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("r.log");
        std::fs::write(
            &log,
            "[sluice] 2026-12-01T05:00:00Z instance 1 ready after 7.5ms\nhello\n\
             [sluice] 2026-12-01T05:00:09Z instance 2 starting on port 1: []\n\
             [sluice] 2026-12-01T05:00:09Z instance 2 ready after 4.25ms\n[sluice] 2026-12-01T05:00:19Z instance 2 stopped\n",
        )
        .expect("write");
        assert_eq!(last_ready_after(&log), Some(Duration::from_micros(4250)), "the latest instance's");
        assert_eq!(last_ready_after(&dir.path().join("none.log")), None);
    }
}
