//! Kubernetes Events as this server keeps them: stored once as core `v1` Events and also served
//! as `events.k8s.io/v1` ([`sluice_api::event`] converts), printed as `kubectl get events`
//! prints them ([`table`]), and bounded ([`retention`]): each expires a while after it was last
//! seen, and a namespace holds at most so many.

pub mod retention;
pub mod table;

use serde_json::Value;
use sluice_api::Kind;

pub use retention::Retention;

/// `obj` (as stored) as a client of `kind` sees it.
pub fn shown(kind: Kind, obj: Value) -> Value {
    sluice_api::event::view(kind, obj)
}

/// `obj` (as a client of `kind` sent it) as it is stored.
pub fn stored(kind: Kind, obj: Value) -> Value {
    sluice_api::event::view(kind.stored_as(), obj)
}

/// True for either view of Events.
pub fn is_event(kind: Kind) -> bool {
    kind.stored_as() == Kind::Event
}
