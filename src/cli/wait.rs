//! `--wait`: follows an object through a watch until the generation just written is Ready (or
//! fails), showing progress as kn does: one live line on a terminal, a line per change otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::time::Instant;

/// How long a Ready=False may last before the wait gives up on it (kn's `--wait-window`): a
/// condition that is False for a moment during a rollout is not yet a failure.
const FALSE_WINDOW: Duration = Duration::from_secs(2);

/// kn's wait flags.
#[derive(Debug, Args)]
pub struct WaitFlags {
    /// Wait until the service is Ready (the default for service create/update; off for apply).
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// Do not wait for Ready.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for Ready before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub wait_timeout: u64,
}

/// Where an object stands for the generation being waited for.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not there yet; the message says what is going on.
    Waiting(String),
    /// Ready.
    Ready,
    /// Ready is False, with the reason and message.
    Failed { reason: String, message: String },
}

/// Why a wait ended without Ready.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Ready=False, with the condition's reason and message.
    #[error("{what} failed: {reason}: {message}")]
    Failed { what: String, reason: String, message: String },
    /// The deadline passed.
    #[error("timeout: {what} not ready after {seconds} s (last: {last})")]
    Timeout { what: String, seconds: u64, last: String },
    /// The object was deleted while waiting.
    #[error("{what} was deleted while waiting for it")]
    Deleted { what: String },
}

// === impl WaitFlags ===

impl WaitFlags {
    /// True when the command waits: `on_by_default` unless `--no-wait`, else only with `--wait`.
    pub fn enabled(&self, on_by_default: bool) -> bool {
        !self.no_wait && (self.wait || on_by_default)
    }

    /// The deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.wait_timeout)
    }
}

/// Where `obj` stands for `generation`: Ready of an older generation does not count.
pub fn verdict(obj: &Value, generation: i64) -> Verdict {
    let status = &obj["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if observed < generation {
        return Verdict::Waiting(format!("Waiting for the controller to see generation {generation}."));
    }
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let ready = conditions.iter().find(|c| c["type"] == "Ready");
    let text = |c: &Value, key: &str| c[key].as_str().unwrap_or("").to_string();
    match ready.map(|c| c["status"].as_str().unwrap_or("")) {
        Some("True") => Verdict::Ready,
        Some("False") => {
            let c = ready.expect("matched Some above");
            Verdict::Failed { reason: text(c, "reason"), message: text(c, "message") }
        }
        _ => {
            // The most telling message: Ready's, else the first other condition not yet True.
            let message = ready
                .map(|c| text(c, "message"))
                .filter(|m| !m.is_empty())
                .or_else(|| {
                    conditions
                        .iter()
                        .filter(|c| c["status"] != "True")
                        .map(|c| text(c, "message"))
                        .find(|m| !m.is_empty())
                })
                .unwrap_or_else(|| "Waiting for Ready.".to_string());
            Verdict::Waiting(message)
        }
    }
}

/// Waits until `name` in `api` is Ready at `generation` or later, printing progress to stdout;
/// returns the object as last seen.
pub async fn until_ready(
    api: Api<DynamicObject>,
    what: &str,
    name: &str,
    generation: i64,
    timeout: Duration,
) -> Result<Value, WaitError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut progress = Progress::new(started);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    // A failed watch is retried with backoff (the deadline still bounds the whole wait), so a
    // server restart or a dropped connection during a long rollout does not fail the wait.
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    let mut false_since: Option<Instant> = None;
    let mut last = Verdict::Waiting("Waiting for the first status.".into());
    loop {
        // While Ready is False, wake at the end of the window to give up on it.
        let wake = match false_since {
            Some(since) => deadline.min(since + FALSE_WINDOW),
            None => deadline,
        };
        let event = tokio::select! {
            event = events.next() => event,
            () = tokio::time::sleep_until(wake) => None,
        };
        let obj = match event {
            Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => o,
            Some(Ok(watcher::Event::Delete(_))) => {
                progress.finish();
                return Err(WaitError::Deleted { what: what.to_string() });
            }
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => continue,
            Some(Err(e)) => {
                progress.show(&format!("Watch interrupted ({e}); retrying."));
                continue;
            }
            None => {
                progress.finish();
                let window_over = false_since.is_some() && Instant::now() < deadline;
                return Err(gave_up(what, last, window_over, timeout));
            }
        };
        let value = serde_json::to_value(&obj).unwrap_or_default();
        let now = verdict(&value, generation);
        match &now {
            Verdict::Ready => {
                progress.show("Ready to serve.");
                progress.finish();
                return Ok(value);
            }
            Verdict::Waiting(message) => {
                false_since = None;
                progress.show(message);
            }
            Verdict::Failed { reason, message } => {
                false_since.get_or_insert_with(Instant::now);
                progress.show(&format!("{reason}: {message}"));
            }
        }
        last = now;
    }
}

