//! Chunked uploads (Nextcloud's chunking v2 and the desktop client's variant):
//! chunks are stored as blobs of their own, and the final MOVE streams them in
//! numeric order into one new blob, which is then committed like a PUT.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use strongroom_store::{BlobError, BlobKey, Conn, Row, StoredBlob, Tx, Val, crypt::Seal};

use super::{Ctx, Files, PutOptions, PutOutcome, tree::unref_blobs, write::Staged};
use crate::{
    access::Op,
    checksum::Hasher,
    error::{Error, Result},
    path::{TreePath, check_name, check_new_name},
    util::now_secs,
};

/// An upload in progress.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: i64,
    pub name: String,
    /// The target URL given at MKCOL (chunking v2), to be matched by later requests.
    pub destination: Option<String>,
    pub total_length: Option<i64>,
    pub created_at: i64,
    pub touched_at: i64,
}

/// A stored chunk.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub name: String,
    pub size: i64,
    blob_key: String,
    blob_seal: Option<strongroom_store::crypt::Seal>,
}

/// An assembly whose mark is older than this is taken to have died with its
/// server (seconds): a server killed while assembling left the upload
/// refused (423) for an hour before. A running assembly renews its mark
/// every [`ASSEMBLY_RENEWAL`] (`keep_claim`), however long it takes.
const ASSEMBLY_STALE: i64 = 60;
const ASSEMBLY_RENEWAL: std::time::Duration = std::time::Duration::from_secs(15);

const UPLOAD_COLUMNS: &str = "id, name, destination, total_length, created_at, touched_at";

impl Upload {
    fn from_row(r: &Row) -> Result<Upload> {
        Ok(Upload {
            id: r.i64(0)?,
            name: r.str(1)?,
            destination: r.opt_str(2)?,
            total_length: r.opt_i64(3)?,
            created_at: r.i64(4)?,
            touched_at: r.i64(5)?,
        })
    }
}

/// Deletes every upload of a user; returns blob keys no longer referenced.
pub(crate) async fn drop_all(tx: &mut Tx, user_id: i64) -> Result<Vec<String>> {
    let rows = tx.rows("SELECT id FROM uploads WHERE user_id = ?", &[user_id.into()]).await?;
    let mut freed = Vec::new();
    for r in rows {
        freed.extend(drop_upload(tx, r.i64(0)?).await?);
    }
    Ok(freed)
}

async fn drop_upload(tx: &mut Tx, upload_id: i64) -> Result<Vec<String>> {
    let rows = tx
        .rows("SELECT blob_id FROM upload_chunks WHERE upload_id = ?", &[upload_id.into()])
        .await?;
    let blobs: Vec<i64> = rows.iter().map(|r| r.i64(0)).collect::<std::result::Result<_, _>>()?;
    tx.exec("DELETE FROM upload_chunks WHERE upload_id = ?", &[upload_id.into()]).await?;
    tx.exec("DELETE FROM uploads WHERE id = ?", &[upload_id.into()]).await?;
    unref_blobs(tx, &blobs).await
}

/// The position of a chunk: its number (`0000000000000001`, `3`) or the
/// start of its byte range (`000000000000000-000000010485759`), the names
/// Nextcloud's clients and rclone give. Other names are refused: `1x` or
/// `1e1` read as 1 would stand beside a chunk `1`.
/// Of chunks in assembly order, the last of each number.
fn latest_per_number(sorted: impl Iterator<Item = Chunk>) -> Vec<Chunk> {
    let mut kept: Vec<Chunk> = Vec::new();
    for c in sorted {
        if kept.last().is_some_and(|k| chunk_order(&k.name) == chunk_order(&c.name)) {
            kept.pop();
        }
        kept.push(c);
    }
    kept
}

fn chunk_order(name: &str) -> Option<u64> {
    let number = |s: &str| match s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse::<u64>().ok(),
        false => None,
    };
    match name.split_once('-') {
        Some((start, end)) => match (number(start), number(end)) {
            (Some(start), Some(end)) if start <= end => Some(start),
            _ => None,
        },
        None => number(name),
    }
}

