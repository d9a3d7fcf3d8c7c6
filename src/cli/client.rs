//! `sluice apply`, `get` and `delete`: a small client of the API server, through kube-rs, over
//! https with the server's name verified against the CA it is given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::ApiResource;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use sluice_api::Kind;
use sluice_apiserver::auth::Token;
use sluice_apiserver::tls;

use super::ApiArgs;
use super::documents::{self, Document};
use super::inspect::Query;
use super::output::OutputFormat;

/// A client for the API server named by `--api` / `SLUICE_API` (https unless the URL says
/// `http://` to a loopback address), with the token [`token`] finds and the CA [`trust`] finds.
pub(super) fn client(api: &ApiArgs) -> anyhow::Result<kube::Client> {
    let address = address(api);
    let url = if address.contains("://") { address } else { format!("https://{address}") };
    let uri: http::Uri = url.parse().with_context(|| format!("invalid API address {url:?}"))?;
    let roots = match uri.scheme_str() {
        Some("https") => trust(api)?,
        Some("http") if uri.host().is_some_and(is_loopback) => Vec::new(),
        Some("http") => {
            return Err(anyhow!(
                "refusing to send the API token to {url} in clear text: use https:// (or host:port, which means https)"
            ));
        }
        _ => return Err(anyhow!("the API address {url:?} is neither https:// nor http://")),
    };
    connect(&url, &token(api)?, &roots)
}

