//! `sluice logs`: a revision's log file as it is, or a service's latest ready revision's with a
//! prefix on every line, once or following it as it grows.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ApiArgs;
use super::client;

/// A line longer than this is printed in pieces, each prefixed, so memory stays bounded.
const MAX_LINE: usize = 64 * 1024;
/// How often `--follow` looks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// `sluice logs NAME`: a revision's log file (named by its status `logUrl`), or, for a
/// service, its latest ready revision's with each line prefixed by `[revision]`.
pub async fn run(api: &ApiArgs, name: &str, ns: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let client = client::client(api)?;
    let revs: Api<sluice_api::Revision> = Api::namespaced(client.clone(), ns);
    let (revision, prefix) = match revs.get_opt(name).await.map_err(|e| anyhow!(client::explain(e)))? {
        Some(rev) => (rev, None),
        None => {
            let services: Api<sluice_api::Service> = Api::namespaced(client, ns);
            let svc = services
                .get_opt(name)
                .await
                .map_err(|e| anyhow!(client::explain(e)))?
                .ok_or_else(|| anyhow!("no revision or service named {name:?} in namespace {ns:?}"))?;
            let latest = svc.status.as_ref().and_then(|s| s.latest_ready_revision_name.clone()).ok_or_else(|| {
                anyhow!("service {name:?} has no ready revision yet (see `sluice service describe {name}`)")
            })?;
            let rev = revs.get(&latest).await.map_err(|e| anyhow!(client::explain(e)))?;
            (rev, Some(format!("[{latest}] ")))
        }
    };
    let rev_name = revision.metadata.name.clone().unwrap_or_default();
    let url = revision
        .status
        .as_ref()
        .and_then(|s| s.log_url.clone())
        .ok_or_else(|| anyhow!("revision {rev_name:?} has no log yet"))?;
    let path =
        url.strip_prefix("file://").ok_or_else(|| anyhow!("the log of {rev_name:?} is not a local file: {url}"))?;
    copy(std::path::Path::new(path), prefix.as_deref(), follow).await?;
    Ok(ExitCode::SUCCESS)
}

/// Copies `path` to stdout, each line after `prefix` when one is given; with `follow`, keeps
/// copying what is appended until interrupted.
pub async fn copy(path: &Path, prefix: Option<&str>, follow: bool) -> anyhow::Result<()> {
    let mut file = tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
    let mut out = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = Prefixer { prefix: prefix.map(str::as_bytes), partial: Vec::new() };
    loop {
        let n = file.read(&mut buf).await?;
        if n > 0 {
            out.write_all(&lines.push(&buf[..n])).await?;
            continue;
        }
        if !follow {
            out.write_all(&lines.finish()).await?;
            out.flush().await?;
            return Ok(());
        }
        out.flush().await?;
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// Puts a prefix before each complete line, holding back a partial one (bounded).
struct Prefixer<'p> {
    prefix: Option<&'p [u8]>,
    partial: Vec<u8>,
}

// === impl Prefixer ===

impl Prefixer<'_> {
    /// The complete lines of what has come so far, prefixed.
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let Some(prefix) = self.prefix else {
            return bytes.to_vec();
        };
        let mut out = Vec::with_capacity(bytes.len() + prefix.len());
        for &b in bytes {
            self.partial.push(b);
            if b == b'\n' || self.partial.len() >= MAX_LINE {
                out.extend_from_slice(prefix);
                out.append(&mut self.partial);
            }
        }
        out
    }

    /// The last line when it has no newline.
    fn finish(&mut self) -> Vec<u8> {
        match self.prefix {
            Some(prefix) if !self.partial.is_empty() => {
                let mut out = prefix.to_vec();
                out.append(&mut self.partial);
                out.push(b'\n');
                out
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_the_prefix_even_when_split_across_reads() {
        let mut p = Prefixer { prefix: Some(b"[r] "), partial: Vec::new() };
        let mut out = p.push(b"one\ntw");
        out.extend(p.push(b"o\nthree"));
        out.extend(p.finish());
        assert_eq!(String::from_utf8_lossy(&out), "[r] one\n[r] two\n[r] three\n");
    }

    #[test]
    fn without_a_prefix_bytes_pass_unchanged() {
        let mut p = Prefixer { prefix: None, partial: Vec::new() };
        assert_eq!(p.push(b"a\nb"), b"a\nb");
        assert!(p.finish().is_empty());
    }
}
