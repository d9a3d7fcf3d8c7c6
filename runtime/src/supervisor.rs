//! One instance slot of a revision: start the process and its sidecars, probe it into routing
//! (startup, then readiness, with liveness watching throughout), restart it with backoff when
//! it stops on its own or fails its liveness or startup probe, and drain and stop it when asked.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice_api::podspec::Container;
use sluice_router::endpoints::{Instance, RevisionEndpoints};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::env;
use super::probe::Prober;
use super::process::{self, StartError};
use super::sidecar::Sidecars;
use super::{Failure, RevisionHealth, RevisionRun, Runtime};

/// Restart delays: the first restart is immediate, then 100 ms doubling up to 10 s.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// An instance that served this long resets the backoff.
pub(super) const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// How much of its log a crashed instance's failure message quotes.
const LOG_TAIL: u64 = 4096;
/// How long a starting instance may take before Sluice looks for where it listens instead,
/// and how often it looks again after that.
const EXPLAIN_AFTER: Duration = Duration::from_secs(2);
const EXPLAIN_EVERY: Duration = Duration::from_secs(1);

/// The reason a start fails for want of a ConfigMap, Secret or key, as Kubernetes says it.
pub const CONFIG_ERROR: &str = "CreateContainerConfigError";

/// How one instance process ended.
enum Outcome {
    /// Asked to stop; stopped.
    Stopped,
    /// Stopped on its own.
    Exited { code: i32, served: Duration },
    /// Stopped because its liveness or startup probe failed (the message says which and why).
    Unhealthy { message: String, served: Duration },
}

/// An instance's probes.
struct Probes {
    startup: Option<Prober>,
    readiness: Prober,
    liveness: Option<Prober>,
}

/// Supervises one instance slot of `run` until `stop` is cancelled.
pub async fn supervise(
    rt: Arc<Runtime>,
    run: Arc<RevisionRun>,
    health: Arc<Mutex<RevisionHealth>>,
    stop: CancellationToken,
) {
    let log = rt.log_path(&run.key);
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let id = rt.next_id.fetch_add(1, Ordering::Relaxed);
        // Before the table is read, so a table stored after this start cannot go unseen.
        let mut new_images = rt.config.images.subscribe();
        let outcome = match start(&rt, &run, id, &log) {
            Ok((child, port, passed, probes)) => {
                forget_missing_image(&rt, &run, &health);
                let sidecars = Sidecars::start(&rt, &run, &health, id);
                let lifetime = Lifetime { rt: &rt, run: &run, health: &health, id, port, passed };
                lifetime.run(child, probes, sidecars, &stop, &log).await
            }
            Err(e) => {
                // Only a new image table can help an unknown image: it waits for one.
                let (reason, retry) = match e {
                    StartError::ImageNotFound(_) => ("ImageNotFound", false),
                    // Retried with backoff: it starts once the ConfigMap or Secret exists.
                    StartError::Config(_) => (CONFIG_ERROR, true),
                    _ => ("StartFailed", true),
                };
                record_failure(
                    &rt,
                    &run,
                    &health,
                    Failure { reason: reason.into(), message: e.to_string(), exit_code: None },
                );
                process::log_marker(&log, &format!("cannot start: {e}"));
                if !retry {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        changed = new_images.changed() => {
                            if changed.is_err() {
                                // The table can no longer change.
                                stop.cancelled().await;
                                return;
                            }
                            continue;
                        }
                    }
                }
                Outcome::Exited { code: 127, served: Duration::ZERO }
            }
        };
        let (what, served) = match outcome {
            Outcome::Stopped => return,
            Outcome::Exited { code, served } => (format!("exited with code {code}"), served),
            Outcome::Unhealthy { served, .. } => ("failed its probe".to_string(), served),
        };
        if served >= HEALTHY_RUN {
            failures = 0;
        }
        let delay = backoff(failures);
        failures = failures.saturating_add(1);
        {
            let mut h = health.lock();
            h.restarts += 1;
            *h.container_restarts.entry(run.container.name.clone()).or_default() += 1;
        }
        rt.announce(&run.key);
        if !delay.is_zero() {
            process::log_marker(&log, &format!("instance {id} {what}; restarting in {delay:?}"));
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The restart delay after `failures` earlier restarts without a healthy run.
pub(super) fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => BACKOFF_START.saturating_mul(1u32 << (n - 1).min(16)).min(BACKOFF_MAX),
    }
}