/// The API server's address: `--api` or `SLUICE_API`, else what the state directory's
/// `endpoints.json` says `sluice serve` bound (its https address), else the default.
pub(super) fn address(api: &ApiArgs) -> String {
    if let Some(given) = &api.api {
        return given.clone();
    }
    let dir = api.state_dir.clone().unwrap_or_else(super::serve::default_state_dir);
    let written = std::fs::read(dir.join(super::serve::ENDPOINTS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|doc| doc.get("api_https").and_then(Value::as_str).map(str::to_string));
    written.unwrap_or_else(|| super::DEFAULT_API.to_string())
}

/// `error` with a hint when it is a failure to reach the server at all: which address was
/// tried, and how to start or name a server.
pub(super) fn hint_unreachable(error: anyhow::Error, api: &ApiArgs) -> anyhow::Error {
    // The client's errors reach here as text (see `explain`), the whole chain of causes.
    let text = format!("{error:#}");
    let unreachable = ["tcp connect error", "Connection refused", "No route to host", "dns error"]
        .iter()
        .any(|needle| text.contains(needle));
    if !unreachable {
        return error;
    }
    let tried = address(api);
    error.context(format!(
        "no Sluice API server answers at {tried}: start one with `sluice serve`, or name it with --api HOST:PORT (or SLUICE_API, or --state-dir DIR of the `sluice serve` to use)"
    ))
}

/// A client for the API server at `url` that shows it `token` and, over https, trusts `roots`
/// (DER; none: the system's trust store). The server name is verified against its certificate.
pub(super) fn connect(url: &str, token: &Token, roots: &[CertificateDer<'_>]) -> anyhow::Result<kube::Client> {
    let mut config = kube::Config::new(url.parse().with_context(|| format!("invalid API address {url:?}"))?);
    config.auth_info.token = Some(token.as_str().to_string().into());
    if !roots.is_empty() {
        config.root_cert = Some(roots.iter().map(|c| c.to_vec()).collect());
    }
    kube::Client::try_from(config).context("building the API client")
}

/// The CA to trust: `--certificate-authority`, else the state directory's `tls/ca.crt` when it
/// exists, else none (the system's trust store, for a server with a publicly trusted
/// certificate).
fn trust(api: &ApiArgs) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    if let Some(file) = &api.certificate_authority {
        return Ok(tls::read_certificates(file)?);
    }
    let dir = api.state_dir.clone().unwrap_or_else(super::serve::default_state_dir);
    let ca = dir.join(tls::TLS_DIR).join(tls::CA_CERT);
    if ca.exists() { Ok(tls::read_certificates(&ca)?) } else { Ok(Vec::new()) }
}

/// True for `localhost` and loopback addresses (`[::1]` as a URL writes it).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The API token: `--token` or `SLUICE_TOKEN` when given, else the token file of the state
/// directory (`--state-dir`, `SLUICE_STATE_DIR`, or `serve`'s default).
fn token(api: &ApiArgs) -> anyhow::Result<Token> {
    if let Some(text) = &api.token {
        return Token::parse(text).ok_or_else(|| {
            anyhow!("the token from --token or SLUICE_TOKEN is empty or holds a space, quote or non-ASCII character")
        });
    }
    let dir = api.state_dir.clone().unwrap_or_else(super::serve::default_state_dir);
    let file = dir.join(super::TOKEN_FILE);
    Token::read(&file)
        .with_context(|| format!("reading the API token from {}", file.display()))?
        .ok_or_else(|| no_token(&file, &address(api)))
}

fn no_token(file: &Path, api: &str) -> anyhow::Error {
    anyhow!(
        "no API token for {api}: {} does not exist. Give the server's token with --token TOKEN, the SLUICE_TOKEN environment variable, or --state-dir DIR naming the state directory of its `sluice serve` (the token is in DIR/{})",
        file.display(),
        super::TOKEN_FILE
    )
}

pub(super) fn resource(kind: Kind) -> ApiResource {
    let i = kind.info();
    ApiResource {
        group: i.group.into(),
        version: i.version.into(),
        api_version: kind.api_version(),
        kind: i.kind.into(),
        plural: i.plural.into(),
    }
}

pub(super) fn resolve_kind(name: &str) -> anyhow::Result<Kind> {
    Kind::from_user(name).ok_or_else(|| anyhow!("unknown kind {name:?}: use services (ksvc), configurations (config), routes (rt), revisions (rev), configmaps (cm) or namespaces (ns)"))
}

/// The API of `kind` in namespace `ns` (ignored for a cluster-scoped kind).
pub(super) fn dynamic_api(client: kube::Client, kind: Kind, ns: &str) -> Api<DynamicObject> {
    if kind.info().namespaced {
        Api::namespaced_with(client, ns, &resource(kind))
    } else {
        Api::all_with(client, &resource(kind))
    }
}

/// How kubectl names a kind in its messages: `service.serving.knative.dev`, `configmap`.
pub(super) fn what(kind: Kind) -> String {
    let i = kind.info();
    if i.group.is_empty() { i.singular.to_string() } else { format!("{}.{}", i.singular, i.group) }
}

/// What went wrong, in the server's words when it answered, with how to give a token when
/// the server wanted a different one, or its CA when its certificate was not trusted.
pub(super) fn explain(e: kube::Error) -> String {
    const HOW: &str = "give this server's token with --token, SLUICE_TOKEN or --state-dir";
    const CA: &str = "give the CA of this server's certificate with --certificate-authority FILE, or --state-dir DIR to trust DIR/tls/ca.crt";
    match e {
        kube::Error::Api(s) if s.code == 401 || s.code == 403 && s.reason == "Forbidden" => {
            format!("{} ({HOW})", s.message)
        }
        kube::Error::Api(s) => s.message,
        other => {
            let chain = std::iter::successors(Some(&other as &dyn std::error::Error), |e| e.source())
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            if chain.contains("certificate") { format!("{chain} ({CA})") } else { chain }
        }
    }
}

/// `sluice apply`: creates each object, or replaces it when it exists; with `--wait`, then
/// waits for each Service, Configuration and Route written to be Ready at its new generation.
pub async fn apply(
    api: &ApiArgs,
    files: &[PathBuf],
    default_ns: &str,
    wait: &super::wait::WaitFlags,
) -> anyhow::Result<ExitCode> {
    let docs = documents::read_all(files)?;
    let client = client(api)?;
    let mut failed = 0;
    let mut written = Vec::new();
    for doc in docs {
        match apply_one(&client, &doc, default_ns).await {
            Ok((line, stored)) => {
                println!("{line}");
                written.extend(stored);
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", doc.source);
            }
        }
    }
    if wait.enabled(false) {
        for w in written.iter().filter(|w| matches!(w.kind, Kind::Service | Kind::Configuration | Kind::Route)) {
            let what = format!("{} {:?}", what(w.kind), w.name);
            let api = dynamic_api(client.clone(), w.kind, &w.ns);
            println!("Waiting for {what} to be ready:");
            match super::wait::until_ready(api, &what, &w.name, w.generation, wait.timeout()).await {
                Ok(ready) => match ready["status"]["url"].as_str() {
                    Some(url) => println!("{what} is ready at {url}"),
                    None => println!("{what} is ready"),
                },
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {e}");
                }
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// An object `apply` wrote, for `--wait`.
struct Written {
    kind: Kind,
    ns: String,
    name: String,
    generation: i64,
}

async fn apply_one(
    client: &kube::Client,
    doc: &Document,
    default_ns: &str,
) -> anyhow::Result<(String, Option<Written>)> {
    let api_version = doc.value.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind_name = doc.value.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind_name.is_empty() {
        return Err(anyhow!("the object has no apiVersion or kind"));
    }
    let kind = Kind::from_type(api_version, kind_name)
        .ok_or_else(|| anyhow!("kind {kind_name:?} in {api_version:?} is not served by Sluice"))?;
    // As kubectl's default (--validate=strict): a field the schema does not have is a typo
    // that would otherwise be stored and silently not honoured.
    let unknown = sluice_api::strict::unknown_fields(kind, &doc.value);
    if !unknown.is_empty() {
        let fields: Vec<String> = unknown.iter().map(|p| format!("unknown field {p:?}")).collect();
        return Err(anyhow!("strict decoding error: {}", fields.join(", ")));
    }
    let mut obj: DynamicObject =
        serde_json::from_value(doc.value.clone()).map_err(|e| anyhow!("not a Kubernetes object: {e}"))?;
    let ns = obj.metadata.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| default_ns.to_string());
    obj.metadata.namespace = kind.info().namespaced.then(|| ns.clone());
    let api = dynamic_api(client.clone(), kind, &ns);
    let what = what(kind);
    let name = obj.metadata.name.clone().unwrap_or_default();
    let written = |stored: &DynamicObject| Written {
        kind,
        ns: ns.clone(),
        name: stored.metadata.name.clone().unwrap_or_default(),
        generation: stored.metadata.generation.unwrap_or(1),
    };
    if name.is_empty() {
        let created = api.create(&PostParams::default(), &obj).await.map_err(|e| anyhow!(explain(e)))?;
        let w = written(&created);
        return Ok((format!("{what}/{} created", w.name), Some(w)));
    }
    // Replace races other writers (the controller writes status); retry on conflict.
    for _ in 0..5 {
        let Some(current) = api.get_opt(&name).await.map_err(|e| anyhow!(explain(e)))? else {
            let created = api.create(&PostParams::default(), &obj).await.map_err(|e| anyhow!(explain(e)))?;
            return Ok((format!("{what}/{name} created"), Some(written(&created))));
        };
        obj.metadata.resource_version = current.metadata.resource_version.clone();
        match api.replace(&name, &PostParams::default(), &obj).await {
            Ok(stored) if stored.metadata.resource_version == current.metadata.resource_version => {
                return Ok((format!("{what}/{name} unchanged"), Some(written(&stored))));
            }
            Ok(stored) => return Ok((format!("{what}/{name} configured"), Some(written(&stored)))),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "Conflict" => continue,
            Err(e) => return Err(anyhow!(explain(e))),
        }
    }
    Err(anyhow!("{what}/{name} kept changing while being applied; try again"))
}

/// `sluice get`: a table, or the objects in `format`; with `watch`, then every change as it
/// happens.
pub async fn get(
    api: &ApiArgs,
    kind: &str,
    name: Option<&str>,
    ns: Option<&str>,
    format: Option<&OutputFormat>,
    selector: Option<&str>,
    watch: bool,
) -> anyhow::Result<ExitCode> {
    let kind = resolve_kind(kind)?;
    let client = client(api)?;
    let query = Query { kind, ns: ns.filter(|_| kind.info().namespaced), name, selector };
    if watch {
        return super::watch::run(&client, &query, format).await;
    }
    print!("{}", query.show(&client, format).await?);
    Ok(ExitCode::SUCCESS)
}

/// `sluice delete KIND NAME...`.
pub async fn delete(
    api: &ApiArgs,
    kind: &str,
    names: &[String],
    ns: &str,
    ignore_not_found: bool,
) -> anyhow::Result<ExitCode> {
    let kind = resolve_kind(kind)?;
    let api = dynamic_api(client(api)?, kind, ns);
    let mut code = ExitCode::SUCCESS;
    for name in names {
        if !delete_one(&api, kind, name, ignore_not_found).await {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// `sluice delete -f FILE...`: every object the files name, as `kubectl delete -f` does.
pub async fn delete_files(
    api: &ApiArgs,
    files: &[PathBuf],
    default_ns: &str,
    ignore_not_found: bool,
) -> anyhow::Result<ExitCode> {
    let docs = documents::read_all(files)?;
    let client = client(api)?;
    let mut code = ExitCode::SUCCESS;
    for doc in docs {
        let v = &doc.value;
        let api_version = v["apiVersion"].as_str().unwrap_or("");
        let kind_name = v["kind"].as_str().unwrap_or("");
        let name = v["metadata"]["name"].as_str().unwrap_or("");
        let Some(kind) = Kind::from_type(api_version, kind_name) else {
            eprintln!("error: {}: kind {kind_name:?} in {api_version:?} is not served by Sluice", doc.source);
            code = ExitCode::FAILURE;
            continue;
        };
        if name.is_empty() {
            eprintln!("error: {}: the object has no metadata.name", doc.source);
            code = ExitCode::FAILURE;
            continue;
        }
        let ns = v["metadata"]["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(default_ns);
        if !delete_one(&dynamic_api(client.clone(), kind, ns), kind, name, ignore_not_found).await {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Deletes one object, saying so as kubectl does; false when it failed.
async fn delete_one(api: &Api<DynamicObject>, kind: Kind, name: &str, ignore_not_found: bool) -> bool {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            println!("{} {name:?} deleted", what(kind));
            true
        }
        Err(kube::Error::Api(s)) if s.code == 404 && ignore_not_found => true,
        Err(e) => {
            eprintln!("error: {}", explain(e));
            false
        }
    }
}

pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_may_be_spoken_to_in_plain_http() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.0.0.2", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["192.0.2.7", "[fd00::2]", "example.com", "localhost.example.com", "0.0.0.0"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
