//! Store-wide conversions for encryption at rest: encrypting or decrypting
//! every blob, and re-wrapping data keys under a new master key.
//!
//! Every step handles one blob row and commits on its own, so a conversion
//! that is interrupted (a crash, Ctrl-C) loses nothing and continues where it
//! stopped when run again: the rows still in the old form are simply found
//! again. The server keeps serving meanwhile. A converted blob gets a new
//! storage key and the row is switched to it in one statement; all nodes,
//! versions and chunks refer to the row, so they follow. The replaced file
//! is only deleted after a grace period (`blob_garbage`), because downloads
//! that started before the switch may still be reading it.

use futures_util::StreamExt;
use strongroom_store::{BlobKey, BlobStore, Dialect, Row, Val, crypt::Seal};

use super::Files;
use crate::{
    error::{Error, Result},
    util::now_secs,
};

/// How much content is in which form.
#[derive(Debug, Default, Clone)]
pub struct BlobCounts {
    pub plain_blobs: i64,
    pub plain_bytes: i64,
    /// (master key id, blobs, bytes) for encrypted content.
    pub sealed: Vec<(String, i64, i64)>,
}

/// What one batch of a conversion did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch {
    /// Rows found still in the old form; 0 means the conversion is complete.
    pub found: usize,
    /// Rows converted (the others changed or vanished meanwhile).
    pub converted: usize,
    pub bytes: i64,
}

/// A blob row as the conversions see it.
struct BlobRow {
    id: i64,
    key: String,
    size: i64,
    seal: Option<Seal>,
}

impl BlobRow {
    fn from_row(r: &Row) -> Result<BlobRow> {
        Ok(BlobRow {
            id: r.i64(0)?,
            key: r.str(1)?,
            size: r.i64(2)?,
            seal: Seal::from_columns(r.opt_str(3)?, r.opt_str(4)?),
        })
    }
}

/// An unfinished conversion leaves its new blob here; a day is plenty.
const ABANDONED_AFTER: i64 = 86_400;

impl Files {
    pub fn blob_store(&self) -> &BlobStore {
        &self.blobs
    }

