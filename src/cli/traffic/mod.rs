//! `sluice traffic SERVICE` shows a service's split, rules and revisions;
//! `sluice traffic set SERVICE REV=PCT… [--tag REV=TAG…] [--untag TAG…]` edits the split as
//! `kn service update --traffic/--tag/--untag` does, checked with the same validation the API
//! server runs before anything is written, and written against the resourceVersion read so a
//! concurrent change is never overwritten (on a conflict the edit is made again on the fresh
//! object).

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::Value;
use sluice_api::Kind;
use sluice_api::validation::ClusterLimits;

use super::ApiArgs;
use super::client::{self, explain};

mod edit;
mod show;

pub use edit::{Edit, LATEST};

/// How often a write that meets a concurrent change is made again on the fresh object.
const CONFLICT_RETRIES: usize = 5;

/// `sluice traffic`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrafficArgs {
    #[command(subcommand)]
    command: Option<TrafficCommand>,
    /// The service whose traffic to show.
    #[arg(required = true)]
    service: Option<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// `sluice traffic set`.
#[derive(Debug, Subcommand)]
enum TrafficCommand {
    /// Edit the split: `REV=PCT` pairs (REV a revision, a tag, or @latest), as kn's --traffic.
    Set(SetArgs),
}

/// `sluice traffic set`'s arguments.
#[derive(Debug, Args)]
struct SetArgs {
    /// The service.
    service: String,
    /// `REV=PCT` pairs: REV a revision name, a tag, or @latest (the latest ready revision);
    /// they must sum to 100; every target not named gets 0 % (and goes unless tagged).
    #[arg(value_name = "REV=PCT")]
    traffic: Vec<String>,
    /// Tag a revision (`REV=TAG`, REV may be @latest); its URL is `TAG-SERVICE.NS.DOMAIN`.
    #[arg(long = "tag", value_name = "REV=TAG")]
    tags: Vec<String>,
    /// Remove a tag (a target left with no tag and no traffic goes).
    #[arg(long, value_name = "TAG")]
    untag: Vec<String>,
    /// Namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `sluice traffic …`.
pub async fn run(args: TrafficArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(TrafficCommand::Set(set)) => run_set(set).await.map_err(|e| client::hint_unreachable(e, &set.api)),
        None => {
            let name = args.service.as_deref().unwrap_or_default();
            show(&args.api, &args.namespace, name).await.map_err(|e| client::hint_unreachable(e, &args.api))
        }
    }
}

async fn show(api: &ApiArgs, ns: &str, name: &str) -> anyhow::Result<ExitCode> {
    let client = client::client(api)?;
    let svc = services(client.clone(), ns).get(name).await.map_err(|e| anyhow!(explain(e)))?;
    let revisions = revisions_of(&client, ns, name).await?;
    print!("{}", show::page(&serde_json::to_value(&svc)?, &revisions));
    Ok(ExitCode::SUCCESS)
}

async fn run_set(a: &SetArgs) -> anyhow::Result<ExitCode> {
    let edit = Edit::parse(&a.traffic, &a.tags, &a.untag)?;
    let client = client::client(&a.api)?;
    let api = services(client.clone(), &a.namespace);
    let known: Vec<String> = revisions_of(&client, &a.namespace, &a.service)
        .await?
        .iter()
        .filter_map(|r| r["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let stored = write_traffic(&api, &a.service, |svc| {
        let targets = spec_traffic(svc);
        for (flag, rev) in edit.revisions(&targets) {
            if !known.iter().any(|k| k == rev) {
                bail!(
                    "{flag} {rev}: not a revision of service '{}' (its revisions: {}); a tag must be defined before it is used",
                    a.service,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                );
            }
        }
        Ok(edit.apply(&targets)?)
    })
    .await?;
    println!("Traffic of service '{}' in namespace '{}' set:", a.service, a.namespace);
    for t in spec_traffic(&serde_json::to_value(&stored)?) {
        println!("  {}", describe_target(&t));
    }
    Ok(ExitCode::SUCCESS)
}