/// An instance started: an image the table did not know before is no longer the revision's
/// failure.
fn forget_missing_image(rt: &Runtime, run: &RevisionRun, health: &Mutex<RevisionHealth>) {
    let mut h = health.lock();
    if h.last_failure.as_ref().is_some_and(|f| f.reason == "ImageNotFound") {
        h.last_failure = None;
        drop(h);
        rt.announce(&run.key);
    }
}

pub(super) fn record_failure(rt: &Runtime, run: &RevisionRun, health: &Mutex<RevisionHealth>, failure: Failure) {
    tracing::warn!(revision = %run.key, reason = %failure.reason, message = %failure.message, "instance failed");
    health.lock().last_failure = Some(failure);
    rt.announce(&run.key);
}

/// Starts one instance process of `run`.
/// Returns the process, the port Sluice reaches it on, the `PORT` it was given (the same port,
/// unless it runs in a network namespace of its own), and its probes.
fn start(
    rt: &Runtime,
    run: &RevisionRun,
    id: u64,
    log: &std::path::Path,
) -> Result<(Child, u16, u16, Probes), StartError> {
    let port =
        process::free_port().map_err(|source| StartError::Spawn { program: "bind 127.0.0.1:0".into(), source })?;
    let instance = format!("{}#{id}", run.key);
    // In a namespace of its own, the instance listens on its declared port; a forwarder
    // outside takes `port`.
    let (launcher, inside) = if rt.config.network_namespaces && !rt.config.launcher.is_empty() {
        let inside = run.container.serving_port();
        let mut launcher = rt.config.launcher.clone();
        launcher.extend(["--forward".into(), format!("{port}:{inside}").into()]);
        (launcher, inside)
    } else {
        (rt.config.plain_launcher(), port)
    };
    let vars = variables(rt, run, &run.container, log)?;
    let env = process::environment(run, &vars.vars, Some(inside), &rt.config.state_dir, &instance);
    let argv = process::argv(&run.container, &env, |image| rt.config.images.resolve(image))?;
    // What logs and errors show: `$(VAR)` left as written for variables from ConfigMaps and
    // Secrets, so no value of theirs is ever printed.
    let shown_env = process::environment(run, &vars.masked(), Some(inside), &rt.config.state_dir, &instance);
    let shown = process::argv(&run.container, &shown_env, |image| rt.config.images.resolve(image))?;
    let shown_program = shown.first().cloned().unwrap_or_default();
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
    if argv.first().is_some_and(|p| !process::exists(p, path)) {
        return Err(StartError::Spawn {
            program: shown_program,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory, or not on PATH"),
        });
    }
    let netns = if inside == port { String::new() } else { format!(" (PORT={inside} in its own network namespace)") };
    process::log_marker(log, &format!("instance {id} starting on port {port}: {shown:?}{netns}"));
    let child =
        process::spawn(&launcher, &argv, &env, run.container.working_dir.as_deref(), log).map_err(|e| match e {
            StartError::Spawn { program, source } if Some(&program) == argv.first() => {
                StartError::Spawn { program: shown_program, source }
            }
            other => other,
        })?;
    if let (Some(warden), Some(pid)) = (&rt.config.warden, child.id()) {
        warden.watch(pid);
    }
    let c = &run.container;
    let probes = Probes {
        startup: Prober::startup(c, port, &env),
        readiness: Prober::readiness(c, port, &env),
        liveness: Prober::liveness(c, port, &env),
    };
    Ok((child, port, inside, probes))
}

/// The variables of `container` (the serving container or a sidecar), with ConfigMap and
/// Secret references resolved now (as the kubelet does at each container start); skipped keys
/// are noted in the revision's log.
pub(super) fn variables(
    rt: &Runtime,
    run: &RevisionRun,
    container: &Container,
    log: &std::path::Path,
) -> Result<env::Resolved, StartError> {
    let resolved = match &rt.config.env_sources {
        Some(sources) => env::resolve(container, &run.key.namespace, sources.as_ref())?,
        None => env::resolve(container, &run.key.namespace, &env::Unavailable)?,
    };
    for note in &resolved.notes {
        tracing::warn!(revision = %run.key, "{note}");
        process::log_marker(log, note);
    }
    Ok(resolved)
}

