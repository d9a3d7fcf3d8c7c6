//! Instance processes: the argv and environment a container gets, starting one in its own process
//! group with output appended to the revision's log, stopping its whole group, the
//! `instance-exec` trampoline that ties an instance's life to `sluice serve`, and the sweep that
//! removes instances an earlier, killed `sluice serve` left behind.

use std::ffi::{CString, OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use sluice_api::podspec::Container;
use tokio::process::{Child, Command};

use super::RevisionRun;
use super::env::{ConfigError, EnvValue};

/// Environment variable naming the state directory of the `sluice serve` that owns an instance.
pub const STATE_DIR_ENV: &str = "SLUICE_STATE_DIR";
/// Environment variable naming an instance (`namespace/revision#id`).
pub const INSTANCE_ENV: &str = "SLUICE_INSTANCE";

/// Host variables an instance inherits; everything else comes from the container.
const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "LOGNAME"];

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The container names an image the local image table does not know.
    #[error(
        "image {0:?} is not in the local image table: give the container a `command`, or map the image in images.yaml (`sluice serve --images`, reloaded when it changes)"
    )]
    ImageNotFound(String),
    /// The container's environment cannot be made from its ConfigMaps and Secrets.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The log file could not be opened.
    #[error("opening log file {path}: {source}")]
    Log {
        /// The log file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The launcher could not be started.
    #[error("starting {program:?}: {source}")]
    Spawn {
        /// The program.
        program: OsString,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why `instance-exec` could not become the instance.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `sluice serve` was already gone.
    #[error("parent process {0} is gone")]
    ParentGone(u32),
    /// The argv holds a NUL byte.
    #[error("argument {0:?} contains a NUL byte")]
    Nul(OsString),
    /// No argv.
    #[error("no command given")]
    Empty,
    /// A system call failed.
    #[error("{call}: {errno}")]
    Sys {
        /// Which call.
        call: &'static str,
        /// The error.
        errno: nix::Error,
    },
}

// === impl ExecError ===

impl ExecError {
    /// The exit code a shell would use: 127 for a program not found, 126 for one that cannot
    /// run, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Sys { errno: nix::errno::Errno::ENOENT, .. } => 127,
            Self::Sys { .. } => 126,
            _ => 1,
        }
    }
}

/// Expands `$(VAR)` references the way Kubernetes does: defined names are replaced, `$$` is a
/// literal `$`, and anything else is left as written.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The environment of `container` (the serving container or a sidecar) in an instance of
/// `run`, with the container's variables `vars` (see [`super::env::resolve`]), in order (later
/// entries win). The serving container listens on `port` (`PORT`); a sidecar gets `None` and
/// keeps a `PORT` of its own, as in Knative, which sets `PORT` on the serving container only
/// and the `K_*` variables on every container.
pub fn environment(
    run: &RevisionRun,
    vars: &[(String, EnvValue)],
    port: Option<u16>,
    state_dir: &Path,
    instance: &str,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> =
        INHERITED.iter().filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v))).collect();
    let set = |env: &mut Vec<(OsString, OsString)>, k: &str, v: OsString| {
        env.retain(|(key, _)| key != k);
        env.push((k.into(), v));
    };
    for (name, value) in vars {
        let value = match value {
            EnvValue::Literal(text) => expand(text, |name| {
                env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.to_string_lossy().into_owned())
            })
            .into(),
            EnvValue::Exact(value) => value.clone(),
        };
        set(&mut env, name, value);
    }
    if let Some(port) = port {
        set(&mut env, "PORT", port.to_string().into());
    }
    set(&mut env, "K_REVISION", run.key.name.clone().into());
    set(&mut env, "K_CONFIGURATION", run.configuration.clone().into());
    set(&mut env, "K_SERVICE", run.service.clone().into());
    set(&mut env, STATE_DIR_ENV, state_dir.as_os_str().to_owned());
    set(&mut env, INSTANCE_ENV, instance.into());
    env
}

/// The argv of `container`: its `command` and `args` with `$(VAR)` expanded, or the image
/// table's command for its image (expanded too, so an entry can say `$(PORT)`) followed by its
/// `args`.
pub fn argv(
    container: &Container,
    env: &[(OsString, OsString)],
    resolve: impl Fn(&str) -> Option<Vec<OsString>>,
) -> Result<Vec<OsString>, StartError> {
    let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.to_string_lossy().into_owned());
    let args = container.args.iter().map(|a| OsString::from(expand(a, lookup)));
    if container.command.is_empty() {
        let image = resolve(&container.image).ok_or_else(|| StartError::ImageNotFound(container.image.clone()))?;
        let mut argv: Vec<OsString> = image
            .into_iter()
            .map(|a| match a.to_str() {
                Some(text) => OsString::from(expand(text, lookup)),
                None => a,
            })
            .collect();
        argv.extend(args);
        return Ok(argv);
    }
    Ok(container.command.iter().map(|c| OsString::from(expand(c, lookup))).chain(args).collect())
}

