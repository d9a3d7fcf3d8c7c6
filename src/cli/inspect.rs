//! Reading objects for people: `get`'s fetch-and-print (Table, wide, or in full), kn's
//! `revision list|describe` and `route list|describe`, and an object's recent events.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde_json::Value;
use sluice_api::Kind;

use super::client::{self, explain};
use super::describe;
use super::output::{self, OutputFormat};
use super::service::{DescribeArgs, ListArgs};

/// The most events a describe page shows (the newest).
const RECENT_EVENTS: usize = 20;

/// `sluice revision ...`.
#[derive(Debug, Subcommand)]
pub enum RevisionCommand {
    /// List revisions.
    #[command(visible_alias = "ls")]
    List(RevisionListArgs),
    /// Show a revision: image, env, scale, traffic, conditions, recent events.
    Describe(DescribeArgs),
}

/// `revision list`.
#[derive(Debug, Args)]
pub struct RevisionListArgs {
    /// Only the revisions of this service.
    #[arg(short, long)]
    service: Option<String>,
    #[command(flatten)]
    list: ListArgs,
}

/// `sluice route ...`.
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// List routes.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show a route: URL, traffic targets, conditions, recent events.
    Describe(DescribeArgs),
}

/// What to fetch: a kind, in a namespace (all when `None`), one object or those matching a
/// label selector.
pub struct Query<'a> {
    /// The kind.
    pub kind: Kind,
    /// Namespace; `None` for all (or a cluster-scoped kind).
    pub ns: Option<&'a str>,
    /// One object.
    pub name: Option<&'a str>,
    /// A label selector.
    pub selector: Option<&'a str>,
}

// === impl Query ===

impl Query<'_> {
    /// The API path, with `query` parameters (already encoded) appended.
    pub fn path(&self, query: &[String]) -> String {
        let i = self.kind.info();
        let base = if i.group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{}/{}", i.group, i.version) };
        let mut path = match self.ns.filter(|_| i.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", i.plural),
            None => format!("{base}/{}", i.plural),
        };
        if let Some(name) = self.name {
            path = format!("{path}/{name}");
        }
        let mut params: Vec<String> = query.to_vec();
        if let Some(sel) = self.selector {
            params.push(format!("labelSelector={}", client::encode(sel)));
        }
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        path
    }

    /// True when rows need a NAMESPACE column.
    pub fn across_namespaces(&self) -> bool {
        self.ns.is_none() && self.kind.info().namespaced
    }

    /// The answer as a Table (`table`) or as the objects themselves.
    pub async fn fetch(&self, client: &kube::Client, table: bool) -> anyhow::Result<Value> {
        let accept =
            if table { "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" } else { "application/json" };
        let req = http::Request::get(self.path(&[])).header(http::header::ACCEPT, accept).body(Vec::new())?;
        let text = client.request_text(req).await.map_err(|e| anyhow!(explain(e)))?;
        serde_json::from_str(&text).context("the server's answer is not JSON")
    }

    /// What `get` prints for this query in `format` (a table when `None`).
    pub async fn show(&self, client: &kube::Client, format: Option<&OutputFormat>) -> anyhow::Result<String> {
        match format {
            None => Ok(output::table(&self.fetch(client, true).await?, self.across_namespaces())),
            Some(OutputFormat::Wide) => {
                let mut table = self.fetch(client, true).await?;
                let objects = self.fetch(client, false).await?;
                let items = objects["items"].as_array().cloned().unwrap_or_else(|| vec![objects.clone()]);
                output::widen(&mut table, self.kind, &items);
                Ok(output::table(&table, self.across_namespaces()))
            }
            Some(f) => output::render_objects(f, self.kind, &self.fetch(client, false).await?),
        }
    }
}

/// `sluice service list`, `revision list`, `route list`: `selector` narrows them.
pub async fn list(kind: Kind, a: &ListArgs, selector: Option<&str>) -> anyhow::Result<ExitCode> {
    let run = async {
        let client = client::client(&a.api)?;
        let ns = (!a.all_namespaces).then_some(a.namespace.as_str());
        let q = Query { kind, ns, name: None, selector };
        print!("{}", q.show(&client, a.output.as_ref()).await?);
        Ok(ExitCode::SUCCESS)
    };
    run.await.map_err(|e| client::hint_unreachable(e, &a.api))
}