/// One instance process, from start to exit.
struct Lifetime<'a> {
    rt: &'a Runtime,
    run: &'a RevisionRun,
    health: &'a Mutex<RevisionHealth>,
    id: u64,
    /// Where Sluice reaches it.
    port: u16,
    /// The `PORT` it was given.
    passed: u16,
}

impl Lifetime<'_> {
    async fn run(
        &self,
        mut child: Child,
        probes: Probes,
        mut sidecars: Sidecars,
        stop: &CancellationToken,
        log: &std::path::Path,
    ) -> Outcome {
        let pgid = child.id();
        self.health.lock().running += 1;
        self.rt.announce(&self.run.key);
        let outcome = self.watch(&mut child, &probes, &mut sidecars, stop).await;
        if let Some(pgid) = pgid {
            // Whatever the instance started goes with it, as a container's processes do.
            process::kill_group(pgid);
            if let Some(warden) = &self.rt.config.warden {
                warden.release(pgid);
            }
        }
        sidecars.stop().await;
        self.health.lock().running -= 1;
        match &outcome {
            Outcome::Stopped => process::log_marker(log, &format!("instance {} stopped", self.id)),
            Outcome::Exited { code, .. } => {
                let last = last_line(log);
                let mut message = format!("Container failed with exit code {code}");
                if !last.is_empty() {
                    message.push_str(": ");
                    message.push_str(&last);
                }
                process::log_marker(log, &format!("instance {} exited with code {code}", self.id));
                let failure = Failure { reason: "ExitCode".into(), message, exit_code: Some(*code) };
                record_failure(self.rt, self.run, self.health, failure);
            }
            Outcome::Unhealthy { message, .. } => {
                process::log_marker(log, &format!("instance {} stopped: {message}", self.id));
                let failure = Failure { reason: "Unhealthy".into(), message: message.clone(), exit_code: None };
                record_failure(self.rt, self.run, self.health, failure);
            }
        }
        outcome
    }

    async fn watch(
        &self,
        child: &mut Child,
        probes: &Probes,
        sidecars: &mut Sidecars,
        stop: &CancellationToken,
    ) -> Outcome {
        let endpoints = self.rt.endpoints.revision(&self.run.key);
        let started = Instant::now();
        // A startup probe holds the others back until it passes, as the kubelet's does.
        if let Some(startup) = &probes.startup {
            tokio::select! {
                result = until_started(startup) => if let Err(message) = result {
                    return self.unhealthy(child, message, started).await;
                },
                status = child.wait() => return self.exited(status, started),
                () = stop.cancelled() => {
                    self.stop(child, None).await;
                    return Outcome::Stopped;
                }
            }
        }
        let liveness = until_dead(probes.liveness.as_ref());
        tokio::pin!(liveness);
        // Until ready: the readiness probe passes and every sidecar runs; meanwhile say where a
        // slow instance listens when that is not its $PORT.
        let said = Mutex::new(None);
        let pgid = child.id();
        let became_ready = async {
            let ready = async {
                until_ready(&probes.readiness, self.rt.config.readiness_poll).await;
                sidecars.until_all_running().await;
            };
            tokio::select! {
                () = ready => {}
                never = self.explain_wait(pgid, &said) => match never {},
            }
        };
        let early = tokio::select! {
            () = became_ready => None,
            message = &mut liveness => Some(self.unhealthy(child, message, started).await),
            status = child.wait() => Some(self.exited(status, started)),
            () = stop.cancelled() => {
                self.stop(child, None).await;
                Some(Outcome::Stopped)
            }
        };
        self.set_waiting(&said, None);
        if let Some(outcome) = early {
            return outcome;
        }
        let mut serving = Some(self.join(&endpoints));
        let ready_at = Instant::now();
        let log = self.rt.log_path(&self.run.key);
        process::log_marker(&log, &format!("instance {} ready after {:?}", self.id, started.elapsed()));
        let readiness = &probes.readiness;
        // It has just passed `successThreshold` probes in a row.
        let (mut misses, mut passes) = (0u32, readiness.success_threshold);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + readiness.period, readiness.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                status = child.wait() => {
                    self.leave(&endpoints, serving.take());
                    return self.exited(status, ready_at);
                }
                () = stop.cancelled() => {
                    let draining = self.leave(&endpoints, serving.take());
                    self.stop(child, draining).await;
                    return Outcome::Stopped;
                }
                message = &mut liveness => {
                    self.leave(&endpoints, serving.take());
                    return self.unhealthy(child, message, ready_at).await;
                }
                () = sidecars.changed() => {
                    // A sidecar that stopped takes the instance out of routing until it runs
                    // again (a pod is ready only when all its containers are).
                    if !sidecars.all_running() && serving.is_some() {
                        tracing::warn!(revision = %self.run.key, instance = self.id, "a sidecar stopped: out of routing");
                        self.leave(&endpoints, serving.take());
                    } else if sidecars.all_running() && serving.is_none() && passes >= readiness.success_threshold {
                        // Back at once when the readiness probe has been passing meanwhile.
                        serving = Some(self.join(&endpoints));
                    }
                }
                _ = tick.tick() => {
                    // Once ready: probe every period; `failureThreshold` misses take it out of
                    // routing, `successThreshold` passes put it back.
                    if readiness.check().await {
                        (misses, passes) = (0, passes.saturating_add(1));
                        if serving.is_none() && passes >= readiness.success_threshold && sidecars.all_running() {
                            serving = Some(self.join(&endpoints));
                        }
                    } else {
                        (misses, passes) = (misses.saturating_add(1), 0);
                        if misses >= readiness.failure_threshold && serving.is_some() {
                            tracing::warn!(revision = %self.run.key, instance = self.id, "readiness probe failing: out of routing");
                            self.leave(&endpoints, serving.take());
                        }
                    }
                }
            }
        }
    }

    /// Stops an instance whose liveness or startup probe failed (it is out of routing): no
    /// draining, as the kubelet kills a container that failed its liveness probe.
    async fn unhealthy(&self, child: &mut Child, message: String, since: Instant) -> Outcome {
        tracing::warn!(revision = %self.run.key, instance = self.id, %message, "restarting the instance");
        process::terminate(child, self.rt.config.stop_grace).await;
        Outcome::Unhealthy { message, served: since.elapsed() }
    }

    /// Never returns: after [`EXPLAIN_AFTER`], and every [`EXPLAIN_EVERY`] after that, looks
    /// at where the instance's process group `pgid` listens, and says so in the revision's
    /// health when it is not where the prober looks.
    async fn explain_wait(&self, pgid: Option<u32>, said: &Mutex<Option<String>>) -> std::convert::Infallible {
        tokio::time::sleep(EXPLAIN_AFTER).await;
        loop {
            if let Some(pgid) = pgid {
                let port = self.passed;
                let look = tokio::task::spawn_blocking(move || {
                    super::listeners::wrong_port_note(&super::listeners::of_group(pgid), port)
                });
                if let Ok(note) = look.await {
                    self.set_waiting(said, note);
                }
            }
            tokio::time::sleep(EXPLAIN_EVERY).await;
        }
    }

    /// Says `note` in the revision's health (`said` is what this instance said last); None
    /// takes back what it said, leaving another instance's note alone.
    fn set_waiting(&self, said: &Mutex<Option<String>>, note: Option<String>) {
        let mut said = said.lock();
        if *said == note {
            return;
        }
        {
            let mut h = self.health.lock();
            if note.is_some() || h.waiting == *said {
                h.waiting.clone_from(&note);
            }
        }
        if let Some(note) = &note {
            tracing::info!(revision = %self.run.key, instance = self.id, "not ready: {note}");
        }
        *said = note;
        self.rt.announce(&self.run.key);
    }

    /// Puts the instance into routing.
    fn join(&self, endpoints: &RevisionEndpoints) -> Arc<Instance> {
        let instance = Instance::new(
            self.rt.next_id.fetch_add(1, Ordering::Relaxed),
            std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
        );
        endpoints.add(instance.clone());
        {
            let mut h = self.health.lock();
            h.ready += 1;
            h.ever_ready = true;
        }
        self.rt.announce(&self.run.key);
        instance
    }

    /// Takes the instance out of routing; returns it so its in-flight requests can be awaited.
    fn leave(&self, endpoints: &RevisionEndpoints, serving: Option<Arc<Instance>>) -> Option<Arc<Instance>> {
        let instance = serving?;
        let removed = endpoints.remove(instance.id);
        self.health.lock().ready -= 1;
        self.rt.announce(&self.run.key);
        removed.or(Some(instance))
    }

    /// Waits for in-flight requests (up to the revision's timeout, or the shutdown drain), then
    /// stops the process group.
    async fn stop(&self, child: &mut Child, draining: Option<Arc<Instance>>) {
        if let Some(instance) = draining {
            let limit = if self.rt.closing.is_cancelled() {
                self.run.timeout.min(self.rt.shutdown_drain())
            } else {
                self.run.timeout
            };
            tokio::select! {
                _ = instance.wait_idle(limit) => {}
                // An instance that dies while draining needs no more waiting.
                _ = child.wait() => {}
            }
        }
        process::terminate(child, self.rt.config.stop_grace).await;
    }

    fn exited(&self, status: std::io::Result<std::process::ExitStatus>, since: Instant) -> Outcome {
        let code = status.as_ref().map_or(-1, process::exit_code);
        Outcome::Exited { code, served: since.elapsed() }
    }
}

