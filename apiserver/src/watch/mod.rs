//! Watch streams: newline-delimited JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
//! replayed from the store's event log after a resource version, then followed live.
//!
//! The stream reads the log rather than a broadcast, so it sees every change exactly once and in
//! order no matter how many writers race, and a client that reconnects after a restart with the
//! last version it saw resumes where it left off. What waits to be sent is bounded
//! ([`outbox`]); a client that stops reading is closed, and the number of watches is capped
//! ([`limits`]).

mod limits;
mod outbox;

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_api::Kind;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use crate::store::event::{Event, EventType};
use crate::store::{ListRequest, Store, StoreError, meta};
pub use limits::{CONNECTION, DEFAULT_MAX_WATCHES, WatchLimits, Watches};
pub use outbox::{BufferLimits, Lines};
use outbox::{Outbox, Refused, outbox};

/// Events read from the log per batch.
const BATCH: usize = 500;
/// How long a watch lasts when the client names no `timeoutSeconds` (or 0), as Kubernetes'
/// default `--min-request-timeout` does.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// The longest a watch lasts whatever `timeoutSeconds` asks: a longer one is ended at this
/// point, and the client watches again from the last version it saw, as after any close.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// What a watch asks for.
#[derive(Clone, Debug)]
pub struct WatchParams {
    /// The kind watched.
    pub kind: Kind,
    /// Only this namespace; all when None.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Start after this version; None (or 0) starts with the current objects as ADDED events.
    pub resource_version: Option<u64>,
    /// Close the stream after this long.
    pub timeout: Duration,
    /// Send BOOKMARK events.
    pub bookmarks: bool,
    /// How often to send a BOOKMARK while nothing else is sent.
    pub bookmark_interval: Duration,
    /// Mark the end of the initial ADDED events with a bookmark (`sendInitialEvents=true`).
    pub send_initial_events: bool,
    /// Send each object as a one-row `Table` (`Accept: ...;as=Table`, what `kubectl get -w`
    /// asks for), with the column definitions in the first such event only, as Kubernetes does.
    pub table: bool,
}

/// The watch duration `timeoutSeconds` asks for: absent, empty or 0 is the default, a number
/// beyond [`MAX_TIMEOUT`] (however many digits) is clamped to it, and anything else — a sign,
/// a fraction, text — is a 400.
pub fn timeout(raw: Option<&str>) -> Result<Duration, ApiError> {
    let raw = raw.unwrap_or("");
    if raw.is_empty() {
        return Ok(DEFAULT_TIMEOUT);
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "invalid timeoutSeconds {raw:?}: must be a whole number of seconds, 0 or more"
        )));
    }
    // All digits: the only parse failure left is overflow, which is a very long watch.
    let secs = raw.parse::<u64>().unwrap_or(u64::MAX);
    Ok(match secs {
        0 => DEFAULT_TIMEOUT,
        s => Duration::from_secs(s).min(MAX_TIMEOUT),
    })
}

/// Starts a watch under the server's limits; the returned stream yields its lines. 429 when
/// the server runs as many watches as it allows.
pub fn start(ctx: &Ctx, params: WatchParams) -> Result<Lines, ApiError> {
    let slot = ctx.watches.admit()?;
    let (out, lines) = outbox(ctx.watches.buffer());
    // Outside a connection (tests calling in directly) a watch that falls behind just ends.
    let connection = CONNECTION.try_with(CancellationToken::clone).ok();
    let (store, shutdown) = (ctx.store.clone(), ctx.shutdown.clone());
    tokio::spawn(async move {
        let _slot = slot;
        tokio::select! {
            () = run(&store, &params, &out, connection.as_ref()) => {}
            () = shutdown.cancelled() => {}
            () = out.closed() => {}
        }
    });
    Ok(lines)
}

/// Follows the watch until it ends; closes the connection of a client that fell behind.
async fn run(store: &Store, p: &WatchParams, out: &Outbox, connection: Option<&CancellationToken>) {
    if let Err(Refused::Behind) = follow(store, p, out).await {
        tracing::warn!(
            kind = p.kind.info().kind,
            namespace = p.namespace.as_deref().unwrap_or("*"),
            queued = out.queued(),
            "watch client fell behind (its buffer stayed full); closing the watch, the client must watch again"
        );
        if let Some(connection) = connection {
            connection.cancel();
        }
    }
}

