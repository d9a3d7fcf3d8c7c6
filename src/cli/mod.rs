//! Command-line arguments and dispatch.

mod client;
mod documents;
mod output;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// The default address of the embedded API server.
pub const DEFAULT_API: &str = "127.0.0.1:8070";

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
    /// Run the embedded API server (and, with it, the controller and router).
    Serve(ServeArgs),
    /// Create or update the objects in YAML/JSON files (multi-document), a directory, or stdin.
    Apply(ApplyArgs),
    /// Show objects: a table by default, or YAML/JSON.
    Get(GetArgs),
    /// Delete an object (and what it owns).
    Delete(DeleteArgs),
    /// Print the CustomResourceDefinitions of the Knative kinds (for Kubernetes).
    Crds,
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
    /// Domain of service URLs: http://{name}.{namespace}.{domain}.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
}

/// Where the CLI finds the API server.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// API server address (host:port or URL).
    #[arg(long, env = "SLUICE_API", default_value = DEFAULT_API, global = true)]
    pub api: String,
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
    /// Output format.
    #[arg(short, long, value_enum)]
    output: Option<output::Format>,
    /// Label selector, e.g. serving.knative.dev/service=hello.
    #[arg(short = 'l', long)]
    selector: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// Kind.
    kind: String,
    /// Name(s).
    #[arg(required = true)]
    names: Vec<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Logs to stderr; `RUST_LOG` wins over `-v`.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info,kube=warn,hyper=warn",
        1 => "debug,hyper=info,kube=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Apply(a) => client::apply(&a.api, &a.files, &a.namespace).await,
        Command::Get(g) => {
            let ns = (!g.all_namespaces).then_some(g.namespace.as_str());
            client::get(&g.api, &g.kind, g.name.as_deref(), ns, g.output, g.selector.as_deref()).await
        }
        Command::Delete(d) => client::delete(&d.api, &d.kind, &d.names, &d.namespace).await,
        Command::Crds => {
            print!("{}", sluice_api::crd::crds_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