/// Returns once the readiness probe `prober` passes `successThreshold` times in a row, probing
/// from its initial delay: at its period, or for Knative's aggressive probing spaced by
/// [`startup_gap`](super::probe::startup_gap) (250 µs at first, up to `poll`).
async fn until_ready(prober: &Prober, poll: Duration) {
    tokio::time::sleep(prober.initial_delay).await;
    let first = tokio::time::Instant::now();
    let mut passes = 0;
    loop {
        let at = tokio::time::Instant::now();
        if prober.check().await {
            passes += 1;
            if passes >= prober.success_threshold {
                return;
            }
        } else {
            passes = 0;
        }
        if prober.aggressive {
            let gap = super::probe::startup_gap(at.duration_since(first), poll);
            super::probe::sleep_fine(gap.saturating_sub(at.elapsed())).await;
        } else {
            tokio::time::sleep_until(at + prober.period).await;
        }
    }
}

/// Probes `prober` from its initial delay at its period: Ok once it passes `successThreshold`
/// times in a row, Err with the kubelet's words once it fails `failureThreshold` times in a row.
async fn until_started(prober: &Prober) -> Result<(), String> {
    tokio::time::sleep(prober.initial_delay).await;
    let (mut passes, mut misses) = (0, 0);
    loop {
        let at = tokio::time::Instant::now();
        match prober.probe().await {
            Ok(()) => {
                (passes, misses) = (passes + 1, 0);
                if passes >= prober.success_threshold {
                    return Ok(());
                }
            }
            Err(e) => {
                (passes, misses) = (0, misses + 1);
                if misses >= prober.failure_threshold {
                    return Err(format!("Startup probe failed: {e}"));
                }
            }
        }
        tokio::time::sleep_until(at + prober.period).await;
    }
}

