//! One instance slot of a revision: start the process, probe it into routing, watch it, restart
//! it with backoff when it stops on its own, and drain and stop it when asked.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice_router::endpoints::{Instance, RevisionEndpoints};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::env;
use super::probe::Prober;
use super::process::{self, StartError};
use super::{Failure, RevisionHealth, RevisionRun, Runtime};

/// Restart delays: the first restart is immediate, then 100 ms doubling up to 10 s.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// An instance that served this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// How much of its log a crashed instance's failure message quotes.
const LOG_TAIL: u64 = 4096;

/// The reason a start fails for want of a ConfigMap, Secret or key, as Kubernetes says it.
pub const CONFIG_ERROR: &str = "CreateContainerConfigError";

/// How one instance process ended.
enum Outcome {
    /// Asked to stop; stopped.
    Stopped,
    /// Stopped on its own.
    Exited { code: i32, served: Duration },
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
        let outcome = match start(&rt, &run, id, &log) {
            Ok((child, port, prober)) => {
                let lifetime = Lifetime { rt: &rt, run: &run, health: &health, id, port };
                lifetime.run(child, prober, &stop, &log).await
            }
            Err(e) => {
                // The image table is fixed for the life of the process: retrying cannot help it.
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
                    stop.cancelled().await;
                    return;
                }
                Outcome::Exited { code: 127, served: Duration::ZERO }
            }
        };
        let Outcome::Exited { code, served } = outcome else {
            return;
        };
        if served >= HEALTHY_RUN {
            failures = 0;
        }
        let delay = backoff(failures);
        failures = failures.saturating_add(1);
        health.lock().restarts += 1;
        rt.announce(&run.key);
        if !delay.is_zero() {
            process::log_marker(&log, &format!("instance {id} exited with code {code}; restarting in {delay:?}"));
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The restart delay after `failures` earlier restarts without a healthy run.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => BACKOFF_START.saturating_mul(1u32 << (n - 1).min(16)).min(BACKOFF_MAX),
    }
}

fn record_failure(rt: &Runtime, run: &RevisionRun, health: &Mutex<RevisionHealth>, failure: Failure) {
    tracing::warn!(revision = %run.key, reason = %failure.reason, message = %failure.message, "instance failed");
    health.lock().last_failure = Some(failure);
    rt.announce(&run.key);
}

/// Starts one instance process of `run`.
fn start(rt: &Runtime, run: &RevisionRun, id: u64, log: &std::path::Path) -> Result<(Child, u16, Prober), StartError> {
    let port =
        process::free_port().map_err(|source| StartError::Spawn { program: "bind 127.0.0.1:0".into(), source })?;
    let instance = format!("{}#{id}", run.key);
    let vars = variables(rt, run, log)?;
    let env = process::environment(run, &vars.vars, port, &rt.config.state_dir, &instance);
    let argv = process::argv(&run.container, &env, |image| rt.config.images.resolve(image))?;
    // What logs and errors show: `$(VAR)` left as written for variables from ConfigMaps and
    // Secrets, so no value of theirs is ever printed.
    let shown_env = process::environment(run, &vars.masked(), port, &rt.config.state_dir, &instance);
    let shown = process::argv(&run.container, &shown_env, |image| rt.config.images.resolve(image))?;
    let shown_program = shown.first().cloned().unwrap_or_default();
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
    if argv.first().is_some_and(|p| !process::exists(p, path)) {
        return Err(StartError::Spawn {
            program: shown_program,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory, or not on PATH"),
        });
    }
    process::log_marker(log, &format!("instance {id} starting on port {port}: {shown:?}"));
    let child = process::spawn(&rt.config.launcher, &argv, &env, run.container.working_dir.as_deref(), log).map_err(
        |e| match e {
            StartError::Spawn { program, source } if Some(&program) == argv.first() => {
                StartError::Spawn { program: shown_program, source }
            }
            other => other,
        },
    )?;
    if let (Some(warden), Some(pid)) = (&rt.config.warden, child.id()) {
        warden.watch(pid);
    }
    let prober = Prober::readiness(&run.container, port, &env);
    Ok((child, port, prober))
}

/// The container's variables, with ConfigMap and Secret references resolved now (as the kubelet
/// does at each container start); skipped keys are noted in the revision's log.
fn variables(rt: &Runtime, run: &RevisionRun, log: &std::path::Path) -> Result<env::Resolved, StartError> {
    let resolved = match &rt.config.env_sources {
        Some(sources) => env::resolve(&run.container, &run.key.namespace, sources.as_ref())?,
        None => env::resolve(&run.container, &run.key.namespace, &env::Unavailable)?,
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
    port: u16,
}

impl Lifetime<'_> {
    async fn run(&self, mut child: Child, prober: Prober, stop: &CancellationToken, log: &std::path::Path) -> Outcome {
        let pgid = child.id();
        self.health.lock().running += 1;
        self.rt.announce(&self.run.key);
        let outcome = self.watch(&mut child, &prober, stop).await;
        if let Some(pgid) = pgid {
            // Whatever the instance started goes with it, as a container's processes do.
            process::kill_group(pgid);
            if let Some(warden) = &self.rt.config.warden {
                warden.release(pgid);
            }
        }
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
        }
        outcome
    }

    async fn watch(&self, child: &mut Child, prober: &Prober, stop: &CancellationToken) -> Outcome {
        let endpoints = self.rt.endpoints.revision(&self.run.key);
        let started = Instant::now();
        // Until ready: probe quickly at first, backing off to `readiness_poll`.
        let became_ready = until_ready(prober, self.rt.config.readiness_poll);
        tokio::select! {
            () = became_ready => {}
            status = child.wait() => return self.exited(status, started),
            () = stop.cancelled() => {
                self.stop(child, None).await;
                return Outcome::Stopped;
            }
        }
        let mut serving = Some(self.join(&endpoints));
        let ready_at = Instant::now();
        let log = self.rt.log_path(&self.run.key);
        process::log_marker(&log, &format!("instance {} ready after {:?}", self.id, started.elapsed()));
        let mut misses = 0u32;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + prober.period, prober.period);
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
                _ = tick.tick() => {
                    // Once ready: probe every period; `failureThreshold` misses take it out of
                    // routing until a probe passes again.
                    if prober.check().await {
                        misses = 0;
                        if serving.is_none() {
                            serving = Some(self.join(&endpoints));
                        }
                    } else {
                        misses += 1;
                        if misses >= prober.failure_threshold && serving.is_some() {
                            tracing::warn!(revision = %self.run.key, instance = self.id, "readiness probe failing: out of routing");
                            self.leave(&endpoints, serving.take());
                        }
                    }
                }
            }
        }
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

/// Returns once `prober` first passes: after the probe's initial delay, probes spaced by
/// [`startup_gap`](super::probe::startup_gap) (1 ms at first, up to `poll`).
async fn until_ready(prober: &Prober, poll: Duration) {
    tokio::time::sleep(prober.initial_delay).await;
    let first = tokio::time::Instant::now();
    loop {
        let at = tokio::time::Instant::now();
        if prober.check().await {
            return;
        }
        let gap = super::probe::startup_gap(at.duration_since(first), poll);
        tokio::time::sleep_until(at + gap).await;
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
