//! `sluice bench`: load a URL (closed or open loop, HTTP/1.1 or h2c) and report throughput,
//! latency percentiles, every status and error; `--compare` interleaves several targets and
//! reports medians, ratios and each process's CPU time per request; `--plot` draws the
//! percentile curves; `sluice bench steady` starts what it measures. The work is in the
//! sluice-bench crate (`benches/`); this module turns flags into its types and prints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sluice_bench::compare::{self, Comparison, Entry};
use sluice_bench::cpu::Watch;
use sluice_bench::pin::Layout;
use sluice_bench::{LoadSpec, Mode, Outcome, Protocol, Stop, Target, load, plot, report};

mod scenario;

/// `sluice bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// The URL to load (http://HOST:PORT/PATH); or use --compare.
    #[arg(required_unless_present = "compare", conflicts_with = "compare")]
    url: Option<String>,
    /// The Host header to send to URL (default: URL's host:port).
    #[arg(long, requires = "url")]
    host: Option<String>,
    /// Compare targets, NAME=URL[,host=HOST] each; their trials interleave (A B C A B C …) and
    /// each gets its median over trials and its ratio to the first.
    #[arg(long, num_args = 1.., value_name = "NAME=URL[,host=HOST]")]
    compare: Vec<String>,
    /// Trials per target with --compare.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
    /// Charge this process's CPU time (from /proc/PID/stat) to the target NAME's requests
    /// (repeatable; NAME is a --compare name, or any name for a single URL).
    #[arg(long = "cpu-pid", value_name = "NAME=PID")]
    cpu_pid: Vec<String>,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    scenario: Option<scenario::Scenario>,
}

/// How to load: shared by plain runs and scenarios.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Connections (each sends one request at a time).
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Generator threads, each a current-thread runtime driving its share of the connections.
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// Open loop: this many requests per second in total, latency measured from each
    /// request's intended send time (no coordinated omission). Without it: closed loop.
    #[arg(long, value_name = "REQ/S")]
    rate: Option<f64>,
    /// How long to measure, after the warm-up (a Go duration: 10s, 500ms, 1m).
    #[arg(short, long, default_value = "10s", value_parser = parse_duration, conflicts_with = "requests")]
    duration: Duration,
    /// Measure this many requests instead (after the warm-up).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Load before measuring, not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// How long a request may wait for its response (past the end of the run, or at all with
    /// --requests) before it counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Speak h2c (HTTP/2 with prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    h2c: bool,
    /// Pin a role to cores, NAME=CPUS (repeatable): `load` is the generator, other names are
    /// --cpu-pid names (and in scenarios `backend`, `sluice`, `nginx`). Uses taskset.
    #[arg(long, value_name = "NAME=CPUS")]
    pin: Vec<String>,
}

/// What to print.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Also draw every target's latency percentile curve to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// No progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match sluice_api::validation::duration::parse(s) {
        Some(ns) if ns >= 0 => Ok(Duration::from_nanos(ns.unsigned_abs())),
        _ => Err(format!("{s:?} is not a duration such as 10s, 500ms or 1m")),
    }
}

// === impl LoadArgs ===

impl LoadArgs {
    fn protocol(&self) -> Protocol {
        if self.h2c { Protocol::H2c } else { Protocol::Http1 }
    }

    fn spec(&self, layout: &Layout, output: &OutputArgs) -> LoadSpec {
        LoadSpec {
            connections: self.connections,
            threads: self.threads,
            mode: self.rate.map_or(Mode::Closed, |rate| Mode::Open { rate }),
            stop: self.requests.map_or(Stop::Duration(self.duration), Stop::Requests),
            warmup: self.warmup,
            timeout: self.timeout,
            cpus: layout.get("load").cloned(),
            progress: !output.no_progress,
            tap: None,
        }
    }
}

/// Runs `sluice bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    // The generator runs its own threads and runtimes; keep them off serve's async runtime.
    tokio::task::spawn_blocking(move || run_blocking(args)).await.context("the bench thread")?
}

