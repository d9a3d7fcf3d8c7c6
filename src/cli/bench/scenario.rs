//! `sluice bench steady` (and later scenarios): flags to the scenario's options, then the
//! same printing as `--compare`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_bench::pin::Layout;
use sluice_bench::scenario::{cold_start, steady};

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
