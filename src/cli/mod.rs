//! Command-line arguments and dispatch.

mod bench;
mod client;
mod completion;
mod demo;
mod describe;
mod documents;
mod env_sources;
mod inspect;
mod jsonpath;
mod logs;
mod output;
mod rollout;
mod serve;
mod service;
mod top;
mod traffic;
mod wait;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sluice_router::endpoints::AdmissionSettings;

/// The default address of the embedded API server.
pub const DEFAULT_API: &str = "127.0.0.1:8070";
/// The file in the state directory that holds the API server's bearer token.
pub const TOKEN_FILE: &str = "token";

/// Sluice: Knative-style revisions and traffic splitting on one machine.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Sluice on the embedded default: API server, controller, runtime and router.
    Serve(ServeArgs),
    /// `serve`, plus Knative's helloworld-go sample applied (try
    /// `curl http://helloworld-go.default.localhost:8080`).
    Demo(ServeArgs),
    /// Create or update the objects in YAML/JSON files (multi-document), a directory, or stdin.
    Apply(ApplyArgs),
    /// Show objects: a table by default, or YAML, JSON, names, a JSONPath template; -w follows changes.
    Get(GetArgs),
    /// Delete objects by kind and name, or every object in files (-f), with what they own.
    Delete(DeleteArgs),
    /// Print a revision's log, or a service's latest ready revision's (its instances' output
    /// and Sluice's notes on them).
    Logs(LogsArgs),
    /// Knative services, as `kn service`: create, update, delete, list, describe.
    #[command(visible_alias = "ksvc")]
    Service {
        #[command(subcommand)]
        command: service::ServiceCommand,
    },
    /// Revisions, as `kn revision`: list, describe.
    #[command(visible_alias = "rev")]
    Revision {
        #[command(subcommand)]
        command: inspect::RevisionCommand,
    },
    /// Routes, as `kn route`: list, describe.
    Route {
        #[command(subcommand)]
        command: inspect::RouteCommand,
    },
    /// Show a service's traffic split, tags, rules, and revisions; `traffic set` edits it.
    ///
    /// `sluice traffic SERVICE` shows the split, tags, rules, and each revision's readiness
    /// and instances. `sluice traffic set SERVICE REV=PCT… [--tag REV=TAG…] [--untag TAG…]`
    /// edits the split as `kn service update --traffic` does.
    Traffic(traffic::TrafficArgs),
    /// Move a service's traffic to a revision step by step, watching the router's error
    /// counts, and undo it when the revision fails.
    Rollout(rollout::RolloutArgs),
    /// A live view of the router's metrics: per revision, traffic, requests/s, 5xx, p50/p99,
    /// in flight against capacity, instances (`--once` prints one frame as text).
    Top(top::TopArgs),
    /// Load-test a URL, or compare several side by side (Sluice, nginx, direct), and print
    /// throughput, latency percentiles, every status and error, and CPU time per request.
    Bench(bench::BenchArgs),
    /// Print a shell completion script: `source <(sluice completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: completion::Shell,
    },
    /// Print the CustomResourceDefinitions of the Knative kinds (for Kubernetes).
    Crds,
    /// Run a revision instance tied to its parent's life (used by `serve` itself).
    #[command(hide = true)]
    InstanceExec {
        /// The pid of the `sluice serve` that started it.
        #[arg(long)]
        parent_pid: u32,
        /// Run it in a network namespace of its own, forwarding 127.0.0.1:HOST_PORT outside
        /// to its PORT inside (`serve --network-namespaces`).
        #[arg(long, value_name = "HOST_PORT:PORT", value_parser = parse_forward)]
        forward: Option<(u16, u16)>,
        /// The instance's command and arguments.
        #[arg(last = true, required = true)]
        argv: Vec<std::ffi::OsString>,
    },
    /// Stop the instances' process groups named on stdin once stdin closes (`serve` starts
    /// one, so that what an instance started does not outlive a killed `serve`).
    #[command(hide = true)]
    InstanceWarden,
    /// Run a sample app (what Knative's sample images resolve to locally).
    Sample {
        #[command(subcommand)]
        app: SampleApp,
    },
}

