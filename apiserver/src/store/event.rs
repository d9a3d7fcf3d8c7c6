//! The change log: one row per write, keyed by resource version, which watches replay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, as stored in the event table.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The kind's plural, e.g. `services`.
    pub resource: String,
    /// The object after the change (for a delete, as it was, with the deleting version).
    pub object: Value,
    /// The object's labels before a modification, so that a label-selected watch can tell an
    /// object leaving its selection from one changing inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_labels: Option<BTreeMap<String, String>>,
}

/// A change with its resource version.
#[derive(Clone, Debug)]
pub struct Event {
    /// The resource version the change was written at.
    pub rv: u64,
    /// The change.
    pub stored: StoredEvent,
}

/// Events after a version, read in one snapshot.
#[derive(Clone, Debug)]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<Event>,
    /// Every change up to this version has been read (when `events` was not cut short).
    pub upto: u64,
}
