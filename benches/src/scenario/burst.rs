//! `burst`: N requests at once at a revision scaled to zero. The hello sample with a 6 s window
//! and a 1 s scale-to-zero grace period is answered once, then left until serve's metrics say
//! its autoscaler wants no instance and none runs; then N connections each send one request
//! together. Every answer is counted by status (all must be 200), the latency distribution is
//! the generator's (connect included, as for clients arriving at once), and the activator
//! queue's peak is the highest `revision_queue_depth` seen by polling serve's `/metrics` every
//! millisecond or so during the burst (a sample: a peak between two polls can be missed, and
//! the number of polls is reported).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::ScenarioError;
use super::control::{READY, Serve, sample, scale_to_zero_service};
use super::procs::get;
use crate::load::{self, LoadSpec, Mode, Stop};
use crate::outcome::Summary;
use crate::pin::Layout;
use crate::target::{Protocol, Target};

/// The pause between two polls of `/metrics` during the burst.
const POLL_PAUSE: Duration = Duration::from_millis(1);
/// The Service and its revision.
const SERVICE: &str = "burst";
const REVISION: &str = "burst-00001";

/// What `burst` needs.
pub struct Options {
    /// The `sluice` binary.
    pub sluice: std::path::PathBuf,
    /// Requests sent at once.
    pub requests: usize,
    /// How long a request may wait for its answer.
    pub timeout: Duration,
    /// Core pinning (roles `load`, `sluice`).
    pub layout: Layout,
}

/// What `burst` measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Burst {
    /// Requests sent at once.
    pub requests: usize,
    /// The burst's load: every status, errors, latency percentiles (µs).
    pub load: Summary,
    /// The highest `revision_queue_depth` seen during the burst.
    pub queue_peak: f64,
    /// The highest `autoscaler_desired_pods` seen during the burst.
    pub desired_peak: f64,
    /// `/metrics` polls made during the burst.
    pub polls: u64,
    /// How long the revision took to reach zero after its first answer (s).
    pub zero_after_s: f64,
    /// The core layout.
    pub layout: String,
}

// === impl Burst ===

impl Burst {
    /// True when every request was answered 200.
    pub fn all_answered(&self) -> bool {
        self.load.statuses.get("200").copied() == Some(self.requests as u64) && self.load.errors.is_empty()
    }
}

/// Runs `burst`; `note` sees each line worth telling as it happens.
pub fn run(opts: &Options, mut note: impl FnMut(&str)) -> Result<Burst, ScenarioError> {
    if opts.requests == 0 {
        return Err(ScenarioError::Io("--requests must be at least 1".into()));
    }
    let dir = super::workdir()?;
    let mut serve = Serve::start(&opts.sluice, dir.path(), &opts.layout, &[])?;
    note(&format!("sluice: serve's router on {} (pid {})", serve.http, serve.process.pid()));
    serve.fast_scale_to_zero()?;
    serve.apply(SERVICE, &scale_to_zero_service(SERVICE))?;
    let host = format!("{SERVICE}.default.localhost");
    let http = serve.http;
    serve
        .process
        .wait_for("to answer through the router", READY, || get(http, &host, "/").filter(|(s, _)| *s == 200))?;
    note(&format!("{REVISION}: answered; waiting for it to scale to zero (about 8 s)"));
    let zero = serve.wait_for_zero(REVISION)?;
    note(&format!("{REVISION}: at zero after {:.1} s; {} requests at once", zero.as_secs_f64(), opts.requests));

    let spec = LoadSpec {
        connections: opts.requests,
        threads: 1,
        mode: Mode::Closed,
        stop: Stop::Requests(opts.requests as u64),
        warmup: Duration::ZERO,
        timeout: opts.timeout,
        cpus: opts.layout.get("load").cloned(),
        progress: false,
        tap: None,
    };
    let target = Target::new("burst", &format!("http://{http}/"), Some(&host), Protocol::Http1)?;
    let layout = opts.layout.describe(&[("sluice", Some(serve.process.pid()))]);
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (done, metrics) = (done.clone(), serve.metrics);
        std::thread::Builder::new()
            .name("bench-burst-metrics".into())
            .spawn(move || poll_peaks(metrics, &done))
            .map_err(|e| ScenarioError::Io(format!("cannot start the metrics poller: {e}")))?
    };
    let outcome = load::run(&target, &spec, &[]);
    done.store(true, Ordering::Relaxed);
    let peaks = poller.join().map_err(|_| ScenarioError::Io("the metrics poller panicked".into()))?;
    let outcome = outcome?;
    Ok(Burst {
        requests: opts.requests,
        load: outcome.summary(),
        queue_peak: peaks.queue,
        desired_peak: peaks.desired,
        polls: peaks.polls,
        zero_after_s: zero.as_secs_f64(),
        layout,
    })
}

/// The highest values seen while polling.
#[derive(Default)]
struct Peaks {
    queue: f64,
    desired: f64,
    polls: u64,
}

/// Polls `/metrics` back to back until `done`, keeping the highest queue depth and desired
/// instance count of the revision.
fn poll_peaks(metrics: std::net::SocketAddr, done: &AtomicBool) -> Peaks {
    let mut peaks = Peaks::default();
    while !done.load(Ordering::Relaxed) {
        let Some((200, text)) = get(metrics, "localhost", "/metrics") else {
            // A failed poll is not a reading; do not spin on it.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        peaks.polls += 1;
        let value = |name| sample(&text, name, REVISION).unwrap_or(0.0);
        peaks.queue = peaks.queue.max(value("revision_queue_depth"));
        peaks.desired = peaks.desired.max(value("autoscaler_desired_pods"));
        // Back to back, the scrapes would take a good part of a core from the burst they
        // measure (hundreds of polls in 50 ms); a pause keeps them to about one a millisecond.
        std::thread::sleep(POLL_PAUSE);
    }
    peaks
}