#[derive(Debug, Subcommand)]
enum SampleApp {
    /// Knative's helloworld: answers `Hello {TARGET}!` on $PORT.
    Hello {
        /// Also serve `/env/NAME`, `/crash` and `/sicken` (for Sluice's own tests; `serve
        /// --sample-test-endpoints` starts its samples with it).
        #[arg(long, hide = true)]
        test_endpoints: bool,
    },
    /// Knative's autoscale-go: `?sleep=MS`, `?prime=N`, `?bloat=MB` make a request do work
    /// (capped at 10 minutes, 10,000,000 and 1,024 MiB), for trying the autoscaler.
    Autoscale {
        /// Also serve `/stats` (requests in flight, the most held at once, answered), for
        /// Sluice's own tests (`serve --sample-test-endpoints` starts its samples with it).
        #[arg(long, hide = true)]
        test_endpoints: bool,
    },
}

/// `sluice serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where objects, logs and the kubeconfig live.
    #[arg(long, env = "SLUICE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Address of the Kubernetes-compatible API server (port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_API)]
    pub api: SocketAddr,
    /// Address the router serves service traffic on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Also serve service traffic over HTTPS on this address (port 0 picks a free port), with
    /// HTTP/2 and HTTP/1.1 by ALPN. Certificates are chosen by SNI among --tls-host-cert ones;
    /// other hosts under --domain get one from a local CA kept in <state-dir>/tls/router-ca.crt
    /// (trust it once: `curl --cacert`).
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,
    /// A certificate for HTTPS, `DOMAIN=CERT.pem:KEY.pem` (repeatable): DOMAIN is a host, or
    /// `*.` and a domain for the hosts one label below it; CERT.pem holds the chain, leaf first.
    #[arg(long = "tls-host-cert", value_name = "DOMAIN=CERT.pem:KEY.pem", requires = "https")]
    pub tls_host_cert: Vec<sluice_router::tls::HostCertSpec>,
    /// Domain of service URLs: http://{name}.{namespace}.{domain}.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Image table (YAML `images: {name: [command, args...]}`); default `<state-dir>/images.yaml`.
    /// Read again each second: a change applies without a restart (a file that does not parse
    /// is logged and the table before it stays).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Serve the API and the router only: no controllers, so nothing is reconciled or run (for
    /// testing API clients against a quiet server).
    #[arg(long)]
    pub no_controllers: bool,
    /// Changes the store keeps for watches to resume from; a watch from an older resource
    /// version gets 410 Gone (`Expired`) and must list again.
    #[arg(long, default_value_t = sluice_apiserver::store::DEFAULT_HISTORY)]
    pub watch_history: u64,
    /// Watches the API server runs at once; one more is refused with 429 `TooManyRequests`.
    /// (Each may buffer a bounded amount; a client that stops reading is closed.)
    #[arg(long, default_value_t = sluice_apiserver::DEFAULT_MAX_WATCHES)]
    pub max_watches: usize,
    /// The API server's TLS certificate (PEM: the leaf, then any intermediates) instead of one
    /// issued by the local CA Sluice keeps in `<state-dir>/tls`.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The CA (PEM) clients should trust for --tls-cert; the kubeconfig carries it. Without it
    /// the kubeconfig names no CA and clients use the system's trust store.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Start the built-in sample apps with their test endpoints (`/env/NAME`, `/crash`, `/sicken`, `/stats`), which
    /// Sluice's own tests use; never for a server others reach.
    #[arg(long, env = "SLUICE_SAMPLE_TEST_ENDPOINTS", hide = true)]
    pub sample_test_endpoints: bool,
    /// How long, in milliseconds, a new connection to the API server or the router has to send
    /// its first byte and an HTTP/1 request its head (tests shorten it to see idle sockets
    /// closed).
    #[arg(long, default_value_t = 30_000, hide = true)]
    pub header_read_timeout_ms: u64,
    /// Requests one revision may queue while it has no free capacity (at zero, or every
    /// instance holding its containerConcurrency); one more is answered 503 with Retry-After.
    #[arg(long, default_value_t = AdmissionSettings::default().queue_depth, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub queue_depth: usize,
    /// Threads serving the router's connections, each with a single-threaded runtime and
    /// upstream pools of its own (a connection stays on the thread it was given). Default: one
    /// per core. `0` serves them on the control plane's shared runtime instead.
    #[arg(long, value_name = "N")]
    pub router_threads: Option<usize>,
    /// How long a revision may take to become ready the first time (a Go duration, whole
    /// seconds: `600s`, `10m`, `1m30s`) before it fails with ProgressDeadlineExceeded and its
    /// instances stop; Knative's `config-deployment` `progress-deadline` overrides it, a
    /// revision's `serving.knative.dev/progress-deadline` annotation overrides both.
    #[arg(long, default_value = "600s", value_name = "DURATION", value_parser = parse_progress_deadline)]
    pub progress_deadline: std::time::Duration,
    /// Run each instance in a network namespace of its own (rootless, through a user
    /// namespace), so it gets PORT = its declared containerPort (default 8080) and may listen
    /// there whatever other instances do; the router reaches it through a forwarder on a free
    /// loopback port. Needs a kernel that allows unprivileged user namespaces.
    #[arg(long)]
    pub network_namespaces: bool,
    /// How long an Event is kept after it was last seen (a Go duration: `1h`, `90m`, `30s`),
    /// as Kubernetes' `--event-ttl`.
    #[arg(long, default_value = "1h", value_parser = parse_event_ttl)]
    pub event_ttl: std::time::Duration,
    /// Events one namespace holds at most; one more removes the least recently written.
    #[arg(long, default_value_t = sluice_apiserver::events::retention::DEFAULT_PER_NAMESPACE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_events_per_namespace: usize,
    /// Where to serve `/metrics` (Prometheus text format), `/healthz` and `/readyz`, or `off`.
    /// Default 127.0.0.1:9090; when that address is taken, serve goes on without metrics (a
    /// warning says so). An address given here that cannot be bound stops serve.
    #[arg(long, value_name = "ADDR|off")]
    pub metrics: Option<serve::metrics::MetricsSetting>,
    /// Write an access log: one JSON line per request to FILE (appended to, created if need
    /// be), or to stdout with `-`. Off by default.
    #[arg(long, value_name = "FILE|-")]
    pub access_log: Option<PathBuf>,
    /// How serve logs to stderr: `text` for people, `json` for machines (one JSON object per
    /// line with `timestamp`, `level`, `target`, `fields.message` and the event's fields; no
    /// startup banner).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Whether the router gives a request without a valid W3C `traceparent` a new one (version
    /// 00, random trace and parent ids, sampled; any `tracestate` dropped) before forwarding
    /// it, or (`off`) forwards the trace headers exactly as the client sent them. A valid
    /// `traceparent` and its `tracestate` are always forwarded unchanged.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    pub trace_generate: Switch,
    /// Whether plain HTTP/1.1 `GET` and `HEAD` requests without a body take the router's fast
    /// lane (its own HTTP/1.1 server path), or (`off`) go through hyper's server like every
    /// other request; for comparing the two (`sluice bench`, `scripts/cpu-split.sh`).
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    pub fast_lane: Switch,
    /// Export a span per proxied request (one carrying a valid or generated `traceparent`) to
    /// this OTLP/HTTP traces URL, as protobuf, e.g. `http://127.0.0.1:4318/v1/traces`. Only in
    /// a sluice built with the `otlp` cargo feature.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// A setting that is on or off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    #[default]
    On,
    /// Off.
    Off,
}

