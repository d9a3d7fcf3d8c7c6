//! An instance's sidecars: the revision's containers other than the serving one, run beside
//! each instance as Knative runs them in the pod. Each starts with the instance, in a process
//! group of its own (watched by the warden, so a killed `sluice serve` leaves none behind), with
//! its own command, args, workingDir and env; its output goes into the revision's log, each
//! line prefixed with `[NAME] `; when it exits it is restarted with backoff (counted as a
//! restart of the revision, by container name); it stops with the instance. The instance counts
//! as ready only while every sidecar runs.
//!
//! Sidecars share the machine's network: there is no pod network namespace on Sluice's local
//! runtime, so a sidecar reaches the serving container on its `$PORT`, not on its declared port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice_api::podspec::Container;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::process::{self, StartError};
use super::supervisor::{HEALTHY_RUN, backoff, record_failure};
use super::{Failure, RevisionHealth, RevisionRun, Runtime};

/// The longest line copied from a sidecar's output; longer ones are split.
const MAX_LINE: usize = 16 * 1024;
/// How long a stopped sidecar's output may take to reach the log.
const COPY_GRACE: Duration = Duration::from_secs(1);

/// The sidecars of one instance, running until [`stop`](Self::stop).
pub struct Sidecars {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    /// How many sidecars run now.
    running: watch::Receiver<usize>,
    /// How many there are.
    pub count: usize,
}

/// What one sidecar's keeper needs.
struct Keeper {
    rt: Arc<Runtime>,
    run: Arc<RevisionRun>,
    health: Arc<Mutex<RevisionHealth>>,
    container: Container,
    /// The instance it belongs to (`namespace/revision#id`).
    instance: String,
    id: u64,
    log: PathBuf,
    running: Arc<watch::Sender<usize>>,
}

// === impl Sidecars ===

impl Sidecars {
    /// Starts every sidecar of `run` for instance `id`.
    pub fn start(rt: &Arc<Runtime>, run: &Arc<RevisionRun>, health: &Arc<Mutex<RevisionHealth>>, id: u64) -> Self {
        let (tx, running) = watch::channel(0usize);
        let tx = Arc::new(tx);
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for container in &run.sidecars {
            let keeper = Keeper {
                rt: rt.clone(),
                run: run.clone(),
                health: health.clone(),
                container: container.clone(),
                instance: format!("{}#{id}", run.key),
                id,
                log: rt.log_path(&run.key),
                running: tx.clone(),
            };
            tasks.spawn(keeper.keep(stop.clone()));
        }
        Self { stop, tasks, running, count: run.sidecars.len() }
    }

    /// True while every sidecar runs.
    pub fn all_running(&self) -> bool {
        *self.running.borrow() >= self.count
    }