/// The user's stored chunks as chunk `chunk` of upload `upload_id` finds
/// them: the bytes of all but those it replaces (its upload's chunks of the
/// same number however spelled, see [`latest_per_number`]: a chunk sent
/// again needs no room for its old copy), and those it replaces (name and
/// blob id), which storing it deletes.
struct Beside {
    others: i64,
    replaced: Vec<(String, i64)>,
}

async fn chunks_beside<C: Conn>(
    c: &mut C,
    user_id: i64,
    upload_id: i64,
    chunk: &str,
) -> Result<Beside> {
    let rows = c
        .rows(
            "SELECT c.upload_id, c.name, c.size, c.blob_id FROM upload_chunks c \
             JOIN uploads u ON u.id = c.upload_id WHERE u.user_id = ?",
            &[user_id.into()],
        )
        .await?;
    let number = chunk_order(chunk);
    let mut beside = Beside { others: 0, replaced: Vec::new() };
    for r in &rows {
        let name = r.str(1)?;
        match r.i64(0)? == upload_id && chunk_order(&name) == number {
            true => beside.replaced.push((name, r.i64(3)?)),
            false => beside.others += r.i64(2)?,
        }
    }
    Ok(beside)
}

/// Refuses (423) a change to an upload whose chunks are being assembled, as
/// a second assembly is refused; `NotFound` when the upload is gone. The
/// claim and this check both run in write transactions, so one sees the
/// other.
async fn refuse_while_assembling(tx: &mut strongroom_store::Tx, upload_id: i64) -> Result<()> {
    let sql = "SELECT assembling_since FROM uploads WHERE id = ?";
    let Some(row) = tx.row(sql, &[upload_id.into()]).await? else { return Err(Error::NotFound) };
    if row.opt_i64(0)?.is_some_and(|since| since >= now_secs() - ASSEMBLY_STALE) {
        return Err(Error::Busy("the upload is being assembled; try again later".into()));
    }
    Ok(())
}

