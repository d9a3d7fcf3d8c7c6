//! CPU time of processes from `/proc/PID/stat` (user + system, all threads), to report each
//! process's CPU time per request.

use std::time::Duration;

/// A process's CPU time could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the CPU time of pid {pid}: {reason}")]
pub struct CpuError {
    /// The process.
    pub pid: u32,
    /// Why.
    pub reason: String,
}

/// Processes whose CPU time is charged to the requests of a run, under one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The name reports use (`sluice`, `nginx`, `generator`).
    pub name: String,
    /// Their pids (nginx: its workers).
    pub pids: Vec<u32>,
}

/// User plus system CPU time of `pid` so far (every thread of it).
pub fn process_cpu(pid: u32) -> Result<Duration, CpuError> {
    let err = |reason: String| CpuError { pid, reason };
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| err(e.to_string()))?;
    let ticks = parse_stat_ticks(&text).ok_or_else(|| err(format!("unexpected /proc/{pid}/stat: {text:?}")))?;
    Ok(ticks_to_duration(ticks))
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`.
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or ')': fields after
    // the last ')' start at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|h| *h > 0).unwrap_or(100);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz.unsigned_abs())
}

/// The direct children of `pid` (from `/proc/PID/task/*/children`); empty when unreadable.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut kids: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect();
    kids.sort_unstable();
    kids.dedup();
    kids
}

// === impl Watch ===

impl Watch {
    /// One process under a name.
    pub fn new(name: &str, pid: u32) -> Self {
        Self { name: name.to_string(), pids: vec![pid] }
    }

    /// This process, the load generator.
    pub fn generator() -> Self {
        Self::new("generator", std::process::id())
    }

    /// The summed CPU time of its processes so far.
    pub fn cpu(&self) -> Result<Duration, CpuError> {
        self.pids.iter().map(|p| process_cpu(*p)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_command_name_with_spaces_and_parens() {
        let stat = "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0 100 1000 10 0";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_uses_cpu_time_that_grows() {
        let me = Watch::generator();
        let before = me.cpu().expect("own stat");
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(me.cpu().expect("own stat") > before, "60 ms of spinning shows up");
        assert!(process_cpu(u32::MAX).is_err());
    }
}
