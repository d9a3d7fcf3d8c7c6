//! A full disk through the real binary: with its state directory on a small tmpfs filled up,
//! a write gets a 500 naming the cause, and once space is freed writes work again without a
//! restart, with nothing of the failed writes stored. Mounting needs root; elsewhere the test
//! is skipped with a printed reason (the store's own tests fake the full disk with a redb
//! backend, `apiserver/src/store/tests/faults.rs`, and run everywhere).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_test_support::http::Client;
use sluice_test_support::{Sluice, SluiceOptions};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it), or says why it cannot.
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a file still open (a server being reaped) must not leave the mount behind.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills the filesystem holding `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    // What a 64 KiB block did not fit.
    while file.write_all(&block[..512]).is_ok() {}
    path
}

async fn create(c: &Client, s: &Sluice, name: &str, size: usize) -> (StatusCode, Value) {
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "x".repeat(size)}});
    let res = c
        .send(
            Method::POST,
            &format!("{}{CONFIGMAPS}", s.api),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
        .expect("create");
    (res.status, res.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_work_again_once_a_full_disk_has_space() {
    let tmpfs = match Tmpfs::mount("16m") {
        Ok(t) => t,
        Err(reason) => {
            eprintln!("skipped: cannot mount a small tmpfs ({reason})");
            return;
        }
    };
    let state = tmpfs.path().join("state");
    let s = Sluice::start_with(
        BIN,
        SluiceOptions { state_dir: Some(state), args: vec!["--no-controllers".into()], ..Default::default() },
    )
    .expect("start sluice");
    let c = s.client();
    let (code, before) = create(&c, &s, "before", 100).await;
    assert_eq!(code, StatusCode::CREATED, "{before}");
    let before_rv: u64 = before["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).expect("rv");

    let filler = fill(tmpfs.path());
    for name in ["full-1", "full-2"] {
        let (code, status) = create(&c, &s, name, 1_000_000).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.contains("No space left on device"), "the cause, not redb's 'Previous I/O error': {status}");
    }

    std::fs::remove_file(filler).expect("free the space");
    let (code, created) = create(&c, &s, "after", 1_000_000).await;
    assert_eq!(code, StatusCode::CREATED, "writes work again once space returns: {created}");
    let list = c.get(&format!("{}{CONFIGMAPS}", s.api), &[]).await.expect("list").json();
    let names: Vec<&str> =
        list["items"].as_array().expect("items").iter().filter_map(|i| i["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["after", "before"], "nothing of the failed writes");
    let after_rv = (before_rv + 1).to_string();
    assert_eq!(created["metadata"]["resourceVersion"], after_rv.as_str(), "the failed writes took no resource version");
    drop(s);
}