fn run_blocking(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(s) = args.scenario {
        return scenario::run(s);
    }
    let layout = Layout::parse(&args.load.pin)?;
    let spec = args.load.spec(&layout, &args.output);
    let watches = watches(&args.cpu_pid)?;
    let named: Vec<(&str, Option<u32>)> = watches.iter().map(|w| (w.name.as_str(), w.pids.first().copied())).collect();
    for w in &watches {
        for pid in &w.pids {
            layout.pin_pid(&w.name, *pid)?;
        }
    }
    let layout_line = layout.describe(&named);
    if args.compare.is_empty() {
        let url = args.url.as_deref().context("a URL or --compare")?;
        let target = Target::new("target", url, args.host.as_deref(), args.load.protocol())?;
        let mut watch = vec![Watch::generator()];
        watch.extend(watches);
        let outcome = load::run(&target, &spec, &watch)?;
        return print_single(&outcome, &spec, &layout_line, &args.output);
    }
    let mut entries: Vec<Entry> = args
        .compare
        .iter()
        .map(|s| Ok(Entry { target: Target::parse_spec(s, args.load.protocol())?, watch: Vec::new() }))
        .collect::<anyhow::Result<_>>()?;
    for w in watches {
        let Some(entry) = entries.iter_mut().find(|e| e.target.name == w.name) else {
            bail!("--cpu-pid {}=…: no --compare target is named {:?}", w.name, w.name);
        };
        entry.watch.push(w);
    }
    let comparison = run_comparison(&entries, &spec, args.trials as usize, layout_line, &args.output)?;
    print_comparison(&comparison, &args.output)
}

/// `--cpu-pid NAME=PID` flags.
fn watches(specs: &[String]) -> anyhow::Result<Vec<Watch>> {
    specs
        .iter()
        .map(|s| {
            let (name, pid) = s.split_once('=').with_context(|| format!("--cpu-pid {s:?}: expected NAME=PID"))?;
            let pid: u32 = pid.parse().with_context(|| format!("--cpu-pid {s:?}: {pid:?} is not a pid"))?;
            sluice_bench::cpu::process_cpu(pid)?;
            Ok(Watch::new(name, pid))
        })
        .collect()
}

/// Runs the comparison, printing each trial to stderr as it ends (text mode).
pub(crate) fn run_comparison(
    entries: &[Entry],
    spec: &LoadSpec,
    trials: usize,
    layout: String,
    output: &OutputArgs,
) -> anyhow::Result<Comparison> {
    if !output.json {
        eprintln!("{layout}");
    }
    let quiet = output.json;
    Ok(compare::run(entries, spec, trials, layout, |round, o| {
        if !quiet {
            eprintln!("{}", trial_line(round, o));
        }
    })?)
}

/// One line per trial as it ends.
fn trial_line(round: usize, o: &Outcome) -> String {
    let p = o.tally.latency.percentiles();
    format!(
        "trial {} {:<10} {:>9.0} req/s  p50 {}  p99 {}  non-2xx {}  errors {}",
        round + 1,
        o.target,
        o.rps(),
        report::us(p.p50),
        report::us(p.p99),
        o.tally.non_2xx(),
        o.tally.errors_total()
    )
}

fn print_single(o: &Outcome, spec: &LoadSpec, layout: &str, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    if output.json {
        let mut v = serde_json::to_value(o.summary())?;
        v["layout"] = layout.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{layout}");
        print!("{}", report::outcome(o, matches!(spec.mode, Mode::Open { .. })));
    }
    if let Some(path) = &output.plot {
        plot::percentiles(path, &o.target, &[(o.target.clone(), o.tally.latency.clone())])?;
    }
    Ok(if o.tally.responses() == 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub(crate) fn print_comparison(c: &Comparison, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    if output.json {
        println!("{}", serde_json::to_string_pretty(&c.report())?);
    } else {
        print!("{}", report::medians(&c.medians(), &c.layout));
    }
    if let Some(path) = &output.plot {
        plot::percentiles(path, "latency by percentile (all trials)", &c.merged_latencies())?;
    }
    let answered = c.trials.iter().all(|t| t.iter().any(|o| o.tally.responses() > 0));
    Ok(if answered { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
