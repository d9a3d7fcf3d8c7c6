//! The embedded store: Kubernetes objects as JSON in a redb database in the state directory.
//!
//! Every write is one redb transaction committed with fsync before it is acknowledged, so an
//! acknowledged write survives `kill -9` and a failed one leaves nothing behind. Each change
//! takes the next value of one monotonic resource-version counter and appends a row to an event
//! log in the same transaction; watches replay that log, so they see every change exactly once
//! and in order, across restarts, until the log is trimmed (then they get 410 Gone).

mod db;
mod error;
pub mod event;
mod head;
mod index;
pub mod meta;
mod tx;

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use sluice_api::Kind;
use tokio::sync::watch;

use crate::selector::LabelSelector;

pub use error::StoreError;
use event::{Event, EventPage, EventType, StoredEvent};
use tx::Tx;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const RESOURCE_VERSION: &str = "resourceVersion";
const COMPACTED: &str = "compacted";

/// The default number of events kept for watches to resume from.
pub const DEFAULT_HISTORY: u64 = 10_000;

/// Namespaces that always exist, as a cluster has `default` (and Knative's `knative-serving`,
/// where its configuration maps live); `sluice serve` creates them when missing.
pub const BUILTIN_NAMESPACES: &[&str] = &["default", "knative-serving"];

/// How every write transaction commits: `Immediate` makes redb fsync the file before
/// `commit` returns, so a write acknowledged to a client survives power loss, not only a crash
/// of this process. (`None` would leave it in the page cache until a later durable commit.)
pub const COMMIT_DURABILITY: Durability = Durability::Immediate;

/// The durable object store.
pub struct Store {
    db: db::Db,
    latest: watch::Sender<u64>,
    history: u64,
}

/// How a delete treats the objects the deleted one owns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Delete dependents that have no other owner (done at once, in the same transaction).
    #[default]
    Background,
    /// As background: dependents go first, in the same transaction.
    Foreground,
    /// Keep dependents, removing their reference to the deleted owner.
    Orphan,
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// What happens to dependents.
    pub propagation: Propagation,
    /// Refuse unless the object has this uid.
    pub uid: Option<String>,
    /// Refuse unless the object is at this resource version.
    pub resource_version: Option<String>,
    /// Compute the outcome without storing it.
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Clone, Debug)]
pub enum Deleted {
    /// The object is gone.
    Removed(Value),
    /// The object has finalizers: it is marked with a deletionTimestamp and stays until they
    /// are removed.
    Pending(Value),
}

/// A page of a list.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The objects, ordered by namespace then name.
    pub items: Vec<Value>,
    /// The resource version of the snapshot listed.
    pub resource_version: u64,
    /// The key to continue after, when the page was cut short.
    pub continue_after: Option<String>,
    /// How many objects follow this page.
    pub remaining: u64,
}

/// Which objects a list reads, and how many at most.
#[derive(Clone, Debug, Default)]
pub struct ListRequest<'a> {
    /// Only this namespace; all when None.
    pub namespace: Option<&'a str>,
    /// Start after this store key (from a previous page).
    pub start_after: Option<&'a str>,
    /// At most this many items that pass `filter`.
    pub limit: Option<usize>,
    /// Only objects whose labels it selects: checked before an object is read whole.
    pub labels: Option<&'a LabelSelector>,
}

// === impl Store ===

