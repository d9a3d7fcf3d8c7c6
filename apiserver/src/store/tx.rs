//! One write transaction: every change inside it takes the next resource version and appends
//! an event row; nothing is visible until `commit`, and a dropped transaction leaves no trace.

use std::collections::BTreeMap;

use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde_json::Value;
use sluice_api::Kind;

use super::event::{EventType, StoredEvent};
use super::index::{self, Entry};
use super::meta;
use super::{COMPACTED, COUNTERS, EVENTS, OBJECTS, RESOURCE_VERSION, StoreError, object_key, prefix_range};

/// An open write transaction.
pub(super) struct Tx {
    txn: WriteTransaction,
    next_rv: u64,
    /// The RFC 3339 time stamped on objects written in this transaction.
    pub now: String,
    /// Objects added (positive) or removed (negative) per resource, for `/metrics` once
    /// committed.
    counts: BTreeMap<&'static str, i64>,
}

// === impl Tx ===

impl Tx {
    /// Starts a transaction; blocks while another write is in progress.
    pub fn begin(db: &Database) -> Result<Self, StoreError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(super::COMMIT_DURABILITY)?;
        let next_rv = {
            let counters = txn.open_table(COUNTERS)?;
            counters.get(RESOURCE_VERSION)?.map(|v| v.value()).unwrap_or(0)
        };
        Ok(Self { txn, next_rv, now: super::now_rfc3339(), counts: BTreeMap::new() })
    }

    /// The object stored under this name, if any.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Option<Value>, StoreError> {
        let objects = self.txn.open_table(OBJECTS)?;
        let got = objects.get(object_key(kind, namespace, name).as_str())?;
        got.map(|v| serde_json::from_slice(v.value()).map_err(StoreError::from)).transpose()
    }

    /// How many objects of `kind` `namespace` holds.
    pub fn count(&self, kind: Kind, namespace: &str) -> Result<usize, StoreError> {
        let objects = self.txn.open_table(OBJECTS)?;
        let (start, end) = prefix_range(kind, Some(namespace));
        Ok(objects.range(start.as_str()..end.as_str())?.count())
    }

    /// The resource version (0 when not a number) and name of every object of `kind` in
    /// `namespace`, in name order; read without building each object whole.
    pub fn versions(&self, kind: Kind, namespace: &str) -> Result<Vec<(u64, String)>, StoreError> {
        let objects = self.txn.open_table(OBJECTS)?;
        let (start, end) = prefix_range(kind, Some(namespace));
        let mut out = Vec::new();
        for row in objects.range(start.as_str()..end.as_str())? {
            let (key, value) = row?;
            let name = key.value().get(start.len()..).unwrap_or_default().to_string();
            out.push((super::head::stored_version(value.value()), name));
        }
        Ok(out)
    }

    /// Every object in `namespace`, of every kind (each stored object once, under the kind it
    /// is stored as).
    pub fn scan_namespace(&self, namespace: &str) -> Result<Vec<(Kind, Value)>, StoreError> {
        let objects = self.txn.open_table(OBJECTS)?;
        let mut out = Vec::new();
        for kind in Kind::ALL.into_iter().filter(|k| k.stored_as() == *k) {
            let (start, end) = prefix_range(kind, Some(namespace));
            for row in objects.range(start.as_str()..end.as_str())? {
                let (_, v) = row?;
                out.push((kind, serde_json::from_slice(v.value())?));
            }
        }
        Ok(out)
    }

    /// The kind and name of every object in `namespace` that names `owner_uid` among its
    /// owners (from the owner index: no other object is read).
    pub fn dependents(&self, owner_uid: &str, namespace: &str) -> Result<Vec<(Kind, String)>, StoreError> {
        index::dependents(&self.txn, owner_uid, namespace)
    }

    /// True when an object with `uid` is stored in `namespace`.
    pub fn live(&self, uid: &str, namespace: &str) -> Result<bool, StoreError> {
        index::live(&self.txn, uid, namespace)
    }

    /// Stores `obj` at the next resource version (written into `obj`) and logs the event.
    pub fn write(
        &mut self,
        kind: Kind,
        obj: &mut Value,
        event_type: EventType,
        prev_labels: Option<BTreeMap<String, String>>,
    ) -> Result<(), StoreError> {
        let key = self.stamp(kind, obj);
        let bytes = serde_json::to_vec(obj)?;
        let before =
            self.txn.open_table(OBJECTS)?.insert(key.as_str(), bytes.as_slice())?.map(|old| Entry::read(old.value()));
        index::update(&self.txn, &key, before.as_ref(), Some(&Entry::of(obj)))?;
        if before.is_none() {
            *self.counts.entry(kind.info().plural).or_default() += 1;
        }
        self.log(kind, obj, event_type, prev_labels)
    }

    /// Removes `obj` at the next resource version (written into `obj`) and logs the deletion.
    pub fn remove(&mut self, kind: Kind, obj: &mut Value) -> Result<(), StoreError> {
        let key = self.stamp(kind, obj);
        let before = self.txn.open_table(OBJECTS)?.remove(key.as_str())?.map(|old| Entry::read(old.value()));
        index::update(&self.txn, &key, before.as_ref(), None)?;
        if before.is_some() {
            *self.counts.entry(kind.info().plural).or_default() -= 1;
        }
        self.log(kind, obj, EventType::Deleted, None)
    }

    fn stamp(&mut self, kind: Kind, obj: &mut Value) -> String {
        self.next_rv += 1;
        meta::metadata_mut(obj).insert("resourceVersion".into(), self.next_rv.to_string().into());
        object_key(kind, meta::namespace(obj), meta::name(obj))
    }

    fn log(
        &mut self,
        kind: Kind,
        obj: &Value,
        event_type: EventType,
        prev_labels: Option<BTreeMap<String, String>>,
    ) -> Result<(), StoreError> {
        let event =
            StoredEvent { event_type, resource: kind.info().plural.to_string(), object: obj.clone(), prev_labels };
        self.txn.open_table(EVENTS)?.insert(self.next_rv, serde_json::to_vec(&event)?.as_slice())?;
        Ok(())
    }

    /// Makes every change durable at once, trimming the event log to `history` rows. Returns
    /// the newest resource version.
    pub fn commit(self, history: u64) -> Result<u64, StoreError> {
        let started = std::time::Instant::now();
        let Tx { txn, next_rv, counts, .. } = self;
        {
            let mut counters = txn.open_table(COUNTERS)?;
            counters.insert(RESOURCE_VERSION, next_rv)?;
            // The indexes were written beside every change: they match this version.
            counters.insert(index::INDEXED_AT, next_rv)?;
            let mut events = txn.open_table(EVENTS)?;
            let len = events.len()?;
            // Trim in batches of a tenth of the history, so most commits skip this.
            if len > history + history / 10 {
                let excess = len - history;
                let mut last_removed = 0;
                let doomed: Vec<u64> =
                    events.iter()?.take(excess as usize).filter_map(|r| r.ok().map(|(k, _)| k.value())).collect();
                for rv in doomed {
                    events.remove(rv)?;
                    last_removed = rv;
                }
                counters.insert(COMPACTED, last_removed)?;
            }
        }
        txn.commit()?;
        crate::figures::store_write(started.elapsed());
        for (resource, delta) in counts {
            crate::figures::store_objects_changed(resource, delta);
        }
        Ok(next_rv)
    }

    /// Discards every change (dry runs).
    pub fn abort(self) -> Result<(), StoreError> {
        self.txn.abort().map_err(|e| StoreError::Storage(e.to_string()))
    }
}
