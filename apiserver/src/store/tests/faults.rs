//! A full disk, simulated by a backend whose writes fail with ENOSPC on demand: the failing
//! write reports the cause and is logged at ERROR, and once space returns the store writes
//! again (redb alone would answer "Previous I/O error" until a restart), with nothing
//! acknowledged lost and nothing of the failed write kept.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::backends::FileBackend;

use super::*;
use crate::status::ApiError;

/// ENOSPC.
const NO_SPACE: i32 = 28;

/// A redb file backend over `path`.
pub(super) fn file_backend(path: &Path) -> Result<FileBackend, StoreError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok(FileBackend::new(file)?)
}

/// A file backend whose writes, growth and syncs fail with ENOSPC while `full` is set.
#[derive(Debug)]
struct FullDisk {
    file: FileBackend,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) { Err(std::io::Error::from_raw_os_error(NO_SPACE)) } else { Ok(()) }
    }
}

impl redb::StorageBackend for FullDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }
}

/// Log lines written while `f` runs.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<parking_lot::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buffer.0.lock()).into_owned();
    (out, text)
}

#[test]
fn a_full_disk_fails_the_write_with_its_cause_and_writes_work_again_once_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let full = Arc::new(AtomicBool::new(false));
    let flag = full.clone();
    let open = move || -> Result<redb::Database, StoreError> {
        let backend = FullDisk { file: file_backend(&path)?, full: flag.clone() };
        Ok(redb::Builder::new().create_with_backend(backend)?)
    };
    let store = Store::with_opener(Box::new(open), DEFAULT_HISTORY).expect("store");
    let before = store.create(Kind::Route, route("before"), false).expect("create before the disk fills");

    full.store(true, Ordering::SeqCst);
    let (failed, log) = logged(|| store.create(Kind::Route, route("lost"), false));
    let err = failed.expect_err("a write to a full disk fails");
    let api = ApiError::from(err);
    assert_eq!(api.code, 500, "{api:?}");
    assert!(api.message.contains("No space left on device"), "the cause reaches the client: {}", api.message);
    assert!(log.contains("ERROR") && log.contains("No space left on device"), "logged at ERROR with the cause:\n{log}");
    // Still full: later writes fail with the real cause, not redb's "Previous I/O error".
    let again = store.create(Kind::Route, route("lost"), false).expect_err("the disk is still full");
    assert!(!again.to_string().contains("Previous I/O"), "{again}");

    full.store(false, Ordering::SeqCst);
    let (after, log) = logged(|| store.create(Kind::Route, route("after"), false));
    let after = after.unwrap_or_else(|e| panic!("writes work again once space returns: {e}\n{log}"));
    let stored = store.get(Kind::Route, "default", "before").expect("get").expect("acknowledged write kept");
    assert_eq!(stored, before);
    assert_eq!(store.get(Kind::Route, "default", "lost").expect("get"), None, "nothing of the failed writes");
    assert_eq!(
        meta::resource_version(&after).parse::<u64>().expect("rv"),
        meta::resource_version(&before).parse::<u64>().expect("rv") + 1,
        "the failed writes took no resource version"
    );
    let events = store.events_after(0, 10).expect("events");
    let names: Vec<&str> = events.events.iter().map(|e| meta::name(&e.stored.object)).collect();
    assert_eq!(names, ["before", "after"]);
}
