//! `sluice rollout SERVICE --to REV --steps 10,25,50,100 --interval 30s`: a canary walked step
//! by step. Each step writes the split ([`plan`]), waits until the route reports it
//! programmed, then watches the router's counters for the interval ([`watch`]), printing a
//! live line each second. When the new revision's share of 5xx over a step's interval exceeds
//! `--max-error-rate`, or too few requests reached it (`--min-requests`, default 0: an
//! interval without requests is not judged, and the step passes with a note saying so), or
//! Ctrl-C comes, the split the rollout started from is written back, and the command says why
//! and exits non-zero. Someone else changing the split meanwhile stops the rollout without
//! restoring: their change wins. Only `spec.traffic` moves; rules (`spec.rules`) keep their
//! own splits, and their requests are counted with the revision they reach.

use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use tokio::time::Instant;

use super::ApiArgs;
use super::client::{self, explain};
use super::traffic;

mod inputs;
mod plan;
mod watch;

pub(crate) use inputs::router_metrics_url;
use inputs::{metrics_url, parse_interval, parse_rate, pin, target_revision};
pub(crate) use watch::Scraper;

use watch::Reading;

/// How long a step may take to be programmed (the route reporting the new split).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the route's status is read while waiting for it.
const PROGRAM_POLL: Duration = Duration::from_millis(200);

/// How often the live line is refreshed.
const TICK: Duration = Duration::from_secs(1);

/// The exit code after Ctrl-C, as a shell reports SIGINT.
const INTERRUPTED: u8 = 130;

/// `sluice rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The service.
    service: String,
    /// The revision to roll out (a name, or @latest for the latest ready revision).
    #[arg(long, value_name = "REV")]
    to: String,
    /// The percents the revision gets, step by step.
    #[arg(long, default_value = "10,25,50,100", value_name = "PCT,…")]
    steps: String,
    /// How long each step is watched before the next.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_interval)]
    interval: Duration,
    /// The revision's share of 5xx responses over one interval above which the rollout is
    /// undone (`5%`, or `0.5%`).
    #[arg(long, default_value = "5%", value_name = "PCT", value_parser = parse_rate)]
    max_error_rate: f64,
    /// Fewer requests than this to the revision in an interval undoes the rollout (nothing to
    /// judge by); 0 lets an interval without requests pass.
    #[arg(long, default_value_t = 0, value_name = "N")]
    min_requests: u64,
    /// The router's metrics (default: the address `sluice serve` wrote to endpoints.json).
    #[arg(long, value_name = "URL")]
    metrics_url: Option<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// How a rollout ended.
enum Outcome {
    /// Every step passed.
    Done,
    /// A step failed; the reason, the previous split to be restored.
    Abort(String),
    /// Someone else changed the split; left as they made it.
    Interfered(String),
}

/// What the walk needs.
struct Rollout<'a> {
    args: &'a RolloutArgs,
    api: Api<DynamicObject>,
    scraper: Scraper,
    to: String,
    live: bool,
}

/// Runs `sluice rollout`.
pub async fn run(args: RolloutArgs) -> anyhow::Result<ExitCode> {
    let api_args = &args.api;
    start(&args).await.map_err(|e| client::hint_unreachable(e, api_args))
}

