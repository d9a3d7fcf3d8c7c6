//! Resource endpoints: list, watch, get, create, update, patch, delete and deletecollection on
//! `.../namespaces/{ns}/{plural}[/{name}[/status]]`, with Kubernetes' semantics for names,
//! resource versions, the status subresource and dry runs.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_api::Kind;
use sluice_api::admission::{self, Operation};
use sluice_api::validation::ClusterLimits;

use super::body;
use super::fields::{FieldValidation, Warnings};
use super::patch::{self, PatchKind};
use super::query::{self, Query};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::{ApiBody, Ctx, events, json_response, table, watch};
use crate::store::meta::{self, UpdateMode};
use crate::store::{DeleteOptions, Deleted, ListRequest, Propagation, Store, StoreError};

/// Attempts at a patch that races other writers before giving up with 409.
const PATCH_ATTEMPTS: usize = 8;

/// The resource a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The kind.
    pub kind: Kind,
    /// The namespace, when the path has one.
    pub namespace: Option<String>,
    /// The object name, for item requests.
    pub name: Option<String>,
    /// Whether the `/status` subresource is addressed.
    pub status: bool,
}

/// A request's parts the handlers read.
pub struct Request {
    /// The method.
    pub method: Method,
    /// The query parameters.
    pub query: Query,
    /// `Accept`.
    pub accept: String,
    /// The media type of the body.
    pub media: String,
    /// The body.
    pub body: bytes::Bytes,
}

/// Serves one resource request.
pub async fn handle(ctx: &Arc<Ctx>, target: Target, req: Request) -> Result<http::Response<ApiBody>, ApiError> {
    if target.status && !target.kind.info().has_status {
        return Err(ApiError::no_route(&format!("{}/status", target.kind.info().plural)));
    }
    if !target.kind.info().namespaced && target.namespace.is_some() {
        // `/api/v1/namespaces/x/namespaces`: a cluster-scoped kind has no namespaced path.
        namespace(&target)?;
    }
    match (&req.method, target.name.is_some()) {
        (&Method::GET, false) if req.query.flag("watch") => start_watch(ctx, &target, &req.query, &req.accept),
        (&Method::GET, false) => list(ctx, &target, &req).await,
        (&Method::POST, false) if !target.status => create(ctx, &target, &req).await,
        (&Method::DELETE, false) if !target.status => delete_collection(ctx, &target, &req).await,
        (&Method::GET, true) => get(ctx, &target, &req).await,
        (&Method::PUT, true) => update(ctx, &target, &req).await,
        (&Method::PATCH, true) => patch(ctx, &target, &req).await,
        (&Method::DELETE, true) if !target.status => delete(ctx, &target, &req).await,
        (m, _) => Err(ApiError::method_not_allowed(m)),
    }
}

/// Runs a store call off the async threads (writes fsync).
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(500, "InternalError", format!("store task failed: {e}"))),
    }
}

fn selectors(kind: Kind, q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
        FieldSelector::parse_for(kind, q.get("fieldSelector").unwrap_or(""))?,
    ))
}

fn start_watch(ctx: &Arc<Ctx>, t: &Target, q: &Query, accept: &str) -> Result<http::Response<ApiBody>, ApiError> {
    let (labels, fields) = selectors(t.kind, q)?;
    let resource_version = q.resource_version()?;
    let timeout = watch::timeout(q.get("timeoutSeconds"))?;
    let params = watch::WatchParams {
        kind: t.kind,
        namespace: t.namespace.clone(),
        labels,
        fields,
        resource_version,
        timeout,
        bookmarks: q.flag("allowWatchBookmarks"),
        bookmark_interval: ctx.bookmark_interval,
        send_initial_events: q.flag("sendInitialEvents"),
        table: table::wants_table(accept),
    };
    let lines = watch::start(ctx, params)?;
    Ok(super::stream_response(lines))
}