/// A port on loopback that nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Appends a `[sluice]` line to a revision's log.
pub fn log_marker(log: &Path, line: &str) {
    let open = std::fs::OpenOptions::new().create(true).append(true).open(log);
    if let Ok(mut f) = open {
        // One write of the whole line: `writeln!` on a file writes each formatted piece on its
        // own, and the instances appending to the same log could land between them.
        let text = format!("[sluice] {} {line}\n", jiff::Timestamp::now());
        let _ = f.write_all(text.as_bytes());
    }
}

/// Starts `argv` through `launcher` in a new process group, with exactly `env`, output appended
/// to `log`. Must run on a thread that lives as long as the runtime (a tokio worker, not a
/// blocking-pool thread): the instance's parent-death signal follows the thread that forked it.
pub fn spawn(
    launcher: &[OsString],
    argv: &[OsString],
    env: &[(OsString, OsString)],
    working_dir: Option<&str>,
    log: &Path,
) -> Result<Child, StartError> {
    let open = || std::fs::OpenOptions::new().create(true).append(true).open(log);
    let log_err = |source| StartError::Log { path: log.display().to_string(), source };
    let stdout = open().map_err(log_err)?;
    let stderr = stdout.try_clone().map_err(log_err)?;
    let (mut cmd, program) = command(launcher, argv, env, working_dir);
    cmd.stdout(stdout).stderr(stderr);
    cmd.spawn().map_err(|source| StartError::Spawn { program, source })
}

/// As [`spawn`], with stdout and stderr piped to the caller (a sidecar's output is copied into
/// the revision's log line by line, prefixed with its name).
pub fn spawn_piped(
    launcher: &[OsString],
    argv: &[OsString],
    env: &[(OsString, OsString)],
    working_dir: Option<&str>,
) -> Result<Child, StartError> {
    let (mut cmd, program) = command(launcher, argv, env, working_dir);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().map_err(|source| StartError::Spawn { program, source })
}

/// The command that starts `argv` through `launcher` in a new process group, and the program
/// it runs first.
fn command(
    launcher: &[OsString],
    argv: &[OsString],
    env: &[(OsString, OsString)],
    working_dir: Option<&str>,
) -> (Command, OsString) {
    let (program, pre) = match launcher.split_first() {
        Some((program, rest)) => (program.clone(), rest.to_vec()),
        None => (argv.first().cloned().unwrap_or_default(), Vec::new()),
    };
    let mut cmd = Command::new(&program);
    if !launcher.is_empty() {
        cmd.args(pre).arg("--parent-pid").arg(std::process::id().to_string()).arg("--").args(argv);
    } else {
        cmd.args(argv.iter().skip(1));
    }
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).process_group(0).kill_on_drop(true);
    if let Some(dir) = working_dir.filter(|d| !d.is_empty()) {
        cmd.current_dir(dir);
    }
    (cmd, program)
}

/// Stops an instance's process group: SIGTERM, then SIGKILL after `grace`. Returns its status.
pub async fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        signal_group(child, Signal::SIGKILL);
        return Some(status);
    }
    signal_group(child, Signal::SIGTERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            signal_group(child, Signal::SIGKILL);
            child.wait().await.ok()
        }
    };
    // Whatever the instance started and left behind goes with it.
    signal_group(child, Signal::SIGKILL);
    status
}

