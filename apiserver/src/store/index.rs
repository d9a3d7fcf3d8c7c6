//! Indexes beside the objects, so an owner's cascade reads its dependents instead of every
//! object of its namespace: each stored object's uid → its key, and one row per
//! `ownerReference` (owner uid, dependent key). They are written in the same transaction as
//! the object they describe, so a committed state never has them disagree; a store written by
//! a build without them (or by such a build after this one) is indexed again when opened: the
//! `indexedAt` counter names the resource version they were last known to match.

use std::collections::BTreeSet;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Deserialize;
use serde_json::Value;
use sluice_api::Kind;

use super::{COUNTERS, OBJECTS, RESOURCE_VERSION, StoreError, meta};

/// One row per owner reference: (owner uid, dependent's store key).
const DEPENDENTS: TableDefinition<(&str, &str), ()> = TableDefinition::new("dependents");
/// Each stored object's uid → its store key.
const UIDS: TableDefinition<&str, &str> = TableDefinition::new("uids");
/// The counter naming the resource version the indexes were last written at.
pub(super) const INDEXED_AT: &str = "indexedAt";

/// What the indexes record of one stored object.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Entry {
    uid: String,
    owners: BTreeSet<String>,
}

/// The part of a stored object's JSON [`Entry::read`] looks at: its metadata, read whole (so
/// odd shapes read as the whole object reads them), and nothing else built.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: Value,
}

// === impl Entry ===

impl Entry {
    /// The entry of an object.
    pub fn of(obj: &Value) -> Self {
        Self { uid: meta::uid(obj).to_string(), owners: meta::owner_uids(obj).into_iter().collect() }
    }

    /// The entry of an object's stored JSON; an empty one when it is not an object.
    pub fn read(bytes: &[u8]) -> Self {
        let metadata = serde_json::from_slice::<Head>(bytes).map(|h| h.metadata).unwrap_or_default();
        Self::of(&serde_json::json!({ "metadata": metadata }))
    }
}

/// Moves the indexes of the object under `key` from `old` (None: it did not exist) to `new`
/// (None: it is removed).
pub(super) fn update(
    txn: &WriteTransaction,
    key: &str,
    old: Option<&Entry>,
    new: Option<&Entry>,
) -> Result<(), StoreError> {
    let empty = Entry::default();
    let (old_e, new_e) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    {
        let mut dependents = txn.open_table(DEPENDENTS)?;
        for owner in old_e.owners.difference(&new_e.owners) {
            dependents.remove((owner.as_str(), key))?;
        }
        for owner in new_e.owners.difference(&old_e.owners) {
            dependents.insert((owner.as_str(), key), ())?;
        }
    }
    let mut uids = txn.open_table(UIDS)?;
    if old.is_some() && (new.is_none() || old_e.uid != new_e.uid) {
        // Only its own row: a uid another object holds (not written by this server) stays.
        if uids.get(old_e.uid.as_str())?.is_some_and(|k| k.value() == key) {
            uids.remove(old_e.uid.as_str())?;
        }
    }
    if let Some(new) = new.filter(|n| old.is_none_or(|o| o.uid != n.uid)) {
        uids.insert(new.uid.as_str(), key)?;
    }
    Ok(())
}

/// Writes the indexes afresh from every stored object unless they are known to match the
/// objects (written at the newest resource version). True when it rebuilt them.
pub(super) fn ensure(txn: &WriteTransaction) -> Result<bool, StoreError> {
    let mut counters = txn.open_table(COUNTERS)?;
    let rv = counters.get(RESOURCE_VERSION)?.map(|v| v.value()).unwrap_or(0);
    if counters.get(INDEXED_AT)?.map(|v| v.value()) == Some(rv) {
        return Ok(false);
    }
    txn.delete_table(DEPENDENTS)?;
    txn.delete_table(UIDS)?;
    let objects = txn.open_table(OBJECTS)?;
    for row in objects.iter()? {
        let (key, value) = row?;
        update(txn, key.value(), None, Some(&Entry::read(value.value())))?;
    }
    counters.insert(INDEXED_AT, rv)?;
    Ok(true)
}

/// The kind and name of every object in `namespace` naming `owner_uid` among its owners, in
/// the order a scan of the namespace reads them (kind, then name).
pub(super) fn dependents(
    txn: &WriteTransaction,
    owner_uid: &str,
    namespace: &str,
) -> Result<Vec<(Kind, String)>, StoreError> {
    let table = txn.open_table(DEPENDENTS)?;
    let mut out = Vec::new();
    for row in table.range((owner_uid, "")..)? {
        let (k, _) = row?;
        let (owner, key) = k.value();
        if owner != owner_uid {
            break;
        }
        if let Some((kind, ns, name)) = split_key(key)
            && ns == namespace
        {
            out.push((kind, name.to_string()));
        }
    }
    out.sort_by_key(|(kind, name)| (Kind::ALL.iter().position(|k| k == kind), name.clone()));
    Ok(out)
}

/// True when an object with `uid` is stored in `namespace`.
pub(super) fn live(txn: &WriteTransaction, uid: &str, namespace: &str) -> Result<bool, StoreError> {
    let uids = txn.open_table(UIDS)?;
    let found = uids.get(uid)?;
    Ok(found.is_some_and(|key| split_key(key.value()).is_some_and(|(_, ns, _)| ns == namespace)))
}

/// The kind, namespace and name of a store key (`plural/namespace/name`).
fn split_key(key: &str) -> Option<(Kind, &str, &str)> {
    let mut parts = key.splitn(3, '/');
    let (plural, ns, name) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = Kind::ALL.into_iter().find(|k| k.stored_as() == *k && k.info().plural == plural)?;
    Some((kind, ns, name))
}

/// Rows of an index as strings: (owner uid, dependent key) or (uid, key).
#[cfg(test)]
pub(super) type Rows = Vec<(String, String)>;

/// Every row of both indexes, for tests comparing a maintained index with a rebuilt one.
#[cfg(test)]
pub(super) fn dump(txn: &redb::ReadTransaction) -> Result<(Rows, Rows), StoreError> {
    let mut deps = Vec::new();
    for row in txn.open_table(DEPENDENTS)?.iter()? {
        let (k, _) = row?;
        let (owner, key) = k.value();
        deps.push((owner.to_string(), key.to_string()));
    }
    let mut uids = Vec::new();
    for row in txn.open_table(UIDS)?.iter()? {
        let (k, v) = row?;
        uids.push((k.value().to_string(), v.value().to_string()));
    }
    Ok((deps, uids))
}

/// Makes the store look as a build without the indexes left it: no index tables, no
/// `indexedAt`.
#[cfg(test)]
pub(super) fn forget(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(DEPENDENTS)?;
    txn.delete_table(UIDS)?;
    txn.open_table(COUNTERS)?.remove(INDEXED_AT)?;
    Ok(())
}
