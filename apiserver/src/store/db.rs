//! The open redb database, reopened after an I/O failure. redb refuses every operation after
//! one failed write ("Previous I/O error occurred. Please close and re-open the database"), so
//! a full disk would wedge the store until a restart; here each storage failure is logged at
//! ERROR with its cause and an I/O one drops the database and opens it again, which recovers
//! the last committed state (redb's commits are atomic: nothing acknowledged is lost, nothing
//! half-written is kept). When reopening fails too (the disk is still full), the store stays
//! closed and tries again at the next operation.

use parking_lot::RwLock;
use redb::Database;

use super::StoreError;

/// Opens the database: again after every I/O failure.
pub(super) type Opener = Box<dyn Fn() -> Result<Database, StoreError> + Send + Sync>;

/// The database and how to open it again.
pub(super) struct Db {
    slot: RwLock<Slot>,
    open: Opener,
}

struct Slot {
    /// Bumped at each reopen, so a failure seen on an old database reopens only once.
    generation: u64,
    /// None while closed after a failed reopen.
    db: Option<Database>,
    /// Why the last reopen failed.
    last_error: String,
}

// === impl Db ===

impl Db {
    /// Opens the database with `open`.
    pub fn new(open: Opener) -> Result<Self, StoreError> {
        let db = open()?;
        Ok(Self { slot: RwLock::new(Slot { generation: 0, db: Some(db), last_error: String::new() }), open })
    }

    /// Runs `op` on the database; a storage failure is logged, and an I/O one reopens it.
    /// Operations share the database; a reopen waits until those in progress have finished.
    pub fn run<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let closed_at = {
            let slot = self.slot.read();
            slot.db.is_none().then_some(slot.generation)
        };
        if let Some(generation) = closed_at {
            self.reopen(generation);
        }
        let (generation, result) = {
            let slot = self.slot.read();
            match &slot.db {
                Some(db) => (slot.generation, f(db)),
                // Reopening just failed, and said why in the log: no second attempt here.
                None => {
                    let why =
                        format!("the database is closed after an I/O error; reopening it failed: {}", slot.last_error);
                    return Err(StoreError::Io(why));
                }
            }
        };
        match &result {
            Err(e @ StoreError::Io(_)) => {
                tracing::error!(op, error = %e, "storage I/O failed; reopening the database");
                self.reopen(generation);
            }
            Err(e @ StoreError::Storage(_)) => tracing::error!(op, error = %e, "storage failed"),
            _ => {}
        }
        result
    }

    /// Drops the database opened as `generation` and opens it again, unless another caller
    /// already did.
    fn reopen(&self, generation: u64) {
        let mut slot = self.slot.write();
        if slot.generation != generation {
            return;
        }
        slot.generation += 1;
        // Dropped before opening again: it holds the file's lock.
        slot.db = None;
        match (self.open)() {
            Ok(db) => {
                slot.db = Some(db);
                tracing::warn!("database reopened after an I/O error");
            }
            Err(e) => {
                tracing::error!(error = %e, "reopening the database failed; trying again at the next operation");
                slot.last_error = e.to_string();
            }
        }
    }
}