    /// Returns once every sidecar runs.
    pub async fn until_all_running(&mut self) {
        let count = self.count;
        if self.running.wait_for(|n| *n >= count).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Returns when the number of running sidecars changes.
    pub async fn changed(&mut self) {
        if self.count == 0 || self.running.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stops every sidecar and waits until they are gone.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

// === impl Keeper ===

impl Keeper {
    /// Runs the sidecar, restarting it with backoff when it exits, until `stop`.
    async fn keep(self, stop: CancellationToken) {
        let name = self.container.name.clone();
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            let started = Instant::now();
            let code = match self.start() {
                Ok(child) => match self.watch(child, &stop).await {
                    Some(code) => code,
                    None => return,
                },
                Err(e) => {
                    process::log_marker(
                        &self.log,
                        &format!("sidecar {name} of instance {}: cannot start: {e}", self.id),
                    );
                    let reason =
                        if matches!(e, StartError::ImageNotFound(_)) { "ImageNotFound" } else { "StartFailed" };
                    self.failed(reason, format!("sidecar {name}: {e}"), None);
                    127
                }
            };
            if started.elapsed() >= HEALTHY_RUN {
                failures = 0;
            }
            let delay = backoff(failures);
            failures = failures.saturating_add(1);
            {
                let mut h = self.health.lock();
                h.restarts += 1;
                *h.container_restarts.entry(name.clone()).or_default() += 1;
            }
            self.rt.announce(&self.run.key);
            process::log_marker(
                &self.log,
                &format!("sidecar {name} of instance {} exited with code {code}; restarting in {delay:?}", self.id),
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    fn start(&self) -> Result<Child, StartError> {
        let rt = &self.rt;
        let instance = format!("{}/{}", self.instance, self.container.name);
        let vars = super::supervisor::variables(rt, &self.run, &self.container, &self.log)?;
        let env = process::environment(&self.run, &vars.vars, None, &rt.config.state_dir, &instance);
        let argv = process::argv(&self.container, &env, |image| rt.config.images.resolve(image))?;
        // Logged with `$(VAR)` as written for values from ConfigMaps and Secrets.
        let shown_env = process::environment(&self.run, &vars.masked(), None, &rt.config.state_dir, &instance);
        let shown = process::argv(&self.container, &shown_env, |image| rt.config.images.resolve(image))?;
        process::log_marker(
            &self.log,
            &format!("sidecar {} of instance {} starting: {shown:?}", self.container.name, self.id),
        );
        let child =
            process::spawn_piped(&rt.config.plain_launcher(), &argv, &env, self.container.working_dir.as_deref())?;
        if let (Some(warden), Some(pid)) = (&rt.config.warden, child.id()) {
            warden.watch(pid);
        }
        Ok(child)
    }

    /// Watches one run of the sidecar: its exit code when it exits on its own, None when
    /// stopped.
    async fn watch(&self, mut child: Child, stop: &CancellationToken) -> Option<i32> {
        let pgid = child.id();
        let prefix = format!("[{}] ", self.container.name);
        let mut copies = JoinSet::new();
        if let Some(out) = child.stdout.take() {
            copies.spawn(copy_lines(out, self.log.clone(), prefix.clone()));
        }
        if let Some(err) = child.stderr.take() {
            copies.spawn(copy_lines(err, self.log.clone(), prefix));
        }
        self.running.send_modify(|n| *n += 1);
        let code = tokio::select! {
            status = child.wait() => Some(status.as_ref().map_or(-1, process::exit_code)),
            () = stop.cancelled() => {
                process::terminate(&mut child, self.rt.config.stop_grace).await;
                None
            }
        };
        self.running.send_modify(|n| *n = n.saturating_sub(1));
        if let Some(pgid) = pgid {
            // Whatever it started goes with it, and its pipes close.
            process::kill_group(pgid);
            if let Some(warden) = &self.rt.config.warden {
                warden.release(pgid);
            }
        }
        let drained = async { while copies.join_next().await.is_some() {} };
        if tokio::time::timeout(COPY_GRACE, drained).await.is_err() {
            copies.abort_all();
        }
        match code {
            Some(code) => {
                let message = format!("sidecar {} exited with code {code}", self.container.name);
                self.failed("ExitCode", message, Some(code));
                Some(code)
            }
            None => {
                process::log_marker(
                    &self.log,
                    &format!("sidecar {} of instance {} stopped", self.container.name, self.id),
                );
                None
            }
        }
    }

    fn failed(&self, reason: &str, message: String, exit_code: Option<i32>) {
        let failure = Failure { reason: reason.into(), message, exit_code };
        record_failure(&self.rt, &self.run, &self.health, failure);
    }
}

/// Copies `from` into `log` line by line, each line prefixed; lines over [`MAX_LINE`] are split.
async fn copy_lines(from: impl AsyncRead + Unpin, log: PathBuf, prefix: String) {
    let mut reader = BufReader::new(from);
    let Ok(mut file) = open_append(&log).await else { return };
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        line.extend_from_slice(prefix.as_bytes());
        let read = read_line_bounded(&mut reader, &mut line, MAX_LINE).await;
        if line.len() > prefix.len() {
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            // tokio's file hands writes to a background thread: flush, so the line is in the
            // log before the next one (and before the instance is reported stopped).
            if file.write_all(&line).await.is_err() || file.flush().await.is_err() {
                return;
            }
        }
        if read == 0 {
            return;
        }
    }
}

/// Appends up to `max` bytes of one line (with its newline) to `out`; returns the bytes read
/// (0 at end of input).
async fn read_line_bounded(reader: &mut (impl AsyncBufReadExt + Unpin), out: &mut Vec<u8>, max: usize) -> usize {
    let mut read = 0;
    while read < max {
        let Ok(buf) = reader.fill_buf().await else { return read };
        if buf.is_empty() {
            return read;
        }
        let room = max - read;
        let (take, done) = match buf.iter().take(room).position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len().min(room), false),
        };
        out.extend_from_slice(&buf[..take]);
        reader.consume(take);
        read += take;
        if done {
            break;
        }
    }
    read
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new().create(true).append(true).open(path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_copied_line_by_line_with_the_prefix_and_long_lines_split() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let long = "y".repeat(MAX_LINE + 10);
        let input = format!("one\ntwo\n{long}\nlast without newline");
        copy_lines(input.as_bytes(), log.clone(), "[side] ".into()).await;
        let text = std::fs::read_to_string(&log).expect("log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["[side] one", "[side] two"]);
        assert_eq!(lines[2].len(), "[side] ".len() + MAX_LINE);
        assert_eq!(lines[3], format!("[side] {}", "y".repeat(10)));
        assert_eq!(lines[4], "[side] last without newline");
        assert_eq!(lines.len(), 5);
    }
}
