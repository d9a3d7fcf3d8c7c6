//! A `sluice serve` child process: started in its own process group on port 0, read back from
//! the `endpoints.json` it writes, polled until ready, and killed with its whole group on drop.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;

/// How long a server gets to come up.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Options for [`Sluice::start_with`].
#[derive(Clone, Debug, Default)]
pub struct SluiceOptions {
    /// Reuse this state directory (for restarts); a fresh temporary one when None.
    pub state_dir: Option<PathBuf>,
    /// Extra arguments after `serve`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The CA that issued the API server's certificate, for a server started with
    /// `--tls-cert`; default `<state_dir>/tls/ca.crt`, the local CA.
    pub ca: Option<PathBuf>,
}

/// A running `sluice serve`.
pub struct Sluice {
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// `http://127.0.0.1:PORT` of the API server (what its own controller uses: `https://`
    /// when it listens on one address beyond loopback).
    pub api: String,
    /// `https://HOST:PORT` of the API server, what the CLI and kubectl use.
    pub api_https: String,
    /// `127.0.0.1:PORT` of the router, when it reports one.
    pub http: Option<String>,
    /// `127.0.0.1:PORT` of the router's HTTPS listener, when `--https` was given.
    pub https: Option<String>,
    /// `127.0.0.1:PORT` of `/metrics`, unless `--metrics off` was given.
    pub metrics: Option<String>,
    /// Where the server's stderr goes.
    pub log: PathBuf,
    /// The API server's bearer token, read from `<state_dir>/token`.
    token: String,
    /// The CA clients trust, when not the local CA.
    ca: Option<PathBuf>,
}

/// Polls `f` every 20 ms until it returns Some, or fails after `deadline` with `what`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// === impl Sluice ===

impl Sluice {
    /// Starts `binary serve` with a fresh state directory and ports from the OS.
    pub fn start(binary: &str) -> anyhow::Result<Self> {
        Self::start_with(binary, SluiceOptions::default())
    }

    /// Starts `binary serve --no-controllers`: the API server alone, for tests of API
    /// semantics that must not see the controllers' writes.
    pub fn start_api_only(binary: &str) -> anyhow::Result<Self> {
        Self::start_with(binary, SluiceOptions { args: vec!["--no-controllers".into()], ..Default::default() })
    }

    /// Starts `binary serve` with `opts`.
    pub fn start_with(binary: &str, opts: SluiceOptions) -> anyhow::Result<Self> {
        let (tmp, state_dir) = match opts.state_dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::Builder::new().prefix("sluice-test-").tempdir()?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        std::fs::create_dir_all(&state_dir)?;
        let endpoints = state_dir.join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        let log = state_dir.join(format!("serve-{}.log", unique()));
        let stderr = std::fs::File::create(&log)?;
        let mut cmd = Command::new(binary);
        cmd.arg("serve").arg("--state-dir").arg(&state_dir);
        // Ports from the OS, unless the caller names its own (a restart on the same ports).
        // `--metrics` too, so concurrent tests never contend for its default port.
        for flag in ["--api", "--http", "--metrics"] {
            if !opts.args.iter().any(|a| a == flag) {
                cmd.args([flag, "127.0.0.1:0"]);
            }
        }
        // The sample apps' test endpoints (`/env`, `/crash`), which tests use; a test that
        // checks they are off by default sets this to "false" in its `env`.
        cmd.env("SLUICE_SAMPLE_TEST_ENDPOINTS", "true");
        cmd.args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().with_context(|| format!("spawning {binary}"))?;
        let mut me = Self {
            child: Some(child),
            _tmp: tmp,
            state_dir,
            api: String::new(),
            api_https: String::new(),
            http: None,
            https: None,
            metrics: None,
            log,
            token: String::new(),
            ca: opts.ca,
        };
        let ep: Value = wait_for("endpoints.json", START_DEADLINE, || {
            if me.exited() {
                return Some(Value::Null);
            }
            std::fs::read(&endpoints).ok().and_then(|b| serde_json::from_slice(&b).ok())
        })?;
        if ep.is_null() {
            bail!("sluice serve exited during startup:\n{}", me.log_text());
        }
        me.api = ep["api"].as_str().ok_or_else(|| anyhow!("endpoints.json has no api"))?.to_string();
        me.api_https = ep["api_https"].as_str().ok_or_else(|| anyhow!("endpoints.json has no api_https"))?.to_string();
        me.http = ep["http"].as_str().map(str::to_string);
        me.https = ep["https"].as_str().map(str::to_string);
        me.metrics = ep["metrics"].as_str().map(str::to_string);
        // Written before endpoints.json, so it is there now.
        let token_file = me.state_dir.join("token");
        me.token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading {}", token_file.display()))?
            .trim()
            .to_string();
        // As its own controller reaches it: plain HTTP over loopback, else https.
        let ready = format!("{}/readyz", me.api);
        let ca = me.ca_file();
        wait_for("the API server to answer /readyz", START_DEADLINE, || {
            let ok = if ready.starts_with("https://") {
                crate::http::blocking_get_ok_tls(&ready, &ca)
            } else {
                crate::http::blocking_get_ok(&ready)
            };
            ok.then_some(())
        })?;
        Ok(me)
    }