/// `sluice serve --log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people, as a terminal shows them.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_forward(text: &str) -> Result<(u16, u16), String> {
    let parse = |p: &str| p.parse::<u16>().map_err(|e| format!("{p:?}: {e}"));
    let (host, inside) = text.split_once(':').ok_or("expected HOST_PORT:PORT")?;
    Ok((parse(host)?, parse(inside)?))
}

fn parse_progress_deadline(text: &str) -> Result<std::time::Duration, String> {
    sluice_controller::deadline::parse_setting(text).map_err(|e| e.to_string())
}

/// A positive Go duration, for `--event-ttl`.
fn parse_event_ttl(s: &str) -> Result<std::time::Duration, String> {
    match sluice_api::validation::duration::parse(s) {
        Some(ns) if ns > 0 => Ok(std::time::Duration::from_nanos(ns.unsigned_abs())),
        _ => Err(format!("{s:?} is not a positive duration such as 1h, 90m or 30s")),
    }
}

/// Where the CLI finds the API server, the token it shows it, and the CA it trusts. The server:
/// `--api`, else `SLUICE_API`, else the `endpoints.json` of the state directory, else
/// 127.0.0.1:8070. The token
/// is the first of: `--token`, `SLUICE_TOKEN`, the `token` file in `--state-dir` (default:
/// `serve`'s default). The CA: `--certificate-authority`, else `<state-dir>/tls/ca.crt` when it
/// exists, else the system's trust store.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// API server address: host:port (spoken to over https) or a URL. `http://` is allowed
    /// only to a loopback address, so the token never crosses a network in clear text.
    /// Without it (or SLUICE_API): the address in the state directory's `endpoints.json`
    /// (written by `sluice serve`), else 127.0.0.1:8070.
    #[arg(long, env = "SLUICE_API", global = true)]
    pub api: Option<String>,
    /// The API server's bearer token. Prefer SLUICE_TOKEN or the token file: other users of
    /// this machine can read a flag's value in the process list.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// The state directory of the `sluice serve` to talk to; its `token` file is read when no
    /// token is given, and its `tls/ca.crt` trusted when no CA is given.
    #[arg(long, env = "SLUICE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// The CA (PEM) that issued the API server's certificate, e.g. `<state-dir>/tls/ca.crt`,
    /// or the --tls-ca given to `sluice serve`.
    #[arg(long, env = "SLUICE_CERTIFICATE_AUTHORITY", global = true, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// A file, a directory of .yaml/.yml/.json files, or - for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Namespace for objects that name none.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    wait: wait::WaitFlags,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Args)]
