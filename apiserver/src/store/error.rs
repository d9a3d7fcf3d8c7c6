//! What can go wrong in the store, as typed data the API server maps to HTTP statuses.

use sluice_api::Kind;

/// A store operation that did not happen; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// The kind asked for.
        kind: Kind,
        /// The name asked for.
        name: String,
    },
    /// An object with that name exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// The kind written.
        kind: Kind,
        /// The name taken.
        name: String,
    },
    /// The write was based on a stale resourceVersion or failed a precondition.
    #[error("operation cannot be fulfilled on {kind} {name:?}: {reason}")]
    Conflict {
        /// The kind written.
        kind: Kind,
        /// The object's name.
        name: String,
        /// What did not match.
        reason: String,
    },
    /// The write breaks a metadata rule (e.g. adding a finalizer while deleting).
    #[error("{kind} {name:?} is invalid: {reason}")]
    Invalid {
        /// The kind written.
        kind: Kind,
        /// The object's name.
        name: String,
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// The requested resourceVersion is older than the event history kept.
    #[error("too old resource version: {requested} ({oldest})")]
    Gone {
        /// The version asked for.
        requested: u64,
        /// The oldest version still available.
        oldest: u64,
    },
    /// The database failed; the transaction was rolled back.
    #[error("storage error: {0}")]
    Storage(String),
    /// Reading or writing the database file failed (e.g. the disk is full); the transaction
    /// was rolled back and the database is reopened.
    #[error("storage I/O error: {0}")]
    Io(String),
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                match redb::Error::from(e) {
                    e @ (redb::Error::Io(_) | redb::Error::PreviousIo) => StoreError::Io(e.to_string()),
                    e => StoreError::Storage(e.to_string()),
                }
            }
        }
    )*};
}

storage_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(_) | redb::Error::PreviousIo => StoreError::Io(e.to_string()),
            e => StoreError::Storage(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Storage(e.to_string())
    }
}
