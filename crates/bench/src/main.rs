//! `strongroom-bench`: Strongroom against Apache httpd + mod_dav on loopback.
//!
//! Builds the release binary, starts Strongroom with a fresh data folder (and
//! a second one whose database holds the trees of many other users), starts
//! Apache with its own configuration in a scratch folder, runs the workloads
//! interleaved for several rounds, and prints medians and ratios. This is a
//! benchmark, not a test: nothing in CI runs it.

mod client;
mod measure;
mod peers;
mod profile;
mod seed;
mod workloads;

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use clap::Parser;

use crate::{
    peers::{Apache, ApacheHash, Strongroom},
    workloads::{Peer, Run},
};

const ALL: &str = "put-small,get-small,get-small-auth,propfind,propfind-1m,put-large,get-large,range-4k,mixed-sync";

#[derive(Parser, Debug)]
#[command(
    name = "strongroom-bench",
    about = "Strongroom against Apache httpd + mod_dav, interleaved, on loopback"
)]
struct Args {
    /// Interleaved rounds (the medians are over these).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Comma-separated workloads.
    #[arg(long, default_value = ALL)]
    workloads: String,
    /// Size of put-large / get-large in MiB.
    #[arg(long, default_value_t = 1024)]
    large_mib: u64,
    /// Seconds of each propfind run.
    #[arg(long, default_value_t = 20.0)]
    propfind_secs: f64,
    /// Seconds of each ceiling run (GET of a static file served by Apache).
    #[arg(long, default_value_t = 10.0)]
    ceiling_secs: f64,
    /// Files of other users in the database of the propfind-1m server.
    #[arg(long, default_value_t = 1_000_000)]
    seed_files: u64,
    /// Connections of the memory measurement (put-small at this concurrency).
    #[arg(long, default_value_t = 256)]
    memory_conc: usize,
    /// Skip the memory measurement.
    #[arg(long)]
    no_memory: bool,
    /// Skip the encrypted strongroom (put-large, get-large and range-4k with
    /// encryption at rest, compared with the same server unencrypted).
    #[arg(long)]
    no_encryption: bool,
    /// How Apache's htpasswd stores the password.
    #[arg(long, value_enum, default_value_t = ApacheHash::Sha1)]
    apache_hash: ApacheHash,
    /// Use this strongroom binary instead of building the release binary.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Scratch folder (default: /var/tmp/strongroom-bench-TIME); removed at the end unless --keep.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the scratch folder (data, logs, configuration).
    #[arg(long)]
    keep: bool,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Profile Strongroom instead of comparing: repeat this workload
    /// (put-small, get-small, propfind or mixed-sync) for --perf-secs under
    /// `perf record` and print where the server's CPU time goes.
    #[arg(long)]
    perf: Option<String>,
    /// Seconds of the profile.
    #[arg(long, default_value_t = 15)]
    perf_secs: u64,
    /// Start the servers, print how to reach them, and wait for Enter
    /// (to drive them with another tool, e.g. shared/bench/matrix).
    #[arg(long)]
    hold: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let work = args.work_dir.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!("/var/tmp/strongroom-bench-{t}"))
    });
    let result = rt.block_on(async {
        tokio::select! {
            r = run(&args, &work) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        }
    });
    // Servers are stopped when their handles drop inside `run`.
    rt.shutdown_timeout(Duration::from_secs(5));
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("# kept {}", work.display());
    }
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("strongroom-bench: some requests failed (see err= above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("strongroom-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the release binary with cargo and returns its path.
fn build_server() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    eprintln!("# building strongroom (release)");
    let mut cmd = Command::new(cargo);
    // Under `cargo run`, cargo describes this package in CARGO_PKG_* and
    // CARGO_MANIFEST_*; build scripts that watch those (ring's does) would
    // then rebuild half the tree on every run. The child cargo must not see them.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"].contains(&k.as_ref())
        {
            cmd.env_remove(k.as_ref());
        }
    }
    let out = cmd
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "strongroom",
            "--bin",
            "strongroom",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        return Err("cargo build --release -p strongroom failed".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "strongroom")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo did not report the strongroom executable".into())
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