struct GetArgs {
    /// Kind: ksvc, services, configuration, route, revision, ... (any Knative name or short name).
    kind: String,
    /// One object; all when omitted.
    name: Option<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Output format: yaml, json, wide, name, or jsonpath=TEMPLATE (e.g.
    /// 'jsonpath={.items[*].metadata.name}'). Secrets' values are masked (keys kept, each value
    /// replaced by a note of its size); `kubectl get secret NAME -o yaml` with Sluice's
    /// kubeconfig shows them.
    #[arg(short, long)]
    output: Option<output::OutputFormat>,
    /// Label selector, e.g. serving.knative.dev/service=hello.
    #[arg(short = 'l', long)]
    selector: Option<String>,
    /// After listing, print each change as it happens (until interrupted).
    #[arg(short = 'w', long)]
    watch: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Args)]
struct LogsArgs {
    /// A revision (e.g. hello-00001), or a service: its latest ready revision, each line
    /// prefixed by `[revision]`.
    revision: String,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Keep printing as the log grows.
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// Kind (not with -f).
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    kind: Option<String>,
    /// Name(s).
    #[arg(required_unless_present = "files")]
    names: Vec<String>,
    /// Delete every object in these files (as for apply: files, directories, or - for stdin).
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// Namespace (for -f: of objects that name none).
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// An object that does not exist is not an error.
    #[arg(long)]
    ignore_not_found: bool,
    #[command(flatten)]
    api: ApiArgs,
}

