//! `sluice bench steady` (and later scenarios): flags to the scenario's options, then the
//! same printing as `--compare`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_bench::pin::Layout;
use sluice_bench::scenario::steady;

use super::{LoadArgs, OutputArgs, print_comparison};

/// A built-in scenario.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// One hop under steady load: the hello sample direct, through `sluice serve`, and
    /// through nginx (generated config, 1 worker, keep-alive upstream; skipped with the reason
    /// when nginx is not installed), trials interleaved; medians, ratios to direct, and CPU
    /// time per request of the backend, Sluice, nginx and the generator.
    Steady(SteadyArgs),
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
    }
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
