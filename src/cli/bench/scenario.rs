//! `sluice bench steady` (and later scenarios): flags to the scenario's options, then the
//! same printing as `--compare`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_bench::latency::Percentiles;
use sluice_bench::pin::Layout;
use sluice_bench::scenario::{burst, cold_start, many_routes, nginx, route_edit, rules, steady};

use super::{LoadArgs, OutputArgs, parse_duration, print_comparison};

/// A built-in scenario.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// One hop under steady load: the hello sample direct, through `sluice serve`, and
    /// through nginx (generated config, 1 worker, keep-alive upstream; skipped with the reason
    /// when nginx is not installed), trials interleaved; medians, ratios to direct, and CPU
    /// time per request of the backend, Sluice, nginx and the generator.
    Steady(SteadyArgs),
    /// Cold starts: one revision scaled from zero again and again (about 8 s of waiting for
    /// zero per iteration), request sent → first response byte through the router, against the
    /// app's own spawn → first 200; prints both distributions, the instance's spawn → ready,
    /// and Sluice's share (the difference of the medians). `--new-service` times a new
    /// Service's first answer after `sluice apply` instead.
    ColdStart(ColdStartArgs),
    /// Route edits under load: a Service with two revisions, its split patched through the
    /// API (50/50, 0/100, 100/0, …) every --interval while closed-loop load runs; for each edit,
    /// the time from the API's acknowledgement to the first response of the new split, and
    /// every non-200 and error of the run.
    RouteEdit(RouteEditArgs),
    /// N requests at once at a revision scaled to zero: every status counted (all must be
    /// 200), the latency distribution, and the activator queue's peak (polled from serve's
    /// /metrics).
    Burst(BurstArgs),
    /// A large route table: one live service, then --services in all (the others applied
    /// through the API with initial-scale 0, in batches); how long applying them takes,
    /// `sluice serve`'s memory per service, and the live service's throughput, latency and
    /// CPU per request with 1 route against the large table.
    ManyRoutes(ManyRoutesArgs),
    /// 10 header rules per route against percent-only: two live services behind one
    /// `sluice serve`, trials interleaved; throughput, latency and CPU per request side by side.
    Rules(RulesArgs),
    /// Writes the nginx config the scenarios run (1 worker by default, keep-alive upstream),
    /// checked with `nginx -t`, into --prefix and prints its path: for scripts that put nginx
    /// beside other proxies as the harness does (`nginx -p PREFIX -e PREFIX/error.log -c PATH`).
    NginxConfig(NginxConfigArgs),
}

/// `sluice bench nginx-config`.
#[derive(Debug, Args)]
pub struct NginxConfigArgs {
    /// Where nginx listens (HOST:PORT).
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// The backend it proxies to (HOST:PORT).
    #[arg(long)]
    upstream: std::net::SocketAddr,
    /// nginx's prefix directory: the config, its pid, logs and temp paths go there (created if
    /// missing).
    #[arg(long)]
    prefix: std::path::PathBuf,
    /// Worker processes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
}

/// `sluice bench route-edit`.
#[derive(Debug, Args)]
pub struct RouteEditArgs {
    /// Split edits applied, in turn 50/50, 0/100, 100/0 (from 100/0).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
    edits: u32,
    /// Time between edits; each must become visible within it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// Load connections (closed loop).
    #[arg(short, long, default_value_t = 8)]
    connections: usize,
    /// Generator threads.
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// Load before the first interval, not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: std::time::Duration,
    /// Pin roles to cores, NAME=CPUS (`load`, `sluice`).
    #[arg(long, value_name = "NAME=CPUS")]
    pin: Vec<String>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// `sluice bench burst`.
#[derive(Debug, Args)]
pub struct BurstArgs {
    /// Requests sent at once.
    #[arg(short = 'n', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
    requests: u32,
    /// How long a request may wait for its answer.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// Pin roles to cores, NAME=CPUS (`load`, `sluice`).
    #[arg(long, value_name = "NAME=CPUS")]
    pin: Vec<String>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
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
    /// Scale one revision from zero each iteration (the default).
    #[arg(long, conflicts_with = "new_service")]
    from_zero: bool,
    /// Apply a new Service each iteration instead, timing `sluice apply` returning → first 200.
    #[arg(long)]
    new_service: bool,
    /// One more flag for `sluice serve` (repeatable; from zero only), e.g.
    /// `--serve-arg=--network-namespaces`.
    #[arg(long, value_name = "FLAG", allow_hyphen_values = true, conflicts_with = "new_service")]
    serve_arg: Vec<String>,
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
    /// Workers of each proxy, the same for both: nginx's `worker_processes` and `sluice serve
    /// --router-threads`. One against one by default, as nginx has always run here.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
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
        Scenario::RouteEdit(a) => run_route_edit(a),
        Scenario::Burst(a) => run_burst(a),
        Scenario::ManyRoutes(a) => run_many_routes(a),
        Scenario::Rules(a) => run_rules(a),
        Scenario::NginxConfig(a) => run_nginx_config(a),
    }
}

