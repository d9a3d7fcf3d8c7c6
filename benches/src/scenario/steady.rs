//! `steady`: one hop under steady load. The hello backend direct, through `sluice serve`, and
//! through nginx (when installed; skipped with the reason otherwise), compared with
//! interleaved trials; each proxy's CPU time per request, the generator's too. Both proxies
//! run the same number of workers: nginx's `worker_processes`, serve's `--router-threads`.

use std::path::PathBuf;

use super::ScenarioError;
use super::sluice::{HELLO_HOST, start_backend, start_serve_with};
use super::{nginx, procs::Owned};
use crate::compare::{self, Comparison, Entry};
use crate::cpu::Watch;
use crate::load::LoadSpec;
use crate::outcome::Outcome;
use crate::pin::Layout;
use crate::target::{Protocol, Target};

/// What `steady` needs.
pub struct Options {
    /// The `sluice` binary (the harness's own, normally).
    pub sluice: PathBuf,
    /// The load of each trial.
    pub spec: LoadSpec,
    /// Trials per target.
    pub trials: usize,
    /// Core pinning (roles `load`, `backend`, `sluice`, `nginx`).
    pub layout: Layout,
    /// HTTP/1.1 or h2c to every target (nginx's listener speaks HTTP/1.1 only: skipped for h2c).
    pub protocol: Protocol,
    /// Leave nginx out even when installed.
    pub no_nginx: bool,
    /// Workers of each proxy: nginx's worker processes, and serve's router threads.
    pub workers: usize,
}

/// What `steady` measured, and what it left out and why.
pub struct Steady {
    /// The comparison (direct first).
    pub comparison: Comparison,
    /// Targets left out, with the reason.
    pub skipped: Vec<String>,
}

/// Runs `steady`; `each` sees every trial as it ends, `note` every line worth telling as it
/// happens (what started, what was skipped).
pub fn run(
    opts: &Options,
    mut note: impl FnMut(&str),
    each: impl FnMut(usize, &Outcome),
) -> Result<Steady, ScenarioError> {
    let dir = super::workdir()?;
    let backend = start_backend(&opts.sluice, dir.path(), &opts.layout)?;
    note(&format!("backend: sluice sample hello on {} (pid {})", backend.addr, backend.process.pid()));
    let serve = start_serve_with(&opts.sluice, dir.path(), &opts.layout, "off", Some(opts.workers))?;
    note(&format!(
        "sluice: serve's router on {} (pid {}, --router-threads {}), Host {HELLO_HOST}",
        serve.addr,
        serve.process.pid(),
        opts.workers
    ));
    let mut skipped = Vec::new();
    let nginx = match nginx_target(opts) {
        Ok(bin) => {
            let prefix = dir.path().join("nginx");
            std::fs::create_dir_all(&prefix).map_err(|e| ScenarioError::Io(format!("{}: {e}", prefix.display())))?;
            let n = nginx::start(&bin, &prefix, backend.addr, &opts.layout, opts.workers)?;
            note(&format!("nginx: {} → backend (master pid {}, workers {:?})", n.addr, n.process.pid(), n.workers));
            Some(n)
        }
        Err(why) => {
            note(&format!("nginx: skipped: {why}"));
            skipped.push(format!("nginx: {why}"));
            None
        }
    };

    let url = |addr| format!("http://{addr}/");
    let mut entries = vec![
        Entry {
            target: Target::new("direct", &url(backend.addr), None, opts.protocol)?,
            watch: vec![Watch::new("backend", backend.process.pid())],
        },
        Entry {
            target: Target::new("sluice", &url(serve.addr), Some(HELLO_HOST), opts.protocol)?,
            watch: vec![Watch::new("sluice", serve.process.pid())],
        },
    ];
    let mut named: Vec<(&str, Option<u32>)> =
        vec![("backend", Some(backend.process.pid())), ("sluice", Some(serve.process.pid()))];
    if let Some(n) = &nginx {
        entries.push(Entry {
            target: Target::new("nginx", &url(n.addr), Some("localhost"), opts.protocol)?,
            watch: vec![Watch { name: "nginx".into(), pids: n.workers.clone() }],
        });
        named.push(("nginx", Some(n.process.pid())));
    }
    let layout = opts.layout.describe(&named);
    note(&layout);
    let comparison = compare::run(&entries, &opts.spec, opts.trials, layout, each)?;
    drop_all(nginx.map(|n| n.process), serve.process, backend.process);
    Ok(Steady { comparison, skipped })
}

fn nginx_target(opts: &Options) -> Result<PathBuf, String> {
    if opts.no_nginx {
        return Err("--no-nginx".into());
    }
    if opts.protocol == Protocol::H2c {
        return Err("the generated nginx config listens for HTTP/1.1 only, and this run speaks h2c".into());
    }
    nginx::find()
}

/// Stops the proxies before the backend they forward to.
fn drop_all(nginx: Option<Owned>, serve: Owned, backend: Owned) {
    drop(nginx);
    drop(serve);
    drop(backend);
}
