//! The local image table: what command a container that names only an `image` runs on this
//! machine. Built in, Knative's `helloworld-go` and `autoscale-go` sample images run Sluice's own
//! sample apps (`sluice sample hello`, `sluice sample autoscale`); a
//! YAML file extends the table:
//!
//! ```yaml
//! images:
//!   ghcr.io/acme/shop:v2: ["/opt/shop/bin/shop", "--serve"]   # one exact reference
//!   shop: ["/opt/shop/bin/shop"]                              # any tag of any registry's shop
//! ```
//!
//! The file is followed while `sluice serve` runs ([`reload`]).

mod reload;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use reload::{ImageFile, Images};

/// Why an image table file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageTableError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid image table.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the parser's position when it has one.
        reason: String,
    },
}

/// Image reference → argv.
#[derive(Clone, Debug)]
pub struct ImageTable {
    sluice: PathBuf,
    entries: BTreeMap<String, Vec<OsString>>,
    sample_test_endpoints: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    images: BTreeMap<String, Vec<String>>,
}

/// The last path segment of `image`, without tag or digest: `ghcr.io/knative/helloworld-go:v1`
/// → `helloworld-go`.
pub fn short_name(image: &str) -> &str {
    let repo = repository(image);
    repo.rsplit('/').next().unwrap_or(repo)
}

/// `image` without tag or digest: `ghcr.io/x/app:v1@sha256:..` → `ghcr.io/x/app`.
pub fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].find(':') {
        Some(colon) => &no_digest[..last_slash + colon],
        None => no_digest,
    }
}

// === impl ImageTable ===

impl ImageTable {
    /// The built-in table; `sluice` is the executable that runs the sample apps.
    pub fn builtin(sluice: &Path) -> Self {
        Self { sluice: sluice.to_path_buf(), entries: BTreeMap::new(), sample_test_endpoints: false }
    }

    /// The built-in sample apps also serve their test endpoints (`/env/NAME`, `/crash`, `/stats`): for
    /// Sluice's own tests, never for a server others reach.
    pub fn with_sample_test_endpoints(mut self) -> Self {
        self.sample_test_endpoints = true;
        self
    }