async fn start(args: &RolloutArgs) -> anyhow::Result<ExitCode> {
    let steps = plan::steps(&args.steps)?;
    let client = client::client(&args.api)?;
    let api = traffic::services(client.clone(), &args.namespace);
    let svc = serde_json::to_value(api.get(&args.service).await.map_err(|e| anyhow!(explain(e)))?)?;
    let revisions = traffic::revisions_of(&client, &args.namespace, &args.service).await?;
    let to = target_revision(args, &svc, &revisions)?;
    let original = traffic::spec_traffic(&svc);
    let pinned = pin(&svc);
    // Every step's split is checked now, so a rollout that cannot finish never starts.
    for &pct in &steps {
        plan::at(&pinned, &to, pct)?;
    }
    let scraper = Scraper::new(metrics_url(args)?);
    scraper
        .samples()
        .await
        .with_context(|| "cannot read the router's counters before starting; name them with --metrics-url")?;
    // What the revision had before, to know the restored split is programmed.
    let share =
        pinned.iter().filter(|t| t["revisionName"].as_str() == Some(&to)).filter_map(|t| t["percent"].as_i64()).sum();
    let rollout = Rollout { args, api, scraper, to, live: std::io::stdout().is_terminal() };
    println!(
        "Rolling out {} of service '{}' in steps {} every {:?}; undone when its 5xx rate over a step exceeds {:.1}% (counters from {}).",
        rollout.to,
        args.service,
        args.steps,
        args.interval,
        args.max_error_rate * 100.0,
        rollout.scraper.url()
    );
    let outcome = tokio::select! {
        outcome = rollout.walk(&steps, &pinned) => outcome?,
        _ = tokio::signal::ctrl_c() => {
            rollout.clear_live();
            println!("Interrupted: restoring the split the rollout started from.");
            rollout.restore(&original, share).await?;
            return Ok(ExitCode::from(INTERRUPTED));
        }
    };
    match outcome {
        Outcome::Done => {
            println!("Rollout of {} complete.", rollout.to);
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Abort(why) => {
            println!("Aborting: {why}. Restoring the split the rollout started from.");
            rollout.restore(&original, share).await?;
            Ok(ExitCode::FAILURE)
        }
        Outcome::Interfered(why) => {
            println!("Stopped: {why}. The split is left as it is now.");
            Ok(ExitCode::FAILURE)
        }
    }
}

// === impl Rollout ===

impl Rollout<'_> {
    /// Every step: write, wait for it to be programmed, watch.
    async fn walk(&self, steps: &[i64], pinned: &[Value]) -> anyhow::Result<Outcome> {
        let mut written: Option<Vec<Value>> = None;
        for (i, &pct) in steps.iter().enumerate() {
            let split = plan::at(pinned, &self.to, pct)?;
            let mut interfered = None;
            let stored = traffic::write_traffic(&self.api, &self.args.service, |svc| {
                let now = traffic::spec_traffic(svc);
                if let Some(before) = &written
                    && *before != now
                {
                    interfered = Some(now);
                    bail!("the split changed");
                }
                Ok(split.clone())
            })
            .await;
            if let Some(now) = interfered {
                let now: Vec<String> = now.iter().map(traffic::describe_target).collect();
                return Ok(Outcome::Interfered(format!("someone else changed the split to {}", now.join(", "))));
            }
            let stored = stored?;
            let described: Vec<String> = split.iter().map(traffic::describe_target).collect();
            println!("Step {}/{}: {}", i + 1, steps.len(), described.join(", "));
            let generation = stored.metadata.generation.unwrap_or(0);
            if let Err(why) = self.programmed(generation, pct).await {
                return Ok(Outcome::Abort(format!("step {} was not programmed: {why:#}", i + 1)));
            }
            written = Some(traffic::spec_traffic(&serde_json::to_value(&stored)?));
            if let Some(why) = self.watch(i + 1, steps.len(), pct).await? {
                return Ok(Outcome::Abort(why));
            }
        }
        Ok(Outcome::Done)
    }

    /// Waits until the service reports generation `generation` with its routes ready and `pct`
    /// going to the revision.
    async fn programmed(&self, generation: i64, pct: i64) -> anyhow::Result<()> {
        let deadline = Instant::now() + PROGRAM_TIMEOUT;
        loop {
            let last = match self.api.get(&self.args.service).await {
                Ok(svc) => match step_state(&serde_json::to_value(&svc)?, generation, &self.to, pct) {
                    Ok(()) => return Ok(()),
                    Err(state) => state,
                },
                Err(e) => explain(e),
            };
            if Instant::now() >= deadline {
                bail!("after {PROGRAM_TIMEOUT:?}: {last}");
            }
            tokio::time::sleep(PROGRAM_POLL).await;
        }
    }

    /// Watches one step for the interval; Some(reason) when it fails.
    async fn watch(&self, step: usize, steps: usize, pct: i64) -> anyhow::Result<Option<String>> {
        let (ns, svc, to) = (&self.args.namespace, &self.args.service, &self.to);
        let read = || async {
            let samples = self.scraper.samples().await?;
            anyhow::Ok(Reading::from_samples(&samples, ns, svc, to))
        };
        let first = match read().await {
            Ok(r) => r,
            Err(e) => return Ok(Some(format!("the router's counters could not be read: {e:#}"))),
        };
        let started = Instant::now();
        let (mut last, mut last_at) = (first, started);
        let mut tick = tokio::time::interval_at(started + TICK, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let end = started + self.args.interval;
            tokio::select! {
                _ = tick.tick() => {}
                () = tokio::time::sleep_until(end) => {}
            }
            let now = match read().await {
                Ok(r) => r,
                Err(e) => return Ok(Some(format!("the router's counters could not be read: {e:#}"))),
            };
            let at = Instant::now();
            let second = now.since(last);
            let so_far = now.since(first);
            self.live_line(&format!(
                "  step {step}/{steps} ({pct}%) {:>4.0}s/{:.0}s  {to}: {}  rest: {}  (interval: {} requests to {to}, {} 5xx)",
                at.duration_since(started).as_secs_f64(),
                self.args.interval.as_secs_f64(),
                second.to.describe(at.duration_since(last_at)),
                second.rest.describe(at.duration_since(last_at)),
                so_far.to.total,
                so_far.to.errors,
            ));
            (last, last_at) = (now, at);
            if at >= end {
                self.clear_live();
                return Ok(self.judge(so_far.to));
            }
        }
    }

    /// The verdict on one interval of the new revision's counts.
    fn judge(&self, counts: watch::Counts) -> Option<String> {
        let to = &self.to;
        if counts.total < self.args.min_requests {
            return Some(format!(
                "only {} requests reached {to} in {:?} (--min-requests {}): nothing to judge by",
                counts.total, self.args.interval, self.args.min_requests
            ));
        }
        match counts.error_rate() {
            None => {
                println!("  no requests reached {to} in this interval: nothing to judge; going on");
                None
            }
            Some(rate) if rate > self.args.max_error_rate => Some(format!(
                "{to} answered {} of {} requests with 5xx ({:.1}%) over {:?}, above --max-error-rate {:.1}%",
                counts.errors,
                counts.total,
                rate * 100.0,
                self.args.interval,
                self.args.max_error_rate * 100.0
            )),
            Some(rate) => {
                println!("  {to}: {} requests, {:.1}% 5xx: within the limit", counts.total, rate * 100.0);
                None
            }
        }
    }

    /// Writes `original` back and waits (bounded) for it to be programmed, the revision back
    /// at its `share`.
    async fn restore(&self, original: &[Value], share: i64) -> anyhow::Result<()> {
        let stored = traffic::write_traffic(&self.api, &self.args.service, |_| Ok(original.to_vec()))
            .await
            .context("restoring the previous split failed; check it with `sluice traffic`")?;
        let described: Vec<String> = original.iter().map(traffic::describe_target).collect();
        let what =
            if described.is_empty() { "100% @latest (no split given)".to_string() } else { described.join(", ") };
        match self.programmed(stored.metadata.generation.unwrap_or(0), share).await {
            Ok(()) => println!("Restored: {what}."),
            Err(e) => println!("Restored {what}, but it is not programmed yet: {e:#}"),
        }
        Ok(())
    }

    fn live_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        if self.live {
            let _ = write!(out, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    fn clear_live(&self) {
        if self.live {
            print!("\r\x1b[2K");
        }
    }
}

/// Ok when `svc` reports generation `generation` with its routes ready and `to` holding `pct`
/// percent; otherwise what it reports.
fn step_state(svc: &Value, generation: i64, to: &str, pct: i64) -> Result<(), String> {
    let status = &svc["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if observed < generation {
        return Err(format!("generation {generation} not observed yet (at {observed})"));
    }
    // The route's own readiness: a newer revision failing makes the service not Ready, yet
    // the route serves the split it was given.
    let conditions = status["conditions"].as_array();
    let find = |kind: &str| conditions.and_then(|c| c.iter().find(|c| c["type"] == kind));
    let ready = find("RoutesReady").or_else(|| find("Ready"));
    match ready.and_then(|c| c["status"].as_str()) {
        Some("True") => {}
        Some("False") => {
            let c = ready.unwrap_or(&Value::Null);
            return Err(format!(
                "not ready: {} {}",
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            ));
        }
        _ => return Err("not ready yet".to_string()),
    }
    let has: i64 = status["traffic"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["revisionName"].as_str() == Some(to))
        .map(|t| t["percent"].as_i64().unwrap_or(0))
        .sum();
    if has == pct { Ok(()) } else { Err(format!("{to} has {has}% in status, want {pct}%")) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_step_is_programmed_once_observed_ready_with_its_percent() {
        let svc = |observed: i64, ready: &str, pct: i64| {
            json!({"status": {"observedGeneration": observed, "conditions": [{"type": "Ready", "status": ready, "reason": "R"}],
                   "traffic": [{"revisionName": "b", "percent": pct}, {"revisionName": "a", "percent": 100 - pct}]}})
        };
        assert_eq!(step_state(&svc(3, "True", 25), 3, "b", 25), Ok(()));
        assert!(step_state(&svc(2, "True", 25), 3, "b", 25).expect_err("old").contains("not observed"));
        assert!(step_state(&svc(3, "Unknown", 25), 3, "b", 25).expect_err("unready").contains("not ready"));
        assert!(step_state(&svc(3, "True", 10), 3, "b", 25).expect_err("pct").contains("b has 10%"));
        let mut failing = svc(3, "False", 25);
        failing["status"]["conditions"]
            .as_array_mut()
            .expect("conditions")
            .push(json!({"type": "RoutesReady", "status": "True"}));
        assert_eq!(step_state(&failing, 3, "b", 25), Ok(()), "the route is what a step waits for");
    }
}
