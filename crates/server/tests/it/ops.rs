//! Operating the server: first start, admin command line, configuration
//! errors, and what the logs may and may not contain.

use std::process::{Command, Stdio};
use std::{io::Write, time::Duration};

use crate::harness::{
    ADMIN_PASSWORD, Backend, Server, backends, bin, free_port, temp_dir, write_secret,
};

#[tokio::test]
async fn first_start_prints_a_generated_admin_password_once() {
    let dir = temp_dir("first");
    let port = free_port();
    let run = || {
        let mut child = Command::new(bin())
            .args([
                "--data-dir",
                dir.to_str().unwrap(),
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run();
    let line =
        stdout.lines().find(|l| l.contains("password")).expect("password shown on first start");
    let password = line.rsplit(' ').next().unwrap().to_owned();
    assert!(password.len() >= 20, "{line}");
    assert!(!stderr.contains(&password), "the password reached the log");
    // It works, and a second start does not show it again.
    let (stdout2, stderr2) = run();
    assert!(!stdout2.contains(&password) && !stderr2.contains(&password));
    assert!(!stdout2.contains("password"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn admin_command_line_manages_users_and_groups() {
    for b in backends() {
        let s = Server::start(b).await;
        let cli = |args: &[&str]| {
            let out = s.command().args(args).output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        // The password comes from standard input, never from the command line.
        let mut child = s
            .command()
            .args(["user", "add", "dora", "--display-name", "Dora D"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"dora-password-1\n").unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            s.dav("PROPFIND", "dora", "dora-password-1", "/")
                .header("Depth", "0")
                .send()
                .await
                .unwrap()
                .status(),
            207,
            "{b:?}"
        );

        let (ok, out) = cli(&["user", "add", "DORA", "--password-file", "/dev/null"]);
        assert!(!ok, "empty password file accepted: {out}");
        let pwfile = s.data_dir.with_extension("d2");
        write_secret(&pwfile, "another-password-2");
        let (ok, out) = cli(&["user", "add", "DORA", "--password-file", pwfile.to_str().unwrap()]);
        assert!(!ok && out.contains("already exists"), "case-insensitive duplicate: {out}");
        write_secret(&pwfile, "short");
        let (ok, out) = cli(&["user", "add", "eve", "--password-file", pwfile.to_str().unwrap()]);
        assert!(!ok && out.contains("at least 10"), "{out}");
        let (ok, out) = cli(&["user", "add", "bad/name", "--password-file", "/dev/null"]);
        assert!(!ok, "{out}");
        std::fs::write(s.data_dir.with_extension("open"), "a-readable-password").unwrap();
        let open = s.data_dir.with_extension("open");
        let (ok, out) = cli(&["user", "add", "gus", "--password-file", open.to_str().unwrap()]);
        assert!(!ok && out.contains("chmod 600"), "a password file others can read: {out}");
        // Refused before the installation is opened: a new data folder stays empty.
        let fresh = temp_dir("refused");
        let refused = Command::new(bin())
            .arg("--data-dir")
            .arg(&fresh)
            .args(["user", "add", "gus", "--password-file", open.to_str().unwrap()])
            .env_remove("STRONGROOM_DATABASE_URL")
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let left: Vec<_> = std::fs::read_dir(&fresh).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(left.is_empty(), "a refused command created {left:?}");
        let _ = std::fs::remove_dir_all(&fresh);

        let (ok, out) = cli(&["user", "list"]);
        assert!(ok && out.contains("dora\tDora D\tenabled") && out.contains("admin"), "{out}");
        assert!(cli(&["user", "disable", "dora"]).0);
        assert_eq!(
            s.dav("PROPFIND", "dora", "dora-password-1", "/").send().await.unwrap().status(),
            401
        );
        assert!(cli(&["user", "enable", "dora"]).0);
        write_secret(&pwfile, "dora-password-new");
        assert!(cli(&["user", "passwd", "dora", "--password-file", pwfile.to_str().unwrap()]).0);
        assert_eq!(
            s.dav("PROPFIND", "dora", "dora-password-1", "/").send().await.unwrap().status(),
            401
        );
        assert_eq!(
            s.dav("PROPFIND", "dora", "dora-password-new", "/")
                .header("Depth", "0")
                .send()
                .await
                .unwrap()
                .status(),
            207
        );

        assert!(cli(&["group", "add", "staff"]).0);
        assert!(cli(&["group", "adduser", "staff", "dora"]).0);
        let (_, out) = cli(&["group", "list"]);
        assert!(out.contains("staff\tdora"), "{out}");
        assert!(out.contains("admin\tadmin"), "{out}");
        assert!(cli(&["group", "removeuser", "staff", "dora"]).0);
        let (ok, out) = cli(&["group", "removeuser", "staff", "dora"]);
        assert!(!ok && out.contains("no such"), "{out}");
        assert!(cli(&["group", "delete", "staff"]).0);
        assert!(!cli(&["group", "add", "admin"]).0);

        assert_eq!(
            s.dav("PUT", "dora", "dora-password-new", "/f")
                .body("x")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        assert!(cli(&["user", "delete", "dora", "--yes"]).0);
        assert_eq!(
            s.dav("PROPFIND", "dora", "dora-password-new", "/").send().await.unwrap().status(),
            401
        );
        let (ok, out) = cli(&["user", "delete", "dora", "--yes"]);
        assert!(!ok && out.contains("no such user"), "{out}");
        let (ok, out) = cli(&["db", "migrate"]);
        assert!(ok && out.contains("0 migrations"), "{out}");
        s.stop().await;
    }
}

#[tokio::test]
async fn configuration_errors_name_the_key() {
    let dir = temp_dir("cfg");
    let cases = [
        ("listen = \"everywhere\"", "`listen`"),
        ("[database]\nurl = \"oracle://x\"", "database.url"),
        ("[database]\nmax_connections = \"lots\"", "max_connections"),
        ("[storage]\nkind = \"tape\"", "kind"),
        ("[log]\nformat = \"yaml\"", "log.format"),
        // A bare word is a target filter to tracing: a misspelt level
        // would silence every line.
        ("[log]\nlevel = \"inf\"", "log.level"),
        ("[log]\nlevel = \"warn,strongroom=infoo\"", "log.level"),
    ];
    for (text, key) in cases {
        let f = dir.join("c.toml");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(bin())
            .args(["--config", f.to_str().unwrap(), "--data-dir", dir.to_str().unwrap(), "serve"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{text}: {err}");
    }
    let out = Command::new(bin())
        .env("STRONGROOM_DATABASE_MAX_CONNECTIONS", "x")
        .args(["--data-dir", dir.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("STRONGROOM_DATABASE_MAX_CONNECTIONS"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn logs_have_one_line_per_request_and_never_a_secret() {
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_LOG_FORMAT", "json")]).await;
    s.add_user("frank", "frank-secret-password");
    let body = "top secret file content 7f3a";
    let r = s
        .dav("PUT", "frank", "frank-secret-password", "/f.txt")
        .header("X-Request-ID", "abc-123")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    assert_eq!(
        s.dav("GET", "frank", "wrong-guess-password", "/f.txt").send().await.unwrap().status(),
        401
    );
    assert_eq!(
        s.dav("GET", "frank", "frank-secret-password", "/f.txt").send().await.unwrap().status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = s.log();
    for secret in ["frank-secret-password", "wrong-guess-password", ADMIN_PASSWORD, body] {
        assert!(!log.contains(secret), "{secret:?} found in the log");
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("every log line is one JSON object"))
        .collect();
    let put = lines.iter().find(|l| l["method"] == "PUT").expect("access line for the PUT");
    assert_eq!(put["status"], 201);
    assert_eq!(put["path"], "/remote.php/dav/files/frank/f.txt");
    assert_eq!(put["span"]["id"], "abc-123");
    assert_eq!(put["span"]["user"], "frank");
    assert!(put["ms"].is_string());
    s.stop().await;
}

/// The first start hashes the generated admin password (Argon2id, 19 MiB);
/// the server restarts itself with glibc's mmap threshold fixed so that
/// memory goes back to the system instead of staying in an arena.
#[tokio::test]
async fn the_first_start_gives_the_password_hash_memory_back() {
    let anon_kib = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap().to_owned();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    for operator_setting in [None, Some("glibc.malloc.check=0")] {
        let dir = temp_dir("tunables");
        let port = free_port();
        let mut cmd = Command::new(bin());
        cmd.args(["--data-dir", dir.to_str().unwrap(), "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(s) = operator_setting {
            cmd.env("GLIBC_TUNABLES", s);
        }
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
        let environ = String::from_utf8_lossy(&environ).into_owned();
        let anon = anon_kib(child.id());
        let name = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        match operator_setting {
            None => {
                let set = "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:\
                           glibc.malloc.trim_threshold=4194304:glibc.malloc.tcache_count=128";
                // glibc 2.36 splits the variable where it stands in memory,
                // writing a NUL over each ':', so it may read back as two entries.
                let split = set.replace(':', "\0");
                assert!(environ.contains(set) || environ.contains(&split), "{environ:?}");
                // Re-executed as /proc/self/exe, it would be named "exe".
                assert_eq!(name.trim_end(), "strongroom");
                // Without the setting the hash's 19 MiB stayed (about 21 MiB anonymous).
                assert!(anon < 12 * 1024, "{anon} KiB anonymous memory after the first start");
            }
            Some(s) => assert!(environ.contains(&format!("GLIBC_TUNABLES={s}")), "kept"),
        }
    }
    // Started through the dynamic loader, the binary must not re-execute the
    // loader with its own arguments.
    let loader = std::path::Path::new("/lib64/ld-linux-x86-64.so.2");
    if loader.exists() {
        let out = Command::new(loader).arg(bin()).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("strongroom"), "{text}");
    }
}

/// `strongroom user list | head -0`: a reader that leaves before the output
/// is written ends the command quietly (it once panicked, exit 101).
#[tokio::test]
async fn output_into_a_closed_pipe_is_no_panic() {
    let s = Server::start(Backend::Sqlite).await;
    for _ in 0..5 {
        let mut child = s
            .command()
            .args(["user", "list"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("panicked"), "{:?}: {stderr}", out.status);
    }
    s.stop().await;
}

/// SIGTERM stops the server without cutting short the request it is
/// serving: an upload under way completes, is acknowledged and is there
/// after a restart.
#[tokio::test]
async fn sigterm_lets_the_upload_in_flight_finish() {
    let mut s = Server::start(Backend::Sqlite).await;
    let parts: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 50_000]).collect();
    let content: Vec<u8> = parts.concat();
    let stream = futures_util::StreamExt::then(futures_util::stream::iter(parts), |p| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(p)
    });
    let upload = s.admin("PUT", "/slow.bin").body(reqwest::Body::wrap_stream(stream)).send();
    let upload = tokio::spawn(upload);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = s.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let r = upload.await.unwrap().unwrap();
    assert_eq!(r.status(), 201);
    s.restart().await;
    let r = s.admin("GET", "/slow.bin").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), content);
    s.stop().await;
}

/// Whether a child process has ended (a zombie until the harness reaps it).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// A client that stalls in the middle of an upload does not hold a stopping
/// server up for ever: the server waits for it (up to its drain limit), a
/// second SIGTERM stops it at once, and the upload it cut short left nothing.
#[tokio::test]
async fn a_second_sigterm_stops_the_server_despite_a_stalled_upload() {
    let mut s = Server::start(Backend::Sqlite).await;
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(vec![1u8; 10_000])]);
    let stalled = futures_util::StreamExt::chain(first, futures_util::stream::pending());
    let upload = s.admin("PUT", "/stalled.bin").body(reqwest::Body::wrap_stream(stalled)).send();
    let upload = tokio::spawn(upload);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = s.pid();
    let term = || Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(term().success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!ended(pid), "the server did not wait for the request in flight");
    assert!(term().success());
    let mut waited = 0;
    while !ended(pid) && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(ended(pid), "a second SIGTERM did not stop the server:\n{}", s.log());
    let cut = upload.await.unwrap();
    assert!(cut.is_err() || !cut.unwrap().status().is_success());
    s.restart().await;
    assert_eq!(s.admin("GET", "/stalled.bin").send().await.unwrap().status(), 404);
    let tmp = s.data_dir.join("blobs").join(".tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
    s.stop().await;
}