/// Checks that the chunks follow each other without a gap: consecutive
/// indices, or byte ranges `start-end` that touch.
fn check_contiguous(chunks: &[Chunk]) -> Result<()> {
    let missing =
        || Error::BadRequest("a chunk is missing: the chunks do not follow each other".into());
    let ranges: Option<Vec<(u64, u64)>> = chunks
        .iter()
        .map(|c| {
            let (a, b) = c.name.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    if let Some(ranges) = ranges {
        let mut next = 0;
        for (c, (a, b)) in chunks.iter().zip(ranges) {
            if a != next || b + 1 < a || (b + 1 - a) as i64 != c.size {
                return Err(missing());
            }
            next = b + 1;
        }
        return Ok(());
    }
    let first = chunks.first().and_then(|c| chunk_order(&c.name)).unwrap_or(0);
    if first > 1 {
        return Err(missing());
    }
    for (i, c) in chunks.iter().enumerate() {
        if chunk_order(&c.name) != Some(first + i as u64) {
            return Err(missing());
        }
    }
    Ok(())
}

impl Files {
    /// MKCOL of an upload folder.
    pub async fn upload_create(
        &self,
        cx: &Ctx<'_>,
        name: &str,
        destination: Option<&str>,
        total: Option<i64>,
    ) -> Result<()> {
        cx.allow(Op::Create)?;
        check_name(name)?;
        if let Some(t) = total {
            self.make_room(cx, t).await?;
        }
        let now = now_secs();
        let mut tx = self.begin_for(cx.owner.id).await?;
        let exists = tx
            .row(
                "SELECT id FROM uploads WHERE user_id = ? AND name = ?",
                &[cx.owner.id.into(), name.into()],
            )
            .await?;
        if exists.is_some() {
            return Err(Error::AlreadyExists("the upload folder exists".into()));
        }
        let inserted = tx
            .insert(
                "INSERT INTO uploads (user_id, name, destination, total_length, created_at, touched_at) VALUES (?, ?, ?, ?, ?, ?)",
                &[cx.owner.id.into(), name.into(), destination.into(), total.into(), now.into(), now.into()],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(strongroom_store::DbError::Conflict) => {
                return Err(Error::AlreadyExists("the upload folder exists".into()));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn upload_get(&self, cx: &Ctx<'_>, name: &str) -> Result<Upload> {
        cx.allow(Op::Stat)?;
        let sql = const_sql!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE user_id = ? AND name = ?");
        let row = self.db.row(sql, &[cx.owner.id.into(), name.into()]).await?;
        row.map(|r| Upload::from_row(&r)).transpose()?.ok_or(Error::NotFound)
    }

    pub async fn uploads(&self, cx: &Ctx<'_>) -> Result<Vec<Upload>> {
        cx.allow(Op::Stat)?;
        let sql =
            const_sql!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE user_id = ? ORDER BY name");
        self.db.rows(sql, &[Val::I64(cx.owner.id)]).await?.iter().map(Upload::from_row).collect()
    }

    /// The chunks of an upload in assembly order. A chunk sent again under
    /// another spelling of its number ("1", then "01") replaces the earlier
    /// one, as one sent again under the same name does: the later (its blob
    /// row is newer) is kept. Storing a chunk deletes those it replaces;
    /// this still holds for chunks stored before it did.
    pub async fn upload_chunks(&self, cx: &Ctx<'_>, upload: &Upload) -> Result<Vec<Chunk>> {
        cx.allow(Op::Stat)?;
        let rows = self
            .db
            .rows(
                "SELECT c.name, c.size, b.blob_key, b.kek_id, b.wrapped_key, c.blob_id FROM upload_chunks c JOIN blobs b ON b.id = c.blob_id WHERE c.upload_id = ?",
                &[upload.id.into()],
            )
            .await?;
        let mut chunks: Vec<(Chunk, i64)> = rows
            .iter()
            .map(|r| {
                let chunk = Chunk {
                    name: r.str(0)?,
                    size: r.i64(1)?,
                    blob_key: r.str(2)?,
                    blob_seal: strongroom_store::crypt::Seal::from_columns(
                        r.opt_str(3)?,
                        r.opt_str(4)?,
                    ),
                };
                Ok((chunk, r.i64(5)?))
            })
            .collect::<Result<_>>()?;
        chunks.sort_by(|(a, a_blob), (b, b_blob)| {
            chunk_order(&a.name).cmp(&chunk_order(&b.name)).then(a_blob.cmp(b_blob))
        });
        Ok(latest_per_number(chunks.into_iter().map(|(c, _)| c)))
    }

    /// Stores one chunk; a chunk of the same name is replaced (the last upload wins).
    pub async fn upload_put_chunk<S>(
        &self,
        cx: &Ctx<'_>,
        upload: &str,
        chunk: &str,
        body: S,
        len: Option<u64>,
    ) -> Result<bool>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        cx.allow(Op::Write)?;
        check_name(chunk)?;
        if chunk_order(chunk).is_none() {
            return Err(Error::BadRequest(
                "a chunk's name is its number or its byte range (start-end)".into(),
            ));
        }
        let up = self.upload_get(cx, upload).await?;
        // The user's other chunks take room too: a body of announced length
        // must fit beside them, one of unknown length is cut off where it
        // would not (checked again when it commits).
        let limit = match cx.owner.quota < 0 {
            true => None,
            false => {
                let others =
                    chunks_beside(&mut self.db.clone(), cx.owner.id, up.id, chunk).await?.others;
                if let Some(l) = len {
                    self.make_room(cx, l as i64 + others).await?;
                }
                let (used, quota) = self.usage(cx).await?;
                Some((quota - used - others).max(0) as u64)
            }
        };
        let staged = self.stage(body, len, None, limit).await?;
        let result = self.retry(|| self.commit_chunk(cx, &up, chunk, &staged)).await;
        if result.is_err() {
            if let Some(k) = &staged.key {
                self.blobs.discard(k).await;
            }
        }
        let (created, freed) = result?;
        self.release(freed).await;
        Ok(created)
    }

    async fn commit_chunk(
        &self,
        cx: &Ctx<'_>,
        up: &Upload,
        chunk: &str,
        staged: &Staged,
    ) -> Result<(bool, Vec<String>)> {
        let now = now_secs();
        let mut tx = self.begin_for(cx.owner.id).await?;
        // A chunk stored while the chunks are being assembled would be
        // acknowledged and then dropped with the upload.
        refuse_while_assembling(&mut tx, up.id).await?;
        // With the chunks stored meanwhile (chunks sent at once each passed
        // the check before their body alone).
        let beside = chunks_beside(&mut tx, cx.owner.id, up.id, chunk).await?;
        super::write::check_quota_in(&mut tx, cx, staged.size + beside.others).await?;
        // An empty chunk still needs a blob row to keep the chunk list uniform.
        let blob = match &staged.key {
            Some(stored) => self.insert_blob(&mut tx, stored, staged.size).await?,
            None => {
                let key = BlobKey::random();
                self.insert_blob(&mut tx, &StoredBlob::plain(key), 0).await?
            }
        };
        // The chunks this one replaces go: kept, they would take room the
        // quota check above does not count, for content the assembly would
        // skip anyway.
        let same_name = beside.replaced.iter().any(|(name, _)| name == chunk);
        let blobs: Vec<i64> = beside.replaced.iter().map(|(_, blob)| *blob).collect();
        let freed = unref_blobs(&mut tx, &blobs).await?;
        for (name, _) in &beside.replaced {
            tx.exec(
                "DELETE FROM upload_chunks WHERE upload_id = ? AND name = ?",
                &[up.id.into(), name.as_str().into()],
            )
            .await?;
        }
        tx.exec(
            "INSERT INTO upload_chunks (upload_id, name, blob_id, size) VALUES (?, ?, ?, ?)",
            &[up.id.into(), chunk.into(), blob.into(), staged.size.into()],
        )
        .await?;
        tx.exec("UPDATE uploads SET touched_at = ? WHERE id = ?", &[now.into(), up.id.into()])
            .await?;
        tx.commit().await?;
        Ok((!same_name, freed))
    }

    /// Deletes an upload folder and its chunks.
    pub async fn upload_delete(&self, cx: &Ctx<'_>, name: &str) -> Result<()> {
        cx.allow(Op::Delete)?;
        let up = self.upload_get(cx, name).await?;
        let mut tx = self.begin_for(cx.owner.id).await?;
        // Its chunks are being read: the assembly would fail half way.
        refuse_while_assembling(&mut tx, up.id).await?;
        let freed = drop_upload(&mut tx, up.id).await?;
        tx.commit().await?;
        self.release(freed).await;
        Ok(())
    }

    /// Assembles the upload `name` of `cx`'s user at `dest` in the tree of
    /// `into`: the uploader's own tree, or a tree it reaches through a share
    /// (then the share's grant decides, and the owner's quota counts). The
    /// chunks stay when the assembly is refused, so the client can resume.
    pub async fn upload_assemble(
        &self,
        cx: &Ctx<'_>,
        into: &Ctx<'_>,
        name: &str,
        dest: &TreePath,
        total: Option<i64>,
        opts: PutOptions,
    ) -> Result<PutOutcome> {
        cx.allow(Op::Write)?;
        check_new_name(dest)?;
        let up = self.upload_get(cx, name).await?;
        self.claim_assembly(&up).await?;
        let result = tokio::select! {
            result = self.assemble(cx, into, &up, dest, total, opts) => result,
            never = self.keep_claim(up.id) => match never {},
        };
        if result.is_err() {
            let _ = self
                .db
                .exec("UPDATE uploads SET assembling_since = NULL WHERE id = ?", &[up.id.into()])
                .await;
        }
        result
    }

    /// Renews the assembly's mark until dropped (when the assembly ends).
    async fn keep_claim(&self, upload_id: i64) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(ASSEMBLY_RENEWAL).await;
            let sql = "UPDATE uploads SET assembling_since = ? \
                       WHERE id = ? AND assembling_since IS NOT NULL";
            if let Err(e) = self.db.exec(sql, &[now_secs().into(), upload_id.into()]).await {
                tracing::warn!(error = %e, upload_id, "renewing an assembly's mark failed");
            }
        }
    }

    /// Marks the upload as being assembled; a concurrent MOVE gets 423.
    async fn claim_assembly(&self, up: &Upload) -> Result<()> {
        let now = now_secs();
        let n = self
            .db
            .exec(
                "UPDATE uploads SET assembling_since = ? WHERE id = ? AND (assembling_since IS NULL OR assembling_since < ?)",
                &[now.into(), up.id.into(), (now - ASSEMBLY_STALE).into()],
            )
            .await?;
        if n == 0 {
            return Err(Error::Busy("the upload is being assembled; try again later".into()));
        }
        Ok(())
    }

    async fn assemble(
        &self,
        cx: &Ctx<'_>,
        into: &Ctx<'_>,
        up: &Upload,
        dest: &TreePath,
        total: Option<i64>,
        opts: PutOptions,
    ) -> Result<PutOutcome> {
        let chunks = self.upload_chunks(cx, up).await?;
        if chunks.is_empty() {
            return Err(Error::BadRequest("the upload has no chunks".into()));
        }
        check_contiguous(&chunks)?;
        let size: i64 = chunks.iter().map(|c| c.size).sum();
        if let Some(t) = total.or(up.total_length) {
            if t != size {
                return Err(Error::BadRequest(format!(
                    "the chunks hold {size} bytes, the client announced {t}"
                )));
            }
        }
        let existing = self.stat(into, dest).await?;
        self.make_room(into, size - existing.map_or(0, |n| n.size)).await?;
        let staged = self.concatenate(&chunks, opts.checksum.as_ref()).await?;
        let outcome = self
            .place(into, dest, staged, &PutOptions { expected_len: None, checksum: None, ..opts })
            .await?;
        let mut tx = self.begin_for(cx.owner.id).await?;
        let freed = drop_upload(&mut tx, up.id).await?;
        tx.commit().await?;
        self.release(freed).await;
        Ok(outcome)
    }

    /// The seal of a blob as the database has it now.
    async fn current_seal(&self, blob_key: &str) -> Result<Option<Seal>> {
        let row = self
            .db
            .row("SELECT kek_id, wrapped_key FROM blobs WHERE blob_key = ?", &[blob_key.into()])
            .await?;
        match row {
            Some(r) => Ok(Seal::from_columns(r.opt_str(0)?, r.opt_str(1)?)),
            None => Err(Error::NotFound),
        }
    }

    /// Streams the chunks, in order, into one new blob (each byte copied once).
    async fn concatenate(
        &self,
        chunks: &[Chunk],
        checksum: Option<&crate::checksum::Expected>,
    ) -> Result<Staged> {
        let mut hasher = Hasher::new(checksum.map(|c| c.algo));
        let mut writer = self.blobs.create().await?;
        let mut size = 0i64;
        for c in chunks.iter().filter(|c| c.size > 0) {
            let key = BlobKey::parse(&c.blob_key)
                .ok_or_else(|| Error::Internal("bad chunk blob key".into()))?;
            let len = c.size as u64;
            // An assembly can outlast a master key rotation, which re-wraps
            // the chunks' data keys and destroys the old master key: each
            // chunk's seal is read again just before the chunk is opened.
            let seal = match &c.blob_seal {
                Some(_) => self.current_seal(&c.blob_key).await?,
                None => None,
            };
            let mut stream = match &seal {
                // Small plaintext chunks are kept in their rows.
                None => self.blob_stream(&key, None, len, 0..len).await?,
                Some(s) => match self.blobs.read(&key, Some(s), len, 0..len).await {
                    Err(BlobError::Key { .. }) => {
                        let seal = self.current_seal(&c.blob_key).await?;
                        self.blobs.read(&key, seal.as_ref(), len, 0..len).await?
                    }
                    r => r?,
                },
            };
            while let Some(part) = stream.next().await {
                let part = part.map_err(|e| Error::Internal(format!("reading a chunk: {e}")))?;
                hasher.update(&part);
                size += part.len() as i64;
                if let Err(e) = writer.write(part).await {
                    // Before the answer: dropping the writer would remove its
                    // partial file too, but only some time later.
                    writer.abort().await;
                    return Err(e.into());
                }
            }
        }
        let checksum = match hasher.finish(checksum) {
            Ok(c) => c,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        if size == 0 {
            writer.abort().await;
            return Ok(Staged { key: None, size, checksum });
        }
        let key = writer.finish().await?;
        Ok(Staged { key: Some(key), size, checksum })
    }

    /// Deletes uploads untouched since `cutoff`, unless an assembly is running.
    pub async fn uploads_expire(&self, cutoff: i64) -> Result<usize> {
        let rows = self
            .db
            .rows(
                "SELECT id, user_id FROM uploads WHERE touched_at < ? AND (assembling_since IS NULL OR assembling_since < ?)",
                &[cutoff.into(), (now_secs() - ASSEMBLY_STALE).into()],
            )
            .await?;
        let mut n = 0;
        for r in rows {
            let mut tx = self.begin_for(r.i64(1)?).await?;
            let freed = drop_upload(&mut tx, r.i64(0)?).await?;
            tx.commit().await?;
            self.release(freed).await;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(name: &str, size: i64) -> Chunk {
        Chunk { name: name.into(), size, blob_key: String::new(), blob_seal: None }
    }

    #[test]
    fn chunks_must_follow_each_other() {
        assert!(
            check_contiguous(&[chunk("0000000000000000", 5), chunk("0000000000000001", 3)]).is_ok()
        );
        assert!(check_contiguous(&[chunk("1", 5), chunk("2", 3), chunk("3", 1)]).is_ok());
        assert!(check_contiguous(&[chunk("1", 5), chunk("3", 3)]).is_err());
        assert!(check_contiguous(&[chunk("2", 5), chunk("3", 3)]).is_err());
        assert!(
            check_contiguous(&[
                chunk("000000000000000-000000000000009", 10),
                chunk("000000000000010-000000000000014", 5)
            ])
            .is_ok()
        );
        assert!(
            check_contiguous(&[
                chunk("000000000000000-000000000000009", 10),
                chunk("000000000000011-000000000000014", 4)
            ])
            .is_err()
        );
        assert!(check_contiguous(&[chunk("000000000000000-000000000000009", 9)]).is_err());
    }

    #[test]
    fn a_number_sent_again_under_another_spelling_keeps_the_later_chunk() {
        let sorted = [chunk("1", 5), chunk("01", 7), chunk("2", 3), chunk("3", 1), chunk("003", 2)];
        let kept: Vec<(String, i64)> =
            latest_per_number(sorted.into_iter()).into_iter().map(|c| (c.name, c.size)).collect();
        assert_eq!(kept, [("01".into(), 7), ("2".into(), 3), ("003".into(), 2)]);
    }

    #[test]
    fn chunk_order_is_numeric() {
        assert_eq!(chunk_order("10"), Some(10));
        assert_eq!(chunk_order("000000000000010-000000000000014"), Some(10));
        assert_eq!(chunk_order("abc"), None);
        for name in ["1x", "1e1", "+1", "", "1-", "-1", "1-2-3", "1-x", "1 ", "١", "2-1"] {
            assert_eq!(chunk_order(name), None, "{name:?}");
        }
    }
}