impl Cli {
    /// True for the commands that talk to a server rather than run one.
    /// How to log: serve's `--log-format`, text for every other command.
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Serve(a) | Command::Demo(a) => a.log_format,
            _ => LogFormat::Text,
        }
    }

    pub fn is_client(&self) -> bool {
        !matches!(
            self.command,
            Command::Serve(_)
                | Command::Demo(_)
                | Command::Sample { .. }
                | Command::InstanceExec { .. }
                | Command::InstanceWarden
        )
    }

    /// True for `sluice sample ...`, which runs as a revision instance.
    pub fn is_sample(&self) -> bool {
        matches!(self.command, Command::Sample { .. })
    }

    /// For `instance-exec`: becomes the instance without starting anything else first; returns
    /// only if that fails, with the shell's exit code for it (127 not found, 126 not runnable).
    pub fn exec_instance(&self) -> Option<ExitCode> {
        let Command::InstanceExec { parent_pid, argv, forward } = &self.command else {
            return None;
        };
        if let Some((host, inside)) = forward {
            return Some(ExitCode::from(sluice_runtime::netns::run(*parent_pid, *host, *inside, argv)));
        }
        let err = sluice_runtime::exec_instance(*parent_pid, argv);
        eprintln!("[sluice] cannot start instance {argv:?}: {err}");
        Some(ExitCode::from(err.exit_code()))
    }

    /// For `instance-warden`: watches stdin until it closes, then stops the groups still
    /// listed (no async runtime needed); `None` for any other command.
    pub fn run_warden(&self) -> Option<ExitCode> {
        if !matches!(self.command, Command::InstanceWarden) {
            return None;
        }
        let killed = sluice_runtime::keep_watch(std::io::stdin().lock());
        if killed > 0 {
            eprintln!("[sluice] instance warden: sluice serve is gone; stopped {killed} instance process groups");
        }
        Some(ExitCode::SUCCESS)
    }
}

/// Logs to stderr; `RUST_LOG` wins over `-v`. A client command (`get`, `service`, ...) says
/// what failed in its own error, so the API client's own error log stays quiet there (a `--wait`
/// that retries a dropped watch would otherwise print the client's ERROR lines).
pub fn init_tracing(verbose: u8, client: bool, format: LogFormat) {
    let default = match (verbose, client) {
        (0, true) => "info,kube=warn,kube_client=off,hyper=warn",
        (0, false) => "info,kube=warn,hyper=warn",
        (1, _) => "debug,hyper=info,kube=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.with_target(false).init(),
        // Machines filter on the target, so it is kept.
        LogFormat::Json => fmt.json().with_current_span(false).init(),
    }
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(failed) = cli.exec_instance() {
        return Ok(failed);
    }
    match cli.command {
        Command::Serve(args) => serve::run(args, |_, _| async { Ok(()) }).await,
        Command::Demo(args) => {
            let banner = args.log_format == LogFormat::Text;
            serve::run(args, move |client, http| demo::apply_sample(client, http, banner)).await
        }
        Command::Logs(l) => logs::run(&l.api, &l.revision, &l.namespace, l.follow)
            .await
            .map_err(|e| client::hint_unreachable(e, &l.api)),
        // Became the instance above, or failed there.
        Command::InstanceExec { .. } | Command::InstanceWarden => Ok(ExitCode::FAILURE),
        Command::Apply(a) => client::apply(&a.api, &a.files, &a.namespace, &a.wait)
            .await
            .map_err(|e| client::hint_unreachable(e, &a.api)),
        Command::Get(g) => {
            let ns = (!g.all_namespaces).then_some(g.namespace.as_str());
            client::get(&g.api, &g.kind, g.name.as_deref(), ns, g.output.as_ref(), g.selector.as_deref(), g.watch)
                .await
                .map_err(|e| client::hint_unreachable(e, &g.api))
        }
        Command::Delete(d) => {
            let done = match &d.kind {
                Some(kind) => client::delete(&d.api, kind, &d.names, &d.namespace, d.ignore_not_found).await,
                None => client::delete_files(&d.api, &d.files, &d.namespace, d.ignore_not_found).await,
            };
            done.map_err(|e| client::hint_unreachable(e, &d.api))
        }
        Command::Service { command } => service::run(command).await,
        Command::Traffic(args) => traffic::run(args).await,
        Command::Rollout(args) => rollout::run(args).await,
        Command::Top(args) => top::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Revision { command } => inspect::revision(command).await,
        Command::Route { command } => inspect::route(command).await,
        Command::Completion { shell } => {
            print!("{}", completion::script(shell, <Cli as clap::CommandFactory>::command()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sample { app: SampleApp::Hello { test_endpoints } } => {
            crate::sample::hello(test_endpoints).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sample { app: SampleApp::Autoscale { test_endpoints } } => {
            crate::sample::autoscale(test_endpoints).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds => {
            print!("{}", sluice_api::crd::crds_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
