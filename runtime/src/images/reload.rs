//! The image table in force, and its file followed while `sluice serve` runs: the file is read
//! every second and, when its content changed, the table is rebuilt and swapped in whole. A
//! file that does not parse keeps the table before it (logged as an error naming the problem);
//! instances waiting for an image they could not find try again after each swap.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ImageTable, ImageTableError};

/// The table in force: read per start without a lock, replaced whole.
#[derive(Clone, Debug)]
pub struct Images {
    table: Arc<ArcSwap<ImageTable>>,
    /// Counts swaps, so a start that found no image can wait for the next table.
    version: Arc<watch::Sender<u64>>,
}

/// The table's file, and what was last read from it.
#[derive(Debug)]
pub struct ImageFile {
    path: PathBuf,
    /// Given with `--images`: its absence is an error. The default file may be absent.
    required: bool,
    /// The built-in table the file's entries are added to.
    base: ImageTable,
    /// The hash of the content last read (None: the file was absent); None before the first read.
    seen: Option<Option<u64>>,
}

// === impl Images ===

impl Images {
    /// `table` in force.
    pub fn new(table: ImageTable) -> Self {
        Self { table: Arc::new(ArcSwap::from_pointee(table)), version: Arc::new(watch::channel(0).0) }
    }

    /// The argv `image` runs with the table in force (see [`ImageTable::resolve`]).
    pub fn resolve(&self, image: &str) -> Option<Vec<std::ffi::OsString>> {
        self.table.load().resolve(image)
    }

    /// Puts `table` in force and wakes whoever waits for a new one.
    pub fn store(&self, table: ImageTable) {
        self.table.store(Arc::new(table));
        self.version.send_modify(|v| *v += 1);
    }

    /// A receiver that sees each table stored from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

// === impl ImageFile ===

impl ImageFile {
    /// `path` on top of `base`; `required` when the user named it.
    pub fn new(path: &Path, required: bool, base: ImageTable) -> Self {
        Self { path: path.to_path_buf(), required, base, seen: None }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file: the table it makes when its content changed since the last read (or this
    /// is the first), None when unchanged. An error is returned once per content.
    pub fn poll(&mut self) -> Result<Option<ImageTable>, ImageTableError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.required => None,
            Err(source) => {
                // Absent (or unreadable) once: said once, until it changes again.
                if self.seen == Some(None) {
                    return Ok(None);
                }
                self.seen = Some(None);
                return Err(ImageTableError::Read { path: self.path.clone(), source });
            }
        };
        let hash = text.as_deref().map(|t| {
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            h.finish()
        });
        if self.seen == Some(hash) {
            return Ok(None);
        }
        self.seen = Some(hash);
        let mut table = self.base.clone();
        if let Some(text) = text {
            table.merge_text(&self.path, &text)?;
        }
        Ok(Some(table))
    }

    /// Polls every `every` until `stop`, storing each new table into `images`.
    pub async fn follow(mut self, images: Images, every: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.poll() {
                Ok(Some(table)) => {
                    tracing::info!(file = %self.path.display(), "image table reloaded");
                    images.store(table);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "image table not reloaded; the table before it stays in force"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ImageTable {
        ImageTable::builtin(Path::new("/bin/sluice"))
    }

    #[test]
    fn a_changed_file_makes_a_new_table_and_an_unchanged_one_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("images.yaml");
        let mut file = ImageFile::new(&path, false, base());
        let first = file.poll().expect("absent is fine").expect("first read");
        assert!(first.resolve("shop").is_none());
        assert!(file.poll().expect("still absent").is_none(), "nothing changed");
        std::fs::write(&path, "images:\n  shop: [/opt/shop]\n").expect("write");
        let table = file.poll().expect("valid").expect("changed");
        assert_eq!(table.resolve("shop"), Some(vec!["/opt/shop".into()]));
        assert!(table.resolve("helloworld-go").is_some(), "the built-in table stays under it");
        assert!(file.poll().expect("valid").is_none());
        std::fs::remove_file(&path).expect("remove");
        let table = file.poll().expect("the default file may go").expect("changed");
        assert!(table.resolve("shop").is_none());
    }

    #[test]
    fn a_bad_file_is_an_error_once_and_the_next_good_one_is_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("images.yaml");
        std::fs::write(&path, "images:\n  shop: [/opt/shop]\n").expect("write");
        let mut file = ImageFile::new(&path, true, base());
        file.poll().expect("valid").expect("first");
        std::fs::write(&path, "images:\n  shop: []\n").expect("write");
        let err = file.poll().expect_err("empty command");
        assert!(err.to_string().contains("images.shop"), "{err}");
        assert!(file.poll().expect("said once").is_none());
        std::fs::remove_file(&path).expect("remove");
        let err = file.poll().expect_err("--images names a file that must be there");
        assert!(err.to_string().contains("images.yaml"), "{err}");
        assert!(file.poll().expect("said once").is_none());
        std::fs::write(&path, "images:\n  shop: [/opt/shop2]\n").expect("write");
        let table = file.poll().expect("valid").expect("changed");
        assert_eq!(table.resolve("shop"), Some(vec!["/opt/shop2".into()]));
    }

    #[tokio::test]
    async fn a_stored_table_is_in_force_and_wakes_waiters() {
        let images = Images::new(base());
        let mut changes = images.subscribe();
        assert!(images.resolve("shop").is_none());
        let mut table = base();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("images.yaml");
        table.merge_text(&path, "images:\n  shop: [/opt/shop]\n").expect("valid");
        images.store(table);
        tokio::time::timeout(Duration::from_secs(5), changes.changed()).await.expect("woken").expect("open");
        assert_eq!(images.resolve("shop"), Some(vec!["/opt/shop".into()]));
    }
}
