//! `sluice bench steady` (and later scenarios): flags to the scenario's options, then the
//! same printing as `--compare`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_bench::pin::Layout;
use sluice_bench::scenario::{cold_start, many_routes, rules, steady};

use super::{LoadArgs, OutputArgs, print_comparison};

/// A built-in scenario.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// One hop under steady load: the hello sample direct, through `sluice serve`, and
    /// through nginx (generated config, 1 worker, keep-alive upstream; skipped with the reason
    /// when nginx is not installed), trials interleaved; medians, ratios to direct, and CPU
    /// time per request of the backend, Sluice, nginx and the generator.
    Steady(SteadyArgs),
    /// Cold starts: each iteration applies a new Service and times the API's acknowledgement
    /// to the first 200 through the router, against the app's own spawn-to-first-200; prints
    /// both distributions and Sluice's share (the difference of the medians).
    ColdStart(ColdStartArgs),
    /// A large route table: one live service, then --services in all (the others applied
    /// through the API with initial-scale 0, in batches); how long applying them takes,
    /// `sluice serve`'s memory per service, and the live service's throughput, latency and
    /// CPU per request with 1 route against the large table.
    ManyRoutes(ManyRoutesArgs),
    /// 10 header rules per route against percent-only: two live services behind one
    /// `sluice serve`, trials interleaved; throughput, latency and CPU per request side by side.
    Rules(RulesArgs),
}

/// `sluice bench many-routes`.
#[derive(Debug, Args)]
pub struct ManyRoutesArgs {
    /// Services in the large table, the live one included.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    services: u32,
    /// Services per `sluice apply` (one multi-document file).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Trials of each phase (1 route, then the large table).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// `sluice bench rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Trials per target.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// `sluice bench cold-start`.
#[derive(Debug, Args)]
pub struct ColdStartArgs {
    /// Cold starts of each kind.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    iterations: u32,
    /// Pin roles to cores, NAME=CPUS (`backend`, `sluice`).
    #[arg(long, value_name = "NAME=CPUS")]
    pin: Vec<String>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// `sluice bench steady`.
#[derive(Debug, Args)]
pub struct SteadyArgs {
    /// Trials per target.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
    /// Leave nginx out even when it is installed.
    #[arg(long)]
    no_nginx: bool,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs a scenario.
pub fn run(s: Scenario) -> anyhow::Result<ExitCode> {
    match s {
        Scenario::Steady(a) => run_steady(a),
        Scenario::ColdStart(a) => run_cold_start(a),
        Scenario::ManyRoutes(a) => run_many_routes(a),
        Scenario::Rules(a) => run_rules(a),
    }
}

fn run_many_routes(a: ManyRoutesArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::parse(&a.load.pin)?;
    let opts = many_routes::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        services: a.services as usize,
        batch: a.batch as usize,
        spec: a.load.spec(&layout, &a.output),
        trials: a.trials as usize,
        layout,
        protocol: a.load.protocol(),
    };
    let quiet = a.output.json;
    let done = many_routes::run(&opts, |line| note(quiet, line), |round, o| trial(quiet, round, o))?;
    let s = &done.scale;
    if a.output.json {
        let mut v = serde_json::to_value(done.comparison.report())?;
        v["scale"] = serde_json::to_value(s)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let code = print_comparison(&done.comparison, &a.output)?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "applied {} services at zero in {:.1} s ({:.0}/s, batches of {}); router programmed all {} routes {:.1} s after the first apply",
        s.services - 1,
        s.apply_secs,
        s.applied_per_sec,
        s.batch,
        s.services,
        s.programmed_secs
    );
    println!(
        "sluice serve RSS: {:.1} MiB at 1 service, {:.1} MiB at {}: {:.0} bytes per service (API store, controller, autoscaler and router together)",
        mib(s.rss_one_bytes),
        mib(s.rss_many_bytes),
        s.services,
        s.rss_per_service_bytes
    );
    Ok(code)
}

fn run_rules(a: RulesArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::parse(&a.load.pin)?;
    let opts = rules::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        spec: a.load.spec(&layout, &a.output),
        trials: a.trials as usize,
        layout,
        protocol: a.load.protocol(),
    };
    let quiet = a.output.json;
    let done = rules::run(&opts, |line| note(quiet, line), |round, o| trial(quiet, round, o))?;
    print_comparison(&done, &a.output)
}

/// A scenario's progress line, on stderr unless the output is JSON.
fn note(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("{line}");
    }
}

/// A trial's line as it ends, on stderr unless the output is JSON.
fn trial(quiet: bool, round: usize, o: &sluice_bench::Outcome) {
    if !quiet {
        eprintln!("{}", super::trial_line(round, o));
    }
}

fn run_cold_start(a: ColdStartArgs) -> anyhow::Result<ExitCode> {
    let opts = cold_start::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        iterations: a.iterations as usize,
        layout: Layout::parse(&a.pin)?,
    };
    let quiet = a.json;
    let done = cold_start::run(&opts, |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(ExitCode::SUCCESS);
    }
    let ms = |v: f64| format!("{:.2} ms", v / 1000.0);
    for (label, p) in
        [("process alone (spawn → 200)", &done.process_us), ("through Sluice (apply → 200)", &done.sluice_us)]
    {
        println!("{label:<30} p50 {}  p90 {}  max {}", ms(p.p50), ms(p.p90), ms(p.max));
    }
    println!("Sluice's share at p50: {} ({} cold starts each)", ms(done.sluice_share_p50_us), done.iterations);
    Ok(ExitCode::SUCCESS)
}

fn run_steady(a: SteadyArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::parse(&a.load.pin)?;
    let opts = steady::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        spec: a.load.spec(&layout, &a.output),
        trials: a.trials as usize,
        layout,
        protocol: a.load.protocol(),
        no_nginx: a.no_nginx,
    };
    let quiet = a.output.json;
    let done = steady::run(
        &opts,
        |line| {
            if !quiet {
                eprintln!("{line}");
            }
        },
        |round, o| {
            if !quiet {
                eprintln!("{}", super::trial_line(round, o));
            }
        },
    )?;
    for s in &done.skipped {
        if quiet {
            eprintln!("skipped {s}");
        }
    }
    print_comparison(&done.comparison, &a.output)
}
