//! The load generator: `threads` OS threads, each with a current-thread Tokio runtime driving
//! its share of the connections, in closed loop (each connection sends back to back) or open
//! loop (a fixed total rate, each connection on its own schedule, latency measured from the
//! intended send time so a stall is not hidden: no coordinated omission, as wrk2; a request
//! sent on time by an idle connection is charged from the generator timer's wake-up, so the
//! timer's 1 ms granularity is not charged to the target). The
//! coordinator thread reads the watched processes' CPU time at the window's edges and draws
//! the progress bar.

mod conn;
mod h1;
pub mod tap;
mod worker;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::time::Instant;

use crate::cpu::{CpuError, Watch};
use crate::outcome::{Outcome, Tally};
use crate::pin::{CpuList, PinError, pin_this_thread};
use crate::progress::Progress;
use crate::target::Target;

/// How often the coordinator redraws progress while it waits.
const TICK: Duration = Duration::from_millis(200);

/// A run that cannot start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The spec is inconsistent; the message names the setting.
    #[error("{0}")]
    Spec(String),
    /// A generator thread or its runtime could not start.
    #[error("the load generator cannot start: {0}")]
    Start(String),
    /// Pinning failed.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// A watched process's CPU time could not be read.
    #[error(transparent)]
    Cpu(#[from] CpuError),
}

/// Closed or open loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Each connection sends its next request as soon as the last one is answered.
    Closed,
    /// `rate` requests per second in total, spread evenly over the connections, each due at a
    /// fixed time whatever happened to the one before.
    Open {
        /// Requests per second, all connections together.
        rate: f64,
    },
}

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this long (after the warm-up).
    Duration(Duration),
    /// After this many requests (after the warm-up), answered or failed.
    Requests(u64),
}

/// How to load a target.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Connections, all threads together.
    pub connections: usize,
    /// Generator threads (each a current-thread runtime).
    pub threads: usize,
    /// Closed or open loop.
    pub mode: Mode,
    /// When to stop.
    pub stop: Stop,
    /// Load before the measured window, not counted.
    pub warmup: Duration,
    /// How long a request may wait for its response after the window ends (duration mode),
    /// or at all (requests mode); past it the request counts as a timeout.
    pub timeout: Duration,
    /// Cores the generator threads are pinned to.
    pub cpus: Option<CpuList>,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Sees every response with the backend that answered it (scenarios that need to know).
    pub tap: Option<Arc<tap::Tap>>,
}

/// The timeline of a run, shared by every connection.
pub(crate) struct Plan {
    start: Instant,
    measure_from: Instant,
    stop_at: Option<Instant>,
    timeout: Duration,
    /// Open loop: the interval between one connection's requests, and the connection count
    /// (connection i starts i/connections of an interval late, so sends are spread evenly).
    open: Option<(Duration, u32)>,
    /// Requests mode: requests left to send in the measured window.
    budget: Option<AtomicU64>,
}

/// Live counts for the progress bar (warm-up included).
#[derive(Default)]
pub(crate) struct Counters {
    responses: AtomicU64,
    errors: AtomicU64,
}

struct ThreadResult {
    tally: Tally,
    last_done: Option<Instant>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            connections: 32,
            threads: 1,
            mode: Mode::Closed,
            stop: Stop::Duration(Duration::from_secs(10)),
            warmup: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            cpus: None,
            progress: false,
            tap: None,
        }
    }
}

// === impl LoadSpec ===

impl LoadSpec {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |s: &str| Err(LoadError::Spec(s.to_string()));
        if self.connections == 0 {
            return bad("--connections must be at least 1");
        }
        if self.threads == 0 {
            return bad("--threads must be at least 1");
        }
        if self.threads > self.connections {
            return bad("--threads must not exceed --connections (a thread without a connection has nothing to do)");
        }
        if let Mode::Open { rate } = self.mode
            && !(rate.is_finite() && rate > 0.0)
        {
            return bad("--rate must be a positive number of requests per second");
        }
        match self.stop {
            Stop::Duration(d) if d.is_zero() => bad("--duration must be more than 0"),
            Stop::Requests(0) => bad("--requests must be at least 1"),
            _ => Ok(()),
        }
    }
}

// === impl Plan ===

impl Plan {
    fn new(spec: &LoadSpec, start: Instant) -> Self {
        let measure_from = start + spec.warmup;
        let open = match spec.mode {
            Mode::Closed => None,
            Mode::Open { rate } => {
                let n = u32::try_from(spec.connections).unwrap_or(u32::MAX);
                Some((Duration::from_secs_f64(f64::from(n) / rate), n))
            }
        };
        let (stop_at, budget) = match spec.stop {
            Stop::Duration(d) => (Some(measure_from + d), None),
            Stop::Requests(n) => (None, Some(AtomicU64::new(n))),
        };
        Self { start, measure_from, stop_at, timeout: spec.timeout, open, budget }
    }

    /// Open loop: when request `k` of connection `index` is due; None in closed loop.
    pub(crate) fn schedule(&self, index: usize, k: u64) -> Option<Instant> {
        let (interval, n) = self.open?;
        let offset = interval.mul_f64(index as f64 / f64::from(n));
        let k = u32::try_from(k).ok()?;
        Some(self.start + offset + interval.checked_mul(k)?)
    }

