//! What the benchmark reads from /proc: CPU time of a process tree, of the
//! driver itself and of the whole machine, and resident memory.

use std::{collections::HashMap, fs, time::Duration};

/// Clock ticks per second of the times in /proc/*/stat. Linux reports them in
/// USER_HZ, which is 100 on every architecture it supports for user space.
const TICKS: f64 = 100.0;

/// (parent pid, utime + stime in ticks) of one process, from /proc/PID/stat.
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// Every live process: pid -> (parent, ticks).
fn all_processes() -> HashMap<u32, (u32, u64)> {
    let mut out = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && let Some(st) = stat_of(pid)
            {
                out.insert(pid, st);
            }
        }
    }
    out
}

/// `root` and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let procs = all_processes();
    tree_in(&procs, root)
}

fn tree_in(procs: &HashMap<u32, (u32, u64)>, root: u32) -> Vec<u32> {
    let mut want = vec![root];
    let mut i = 0;
    while i < want.len() {
        let p = want[i];
        want.extend(
            procs
                .iter()
                .filter(|(c, (pp, _))| *pp == p && !want.contains(c))
                .map(|(c, _)| *c)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    want.retain(|p| procs.contains_key(p));
    want
}

/// CPU seconds (user + system, all threads) used so far by `root` and its
/// live descendants.
pub fn tree_cpu(root: u32) -> f64 {
    let procs = all_processes();
    tree_in(&procs, root).iter().map(|p| procs[p].1).sum::<u64>() as f64 / TICKS
}

/// CPU seconds used so far by this process (all threads).
pub fn self_cpu() -> f64 {
    stat_of(std::process::id()).map(|(_, t)| t as f64 / TICKS).unwrap_or(0.0)
}

/// (busy, total) ticks of the whole machine, all cores, from /proc/stat.
pub fn machine() -> (u64, u64) {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Resident memory of `root` and all its descendants, in KiB.
pub fn tree_rss_kib(root: u32) -> u64 {
    tree(root).iter().filter_map(|p| status_kib(*p, "VmRSS")).sum()
}

/// CPU and wall time of one timed phase.
pub struct Meter {
    server: Option<u32>,
    t0: std::time::Instant,
    server0: f64,
    client0: f64,
    machine0: (u64, u64),
}

/// What a [`Meter`] measured.
#[derive(Debug, Clone, Default)]
pub struct Cpu {
    pub wall: Duration,
    /// CPU seconds of the server's process tree (None when no server is watched).
    pub server: Option<f64>,
    pub client: f64,
    /// CPU seconds of everything else on the machine: noise.
    pub other: f64,
    /// Busy fraction of the whole machine (0..1).
    pub busy: f64,
}

impl Meter {
    /// Starts a timed phase, once the disks have written back what earlier
    /// phases left in memory (`sync`, untimed): Apache writes without
    /// flushing, and the gigabyte its put-large leaves to write back slowed
    /// the flushes of whichever server ran next (mixed-sync at 35-48 % of
    /// the machine busy, against 70-78 % without that backlog).
    pub fn start(server: Option<u32>) -> Meter {
        let _ = std::process::Command::new("sync").status();
        Meter {
            server,
            server0: server.map(tree_cpu).unwrap_or(0.0),
            client0: self_cpu(),
            machine0: machine(),
            t0: std::time::Instant::now(),
        }
    }

    pub fn stop(self) -> Cpu {
        let wall = self.t0.elapsed();
        let client = self_cpu() - self.client0;
        let server = self.server.map(|p| tree_cpu(p) - self.server0);
        let (b1, t1) = machine();
        let busy_ticks = b1.saturating_sub(self.machine0.0);
        let total = t1.saturating_sub(self.machine0.1);
        let busy = if total > 0 { busy_ticks as f64 / total as f64 } else { 0.0 };
        let other = busy_ticks as f64 / TICKS - client - server.unwrap_or(0.0);
        Cpu { wall, server, client, other, busy }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        assert!(tree(me).contains(&me));
        assert!(status_kib(me, "VmRSS").is_some_and(|k| k > 0));
        let (busy, total) = machine();
        assert!(total >= busy && total > 0);
    }
}