/// Probes the liveness probe from its initial delay at its period; returns the kubelet's
/// message once it has failed `failureThreshold` times in a row. Never returns without one.
async fn until_dead(prober: Option<&Prober>) -> String {
    let Some(prober) = prober else {
        return std::future::pending().await;
    };
    tokio::time::sleep(prober.initial_delay).await;
    let mut misses = 0;
    loop {
        let at = tokio::time::Instant::now();
        match prober.probe().await {
            Ok(()) => misses = 0,
            Err(e) => {
                misses += 1;
                if misses >= prober.failure_threshold {
                    return format!("Liveness probe failed: {e}");
                }
            }
        }
        tokio::time::sleep_until(at + prober.period).await;
    }
}

/// The last line an instance wrote to its log (not one of Sluice's markers), shortened.
fn last_line(log: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
    let mut tail = Vec::new();
    let _ = f.read_to_end(&mut tail);
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("[sluice]")).unwrap_or("");
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_starting_instance_is_seen_ready_long_before_the_poll_interval() {
        // A port nothing listens on yet; it starts listening 30 ms later.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let prober = Prober::readiness(&sluice_api::podspec::Container::default(), port, &[]);
        let started = Instant::now();
        let listen = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("rebind")
        });
        let poll = Duration::from_secs(10);
        tokio::time::timeout(Duration::from_secs(5), until_ready(&prober, poll))
            .await
            .expect("ready well before the 10 s poll");
        let listening = listen.await.expect("listener task");
        assert!(started.elapsed() < Duration::from_secs(1), "seen ready after {:?}", started.elapsed());
        drop(listening);
    }

    #[test]
    fn backoff_is_immediate_then_doubles_to_a_cap() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(9), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