    pub(crate) fn is_past_stop(&self, at: Instant) -> bool {
        self.stop_at.is_some_and(|s| at >= s)
    }

    /// Requests mode: takes one request from the budget (false when it is spent).
    pub(crate) fn claim(&self) -> bool {
        self.budget
            .as_ref()
            .is_none_or(|b| b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok())
    }

    pub(crate) fn per_request_timeout(&self) -> bool {
        self.budget.is_some()
    }

    /// The last moment a request sent at `sent` may be answered.
    pub(crate) fn hard_stop_after(&self, sent: Instant) -> Instant {
        match self.stop_at {
            Some(stop) => stop + self.timeout,
            None => sent + self.timeout,
        }
    }
}

/// Loads `target` as `spec` says; `watch` names processes whose CPU time is charged to the
/// measured window (read at its start and end).
pub fn run(target: &Target, spec: &LoadSpec, watch: &[Watch]) -> Result<Outcome, LoadError> {
    spec.validate()?;
    let target = Arc::new(target.clone());
    let plan = Arc::new(Plan::new(spec, Instant::now()));
    let counters = Arc::new(Counters::default());
    let cpu_at = |ws: &[Watch]| ws.iter().map(Watch::cpu).collect::<Result<Vec<Duration>, CpuError>>();
    let before_warmup = cpu_at(watch)?;
    let threads = spawn_threads(&target, spec, &plan, &counters)?;
    let mut progress = Progress::new(&target.name, spec, plan.measure_from, plan.stop_at);
    let cpu_before = if spec.warmup.is_zero() {
        before_warmup
    } else {
        wait(&threads, Some(plan.measure_from), &mut progress, &counters);
        cpu_at(watch)?
    };
    wait(&threads, plan.stop_at, &mut progress, &counters);
    let cpu_after = cpu_at(watch)?;
    let mut tally = Tally::default();
    let mut last_done: Option<Instant> = None;
    for t in threads {
        let r = t.join().map_err(|_| LoadError::Start("a generator thread panicked".into()))??;
        tally.merge(&r.tally);
        last_done = last_done.max(r.last_done);
    }
    progress.finish();
    let elapsed = match plan.stop_at {
        Some(stop) => stop - plan.measure_from,
        None => last_done.map_or(Duration::ZERO, |d| d.saturating_duration_since(plan.measure_from)),
    };
    let responses = tally.responses().max(1) as f64;
    let cpu_us_per_request: BTreeMap<String, f64> = watch
        .iter()
        .zip(cpu_before.iter().zip(&cpu_after))
        .map(|(w, (b, a))| (w.name.clone(), a.saturating_sub(*b).as_secs_f64() * 1e6 / responses))
        .collect();
    Ok(Outcome { target: target.name.clone(), tally, elapsed, cpu_us_per_request })
}

/// Redraws progress until `until` (or, when None, until every thread has finished).
fn wait(
    threads: &[JoinHandle<Result<ThreadResult, LoadError>>],
    until: Option<Instant>,
    progress: &mut Progress,
    counters: &Counters,
) {
    loop {
        let now = Instant::now();
        let left = match until {
            Some(u) if now >= u => return,
            Some(u) => (u - now).min(TICK),
            None if threads.iter().all(JoinHandle::is_finished) => return,
            None => TICK,
        };
        std::thread::sleep(left);
        progress.update(&counters.totals());
    }
}

fn spawn_threads(
    target: &Arc<Target>,
    spec: &LoadSpec,
    plan: &Arc<Plan>,
    counters: &Arc<Counters>,
) -> Result<Vec<JoinHandle<Result<ThreadResult, LoadError>>>, LoadError> {
    (0..spec.threads)
        .map(|t| {
            // Connections dealt round-robin: thread t drives t, t + threads, ...
            let indexes: Vec<usize> = (t..spec.connections).step_by(spec.threads).collect();
            let (target, plan, counters, cpus) = (target.clone(), plan.clone(), counters.clone(), spec.cpus.clone());
            let tap = spec.tap.clone();
            std::thread::Builder::new()
                .name(format!("bench-load-{t}"))
                .spawn(move || generator_thread(indexes, target, plan, counters, cpus, tap))
                .map_err(|e| LoadError::Start(e.to_string()))
        })
        .collect()
}

fn generator_thread(
    indexes: Vec<usize>,
    target: Arc<Target>,
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    cpus: Option<CpuList>,
    tap: Option<Arc<tap::Tap>>,
) -> Result<ThreadResult, LoadError> {
    if let Some(cpus) = &cpus {
        pin_this_thread(cpus)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadError::Start(e.to_string()))?;
    let local = Rc::new(worker::Local {
        target,
        plan,
        tally: Rc::new(RefCell::new(Tally::default())),
        counters,
        last_done: Rc::new(RefCell::new(None)),
        tap,
    });
    let set = tokio::task::LocalSet::new();
    set.block_on(&runtime, async {
        let tasks: Vec<_> =
            indexes.into_iter().map(|i| tokio::task::spawn_local(worker::drive(i, local.clone()))).collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let tally = local.tally.borrow().clone();
    let last_done = *local.last_done.borrow();
    Ok(ThreadResult { tally, last_done })
}

// === impl Counters ===

impl Counters {
    /// (responses, errors) so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.responses.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests;