/// Sends the watch's events until its deadline, a store failure or the client's end.
async fn follow(store: &Store, p: &WatchParams, out: &Outbox) -> Result<(), Refused> {
    let deadline = tokio::time::Instant::now() + p.timeout.min(MAX_TIMEOUT);
    let mut latest = store.subscribe();
    latest.borrow_and_update();
    let mut columns_sent = false;
    let mut cursor = match p.resource_version.filter(|rv| *rv > 0) {
        Some(rv) => rv,
        None => match initial_events(store, p, out, &mut columns_sent).await? {
            Some(rv) => rv,
            None => return Ok(()),
        },
    };
    // A bookmark every interval whatever else is written: the store's writes of other kinds
    // (or of objects this watch does not select) move the log on without an event for this
    // watch, and a client that resumes from the last version it saw must not find that
    // version gone from the log's history (410 Gone, then a full re-list).
    let mut bookmark_due = tokio::time::Instant::now() + p.bookmark_interval;
    loop {
        latest.borrow_and_update();
        match replay(store, p, out, cursor, &mut columns_sent).await? {
            Ok(upto) => cursor = upto,
            Err(e) => return out.send(line("ERROR", ApiError::from(e).to_status())).await,
        }
        tokio::select! {
            changed = latest.changed() => if changed.is_err() { return Ok(()) },
            () = tokio::time::sleep_until(deadline) => return Ok(()),
            () = tokio::time::sleep_until(bookmark_due), if p.bookmarks => {
                out.send(line("BOOKMARK", bookmark_object(p.kind, cursor, false))).await?;
                bookmark_due = tokio::time::Instant::now() + p.bookmark_interval;
            }
        }
    }
}

/// Sends the current objects as ADDED; returns the version they were read at, or None when
/// the store failed (reported to the client as an ERROR event).
async fn initial_events(
    store: &Store,
    p: &WatchParams,
    out: &Outbox,
    columns_sent: &mut bool,
) -> Result<Option<u64>, Refused> {
    let req = ListRequest { namespace: p.namespace.as_deref(), labels: Some(&p.labels), ..Default::default() };
    let page = match store.list(p.kind, &req, |o| p.fields.matches(o)) {
        Ok(page) => page,
        Err(e) => {
            out.send(line("ERROR", ApiError::from(e).to_status())).await?;
            return Ok(None);
        }
    };
    for obj in page.items {
        out.send(line("ADDED", shaped(p, obj, columns_sent))).await?;
    }
    if p.send_initial_events {
        out.send(line("BOOKMARK", bookmark_object(p.kind, page.resource_version, true))).await?;
    }
    Ok(Some(page.resource_version))
}

/// Sends every matching event after `cursor`; returns the version read up to, or the store's
/// failure.
async fn replay(
    store: &Store,
    p: &WatchParams,
    out: &Outbox,
    mut cursor: u64,
    columns_sent: &mut bool,
) -> Result<Result<u64, StoreError>, Refused> {
    loop {
        let page = match store.events_after(cursor, BATCH) {
            Ok(page) => page,
            Err(e) => return Ok(Err(e)),
        };
        let full = page.events.len() == BATCH;
        for event in &page.events {
            if let Some((kind, obj)) = translate(p, event) {
                out.send(line(kind, shaped(p, obj, columns_sent))).await?;
            }
        }
        cursor = page.upto;
        if !full {
            return Ok(Ok(cursor));
        }
    }
}

/// How `event` appears to this watch: filtered by kind, namespace and fields, and turned into
/// ADDED / DELETED when a label change moves the object into or out of the label selection.
fn translate(p: &WatchParams, event: &Event) -> Option<(&'static str, Value)> {
    let e = &event.stored;
    let obj = &e.object;
    if e.resource != p.kind.info().plural
        || p.namespace.as_deref().is_some_and(|ns| ns != meta::namespace(obj))
        || !p.fields.matches(obj)
    {
        return None;
    }
    let now = p.labels.matches(&meta::labels(obj));
    let kind = match e.event_type {
        EventType::Added => now.then_some("ADDED")?,
        EventType::Deleted => now.then_some("DELETED")?,
        EventType::Modified => {
            let before = e.prev_labels.as_ref().map_or(now, |l| p.labels.matches(l));
            match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            }
        }
    };
    Some((kind, obj.clone()))
}

/// The object as the watch sends it: itself, or a one-row Table whose column definitions come
/// only with the first.
fn shaped(p: &WatchParams, obj: Value, columns_sent: &mut bool) -> Value {
    let obj = crate::events::shown(p.kind, obj);
    if !p.table {
        return obj;
    }
    let rv = meta::resource_version(&obj).to_string();
    let mut table = crate::table::render(p.kind, std::slice::from_ref(&obj), &rv, None, jiff::Timestamp::now());
    if std::mem::replace(columns_sent, true) {
        table["columnDefinitions"] = Value::Array(Vec::new());
    }
    table
}

fn bookmark_object(kind: Kind, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": kind.info().kind, "apiVersion": kind.api_version(), "metadata": metadata})
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
