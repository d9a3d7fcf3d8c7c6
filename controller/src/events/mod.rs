//! Kubernetes Events for what the controllers do and what fails, so `kubectl describe` and
//! `kubectl get events` show them. A reconcile hands a [`Note`] to the [`Recorder`] and goes
//! on: the note waits in a bounded queue (dropped, and counted in a log line, when the queue
//! is full) for one [`Writer`] task, which aggregates repeats as Kubernetes' recorder does (the
//! same object, type, reason and message again: `count` + 1 and a new `lastTimestamp` on the
//! stored Event, not a new one) and rate-limits each object, so a slow or failing API server
//! never holds up a reconcile and a flapping object cannot flood the store.
//!
//! Not kube-rs' `kube::runtime::events::Recorder`: it awaits the API in the caller, keys its
//! aggregation without the message, keeps an unbounded cache and writes `events.k8s.io/v1`
//! (which `kubectl describe` reads only through conversion). Sluice writes core `v1` Events,
//! as client-go's recorder does, which both APIs serve.

mod writer;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use tokio::sync::mpsc;

pub use writer::Writer;

/// Notes waiting for the writer at most; more are dropped.
pub const QUEUE: usize = 1024;

/// Who reports: `source.component` and `reportingComponent` of the Events.
pub mod component {
    /// The Service reconciler.
    pub const SERVICE: &str = "service-controller";
    /// The Configuration reconciler.
    pub const CONFIGURATION: &str = "configuration-controller";
    /// The Route reconciler.
    pub const ROUTE: &str = "route-controller";
    /// The Revision reconciler.
    pub const REVISION: &str = "revision-controller";
    /// The autoscaler.
    pub const AUTOSCALER: &str = "autoscaler";
}

/// An Event's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something happened as intended.
    Normal,
    /// Something failed or needs attention.
    Warning,
}

/// One thing to report about one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// The object it is about.
    pub regarding: ObjectReference,
    /// Normal or Warning.
    pub type_: EventType,
    /// Who reports it (one of [`component`]).
    pub component: &'static str,
    /// What was done: `Create`, `Update`, `Scale`, `Reconcile`.
    pub action: &'static str,
    /// Why, in CamelCase: `Created`, `RevisionReady`, `ExitCode1`, `Scaled`.
    pub reason: String,
    /// What happened, in a sentence.
    pub message: String,
}

/// Hands notes to the writer without waiting; cheap to clone.
#[derive(Clone, Debug)]
pub struct Recorder {
    queue: Option<mpsc::Sender<Note>>,
}

// === impl Note ===

impl Note {
    /// A Normal note about `obj`.
    pub fn normal<K: Resource<DynamicType = ()>>(
        obj: &K,
        component: &'static str,
        action: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::about(reference(obj), EventType::Normal, component, action, reason, message)
    }

    /// A Warning note about `obj`.
    pub fn warning<K: Resource<DynamicType = ()>>(
        obj: &K,
        component: &'static str,
        action: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::about(reference(obj), EventType::Warning, component, action, reason, message)
    }

    /// A note about the object `regarding` names.
    pub fn about(
        regarding: ObjectReference,
        type_: EventType,
        component: &'static str,
        action: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self { regarding, type_, component, action, reason: reason.into(), message: message.into() }
    }
}

/// What an Event says it is about: kind, name, namespace and uid (no resource version, so the
/// repeats of one note about an object that changes in between still aggregate).
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let mut r = obj.object_ref(&());
    r.resource_version = None;
    r
}

// === impl Recorder ===

impl Recorder {
    /// A recorder and the writer that takes its notes to the API server through `client`.
    pub fn new(client: kube::Client) -> (Self, Writer) {
        let (queue, notes) = mpsc::channel(QUEUE);
        (Self { queue: Some(queue) }, Writer::new(client, notes))
    }

    /// A recorder that reports nothing (unit tests without an API server).
    pub fn disabled() -> Self {
        Self { queue: None }
    }

    /// Queues `note`; when the queue is full it is dropped (logged), never waited for.
    pub fn publish(&self, note: Note) {
        let Some(queue) = &self.queue else { return };
        if let Err(mpsc::error::TrySendError::Full(note)) = queue.try_send(note) {
            tracing::debug!(reason = %note.reason, name = ?note.regarding.name, "event queue full; event dropped");
        }
    }
}
