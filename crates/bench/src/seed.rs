//! Fills a fresh Strongroom SQLite database with the trees of other users, for
//! the scale variant of the PROPFIND workload.
//!
//! One transaction in the sqlite3 command-line shell: each table is filled by
//! one `INSERT … SELECT` over a recursive counter, in primary-key order, so
//! the B-trees grow at their right edge. Per user: a root, a hidden trash
//! root, `folders` folders and `files_per_folder` files in each, every file
//! with its own blob row, a plausible size, a SHA1 checksum and a random
//! 16-hex-digit ETag; folder and root sizes are the sums below them, as the
//! server keeps them.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

pub struct Shape {
    pub users: u64,
    pub folders: u64,
    pub files_per_folder: u64,
}

impl Shape {
    /// About `files` files: users of 10 folders of 100 files each.
    pub fn for_files(files: u64) -> Shape {
        Shape { users: files.div_ceil(1000).max(1), folders: 10, files_per_folder: 100 }
    }

    pub fn files(&self) -> u64 {
        self.users * self.folders * self.files_per_folder
    }
}

pub fn ensure_sqlite3() -> Result<(), String> {
    if Command::new("sqlite3").arg("-version").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    eprintln!("# installing sqlite3 with apt-get");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "sqlite3"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if ok { Ok(()) } else { Err("seeding needs the sqlite3 shell: apt-get install sqlite3".into()) }
}

/// The SQL that seeds `shape` into a migrated database.
pub fn sql(shape: &Shape, now: i64) -> String {
    let Shape { users: u, folders: f, files_per_folder: n } = *shape;
    // Nodes per user: root, trash root, folders, files.
    let per_user = 2 + f + f * n;
    let files = u * f * n;
    format!(
        r#"
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN IMMEDIATE;
CREATE TEMP TABLE base AS SELECT
  (SELECT COALESCE(MAX(id), 0) FROM users) AS u0,
  (SELECT COALESCE(MAX(id), 0) FROM nodes) AS n0,
  (SELECT COALESCE(MAX(id), 0) FROM blobs) AS b0;

-- Accounts without a password hash: nobody can log in as them.
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {u} - 1)
INSERT INTO users (id, uid, uid_lower, display_name, email, password_hash, enabled, quota, root_id, created_at, trash_root_id)
SELECT u0 + i + 1, printf('seed%07d', i), printf('seed%07d', i), printf('Seed User %d', i), printf('seed%07d@example.invalid', i),
       NULL, 1, -1, n0 + i * {per_user} + 1, {now} - 86400 * 400, n0 + i * {per_user} + 2
FROM c, base;

WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {files} - 1)
INSERT INTO blobs (id, blob_key, size, refs, created_at)
SELECT b0 + x + 1, lower(hex(randomblob(16))), 512 + (x * 2654435761) % 3000000, 1, {now} - (x * 7919) % 31536000
FROM c, base;

-- Slot s of user s / per_user: 0 root, 1 trash root, 2 .. 2+F folders, then files.
WITH RECURSIVE c(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM c WHERE s < {u} * {per_user} - 1),
k AS (SELECT s, s / {per_user} AS usr, s % {per_user} AS r FROM c),
slot AS (SELECT s, usr, r,
           CASE WHEN r >= 2 + {f} THEN usr * {f} * {n} + (r - 2 - {f}) ELSE NULL END AS x
         FROM k)
INSERT INTO nodes (id, owner_id, parent_id, name, kind, size, mtime, ctime, etag, blob_id, content_type, checksum)
SELECT n0 + s + 1,
       u0 + usr + 1,
       CASE WHEN r < 2 THEN NULL
            WHEN r < 2 + {f} THEN n0 + usr * {per_user} + 1
            ELSE n0 + usr * {per_user} + 3 + (r - 2 - {f}) / {n} END,
       CASE WHEN r < 2 THEN ''
            WHEN r < 2 + {f} THEN printf('Folder %02d', r - 2)
            ELSE printf('document-%04d.%s', (r - 2 - {f}) % {n},
                        CASE x % 5 WHEN 0 THEN 'pdf' WHEN 1 THEN 'jpg' WHEN 2 THEN 'docx' WHEN 3 THEN 'txt' ELSE 'png' END) END,
       CASE WHEN r < 2 + {f} THEN 1 ELSE 2 END,
       CASE WHEN x IS NULL THEN 0 ELSE 512 + (x * 2654435761) % 3000000 END,
       {now} - COALESCE((x * 7919) % 31536000, 0),
       {now} - COALESCE((x * 7919) % 31536000, 0),
       lower(hex(randomblob(8))),
       CASE WHEN x IS NULL THEN NULL ELSE b0 + x + 1 END,
       CASE WHEN x IS NULL THEN NULL ELSE
            CASE x % 5 WHEN 0 THEN 'application/pdf' WHEN 1 THEN 'image/jpeg'
                 WHEN 2 THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                 WHEN 3 THEN 'text/plain' ELSE 'image/png' END END,
       CASE WHEN x IS NULL THEN NULL ELSE 'SHA1:' || lower(hex(randomblob(20))) END
FROM slot, base;

-- Folder sizes are the sums of their files, root sizes the sums of their folders.
UPDATE nodes SET size = t.total
FROM (SELECT parent_id, SUM(size) AS total FROM nodes, base WHERE id > n0 AND kind = 2 GROUP BY parent_id) AS t
WHERE nodes.id = t.parent_id;
UPDATE nodes SET size = t.total
FROM (SELECT parent_id, SUM(size) AS total FROM nodes, base WHERE id > n0 AND kind = 1 AND parent_id IS NOT NULL GROUP BY parent_id) AS t
WHERE nodes.id = t.parent_id;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SELECT (SELECT COUNT(*) FROM users) || ' users, ' || (SELECT COUNT(*) FROM nodes WHERE kind = 2) || ' files, '
    || (SELECT COUNT(*) FROM nodes WHERE kind = 1) || ' folders, ' || (SELECT COUNT(*) FROM blobs) || ' blobs';
"#
    )
}

/// Seeds the database file `db` (already migrated, server not running).
/// Returns a one-line summary.
pub fn seed(db: &Path, shape: &Shape) -> Result<String, String> {
    ensure_sqlite3()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let t = Instant::now();
    let mut child = Command::new("sqlite3")
        .args(["-batch", "-bail"])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("sqlite3: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(sql(shape, now).as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("seeding failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or("").to_owned();
    Ok(format!("{summary} in the database after {:.1} s of seeding", t.elapsed().as_secs_f64()))
}
