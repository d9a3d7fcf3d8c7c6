//! `sluice service create|update|delete|list|describe`: kn's service commands, with kn's flag
//! names and messages, against the API server.

mod flags;

use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::Value;
use sluice_api::Kind;

pub use flags::TemplateFlags;

use super::ApiArgs;
use super::client::{self, explain};
use super::output::OutputFormat;
use super::wait::{self, WaitFlags};
use super::{describe, inspect};

/// `sluice service ...`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service (refused when one of that name exists, as kn does); waits for Ready.
    Create(WriteArgs),
    /// Change a service: only the flags given; a template change makes a new revision.
    Update(WriteArgs),
    /// Delete services (and their configurations, revisions and routes).
    Delete(DeleteArgs),
    /// List services.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show a service: URL, revisions with traffic and tags, conditions, recent events.
    Describe(DescribeArgs),
}

/// `create` and `update`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The service's name.
    name: String,
    #[command(flatten)]
    template: TemplateFlags,
    #[command(flatten)]
    wait: WaitFlags,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Names.
    #[arg(required = true)]
    names: Vec<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// `list` (also used by `revision list` and `route list`).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format: yaml, json, wide, name, jsonpath=TEMPLATE.
    #[arg(short, long)]
    pub output: Option<OutputFormat>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `describe` (also used by `revision describe` and `route describe`).
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The name.
    pub name: String,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Instead of the page: yaml, json, name, jsonpath=TEMPLATE.
    #[arg(short, long)]
    pub output: Option<OutputFormat>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Runs a `sluice service` command.
pub async fn run(command: ServiceCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServiceCommand::Create(a) => create(&a).await.map_err(|e| client::hint_unreachable(e, &a.api)),
        ServiceCommand::Update(a) => update(&a).await.map_err(|e| client::hint_unreachable(e, &a.api)),
        ServiceCommand::Delete(a) => delete(&a).await.map_err(|e| client::hint_unreachable(e, &a.api)),
        ServiceCommand::List(a) => inspect::list(Kind::Service, &a, None).await,
        ServiceCommand::Describe(a) => describe_service(&a).await.map_err(|e| client::hint_unreachable(e, &a.api)),
    }
}

fn services(api: &ApiArgs, ns: &str) -> anyhow::Result<Api<DynamicObject>> {
    Ok(client::dynamic_api(client::client(api)?, Kind::Service, ns))
}

async fn create(a: &WriteArgs) -> anyhow::Result<ExitCode> {
    let ns = &a.namespace;
    let svc = a.template.new_service(&a.name, ns)?;
    let api = services(&a.api, ns)?;
    let obj: DynamicObject = serde_json::from_value(svc)?;
    let created = match api.create(&PostParams::default(), &obj).await {
        Ok(created) => created,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Err(anyhow!(
                "cannot create service '{}' in namespace '{ns}' because the service already exists (change it with `sluice service update`)",
                a.name
            ));
        }
        Err(e) => return Err(anyhow!(explain(e))),
    };
    finish(a, api, created, "created", "Creating").await
}

async fn update(a: &WriteArgs) -> anyhow::Result<ExitCode> {
    let api = services(&a.api, &a.namespace)?;
    // The controller writes status meanwhile: retry on a conflict with the fresh object.
    for _ in 0..5 {
        let current = api.get(&a.name).await.map_err(|e| anyhow!(explain(e)))?;
        let mut value = serde_json::to_value(&current)?;
        a.template.apply(&mut value)?;
        let changed: DynamicObject = serde_json::from_value(value)?;
        match api.replace(&a.name, &PostParams::default(), &changed).await {
            Ok(stored) => return finish(a, api, stored, "updated", "Updating").await,
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "Conflict" => continue,
            Err(e) => return Err(anyhow!(explain(e))),
        }
    }
    Err(anyhow!("service '{}' kept changing while being updated; try again", a.name))
}

/// After a write: waits for Ready (unless `--no-wait`) and says where the service is.
async fn finish(
    a: &WriteArgs,
    api: Api<DynamicObject>,
    stored: DynamicObject,
    done: &str,
    doing: &str,
) -> anyhow::Result<ExitCode> {
    let (name, ns) = (&a.name, &a.namespace);
    if !a.wait.enabled(true) {
        println!("Service '{name}' {done} in namespace '{ns}'.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{doing} service '{name}' in namespace '{ns}':");
    let generation = stored.metadata.generation.unwrap_or(1);
    match wait::until_ready(api, &format!("service '{name}'"), name, generation, a.wait.timeout()).await {
        Ok(ready) => {
            let rev = ready["status"]["latestReadyRevisionName"].as_str().unwrap_or("");
            let url = ready["status"]["url"].as_str().unwrap_or("");
            println!("Service '{name}' {done} to latest revision '{rev}' is available at URL:\n{url}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ wait::WaitError::Failed { .. }) => Err(with_revision_reason(e, a).await),
        Err(e) => Err(e.into()),
    }
}

/// A service's failure names the revision's own reason too (the service says only
/// `RevisionFailed`; the revision says why, e.g. `ContainerMissing`).
async fn with_revision_reason(e: wait::WaitError, a: &WriteArgs) -> anyhow::Error {
    let revision = async {
        let client = client::client(&a.api).ok()?;
        let svc = inspect::one(&client, Kind::Service, &a.namespace, &a.name).await.ok()?;
        let name = svc["status"]["latestCreatedRevisionName"].as_str()?.to_string();
        let rev = inspect::one(&client, Kind::Revision, &a.namespace, &name).await.ok()?;
        let ready = rev["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
        (ready["status"] == "False").then(|| format!("{name}: {}", ready["reason"].as_str().unwrap_or("")))
    };
    match revision.await {
        Some(why) => anyhow!("{e} (revision {why})"),
        None => e.into(),
    }
}

async fn delete(a: &DeleteArgs) -> anyhow::Result<ExitCode> {
    let api = services(&a.api, &a.namespace)?;
    let mut code = ExitCode::SUCCESS;
    for name in &a.names {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => println!("Service '{name}' successfully deleted in namespace '{}'.", a.namespace),
            Err(e) => {
                eprintln!("error: {}", explain(e));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

async fn describe_service(a: &DescribeArgs) -> anyhow::Result<ExitCode> {
    let client = client::client(&a.api)?;
    let api = client::dynamic_api(client.clone(), Kind::Service, &a.namespace);
    let svc = serde_json::to_value(api.get(&a.name).await.map_err(|e| anyhow!(explain(e)))?)?;
    if let Some(format) = &a.output {
        return inspect::print_one(format, Kind::Service, &svc);
    }
    let revisions = client::dynamic_api(client.clone(), Kind::Revision, &a.namespace);
    let selector = format!("serving.knative.dev/service={}", a.name);
    let revisions = revisions.list(&ListParams::default().labels(&selector)).await.map_err(|e| anyhow!(explain(e)))?;
    let revisions: Vec<Value> = revisions.items.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
    let events = inspect::events(&client, &a.namespace, &a.name, &["Service", "Configuration", "Route"]).await?;
    let page = describe::ServicePage {
        service: &svc,
        revisions: &revisions,
        events: events.as_deref(),
        now: jiff::Timestamp::now(),
    };
    print!("{}", describe::service(&page));
    Ok(ExitCode::SUCCESS)
}
