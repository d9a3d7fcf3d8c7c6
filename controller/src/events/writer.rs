//! The one task that writes Events: aggregation of repeats, a rate limit per object, and the
//! API calls (a create, or a merge patch of `count` and `lastTimestamp`).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{EventType, Note};

/// Events one object may get at once before the rate limit applies (client-go's burst).
pub const BURST: u32 = 25;
/// After the burst, one more per this long per object.
pub const REFILL: Duration = Duration::from_secs(10);
/// Notes (and objects) remembered for aggregation and the rate limit at most; the least
/// recently seen are forgotten first.
pub const REMEMBERED: usize = 4096;
/// `reportingInstance` of every Event.
const INSTANCE: &str = "sluice";

/// Takes notes from the [`super::Recorder`] to the API server.
pub struct Writer {
    client: kube::Client,
    notes: mpsc::Receiver<Note>,
    seen: Seen,
    limits: Limits,
}

/// What aggregation keys a note by: the object, and everything the note says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    object: String,
    type_: EventType,
    component: &'static str,
    reason: String,
    message: String,
}

/// The stored Event of each recent note.
#[derive(Default)]
struct Seen(HashMap<Key, Stored>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    namespace: String,
    name: String,
    count: i32,
    at: Instant,
}

/// A token bucket per object.
#[derive(Default)]
struct Limits(HashMap<String, (f64, Instant)>);

/// What to write for a note.
#[derive(Debug, PartialEq, Eq)]
enum Write {
    /// A new Event.
    Create,
    /// The stored Event again, with this count.
    Repeat(Stored),
}

// === impl Writer ===

impl Writer {
    pub(super) fn new(client: kube::Client, notes: mpsc::Receiver<Note>) -> Self {
        Self { client, notes, seen: Seen::default(), limits: Limits::default() }
    }

    /// Writes notes as they come until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let note = tokio::select! {
                () = shutdown.cancelled() => return,
                note = self.notes.recv() => match note {
                    Some(note) => note,
                    None => return,
                },
            };
            let now = Instant::now();
            let object = object_key(&note);
            if !self.limits.take(&object, now) {
                tracing::debug!(object, reason = %note.reason, "event rate limit reached; event dropped");
                continue;
            }
            let key = Key {
                object,
                type_: note.type_,
                component: note.component,
                reason: note.reason.clone(),
                message: note.message.clone(),
            };
            if let Err(e) = self.write(key, &note, now).await {
                tracing::debug!(error = %e, reason = %note.reason, "writing an event failed; dropped");
            }
        }
    }

    async fn write(&mut self, key: Key, note: &Note, now: Instant) -> Result<(), kube::Error> {
        if let Write::Repeat(stored) = self.seen.decide(&key, now) {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &stored.namespace);
            let patch = json!({"count": stored.count, "lastTimestamp": Time(jiff::Timestamp::now())});
            match api.patch(&stored.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(()),
                // Expired or deleted since: write it anew.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = new_event(note);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let created =
            Api::<Event>::namespaced(self.client.clone(), &namespace).create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.seen.remember(key, Stored { namespace, name, count: 1, at: now });
        Ok(())
    }
}

/// The core Event first written for `note`.
fn new_event(note: &Note) -> Event {
    let now = jiff::Timestamp::now();
    let object = note.regarding.name.clone().unwrap_or_default();
    // Cluster-scoped objects' events live in `default`, as in Kubernetes.
    let namespace = note.regarding.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace),
            ..Default::default()
        },
        involved_object: note.regarding.clone(),
        reason: Some(note.reason.clone()),
        message: Some(note.message.clone()),
        type_: Some(match note.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        source: Some(EventSource { component: Some(note.component.into()), host: None }),
        reporting_component: Some(note.component.into()),
        reporting_instance: Some(INSTANCE.into()),
        action: Some(note.action.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        ..Default::default()
    }
}

fn object_key(note: &Note) -> String {
    let r = &note.regarding;
    let part = |v: &Option<String>| v.clone().unwrap_or_default();
    format!("{}/{}/{}/{}", part(&r.kind), part(&r.namespace), part(&r.name), part(&r.uid))
}

// === impl Seen ===

impl Seen {
    /// Whether `key` repeats a note written before (with the count to write) or is new.
    fn decide(&mut self, key: &Key, now: Instant) -> Write {
        match self.0.get_mut(key) {
            Some(stored) => {
                stored.count = stored.count.saturating_add(1);
                stored.at = now;
                Write::Repeat(stored.clone())
            }
            None => Write::Create,
        }
    }

    fn remember(&mut self, key: Key, stored: Stored) {
        if self.0.len() >= REMEMBERED && !self.0.contains_key(&key) {
            forget_oldest(&mut self.0, |s| s.at);
        }
        self.0.insert(key, stored);
    }
}

// === impl Limits ===

impl Limits {
    /// Takes a token from `object`'s bucket; false when it is empty.
    fn take(&mut self, object: &str, now: Instant) -> bool {
        if self.0.len() >= REMEMBERED && !self.0.contains_key(object) {
            forget_oldest(&mut self.0, |(_, at)| *at);
        }
        let (tokens, at) = self.0.entry(object.to_string()).or_insert((f64::from(BURST), now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() / REFILL.as_secs_f64();
        *tokens = (*tokens + refilled).min(f64::from(BURST));
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// Removes the entry `at` says was touched longest ago (a full map is rare: a linear scan).
fn forget_oldest<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, at: impl Fn(&V) -> Instant) {
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| k.clone()) {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests;