/// A spec target in words, e.g. `90% hello-00001 (tag current)`.
pub fn describe_target(t: &Value) -> String {
    let rev = match t["revisionName"].as_str() {
        Some(r) => r.to_string(),
        None => format!("{LATEST} (latest ready revision)"),
    };
    let mut text = format!("{}% {rev}", t["percent"].as_i64().unwrap_or(0));
    if let Some(tag) = t["tag"].as_str() {
        text.push_str(&format!(" (tag {tag})"));
    }
    text
}

/// The Services of `ns`.
pub fn services(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    client::dynamic_api(client, Kind::Service, ns)
}

/// The Revisions of service `name`, as JSON.
pub async fn revisions_of(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<Vec<Value>> {
    let api = client::dynamic_api(client.clone(), Kind::Revision, ns);
    let selector = format!("serving.knative.dev/service={name}");
    let list = api.list(&ListParams::default().labels(&selector)).await.map_err(|e| anyhow!(explain(e)))?;
    Ok(list.items.iter().filter_map(|r| serde_json::to_value(r).ok()).collect())
}

/// `spec.traffic` of a Service read as JSON.
pub fn spec_traffic(svc: &Value) -> Vec<Value> {
    svc["spec"]["traffic"].as_array().cloned().unwrap_or_default()
}

/// Reads service `name`, gives `edit` its JSON to compute the new `spec.traffic`, checks the
/// result with the API server's own validation, and writes it against the resourceVersion
/// read; a conflict (someone else wrote meanwhile) reads the service again and edits that.
pub async fn write_traffic(
    api: &Api<DynamicObject>,
    name: &str,
    mut edit: impl FnMut(&Value) -> anyhow::Result<Vec<Value>>,
) -> anyhow::Result<DynamicObject> {
    for _ in 0..CONFLICT_RETRIES {
        let current = api.get(name).await.map_err(|e| anyhow!(explain(e)))?;
        let mut value = serde_json::to_value(&current)?;
        let traffic = edit(&value)?;
        value["spec"]["traffic"] = Value::Array(traffic);
        validate(&value, &current)?;
        let changed: DynamicObject = serde_json::from_value(value)?;
        match api.replace(name, &PostParams::default(), &changed).await {
            Ok(stored) => return Ok(stored),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "Conflict" => continue,
            Err(e) => return Err(anyhow!(explain(e))),
        }
    }
    Err(anyhow!("service '{name}' kept changing while its traffic was being set; try again"))
}

/// The API server's validation of the Service, reporting what concerns the split; each
/// problem names the flag behind the field (`--tag` for tags, REV=PCT for the rest).
fn validate(new: &Value, old: &DynamicObject) -> anyhow::Result<()> {
    let new: sluice_api::Service =
        serde_json::from_value(new.clone()).map_err(|e| anyhow!("the edited service does not read back: {e}"))?;
    let old: Option<sluice_api::Service> = serde_json::to_value(old).ok().and_then(|v| serde_json::from_value(v).ok());
    // Only the split changed; the template was accepted when written, under the server's
    // own limits (which this client does not know), so its findings are not ours to report.
    // Rules are: a rule may name a tag this edit removes.
    let issues: Vec<String> = sluice_api::validation::service(&new, old.as_ref(), &ClusterLimits::default())
        .issues()
        .into_iter()
        .filter(|i| i.paths.iter().any(|p| p.starts_with("spec.traffic") || p.starts_with("spec.rules")))
        .map(|i| {
            let flag = if i.paths.iter().any(|p| p.starts_with("spec.rules")) {
                "a rule of the service"
            } else if i.paths.iter().any(|p| p.contains("tag")) {
                "--tag"
            } else {
                "REV=PCT"
            };
            format!("{flag}: {i}")
        })
        .collect();
    if issues.is_empty() {
        return Ok(());
    }
    bail!("refused before writing anything, the split would be invalid:\n  {}", issues.join("\n  "))
}
