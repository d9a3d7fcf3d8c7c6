//! Probes: `httpGet` (any 2xx or 3xx), `tcpSocket` (a connect), `exec` (exit 0), with the
//! serving port mapped to the port the instance was given. gRPC probes are checked as a TCP
//! connect. Every kind keeps Kubernetes' timing — `initialDelaySeconds`, `periodSeconds`,
//! `timeoutSeconds`, `successThreshold`, `failureThreshold` — with Kubernetes' defaults (10 s,
//! 1 s, 1, 3) where a field is unset.
//!
//! A readiness probe with `periodSeconds` 0 (Knative's default) is probed aggressively until the
//! instance is first ready, as Knative's queue-proxy does: the gap between probes is a tenth of
//! the time probing has taken so far, at least 250 µs and at most the runtime's
//! `readiness_poll` ([`startup_gap`]), so an instance that takes `t` to start is seen ready
//! within about `t / 10` of it (and within a few hundred µs for a compiled server that starts in
//! a few ms; a gap under tokio's 1 ms timer tick sleeps on a blocking thread, see
//! [`sleep_fine`]); once ready it is probed every second. A readiness probe with a period is probed at that period from the
//! start, as the kubelet does.

use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_api::podspec::{Container, Probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A probe ready to run against one instance.
#[derive(Clone, Debug)]
pub struct Prober {
    check: Check,
    timeout: Duration,
    /// Time between probes (for an aggressive readiness probe: once the instance is ready).
    pub period: Duration,
    /// Knative's aggressive readiness probing (`periodSeconds` 0): quick probes until ready.
    pub aggressive: bool,
    /// Consecutive successes that count as passing.
    pub success_threshold: u32,
    /// Consecutive failures that count as failing.
    pub failure_threshold: u32,
    /// Delay before the first probe.
    pub initial_delay: Duration,
}

#[derive(Clone, Debug)]
enum Check {
    Http { port: u16, request: Vec<u8> },
    Tcp { host: String, port: u16 },
    Exec { argv: Vec<OsString>, env: Vec<(OsString, OsString)> },
}

/// The shortest gap between probes of a starting instance. A refused connect costs tens of
/// µs, so the few probes of an instance's first milliseconds cost little.
pub const STARTUP_GAP_MIN: Duration = Duration::from_micros(250);

/// tokio's timer counts whole milliseconds: a sleep of 1 ms ends 1–2 ms later.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Fine sleeps under way at once at most: many instances starting together share these
/// blocking threads, and the rest sleep on tokio's timer (a tick late at worst).
const FINE_SLEEPS_MAX: usize = 4;

/// Fine sleeps under way.
static FINE_SLEEPS: AtomicUsize = AtomicUsize::new(0);

/// One of the [`FINE_SLEEPS_MAX`] fine sleeps, given back when dropped (a probe loop cancelled
/// mid-sleep included).
struct FineSlot;

/// Sleeps `gap`; one shorter than tokio's timer tick sleeps on a blocking thread instead (while
/// fewer than [`FINE_SLEEPS_MAX`] do), which ends on time, not on the next tick.
pub async fn sleep_fine(gap: Duration) {
    if gap < TIMER_TICK
        && let Some(slot) = FineSlot::take()
    {
        let slept = tokio::task::spawn_blocking(move || std::thread::sleep(gap)).await;
        drop(slot);
        if slept.is_ok() {
            return;
        }
    }
    tokio::time::sleep(gap).await;
}

impl FineSlot {
    fn take() -> Option<Self> {
        if FINE_SLEEPS.fetch_add(1, Ordering::Relaxed) < FINE_SLEEPS_MAX {
            Some(Self)
        } else {
            FINE_SLEEPS.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for FineSlot {
    fn drop(&mut self) {
        FINE_SLEEPS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The gap before the next probe of an instance that is not yet ready, `probing` after its first
/// probe: a tenth of that, between [`STARTUP_GAP_MIN`] and `max`.
pub fn startup_gap(probing: Duration, max: Duration) -> Duration {
    (probing / 10).clamp(STARTUP_GAP_MIN, max.max(STARTUP_GAP_MIN))
}

/// Resolves a probe's port: the serving port (by number or name, or unset) is the instance's port.
fn port(p: Option<&IntOrString>, container: &Container, instance_port: u16) -> u16 {
    match p {
        Some(IntOrString::Int(n)) if *n != 0 && u16::try_from(*n).ok() != Some(container.serving_port()) => {
            u16::try_from(*n).unwrap_or(instance_port)
        }
        Some(IntOrString::String(name)) if !container.ports.iter().any(|p| p.name.as_deref() == Some(name)) => {
            name.parse().unwrap_or(instance_port)
        }
        _ => instance_port,
    }
}

// === impl Prober ===

impl Prober {
    /// The readiness probe of `container` for an instance on `instance_port`; a TCP connect
    /// when the container declares none.
    pub fn readiness(container: &Container, instance_port: u16, env: &[(OsString, OsString)]) -> Self {
        let probe = container.readiness_probe.clone().unwrap_or_default();
        let mut prober = Self::new("readiness", &probe, container, instance_port, env);
        prober.aggressive = probe.period_seconds.unwrap_or(0) <= 0;
        if prober.aggressive {
            prober.period = Duration::from_secs(1);
        }
        prober
    }

    /// The liveness probe of `container`, if it declares one.
    pub fn liveness(container: &Container, instance_port: u16, env: &[(OsString, OsString)]) -> Option<Self> {
        let probe = container.liveness_probe.as_ref()?;
        Some(Self::new("liveness", probe, container, instance_port, env))
    }

    /// The startup probe of `container`, if it declares one (kept as JSON: the pod spec types
    /// do not model it; admission has checked its shape).
    pub fn startup(container: &Container, instance_port: u16, env: &[(OsString, OsString)]) -> Option<Self> {
        let json = container.extra.get("startupProbe").filter(|v| !v.is_null())?;
        let probe: Probe = serde_json::from_value(json.clone()).ok()?;
        Some(Self::new("startup", &probe, container, instance_port, env))
    }

    /// `kind` (`readiness`, `liveness`, `startup`) is what an HTTP probe's `K-Kubelet-Probe`
    /// header says.
    fn new(kind: &str, probe: &Probe, container: &Container, instance_port: u16, env: &[(OsString, OsString)]) -> Self {
        let count =
            |v: Option<i32>, default: u32| v.and_then(|s| u32::try_from(s).ok()).filter(|s| *s > 0).unwrap_or(default);
        Self {
            check: Check::of(kind, probe, container, instance_port, env),
            timeout: Duration::from_secs(u64::from(count(probe.timeout_seconds, 1))),
            period: Duration::from_secs(u64::from(count(probe.period_seconds, 10))),
            aggressive: false,
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
            initial_delay: Duration::from_secs(
                probe.initial_delay_seconds.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            ),
        }
    }

    /// Runs the probe once; true on success.
    pub async fn check(&self) -> bool {
        self.probe().await.is_ok()
    }

    /// Runs the probe once; on failure, why, as the kubelet words it
    /// (`HTTP probe failed with statuscode: 500`).
    pub async fn probe(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.run()).await {
            Ok(result) => result,
            Err(_) => Err(format!("probe timed out after {:?}", self.timeout)),
        }
    }

    async fn run(&self) -> Result<(), String> {
        match &self.check {
            Check::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
                .await
                .map(drop)
                .map_err(|e| format!("dial tcp {host}:{port}: {e}")),
            Check::Http { port, request } => http_ok(*port, request).await,
            Check::Exec { argv, env } => {
                let Some((program, args)) = argv.split_first() else {
                    return Err("exec probe has no command".into());
                };
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true);
                match cmd.status().await {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!("command {argv:?} exited with {s}")),
                    Err(e) => Err(format!("command {argv:?} could not run: {e}")),
                }
            }
        }
    }
}

// === impl Check ===

impl Check {
    /// The check `probe` describes, with the serving port mapped to `instance_port`; an HTTP
    /// one says which `kind` of probe it is in `K-Kubelet-Probe`.
    fn of(kind: &str, probe: &Probe, container: &Container, instance_port: u16, env: &[(OsString, OsString)]) -> Self {
        if let Some(h) = &probe.http_get {
            let port = port(h.port.as_ref(), container, instance_port);
            let path = h.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
            let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
            let host = h.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| format!("127.0.0.1:{port}"));
            let mut request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-probe\r\nK-Kubelet-Probe: {kind}\r\n"
            );
            for header in &h.http_headers {
                request.push_str(&format!("{}: {}\r\n", header.name, header.value));
            }
            request.push_str("Connection: close\r\n\r\n");
            return Self::Http { port, request: request.into_bytes() };
        }
        if let Some(e) = probe.exec.as_ref().filter(|e| !e.command.is_empty()) {
            return Self::Exec { argv: e.command.iter().map(OsString::from).collect(), env: env.to_vec() };
        }
        let (host, p) = match &probe.tcp_socket {
            Some(t) => (t.host.clone().filter(|h| !h.is_empty()), port(t.port.as_ref(), container, instance_port)),
            None => (
                None,
                probe
                    .grpc
                    .as_ref()
                    .and_then(|g| g.port)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0 && *p != container.serving_port())
                    .unwrap_or(instance_port),
            ),
        };
        Self::Tcp { host: host.unwrap_or_else(|| "127.0.0.1".into()), port: p }
    }
}

