//! The workloads: what each sends, what is timed, what counts as an error.
//! The same definitions as shared/bench/davbench, so the figures compare.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;

use crate::{
    client::{self, Req, ReqBody, Samples, Target},
    measure::{Cpu, Meter},
};

/// Everything under the user's root goes into this folder.
pub const PREFIX: &str = "sr-bench";

/// The Nextcloud desktop client's PROPFIND property set.
pub const PROPFIND_BODY: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
    "<d:propfind xmlns:d=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\"><d:prop>",
    "<d:getlastmodified/><d:getcontentlength/><d:resourcetype/><d:getetag/>",
    "<oc:id/><oc:permissions/><oc:size/><oc:checksums/>",
    "</d:prop></d:propfind>\n"
);

const PUT_OK: &[u16] = &[200, 201, 204];
const MKCOL_OK: &[u16] = &[201, 405];
const MULTI: &[u16] = &[207];
const MIB: u64 = 1 << 20;

/// One server as the workloads see it.
#[derive(Clone)]
pub struct Peer {
    pub name: String,
    pub target: Arc<Target>,
    /// The user's WebDAV root, ending in '/'.
    pub root: String,
    /// The server's main process (CPU is counted for it and its children).
    pub pid: u32,
}

impl Peer {
    pub fn path(&self, rel: &str) -> String {
        format!("{}{PREFIX}/{rel}", self.root)
    }
}

/// One timed run.
#[derive(Debug, Clone)]
pub struct Run {
    pub workload: String,
    pub peer: String,
    pub round: usize,
    pub ops: usize,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub ops_s: f64,
    pub mb_s: f64,
    pub cpu: Cpu,
    pub error_samples: Vec<String>,
    pub note: String,
}

impl Run {
    fn new(
        workload: &str,
        peer: &Peer,
        round: usize,
        s: Samples,
        cpu: Cpu,
        payload: Option<u64>,
    ) -> Run {
        let mut lat = s.lat.clone();
        lat.sort();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return f64::NAN;
            }
            let i = ((p * lat.len() as f64) as usize).min(lat.len() - 1);
            lat[i].as_secs_f64() * 1000.0
        };
        let wall = cpu.wall.as_secs_f64();
        let bytes = payload.unwrap_or(s.bytes);
        Run {
            workload: workload.to_owned(),
            peer: peer.name.clone(),
            round,
            ops: lat.len(),
            errors: s.errors,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            ops_s: lat.len() as f64 / wall,
            mb_s: bytes as f64 / 1e6 / wall,
            cpu,
            error_samples: s.error_samples,
            note: String::new(),
        }
    }

    /// Server CPU milliseconds per request.
    pub fn server_ms_per_op(&self) -> Option<f64> {
        self.cpu.server.map(|s| s * 1000.0 / self.ops.max(1) as f64)
    }

    pub fn line(&self) -> String {
        let srv = self.cpu.server.map_or("-".into(), |s| format!("{s:.2}s"));
        let per = self.server_ms_per_op().map_or("-".into(), |m| format!("{m:.3}"));
        format!(
            "{:<14} {:<9} ops/s={:<9.1} p50={:.3}ms p99={:.3}ms MB/s={:.1} n={} err={} wall={:.2}s cpu[server={srv} ({per} ms/req) client={:.2}s other={:.2}s machine={:.0}%]{}",
            self.peer,
            self.workload,
            self.ops_s,
            self.p50_ms,
            self.p99_ms,
            self.mb_s,
            self.ops,
            self.errors,
            self.cpu.wall.as_secs_f64(),
            self.cpu.client,
            self.cpu.other,
            self.cpu.busy * 100.0,
            if self.note.is_empty() { String::new() } else { format!(" {}", self.note) },
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "workload": self.workload, "peer": self.peer, "round": self.round,
            "ops": self.ops, "errors": self.errors, "wall_s": self.cpu.wall.as_secs_f64(),
            "ops_per_s": self.ops_s, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "mb_per_s": self.mb_s,
            "server_cpu_s": self.cpu.server, "server_ms_per_op": self.server_ms_per_op(),
            "client_cpu_s": self.cpu.client, "other_cpu_s": self.cpu.other, "machine_busy": self.cpu.busy,
            "error_samples": self.error_samples, "note": self.note,
        })
    }
}

fn random_bytes(n: usize) -> Bytes {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    Bytes::from(v)
}

async fn setup(
    peer: &Peer,
    target: &Arc<Target>,
    reqs: Vec<Req>,
    conc: usize,
) -> Result<(), String> {
    let s = client::pool(target, conc, Arc::new(reqs)).await;
    if s.errors > 0 {
        return Err(format!("{}: set-up failed: {}", peer.name, s.error_samples.join("; ")));
    }
    Ok(())
}

fn mkcol(path: String) -> Req {
    Req::new("MKCOL", path).ok(MKCOL_OK)
}

