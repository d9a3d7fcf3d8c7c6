//! The processes of the `steady` scenario that are Sluice's: the hello sample app started
//! directly (the backend every path ends at), and `sluice serve` with Knative's
//! helloworld-go sample applied, waited for until it answers through the router.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::ScenarioError;
use super::procs::{Owned, free_port, get};
use crate::pin::Layout;

/// How long `sluice serve` and the sample get to come up.
const READY: Duration = Duration::from_secs(60);
/// The Host of the sample service under serve's default domain.
pub const HELLO_HOST: &str = "helloworld-go.default.localhost";
/// What the sample answers.
pub const HELLO_ANSWER: &str = "Hello Go Sample v1!\n";
/// Knative's helloworld-go sample (manifests/samples/knative/helloworld-go.service.yaml).
const HELLO_YAML: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: helloworld-go
  namespace: default
spec:
  template:
    spec:
      containers:
      - image: docker.io/{username}/helloworld-go
        env:
        - name: TARGET
          value: \"Go Sample v1\"
";

/// A running process listening on an address.
pub struct Listening {
    /// The process.
    pub process: Owned,
    /// Where it serves.
    pub addr: SocketAddr,
}

/// Starts `sluice sample hello` on a free port (role `backend`) and waits for its answer.
pub fn start_backend(sluice: &Path, dir: &Path, layout: &Layout) -> Result<Listening, ScenarioError> {
    let port = free_port()?;
    let mut cmd = layout.command("backend", sluice);
    cmd.args(["sample", "hello"]).env("PORT", port.to_string()).env("TARGET", "Go Sample v1");
    let mut process = Owned::spawn("the hello backend", cmd, &dir.join("backend.log"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    process
        .wait_for("to answer", READY, || get(addr, "localhost", "/").filter(|(s, b)| *s == 200 && b == HELLO_ANSWER))?;
    Ok(Listening { process, addr })
}

/// Starts `sluice serve` (role `sluice`; the instances it starts inherit its cores) on free
/// ports in `dir`, applies the helloworld-go sample, and waits until the router answers.
pub fn start_serve(sluice: &Path, dir: &Path, layout: &Layout) -> Result<Listening, ScenarioError> {
    start_serve_with(sluice, dir, layout, "off", None)
}

/// [`start_serve`] with `/metrics` on `metrics` (`off`, or an address such as `127.0.0.1:0`;
/// endpoints.json says where it bound), and `--router-threads` when given (serve's default, one
/// per core, otherwise).
pub fn start_serve_with(
    sluice: &Path,
    dir: &Path,
    layout: &Layout,
    metrics: &str,
    router_threads: Option<usize>,
) -> Result<Listening, ScenarioError> {
    let state = dir.join("state");
    let mut cmd = layout.command("sluice", sluice);
    cmd.arg("serve").arg("--state-dir").arg(&state);
    cmd.args(["--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--metrics", metrics]);
    if let Some(n) = router_threads {
        cmd.arg("--router-threads").arg(n.to_string());
    }
    let mut process = Owned::spawn("sluice serve", cmd, &dir.join("serve.log"))?;
    let endpoints = state.join("endpoints.json");
    let (api, http) = process.wait_for("to write endpoints.json", READY, || {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&endpoints).ok()?).ok()?;
        Some((v["api"].as_str()?.to_string(), v["http"].as_str()?.parse::<SocketAddr>().ok()?))
    })?;
    let manifest = dir.join("helloworld-go.yaml");
    std::fs::write(&manifest, HELLO_YAML).map_err(|e| ScenarioError::Io(format!("{}: {e}", manifest.display())))?;
    let applied = process.wait_for("to accept the sample", READY, || {
        let out = Command::new(sluice)
            .arg("apply")
            .args(["--api", &api])
            .arg("--state-dir")
            .arg(&state)
            .arg("-f")
            .arg(&manifest)
            .output()
            .ok()?;
        out.status.success().then_some(())
    });
    applied?;
    process.wait_for("to answer through the router", READY, || {
        get(http, HELLO_HOST, "/").filter(|(s, b)| *s == 200 && b == HELLO_ANSWER)
    })?;
    Ok(Listening { process, addr: http })
}