/// Sends `request` and reads the status line: 200–399 is success.
async fn http_ok(port: u16, request: &[u8]) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("dial tcp 127.0.0.1:{port}: {e}"))?;
    stream.write_all(request).await.map_err(|e| format!("writing the probe request: {e}"))?;
    let mut buf = [0u8; 64];
    let mut len = 0;
    // "HTTP/1.1 200" is 12 bytes.
    while len < 12 {
        match stream.read(&mut buf[len..]).await {
            Ok(0) => return Err("connection closed before a status line".into()),
            Err(e) => return Err(format!("reading the probe answer: {e}")),
            Ok(n) => len += n,
        }
    }
    let line = &buf[..len];
    if !line.starts_with(b"HTTP/1.") {
        return Err("the answer is not HTTP/1.x".into());
    }
    let code = std::str::from_utf8(&line[9..12]).ok().and_then(|s| s.parse::<u16>().ok());
    let ok = match code {
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("HTTP probe failed with statuscode: {code}")),
        None => Err("the answer has no status code".into()),
    };
    // The request said `Connection: close`: read the rest until the app closes, so closing
    // here sends a FIN, not the reset that unread data makes the kernel send (an app would log
    // a connection reset on every probe). In the background, so an app that keeps the
    // connection open anyway does not hold up the probe's answer; bounded in bytes and time.
    tokio::spawn(async move {
        let drain = async {
            let mut scratch = [0u8; 4096];
            let mut drained = 0;
            while drained < PROBE_DRAIN {
                match stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        };
        let _ = tokio::time::timeout(PROBE_DRAIN_TIME, drain).await;
    });
    ok
}