async fn list(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let (labels, fields) = selectors(t.kind, &req.query)?;
    // A list is always served from the latest state, which satisfies any resourceVersion a
    // client may name (Kubernetes' NotOlderThan); it is parsed to refuse what is not one.
    let resource_version = req.query.resource_version()?;
    let limit = req.query.limit()?;
    let start_after = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(_) if resource_version.is_some_and(|rv| rv != 0) => {
            return Err(ApiError::bad_request("specifying resource version is not allowed when using continue"));
        }
        Some(token) => Some(decode_continue(token, t)?),
        None => None,
    };
    let (kind, ns) = (t.kind, t.namespace.clone());
    let page = blocking(&ctx.store, move |s| {
        let lr =
            ListRequest { namespace: ns.as_deref(), start_after: start_after.as_deref(), limit, labels: Some(&labels) };
        s.list(kind, &lr, |o| fields.matches(o))
    })
    .await?;
    let rv = page.resource_version.to_string();
    let token = page.continue_after.as_deref().map(encode_continue);
    let items: Vec<Value> = page.items.into_iter().map(|o| events::shown(kind, o)).collect();
    if table::wants_table(&req.accept) {
        return Ok(json_response(
            StatusCode::OK,
            &table::render(kind, &items, &rv, token.as_deref(), jiff::Timestamp::now()),
        ));
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(token) = token {
        metadata["continue"] = token.into();
        metadata["remainingItemCount"] = page.remaining.into();
    }
    let list =
        json!({"apiVersion": kind.api_version(), "kind": kind.info().list_kind, "metadata": metadata, "items": items});
    Ok(json_response(StatusCode::OK, &list))
}

async fn get(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let obj = fetch(&ctx.store, t).await?;
    if table::wants_table(&req.accept) {
        let rv = meta::resource_version(&obj).to_string();
        return Ok(json_response(StatusCode::OK, &table::render(t.kind, &[obj], &rv, None, jiff::Timestamp::now())));
    }
    Ok(json_response(StatusCode::OK, &obj))
}

async fn fetch(store: &Arc<Store>, t: &Target) -> Result<Value, ApiError> {
    let (kind, ns, name) = (t.kind, namespace(t)?.to_string(), t.name.clone().unwrap_or_default());
    let obj = blocking(store, move |s| s.get(kind, &ns, &name)?.ok_or(StoreError::NotFound { kind, name })).await?;
    Ok(events::shown(kind, obj))
}

/// The namespace an item request addresses: the path's for a namespaced kind (required), ""
/// for a cluster-scoped one (which a namespaced path cannot address).
fn namespace(t: &Target) -> Result<&str, ApiError> {
    let plural = t.kind.info().plural;
    match (t.kind.info().namespaced, t.namespace.as_deref()) {
        (true, Some(ns)) => Ok(ns),
        (true, None) => Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource: {plural} are namespaced"),
        )),
        (false, None) => Ok(""),
        (false, Some(_)) => Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource: {plural} are cluster-scoped"),
        )),
    }
}

/// Puts the object in the request's namespace (filling a missing one, refusing another), or
/// takes a cluster-scoped object out of any namespace, as Kubernetes does.
fn place(t: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let ns = namespace(t)?;
    let m = meta::metadata_mut(obj);
    if !t.kind.info().namespaced {
        m.remove("namespace");
        return Ok(());
    }
    match m.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            m.insert("namespace".into(), ns.into());
            Ok(())
        }
        Some(other) if other != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        Some(_) => Ok(()),
    }
}

async fn create(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let validation = FieldValidation::parse(req.query.get("fieldValidation"))?;
    let obj = body::decode(&req.body, &req.media)?;
    let warnings = validation.check(t.kind, meta::name(&obj), &obj, json_text(req), &[])?.not_honoured(t.kind, &obj);
    let created = create_object(ctx, t, obj, req.query.dry_run("CreateOptions")?).await?;
    Ok(warnings.attach(json_response(StatusCode::CREATED, &created)))
}

/// The body's text when it is JSON (where duplicate keys are looked for).
/// The autoscaling limits a revision template is validated under: those of the stored
/// `knative-serving/config-autoscaler`, as Knative's webhook reads them (read only for the kinds
/// that carry a template).
async fn cluster_limits(ctx: &Arc<Ctx>, kind: Kind) -> Result<ClusterLimits, ApiError> {
    if !matches!(kind, Kind::Service | Kind::Configuration | Kind::Revision) {
        return Ok(ClusterLimits::default());
    }
    let map = blocking(&ctx.store, |s| s.get(Kind::ConfigMap, "knative-serving", "config-autoscaler")).await?;
    Ok(ClusterLimits::from_config_autoscaler(map.as_ref().and_then(|m| m.get("data"))))
}