fn run_nginx_config(a: NginxConfigArgs) -> anyhow::Result<ExitCode> {
    let binary = nginx::find().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&a.prefix).with_context(|| format!("creating {}", a.prefix.display()))?;
    let prefix = a.prefix.canonicalize().with_context(|| format!("resolving {}", a.prefix.display()))?;
    let conf = nginx::write_and_test(&binary, &prefix, a.listen, a.upstream, a.workers as usize)?;
    println!("{}", conf.display());
    Ok(ExitCode::SUCCESS)
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

/// Prints `line` on stderr unless the output is JSON.
fn noter(json: bool) -> impl FnMut(&str) {
    move |line| {
        if !json {
            eprintln!("{line}");
        }
    }
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn line(label: &str, p: &Percentiles) -> String {
    format!("{label:<34} p50 {}  p90 {}  max {}", ms(p.p50), ms(p.p90), ms(p.max))
}

fn run_route_edit(a: RouteEditArgs) -> anyhow::Result<ExitCode> {
    let opts = route_edit::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        edits: a.edits as usize,
        interval: a.interval,
        connections: a.connections,
        threads: a.threads,
        warmup: a.warmup,
        layout: Layout::parse(&a.pin)?,
    };
    let done = route_edit::run(&opts, noter(a.json))?;
    let failed = done.failures() > 0 || done.not_visible > 0 || done.tap_dropped > 0;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }
    println!("{}", done.layout);
    println!(
        "{:<4} {:>7} {:>10} {:>12} {:>12} {:>10} {:>8}",
        "edit", "split", "API ack", "visible", "new share", "responses", "non-200"
    );
    for (i, e) in done.edits.iter().enumerate() {
        let visible = e.visible_ms.map_or("not seen".into(), |v| format!("{v:+.2} ms"));
        let share = e.new_share.map_or("-".into(), |s| format!("{s:.2}"));
        println!(
            "{:<4} {:>7} {:>7.2} ms {visible:>12} {share:>12} {:>10} {:>8}",
            i + 1,
            e.split,
            e.api_ms,
            e.responses,
            e.non_200
        );
    }
    let v = &done.visible_us;
    println!(
        "visible after the API's acknowledgement: p50 {}  max {} over {} edits ({} not seen within --interval)",
        ms(v.p50),
        ms(v.max),
        done.edits.len() - done.not_visible,
        done.not_visible
    );
    let l = &done.load;
    println!(
        "load: {} responses in {:.2} s = {:.0} req/s; statuses {:?}; errors {:?}; {} with no known K-Revision",
        l.requests, l.seconds, l.rps, l.statuses, l.errors, done.unclassified
    );
    println!("non-200 responses and failed requests during the edits: {}", done.failures());
    let w = &done.control_plane;
    let reconciles: Vec<String> =
        w.reconciles.iter().map(|(k, t)| format!("{k} {} × {:.2} ms", t.count, t.mean_ms)).collect();
    let conflicts: Vec<String> = w.conflicts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "control plane during the edits: {} store writes × {:.2} ms (fsync'd commits); reconciles: {}; \
         write conflicts (409, requeued): {}",
        w.store_writes.count,
        w.store_writes.mean_ms,
        reconciles.join(", "),
        if conflicts.is_empty() { "none".to_string() } else { conflicts.join(", ") }
    );
    if done.tap_dropped > 0 {
        println!(
            "{} responses were not classified (the tap's buffer was full): the figures are partial",
            done.tap_dropped
        );
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn run_burst(a: BurstArgs) -> anyhow::Result<ExitCode> {
    let opts = burst::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        requests: a.requests as usize,
        timeout: a.timeout,
        layout: Layout::parse(&a.pin)?,
    };
    let done = burst::run(&opts, noter(a.json))?;
    let code = if done.all_answered() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(code);
    }
    let l = &done.load;
    println!("{}", done.layout);
    println!(
        "{} requests at once at a revision at zero: statuses {:?}, errors {:?}",
        done.requests, l.statuses, l.errors
    );
    let p = &l.latency_us;
    println!("latency (connect included)  p50 {}  p90 {}  p99 {}  max {}", ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max));
    println!(
        "activator queue peak: {} waiting (highest revision_queue_depth over {} polls of /metrics); desired instances peak {}",
        done.queue_peak, done.polls, done.desired_peak
    );
    Ok(code)
}

fn run_cold_start(a: ColdStartArgs) -> anyhow::Result<ExitCode> {
    let kind = if a.new_service { cold_start::Kind::NewService } else { cold_start::Kind::FromZero };
    let opts = cold_start::Options {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        iterations: a.iterations as usize,
        kind,
        layout: Layout::parse(&a.pin)?,
        serve_args: a.serve_arg,
    };
    let done = cold_start::run(&opts, noter(a.json))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(ExitCode::SUCCESS);
    }
    let through = match kind {
        cold_start::Kind::FromZero => "through Sluice (sent → first byte)",
        cold_start::Kind::NewService => "through Sluice (apply → 200)",
    };
    println!("{}", line("process alone (spawn → 200)", &done.process_us));
    println!("{}", line(through, &done.sluice_us));
    if let Some(r) = &done.spawn_to_ready_us {
        println!("{}", line("  instance spawn → ready (its log)", r));
    }
    if let Some(r) = &done.outside_start_us {
        println!("{}", line("  the rest (wait, then forward)", r));
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
        workers: a.workers as usize,
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