    /// Adds the entries of a YAML table file; its entries win over earlier ones.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ImageTableError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ImageTableError::Read { path: path.into(), source })?;
        self.merge_text(path, &text)
    }

    /// Adds the entries of `text`, read from `path`; on an error the table is unchanged.
    pub fn merge_text(&mut self, path: &Path, text: &str) -> Result<(), ImageTableError> {
        let file: TableFile = serde_saphyr::from_str(text)
            .map_err(|e| ImageTableError::Invalid { path: path.into(), reason: e.to_string() })?;
        for (image, argv) in &file.images {
            if image.trim().is_empty() {
                return Err(ImageTableError::Invalid {
                    path: path.into(),
                    reason: "images: an image name is empty".into(),
                });
            }
            if argv.first().is_none_or(|a| a.is_empty()) {
                return Err(ImageTableError::Invalid {
                    path: path.into(),
                    reason: format!("images.{image}: the command is empty; give at least the program to run"),
                });
            }
        }
        for (image, argv) in file.images {
            self.entries.insert(image, argv.into_iter().map(OsString::from).collect());
        }
        Ok(())
    }

    /// The argv `image` runs: an exact entry, else one for its repository, else one for its
    /// short name, else a built-in sample; None when the table does not know it.
    pub fn resolve(&self, image: &str) -> Option<Vec<OsString>> {
        let image = image.trim();
        for key in [image, repository(image), short_name(image)] {
            if let Some(argv) = self.entries.get(key) {
                return Some(argv.clone());
            }
        }
        let app = match short_name(image) {
            "helloworld-go" => "hello",
            "autoscale-go" => "autoscale",
            _ => return None,
        };
        let mut argv = vec![self.sluice.clone().into_os_string(), "sample".into(), app.into()];
        if self.sample_test_endpoints {
            argv.push("--test-endpoints".into());
        }
        Some(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_registry_tag_and_digest() {
        assert_eq!(short_name("ghcr.io/knative/helloworld-go:latest"), "helloworld-go");
        assert_eq!(short_name("gcr.io/knative-samples/helloworld-go@sha256:abc"), "helloworld-go");
        assert_eq!(short_name("localhost:5000/team/helloworld-go:v1@sha256:abc"), "helloworld-go");
        assert_eq!(short_name("helloworld-go"), "helloworld-go");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app", "a registry port is not a tag");
        assert_eq!(repository("localhost:5000/app:v2"), "localhost:5000/app");
    }

    #[test]
    fn helloworld_is_built_in() {
        let t = ImageTable::builtin(Path::new("/bin/sluice"));
        let argv = t.resolve("ghcr.io/knative/helloworld-go:latest").expect("built in");
        assert_eq!(argv, ["/bin/sluice", "sample", "hello"].map(OsString::from));
        assert!(t.resolve("docker.io/acme/helloworld-go-extra").is_none());
    }

    #[test]
    fn autoscale_go_is_built_in_with_test_endpoints_when_asked() {
        let t = ImageTable::builtin(Path::new("/bin/sluice"));
        let argv = ["/bin/sluice", "sample", "autoscale"].map(OsString::from);
        assert_eq!(t.resolve("ghcr.io/knative/autoscale-go:latest"), Some(argv.to_vec()));
        assert_eq!(t.resolve("gcr.io/knative-samples/autoscale-go@sha256:abc"), Some(argv.to_vec()));
        assert_eq!(t.resolve("autoscale-go"), Some(argv.to_vec()));
        assert!(t.resolve("ghcr.io/knative/autoscale-go-v2:latest").is_none());
        assert!(t.resolve("ghcr.io/autoscale-go/other:latest").is_none(), "only the last segment names it");
        let t = t.with_sample_test_endpoints();
        assert_eq!(
            t.resolve("ghcr.io/knative/autoscale-go:latest"),
            Some(["/bin/sluice", "sample", "autoscale", "--test-endpoints"].map(OsString::from).to_vec())
        );
        assert_eq!(
            t.resolve("ghcr.io/knative/helloworld-go:latest"),
            Some(["/bin/sluice", "sample", "hello", "--test-endpoints"].map(OsString::from).to_vec())
        );
    }

    #[test]
    fn a_file_extends_the_table_most_specific_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("images.yaml");
        std::fs::write(
            &file,
            "images:\n  ghcr.io/acme/shop:v2: [/opt/shop-v2]\n  shop: [/opt/shop, --serve]\n  helloworld-go: [/opt/hello]\n",
        )
        .expect("write");
        let mut t = ImageTable::builtin(Path::new("/bin/sluice"));
        t.merge_file(&file).expect("valid table");
        assert_eq!(t.resolve("ghcr.io/acme/shop:v2"), Some(vec!["/opt/shop-v2".into()]));
        assert_eq!(t.resolve("ghcr.io/acme/shop:v3"), Some(vec!["/opt/shop".into(), "--serve".into()]));
        assert_eq!(
            t.resolve("x/helloworld-go"),
            Some(vec!["/opt/hello".into()]),
            "a file entry wins over the built-in"
        );
    }

    #[test]
    fn a_bad_file_names_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("images.yaml");
        std::fs::write(&file, "images:\n  shop: []\n").expect("write");
        let err = ImageTable::builtin(Path::new("s")).merge_file(&file).expect_err("empty command");
        assert!(err.to_string().contains("images.shop"), "{err}");
        std::fs::write(&file, "imagez: {}\n").expect("write");
        let err = ImageTable::builtin(Path::new("s")).merge_file(&file).expect_err("unknown key");
        assert!(err.to_string().contains("imagez"), "{err}");
        let err = ImageTable::builtin(Path::new("s")).merge_file(&dir.path().join("none.yaml")).expect_err("missing");
        assert!(err.to_string().contains("none.yaml"), "{err}");
    }
}