fn json_text(req: &Request) -> Option<&[u8]> {
    req.media.contains("json").then_some(&req.body[..])
}

async fn create_object(ctx: &Arc<Ctx>, t: &Target, mut obj: Value, dry_run: bool) -> Result<Value, ApiError> {
    let kind = t.kind;
    ensure_type(kind, &mut obj)?;
    place(t, &mut obj)?;
    let m = meta::metadata_mut(&mut obj);
    if m.get("name").and_then(Value::as_str).unwrap_or("").is_empty()
        && let Some(prefix) = m.get("generateName").and_then(Value::as_str).filter(|p| !p.is_empty())
    {
        let name = format!("{prefix}{}", random_suffix());
        m.insert("name".into(), name.into());
    }
    if kind.info().has_status
        && let Some(map) = obj.as_object_mut()
    {
        // With a status subresource, a create cannot set status (as Kubernetes does for CRDs).
        map.remove("status");
    }
    let name = meta::name(&obj).to_string();
    if name.is_empty() && matches!(kind, Kind::ConfigMap | Kind::Secret | Kind::Namespace) {
        return Err(ApiError::invalid(
            kind,
            "",
            "metadata.name: Required value: name or generateName is required".into(),
            vec![("metadata.name".into(), "Required value: name or generateName is required".into())],
        ));
    }
    let limits = cluster_limits(ctx, kind).await?;
    let admitted = admission::admit_with(kind, Operation::Create, None, obj, &limits)
        .map_err(|e| ApiError::from_admission(kind, &name, e))?;
    let admitted = events::stored(kind, admitted);
    let cap = ctx.events.per_namespace;
    let created = blocking(&ctx.store, move |s| {
        // As Kubernetes' NamespaceLifecycle admission: nothing goes into a namespace that does
        // not exist. (Checked before the write, as Kubernetes does; a namespace deleted in
        // between takes what was written into it with it.)
        let ns = meta::namespace(&admitted);
        if kind.info().namespaced && s.get(Kind::Namespace, "", ns)?.is_none() {
            return Err(StoreError::NotFound { kind: Kind::Namespace, name: ns.to_string() });
        }
        if events::is_event(kind) {
            s.create_bounded(kind, admitted, dry_run, cap)
        } else {
            s.create(kind, admitted, dry_run)
        }
    })
    .await?;
    Ok(events::shown(kind, created))
}