/// Why the wait ends without Ready: the False of `last` outlasted its window, or the deadline
/// passed.
fn gave_up(what: &str, last: Verdict, window_over: bool, timeout: Duration) -> WaitError {
    let what = what.to_string();
    match last {
        Verdict::Failed { reason, message } if window_over => WaitError::Failed { what, reason, message },
        Verdict::Failed { reason, message } => {
            WaitError::Timeout { what, seconds: timeout.as_secs(), last: format!("{reason}: {message}") }
        }
        Verdict::Waiting(last) => WaitError::Timeout { what, seconds: timeout.as_secs(), last },
        Verdict::Ready => WaitError::Timeout { what, seconds: timeout.as_secs(), last: "Ready".into() },
    }
}

/// The progress line: rewritten in place on a terminal, one line per new message otherwise.
struct Progress {
    started: Instant,
    tty: bool,
    last: String,
    open: bool,
}

// === impl Progress ===

impl Progress {
    fn new(started: Instant) -> Self {
        Self { started, tty: std::io::stdout().is_terminal(), last: String::new(), open: false }
    }

    fn show(&mut self, message: &str) {
        if message == self.last {
            return;
        }
        self.last = message.to_string();
        let line = format!("{:>8.3}s {message}", self.started.elapsed().as_secs_f64());
        let mut out = std::io::stdout().lock();
        if self.tty {
            // One screen line, so the next rewrite replaces all of it (no wrapped remains).
            let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()).unwrap_or(80);
            let line: String = line.chars().take(width.saturating_sub(1).max(20)).collect();
            let _ = write!(out, "\r\x1b[K{line}");
            self.open = true;
        } else {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    fn finish(&mut self) {
        if self.open {
            println!();
            self.open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(observed: i64, ready: &str, reason: &str) -> Value {
        json!({"status": {"observedGeneration": observed, "conditions": [
            {"type": "ConfigurationsReady", "status": "Unknown", "message": "Revision starting."},
            {"type": "Ready", "status": ready, "reason": reason, "message": "m"}]}})
    }

    #[test]
    fn ready_counts_only_for_the_generation_written() {
        assert!(matches!(verdict(&obj(1, "True", ""), 2), Verdict::Waiting(_)));
        assert_eq!(verdict(&obj(2, "True", ""), 2), Verdict::Ready);
        assert_eq!(verdict(&obj(3, "True", ""), 2), Verdict::Ready);
    }

    #[test]
    fn false_is_a_failure_with_reason_and_message() {
        assert_eq!(
            verdict(&obj(1, "False", "ImageNotFound"), 1),
            Verdict::Failed { reason: "ImageNotFound".into(), message: "m".into() }
        );
    }

    #[test]
    fn unknown_shows_the_most_telling_message() {
        assert_eq!(verdict(&obj(1, "Unknown", ""), 1), Verdict::Waiting("m".into()));
        let mut o = obj(1, "Unknown", "");
        o["status"]["conditions"][1]["message"] = json!("");
        assert_eq!(verdict(&o, 1), Verdict::Waiting("Revision starting.".into()));
    }

    #[test]
    fn wait_flags_follow_kn() {
        let f = |wait, no_wait| WaitFlags { wait, no_wait, wait_timeout: 600 };
        assert!(f(false, false).enabled(true));
        assert!(!f(false, true).enabled(true));
        assert!(!f(false, false).enabled(false));
        assert!(f(true, false).enabled(false));
    }
}
