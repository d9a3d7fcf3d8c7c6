//! The live progress line on stderr (only when stderr is a terminal): phase, elapsed time,
//! current rate and errors so far.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use crate::load::{LoadSpec, Stop};

/// A progress bar, or nothing when stderr is not a terminal or progress is off.
pub struct Progress {
    bar: Option<ProgressBar>,
    measure_from: Instant,
    last: Option<(Instant, u64)>,
}

// === impl Progress ===

impl Progress {
    /// A bar for a run of `spec` against `name` (a spinner in requests mode).
    pub fn new(name: &str, spec: &LoadSpec, measure_from: Instant, stop_at: Option<Instant>) -> Self {
        let bar = (spec.progress && std::io::stderr().is_terminal()).then(|| {
            let bar = match (spec.stop, stop_at) {
                (Stop::Duration(_), Some(stop)) => {
                    let total = stop.saturating_duration_since(Instant::now()).as_millis();
                    let bar = ProgressBar::with_draw_target(
                        Some(u64::try_from(total).unwrap_or(u64::MAX)),
                        ProgressDrawTarget::stderr(),
                    );
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar
                }
                _ => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            bar.set_prefix(name.to_string());
            bar
        });
        Self { bar, measure_from, last: None }
    }

    /// Redraws with the counts so far: (responses, errors).
    pub fn update(&mut self, (responses, errors): &(u64, u64)) {
        let Some(bar) = &self.bar else { return };
        let now = Instant::now();
        let rate = match self.last {
            Some((then, n)) if now > then => (responses.saturating_sub(n)) as f64 / (now - then).as_secs_f64(),
            _ => 0.0,
        };
        self.last = Some((now, *responses));
        let phase = if now < self.measure_from { "warm-up" } else { "measuring" };
        bar.set_message(format!("{phase}: {rate:>9.0} req/s, {responses} responses, {errors} errors"));
        if let Some(len) = bar.length() {
            let gone = bar.elapsed().min(Duration::from_millis(len));
            bar.set_position(u64::try_from(gone.as_millis()).unwrap_or(len));
        } else {
            bar.tick();
        }
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