struct Log {
    file: std::fs::File,
    runs: Vec<Run>,
}

impl Log {
    fn add(&mut self, run: Run) {
        say(&run.line());
        if !run.error_samples.is_empty() {
            say(&format!("#   errors: {}", run.error_samples.join("; ")));
        }
        let _ = writeln!(self.file, "{}", run.json());
        self.runs.push(run);
    }
}

async fn run(args: &Args, work: &Path) -> Result<bool, String> {
    let wanted: Vec<&str> =
        args.workloads.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    for w in &wanted {
        if !ALL.split(',').any(|a| a == *w) {
            return Err(format!("unknown workload {w}; one of {ALL}"));
        }
    }
    let has = |w: &str| wanted.contains(&w);
    if (has("get-small") || has("get-small-auth")) && !has("put-small") {
        return Err("get-small reads the files put-small wrote: add put-small".into());
    }
    if (has("get-large") || has("range-4k")) && !has("put-large") {
        return Err("get-large and range-4k read the file put-large wrote: add put-large".into());
    }
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    std::fs::set_permissions(work, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => build_server()?,
    };
    say(&format!("# strongroom binary: {}", bin.display()));
    say(&format!("# scratch folder: {}", work.display()));

    // The peers.
    let apache = Apache::start(&work.join("apache"), args.apache_hash).await?;
    say(&format!(
        "# apache on {} (pid {}, htpasswd {:?})",
        apache.addr, apache.proc.pid, args.apache_hash
    ));
    let sr = Strongroom::start(&bin, &work.join("strongroom")).await?;
    say(&format!("# strongroom on {} (pid {})", sr.addr, sr.proc.pid));
    let big = if has("propfind-1m") && args.perf.is_none() && !args.hold {
        let dir = work.join("strongroom-1m");
        peers::strongroom_migrate(&bin, &dir)?;
        let shape = seed::Shape::for_files(args.seed_files);
        say(&format!(
            "# seeding {} files of other users ({} users x {} folders x {} files) into {}",
            shape.files(),
            shape.users,
            shape.folders,
            shape.files_per_folder,
            dir.join("data/strongroom.db").display()
        ));
        let summary = seed::seed(&peers::data_dir(&dir).join("strongroom.db"), &shape)?;
        say(&format!("# {summary}"));
        let s = Strongroom::start(&bin, &dir).await?;
        say(&format!("# strongroom-1m on {} (pid {})", s.addr, s.proc.pid));
        Some(s)
    } else {
        None
    };

    let large = ["put-large", "get-large", "range-4k"].iter().any(|w| has(w));
    let enc = if large && !args.no_encryption && args.perf.is_none() && !args.hold {
        let s = Strongroom::start_with(&bin, &work.join("strongroom-enc"), true).await?;
        say(&format!(
            "# strongroom-enc (encryption at rest on) on {} (pid {})",
            s.addr, s.proc.pid
        ));
        Some(s)
    } else {
        None
    };
    let p_enc = enc.as_ref().map(|s| Peer {
        name: "strongroom-enc".into(),
        target: s.target(),
        root: s.root(),
        pid: s.proc.pid,
    });

    let p_sr =
        Peer { name: "strongroom".into(), target: sr.target(), root: sr.root(), pid: sr.proc.pid };
    let p_ap = Peer {
        name: "apache".into(),
        target: apache.target(),
        root: apache.root(),
        pid: apache.proc.pid,
    };
    let p_big = big.as_ref().map(|s| Peer {
        name: "strongroom-1m".into(),
        target: s.target(),
        root: s.root(),
        pid: s.proc.pid,
    });
    let p_ceiling = Peer { name: "ceiling".into(), ..p_ap.clone() };

    if args.hold {
        say("# --hold: the servers run until you press Enter. For example:");
        say(&format!(
            "/work/shared/bench/matrix --rounds 1 --peer apache=http://{}{},{},{},{} --peer strongroom=http://{}{},{},{},{} --ceiling http://{}{}",
            apache.addr,
            p_ap.root,
            peers::USER,
            apache.password,
            apache.proc.pid,
            sr.addr,
            p_sr.root,
            peers::USER,
            sr.app_password,
            sr.proc.pid,
            apache.addr,
            apache.static_path()
        ));
        let mut line = String::new();
        let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
        return Ok(true);
    }

    if let Some(w) = &args.perf {
        workloads::prepare(&p_sr).await?;
        return profile::run(w, args.perf_secs, &p_sr, work).await;
    }

    let t0 = Instant::now();
    say("# preparing (untimed): pf1000/ with 1,000 files, sync/ with 20 x 50 files of 16 KiB");
    for p in [Some(&p_sr), Some(&p_ap), p_big.as_ref()].into_iter().flatten() {
        workloads::prepare(p).await?;
    }
    if let Some(p) = &p_enc {
        // Only the large transfers run there: the folder they write into.
        workloads::prepare_prefix(p).await?;
    }
    let mut log = Log {
        file: std::fs::File::create(work.join("runs.jsonl")).map_err(|e| e.to_string())?,
        runs: Vec::new(),
    };

    for round in 1..=args.rounds {
        // A, B in odd rounds, B, A in even ones.
        let pair: Vec<&Peer> = if round % 2 == 1 { vec![&p_sr, &p_ap] } else { vec![&p_ap, &p_sr] };
        say(&format!(
            "# round {round}/{}: order {}",
            args.rounds,
            pair.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
        log.add(
            workloads::ceiling(&p_ceiling, &apache.static_path(), round, args.ceiling_secs).await?,
        );
        for w in &wanted {
            match *w {
                "put-small" => {
                    for p in &pair {
                        log.add(workloads::put_small(p, round, 8, "").await?);
                    }
                }
                "get-small" => {
                    for p in &pair {
                        log.add(workloads::get_small(p, &p.target, "get-small", round).await?);
                    }
                }
                "get-small-auth" => {
                    for p in &pair {
                        // Strongroom: the real password (Argon2id, then its cache); Apache has only one.
                        let t = if p.name == "strongroom" {
                            sr.target_real_password()
                        } else {
                            p.target.clone()
                        };
                        log.add(workloads::get_small(p, &t, "get-small-auth", round).await?);
                    }
                }
                "propfind" => {
                    for p in &pair {
                        log.add(
                            workloads::propfind_run(p, "propfind", round, args.propfind_secs)
                                .await?,
                        );
                    }
                }
                "propfind-1m" => {
                    // Interleaved with a plain Apache propfind so the ratio has its own baseline.
                    let big = p_big.as_ref().expect("seeded server");
                    let order: Vec<&Peer> =
                        if round % 2 == 1 { vec![big, &p_ap] } else { vec![&p_ap, big] };
                    for p in order {
                        let name =
                            if p.name == "apache" { "propfind-1m-base" } else { "propfind-1m" };
                        log.add(workloads::propfind_run(p, name, round, args.propfind_secs).await?);
                    }
                }
                "put-large" => {
                    for p in with_enc(&pair, p_enc.as_ref()) {
                        log.add(workloads::put_large(p, round, args.large_mib).await?);
                    }
                }
                "get-large" => {
                    for p in with_enc(&pair, p_enc.as_ref()) {
                        log.add(workloads::get_large(p, round, args.large_mib).await?);
                    }
                }
                "range-4k" => {
                    // Encryption's cost on small random reads: the same server with and without.
                    let mut order: Vec<&Peer> = vec![&p_sr];
                    order.extend(p_enc.as_ref());
                    if round % 2 == 0 {
                        order.reverse();
                    }
                    for p in order {
                        log.add(workloads::range_4k(p, round, args.large_mib).await?);
                    }
                }
                "mixed-sync" => {
                    for p in &pair {
                        log.add(workloads::mixed_sync(p, round).await?);
                    }
                }
                _ => unreachable!("checked above"),
            }
        }
    }
    let rss_after = measure::status_kib(sr.proc.pid, "VmRSS").unwrap_or(0);
    let hwm_after = measure::status_kib(sr.proc.pid, "VmHWM").unwrap_or(0);
    say(&format!("# rounds took {:.0} s", t0.elapsed().as_secs_f64()));
    summary(&log.runs);
    say(&format!(
        "\nstrongroom after the rounds: VmRSS {:.1} MiB, VmHWM {:.1} MiB (includes the large transfers)",
        rss_after as f64 / 1024.0,
        hwm_after as f64 / 1024.0
    ));
    let ok = log.runs.iter().all(|r| r.errors == 0);
    drop(enc);
    drop(big);
    drop(sr);
    drop(apache);

    if !args.no_memory {
        memory(args, &bin, work, &mut log).await?;
    }
    say(&format!("\n# every run: {}", work.join("runs.jsonl").display()));
    Ok(ok && log.runs.iter().all(|r| r.errors == 0))
}

/// The pair of a round, then the encrypted server (compared with the plain one).
fn with_enc<'a>(pair: &[&'a Peer], enc: Option<&'a Peer>) -> Vec<&'a Peer> {
    let mut v = pair.to_vec();
    v.extend(enc);
    v
}

/// Idle RSS after start and peak RSS during put-small at `memory_conc`
/// connections, on fresh servers.
async fn memory(args: &Args, bin: &Path, work: &Path, log: &mut Log) -> Result<(), String> {
    say(&format!(
        "\n# memory: fresh servers, idle RSS 3 s after start, then put-small at {} connections",
        args.memory_conc
    ));
    let sr = Strongroom::start(bin, &work.join("strongroom-mem")).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sr_idle = measure::tree_rss_kib(sr.proc.pid);
    let sr_start = sr.rss_at_start_kib;
    let p_sr =
        Peer { name: "strongroom".into(), target: sr.target(), root: sr.root(), pid: sr.proc.pid };
    workloads::prepare_prefix(&p_sr).await?;
    let (mut run, sampled) = workloads::put_small_memory(&p_sr, args.memory_conc).await?;
    let hwm = measure::status_kib(sr.proc.pid, "VmHWM").unwrap_or(0);
    let sr_peak = sampled.max(hwm);
    run.workload = format!("put-small@{}", args.memory_conc);
    log.add(run);
    drop(sr);

    let ap = Apache::start(&work.join("apache-mem"), args.apache_hash).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ap_idle = measure::tree_rss_kib(ap.proc.pid);
    let p_ap =
        Peer { name: "apache".into(), target: ap.target(), root: ap.root(), pid: ap.proc.pid };
    workloads::prepare_prefix(&p_ap).await?;
    let (mut run, ap_peak) = workloads::put_small_memory(&p_ap, args.memory_conc).await?;
    run.workload = format!("put-small@{}", args.memory_conc);
    log.add(run);
    drop(ap);

    let mib = |k: u64| k as f64 / 1024.0;
    say(&format!(
        "\n| server | idle RSS after start (MiB) | idle RSS after set-up (MiB) | peak RSS, put-small at {} connections (MiB) | target |",
        args.memory_conc
    ));
    say("|---|---:|---:|---:|---|");
    say(&format!(
        "| strongroom | {:.1} | {:.1} | {:.1} | idle ≤ 30 MiB: {}; peak ≤ 200 MiB: {} |",
        mib(sr_start),
        mib(sr_idle),
        mib(sr_peak),
        if mib(sr_start) <= 30.0 { "met" } else { "MISSED" },
        if mib(sr_peak) <= 200.0 { "met" } else { "MISSED" }
    ));
    say(&format!(
        "| apache (all processes) | {:.1} | {:.1} | {:.1} | (reference) |",
        mib(ap_idle),
        mib(ap_idle),
        mib(ap_peak)
    ));
    say(
        "(after start: 2 s after the first answer; after set-up: 3 s after the bench user and its app password were made,",
    );
    say("which cost one Argon2id verification of the real password in the server)");
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

struct Med {
    n: usize,
    errors: u64,
    ops_s: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    mb_s: Option<f64>,
    srv_ms: Option<f64>,
    cli_s: Option<f64>,
    other_s: Option<f64>,
}

fn medians(runs: &[&Run]) -> Med {
    let m = |f: &dyn Fn(&Run) -> Option<f64>| median(runs.iter().filter_map(|r| f(r)).collect());
    Med {
        n: runs.len(),
        errors: runs.iter().map(|r| r.errors).sum(),
        ops_s: m(&|r| Some(r.ops_s)),
        p50: m(&|r| Some(r.p50_ms)),
        p99: m(&|r| Some(r.p99_ms)),
        mb_s: m(&|r| Some(r.mb_s)),
        srv_ms: m(&|r| r.server_ms_per_op()),
        cli_s: m(&|r| Some(r.cpu.client)),
        other_s: m(&|r| Some(r.cpu.other)),
    }
}

/// Targets from the brief: (workload, minimum ratio on the headline metric).
fn target(workload: &str) -> Option<f64> {
    match workload {
        "put-small" | "get-small" | "mixed-sync" => Some(1.0),
        "propfind" => Some(3.0),
        "put-large" | "get-large" => Some(0.9),
        _ => None,
    }
}

fn summary(runs: &[Run]) {
    let mut by: BTreeMap<(String, String), Vec<&Run>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in runs {
        if !order.contains(&r.workload) {
            order.push(r.workload.clone());
        }
        by.entry((r.workload.clone(), r.peer.clone())).or_default().push(r);
    }
    let f = |x: Option<f64>, d: usize| x.map_or("-".to_owned(), |v| format!("{v:.d$}"));
    say(
        "\nMedians over the rounds. ratio = strongroom / apache on the headline metric (MB/s for the large",
    );
    say(
        "transfers, ops/s otherwise; > 1 is faster); CPU ratio = server CPU per request, strongroom / apache (< 1 is cheaper).",
    );
    say(
        "other CPU s = CPU time of everything else on the machine during the run (noise from other processes).",
    );
    say(
        "\n| workload | peer | runs | ops/s | p50 ms | p99 ms | MB/s | server CPU ms/req | client CPU s | other CPU s | ratio | CPU ratio | target |",
    );
    say("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for w in &order {
        let headline = |m: &Med| if w.ends_with("-large") { m.mb_s } else { m.ops_s };
        let base_name = match w.as_str() {
            "propfind-1m" => "propfind-1m-base",
            "get-small-auth" => "get-small-auth",
            _ => w.as_str(),
        };
        let base = by.get(&(base_name.to_owned(), "apache".to_owned())).map(|v| medians(v));
        for peer in ["strongroom", "strongroom-enc", "strongroom-1m", "apache", "ceiling"] {
            let Some(rs) = by.get(&(w.clone(), peer.to_owned())) else { continue };
            let m = medians(rs);
            let (ratio, cpu_ratio) = if peer.starts_with("strongroom") {
                let r = match (&base, headline(&m)) {
                    (Some(b), Some(v)) => headline(b).map(|bv| v / bv),
                    _ => None,
                };
                let c = match (&base, m.srv_ms) {
                    (Some(b), Some(v)) => b.srv_ms.map(|bv| v / bv),
                    _ => None,
                };
                (r, c)
            } else {
                (None, None)
            };
            let goal = match (peer, target(w), ratio) {
                ("strongroom", Some(t), Some(r)) => {
                    format!("≥ {t}: {}", if r >= t { "met" } else { "MISSED" })
                }
                _ => String::new(),
            };
            let errs = if m.errors > 0 { format!(" ({} errors)", m.errors) } else { String::new() };
            say(&format!(
                "| {w}{errs} | {peer} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {goal} |",
                m.n,
                f(m.ops_s, 1),
                f(m.p50, 3),
                f(m.p99, 3),
                f(m.mb_s, 1),
                f(m.srv_ms, 3),
                f(m.cli_s, 2),
                f(m.other_s, 2),
                f(ratio, 3),
                f(cpu_ratio, 3),
            ));
        }
    }
    // Scale: propfind with a million other files against propfind on a fresh database.
    let pf = by.get(&("propfind".to_owned(), "strongroom".to_owned())).map(|v| medians(v));
    let big = by.get(&("propfind-1m".to_owned(), "strongroom-1m".to_owned())).map(|v| medians(v));
    if let (Some(a), Some(b)) = (pf, big)
        && let (Some(x), Some(y)) = (a.ops_s, b.ops_s)
    {
        let slow = x / y;
        say(&format!(
            "\npropfind: {y:.1} ops/s with the seeded database, {x:.1} with a fresh one; time per request seeded/fresh = {slow:.2} (target: at most 2: {})",
            if slow <= 2.0 { "met" } else { "MISSED" }
        ));
    }
    encryption_cost(&by);
    // Server CPU per small request against Apache.
    for w in ["put-small", "get-small", "propfind", "mixed-sync"] {
        let a = by.get(&(w.to_owned(), "strongroom".to_owned())).map(|v| medians(v));
        let b = by.get(&(w.to_owned(), "apache".to_owned())).map(|v| medians(v));
        if let (Some(a), Some(b)) = (a, b)
            && let (Some(x), Some(y)) = (a.srv_ms, b.srv_ms)
        {
            say(&format!(
                "server CPU per request, {w}: strongroom {x:.3} ms, apache {y:.3} ms (target ≤ apache: {})",
                if x <= y { "met" } else { "MISSED" }
            ));
        }
    }
}

/// Encryption at rest against the same server without it: large transfers
/// must keep 70 % of their throughput, 4 KiB range reads cost at most 2x.
fn encryption_cost(by: &BTreeMap<(String, String), Vec<&Run>>) {
    let med = |w: &str, p: &str| by.get(&(w.to_owned(), p.to_owned())).map(|v| medians(v));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for w in ["put-large", "get-large"] {
        if let (Some(e), Some(p)) = (med(w, "strongroom-enc"), med(w, "strongroom"))
            && let (Some(x), Some(y)) = (e.mb_s, p.mb_s)
        {
            let r = x / y;
            say(&format!(
                "encryption, {w}: {x:.1} MB/s encrypted, {y:.1} MB/s plain, ratio {r:.2} (target ≥ 0.7: {})",
                verdict(r >= 0.7)
            ));
        }
    }
    if let (Some(e), Some(p)) = (med("range-4k", "strongroom-enc"), med("range-4k", "strongroom")) {
        if let (Some(x), Some(y)) = (e.p50, p.p50) {
            say(&format!(
                "encryption, range-4k latency: p50 {x:.3} ms encrypted, {y:.3} ms plain, ratio {:.2} (target ≤ 2: {})",
                x / y,
                verdict(x / y <= 2.0)
            ));
        }
        if let (Some(x), Some(y)) = (e.srv_ms, p.srv_ms) {
            say(&format!(
                "encryption, range-4k server CPU: {x:.3} ms/req encrypted, {y:.3} plain, ratio {:.2} (target ≤ 2: {})",
                x / y,
                verdict(x / y <= 2.0)
            ));
        }
    }
}