/// How long the rest of a probe response is read for, at most.
const PROBE_DRAIN_TIME: Duration = Duration::from_secs(1);
/// The most of a probe response read after its status line.
const PROBE_DRAIN: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use sluice_api::podspec::{ContainerPort, HttpGetAction, TcpSocketAction};
    use tokio::net::TcpListener;

    use super::*;

    async fn answer(listener: TcpListener, status: &'static str) {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if head.starts_with("GET /healthz ") { status } else { "HTTP/1.1 404 Not Found\r\n\r\n" };
            let _ = s.write_all(body.as_bytes()).await;
        }
    }

    fn http_container(path: &str) -> Container {
        Container {
            ports: vec![ContainerPort { container_port: Some(8080), ..Default::default() }],
            readiness_probe: Some(Probe {
                http_get: Some(HttpGetAction {
                    path: Some(path.into()),
                    port: Some(IntOrString::Int(8080)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_fine_sleep_lasts_at_least_its_gap_below_and_above_the_timer_tick() {
        for gap in [Duration::from_micros(300), Duration::from_millis(2)] {
            let began = std::time::Instant::now();
            sleep_fine(gap).await;
            assert!(began.elapsed() >= gap, "{gap:?}: woke after {:?}", began.elapsed());
        }
        // Many at once (more than there are blocking slots): each still sleeps its gap.
        let gap = Duration::from_micros(500);
        let mut sleeps = tokio::task::JoinSet::new();
        for _ in 0..20 {
            sleeps.spawn(async move {
                let began = std::time::Instant::now();
                sleep_fine(gap).await;
                began.elapsed()
            });
        }
        while let Some(slept) = sleeps.join_next().await {
            assert!(slept.expect("sleep") >= gap);
        }
    }

    #[test]
    fn a_starting_instance_is_probed_every_tenth_of_its_start_time_within_bounds() {
        let max = Duration::from_millis(50);
        let ms = Duration::from_millis;
        assert_eq!(startup_gap(Duration::ZERO, max), STARTUP_GAP_MIN, "at once the gap is the minimum");
        assert_eq!(startup_gap(ms(1), max), STARTUP_GAP_MIN);
        assert_eq!(startup_gap(ms(9), max), Duration::from_micros(900));
        assert_eq!(startup_gap(ms(40), max), ms(4), "a tenth of the time probing so far");
        assert_eq!(startup_gap(ms(200), max), ms(20));
        assert_eq!(startup_gap(Duration::from_secs(5), max), max, "never slower than the poll");
        assert_eq!(startup_gap(ms(100), Duration::ZERO), STARTUP_GAP_MIN, "a zero poll does not spin");
    }

    #[tokio::test]
    async fn an_http_probe_reads_the_whole_answer_so_the_app_sees_no_reset() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let body = "x".repeat(256 * 1024);
            let answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            // Written in pieces, as an app does; a reset from the prober fails a later piece.
            for chunk in answer.as_bytes().chunks(8 * 1024) {
                s.write_all(chunk).await?;
                tokio::task::yield_now().await;
            }
            s.shutdown().await?;
            // A clean close from the prober reads as end of file, a reset as an error.
            s.read(&mut buf).await.map(|_| ())
        });
        assert!(Prober::readiness(&http_container("/"), port, &[]).check().await);
        app.await.expect("app").expect("the app wrote its answer and saw a clean close");
    }

    #[tokio::test]
    async fn an_app_that_keeps_the_probe_connection_open_is_still_ready_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _app = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            // Keep-alive, whatever the request said.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let started = tokio::time::Instant::now();
        assert!(Prober::readiness(&http_container("/"), port, &[]).check().await);
        assert!(started.elapsed() < Duration::from_millis(500), "answered after {:?}", started.elapsed());
    }

    #[test]
    fn an_http_probe_says_which_probe_it_is() {
        let get = Some(Probe {
            http_get: Some(HttpGetAction { path: Some("/h".into()), ..Default::default() }),
            ..Default::default()
        });
        let mut c = Container { readiness_probe: get.clone(), liveness_probe: get.clone(), ..Default::default() };
        c.extra.insert("startupProbe".into(), serde_json::to_value(&get).expect("json"));
        let probers = [
            ("readiness", Some(Prober::readiness(&c, 9, &[]))),
            ("liveness", Prober::liveness(&c, 9, &[])),
            ("startup", Prober::startup(&c, 9, &[])),
        ];
        for (kind, prober) in probers {
            let Some(Prober { check: Check::Http { request, .. }, .. }) = prober else {
                panic!("{kind}: an HTTP probe");
            };
            let request = String::from_utf8(request).expect("text");
            assert!(request.contains(&format!("\r\nK-Kubelet-Probe: {kind}\r\n")), "{kind}: {request}");
        }
    }

    #[tokio::test]
    async fn http_probe_maps_the_serving_port_and_reads_the_status() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(answer(listener, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(Prober::readiness(&http_container("/healthz"), port, &[]).check().await);
        assert!(!Prober::readiness(&http_container("/other"), port, &[]).check().await, "404 is not ready");
    }

    #[test]
    fn timing_fields_are_read_with_kubernetes_defaults_and_knatives_aggressive_readiness() {
        let lone = Container::default();
        let r = Prober::readiness(&lone, 1, &[]);
        assert!(r.aggressive, "no period: Knative's aggressive probing");
        assert_eq!((r.period, r.success_threshold, r.failure_threshold), (Duration::from_secs(1), 1, 3));
        let probe = Probe {
            tcp_socket: Some(TcpSocketAction::default()),
            initial_delay_seconds: Some(4),
            period_seconds: Some(5),
            timeout_seconds: Some(2),
            success_threshold: Some(2),
            failure_threshold: Some(6),
            ..Default::default()
        };
        let c = Container { readiness_probe: Some(probe.clone()), liveness_probe: Some(probe), ..Default::default() };
        for p in [Prober::readiness(&c, 1, &[]), Prober::liveness(&c, 1, &[]).expect("liveness")] {
            assert!(!p.aggressive);
            assert_eq!(
                (p.initial_delay, p.period, p.timeout, p.success_threshold, p.failure_threshold),
                (Duration::from_secs(4), Duration::from_secs(5), Duration::from_secs(2), 2, 6)
            );
        }
        let bare = Container { liveness_probe: Some(Probe::default()), ..Default::default() };
        let l = Prober::liveness(&bare, 1, &[]).expect("liveness");
        assert_eq!(
            (l.initial_delay, l.period, l.timeout, l.success_threshold, l.failure_threshold),
            (Duration::ZERO, Duration::from_secs(10), Duration::from_secs(1), 1, 3),
            "Kubernetes' defaults"
        );
        assert!(Prober::liveness(&lone, 1, &[]).is_none() && Prober::startup(&lone, 1, &[]).is_none());
        let mut started = Container::default();
        started.extra.insert("startupProbe".into(), serde_json::json!({"tcpSocket": {}, "failureThreshold": 30}));
        assert_eq!(Prober::startup(&started, 1, &[]).expect("startup").failure_threshold, 30);
    }

    #[tokio::test]
    async fn a_failed_http_probe_says_why_as_the_kubelet_does() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(answer(listener, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"));
        let got = Prober::readiness(&http_container("/healthz"), port, &[]).probe().await;
        assert_eq!(got, Err("HTTP probe failed with statuscode: 500".to_string()));
    }

    #[tokio::test]
    async fn tcp_probe_needs_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let c = Container {
            readiness_probe: Some(Probe { tcp_socket: Some(TcpSocketAction::default()), ..Default::default() }),
            ..Default::default()
        };
        assert!(Prober::readiness(&c, port, &[]).check().await);
        drop(listener);
        assert!(!Prober::readiness(&c, port, &[]).check().await);
        assert!(!Prober::readiness(&Container::default(), port, &[]).check().await, "the default is a TCP connect");
    }
}
