//! `sluice`: the command line that wires Sluice's crates together — the embedded server
//! (`serve`) and a small client for people without kubectl (`apply`, `get`, `delete`).

mod cli;
mod sample;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: fewer instructions per proxied request (callgrind,
/// `scripts/proxy-cost.sh`: 26,674 -> 25,959) and per-thread free lists without glibc's
/// per-thread arenas holding freed memory (benches/RESULTS.md, sections 2f and 10); called as
/// [`sluice_allocator`] says.
#[global_allocator]
static ALLOCATOR: sluice_allocator::Allocator = sluice_allocator::Allocator;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if let Some(failed) = args.exec_instance() {
        return failed;
    }
    if let Some(done) = args.run_warden() {
        return done;
    }
    // Only ring is built in; installing it explicitly keeps rustls from guessing.
    let _ = rustls::crypto::ring::default_provider().install_default();
    cli::init_tracing(args.verbose, args.is_client(), args.log_format());
    // The sample app is an instance: a single-threaded runtime starts fastest.
    let mut builder = if args.is_sample() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