fn propfind(path: String, depth: &'static str) -> Req {
    Req::new("PROPFIND", path)
        .header("depth", depth)
        .header("content-type", "application/xml; charset=utf-8")
        .body(ReqBody::full(Bytes::from_static(PROPFIND_BODY.as_bytes())))
        .ok(MULTI)
}

/// The entries of a multistatus answer (works whatever prefix DAV: has).
fn count_responses(xml: &[u8]) -> usize {
    let s = String::from_utf8_lossy(xml);
    s.split("</")
        .skip(1)
        .filter(|rest| {
            let tag = rest.split('>').next().unwrap_or("");
            tag.rsplit(':').next() == Some("response")
        })
        .count()
}

/// Untimed: the folder everything goes into.
pub async fn prepare_prefix(peer: &Peer) -> Result<(), String> {
    setup(peer, &peer.target, vec![mkcol(format!("{}{PREFIX}/", peer.root))], 1).await
}

/// Untimed, once per server: the prefix, a folder of 1,000 files for
/// `propfind`, and 20 folders of 50 files of 16 KiB for `mixed-sync`.
pub async fn prepare(peer: &Peer) -> Result<(), String> {
    let t = &peer.target;
    setup(
        peer,
        t,
        vec![
            mkcol(format!("{}{PREFIX}/", peer.root)),
            mkcol(peer.path("pf1000/")),
            mkcol(peer.path("sync/")),
        ],
        1,
    )
    .await?;
    let four = random_bytes(4096);
    let files: Vec<Req> = (0..1000)
        .map(|i| {
            Req::new("PUT", peer.path(&format!("pf1000/f{i:04}.bin")))
                .body(ReqBody::full(four.clone()))
                .ok(PUT_OK)
        })
        .collect();
    setup(peer, t, files, 8).await?;
    setup(peer, t, (0..20).map(|d| mkcol(peer.path(&format!("sync/d{d:02}/")))).collect(), 1)
        .await?;
    let sixteen = random_bytes(16384);
    let files: Vec<Req> = (0..1000)
        .map(|i| {
            Req::new("PUT", peer.path(&format!("sync/d{:02}/f{:03}.bin", i % 20, i / 20)))
                .body(ReqBody::full(sixteen.clone()))
                .ok(PUT_OK)
        })
        .collect();
    setup(peer, t, files, 8).await?;
    let a =
        client::once(t, &propfind(peer.path("pf1000/"), "1")).await.map_err(|e| e.to_string())?;
    let n = count_responses(&a.body);
    if a.status != 207 || n != 1001 {
        return Err(format!(
            "{}: PROPFIND of pf1000/ answered {} with {n} entries, expected 207 with 1001",
            peer.name, a.status
        ));
    }
    Ok(())
}

fn small_paths(peer: &Peer, round: usize, tag: &str) -> Vec<String> {
    (0..2000)
        .map(|i| peer.path(&format!("small-{tag}r{round}/d{:02}/f{:03}.bin", i % 20, i / 20)))
        .collect()
}

/// put-small: 2,000 PUTs of 4 KiB into 20 new folders (the 21 MKCOLs untimed).
pub async fn put_small(peer: &Peer, round: usize, conc: usize, tag: &str) -> Result<Run, String> {
    let base = peer.path(&format!("small-{tag}r{round}/"));
    let mut cols = vec![mkcol(base.clone())];
    cols.extend((0..20).map(|d| mkcol(format!("{base}d{d:02}/"))));
    setup(peer, &peer.target, cols, 1).await?;
    let payload = random_bytes(4096);
    let jobs: Vec<Req> = small_paths(peer, round, tag)
        .into_iter()
        .map(|p| Req::new("PUT", p).body(ReqBody::full(payload.clone())).ok(PUT_OK))
        .collect();
    let m = Meter::start(Some(peer.pid));
    let s = client::pool(&peer.target, conc, Arc::new(jobs)).await;
    let cpu = m.stop();
    Ok(Run::new("put-small", peer, round, s, cpu, Some(2000 * 4096)))
}

/// get-small: GET of the 2,000 files of this round's put-small; with
/// `target` the credentials can be swapped (the real-password variant).
pub async fn get_small(
    peer: &Peer,
    target: &Arc<Target>,
    name: &str,
    round: usize,
) -> Result<Run, String> {
    let jobs: Vec<Req> = small_paths(peer, round, "")
        .into_iter()
        .map(|p| Req::new("GET", p).expect_len(4096))
        .collect();
    let m = Meter::start(Some(peer.pid));
    let s = client::pool(target, 8, Arc::new(jobs)).await;
    let cpu = m.stop();
    Ok(Run::new(name, peer, round, s, cpu, None))
}

/// propfind: PROPFIND Depth 1 of the 1,000-file folder for `secs` at 4 concurrent.
pub async fn propfind_run(peer: &Peer, name: &str, round: usize, secs: f64) -> Result<Run, String> {
    let req = propfind(peer.path("pf1000/"), "1");
    let m = Meter::start(Some(peer.pid));
    let s = client::for_duration(&peer.target, 4, secs, req).await;
    let cpu = m.stop();
    Ok(Run::new(name, peer, round, s, cpu, None))
}

