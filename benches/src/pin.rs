//! Pinning to cores: CPU lists (`0`, `0-1`, `0,2`), pinning the generator's own threads, other
//! processes (`taskset -a -p`) and commands the harness starts (`taskset -c`); and the layout
//! line reports print.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;

use nix::sched::CpuSet;

/// A pinning that cannot be done; the message names the part at fault.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// `--pin NAME=CPUS` was malformed.
    #[error("--pin {spec:?}: {reason} (expected NAME=CPUS, e.g. load=0 or sluice=1 or backend=0-1)")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel or taskset refused.
    #[error("cannot pin {what} to cores {cpus}: {reason}")]
    Apply {
        /// What was pinned.
        what: String,
        /// The cores.
        cpus: CpuList,
        /// Why it failed.
        reason: String,
    },
}

/// A set of cores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

/// Which cores each role runs on (`load` is the generator; the other names are the targets'
/// processes). Roles not named are not pinned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    roles: BTreeMap<String, CpuList>,
}

// === impl CpuList ===

impl CpuList {
    /// Parses `0`, `0-1`, `0,2-3`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut cpus = Vec::new();
        for part in text.split(',') {
            let num = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("{s:?} is not a core number"));
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(format!("range {part:?} runs backwards"));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(num(part)?),
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        let n = cores();
        if let Some(bad) = cpus.iter().find(|c| **c >= n) {
            return Err(format!("core {bad} does not exist (this machine has {n}: 0-{})", n - 1));
        }
        Ok(Self(cpus))
    }

    fn cpu_set(&self) -> Result<CpuSet, String> {
        let mut set = CpuSet::new();
        for c in &self.0 {
            set.set(*c).map_err(|e| e.to_string())?;
        }
        Ok(set)
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

// === impl Layout ===

impl Layout {
    /// From `NAME=CPUS` specs.
    pub fn parse(specs: &[String]) -> Result<Self, PinError> {
        let mut roles = BTreeMap::new();
        for spec in specs {
            let bad = |reason: String| PinError::Spec { spec: spec.clone(), reason };
            let (name, cpus) = spec.split_once('=').ok_or_else(|| bad("no '='".into()))?;
            if name.is_empty() {
                return Err(bad("the name is empty".into()));
            }
            roles.insert(name.to_string(), CpuList::parse(cpus).map_err(bad)?);
        }
        Ok(Self { roles })
    }

    /// The cores of `role`, when pinned.
    pub fn get(&self, role: &str) -> Option<&CpuList> {
        self.roles.get(role)
    }

    /// True when nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The roles named.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// Pins every thread of a running process to `role`'s cores (no-op when `role` is unpinned).
    pub fn pin_pid(&self, role: &str, pid: u32) -> Result<(), PinError> {
        let Some(cpus) = self.get(role) else { return Ok(()) };
        let apply =
            |reason: String| PinError::Apply { what: format!("{role} (pid {pid})"), cpus: cpus.clone(), reason };
        let out = Command::new("taskset")
            .args(["-a", "-p", "-c", &cpus.to_string(), &pid.to_string()])
            .output()
            .map_err(|e| apply(format!("taskset: {e}")))?;
        if !out.status.success() {
            return Err(apply(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(())
    }

    /// `program` wrapped in `taskset -c CPUS` when `role` is pinned (its children inherit it).
    pub fn command(&self, role: &str, program: &std::path::Path) -> Command {
        match self.get(role) {
            Some(cpus) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpus.to_string()).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// One line saying which cores each role ran on, and the machine's core count.
    pub fn describe(&self, named: &[(&str, Option<u32>)]) -> String {
        let n = cores();
        if self.is_empty() {
            return format!("layout: unpinned; the generator and every process share all {n} cores");
        }
        let mut parts: Vec<String> = Vec::new();
        let load = self.get("load").map_or("unpinned".to_string(), |c| format!("cores {c}"));
        parts.push(format!("load generator → {load}"));
        for (name, pid) in named {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let cpus = self.get(name).map_or("unpinned".to_string(), |c| format!("cores {c}"));
            parts.push(format!("{name}{pid} → {cpus}"));
        }
        format!("layout: {n} cores; {}", parts.join("; "))
    }
}

/// Pins the calling thread to `cpus`.
pub fn pin_this_thread(cpus: &CpuList) -> Result<(), PinError> {
    let apply = |reason: String| PinError::Apply { what: "the load generator".into(), cpus: cpus.clone(), reason };
    let set = cpus.cpu_set().map_err(apply)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| apply(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_print() {
        assert_eq!(CpuList::parse("0").expect("0").to_string(), "0");
        if cores() >= 2 {
            assert_eq!(CpuList::parse("1,0-1").expect("list").to_string(), "0,1");
        }
        assert!(CpuList::parse("1-0").unwrap_err().contains("backwards"));
        assert!(CpuList::parse("x").unwrap_err().contains("not a core"));
        assert!(CpuList::parse("4096").unwrap_err().contains("does not exist"));
    }

    #[test]
    fn a_layout_says_where_each_role_runs() {
        let layout = Layout::parse(&["load=0".into(), "sluice=0".into()]).expect("layout");
        let line = layout.describe(&[("sluice", Some(42)), ("nginx", None)]);
        assert!(line.contains("load generator → cores 0"), "{line}");
        assert!(line.contains("sluice (pid 42) → cores 0"), "{line}");
        assert!(line.contains("nginx → unpinned"), "{line}");
        assert!(Layout::default().describe(&[]).contains("unpinned"));
        assert!(Layout::parse(&["load".into()]).unwrap_err().to_string().contains("no '='"));
    }

    #[test]
    fn this_thread_can_be_pinned_to_core_zero() {
        std::thread::spawn(|| pin_this_thread(&CpuList::parse("0").expect("0")))
            .join()
            .expect("thread")
            .expect("pinned");
    }
}