    /// Blobs and bytes in plaintext and per master key (blobs with content only).
    pub async fn blob_counts(&self) -> Result<BlobCounts> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL and DECIMAL on MySQL.
        let sum = match self.db.dialect() {
            Dialect::Sqlite => "SUM(size)",
            Dialect::Postgres => "CAST(SUM(size) AS BIGINT)",
            Dialect::MySql => "CAST(SUM(size) AS SIGNED)",
        };
        let sql =
            format!("SELECT kek_id, COUNT(*), {sum} FROM blobs WHERE size > 0 GROUP BY kek_id");
        let rows = self.db.rows(&sql, &[]).await?;
        let mut counts = BlobCounts::default();
        for r in rows {
            let (n, bytes) = (r.i64(1)?, r.opt_i64(2)?.unwrap_or(0));
            match r.opt_str(0)? {
                None => (counts.plain_blobs, counts.plain_bytes) = (n, bytes),
                Some(k) => counts.sealed.push((k, n, bytes)),
            }
        }
        counts.sealed.sort();
        Ok(counts)
    }

    /// Converts up to `batch` blobs that are not yet in the target form:
    /// sealed with `master` (`Some`) or plaintext (`None`). Returns the number
    /// `grace_secs` is how long the replaced files stay for running downloads.
    pub async fn convert_batch(
        &self,
        master: Option<&str>,
        batch: usize,
        grace_secs: i64,
    ) -> Result<Batch> {
        let cols = "id, blob_key, size, kek_id, wrapped_key";
        let rows = match master {
            // Blobs under another master key stay as they are: rotation, not
            // conversion, moves them.
            Some(_) => {
                let sql = format!(
                    "SELECT {cols} FROM blobs WHERE size > 0 AND kek_id IS NULL LIMIT {batch}"
                );
                self.db.rows(&sql, &[]).await?
            }
            None => {
                let sql = format!(
                    "SELECT {cols} FROM blobs WHERE size > 0 AND kek_id IS NOT NULL LIMIT {batch}"
                );
                self.db.rows(&sql, &[]).await?
            }
        };
        let mut b = Batch { found: rows.len(), ..Batch::default() };
        for r in &rows {
            let row = BlobRow::from_row(r)?;
            if self.convert_one(&row, master, grace_secs).await? {
                b.converted += 1;
                b.bytes += row.size;
            }
        }
        Ok(b)
    }

    /// Rewrites one blob in the target form; `false` when the row changed or
    /// disappeared meanwhile (nothing to do then).
    async fn convert_one(&self, row: &BlobRow, master: Option<&str>, grace: i64) -> Result<bool> {
        let old = BlobKey::parse(&row.key).ok_or_else(|| Error::Internal("bad blob key".into()))?;
        let mut writer = self.blobs.create_with(master).await?;
        let new_key = writer.key().as_str().to_owned();
        // Recorded first, so a crash before the switch leaves nothing behind for good.
        self.db
            .exec(
                "INSERT INTO blob_garbage (blob_key, delete_after) VALUES (?, ?)",
                &[new_key.as_str().into(), (now_secs() + ABANDONED_AFTER).into()],
            )
            .await?;
        let size = row.size as u64;
        let copied = async {
            let mut stream = self.blob_stream(&old, row.seal.as_ref(), size, 0..size).await?;
            while let Some(part) = stream.next().await {
                let part = part.map_err(|e| Error::Internal(format!("blob {}: {e}", row.key)))?;
                writer.write(part).await?;
            }
            Ok::<_, Error>(writer.finish().await?)
        }
        .await;
        let stored = match copied {
            Ok(s) => s,
            Err(e) => {
                // A blob deleted while we read it is no longer our business.
                if self
                    .db
                    .row(
                        "SELECT id FROM blobs WHERE id = ? AND blob_key = ?",
                        &[row.id.into(), row.key.as_str().into()],
                    )
                    .await?
                    .is_none()
                {
                    return Ok(false);
                }
                return Err(e);
            }
        };
        let mut tx = self.db.begin().await?;
        let (kek, wrapped) = match self.blobs.seal_for_commit(&stored)? {
            Some(s) => (Some(s.master.clone()), Some(s.wrapped_hex())),
            None => (None, None),
        };
        let switched = tx
            .exec(
                "UPDATE blobs SET blob_key = ?, kek_id = ?, wrapped_key = ?, content = ? WHERE id = ? AND blob_key = ?",
                &[new_key.as_str().into(), kek.into(), wrapped.into(), stored.inline.clone().into(), row.id.into(), row.key.as_str().into()],
            )
            .await?;
        let now = now_secs();
        if switched == 1 {
            tx.exec("DELETE FROM blob_garbage WHERE blob_key = ?", &[new_key.as_str().into()])
                .await?;
            tx.exec(
                "INSERT INTO blob_garbage (blob_key, delete_after) VALUES (?, ?)",
                &[row.key.as_str().into(), (now + grace).into()],
            )
            .await?;
        } else {
            tx.exec(
                "UPDATE blob_garbage SET delete_after = ? WHERE blob_key = ?",
                &[now.into(), new_key.as_str().into()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(switched == 1)
    }

    /// Re-wraps the data keys of up to `batch` blobs that are sealed with
    /// another master key than `master`. The content is not touched. Returns
    /// how many were re-wrapped; 0 means none is left.
    pub async fn rewrap_batch(&self, master: &str, batch: usize) -> Result<usize> {
        let enc = self
            .blobs
            .encryption()
            .ok_or_else(|| Error::Internal("no key provider is configured".into()))?;
        let sql = format!(
            "SELECT id, blob_key, size, kek_id, wrapped_key FROM blobs \
             WHERE kek_id IS NOT NULL AND kek_id <> ? LIMIT {batch}"
        );
        let rows = self.db.rows(&sql, &[master.into()]).await?;
        let mut done = 0;
        for r in &rows {
            let row = BlobRow::from_row(r)?;
            let Some(seal) = &row.seal else { continue };
            let new = enc
                .rewrap(seal, &row.key, master)
                .map_err(|e| Error::Internal(format!("blob {}: {e}", row.key)))?;
            done += self
                .db
                .exec(
                    "UPDATE blobs SET kek_id = ?, wrapped_key = ? WHERE id = ? AND kek_id = ? AND wrapped_key = ?",
                    &[
                        new.master.as_str().into(),
                        new.wrapped_hex().into(),
                        row.id.into(),
                        seal.master.as_str().into(),
                        seal.wrapped_hex().into(),
                    ],
                )
                .await? as usize;
        }
        Ok(done)
    }

    /// How many blob rows still refer to master key `master`.
    pub async fn master_key_refs(&self, master: &str) -> Result<i64> {
        let row =
            self.db.row("SELECT COUNT(*) FROM blobs WHERE kek_id = ?", &[master.into()]).await?;
        Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0))
    }

    /// Deletes the files of replaced or abandoned blobs whose grace has passed.
    pub async fn purge_blob_garbage(&self, now: i64) -> Result<usize> {
        let rows = self
            .db
            .rows("SELECT blob_key FROM blob_garbage WHERE delete_after <= ?", &[Val::I64(now)])
            .await?;
        let mut n = 0;
        for r in rows {
            let k = r.str(0)?;
            if let Some(key) = BlobKey::parse(&k) {
                match self.blobs.delete(&key).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(blob = %k, error = %e, "could not delete a replaced blob");
                        continue;
                    }
                }
            }
            self.db.exec("DELETE FROM blob_garbage WHERE blob_key = ?", &[k.into()]).await?;
            n += 1;
        }
        Ok(n)
    }
}