/// Sets `apiVersion` and `kind` when missing; refuses a body of another type.
fn ensure_type(kind: Kind, obj: &mut Value) -> Result<(), ApiError> {
    let map =
        obj.as_object_mut().ok_or_else(|| ApiError::bad_request("the request body must be a JSON or YAML object"))?;
    for (field, want, what) in
        [("apiVersion", kind.api_version(), "API version"), ("kind", kind.info().kind.to_string(), "kind")]
    {
        match map.get(field).and_then(Value::as_str) {
            None | Some("") => {
                map.insert(field.into(), want.into());
            }
            Some(got) if got != want => {
                return Err(ApiError::bad_request(format!(
                    "the {what} in the data ({got}) does not match the expected {what} ({want})"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn update(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let dry_run = req.query.dry_run("UpdateOptions")?;
    let validation = FieldValidation::parse(req.query.get("fieldValidation"))?;
    let mut obj = body::decode(&req.body, &req.media)?;
    let warnings = if t.status {
        Warnings::default()
    } else {
        validation
            .check(t.kind, t.name.as_deref().unwrap_or_default(), &obj, json_text(req), &[])?
            .not_honoured(t.kind, &obj)
    };
    ensure_type(t.kind, &mut obj)?;
    let url_name = t.name.clone().unwrap_or_default();
    let m = meta::metadata_mut(&mut obj);
    match m.get("name").and_then(Value::as_str) {
        None | Some("") => {
            m.insert("name".into(), url_name.clone().into());
        }
        Some(n) if n != url_name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            )));
        }
        Some(_) => {}
    }
    place(t, &mut obj)?;
    let rv = meta::resource_version(&obj).to_string();
    if rv.is_empty() {
        return Err(ApiError::invalid(
            t.kind,
            &url_name,
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".into(),
            vec![("metadata.resourceVersion".into(), "Invalid value: 0x0: must be specified for an update".into())],
        ));
    }
    let old = fetch(&ctx.store, t).await?;
    let stored = write_update(ctx, t, &old, obj, Some(&rv), dry_run).await?;
    Ok(warnings.attach(json_response(StatusCode::OK, &stored)))
}

/// Merges `body` onto `old` for the addressed part, admits and stores it. `precondition` is the
/// resource version the client based its change on, if it named one.
async fn write_update(
    ctx: &Arc<Ctx>,
    t: &Target,
    old: &Value,
    body: Value,
    precondition: Option<&str>,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let kind = t.kind;
    let name = meta::name(old).to_string();
    let old_rv = meta::resource_version(old).to_string();
    if precondition.is_some_and(|rv| rv != old_rv) {
        return Err(StoreError::Conflict {
            kind,
            name,
            reason: "the object has been modified; please apply your changes to the latest version and try again"
                .into(),
        }
        .into());
    }
    let body_uid = meta::uid(&body);
    if !body_uid.is_empty() && body_uid != meta::uid(old) {
        return Err(StoreError::Conflict {
            kind,
            name,
            reason: format!(
                "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {}",
                meta::uid(old)
            ),
        }
        .into());
    }
    let (mode, op) =
        if t.status { (UpdateMode::Status, Operation::UpdateStatus) } else { (UpdateMode::Main, Operation::Update) };
    let next = meta::merge_update(old, body, mode);
    let limits = cluster_limits(ctx, kind).await?;
    let admitted = admission::admit_with(kind, op, Some(old), next, &limits)
        .map_err(|e| ApiError::from_admission(kind, &name, e))?;
    let admitted = events::stored(kind, admitted);
    let stored = blocking(&ctx.store, move |s| s.replace(kind, admitted, &old_rv, dry_run)).await?;
    Ok(events::shown(kind, stored))
}

async fn patch(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let kind = body::patch_kind(&req.media)?;
    let dry_run = req.query.dry_run("PatchOptions")?;
    let validation = FieldValidation::parse(req.query.get("fieldValidation"))?;
    let patch = body::decode(&req.body, &req.media)?;
    // Keys repeated in the patch's own JSON are lost to the last one, as in a whole object.
    let duplicates = validation.check(t.kind, "", &json!({}), json_text(req), &[])?;
    for attempt in 1..=PATCH_ATTEMPTS {
        let old = match fetch(&ctx.store, t).await {
            Ok(old) => old,
            Err(e) if e.code == 404 && kind == PatchKind::Apply && !t.status => {
                let warnings =
                    validation.check(t.kind, meta::name(&patch), &patch, None, &[])?.not_honoured(t.kind, &patch);
                let created = create_object(ctx, t, patch, dry_run).await?;
                return Ok(duplicates.attach(warnings.attach(json_response(StatusCode::CREATED, &created))));
            }
            Err(e) => return Err(e),
        };
        let patched = patch::apply(kind, &old, &patch).map_err(ApiError::from)?;
        if meta::name(&patched) != meta::name(&old) || meta::namespace(&patched) != meta::namespace(&old) {
            return Err(ApiError::invalid(
                t.kind,
                meta::name(&old),
                "metadata.name: Invalid value: field is immutable".into(),
                vec![("metadata.name".into(), "field is immutable".into())],
            ));
        }
        // What the patch adds that the schema does not have (fields stored before, under
        // another directive, are not the patch's doing).
        let warnings = if t.status {
            Warnings::default()
        } else {
            let stored_unknown = sluice_api::strict::unknown_fields(t.kind, &old);
            validation.check(t.kind, meta::name(&old), &patched, None, &stored_unknown)?.not_honoured(t.kind, &patched)
        };
        let explicit = meta::resource_version(&patched);
        let precondition = (explicit != meta::resource_version(&old)).then(|| explicit.to_string());
        match write_update(ctx, t, &old, patched, precondition.as_deref(), dry_run).await {
            Err(e) if e.reason == "Conflict" && precondition.is_none() && attempt < PATCH_ATTEMPTS => continue,
            Err(e) => return Err(e),
            Ok(stored) => {
                return Ok(duplicates.attach(warnings.attach(json_response(StatusCode::OK, &stored))));
            }
        }
    }
    Err(ApiError::new(409, "Conflict", "the patch kept conflicting with concurrent writes; try again"))
}

fn delete_options(req: &Request) -> Result<DeleteOptions, ApiError> {
    let body: Value =
        if req.body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { body::decode(&req.body, &req.media)? };
    let policy = req
        .query
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| body["propagationPolicy"].as_str().map(str::to_string));
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {other:?}: use Background, Foreground or Orphan"
            )));
        }
    };
    let orphan = req.query.get("orphanDependents") == Some("true") || body["orphanDependents"] == json!(true);
    // Kubernetes reads DeleteOptions from the body when there is one, else from the query.
    let dry_run = match body.get("dryRun") {
        None | Some(Value::Null) => req.query.dry_run("DeleteOptions")?,
        Some(v) => {
            let values: Option<Vec<String>> =
                v.as_array().and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect());
            let values = values.ok_or_else(|| ApiError::bad_request("dryRun: must be a list of strings"))?;
            query::dry_run(&values, "DeleteOptions")?
        }
    };
    Ok(DeleteOptions {
        propagation: if orphan { Propagation::Orphan } else { propagation },
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_string),
        dry_run,
    })
}

