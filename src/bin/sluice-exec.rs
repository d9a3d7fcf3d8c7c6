//! `sluice-exec --parent-pid PID -- PROGRAM [ARGS...]`: what `sluice instance-exec` does for an
//! instance outside a network namespace (ties its life to the `sluice serve` that started it,
//! then becomes the instance), as a program of its own. Every cold start runs it, and starting
//! the whole `sluice` binary (about 200 MB, its command line parsed by clap) for that took a
//! millisecond or more of the start; `sluice serve` uses this one when it sits next to `sluice`
//! (`cargo build` builds both), and `sluice instance-exec` otherwise.

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "usage: sluice-exec --parent-pid PID -- PROGRAM [ARGS...]";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (parent_pid, argv) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("sluice-exec: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let err = sluice_runtime::exec_instance(parent_pid, argv);
    eprintln!("[sluice] cannot start instance {argv:?}: {err}");
    ExitCode::from(err.exit_code())
}

/// The parent's pid and the instance's argv, from `--parent-pid PID -- ARGV...`.
fn parse(args: &[OsString]) -> Result<(u32, &[OsString]), String> {
    let [flag, pid, dashes, argv @ ..] = args else {
        return Err("expected --parent-pid PID -- PROGRAM".into());
    };
    if flag != "--parent-pid" || dashes != "--" {
        return Err("expected --parent-pid PID -- PROGRAM".into());
    }
    let pid =
        pid.to_str().and_then(|p| p.parse().ok()).ok_or_else(|| format!("--parent-pid {pid:?}: not a process id"))?;
    if argv.is_empty() {
        return Err("no command given".into());
    }
    Ok((pid, argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_launcher_arguments_parse() {
        let given = args(&["--parent-pid", "42", "--", "app", "--port", "8080"]);
        let (pid, argv) = parse(&given).expect("valid");
        assert_eq!((pid, argv), (42, &given[3..]));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (given, reason) in [
            (args(&["--parent-pid", "42", "--"]), "no command given"),
            (args(&["--parent-pid", "x", "--", "app"]), "not a process id"),
            (args(&["--parent-pid", "42", "app"]), "expected --parent-pid"),
            (args(&["--pid", "42", "--", "app"]), "expected --parent-pid"),
            (args(&[]), "expected --parent-pid"),
        ] {
            let err = parse(&given).expect_err("invalid");
            assert!(err.contains(reason), "{given:?}: {err}");
        }
    }
}
