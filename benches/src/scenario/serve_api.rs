//! What the scale scenarios ask of a running `sluice serve` besides load: its API address,
//! manifests applied through `sluice apply` (the real API path, timed by the caller), the
//! router's `/metrics` read over HTTP, and the process's resident memory from `/proc`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::ScenarioError;

/// The API address `sluice serve` wrote to `state/endpoints.json`.
pub fn api_address(state: &Path) -> Result<String, ScenarioError> {
    let path = state.join("endpoints.json");
    let v: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ScenarioError::Io(format!("{} unreadable", path.display())))?;
    v["api"].as_str().map(str::to_string).ok_or_else(|| ScenarioError::Io(format!("{}: no \"api\"", path.display())))
}

/// `sluice apply -f manifest` against `api`; fails with its stderr.
pub fn apply(sluice: &Path, api: &str, state: &Path, manifest: &Path) -> Result<(), ScenarioError> {
    let out = Command::new(sluice)
        .args(["apply", "--api", api])
        .arg("--state-dir")
        .arg(state)
        .arg("-f")
        .arg(manifest)
        .output()
        .map_err(|e| ScenarioError::Start { what: "sluice apply".into(), reason: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let reason = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(ScenarioError::Start { what: format!("sluice apply -f {}", manifest.display()), reason })
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) -> Result<(), ScenarioError> {
    std::fs::write(path, text).map_err(|e| ScenarioError::Io(format!("{}: {e}", path.display())))
}

/// Resident memory of `pid` now (`VmRSS` of `/proc/PID/status`), in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, ScenarioError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| ScenarioError::Io(format!("{path}: {e}")))?;
    parse_rss(&text).ok_or_else(|| ScenarioError::Io(format!("{path}: no VmRSS line")))
}

/// The `VmRSS:   1234 kB` line of a `/proc/PID/status` text, in bytes.
pub fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// `GET /metrics` from `addr`: the body; None on any failure (for polls).
pub fn scrape(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Routes whose default split the router has programmed: distinct `route_name`s of the
/// `route_traffic_percent` series in a `/metrics` text.
pub fn programmed_routes(metrics: &str) -> usize {
    let mut names: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("route_traffic_percent{"))
        .filter_map(|l| l.split("route_name=\"").nth(1)?.split('"').next())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_the_status_text() {
        let status = "Name:\tsluice\nVmPeak:\t  99 kB\nVmRSS:\t   20480 kB\nVmData:\t 1 kB\n";
        assert_eq!(parse_rss(status), Some(20 * 1024 * 1024));
        assert_eq!(parse_rss("Name:\tx\n"), None);
    }

    #[test]
    fn programmed_routes_count_each_route_once() {
        let text = "# HELP route_traffic_percent x\n\
            route_traffic_percent{namespace_name=\"default\",route_name=\"a\",revision_name=\"a-1\"} 90\n\
            route_traffic_percent{namespace_name=\"default\",route_name=\"a\",revision_name=\"a-2\"} 10\n\
            route_traffic_percent{namespace_name=\"default\",route_name=\"b\",revision_name=\"b-1\"} 100\n\
            revision_request_count{route_name=\"c\"} 1\n";
        assert_eq!(programmed_routes(text), 2);
    }
}