impl Store {
    /// Opens (or creates) the database at `path`, keeping `history` events for watches. After
    /// an I/O failure the database is opened again from `path`.
    pub fn open(path: &Path, history: u64) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        Self::with_opener(
            Box::new(move || {
                Database::create(&path).map_err(|e| match e {
                    redb::DatabaseError::DatabaseAlreadyOpen => {
                        StoreError::Storage(format!("{} is already open in another sluice process", path.display()))
                    }
                    e => match StoreError::from(e) {
                        StoreError::Io(m) => StoreError::Io(format!("{}: {m}", path.display())),
                        e => StoreError::Storage(format!("{}: {e}", path.display())),
                    },
                })
            }),
            history,
        )
    }

    /// The store over the database `open` opens, now and after each I/O failure (tests open
    /// one over an instrumented backend).
    fn with_opener(open: db::Opener, history: u64) -> Result<Self, StoreError> {
        let db = db::Db::new(open)?;
        let rv = db.run("open", |db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(COMMIT_DURABILITY)?;
            txn.open_table(OBJECTS)?;
            txn.open_table(EVENTS)?;
            if index::ensure(&txn)? {
                tracing::info!("indexed the stored objects by uid and owner");
            }
            let rv = txn.open_table(COUNTERS)?.get(RESOURCE_VERSION)?.map(|v| v.value()).unwrap_or(0);
            txn.commit()?;
            Ok(rv)
        })?;
        db.run("count", |db| {
            let txn = db.begin_read()?;
            let objects = txn.open_table(OBJECTS)?;
            for kind in Kind::ALL.into_iter().filter(|k| k.stored_as() == *k) {
                let (start, end) = prefix_range(kind, None);
                let count = objects.range(start.as_str()..end.as_str())?.count();
                crate::figures::store_objects(kind.info().plural, count as u64);
            }
            Ok(())
        })?;
        let (latest, _) = watch::channel(rv);
        Ok(Self { db, latest, history: history.max(1) })
    }

    /// Creates the Namespaces in `names` that do not exist, and one for every namespace that
    /// holds objects but has none (a store written before objects needed their namespace).
    pub fn ensure_namespaces(&self, names: &[&str]) -> Result<(), StoreError> {
        let mut wanted: std::collections::BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        self.db.run("namespaces", |db| {
            let txn = db.begin_read()?;
            let objects = txn.open_table(OBJECTS)?;
            for kind in Kind::ALL.into_iter().filter(|k| k.info().namespaced) {
                let (start, end) = prefix_range(kind, None);
                for row in objects.range(start.as_str()..end.as_str())? {
                    let (key, _) = row?;
                    if let Some(ns) = key.value().split('/').nth(1) {
                        wanted.insert(ns.to_string());
                    }
                }
            }
            Ok(())
        })?;
        let mut missing = Vec::new();
        for ns in wanted {
            if self.get(Kind::Namespace, "", &ns)?.is_none() {
                missing.push(ns);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        self.write(false, |tx| {
            for ns in &missing {
                let mut obj = serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}
                });
                let uid = uuid::Uuid::new_v4().to_string();
                meta::prepare_create(&mut obj, &uid, &tx.now, Kind::Namespace.info().has_status);
                tx.write(Kind::Namespace, &mut obj, EventType::Added, None)?;
            }
            Ok(())
        })
    }

    /// A receiver that changes whenever a write commits; its value is the newest version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// The newest committed resource version.
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// The stored object, if any.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Option<Value>, StoreError> {
        self.db.run("get", |db| {
            let txn = db.begin_read()?;
            let objects = txn.open_table(OBJECTS)?;
            let got = objects.get(object_key(kind, namespace, name).as_str())?;
            got.map(|v| serde_json::from_slice(v.value()).map_err(StoreError::from)).transpose()
        })
    }

    /// Lists objects of `kind` passing `req.labels` and `filter`, from one consistent snapshot.
    /// Only the keys of `req.namespace` are read, and an object's labels are checked before the
    /// object is read whole.
    pub fn list(
        &self,
        kind: Kind,
        req: &ListRequest<'_>,
        filter: impl Fn(&Value) -> bool,
    ) -> Result<ListPage, StoreError> {
        self.db.run("list", |db| {
            let txn = db.begin_read()?;
            let resource_version = txn.open_table(COUNTERS)?.get(RESOURCE_VERSION)?.map(|v| v.value()).unwrap_or(0);
            let objects = txn.open_table(OBJECTS)?;
            let (start, end) = prefix_range(kind, req.namespace);
            let lower = match req.start_after {
                Some(after) if after.as_bytes() >= start.as_bytes() => format!("{after}\0"),
                _ => start,
            };
            let limit = req.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
            let mut page = ListPage { items: Vec::new(), resource_version, continue_after: None, remaining: 0 };
            for row in objects.range(lower.as_str()..end.as_str())? {
                let (key, value) = row?;
                let selected = req.labels.filter(|s| !s.is_empty());
                // Some(None): the labels could not be read alone; the whole object says.
                let by_labels = selected.map(|s| head::stored_labels(value.value()).map(|l| s.matches(&l)));
                if by_labels == Some(Some(false)) {
                    continue;
                }
                let obj: Value = serde_json::from_slice(value.value())?;
                if let (Some(s), Some(None)) = (selected, by_labels)
                    && !s.matches(&meta::labels(&obj))
                {
                    continue;
                }
                if !filter(&obj) {
                    continue;
                }
                if page.items.len() == limit {
                    page.remaining += 1;
                    continue;
                }
                if page.items.len() + 1 == limit {
                    page.continue_after = Some(key.value().to_string());
                }
                page.items.push(obj);
            }
            if page.remaining == 0 {
                page.continue_after = None;
            }
            Ok(page)
        })
    }

    /// Stores a new object: fills uid, creationTimestamp, generation and resourceVersion.
    pub fn create(&self, kind: Kind, obj: Value, dry_run: bool) -> Result<Value, StoreError> {
        self.write(dry_run, |tx| create_in(tx, kind, obj))
    }

    /// As [`Store::create`], and in the same transaction removes the least recently written
    /// objects of `kind` in the new one's namespace beyond `max` (how Events are bounded).
    pub fn create_bounded(&self, kind: Kind, obj: Value, dry_run: bool, max: usize) -> Result<Value, StoreError> {
        self.write(dry_run, |tx| {
            let created = create_in(tx, kind, obj)?;
            let namespace = meta::namespace(&created);
            // Each create of a full namespace removes one: only the versions are read (not
            // every object whole), and only once the namespace is over `max`.
            if tx.count(kind, namespace)? > max {
                let mut held = tx.versions(kind, namespace)?;
                held.sort();
                let excess = held.len().saturating_sub(max);
                for (_, name) in held.into_iter().take(excess) {
                    if let Some(old) = tx.get(kind, namespace, &name)? {
                        delete_in(tx, kind, old, Propagation::Background)?;
                    }
                }
            }
            Ok(created)
        })
    }

    /// Deletes every object of `kind` that `doomed` picks, in one transaction; returns how
    /// many (how expired Events go).
    pub fn delete_where(&self, kind: Kind, doomed: impl Fn(&Value) -> bool) -> Result<usize, StoreError> {
        let found = self.list(kind, &ListRequest::default(), &doomed)?.items;
        if found.is_empty() {
            return Ok(0);
        }
        self.write(false, |tx| {
            let mut removed = 0;
            for obj in found {
                // Re-read: it may have been written (and so kept) since it was listed.
                if let Some(current) = tx.get(kind, meta::namespace(&obj), meta::name(&obj))?.filter(&doomed) {
                    delete_in(tx, kind, current, Propagation::Background)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    /// Replaces an object with `next` (already merged with [`meta::merge_update`] and admitted),
    /// provided the stored one is still at `expected_rv`. A write that changes nothing is not
    /// stored and returns the stored object; removing the last finalizer of an object being
    /// deleted deletes it.
    pub fn replace(&self, kind: Kind, mut next: Value, expected_rv: &str, dry_run: bool) -> Result<Value, StoreError> {
        let (namespace, name) = (meta::namespace(&next).to_string(), meta::name(&next).to_string());
        self.write(dry_run, |tx| {
            let current =
                tx.get(kind, &namespace, &name)?.ok_or_else(|| StoreError::NotFound { kind, name: name.clone() })?;
            if meta::resource_version(&current) != expected_rv {
                return Err(conflict(kind, &name));
            }
            if meta::is_deleting(&current) && !meta::added_finalizers(&current, &next).is_empty() {
                return Err(StoreError::Invalid {
                    kind,
                    name: name.clone(),
                    field: "metadata.finalizers".into(),
                    reason: "no new finalizers can be added if the object is being deleted".into(),
                });
            }
            meta::finish_update(&current, &mut next, kind.info().has_status);
            if meta::same_except_resource_version(&current, &next) {
                return Ok(current);
            }
            if meta::is_deleting(&next) && meta::finalizers(&next).is_empty() {
                tx.remove(kind, &mut next)?;
                cascade(tx, &next, Propagation::Background)?;
                return Ok(next);
            }
            tx.write(kind, &mut next, EventType::Modified, Some(meta::labels(&current)))?;
            Ok(next)
        })
    }

    /// Deletes an object, and what it owns according to `opts.propagation`.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str, opts: &DeleteOptions) -> Result<Deleted, StoreError> {
        self.write(opts.dry_run, |tx| {
            let obj = tx.get(kind, namespace, name)?.ok_or_else(|| StoreError::NotFound { kind, name: name.to_string() })?;
            if let Some(uid) = opts.uid.as_deref().filter(|u| *u != meta::uid(&obj)) {
                return Err(StoreError::Conflict {
                    kind,
                    name: name.to_string(),
                    reason: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::uid(&obj)),
                });
            }
            if let Some(rv) = opts.resource_version.as_deref().filter(|rv| *rv != meta::resource_version(&obj)) {
                return Err(StoreError::Conflict {
                    kind,
                    name: name.to_string(),
                    reason: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta::resource_version(&obj)
                    ),
                });
            }
            delete_in(tx, kind, obj, opts.propagation)
        })
    }

    /// The events after `rv`, at most `max` of them, or Gone when they were trimmed.
    pub fn events_after(&self, rv: u64, max: usize) -> Result<EventPage, StoreError> {
        self.db.run("events_after", |db| {
            let txn = db.begin_read()?;
            let counters = txn.open_table(COUNTERS)?;
            let latest = counters.get(RESOURCE_VERSION)?.map(|v| v.value()).unwrap_or(0);
            let compacted = counters.get(COMPACTED)?.map(|v| v.value()).unwrap_or(0);
            if rv < compacted {
                return Err(StoreError::Gone { requested: rv, oldest: compacted + 1 });
            }
            let events = txn.open_table(EVENTS)?;
            let mut page = EventPage { events: Vec::new(), upto: latest };
            for row in events.range(rv.saturating_add(1)..)? {
                let (key, value) = row?;
                if page.events.len() == max {
                    page.upto = page.events.last().map_or(rv, |e: &Event| e.rv);
                    break;
                }
                let stored: StoredEvent = serde_json::from_slice(value.value())?;
                page.events.push(Event { rv: key.value(), stored });
            }
            Ok(page)
        })
    }

    /// Runs `f` in one write transaction; commits it unless `dry_run`, then wakes watchers.
    fn write<T>(&self, dry_run: bool, f: impl FnOnce(&mut Tx) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.db.run("write", |db| {
            let mut tx = Tx::begin(db)?;
            let out = f(&mut tx)?;
            if dry_run {
                tx.abort()?;
                return Ok(out);
            }
            let rv = tx.commit(self.history)?;
            self.latest.send_if_modified(|latest| {
                let changed = rv > *latest;
                *latest = (*latest).max(rv);
                changed
            });
            Ok(out)
        })
    }
}

/// Stores a new object inside `tx`.
fn create_in(tx: &mut Tx, kind: Kind, mut obj: Value) -> Result<Value, StoreError> {
    let (namespace, name) = (meta::namespace(&obj).to_string(), meta::name(&obj).to_string());
    if tx.get(kind, &namespace, &name)?.is_some() {
        return Err(StoreError::AlreadyExists { kind, name: name.clone() });
    }
    let uid = uuid::Uuid::new_v4().to_string();
    meta::prepare_create(&mut obj, &uid, &tx.now, kind.info().has_status);
    tx.write(kind, &mut obj, EventType::Added, None)?;
    if orphaned(tx, &obj)? {
        // Kubernetes' garbage collector deletes a dependent whose owners are all gone
        // (a controller that created it just as its owner was deleted); here at once.
        let mut removed = obj.clone();
        tx.remove(kind, &mut removed)?;
    }
    Ok(obj)
}

/// Deletes `obj` inside `tx`: marks it when finalizers are pending, else removes it and what
/// it owns.
fn delete_in(tx: &mut Tx, kind: Kind, mut obj: Value, propagation: Propagation) -> Result<Deleted, StoreError> {
    if !meta::finalizers(&obj).is_empty() {
        if meta::is_deleting(&obj) {
            return Ok(Deleted::Pending(obj));
        }
        let prev = meta::labels(&obj);
        let m = meta::metadata_mut(&mut obj);
        m.insert("deletionTimestamp".into(), tx.now.clone().into());
        m.insert("deletionGracePeriodSeconds".into(), 0.into());
        tx.write(kind, &mut obj, EventType::Modified, Some(prev))?;
        return Ok(Deleted::Pending(obj));
    }
    tx.remove(kind, &mut obj)?;
    cascade(tx, &obj, propagation)?;
    if kind == Kind::Namespace {
        empty_namespace(tx, meta::name(&obj))?;
    }
    Ok(Deleted::Removed(obj))
}

/// Deletes everything in a deleted namespace, as Kubernetes' namespace controller does (here
/// in the same transaction; objects with pending finalizers stay until those are removed).
fn empty_namespace(tx: &mut Tx, namespace: &str) -> Result<(), StoreError> {
    for (kind, obj) in tx.scan_namespace(namespace)? {
        // Re-read: an owner deleted earlier in this loop may have taken it with it.
        if let Some(current) = tx.get(kind, namespace, meta::name(&obj))? {
            delete_in(tx, kind, current, Propagation::Background)?;
        }
    }
    Ok(())
}

/// True when `obj` names owners and none of them exists any more (same uid, same place). An
/// owner of a kind this store does not hold is assumed to exist.
fn orphaned(tx: &Tx, obj: &Value) -> Result<bool, StoreError> {
    let Some(refs) = meta::metadata(obj).get("ownerReferences").and_then(Value::as_array).filter(|r| !r.is_empty())
    else {
        return Ok(false);
    };
    for r in refs {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let Some(kind) = Kind::from_type(field("apiVersion"), field("kind")) else { return Ok(false) };
        let ns = if kind.info().namespaced { meta::namespace(obj) } else { "" };
        if tx.get(kind, ns, field("name"))?.is_some_and(|owner| meta::uid(&owner) == field("uid")) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies a removed owner's propagation policy to the objects that reference it, found
/// through the owner index (an owner that owns nothing, such as an Event removed to bound its
/// namespace, costs one index read).
fn cascade(tx: &mut Tx, owner: &Value, propagation: Propagation) -> Result<(), StoreError> {
    let owner_uid = meta::uid(owner).to_string();
    let namespace = meta::namespace(owner).to_string();
    for (kind, name) in tx.dependents(&owner_uid, &namespace)? {
        // Read now: an earlier step of this cascade may have changed or removed it.
        let Some(mut dependent) = tx.get(kind, &namespace, &name)? else { continue };
        let owners = meta::owner_uids(&dependent);
        if !owners.contains(&owner_uid) {
            continue;
        }
        if propagation == Propagation::Orphan {
            let prev = meta::labels(&dependent);
            meta::remove_owner(&mut dependent, &owner_uid);
            tx.write(kind, &mut dependent, EventType::Modified, Some(prev))?;
            continue;
        }
        let mut kept = false;
        for other in owners.iter().filter(|o| **o != owner_uid) {
            if tx.live(other, &namespace)? {
                kept = true;
                break;
            }
        }
        if !kept {
            delete_in(tx, kind, dependent, Propagation::Background)?;
        }
    }
    Ok(())
}

fn conflict(kind: Kind, name: &str) -> StoreError {
    StoreError::Conflict {
        kind,
        name: name.to_string(),
        reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
}

/// The store key of an object: `plural/namespace/name`.
fn object_key(kind: Kind, namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", kind.info().plural)
}

/// The key range holding `kind`'s objects, in one namespace or all.
fn prefix_range(kind: Kind, namespace: Option<&str>) -> (String, String) {
    // '0' is the byte after '/', so `prefix/`..`prefix0` covers exactly the keys under prefix.
    match namespace {
        Some(ns) => (format!("{}/{ns}/", kind.info().plural), format!("{}/{ns}0", kind.info().plural)),
        None => (format!("{}/", kind.info().plural), format!("{}0", kind.info().plural)),
    }
}

/// Now, as Kubernetes writes timestamps: RFC 3339 in UTC, whole seconds.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests;
