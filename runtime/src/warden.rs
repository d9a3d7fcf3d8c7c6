//! The warden: a small process beside `sluice serve` that stops instances' process groups when
//! `serve` dies without stopping them (`kill -9`, a crash, the OOM killer).
//!
//! The kernel already kills each instance's first process when `serve` dies (the
//! `instance-exec` trampoline asks for a parent-death signal), but not what that process
//! started: a shell's background job, a worker pool. Those live on in the instance's process
//! group. The warden holds the read end of a pipe whose only write end is `serve`'s; `serve`
//! writes `+PGID` when an instance starts and `-PGID` once its group is gone. When the pipe
//! reports end of file, `serve` is gone, and the warden kills every group still listed.
//!
//! The warden runs in a process group of its own, so a terminal's Ctrl-C (which `serve`
//! handles by stopping instances itself) does not reach it; it exits right after the pipe
//! closes, with nothing left to do when `serve` stopped cleanly.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;

/// The longest line the warden reads (`+` or `-`, a pid, a newline, with room to spare).
const MAX_LINE: usize = 32;
/// The most groups the warden keeps track of; beyond this, new ones are ignored (and the
/// sweep of the next `serve` start still finds them).
const MAX_GROUPS: usize = 1 << 16;

/// `serve`'s end of the warden: tells it which process groups to stop if `serve` dies.
#[derive(Debug)]
pub struct Warden {
    pipe: Mutex<ChildStdin>,
    child: Mutex<Child>,
}

/// The warden could not be started.
#[derive(Debug, thiserror::Error)]
#[error("starting the instance warden {program:?}: {source}")]
pub struct WardenError {
    program: OsString,
    source: std::io::Error,
}

// === impl Warden ===

impl Warden {
    /// Starts `command` (program and arguments, e.g. `sluice instance-warden`) as the warden.
    pub fn start(command: &[OsString]) -> Result<Self, WardenError> {
        let Some((program, args)) = command.split_first() else {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no warden command");
            return Err(WardenError { program: OsString::new(), source });
        };
        let fail = |source| WardenError { program: program.clone(), source };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(fail)?;
        let pipe = child.stdin.take().ok_or_else(|| fail(std::io::Error::other("no pipe to the warden")))?;
        Ok(Self { pipe: Mutex::new(pipe), child: Mutex::new(child) })
    }

    /// From now on, the group led by `pgid` is stopped if `serve` dies.
    pub fn watch(&self, pgid: u32) {
        self.send('+', pgid);
    }

    /// The group led by `pgid` is gone (or stopped by `serve` itself); forget it.
    pub fn release(&self, pgid: u32) {
        self.send('-', pgid);
    }

    fn send(&self, op: char, pgid: u32) {
        // A few bytes into a pipe the warden keeps draining: this does not block in practice.
        if let Err(e) = writeln!(self.pipe.lock(), "{op}{pgid}") {
            tracing::warn!(error = %e, "the instance warden is gone; instances may outlive a killed sluice serve");
        }
    }

    /// The warden's process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().id()
    }
}

/// The warden's side: reads `+PGID` / `-PGID` lines from `input` until end of file, then kills
/// every group still listed with SIGKILL. Returns how many groups it signalled.
pub fn keep_watch(mut input: impl Read) -> usize {
    let mut groups = BTreeSet::new();
    let mut line = Vec::with_capacity(MAX_LINE);
    // A line longer than MAX_LINE is garbage: skipped up to its newline, never buffered whole.
    let mut overlong = false;
    let mut chunk = [0u8; 512];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                if !std::mem::take(&mut overlong) {
                    apply(&mut groups, &line);
                }
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            } else {
                overlong = true;
            }
        }
    }
    if !overlong {
        apply(&mut groups, &line);
    }
    groups.into_iter().filter(|pgid| killpg(Pid::from_raw(*pgid), Signal::SIGKILL).is_ok()).count()
}

/// Applies one line of the protocol to the set of groups.
fn apply(groups: &mut BTreeSet<i32>, line: &[u8]) {
    let Ok(text) = std::str::from_utf8(line) else { return };
    let text = text.trim_end();
    let (op, pid) = text.split_at(text.len().min(1));
    // Only a positive pid names a group: killpg(0) and negatives mean something else.
    let Some(pgid) = pid.parse::<i32>().ok().filter(|p| *p > 1) else { return };
    match op {
        "+" if groups.len() < MAX_GROUPS => {
            groups.insert(pgid);
        }
        "-" => {
            groups.remove(&pgid);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_adds_removes_and_ignores_garbage() {
        let mut groups = BTreeSet::new();
        for line in ["+100\n", "+200\n", "-100\n", "+0\n", "+1\n", "+-5\n", "*300\n", "+abc\n", "+\n", "\n", "+400"] {
            apply(&mut groups, line.as_bytes());
        }
        assert_eq!(groups, BTreeSet::from([200, 400]));
    }

    #[test]
    fn at_end_of_input_the_listed_groups_are_killed() {
        // A real group: `sh` leading its own group, with a child of its own.
        let mut leader =
            Command::new("sh").args(["-c", "sleep 300 & wait"]).process_group(0).spawn().expect("spawn sh");
        let pgid = leader.id();
        let input = format!("+{pgid}\n+999999\n-999999\n{}\n", "x".repeat(1000));
        assert_eq!(keep_watch(input.as_bytes()), 1);
        let status = leader.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
}