/// Kills the process group led by `pgid` (what is left of an instance that has exited).
pub fn kill_group(pgid: u32) {
    if let Ok(raw) = i32::try_from(pgid)
        && raw > 1
    {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

fn signal_group(child: &Child, signal: Signal) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let _ = killpg(Pid::from_raw(pid), signal);
    let _ = kill(Pid::from_raw(pid), signal);
}

/// The status of an exit as Kubernetes reports it: the exit code, or 128 + the signal number.
pub fn exit_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Becomes the instance: asks the kernel to kill this process when the thread of `sluice serve`
/// that started it dies, checks that `parent_pid` is still the parent, then executes `argv`.
/// Returns only on failure.
pub fn exec_instance(parent_pid: u32, argv: &[OsString]) -> ExecError {
    if let Err(e) = tie_to_parent(parent_pid) {
        return e;
    }
    let mut args = Vec::with_capacity(argv.len());
    for a in argv {
        match CString::new(a.as_bytes()) {
            Ok(c) => args.push(c),
            Err(_) => return ExecError::Nul(a.clone()),
        }
    }
    let Some(program) = args.first() else {
        return ExecError::Empty;
    };
    match nix::unistd::execvp(program, &args) {
        Ok(never) => match never {},
        Err(errno) => ExecError::Sys { call: "exec", errno },
    }
}

/// Asks the kernel to kill this process when the thread of `parent_pid` that started it dies,
/// and checks that `parent_pid` is still the parent.
pub fn tie_to_parent(parent_pid: u32) -> Result<(), ExecError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|errno| ExecError::Sys { call: "prctl(PR_SET_PDEATHSIG)", errno })?;
    // The parent may have died between fork and prctl; then nobody would stop us.
    if u32::try_from(nix::unistd::getppid().as_raw()).ok() != Some(parent_pid) {
        return Err(ExecError::ParentGone(parent_pid));
    }
    Ok(())
}

/// The processes whose environment says they are instances of the `sluice serve` that owns
/// `state_dir`.
pub fn instance_pids(state_dir: &Path) -> Vec<u32> {
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut marker = Vec::from(STATE_DIR_ENV.as_bytes());
    marker.push(b'=');
    marker.extend_from_slice(state_dir.as_os_str().as_bytes());
    let instance_prefix = format!("{INSTANCE_ENV}=");
    let mut pids = Vec::new();
    for entry in proc.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let (mut ours, mut instance) = (false, false);
        for v in environ.split(|b| *b == 0) {
            ours |= v == marker.as_slice();
            instance |= v.starts_with(instance_prefix.as_bytes());
        }
        if ours && instance && pid != me {
            pids.push(pid);
        }
    }
    pids
}

/// Kills every instance an earlier `sluice serve` on `state_dir` left behind (it was killed
/// before it could stop them); returns how many.
pub fn sweep_orphans(state_dir: &Path) -> usize {
    let own_group = nix::unistd::getpgrp();
    let mut killed = 0;
    for pid in instance_pids(state_dir) {
        let Ok(raw) = i32::try_from(pid) else { continue };
        // The group it is in: its own, or that of the instance that started it.
        if let Some(pgid) = process_group(pid).filter(|g| *g > 1 && Pid::from_raw(*g) != own_group) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        if kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}

/// The process group of `pid`, from `/proc/PID/stat` (the fields after the command's `)` are
/// state, parent pid, process group).
fn process_group(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

/// True when `program` would be found: a path that exists, or a name on `PATH`.
pub fn exists(program: &OsStr, path: Option<&OsStr>) -> bool {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.exists();
    }
    path.is_some_and(|path| std::env::split_paths(path).any(|d| d.join(p).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let l = vars(&[("PORT", "8081"), ("NAME", "x")]);
        assert_eq!(expand("--port=$(PORT)", &l), "--port=8081");
        assert_eq!(expand("$(NAME)-$(NAME)", &l), "x-x");
        assert_eq!(expand("$(MISSING)", &l), "$(MISSING)");
        assert_eq!(expand("$$(PORT)", &l), "$(PORT)");
        assert_eq!(expand("a $ b $(", &l), "a $ b $(");
        assert_eq!(expand("$HOME", &l), "$HOME");
    }

    #[test]
    fn argv_uses_command_or_the_image_table() {
        let env = vec![(OsString::from("PORT"), OsString::from("9000"))];
        let c = Container { command: vec!["srv".into()], args: vec!["--port=$(PORT)".into()], ..Default::default() };
        assert_eq!(argv(&c, &env, |_| None).expect("command"), ["srv", "--port=9000"].map(OsString::from));
        let c = Container { image: "x/app:v1".into(), args: vec!["-v".into()], ..Default::default() };
        let got = argv(&c, &env, |i| (i == "x/app:v1").then(|| vec!["/bin/app".into()])).expect("image");
        assert_eq!(got, ["/bin/app", "-v"].map(OsString::from));
        // An image-table entry may name the instance's variables, as the README's example does.
        let table = |_: &str| Some(vec!["/bin/app".into(), "--listen".into(), "127.0.0.1:$(PORT)".into()]);
        let got = argv(&c, &env, table).expect("image");
        assert_eq!(got, ["/bin/app", "--listen", "127.0.0.1:9000", "-v"].map(OsString::from));
        let err = argv(&c, &env, |_| None).expect_err("unknown image");
        assert!(err.to_string().contains("x/app:v1"), "{err}");
    }
}