async fn delete(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let opts = delete_options(req)?;
    let (kind, ns, name) = (t.kind, namespace(t)?.to_string(), t.name.clone().unwrap_or_default());
    match blocking(&ctx.store, move |s| s.delete(kind, &ns, &name, &opts)).await? {
        Deleted::Removed(obj) => Ok(json_response(StatusCode::OK, &events::shown(kind, obj))),
        Deleted::Pending(obj) => Ok(json_response(StatusCode::ACCEPTED, &events::shown(kind, obj))),
    }
}

async fn delete_collection(ctx: &Arc<Ctx>, t: &Target, req: &Request) -> Result<http::Response<ApiBody>, ApiError> {
    let (labels, fields) = selectors(t.kind, &req.query)?;
    let opts = delete_options(req)?;
    let (kind, ns) = (t.kind, t.namespace.clone());
    let deleted = blocking(&ctx.store, move |s| {
        let lr = ListRequest { namespace: ns.as_deref(), labels: Some(&labels), ..Default::default() };
        let page = s.list(kind, &lr, |o| fields.matches(o))?;
        let mut out = Vec::new();
        for obj in page.items {
            match s.delete(kind, meta::namespace(&obj), meta::name(&obj), &opts) {
                Ok(Deleted::Removed(o) | Deleted::Pending(o)) => out.push(events::shown(kind, o)),
                // Already gone (an owner's cascade took it): nothing to report.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    })
    .await?;
    let list =
        json!({"apiVersion": kind.api_version(), "kind": kind.info().list_kind, "metadata": {}, "items": deleted});
    Ok(json_response(StatusCode::OK, &list))
}

fn random_suffix() -> String {
    // Kubernetes' alphabet for generated names: no vowels, no confusable characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

fn encode_continue(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The store key a continue token names, which must be one a list of `t` could have handed
/// out: under `{plural}/` (and `{namespace}/` for a namespaced list), as the store lays out
/// keys. Anything else is 400, as Kubernetes answers a token it did not issue.
fn decode_continue(token: &str, t: &Target) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}: continue key is not valid"));
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16)).collect();
    let key = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let prefix = match &t.namespace {
        Some(ns) => format!("{}/{ns}/", t.kind.info().plural),
        None => format!("{}/", t.kind.info().plural),
    };
    match key.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => Ok(key),
        _ => Err(bad()),
    }
}
