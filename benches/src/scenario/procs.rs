//! Processes a scenario starts: each in its own process group, stopped (SIGTERM, then SIGKILL
//! of the group) when dropped, so no early return or panic leaves one behind; plus the small
//! blocking HTTP probe used to wait for them with a deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::ScenarioError;

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(20);
/// How long a stopped process gets to exit before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A child process owned by a scenario.
pub struct Owned {
    name: String,
    child: Option<Child>,
}

// === impl Owned ===

impl Owned {
    /// Starts `cmd` in a process group of its own, stdout and stdin null, stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &std::path::Path) -> Result<Self, ScenarioError> {
        let err = |reason: String| ScenarioError::Start { what: name.to_string(), reason };
        let stderr = std::fs::File::create(log).map_err(|e| err(format!("{}: {e}", log.display())))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| err(format!("{:?}: {e}", cmd.get_program())))?;
        Ok(Self { name: name.to_string(), child: Some(child) })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Fails when it has exited (with the status), so waits do not run out their deadline.
    pub fn check_running(&mut self) -> Result<(), ScenarioError> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => {
                Err(ScenarioError::Start { what: self.name.clone(), reason: format!("exited early ({status})") })
            }
            _ => Err(ScenarioError::Start { what: self.name.clone(), reason: "is not running".into() }),
        }
    }

    /// Polls `ready` until it returns Some, failing after `deadline` or when the process exits.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        deadline: Duration,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Result<T, ScenarioError> {
        let start = Instant::now();
        loop {
            if let Some(v) = ready() {
                return Ok(v);
            }
            self.check_running()?;
            if start.elapsed() > deadline {
                return Err(ScenarioError::Timeout { what: format!("{} {what}", self.name), after: deadline });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let Ok(raw) = i32::try_from(child.id()) else { return };
        let pid = Pid::from_raw(raw);
        let _ = kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(POLL);
        }
        // Whatever it started and left behind goes with its group.
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A free loopback port (bound and released; the caller binds it next).
pub fn free_port() -> Result<u16, ScenarioError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| ScenarioError::Io(format!("no free port: {e}")))?;
    l.local_addr().map(|a| a.port()).map_err(|e| ScenarioError::Io(e.to_string()))
}

/// One `GET path` with `Host: host` over a fresh connection: (status, body); None on any
/// failure (for readiness polls).
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