/// One object in an output format instead of a describe page.
pub fn print_one(format: &OutputFormat, kind: Kind, obj: &Value) -> anyhow::Result<ExitCode> {
    if *format == OutputFormat::Wide {
        return Err(anyhow!("-o wide is for lists; describe takes yaml, json, name or jsonpath=TEMPLATE"));
    }
    print!("{}", output::render_objects(format, kind, obj)?);
    Ok(ExitCode::SUCCESS)
}

/// The recent events about objects named `name` in `ns` whose kind is one of `kinds`, oldest
/// first; `None` when the server keeps no events (it answers 404 for them).
pub async fn events(client: &kube::Client, ns: &str, name: &str, kinds: &[&str]) -> anyhow::Result<Option<Vec<Value>>> {
    let selector = client::encode(&format!("involvedObject.name={name}"));
    let mut answer = get_json(client, &format!("/api/v1/namespaces/{ns}/events?fieldSelector={selector}")).await;
    if matches!(&answer, Err(kube::Error::Api(s)) if s.code == 400) {
        // A server that cannot select on involvedObject: all of the namespace's, filtered here.
        answer = get_json(client, &format!("/api/v1/namespaces/{ns}/events")).await;
    }
    let list = match answer {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(anyhow!(explain(e))),
    };
    let mut events: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            let about = if e["involvedObject"].is_object() { &e["involvedObject"] } else { &e["regarding"] };
            about["name"] == name && about["kind"].as_str().is_some_and(|k| kinds.contains(&k))
        })
        .cloned()
        .collect();
    let at = |e: &Value| {
        ["lastTimestamp", "eventTime", "firstTimestamp"].iter().find_map(|k| e[*k].as_str()).unwrap_or("").to_string()
    };
    events.sort_by_key(at);
    let skip = events.len().saturating_sub(RECENT_EVENTS);
    Ok(Some(events.split_off(skip)))
}

async fn get_json(client: &kube::Client, path: &str) -> Result<Value, kube::Error> {
    let req = http::Request::get(path).body(Vec::new()).map_err(kube::Error::HttpError)?;
    client.request::<Value>(req).await
}

/// Runs a `sluice revision` command.
pub async fn revision(command: RevisionCommand) -> anyhow::Result<ExitCode> {
    match command {
        RevisionCommand::List(a) => {
            let selector = a.service.as_ref().map(|s| format!("serving.knative.dev/service={s}"));
            list(Kind::Revision, &a.list, selector.as_deref()).await
        }
        RevisionCommand::Describe(a) => {
            let run = async {
                let client = client::client(&a.api)?;
                let rev = one(&client, Kind::Revision, &a.namespace, &a.name).await?;
                if let Some(format) = &a.output {
                    return print_one(format, Kind::Revision, &rev);
                }
                let service = match rev["metadata"]["labels"]["serving.knative.dev/service"].as_str() {
                    Some(svc) => one(&client, Kind::Service, &a.namespace, svc).await.ok(),
                    None => None,
                };
                let events = events(&client, &a.namespace, &a.name, &["Revision"]).await?;
                print!("{}", describe::revision(&rev, service.as_ref(), events.as_deref(), jiff::Timestamp::now()));
                Ok(ExitCode::SUCCESS)
            };
            run.await.map_err(|e| client::hint_unreachable(e, &a.api))
        }
    }
}

/// Runs a `sluice route` command.
pub async fn route(command: RouteCommand) -> anyhow::Result<ExitCode> {
    match command {
        RouteCommand::List(a) => list(Kind::Route, &a, None).await,
        RouteCommand::Describe(a) => {
            let run = async {
                let client = client::client(&a.api)?;
                let route = one(&client, Kind::Route, &a.namespace, &a.name).await?;
                if let Some(format) = &a.output {
                    return print_one(format, Kind::Route, &route);
                }
                let events = events(&client, &a.namespace, &a.name, &["Route"]).await?;
                print!("{}", describe::route(&route, events.as_deref(), jiff::Timestamp::now()));
                Ok(ExitCode::SUCCESS)
            };
            run.await.map_err(|e| client::hint_unreachable(e, &a.api))
        }
    }
}

/// One object of `kind`, in full.
pub async fn one(client: &kube::Client, kind: Kind, ns: &str, name: &str) -> anyhow::Result<Value> {
    Query { kind, ns: Some(ns), name: Some(name), selector: None }.fetch(client, false).await
}
