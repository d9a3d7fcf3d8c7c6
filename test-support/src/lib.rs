//! Test helpers shared by Sluice's tests: start the real `sluice serve` on ports the OS picks,
//! wait for it with a deadline (never a fixed sleep), talk HTTP to it (and raw HTTP/1.1 or h2c
//! where the wire matters), read its logs, make sure no process outlives the test; and the one
//! list of Knative's sample manifests.

pub mod http;
pub mod logs;
mod process;
pub mod samples;
pub mod traffic;
pub mod wire;

pub use process::{Sluice, SluiceOptions, eventually, until, wait_for};

/// The kubectl binary, when this machine has one; tests that need it print why they skip.
pub fn kubectl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("kubectl")).find(|p| p.is_file())
}

/// An address of this machine other than loopback (the source address of its default route),
/// for tests of what Sluice does when it listens beyond loopback; Err says why there is none.
pub fn non_loopback_address() -> Result<std::net::IpAddr, String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("no UDP socket: {e}"))?;
    // Connecting a UDP socket sends nothing; it only picks the route and so the source address.
    socket.connect("198.51.100.1:9").map_err(|e| format!("no route beyond this machine: {e}"))?;
    let ip = socket.local_addr().map_err(|e| e.to_string())?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(format!("the default route's source address is {ip}"));
    }
    Ok(ip)
}

/// Applies YAML to `sluice` with the real `sluice apply -f -` (the CLI under test, given the
/// server's address and token), failing with its output.
pub fn apply(binary: &str, sluice: &Sluice, yaml: &str) -> anyhow::Result<String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = sluice
        .command(binary)
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?.write_all(yaml.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        anyhow::bail!("sluice apply failed: {text}");
    }
    Ok(text)
}

/// A Knative sample from `manifests/samples/knative`, with the blue-green placeholders filled.
pub fn sample(repo_root: &str, file: &str, route: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(std::path::Path::new(repo_root).join("manifests/samples/knative").join(file))?;
    Ok(text
        .replace("<route-name>", route)
        .replace("<first-revision-name>", &format!("{route}-00001"))
        .replace("<second-revision-name>", &format!("{route}-00002")))
}
