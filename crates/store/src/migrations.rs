//! Schema migrations, written once and specialised per dialect.
//!
//! Each migration is a list of statements with a few type placeholders
//! (`{id}`, `{text}`, `{name}` for names compared byte for byte, `{bytes}`,
//! `{opts}`)
//! that differ between SQLite, PostgreSQL and MySQL/MariaDB. Applied versions are recorded in `sr_migrations`.

use crate::{Db, DbError, Dialect, Val};

/// Every migration, in order. Never edit one that has shipped: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_clients.sql")),
    (3, include_str!("migrations/0003_accounts.sql")),
    (4, include_str!("migrations/0004_encryption.sql")),
    (5, include_str!("migrations/0005_twofactor.sql")),
    (6, include_str!("migrations/0006_sharing.sql")),
    (7, include_str!("migrations/0007_inline_content.sql")),
    (8, include_str!("migrations/0008_age_indexes.sql")),
    (9, include_str!("migrations/0009_favorites.sql")),
];

fn specialise(sql: &str, d: Dialect) -> String {
    let (id, text, name, opts) = match d {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "VARCHAR(255)", ""),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "TEXT", "VARCHAR(255)", ""),
        Dialect::MySql => (
            "BIGINT AUTO_INCREMENT PRIMARY KEY",
            "MEDIUMTEXT",
            // File and property names compare byte for byte, trailing spaces
            // included, which MySQL's padded `_bin` collations do not do.
            "VARBINARY(1020)",
            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        ),
    };
    // Binary content up to a few MiB (MySQL's BLOB stops 1 byte short of 64 KiB).
    let bytes = match d {
        Dialect::Sqlite => "BLOB",
        Dialect::Postgres => "BYTEA",
        Dialect::MySql => "MEDIUMBLOB",
    };
    sql.replace("{id}", id)
        .replace("{text}", text)
        .replace("{name}", name)
        .replace("{bytes}", bytes)
        .replace("{opts}", opts)
}

impl Db {
    /// Applies every migration the database has not seen yet; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let create = specialise(
            "CREATE TABLE IF NOT EXISTS sr_migrations (version BIGINT NOT NULL PRIMARY KEY, \
             applied_at BIGINT NOT NULL) {opts}",
            self.dialect(),
        );
        self.exec_raw(create).await?;
        let done: Vec<i64> = self
            .rows("SELECT version FROM sr_migrations", &[])
            .await?
            .iter()
            .map(|r| r.i64(0))
            .collect::<Result<_, _>>()?;
        let mut ran = 0;
        for (version, sql) in MIGRATIONS {
            if done.contains(version) {
                continue;
            }
            // Comments go first: they may contain semicolons.
            let text = strip_comments(&specialise(sql, self.dialect()));
            for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                self.exec_raw(stmt.to_owned()).await?;
            }
            self.exec(
                "INSERT INTO sr_migrations (version, applied_at) VALUES (?, ?)",
                &[Val::I64(*version), Val::I64(now_secs())],
            )
            .await?;
            ran += 1;
        }
        Ok(ran)
    }
}

fn strip_comments(stmt: &str) -> String {
    stmt.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