fn large_path(peer: &Peer, round: usize) -> String {
    peer.path(&format!("large-r{round}.bin"))
}

/// put-large: one PUT of `mib` MiB streamed in 1 MiB frames.
pub async fn put_large(peer: &Peer, round: usize, mib: u64) -> Result<Run, String> {
    let req = Req::new("PUT", large_path(peer, round))
        .body(ReqBody::Repeat { chunk: random_bytes(MIB as usize), left: mib * MIB })
        .ok(PUT_OK);
    let mut s = Samples::default();
    let mut conn = client::Conn::new(peer.target.clone());
    let m = Meter::start(Some(peer.pid));
    s.timed(&mut conn, &req).await;
    let cpu = m.stop();
    Ok(Run::new("put-large", peer, round, s, cpu, Some(mib * MIB)))
}

/// get-large: GET of this round's put-large file, body counted and dropped.
pub async fn get_large(peer: &Peer, round: usize, mib: u64) -> Result<Run, String> {
    let req = Req::new("GET", large_path(peer, round)).expect_len(mib * MIB);
    let mut s = Samples::default();
    let mut conn = client::Conn::new(peer.target.clone());
    let m = Meter::start(Some(peer.pid));
    s.timed(&mut conn, &req).await;
    let cpu = m.stop();
    Ok(Run::new("get-large", peer, round, s, cpu, None))
}

/// range-4k: GETs of 4 KiB at random offsets of this round's put-large file,
/// 4 concurrent; on an encrypted server each touches one or two segments.
pub async fn range_4k(peer: &Peer, round: usize, mib: u64) -> Result<Run, String> {
    let size = mib * MIB;
    let jobs: Vec<Req> = (0..4000)
        .map(|_| {
            let start = rand::random_range(0..size - 4096);
            // The request list lives for the whole run; leaking 4,000 short strings is fine here.
            let range: &'static str =
                Box::leak(format!("bytes={start}-{}", start + 4095).into_boxed_str());
            Req::new("GET", large_path(peer, round))
                .header("Range", range)
                .ok(&[206])
                .expect_len(4096)
        })
        .collect();
    let m = Meter::start(Some(peer.pid));
    let s = client::pool(&peer.target, 4, Arc::new(jobs)).await;
    let cpu = m.stop();
    Ok(Run::new("range-4k", peer, round, s, cpu, None))
}

/// mixed-sync: a second sync of a known tree. PROPFIND Depth 0 on the root,
/// Depth 1 on the 20 folders, then 200 PUTs of changed 16 KiB files, 6
/// concurrent (221 requests, all timed together).
pub async fn mixed_sync(peer: &Peer, round: usize) -> Result<Run, String> {
    let t = &peer.target;
    let folders: Vec<Req> =
        (0..20).map(|d| propfind(peer.path(&format!("sync/d{d:02}/")), "1")).collect();
    let payload = random_bytes(16384);
    let puts: Vec<Req> = (0..200)
        .map(|i| {
            Req::new("PUT", peer.path(&format!("sync/d{:02}/f{:03}.bin", i % 20, (i / 20) * 5)))
                .body(ReqBody::full(payload.clone()))
                .ok(PUT_OK)
        })
        .collect();
    let (folders, puts) = (Arc::new(folders), Arc::new(puts));
    let m = Meter::start(Some(peer.pid));
    let mut s = Samples::default();
    let mut conn = client::Conn::new(t.clone());
    s.timed(&mut conn, &propfind(peer.root.clone(), "0")).await;
    drop(conn);
    s.merge(client::pool(t, 6, folders).await);
    s.merge(client::pool(t, 6, puts).await);
    let cpu = m.stop();
    Ok(Run::new("mixed-sync", peer, round, s, cpu, Some(200 * 16384)))
}

/// The driver's ceiling: GET of a 4 KiB static file for `secs`, 8 concurrent.
pub async fn ceiling(peer: &Peer, path: &str, round: usize, secs: f64) -> Result<Run, String> {
    let req = Req::new("GET", path).expect_len(4096);
    let m = Meter::start(Some(peer.pid));
    let s = client::for_duration(&peer.target, 8, secs, req).await;
    let cpu = m.stop();
    Ok(Run::new("ceiling", peer, round, s, cpu, None))
}

/// put-small at high concurrency while the server's resident memory is
/// sampled every 5 ms; returns the run and the peak RSS in KiB of the
/// server's process tree.
pub async fn put_small_memory(peer: &Peer, conc: usize) -> Result<(Run, u64), String> {
    let pid = peer.pid;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let sampler = tokio::task::spawn_blocking(move || {
        let mut peak = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(crate::measure::tree_rss_kib(pid));
            std::thread::sleep(Duration::from_millis(5));
        }
        peak.max(crate::measure::tree_rss_kib(pid))
    });
    let run = put_small(peer, 0, conc, &format!("mem{conc}-")).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.map_err(|e| e.to_string())?;
    Ok((run?, peak))
}
