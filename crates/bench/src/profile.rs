//! `--perf WORKLOAD`: where Strongroom's CPU time goes. The workload is
//! repeated against the server while `perf record` samples it (cpu-clock,
//! DWARF call graphs, so no frame pointers are needed), then `perf report`
//! prints the hottest functions by own time and by time including callees.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::workloads::{self, Peer, Run};

fn ensure_perf() -> Result<(), String> {
    if Command::new("perf").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    eprintln!("# installing linux-perf with apt-get");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "linux-perf"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if ok { Ok(()) } else { Err("profiling needs perf: apt-get install linux-perf".into()) }
}

fn report(data: &Path, extra: &[&str]) -> Result<String, String> {
    let out = Command::new("perf")
        .arg("report")
        .arg("-i")
        .arg(data)
        .args(["--stdio", "--sort", "symbol", "-g", "none", "--percent-limit", "0.7"])
        .args(extra)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(45)
        .collect::<Vec<_>>()
        .join("\n"))
}

pub async fn run(workload: &str, secs: u64, peer: &Peer, work: &Path) -> Result<bool, String> {
    ensure_perf()?;
    if !["put-small", "get-small", "propfind", "mixed-sync"].contains(&workload) {
        return Err(format!(
            "--perf takes put-small, get-small, propfind or mixed-sync, not {workload}"
        ));
    }
    if workload == "get-small" {
        workloads::put_small(peer, 1, 8, "").await?;
    }
    let data = work.join(format!("perf-{workload}.data"));
    let mut rec = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384", "-p"])
        .arg(peer.pid.to_string())
        .arg("-o")
        .arg(&data)
        .args(["--", "sleep"])
        .arg(secs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("perf record: {e}"))?;
    println!("# profiling strongroom (pid {}) for {secs} s while repeating {workload}", peer.pid);
    let t = Instant::now();
    let mut runs: Vec<Run> = Vec::new();
    let mut i = 0;
    while t.elapsed() < Duration::from_secs(secs) {
        i += 1;
        let r = match workload {
            "put-small" => workloads::put_small(peer, 100 + i, 8, "perf").await?,
            "get-small" => workloads::get_small(peer, &peer.target, "get-small", 1).await?,
            "propfind" => workloads::propfind_run(peer, "propfind", i, 3.0).await?,
            _ => workloads::mixed_sync(peer, i).await?,
        };
        println!("{}", r.line());
        runs.push(r);
    }
    let _ = rec.wait();
    println!("\n# own time (self), top symbols of strongroom:");
    println!("{}", report(&data, &["--no-children"])?);
    println!("\n# time including callees (children):");
    println!("{}", report(&data, &["--children"])?);
    println!("\n# perf data: {} (perf report -i … for call graphs)", data.display());
    Ok(runs.iter().all(|r| r.errors == 0))
}
