//! Watch streams: newline-delimited JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
//! replayed from the store's event log after a resource version, then followed live.
//!
//! The stream reads the log rather than a broadcast, so it sees every change exactly once and in
//! order no matter how many writers race, and a client that reconnects after a restart with the
//! last version it saw resumes where it left off.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_api::Kind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use crate::store::event::{Event, EventType};
use crate::store::{ListRequest, Store, StoreError, meta};

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

/// Starts a watch; the returned receiver yields the stream's lines.
pub fn start(store: Arc<Store>, params: WatchParams, shutdown: CancellationToken) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        tokio::select! {
            () = run(&store, &params, &tx) => {}
            () = shutdown.cancelled() => {}
            () = tx.closed() => {}
        }
    });
    rx
}

async fn run(store: &Store, p: &WatchParams, tx: &mpsc::Sender<Bytes>) {
    let deadline = tokio::time::Instant::now() + p.timeout.min(MAX_TIMEOUT);
    let mut latest = store.subscribe();
    latest.borrow_and_update();
    let mut cursor = match p.resource_version.filter(|rv| *rv > 0) {
        Some(rv) => rv,
        None => match initial_events(store, p, tx).await {
            Some(rv) => rv,
            None => return,
        },
    };
    loop {
        latest.borrow_and_update();
        match replay(store, p, tx, cursor).await {
            Ok(Some(upto)) => cursor = upto,
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(line("ERROR", ApiError::from(e).to_status())).await;
                return;
            }
        }
        let bookmark = tokio::time::sleep(p.bookmark_interval);
        tokio::select! {
            changed = latest.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(deadline) => return,
            () = bookmark, if p.bookmarks => {
                if tx.send(line("BOOKMARK", bookmark_object(p.kind, cursor, false))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends the current objects as ADDED; returns the version they were read at.
async fn initial_events(store: &Store, p: &WatchParams, tx: &mpsc::Sender<Bytes>) -> Option<u64> {
    let req = ListRequest { namespace: p.namespace.as_deref(), ..Default::default() };
    let page = match store.list(p.kind, &req, |o| p.fields.matches(o) && p.labels.matches(&meta::labels(o))) {
        Ok(page) => page,
        Err(e) => {
            let _ = tx.send(line("ERROR", ApiError::from(e).to_status())).await;
            return None;
        }
    };
    for obj in page.items {
        tx.send(line("ADDED", obj)).await.ok()?;
    }
    if p.send_initial_events {
        tx.send(line("BOOKMARK", bookmark_object(p.kind, page.resource_version, true))).await.ok()?;
    }
    Some(page.resource_version)
}

/// Sends every matching event after `cursor`; returns the version read up to, or None when the
/// client has gone.
async fn replay(
    store: &Store,
    p: &WatchParams,
    tx: &mpsc::Sender<Bytes>,
    mut cursor: u64,
) -> Result<Option<u64>, StoreError> {
    loop {
        let page = store.events_after(cursor, BATCH)?;
        let full = page.events.len() == BATCH;
        for event in &page.events {
            if let Some((kind, obj)) = translate(p, event)
                && tx.send(line(kind, obj)).await.is_err()
            {
                return Ok(None);
            }
        }
        cursor = page.upto;
        if !full {
            return Ok(Some(cursor));
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
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::event::StoredEvent;

    fn params(labels: &str) -> WatchParams {
        WatchParams {
            kind: Kind::Route,
            namespace: Some("default".into()),
            labels: LabelSelector::parse(labels).expect("selector"),
            fields: FieldSelector::default(),
            resource_version: None,
            timeout: Duration::from_secs(1),
            bookmarks: false,
            bookmark_interval: Duration::from_secs(1),
            send_initial_events: false,
        }
    }

    fn modified(prev: &[(&str, &str)], now: &[(&str, &str)]) -> Event {
        let labels: BTreeMap<String, String> = now.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Event {
            rv: 5,
            stored: StoredEvent {
                event_type: EventType::Modified,
                resource: "routes".into(),
                object: json!({"metadata": {"name": "r", "namespace": "default", "labels": labels}}),
                prev_labels: Some(prev.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            },
        }
    }

    #[test]
    fn label_changes_enter_and_leave_the_selection() {
        let p = params("app=a");
        assert_eq!(translate(&p, &modified(&[("app", "a")], &[("app", "a")])).map(|t| t.0), Some("MODIFIED"));
        assert_eq!(translate(&p, &modified(&[("app", "b")], &[("app", "a")])).map(|t| t.0), Some("ADDED"));
        assert_eq!(translate(&p, &modified(&[("app", "a")], &[("app", "b")])).map(|t| t.0), Some("DELETED"));
        assert_eq!(translate(&p, &modified(&[("app", "b")], &[("app", "c")])), None);
    }

    #[test]
    fn timeout_seconds_is_parsed_strictly_and_clamped() {
        assert_eq!(timeout(None).expect("absent"), DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some("")).expect("empty"), DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some("0")).expect("zero"), DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some("290")).expect("kube-rs"), Duration::from_secs(290));
        for huge in ["9223372036854775807", "18446744073709551615", "99999999999999999999999999"] {
            assert_eq!(timeout(Some(huge)).expect(huge), MAX_TIMEOUT, "{huge}");
        }
        for bad in ["abc", "-1", "+5", "1.5", " 5", "5s", "-9223372036854775808"] {
            let e = timeout(Some(bad)).expect_err(bad);
            assert_eq!((e.code, e.reason), (400, "BadRequest"), "{bad}");
        }
    }

    #[test]
    fn other_kinds_and_namespaces_are_filtered() {
        let p = params("");
        let mut e = modified(&[], &[]);
        e.stored.resource = "services".into();
        assert_eq!(translate(&p, &e), None);
        let mut e = modified(&[], &[]);
        e.stored.object["metadata"]["namespace"] = json!("other");
        assert_eq!(translate(&p, &e), None);
    }
}