    /// The API server's bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// An HTTP client that sends this server's token with every request.
    pub fn client(&self) -> crate::http::Client {
        crate::http::Client::with_token(&self.token)
    }

    /// A kube-rs client of this server's API over https, the server's name verified against
    /// the local CA, with its token (what the kubeconfig says; `tests/api_tls.rs` reads that).
    pub fn kube_client(&self) -> anyhow::Result<kube::Client> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut config = kube::Config::new(self.api_https.parse()?);
        let roots = CertificateDer::pem_file_iter(self.ca_file())?.collect::<Result<Vec<_>, _>>()?;
        config.root_cert = Some(roots.iter().map(|c| c.to_vec()).collect());
        config.auth_info.token = Some(self.token.clone().into());
        Ok(kube::Client::try_from(config)?)
    }

    /// The CA that issued the API server's certificate: the local CA's, or
    /// [`SluiceOptions::ca`].
    pub fn ca_file(&self) -> PathBuf {
        self.ca.clone().unwrap_or_else(|| self.state_dir.join("tls").join("ca.crt"))
    }

    /// `binary` (the `sluice` CLI) set up to talk to this server over https: `SLUICE_API`,
    /// `SLUICE_TOKEN` and `SLUICE_CERTIFICATE_AUTHORITY` in its environment, and no state
    /// directory of the user's to fall back on.
    pub fn command(&self, binary: &str) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env("SLUICE_API", &self.api_https)
            .env("SLUICE_TOKEN", &self.token)
            .env("SLUICE_CERTIFICATE_AUTHORITY", self.ca_file())
            .env_remove("SLUICE_STATE_DIR");
        cmd
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
    }

    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pgid(&self) -> Option<Pid> {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()).map(Pid::from_raw)
    }

    fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9` the server alone (not its process group), as a crash would; then reap it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            child.kill()?;
            child.wait()?;
        }
        self.child = None;
        Ok(())
    }

    /// SIGTERM, then wait up to `deadline` for a clean exit.
    pub fn terminate(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let child = self.child.as_mut().ok_or_else(|| anyhow!("not running"))?;
        let pid = Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, Signal::SIGTERM)?;
        let status = wait_for("sluice to exit after SIGTERM", deadline, || child.try_wait().ok().flatten())?;
        self.child = None;
        Ok(status)
    }

    /// Keeps the state directory after the server stops (to restart on it).
    pub fn keep_state_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        // The whole group: the server and anything it started.
        if let Some(pgid) = self.pgid() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Async [`wait_for`]: polls `f` every 20 ms on the runtime's clock until it returns Some.
pub async fn eventually<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for an async check (an API call, a request): polls `f` every 25 ms until it
/// returns Some.
pub async fn until<T>(what: &str, deadline: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> anyhow::Result<T> {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
