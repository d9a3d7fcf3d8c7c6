//! `sluice serve --access-log FILE|-`: opens where the router's access log goes and starts the
//! task that writes it (see `sluice_router::access_log` for the line and its fields).

use std::path::Path;

use anyhow::Context;
use sluice_router::access_log::{AccessLog, Writer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The access log and its writer task, once started.
pub struct Started {
    /// The handle the router writes lines through.
    pub log: AccessLog,
    /// The writer; it ends once `stop` is cancelled, after writing what is queued.
    pub task: JoinHandle<()>,
}

/// Opens `dest` (`-` for stdout; a file is appended to and created if need be) and starts its
/// writer, which stops when `stop` is cancelled.
pub async fn start(dest: &Path, stop: CancellationToken) -> anyhow::Result<Started> {
    let (log, writer): (AccessLog, Writer) = if dest == Path::new("-") {
        AccessLog::new(tokio::io::stdout())
    } else {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dest)
            .await
            .with_context(|| format!("opening the access log {}", dest.display()))?;
        AccessLog::new(tokio::io::BufWriter::new(file))
    };
    Ok(Started { log, task: tokio::spawn(writer.run(stop)) })
}
