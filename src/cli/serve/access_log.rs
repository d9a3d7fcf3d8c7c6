//! `sluice serve --access-log FILE|-`: opens where the router's access log goes and starts the
//! thread that writes it (see `sluice_router::access_log` for the line and its fields).

use std::path::Path;

use anyhow::Context;
use sluice_router::access_log::AccessLog;
use tokio_util::sync::CancellationToken;

/// The access log and its writer thread, once started.
pub struct Started {
    /// The handle the router writes lines through.
    pub log: AccessLog,
    /// The writer; it ends once `stop` is cancelled, after writing what is queued.
    pub thread: std::thread::JoinHandle<()>,
}

/// Opens `dest` (`-` for stdout; a file is appended to and created if need be) and starts its
/// writer, which stops when `stop` is cancelled.
pub fn start(dest: &Path, stop: CancellationToken) -> anyhow::Result<Started> {
    let (log, writer) = if dest == Path::new("-") {
        AccessLog::new(std::io::stdout())
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dest)
            .with_context(|| format!("opening the access log {}", dest.display()))?;
        AccessLog::new(file)
    };
    let thread = std::thread::Builder::new()
        .name("sluice-access-log".into())
        .spawn(move || writer.run(&stop))
        .context("starting the access log's writer")?;
    Ok(Started { log, thread })
}
