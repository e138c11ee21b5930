//! The database becoming unreachable gives 503, and the server recovers when
//! it comes back. The test puts a TCP relay between server and database and
//! cuts it. A blob store with no room left gives 507 and keeps nothing; so
//! does a database whose disk is full.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::harness::{ADMIN_PASSWORD, Backend, Server, TestDb, backends, free_port, text};

/// Forwards a local port to the database; `cut` drops the listener and every
/// relayed connection, `restore` listens again on the same port.
struct Relay {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let mut r = Relay { port: free_port(), target, tasks: Arc::default(), acceptor: None };
        r.restore().await;
        r
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(t);
            }
        }));
    }

    fn cut(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

fn host_port(url: &str) -> String {
    let after = url.split("://").nth(1).unwrap();
    let authority = after.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap().to_owned()
}

#[tokio::test]
async fn database_outage_gives_503_and_the_server_recovers() {
    let networked: Vec<Backend> =
        backends().into_iter().filter(|b| *b != Backend::Sqlite).collect();
    if networked.is_empty() {
        eprintln!(
            "no networked database configured (STRONGROOM_TEST_POSTGRES / STRONGROOM_TEST_MYSQL): nothing to cut"
        );
    }
    for b in networked {
        let var = if b == Backend::Postgres {
            "STRONGROOM_TEST_POSTGRES"
        } else {
            "STRONGROOM_TEST_MYSQL"
        };
        let admin_url = std::env::var(var).unwrap();
        let mut relay = Relay::start(host_port(&admin_url)).await;
        let via_relay =
            admin_url.replacen(&host_port(&admin_url), &format!("127.0.0.1:{}", relay.port), 1);
        let db = TestDb::create_at(b, Some(via_relay)).await;
        let s = Server::start_on(db, &[]).await;
        assert_eq!(s.admin("PUT", "/before.txt").body("kept").send().await.unwrap().status(), 201);

        relay.cut();
        for (m, p) in [("GET", "/before.txt"), ("PROPFIND", "/"), ("PUT", "/during.txt")] {
            let r = s.admin(m, p).timeout(Duration::from_secs(30)).body("x").send().await.unwrap();
            assert_eq!(r.status(), 503, "{b:?} {m} {p} while the database is away");
        }

        relay.restore().await;
        let mut recovered = false;
        for _ in 0..60 {
            let r = s.admin("GET", "/before.txt").send().await.unwrap();
            if r.status() == 200 {
                assert_eq!(r.text().await.unwrap(), "kept");
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(recovered, "{b:?}: the server did not recover");
        assert_eq!(s.admin("PUT", "/after.txt").body("new").send().await.unwrap().status(), 201);
        assert_eq!(s.admin("GET", "/during.txt").send().await.unwrap().status(), 404);
        s.stop().await;
        relay.cut();
    }
}

/// Room runs out during an upload: here the server process's file-size
/// limit (`prlimit`), which fails a write with EFBIG as a full disk fails it
/// with ENOSPC. The upload gets 507, leaves no partial file and no entry,
/// and uploads that fit go on working.
#[tokio::test]
async fn an_upload_without_room_gets_507_and_leaves_nothing() {
    let s = Server::start(Backend::Sqlite).await;
    let limit = format!("--fsize={}", 24 * 1024 * 1024);
    let pid = s.pid().to_string();
    let out = std::process::Command::new("prlimit").args(["--pid", &pid, &limit]).output().unwrap();
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
    let big = vec![7u8; 32 * 1024 * 1024];
    let (code, body) = text(s.admin("PUT", "/big.bin").body(big).send().await.unwrap()).await;
    assert_eq!(code, 507, "{body}");
    assert!(!body.contains("os error") && !body.contains("blobs"), "internals: {body}");
    let tmp = s.data_dir.join("blobs").join(".tmp");
    let partial =
        || -> Vec<_> { std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect() };
    assert!(partial().is_empty(), "partial files: {:?}", partial());
    assert_eq!(s.admin("GET", "/big.bin").send().await.unwrap().status(), 404);
    // The same for chunks that fit, assembled into a file that does not.
    let uploads = format!("{}/remote.php/dav/uploads/admin/big", s.base);
    let upload = |method: &str, path: &str| {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        s.client.request(m, format!("{uploads}{path}")).basic_auth("admin", Some(ADMIN_PASSWORD))
    };
    assert_eq!(upload("MKCOL", "").send().await.unwrap().status(), 201);
    for n in 1..=3 {
        let chunk = upload("PUT", &format!("/{n:05}")).body(vec![n as u8; 12 * 1024 * 1024]);
        assert_eq!(chunk.send().await.unwrap().status(), 201);
    }
    let dest = format!("{}/remote.php/dav/files/admin/assembled.bin", s.base);
    let assemble = upload("MOVE", "/.file").header("Destination", dest);
    let (code, body) = text(assemble.send().await.unwrap()).await;
    assert_eq!(code, 507, "{body}");
    assert!(partial().is_empty(), "partial files after assembling: {:?}", partial());
    assert_eq!(s.admin("GET", "/assembled.bin").send().await.unwrap().status(), 404);
    let fits = vec![8u8; 8 * 1024 * 1024];
    assert_eq!(s.admin("PUT", "/fits.bin").body(fits).send().await.unwrap().status(), 201);
    assert_eq!(s.admin("PUT", "/small.txt").body("x").send().await.unwrap().status(), 201);
    let r = s.admin("GET", "/fits.bin").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 8 * 1024 * 1024);
    s.stop().await;
}

/// The admin's request for a public link to `path` (the sharing API).
fn link_share(s: &Server, path: &str) -> reqwest::RequestBuilder {
    s.client
        .post(s.url("/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("OCS-APIRequest", "true")
        .form(&[("path", path), ("shareType", "3")])
}

/// A small filesystem of its own (tmpfs), mounted for one test and
/// unmounted when dropped. Mounting needs root, which CI has.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = crate::harness::temp_dir("small-disk");
        let options = format!("size={size},mode=0700");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir)
    }

    /// Fills what room is left with one file, returned for removal.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        // The last partial block.
        while f.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The disk under an SQLite database fills up: a write that needs room gets
/// 507 (not 503: waiting does not make room), keeps nothing, and every
/// upload acknowledged before is there after a restart once room is made.
#[tokio::test]
async fn a_full_disk_under_the_database_gives_507_and_loses_nothing_acknowledged() {
    let disk = SmallDisk::mount("8m");
    let url = format!("sqlite://{}", disk.0.join("strongroom.db").display());
    let env =
        [("STRONGROOM_DATABASE_URL", url.as_str()), ("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1")];
    let mut s = Server::start_with(Backend::Sqlite, &env).await;
    assert_eq!(s.admin("PUT", "/before.txt").body("kept").send().await.unwrap().status(), 201);
    s.add_user("dana", "Dana-Pass-5512");
    let token = s.app_password("dana", "Dana-Pass-5512").await;
    let filler = disk.fill();
    // Reads go on: an app password used from a new address (a use that
    // cannot be recorded now) still reads.
    let read = s.dav("PROPFIND", "dana", &token, "/").header("Depth", "0");
    let read = read.header("X-Forwarded-For", "192.0.2.9").send().await.unwrap();
    assert_eq!(read.status(), 207);

    // Files kept in the database itself (under 64 KiB), so each needs WAL
    // room; the WAL may have room left from before, so go on until one fails.
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let name = format!("/f{i}.bin");
        let content = vec![(i % 250) as u8 + 1; 60 * 1024];
        let (code, body) = text(s.admin("PUT", &name).body(content).send().await.unwrap()).await;
        match code {
            201 | 204 => acknowledged.push(i),
            507 => {
                assert!(!body.contains("sqlite") && !body.contains(".db"), "internals: {body}");
                refused = Some(name);
                break;
            }
            other => panic!("PUT {name} on a full disk: {other} {body}"),
        }
    }
    let refused = refused.expect("a full disk refused no write");
    assert_eq!(s.admin("GET", &refused).send().await.unwrap().status(), 404);
    // The sharing API says what WebDAV says (each share that still fits in
    // what the failed writes left allocated is made).
    let share = || link_share(&s, "/before.txt").send();
    let mut codes = Vec::new();
    while codes.len() < 50 && codes.last() != Some(&507) {
        codes.push(share().await.unwrap().status().as_u16());
    }
    assert!(codes.ends_with(&[507]) && codes.iter().all(|c| [200, 507].contains(c)), "{codes:?}");
    // A password check counts its attempt first; when it cannot, the check
    // does not run: 507 (never 503, never a pass). The count may still fit.
    let wrong = s.dav("PROPFIND", "dana", "Dana-Pass-0000", "/").header("Depth", "0");
    let code = wrong.send().await.unwrap().status().as_u16();
    assert!(code == 507 || code == 401, "{code}");
    assert_eq!(s.admin("GET", "/before.txt").send().await.unwrap().status(), 200);
    std::fs::remove_file(filler).unwrap();
    assert_eq!(s.admin("PUT", &refused).body("now").send().await.unwrap().status(), 201);
    s.restart().await;
    for i in acknowledged {
        let r = s.admin("GET", &format!("/f{i}.bin")).send().await.unwrap();
        assert_eq!(r.status(), 200, "f{i}.bin");
        assert_eq!(r.bytes().await.unwrap().to_vec(), vec![(i % 250) as u8 + 1; 60 * 1024]);
    }
    let (code, body) = text(s.admin("GET", &refused).send().await.unwrap()).await;
    assert_eq!((code, body.as_str()), (200, "now"));
    s.stop().await;
    drop(disk);
}

/// The disk under the audit log fills up: records that do not fit are
/// logged as lost (the operations themselves go on), and none is left half
/// written, so once there is room again the log still verifies.
#[tokio::test]
async fn an_audit_record_without_room_is_not_left_half_written() {
    let disk = SmallDisk::mount("1m");
    let audit = disk.0.join("audit.log");
    let audit_env = audit.to_str().unwrap();
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_AUDIT_PATH", audit_env)]).await;
    assert_eq!(s.admin("PUT", "/shared.txt").body("x").send().await.unwrap().status(), 201);
    let share = || link_share(&s, "/shared.txt").send();
    assert_eq!(share().await.unwrap().status(), 200);
    let filler = disk.fill();
    // Records go on filling the log's last page until one does not fit.
    for _ in 0..40 {
        assert_eq!(share().await.unwrap().status(), 200);
    }
    assert!(s.log().contains("audit event could not be written"), "{}", s.log());
    std::fs::remove_file(filler).unwrap();
    assert_eq!(share().await.unwrap().status(), 200);
    let out = s.command().args(["audit", "verify"]).output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().last().unwrap().contains("share.created"),
        "{text}"
    );
    s.stop().await;
    drop(disk);
}
